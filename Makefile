# rampart: thin wrapper around Meson. `make test` and `make run` work on a fresh Debian 12.
BUILD      ?= build
SAN_BUILD  ?= build-san
FUZZ_BUILD ?= build-fuzz
PREFIX     ?= /usr/local
DESTDIR    ?=
CONFIG     ?= etc/rampart.yaml
PYTHON     := /usr/bin/python3
FUZZ_SECONDS ?= 60
MESON_OPTS ?=

# Exactly the Debian packages the build, the tests and the benchmarks use.
DEBS_BUILD := gcc clang meson ninja-build pkg-config libyaml-dev libsystemd-dev libmnl-dev \
              libunbound-dev libevent-dev libssl-dev dns-root-data liburing-dev \
              libmilter-dev libnftables-dev libsqlite3-dev libpq-dev
DEBS_TEST  := libcmocka-dev python3-pytest libclang-rt-14-dev iproute2 psmisc util-linux knot knot-dnsutils knot-dnssecutils \
              python3-spf python3-dkim opendkim libmail-dkim-perl libopendmarc-dev publicsuffix \
              nginx libnginx-mod-http-echo libnginx-mod-stream wrk nftables haproxy \
              postfix sasl2-bin libsasl2-modules miltertest \
              iptables openssh-server openssh-client sshpass systemd-journal-remote postgresql-15
DEBS_BENCH := lsof libspf2-dev sshguard fail2ban
DEBS       := $(DEBS_BUILD) $(DEBS_TEST) $(DEBS_BENCH)

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: all deps build test test-unit test-system run bench fuzz install clean soak

all: build

# Installs only what is missing; updates the package lists only when they are absent or
# when an install fails on stale lists.
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  : "sshd, sshguard, fail2ban and PostgreSQL are test peers: policy-rc.d keeps their services stopped"; \
	  case " $$missing " in *" postfix "*) \
	    echo "postfix postfix/main_mailer_type select No configuration" | $(SUDO) debconf-set-selections;; \
	  esac; \
	  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then $(SUDO) apt-get update -qq; fi; \
	  policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=1; \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	    $(SUDO) chmod 755 /usr/sbin/policy-rc.d; fi; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
	  || { $(SUDO) apt-get update -qq && \
	       $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; }; \
	  rc=$$?; if [ -n "$$policy" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) --prefix=$(PREFIX) $(MESON_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

test-unit: build
	meson test -C $(BUILD) --print-errorlogs --suite unit --suite lint --suite conformance

JUNIT ?=
test-system: build
	cd tests/system && RAMPART_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q \
	  $(if $(JUNIT),--junitxml=$(abspath $(JUNIT)))

# The lb soak's long form: a backend killed and restarted every 30 s for 10 minutes. With an
# ASan build (BUILD=build-san) the quarantine is kept small: ASan's default holds up to
# 256 MiB of freed memory, which would read as growth of the lb's RSS.
soak: build
	cd tests/system && RAMPART_BUILD=$(abspath $(BUILD)) RAMPART_SOAK_SECONDS=600 \
	  RAMPART_SOAK_PERIOD=30 ASAN_OPTIONS=$${ASAN_OPTIONS:-quarantine_size_mb=8} \
	  $(PYTHON) -m pytest -q test_lb_soak.py -k killed

# Unit and conformance tests first, the system tests last: pytest's summary closes the run.
test: test-unit test-system

run: build
	$(BUILD)/rampart up -c $(CONFIG)

bench: build
	bench/run $(BUILD)

FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))

$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

# Each target runs FUZZ_SECONDS from its seed corpus (copied: libFuzzer writes into it).
fuzz: deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD)
	@set -e; for name in $(FUZZ_TARGETS); do \
	  t=$(FUZZ_BUILD)/tests/fuzz-$$name; corpus=tests/fuzz/corpus-$$name; mkdir -p $$corpus; \
	  cp -n tests/fuzz/seeds/$$name/* $$corpus/ 2>/dev/null || true; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s (log: $$t.log)"; \
	  if ! $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$corpus >$$t.log 2>&1; then \
	    tail -n 60 $$t.log; echo "fuzz: $$name FAILED"; exit 1; fi; \
	  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' $$t.log; \
	done

install: build
	DESTDIR=$(DESTDIR) meson install -C $(BUILD) --no-rebuild

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
