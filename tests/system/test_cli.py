"""The rampart command line: verbs, help, errors, check-config and up."""
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

VERBS = ["help", "version", "check-config", "up", "port", "dns", "dkim", "dk", "spf",
         "senderid", "milter", "mail", "lb", "guard"]


def listed_verbs(out):
    return [m.group(1) for m in re.finditer(r"^  (\S+)\s", out, re.M)]


def test_help_lists_every_verb(run):
    r = run("help")
    assert r.returncode == 0
    assert listed_verbs(r.stdout) == VERBS
    for line in r.stdout.splitlines():
        if line.startswith("  "):
            assert len(line.split(None, 1)) == 2, f"verb without a summary: {line!r}"


def test_man_page_documents_every_available_verb(run, root):
    man = (root / "docs" / "rampart.8").read_text()
    out = run("help").stdout
    available = [v for v in listed_verbs(out)
                 if "not yet available" not in next(l for l in out.splitlines()
                                                    if l.startswith(f"  {v} "))]
    for verb in available:
        pattern = re.escape(verb).replace("\\-", r"\\?-")
        assert re.search(r"^\.B " + pattern + r"\b", man, re.M), verb


@pytest.mark.parametrize("verb", ["up", "check-config", "version", "help"])
def test_help_verb_and_dash_dash_help(run, verb):
    a = run("help", verb)
    b = run(verb, "--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and a.stdout.startswith("usage: rampart " + verb)


def test_unknown_verb_exits_2(run):
    r = run("nosuchverb")
    assert r.returncode == 2
    assert "rampart: unknown verb 'nosuchverb'" in r.stderr
    assert r.stdout == ""


def test_no_verb_exits_2(run):
    assert run().returncode == 2


def test_help_unknown_verb(run):
    r = run("help", "nosuchverb")
    assert r.returncode == 2 and "rampart: help: unknown verb" in r.stderr


@pytest.mark.parametrize("args", [["up", "--bogus"], ["check-config", "-x"],
                                  ["check-config", "-c"], ["up", "extra"],
                                  ["version", "extra"]])
def test_bad_options_exit_2(run, args):
    r = run(*args)
    assert r.returncode == 2
    assert r.stderr.startswith(f"rampart: {args[0]}: ")


def test_guard_without_guard_section_exits_2(run, tmp_path):
    f = tmp_path / "noguard.yaml"
    f.write_text("log:\n  level: info\n")
    r = run("guard", "-c", f)
    assert r.returncode == 2
    assert "no guard section to run" in r.stderr


def test_milter_without_mail_section_exits_2(run, tmp_path):
    f = tmp_path / "nomail.yaml"
    f.write_text("log:\n  level: info\n")
    r = run("milter", "-c", f)
    assert r.returncode == 2
    assert "no milter section to run" in r.stderr


def test_milter_on_a_busy_address_exits_1(run, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        f = tmp_path / "m.yaml"
        f.write_text(f"mail:\n  milter:\n    listen: inet:{port}@127.0.0.1\n")
        r = run("milter", "-c", f)
    assert r.returncode == 1
    assert f"cannot listen on inet:{port}@127.0.0.1" in r.stderr


def test_lb_without_lb_section_exits_2(run, root):
    r = run("lb", "-c", root / "etc" / "rampart.yaml")
    assert r.returncode == 2
    assert "no lb section to run" in r.stderr


def test_version(run):
    r = run("version")
    # the first line; the commit and the libraries follow (issue 21, test_cmd_cli.py)
    assert r.returncode == 0 and re.fullmatch(r"rampart \d+\.\d+\.\d+", r.stdout.splitlines()[0])


# --- check-config ---------------------------------------------------------------------

def test_shipped_config_passes(run, root):
    cfg = root / "etc" / "rampart.yaml"
    r = run("check-config", "-c", cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{cfg}: ok\n"
    assert run("check-config", cfg).returncode == 0


# (config text, line, column, words the message must contain)
BAD_CONFIGS = {
    "yaml-syntax": ("log:\n  level: [info\n", 3, 1, ["YAML"]),
    "unknown-key": ("log:\n  level: info\n  colour: red\n", 3, 3, ["log: unknown key \"colour\"", "known: level"]),
    "unknown-section": ("lgo:\n  level: info\n", 1, 1, ["unknown key", "lgo"]),
    "wrong-type": ("metrics:\n  timeout: [1, 2]\n", 2, 12, ["metrics.timeout"]),
    "section-not-map": ("log: debug\n", 1, 6, ["log"]),
    "bad-duration": ("metrics:\n  timeout: 3 parsecs\n", 2, 12, ["metrics.timeout", "3 parsecs"]),
    "negative-duration": ("metrics:\n  timeout: -1s\n", 2, 12, ["metrics.timeout", "-1s"]),
    "bad-address": ("metrics:\n  listen: 300.1.1.1:9100\n", 2, 11, ["metrics.listen", "300.1.1.1"]),
    "bad-ipv6": ("metrics:\n  listen: '[::1::]:9100'\n", 2, 11, ["metrics.listen"]),
    "bad-enum": ("log:\n  level: loud\n", 2, 10, ["log.level", "loud"]),
    "duplicate-key": ("log:\n  level: info\n  level: debug\n", 3, 3, ["duplicate", "level"]),
    "tab-indent": ("log:\n\tlevel: info\n", 2, 1, ["tab"]),
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_check_config_reports_position(run, tmp_path, name):
    text, line, col, words = BAD_CONFIGS[name]
    f = tmp_path / f"{name}.yaml"
    f.write_text(text)
    r = run("check-config", "-c", f)
    assert r.returncode == 2, r.stdout
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{f}:{line}:{col}: "), first
    for w in words:
        assert w in first, (w, first)
    assert r.stdout == ""


def test_check_config_reports_every_error(run, tmp_path):
    f = tmp_path / "many.yaml"
    f.write_text("log:\n  level: loud\nmetrics:\n  timeout: 3 parsecs\n  listen: 1.2.3.4\n"
                 "extra: 1\n")
    r = run("check-config", f)
    assert r.returncode == 2
    positions = re.findall(rf"^{re.escape(str(f))}:(\d+):(\d+): ", r.stderr, re.M)
    assert [int(p[0]) for p in positions] == [2, 4, 5, 6]
    assert "4 errors" in r.stderr.splitlines()[-1]


def test_check_config_huge_file(run, tmp_path):
    f = tmp_path / "huge.yaml"
    with open(f, "w") as fh:
        fh.write("log:\n  level: info\n")
        line = "# " + "x" * 97 + "\n"
        fh.write(line * (10 * 1024 * 1024 // len(line)))
    r = run("check-config", "-c", f, timeout=10)
    assert r.returncode == 2
    assert re.match(rf"{re.escape(str(f))}:1:1: .*too large", r.stderr)


def test_check_config_missing_file(run, tmp_path):
    r = run("check-config", "-c", tmp_path / "nope.yaml")
    assert r.returncode == 2
    assert r.stderr.startswith("rampart: check-config: cannot read ")
    assert "No such file" in r.stderr


def test_check_config_binary_garbage(run, tmp_path):
    f = tmp_path / "garbage.yaml"
    f.write_bytes(bytes(range(256)) * 4)
    r = run("check-config", "-c", f)
    assert r.returncode == 2
    assert re.match(rf"{re.escape(str(f))}:\d+:\d+: ", r.stderr)


# --- up -------------------------------------------------------------------------------

class Up:
    """A `rampart up` process whose stderr is read line by line."""

    def __init__(self, rampart, config, **kw):
        self.p = subprocess.Popen([rampart, "up", "-c", str(config)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, **kw)
        self.lines = []

    def wait_for(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        for line in self.lines:
            if rx.search(line):
                return line
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            if rx.search(line):
                return line
        raise AssertionError(f"no line matching {pattern!r} in {self.lines!r}")

    def stop(self, sig=signal.SIGTERM):
        self.p.send_signal(sig)
        rc = self.p.wait(timeout=10)
        self.lines += self.p.stderr.read().splitlines(keepends=True)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def up(rampart):
    procs = []

    def _up(config, **kw):
        u = Up(rampart, config, **kw)
        procs.append(u)
        return u

    yield _up
    for u in procs:
        u.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_up_runs_shipped_config_and_stops_cleanly(up, root, sig):
    u = up(root / "etc" / "rampart.yaml")
    u.wait_for(r"info: started parts=milter")
    assert u.p.poll() is None
    assert u.stop(sig) == 0
    assert any("info: stopped" in l for l in u.lines), u.lines


def test_up_bad_config_exits_2(run, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("log:\n  level: loud\n")
    r = run("up", "-c", f)
    assert r.returncode == 2
    assert f"{f}:2:10: " in r.stderr


def scrape(addr, path="/metrics"):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=5) as resp:
        return resp.status, resp.read().decode()


def test_up_reload_keeps_running_config_on_error(up, tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("log:\n  level: info\nmetrics:\n  listen: 127.0.0.1:0\n")
    u = up(f)
    addr = u.wait_for(r"metrics listening addr=").split("addr=")[1].strip()
    u.wait_for(r"started parts=")
    status, text = scrape(addr)
    assert status == 200
    assert re.search(r"^rampart_config_reloads_total 0$", text, re.M)

    f.write_text("log:\n  level: loud\n")
    u.p.send_signal(signal.SIGHUP)
    u.wait_for(rf"{re.escape(str(f))}:2:10: ")
    u.wait_for(r"reload failed, keeping the running configuration")
    status, text = scrape(addr)
    assert re.search(r"^rampart_config_reloads_total 1$", text, re.M)
    assert re.search(r"^rampart_config_reload_failures_total 1$", text, re.M)

    f.write_text("log:\n  level: debug\nmetrics:\n  listen: 127.0.0.1:0\n")
    u.p.send_signal(signal.SIGHUP)
    u.wait_for(r"info: reloaded config=")
    assert u.p.poll() is None
    assert u.stop() == 0


def test_up_metrics_endpoint(up, tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("metrics:\n  listen: '[::1]:0'\n  timeout: 300ms\n")
    u = up(f)
    addr = u.wait_for(r"metrics listening addr=").split("addr=")[1].strip()
    assert addr.startswith("[::1]:")
    status, text = scrape(addr)
    assert "# TYPE rampart_start_time_seconds gauge" in text
    start = int(re.search(r"^rampart_start_time_seconds (\d+)$", text, re.M).group(1))
    assert abs(start - time.time()) < 3600
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(addr, "/nope")
    assert e.value.code == 404
    # A client that never finishes its request is cut off, and others are still served.
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        assert s.recv(100) == b""
    assert scrape(addr)[0] == 200
    assert u.stop() == 0


def test_up_under_systemd_notify(up, tmp_path, root):
    sock_path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(sock_path))
    s.settimeout(10)
    env = dict(os.environ, NOTIFY_SOCKET=str(sock_path))
    u = up(root / "etc" / "rampart.yaml", env=env)
    assert s.recv(4096) == b"READY=1"
    u.p.send_signal(signal.SIGHUP)
    msg = s.recv(4096).decode()
    assert msg.startswith("RELOADING=1") and "MONOTONIC_USEC=" in msg
    assert s.recv(4096) == b"READY=1"
    u.p.send_signal(signal.SIGTERM)
    assert s.recv(4096) == b"STOPPING=1"
    assert u.p.wait(timeout=10) == 0
    s.close()


def test_make_run_starts_and_stops_on_ctrl_c(root):
    """`make run` in its own process group; Ctrl-C is SIGINT to the whole group."""
    p = subprocess.Popen(["make", "-s", "run"], cwd=root, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "started parts=" in line:
                break
        assert any("started parts=" in l for l in lines), lines
        os.killpg(p.pid, signal.SIGINT)
        out = p.communicate(timeout=20)[0]
        assert "info: stopping signal=SIGINT" in out
        assert "info: stopped" in out
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_make_install_honours_destdir(root, tmp_path):
    build = os.environ.get("RAMPART_BUILD", str(root / "build"))
    r = subprocess.run(["make", "-s", "install", f"BUILD={build}", f"DESTDIR={tmp_path}"],
                       cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert {"usr/local/bin/rampart", "etc/rampart/rampart.yaml",
            "usr/local/share/man/man8/rampart.8", "usr/local/share/man/man5/rampart.yaml.5",
            "usr/local/lib/systemd/system/rampart.service"} <= files
    unit = (tmp_path / "usr/local/lib/systemd/system/rampart.service").read_text()
    assert "ExecStart=/usr/local/bin/rampart up -c /etc/rampart/rampart.yaml" in unit
    installed = subprocess.run([str(tmp_path / "usr/local/bin/rampart"), "check-config",
                                str(tmp_path / "etc/rampart/rampart.yaml")],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr


@pytest.mark.parametrize("text,where,what", [
    ("mail:\n  milter:\n    listen: 8891\n", "3:5", "mail.milter.listen"),
    ("mail:\n  milter: { listen: 'inet:8891@127.0.0.1' }\n  authserv-id: 'mx example'\n",
     "3:3", "mail.authserv-id"),
    ("mail:\n  actions: { spf: drop }\n", "2:19", "mail.actions.spf"),
    ("mail:\n  dns-budget: 0s\n", "2:15", "mail.dns-budget"),
    ("mail:\n  internal-networks: [ 10.0.0.0/33 ]\n", "2:24", "mail.internal-networks"),
    ("mail:\n  sign: [ { domain: example.com, selector: s1 } ]\n", "2:11", "mail.sign[0]"),
    ("mail:\n  sign-from-opendkim: { keytable: /etc/kt }\n", "2:", "signingtable"),
    ("dns:\n  servers: [ 'not an address' ]\n", "2:", "dns.servers"),
    ("dns:\n  servers: [" + ", ".join(f"127.0.0.{i}" for i in range(1, 18)) + "]\n", "2:",
     "at most 16"),
    ("dns:\n  timeout: forever\n", "2:12", "dns.timeout"),
])
def test_check_config_rejects_bad_mail_and_dns(run, tmp_path, text, where, what):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    r = run("check-config", f)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{f}:{where}" in r.stderr and what in r.stderr, r.stderr
