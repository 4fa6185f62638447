"""rampart port, issue 21: honest output (escaped argv, U+FFFD in JSON), peers in JSON, exit
codes of --pids/--kill, clear messages for bad ports, several ports and ranges, -H, --pid,
unix sockets and the namespace's name.

Listeners are Python children in their own session, killed at teardown; ports are ephemeral
and traffic stays on loopback. Where ss(8) can see the same thing, the answer is checked
against it.
"""
import base64
import json
import os
import re
import subprocess
import sys
import uuid

import pytest

# listen and netns are fixtures: pytest finds them in this module's names
from test_port import LISTENER, canon, listen, needs_root, netns  # noqa: F401

PY = sys.executable
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

# Sets its own process name (comm) when the spec says so, then is test_port's listener.
NAMED_LISTENER = ("import json, sys\n"
                  "_c = json.loads(sys.argv[1]).get('comm')\n"
                  "_c and open('/proc/self/comm', 'w').write(_c)\n" + LISTENER)

# Binds unix sockets (stream listeners, bound datagram sockets), connects one pair, reports.
UNIX_LISTENER = r"""
import json, os, socket, sys
spec = json.loads(sys.argv[1])
held = []
for s in spec["sockets"]:
    typ = socket.SOCK_STREAM if s["type"] == "stream" else socket.SOCK_DGRAM
    so = socket.socket(socket.AF_UNIX, typ)
    so.bind(s["path"].replace("@", "\0", 1) if s["path"].startswith("@") else s["path"])
    if typ == socket.SOCK_STREAM:
        so.listen(4)
        if s.get("connect"):
            peer = socket.socket(socket.AF_UNIX)
            peer.connect(s["path"])
            conn, _ = so.accept()
            held += [peer, conn]
    held.append(so)
print(json.dumps({"pid": os.getpid(), "kids": [], "ports": [0]}), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def spawn(listen):
    """spawn(script, spec, args=(), prefix=()) -> Listener, through test_port's listen."""

    def _spawn(script, spec, args=(), prefix=()):
        extra = {k: v for k, v in spec.items() if k != "sockets"}
        return listen(spec["sockets"], prefix=prefix, script=script, args=args, extra=extra)

    return _spawn


def rampart_bytes(rampart, *args, prefix=()):
    return subprocess.run([*prefix, rampart, "port", *map(str, args)], capture_output=True,
                          timeout=30)


def port_json(run, *args, expect=0):
    res = run("port", "--json", *args)
    assert res.returncode == expect, res.stderr
    return json.loads(res.stdout)


# --- defect 5: another user's bytes never reach the terminal raw ---------------------------

EVIL_ARG = b"\x1b]0;owned\x07\x1b[2J\xff\\x41"
EVIL_COMM = "ev\x1bil"


def test_verbose_escapes_argv_and_comm(spawn, rampart):
    srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}],
                                 "comm": EVIL_COMM}, args=[EVIL_ARG])
    res = rampart_bytes(rampart, "-v", srv.port)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    # no control byte but the newlines, no byte that is not UTF-8
    assert not any(c < 0x20 and c != 0x0a for c in out), out
    out.decode("utf-8")
    text = out.decode()
    assert r"\x1b]0;owned\x07\x1b[2J\xff\\x41" in text, text
    assert r"ev\x1bil" in text  # the COMMAND column too


def test_json_invalid_utf8_is_replaced_and_kept_raw(spawn, run):
    srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}],
                                 "comm": EVIL_COMM}, args=[EVIL_ARG])
    res = run("port", "--json", srv.port)
    assert res.returncode == 0
    res.stdout.encode("utf-8")  # valid UTF-8 text
    (obj,) = json.loads(res.stdout)
    raw = open(f"/proc/{srv.pid}/cmdline", "rb").read().rstrip(b"\0").replace(b"\0", b" ")
    # 0xFF is shown as U+FFFD, never as a plausible character such as U+00FF
    assert "\ufffd" in obj["cmdline"] and "\u00ff" not in obj["cmdline"]
    assert obj["cmdline"] == raw.decode("utf-8", "replace")
    assert base64.b64decode(obj["cmdline_raw"]) == raw
    # valid UTF-8 (control characters included) comes back exactly, without a _raw
    assert obj["command"] == EVIL_COMM and "command_raw" not in obj
    assert "exe_raw" not in obj


# --- defect 6: peers in JSON, exit codes, the warning --------------------------------------

def test_json_all_has_peer(spawn, run):
    srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1",
                                              "connect": True}]})
    found = [o for o in port_json(run, "--all", "tcp", srv.port) if o["pid"] == srv.pid]
    by_state = {o["state"]: o for o in found}
    assert by_state["LISTEN"]["peer"] is None and by_state["LISTEN"]["peer_port"] is None
    estab = by_state["ESTAB"]
    ss = subprocess.run(["ss", "-tnH", "state", "established", f"sport = :{srv.port}"],
                        capture_output=True, text=True, check=True).stdout.split()
    peer_addr, peer_port = ss[-1].rsplit(":", 1)
    assert (estab["peer"], estab["peer_port"]) == (canon(peer_addr), int(peer_port))
    assert estab["peer"] == "127.0.0.1" and estab["peer_port"] != srv.port


@needs_root
def test_pids_and_kill_with_invisible_holder_exit_1(spawn, rampart):
    srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]})
    res = rampart_bytes(rampart, "--pids", srv.port, prefix=NOBODY)
    assert (res.returncode, res.stdout) == (1, b"")
    # --kill still lists the socket (its PID column "-"), but says it signalled nobody
    res = rampart_bytes(rampart, "--kill", srv.port, prefix=NOBODY)
    assert res.returncode == 1
    assert srv.proc.poll() is None  # nothing was signalled
    # the socket itself is there: the plain listing still finds it (exit 0)
    assert rampart_bytes(rampart, srv.port, prefix=NOBODY).returncode == 0


@needs_root
def test_warning_only_when_a_listed_socket_has_no_owner(spawn, rampart):
    mine = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]},
                 prefix=NOBODY)
    res = rampart_bytes(rampart, "--json", mine.port, prefix=NOBODY)
    assert res.returncode == 0
    (obj,) = json.loads(res.stdout)
    assert obj["pid"] == mine.pid
    assert res.stderr == b""  # root's processes were unreadable, but not needed
    root_srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]})
    res = rampart_bytes(rampart, root_srv.port, prefix=NOBODY)
    assert b"could not read the open files" in res.stderr


# --- defect 9: messages that say what is wrong --------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["09001"], "port '09001': no leading zeros, please (did you mean 9001?)"),
    (["127.0.0.1:0080"], "no leading zeros, please (did you mean 127.0.0.1:80?)"),
    (["example.com:80"], "'example.com:80': give an IP address (or localhost), not a host name"),
    (["localhost"], "'localhost': give a port too"),
    (["9000-8000"], "'9000-8000': a range goes from low to high"),
    (["1-65535"], "'1-65535': a range of at most 4096 ports"),
    (["80-"], "'80-': not a port"),
    (["0-10"], "port '0-10': must be 1..65535"),
    (["sctp", "80"], "'sctp': expected tcp, udp or unix"),
    (["tcp", "/run/x.sock"], "a socket path goes with unix, not tcp"),
    ([str(p) for p in range(1, 66)], "at most 64 ports or addresses at once"),
    (["--pid", "abc"], "--pid 'abc': not a process id"),
    (["--pid", "0"], "--pid '0': not a process id"),
    (["--pid", "99999999999"], "not a process id"),
    (["--pid", "1", "--kill"], "--pid and --kill do not go together"),
    (["-H", "--bogus"], "--bogus"),
])
def test_bad_input(run, args, message):
    res = run("port", *args)
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr.startswith("rampart: port: ")
    assert message in res.stderr


def test_localhost_is_both_loopbacks(spawn, run):
    v4 = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]})
    v6 = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "::1",
                                             "port": v4.port}]})
    other = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.2",
                                                "port": v4.port}]})
    found = port_json(run, f"localhost:{v4.port}")
    assert {o["pid"] for o in found} == {v4.pid, v6.pid}
    assert other.pid in {o["pid"] for o in port_json(run, v4.port)}


# --- several ports, ranges, -H ------------------------------------------------------------

def test_several_ports_and_ranges(spawn, run):
    a = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]})
    b = spawn(NAMED_LISTENER, {"sockets": [{"proto": "udp", "addr": "127.0.0.1"}]})
    found = port_json(run, a.port, b.port)
    assert {(o["proto"], o["port"], o["pid"]) for o in found} == {
        ("tcp", a.port, a.pid), ("udp", b.port, b.pid)}
    assert {o["pid"] for o in port_json(run, "tcp", a.port, b.port)} == {a.pid}
    # a range holding a.port, alone (the kernel filters it) and beside another port
    lo, hi = max(1, a.port - 2), min(65535, a.port + 2)
    for _ in range(5):  # other programs may open or close sockets in between
        ss = subprocess.run(["ss", "-tlnH", f"( sport >= :{lo} and sport <= :{hi} )"],
                            capture_output=True, text=True, check=True).stdout
        ranged = port_json(run, "tcp", f"{lo}-{hi}")
        if len(ranged) == len(ss.splitlines()):
            break
    assert len(ranged) == len(ss.splitlines())
    assert a.pid in {o["pid"] for o in ranged}
    assert all(lo <= o["port"] <= hi for o in ranged)
    both = port_json(run, f"{lo}-{hi}", b.port)
    assert {a.pid, b.pid} <= {o["pid"] for o in both}
    assert all(lo <= o["port"] <= hi or o["port"] == b.port for o in both)
    # with an address
    assert {o["pid"] for o in port_json(run, f"127.0.0.1:{a.port}-{a.port}")} == {a.pid}


def test_no_header(spawn, run):
    srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]})
    with_header = run("port", srv.port).stdout.splitlines()
    res = run("port", "-H", srv.port)
    assert res.returncode == 0
    assert with_header[0].startswith("PROTO")
    assert res.stdout.splitlines() == with_header[1:]
    assert run("port", "--no-header", srv.port).stdout == res.stdout


# --- --pid: which sockets a process holds ------------------------------------------------

def test_pid_lists_what_a_process_holds(spawn, run):
    srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1",
                                              "connect": True},
                                             {"proto": "udp", "addr": "::1"}]})
    other = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]})
    found = port_json(run, "--pid", srv.pid)
    assert {o["pid"] for o in found} == {srv.pid}
    assert sorted((o["proto"], o["state"]) for o in found) == [
        ("tcp", "ESTAB"), ("tcp", "ESTAB"), ("tcp", "LISTEN"), ("udp", "UNCONN")]
    # the same as ss shows for that process
    ss = subprocess.run(["ss", "-tuanpH"], capture_output=True, text=True, check=True).stdout
    assert len([ln for ln in ss.splitlines() if f"pid={srv.pid}," in ln]) == len(found)
    assert other.port not in {o["port"] for o in found}
    # with protocol and port words too
    assert [o["state"] for o in port_json(run, "--pid", srv.pid, "udp")] == ["UNCONN"]
    text = run("port", "--pid", srv.pid, "tcp")
    assert "PEER" in text.stdout and "ESTAB" in text.stdout


def test_pid_bad(run, spawn):
    res = run("port", "--pid", "4194305")  # above the kernel's pid_max ceiling
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == "rampart: port: --pid 4194305: no such process\n"
    quiet = spawn(UNIX_LISTENER, {"sockets": []})
    assert port_json(run, "--pid", quiet.pid, expect=1) == []


# --- unix sockets ------------------------------------------------------------------------

def ss_unix_pids(path):
    out = subprocess.run(["ss", "-xlpH", "src", path], capture_output=True, text=True,
                         check=True).stdout
    return {int(p) for p in re.findall(r"pid=(\d+)", out)}


def test_unix_sockets(spawn, run, tmp_path):
    stream = str(tmp_path / "s.sock")
    dgram = str(tmp_path / "d.sock")
    abstract = f"@rampart-test-{uuid.uuid4().hex[:8]}"
    srv = spawn(UNIX_LISTENER, {"sockets": [{"type": "stream", "path": stream, "connect": True},
                                            {"type": "dgram", "path": dgram},
                                            {"type": "stream", "path": abstract}]})
    (obj,) = port_json(run, "unix", stream)
    assert (obj["proto"], obj["type"], obj["local"], obj["state"], obj["pid"]) == (
        "unix", "stream", stream, "LISTEN", srv.pid)
    assert {obj["pid"]} == ss_unix_pids(stream)
    # a path alone means unix, as fuser takes it
    assert port_json(run, stream) == [obj]
    (d,) = port_json(run, "unix", dgram)
    assert (d["type"], d["state"], d["pid"]) == ("dgram", "UNCONN", srv.pid)
    (a,) = port_json(run, "unix", abstract)
    assert a["local"] == abstract and a["pid"] == srv.pid
    listed = {o["local"] for o in port_json(run, "unix")}
    assert {stream, dgram, abstract} <= listed
    # --all adds the connected pair, with the peer's inode
    conns = [o for o in port_json(run, "--all", "unix", stream) if o["state"] == "ESTAB"]
    assert len(conns) == 1 and conns[0]["peer_inode"]
    text = run("port", "unix", stream)
    assert text.returncode == 0 and "u_str" in text.stdout and stream in text.stdout
    assert run("port", "unix", str(tmp_path / "none.sock")).returncode == 1
    # the /proc/net text fallback cannot list them: an error, not a silent "none"
    res = run("port", "unix", stream, env=dict(os.environ, RAMPART_PORT_NO_DIAG="1"))
    assert (res.returncode, res.stdout) == (3, "")
    assert "cannot list unix sockets" in res.stderr


def test_unix_path_escaped(spawn, run, tmp_path):
    path = str(tmp_path / "e\x1b[31m.sock")
    srv = spawn(UNIX_LISTENER, {"sockets": [{"type": "stream", "path": path}]})
    res = run("port", "unix", path)
    assert res.returncode == 0 and "\x1b" not in res.stdout
    assert "e\\x1b[31m.sock" in res.stdout
    (obj,) = port_json(run, "unix", path)
    assert obj["local"] == path and obj["pid"] == srv.pid


# --- the namespace's name in JSON --------------------------------------------------------

@needs_root
def test_netns_name_in_json(spawn, run, netns, rampart):
    srv = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]},
                prefix=["ip", "netns", "exec", netns])
    (obj,) = port_json(run, "--all-netns", srv.port)
    assert obj["netns_name"] == netns
    assert obj["netns"] == os.stat(f"/run/netns/{netns}").st_ino
    # run inside the namespace, our own namespace has that name too
    res = subprocess.run(["ip", "netns", "exec", netns, rampart, "port", "--json", str(srv.port)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)[0]["netns_name"] == netns
    # and --pid finds the process's sockets in its namespace
    (obj,) = port_json(run, "--pid", srv.pid)
    assert (obj["port"], obj["netns_name"]) == (srv.port, netns)
    # an unnamed namespace (ours) has none
    mine = spawn(NAMED_LISTENER, {"sockets": [{"proto": "tcp", "addr": "127.0.0.1"}]})
    assert port_json(run, mine.port)[0]["netns_name"] is None
