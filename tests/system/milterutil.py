"""`rampart milter` for system tests: a config, DNS from knot, keys, start, reload, checked stop.

    from milterutil import Milter, milter  # noqa: F401  (milter is a pytest fixture)

    def test_x(milter):
        m = milter(zones={"example": ZONE}, keys=[("corp.example", "s1", "rsa")],
                   mail={"actions": {"spf": "reject"}})
        subprocess.run(["miltertest", "-D", "spec=" + m.spec, ...])   # or Postfix: m.postfix_spec
        assert m.results()[-1]["action"] == "accept"

    with Milter(zones=..., mail=...) as m:       # without pytest; stop() checks as below
        ...

Milter(zones=None, mail=None, keys=(), sign=True, dns=None, authserv_id="mx.test", env=None,
       top=None)
    top: further top-level sections of the config, e.g. {"metrics": {"listen": ADDR}}.
    zones: {origin: zone text} served by knot (tests/system/knot.py) on a loopback port; the
        config's dns.servers points at it. None: no knot (then pass dns=). Not under
        .invalid, .localhost or .onion: libunbound answers those NXDOMAIN itself (its
        default local zones, RFC 6761) and never asks knot; .example and .test work.
    mail: extra keys of the `mail:` section: a dict (merged over the defaults, nested dicts
        merged) or YAML text (the section's body, indented as at top level).
    keys: (domain, selector, "rsa"|"ed25519") each made by `rampart dkim keygen`; its TXT
        record is added to the zone whose origin is the domain or a parent of it. With
        sign=True (default) every key is also a `mail.sign` entry.
    dns: the `dns:` section (dict), replacing the default {servers: [knot], timeout: 2s}.
    env: extra environment for the milter process.
The defaults: mail.milter.listen inet:PORT@127.0.0.1 (a free loopback port), authserv-id
mx.test, log level info (the "milter qid=... action=..." line per message).

Attributes and methods:
    spec          "inet:PORT@127.0.0.1" (libmilter / miltertest form)
    postfix_spec  "inet:127.0.0.1:PORT" (smtpd_milters form)
    port, dir (temporary directory, removed on exit), config (path), proc (Popen)
    dns_port      knot's port (None without zones)
    key(domain, selector) -> path of the private key (PEM)
    records       {(domain, selector): TXT record value} of the keys
    log() -> the milter's stderr so far
    results() -> one dict per "milter qid=..." log line (keys qid, client, spf, helo,
        sender-id, dkim, domainkeys, dmarc, removed, signed, action: as logged)
    reload(mail=None) -> True when the milter logged "reloaded", False on "reload failed";
        mail (as above) replaces the extra mail keys first; the port stays.
    rss_kb(peak=False) -> the milter's resident set in KiB: VmRSS, or its peak VmHWM
    stop() -> SIGTERM; asserts exit status 0 and no sanitizer report in the log
        ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"). Idempotent; runs on
        leaving the with block (also after a failure, then without masking it).

Sanitizer builds (RAMPART_BUILD pointing at a -Db_sanitize build) need nothing more: ASan's
quarantine is reduced to 16 MB (so RSS shows whether the milter streams) and LeakSanitizer
runs at exit; its report fails stop().
"""
import contextlib
import copy
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from knot import knot_zone

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("RAMPART_BUILD", ROOT / "build"))

START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0
RELOAD_TIMEOUT = 30.0
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
RESULT_LINE = re.compile(r"\bmilter qid=(\S+) (.*)$", re.M)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port):
    """True when 127.0.0.1:port is in LISTEN state (read from /proc: no connection made,
    which the milter would see as a client)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A"
                   for line in f.readlines()[1:])


def _merge(base, extra):
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def _yaml(obj, indent=0):
    """Block-style YAML for the config (mappings nest; lists and scalars are JSON flow
    values, which YAML reads as they are), so extra text can be appended to a section."""
    pad, out = " " * indent, []
    for k, v in obj.items():
        if isinstance(v, dict) and v:
            out.append(f"{pad}{k}:\n{_yaml(v, indent + 2)}")
        else:
            out.append(f"{pad}{k}: {json.dumps(v)}\n")
    return "".join(out)


def _keygen(rampart, d, domain, selector, kind):
    out = d / "keys" / domain
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([rampart, "dkim", "keygen", "--domain", domain, "--selector", selector,
                    "--type", kind, "--out", str(out)], check=True, capture_output=True,
                   timeout=60)
    txt = (out / f"{selector}.txt").read_text()
    value = "".join(re.findall(r'"([^"]*)"', txt))
    return out / f"{selector}.private", value


def _zone_record(domain, selector, value):
    chunks = " ".join(f'"{value[i:i + 200]}"' for i in range(0, len(value), 200))
    return f"{selector}._domainkey.{domain}. 300 IN TXT {chunks}\n"


class Milter:
    def __init__(self, zones=None, mail=None, keys=(), sign=True, dns=None,
                 authserv_id="mx.test", env=None, top=None):
        self.rampart = str(BUILD / "rampart")
        self.top = dict(top or {})
        self.zones = dict(zones or {})
        self.extra_mail = mail
        self.keys_spec = list(keys)
        self.sign = sign
        self.dns = dns
        self.authserv_id = authserv_id
        self.env = env or {}
        self.proc = None
        self.dns_port = None
        self.records = {}
        self._keys = {}
        self._stack = contextlib.ExitStack()
        self._stopped = False

    # --- life cycle -------------------------------------------------------------------
    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
            else:
                with contextlib.suppress(Exception):
                    self.stop()
        finally:
            self._cleanup()

    def _start(self):
        if not os.path.exists(self.rampart):
            pytest.fail(f"{self.rampart} is missing: run `make` first")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="rampart-milter-"))
        self._stack.callback(shutil.rmtree, self.dir, ignore_errors=True)
        for domain, selector, kind in self.keys_spec:
            path, value = _keygen(self.rampart, self.dir, domain, selector, kind)
            self._keys[(domain, selector)] = path
            self.records[(domain, selector)] = value
            self._publish(domain, selector, value)
        if self.zones:
            _, self.dns_port = self._stack.enter_context(knot_zone(self.zones))
        self.port = free_port()
        self.spec = f"inet:{self.port}@127.0.0.1"
        self.postfix_spec = f"inet:127.0.0.1:{self.port}"
        self.config = self.dir / "rampart.yaml"
        self._write_config()
        self._log_path = self.dir / "milter.log"
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
        env["UBSAN_OPTIONS"] = env.get("UBSAN_OPTIONS", "") + ":print_stacktrace=1"
        env.update(self.env)
        with open(self._log_path, "wb") as log:
            self.proc = subprocess.Popen([self.rampart, "milter", "-c", str(self.config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"rampart milter exited {self.proc.returncode}:\n"
                                   f"{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"rampart milter did not listen in time:\n{self.log()}")
            time.sleep(0.05)

    def _publish(self, domain, selector, value):
        for origin in sorted(self.zones, key=len, reverse=True):
            o = origin.rstrip(".").lower()
            if domain.lower() == o or domain.lower().endswith("." + o):
                self.zones[origin] += _zone_record(domain, selector, value)
                return
        if self.zones:
            raise ValueError(f"no zone holds {domain} for its key {selector}")

    def _mail_section(self):
        mail = {"milter": {"listen": self.spec}, "authserv-id": self.authserv_id}
        if self.sign and self._keys:
            mail["sign"] = [{"domain": d, "selector": s, "key": str(p)}
                            for (d, s), p in self._keys.items()]
        if isinstance(self.extra_mail, dict):
            _merge(mail, self.extra_mail)
        return mail

    def _write_config(self):
        dns = self.dns if self.dns is not None else {
            "servers": [f"127.0.0.1:{self.dns_port}"] if self.dns_port else [],
            "timeout": "2s"}
        text = _yaml({"log": {"level": "info"}, **self.top, "dns": dns,
                      "mail": self._mail_section()})
        if isinstance(self.extra_mail, str):
            text += "".join("  " + line + "\n" for line in self.extra_mail.splitlines())
        self.config.write_text(text)

    def stop(self):
        """SIGTERM; the milter must exit 0 with no sanitizer report in its log."""
        if self._stopped or self.proc is None:
            return
        self._stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"rampart milter did not stop on SIGTERM:\n{self.log()}")
        log = self.log()
        assert self.proc.returncode == 0, f"rampart milter exited {self.proc.returncode}:\n{log}"
        for mark in SANITIZER_MARKS:
            assert mark not in log, f"sanitizer report in the milter log:\n{log}"

    def _cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stack.close()

    # --- use ----------------------------------------------------------------------------
    def key(self, domain, selector):
        return str(self._keys[(domain, selector)])

    def log(self):
        return self._log_path.read_text(errors="replace")

    def results(self):
        out = []
        for qid, rest in RESULT_LINE.findall(self.log()):
            d = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
            d["qid"] = qid
            out.append(d)
        return out

    def reload(self, mail=None):
        if mail is not None:
            self.extra_mail = mail
            self._write_config()
        outcome = re.compile(r"(reloaded|reload failed, keeping the running configuration) "
                             r"config=")
        before = len(outcome.findall(self.log()))
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT
        while time.monotonic() < deadline:
            found = outcome.findall(self.log())
            if len(found) > before:
                return found[-1] == "reloaded"
            if self.proc.poll() is not None:
                raise RuntimeError(f"rampart milter exited on SIGHUP:\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"no reload outcome in the log:\n{self.log()}")

    def rss_kb(self, peak=False):
        field = "VmHWM:" if peak else "VmRSS:"
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@pytest.fixture
def milter():
    """milter(**Milter kwargs) -> a started Milter; each is stopped (and checked) at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda **kw: stack.enter_context(Milter(**kw))
