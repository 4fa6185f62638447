"""Issue 21, the command line and check-config: usage on stderr without a verb, `help` of an
unknown verb, options before the verb, `version` with the commit and the libraries (text and
JSON), every check-config error in one run at its own line, `check-config -` from stdin, and a
FIFO or a device never read (it could block for ever)."""
import json
import os
import re
import sqlite3
import ssl
import subprocess

import pytest

VERBS = ["help", "version", "check-config", "up", "port", "dns", "dkim", "dk", "spf",
         "senderid", "milter", "mail", "lb", "guard"]
LIBRARIES = ["OpenSSL", "libunbound", "libyaml", "liburing", "libnftables", "SQLite", "libpq",
             "libsystemd"]


# --- rampart with no verb, help, options before the verb ------------------------------

def test_no_arguments_usage_on_stderr(run):
    r = run()
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("usage: rampart VERB [OPTIONS]")
    for verb in VERBS:
        assert re.search(rf"^  {re.escape(verb)} ", r.stderr, re.M), verb


def test_help_without_verb_still_on_stdout(run):
    r = run("help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: rampart VERB [OPTIONS]")


def test_help_unknown_verb_lists_the_verbs(run):
    r = run("help", "bogus")
    assert r.returncode == 2 and r.stdout == ""
    assert "rampart: help: unknown verb 'bogus'" in r.stderr
    assert "help help" not in r.stderr
    first = r.stderr.splitlines()[0]
    for verb in VERBS:
        assert re.search(rf"\b{re.escape(verb)}\b", first), verb
    assert "Try 'rampart help'" in r.stderr


@pytest.mark.parametrize("args,verb,fixed", [
    (["-c", "x.yaml", "up"], "up", "rampart up -c x.yaml"),
    (["--config", "/etc/r.yaml", "check-config"], "check-config",
     "rampart check-config --config /etc/r.yaml"),
    (["-s", "/run/lb.sock", "lb", "ctl", "show", "servers"], "lb",
     "rampart lb -s /run/lb.sock ctl show servers"),
])
def test_option_before_the_verb(run, args, verb, fixed):
    r = run(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert "unknown verb" not in r.stderr
    assert f"rampart: options go after the verb: {fixed}\n" in r.stderr
    assert f"Try 'rampart help {verb}'." in r.stderr


def test_option_without_any_verb(run):
    r = run("-q")
    assert r.returncode == 2
    assert "unknown verb" not in r.stderr
    assert "rampart: unknown option '-q': options go after the verb" in r.stderr


# --- version ------------------------------------------------------------------------

def git_head(root):
    if not (root / ".git").exists():
        return None
    r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                       text=True, check=True)
    return r.stdout.strip()


def check_commit(commit, root):
    """The build's commit: a prefix of a commit hash of this checkout (the build may predate
    HEAD), with -dirty for a modified tree; unknown only outside a git checkout."""
    head = git_head(root)
    if head is None:
        assert commit == "unknown"
        return
    m = re.fullmatch(r"([0-9a-f]{7,40})(-dirty)?", commit)
    assert m, commit
    r = subprocess.run(["git", "-C", str(root), "cat-file", "-t", m.group(1)],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "commit", commit


@pytest.mark.parametrize("args", [["version"], ["--version"], ["-V"]])
def test_version_text(run, root, args):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"rampart \d+\.\d+\.\d+", lines[0]), lines
    assert lines[1].startswith("commit "), lines
    check_commit(lines[1].split(" ", 1)[1], root)
    assert lines[2] == "libraries:"
    libs = {}
    for line in lines[3:]:
        m = re.fullmatch(r"  (\S+) +(\S+)(?: \((at build time|built with \S+)\))?", line)
        assert m, line
        libs[m.group(1)] = m.group(2)
    for name in LIBRARIES:
        assert re.match(r"\d+(\.\d+)*$", libs.get(name, "")), (name, libs)
    # the run-time versions are the libraries' own, as Python's modules see the same ones
    assert libs["SQLite"] == sqlite3.sqlite_version
    assert ssl.OPENSSL_VERSION.startswith(f"OpenSSL {libs['OpenSSL']}")


@pytest.mark.parametrize("args", [["version", "--json"], ["--version", "--json"],
                                  ["-V", "--json"]])
def test_version_json(run, root, args):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert re.fullmatch(r"\d+\.\d+\.\d+", v["version"])
    check_commit(v["commit"], root)
    libs = {lib["name"]: lib for lib in v["libraries"]}
    for name in LIBRARIES:
        lib = libs[name]
        assert lib["version"] or lib["built"], lib
        assert set(lib) == {"name", "version", "built"}
    assert libs["SQLite"]["version"] == sqlite3.sqlite_version
    assert libs["libunbound"]["version"] and libs["libyaml"]["version"]
    text = run("version").stdout
    for lib in v["libraries"]:
        assert re.search(rf"^  {re.escape(lib['name'])} +{re.escape(lib['version'] or lib['built'])}",
                         text, re.M), lib


@pytest.mark.parametrize("args,what", [(["version", "--bogus"], "unknown option '--bogus'"),
                                       (["version", "extra"], "unexpected argument 'extra'"),
                                       (["version", "--json=yes"], "--json"),
                                       (["-V", "extra"], "unexpected argument 'extra'")])
def test_version_bad_input(run, args, what):
    r = run(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("rampart: version: ") and what in r.stderr


def test_undocumented_options_are_documented(run):
    top = run("help").stdout
    assert "--version" in top and "-V" in top
    v = run("help", "version").stdout
    assert "--json" in v and "--version" in v and "-V" in v and "commit" in v
    lb = run("help", "lb").stdout
    assert re.search(r"-s, --socket SOCKET", lb), lb
    cc = run("help", "check-config").stdout
    assert "[FILE | -]" in cc and "stdin" in cc


def test_lb_ctl_socket_long_option(run, tmp_path):
    r = run("lb", "ctl", "--socket", tmp_path / "none.sock", "show", "servers")
    assert r.returncode == 3
    assert f"cannot talk to {tmp_path / 'none.sock'}" in r.stderr


# --- check-config ---------------------------------------------------------------------

LAYERED = """\
lb:
  listeners:
    - name: web
      bind: 127.0.0.1:8080
      servers:
        - name: a
          address: 127.0.0.1:9001
          weight: lots
        - name: a
          address: 127.0.0.1:9002
    - name: web
      bind: 127.0.0.1:8080
      servers:
        - name: b
          address: 127.0.0.1:9003
        - { name: c, address: 127.0.0.1:9004, backup: maybe }
"""


def errors_of(stderr, name):
    return re.findall(rf"^{re.escape(name)}:(\d+):(\d+): (.*)$", stderr, re.M)


def test_check_config_every_error_in_one_run(run, tmp_path):
    f = tmp_path / "rampart.yaml"
    f.write_text(LAYERED)
    r = run("check-config", f)
    assert r.returncode == 2
    errs = [(int(l), int(c), m) for l, c, m in errors_of(r.stderr, str(f))]
    assert errs == [
        (8, 19, 'lb.listeners[0].servers[0].weight: expected an integer, got "lots"'),
        (9, 17, "lb.listeners[0].servers[1].name: server name 'a' is used twice "
                "(first at line 6)"),
        (16, 55, 'lb.listeners[1].servers[1].backup: expected a boolean (true/false, '
                 'yes/no, on/off), got "maybe"'),
        (11, 13, "lb.listeners[1].name: listener name 'web' is used twice (first at line 3)"),
        (12, 13, "lb.listeners[1].bind: two listeners bind the same address "
                 "(first at line 4)"),
    ], r.stderr
    assert r.stderr.splitlines()[-1] == f"rampart: check-config: {f}: 5 errors"


def test_check_config_duplicates_alone_at_their_line(run, tmp_path):
    f = tmp_path / "rampart.yaml"
    f.write_text(LAYERED.replace("          weight: lots\n", "").replace(", backup: maybe", ""))
    r = run("check-config", f)
    assert r.returncode == 2
    assert [(int(l), int(c)) for l, c, _ in errors_of(r.stderr, str(f))] == \
        [(8, 17), (10, 13), (11, 13)], r.stderr


def test_check_config_bad_binds_are_not_duplicates(run, tmp_path):
    """Two listeners whose bind does not parse are not 'the same address'."""
    f = tmp_path / "rampart.yaml"
    f.write_text("lb:\n  listeners:\n"
                 "    - { name: a, bind: nowhere, servers: [{name: s, address: 127.0.0.1:1}] }\n"
                 "    - { name: b, bind: nowhere, servers: [{name: s, address: 127.0.0.1:1}] }\n")
    r = run("check-config", f)
    assert r.returncode == 2
    msgs = [m for _, _, m in errors_of(r.stderr, str(f))]
    assert len(msgs) == 2 and all("bind" in m and "same address" not in m for m in msgs), msgs


def test_check_config_stdin(run, root):
    good = (root / "etc" / "rampart.yaml").read_text()
    r = run("check-config", "-", input=good)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "<stdin>: ok\n"
    r = run("check-config", "-", input=LAYERED)
    assert r.returncode == 2
    assert len(errors_of(r.stderr, "<stdin>")) == 5, r.stderr
    assert r.stderr.splitlines()[-1] == "rampart: check-config: <stdin>: 5 errors"
    r = run("check-config", "-c", "-", input="log: {level: loud}\n")
    assert r.returncode == 2
    assert errors_of(r.stderr, "<stdin>")[0][:2] == ("1", "14"), r.stderr


def test_check_config_stdin_too_large(run):
    r = run("check-config", "-", input="#" * (1024 * 1024 + 10) + "\n")
    assert r.returncode == 2
    assert r.stderr == "rampart: check-config: <stdin>: more than 1048576 bytes\n"


def test_check_config_fifo_is_refused(run, tmp_path):
    """No writer ever opens the FIFO: the old code blocked in open() for ever."""
    fifo = tmp_path / "rampart.yaml"
    os.mkfifo(fifo, 0o600)
    for args in (["check-config", fifo], ["check-config", "-c", fifo], ["up", "-c", fifo],
                 ["lb", "ctl", "-c", fifo, "show", "servers"]):
        r = run(*args, timeout=15)
        assert r.returncode == 2, (args, r.stderr)
        assert f"{fifo}: not a regular file" in r.stderr, r.stderr


@pytest.mark.parametrize("dev", ["/dev/zero", "/dev/null"])
def test_check_config_device_is_refused(run, dev):
    r = run("check-config", dev, timeout=15)
    assert r.returncode == 2
    assert f"{dev}: not a regular file" in r.stderr
    assert "ok" not in r.stdout
