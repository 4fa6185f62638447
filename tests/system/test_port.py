"""rampart port against real listeners, checked against ss(8) wherever ss can see them.

Every listener is a Python child in its own session (forked children included) that holds
its sockets until its stdin closes; teardown kills each session and deletes each network
namespace, whatever happened in the test. Ports are ephemeral (bind to 0) and traffic stays
on loopback.
"""
import ipaddress
import json
import os
import pwd
import re
import select
import signal
import subprocess
import sys
import uuid

import pytest

PY = sys.executable
# Switching users and making network namespaces take root.
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# A child that binds the sockets of its JSON spec, forks, reports its pid and ports, and
# holds everything until its stdin closes.
LISTENER = r"""
import json, os, socket, sys
spec = json.loads(sys.argv[1])
held, bound = [], []
for s in spec["sockets"]:
    fam = socket.AF_INET6 if ":" in s["addr"] else socket.AF_INET
    typ = socket.SOCK_STREAM if s["proto"] == "tcp" else socket.SOCK_DGRAM
    so = socket.socket(fam, typ)
    if s.get("reuseport"):
        so.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if "v6only" in s:
        so.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(s["v6only"]))
    so.bind((s["addr"], s.get("port", 0)))
    bound.append(so.getsockname()[1])
    held.append(so)
    if typ == socket.SOCK_STREAM:
        so.listen(16)
    if s.get("connect"):
        peer = socket.create_connection(so.getsockname()[:2])
        conn, _ = so.accept()
        held += [peer, conn]
kids = []
for _ in range(spec.get("fork", 0)):
    pid = os.fork()
    if pid == 0:
        sys.stdin.read()
        os._exit(0)
    kids.append(pid)
print(json.dumps({"pid": os.getpid(), "kids": kids, "ports": bound}), flush=True)
sys.stdin.read()
"""


class Listener:
    def __init__(self, proc, info):
        self.proc = proc
        self.pid = info["pid"]
        self.kids = info["kids"]
        self.ports = info["ports"]
        self.port = self.ports[0]

    @property
    def pids(self):
        return {self.pid, *self.kids}


@pytest.fixture
def listen():
    """listen(sockets, fork=0, prefix=[], script=LISTENER, args=[], extra={}) -> Listener;
    every one is killed at teardown. extra: more keys of the spec, args: more arguments."""
    started = []

    def _listen(sockets, fork=0, prefix=(), script=LISTENER, args=(), extra=None):
        spec = json.dumps({"sockets": sockets, "fork": fork, **(extra or {})})
        proc = subprocess.Popen([*prefix, PY, "-c", script, spec, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, start_new_session=True)
        started.append(proc)
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else ""
        if not line:
            pytest.fail(f"listener did not start: {sockets} (exit {proc.poll()})")
        return Listener(proc, json.loads(line))

    yield _listen
    for proc in started:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
        proc.stdin.close()
        proc.stdout.close()


def canon(addr):
    """ss and rampart spell addresses differently; compare them as ipaddress objects."""
    addr = addr.strip("[]").split("%")[0]
    if addr == "*":
        addr = "::"
    return str(ipaddress.ip_address(addr))


SS_LINE = re.compile(r"^(\S+)\s+(\S+)\s+\d+\s+\d+\s+(\S+):(\d+|\*)\s+\S+\s*(.*)$")


def ss_rows(*args, netns=None):
    """{(proto, address, port, pid)} from `ss -ltunpH`; pid None for a socket with no process."""
    cmd = ["ss", "-ltunpH", *args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = set()
    for line in out.splitlines():
        m = SS_LINE.match(line)
        assert m, f"unparsed ss line: {line!r}"
        proto, _, addr, port, users = m.groups()
        pids = {int(p) for p in re.findall(r"pid=(\d+)", users)} or {None}
        for pid in pids:
            rows.add((proto, canon(addr), int(port), pid))
    return rows


def port_json(run, *args, expect=0):
    res = run("port", "--json", *args)
    assert res.returncode == expect, res.stderr
    return json.loads(res.stdout)


def rows_of(objs):
    return {(o["proto"], canon(o["local"]), o["port"], o["pid"]) for o in objs}


def same_as_ss(run, port, *proto):
    """rampart's rows on port equal ss's, and come back."""
    ours = rows_of(port_json(run, *proto, port))
    theirs = ss_rows(f"sport = :{port}")
    if proto:
        theirs = {r for r in theirs if r[0] == proto[0]}
    assert ours == theirs
    return ours


def test_tcp_ipv4(run, listen):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}])
    rows = same_as_ss(run, srv.port)
    assert rows == {("tcp", "127.0.0.1", srv.port, srv.pid)}
    assert same_as_ss(run, srv.port, "tcp") == rows
    assert port_json(run, "udp", srv.port, expect=1) == []


def test_udp_ipv4(run, listen):
    srv = listen([{"proto": "udp", "addr": "127.0.0.1"}])
    rows = same_as_ss(run, srv.port, "udp")
    assert rows == {("udp", "127.0.0.1", srv.port, srv.pid)}
    (obj,) = port_json(run, srv.port)
    assert obj["state"] == "UNCONN"


def test_ipv6_tcp_and_udp(run, listen):
    srv = listen([{"proto": "tcp", "addr": "::1"}])
    udp = listen([{"proto": "udp", "addr": "::1", "port": srv.port}])
    rows = same_as_ss(run, srv.port)
    assert rows == {("tcp", "::1", srv.port, srv.pid), ("udp", "::1", srv.port, udp.pid)}


def test_v4_mapped(run, listen):
    srv = listen([{"proto": "tcp", "addr": "::ffff:127.0.0.1"}])
    rows = same_as_ss(run, srv.port)
    assert rows == {("tcp", "::ffff:7f00:1", srv.port, srv.pid)}
    # asked as IPv4, the mapped socket still answers
    (obj,) = port_json(run, f"127.0.0.1:{srv.port}")
    assert obj["pid"] == srv.pid and obj["local"] == "::ffff:127.0.0.1"


def test_dual_stack_wildcard(run, listen):
    dual = listen([{"proto": "tcp", "addr": "::", "v6only": False}])
    only6 = listen([{"proto": "udp", "addr": "::", "v6only": True, "port": dual.port}])
    same_as_ss(run, dual.port)
    # traffic to 127.0.0.1 would reach the dual-stack socket, not the v6-only one
    found = port_json(run, f"127.0.0.1:{dual.port}")
    assert {(o["proto"], o["pid"]) for o in found} == {("tcp", dual.pid)}
    found = port_json(run, f"[::1]:{dual.port}")
    assert {(o["proto"], o["pid"]) for o in found} == {("tcp", dual.pid), ("udp", only6.pid)}


def test_address_filter(run, listen):
    one = listen([{"proto": "tcp", "addr": "127.0.0.1"}])
    two = listen([{"proto": "tcp", "addr": "127.0.0.2", "port": one.port}])
    assert {o["pid"] for o in port_json(run, f"127.0.0.2:{one.port}")} == {two.pid}
    assert {o["pid"] for o in port_json(run, f"127.0.0.1:{one.port}")} == {one.pid}
    assert {o["pid"] for o in port_json(run, one.port)} == {one.pid, two.pid}
    assert port_json(run, f"127.0.0.3:{one.port}", expect=1) == []


def test_forked_children_share_socket(run, listen):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}, {"proto": "udp", "addr": "127.0.0.1"}],
                 fork=2)
    for port in srv.ports:
        rows = same_as_ss(run, port)
        assert {r[3] for r in rows} == srv.pids
    res = run("port", "--pids", srv.port)
    assert res.returncode == 0
    assert [int(x) for x in res.stdout.split()] == sorted(srv.pids)


def test_reuseport_pair(run, listen):
    first = listen([{"proto": "tcp", "addr": "127.0.0.1", "reuseport": True}])
    second = listen([{"proto": "tcp", "addr": "127.0.0.1", "reuseport": True,
                      "port": first.port}])
    udp1 = listen([{"proto": "udp", "addr": "127.0.0.1", "reuseport": True,
                    "port": first.port}])
    udp2 = listen([{"proto": "udp", "addr": "127.0.0.1", "reuseport": True,
                    "port": first.port}])
    rows = same_as_ss(run, first.port)
    assert {(r[0], r[3]) for r in rows} == {("tcp", first.pid), ("tcp", second.pid),
                                            ("udp", udp1.pid), ("udp", udp2.pid)}


@needs_root
def test_other_user(run, listen, rampart):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}],
                 prefix=["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"])
    same_as_ss(run, srv.port)
    (obj,) = port_json(run, srv.port)
    assert (obj["user"], obj["uid"], obj["pid"]) == ("nobody", 65534, srv.pid)
    human = run("port", srv.port)
    assert re.search(rf"tcp\s+127\.0\.0\.1:{srv.port}\s+LISTEN\s+nobody\s+{srv.pid}\s+python",
                     human.stdout), human.stdout


@needs_root
def test_unprivileged_gaps_summarised_once(listen, rampart):
    root_srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}])
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    res = subprocess.run([*nobody, rampart, "port", "--json", str(root_srv.port)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0
    (obj,) = json.loads(res.stdout)
    assert obj["pid"] is None and obj["port"] == root_srv.port  # the socket, not its owner
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rampart: port: could not read"), lines
    res = subprocess.run([*nobody, rampart, "port", "--all-netns", str(root_srv.port)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "network namespace" in lines[0], lines


@pytest.fixture
def netns():
    """A fresh network namespace with loopback up; deleted at teardown."""
    name = f"rp-test-{uuid.uuid4().hex[:10]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@needs_root
def test_other_netns(run, listen, netns):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}, {"proto": "udp", "addr": "::1"}],
                 prefix=["ip", "netns", "exec", netns])
    # our own namespace has no such socket: ss, fuser and lsof stop here
    assert port_json(run, srv.port, expect=1) == []
    found = port_json(run, "--all-netns", srv.port)
    theirs = ss_rows(f"sport = :{srv.port}", netns=netns)
    assert rows_of(found) == theirs
    assert {(o["proto"], o["pid"]) for o in found} == {("tcp", srv.pid)}
    found = port_json(run, "--all-netns", srv.ports[1])
    assert rows_of(found) == ss_rows(f"sport = :{srv.ports[1]}", netns=netns)
    inode = os.stat(f"/run/netns/{netns}").st_ino
    assert {o["netns"] for o in found} == {inode}
    human = run("port", "--all-netns", "tcp", srv.port)
    assert human.returncode == 0
    assert re.search(rf"127\.0\.0\.1:{srv.port}\s+{netns}\s+LISTEN\s+root\s+{srv.pid}\s",
                     human.stdout), human.stdout


def test_json_fields(run, listen):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}])
    (obj,) = port_json(run, "tcp", srv.port)
    assert set(obj) == {"proto", "local", "port", "peer", "peer_port", "state", "pid", "user",
                        "uid", "command", "cmdline", "exe", "unit", "inode", "netns",
                        "netns_name"}
    assert obj["proto"] == "tcp" and obj["local"] == "127.0.0.1" and obj["port"] == srv.port
    assert obj["state"] == "LISTEN" and obj["pid"] == srv.pid
    assert obj["uid"] == os.geteuid() and obj["user"] == pwd.getpwuid(os.geteuid()).pw_name
    assert obj["command"] == open(f"/proc/{srv.pid}/comm").read().strip()
    assert obj["cmdline"].startswith(PY) and "json.loads" in obj["cmdline"]
    assert obj["exe"] == os.readlink(f"/proc/{srv.pid}/exe")
    assert obj["unit"] is None or isinstance(obj["unit"], str)
    assert obj["netns"] == os.stat("/proc/self/ns/net").st_ino


def test_verbose(run, listen):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}])
    res = run("port", "-v", srv.port)
    assert res.returncode == 0
    assert f"exe:     {os.readlink(f'/proc/{srv.pid}/exe')}" in res.stdout
    assert "cmdline: " + PY in res.stdout and "unit:" in res.stdout


def test_all_sockets_on_port(run, listen):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1", "connect": True}])
    listening = port_json(run, srv.port)
    assert [o["state"] for o in listening] == ["LISTEN"]
    every = port_json(run, "--all", "tcp", srv.port)
    # the listener and the accepted connection both have the local port; an earlier
    # test's connection may have left an ownerless TIME-WAIT socket on the same number
    owned = [o for o in every if o["state"] != "TIME-WAIT"]
    assert all(o["pid"] is None for o in every if o["state"] == "TIME-WAIT")
    assert sorted(o["state"] for o in owned) == ["ESTAB", "LISTEN"]
    assert {o["pid"] for o in owned} == {srv.pid}
    out = subprocess.run(["ss", "-tanpH", f"sport = :{srv.port}"], capture_output=True,
                         text=True, check=True).stdout
    assert len(out.splitlines()) == len(every)
    human = run("port", "-a", srv.port).stdout
    assert "PEER" in human and "ESTAB" in human


def test_every_listener_like_ss(run, listen):
    srv = listen([{"proto": "tcp", "addr": "::"}, {"proto": "udp", "addr": "127.0.0.1"}])
    # other programs on the host may open or close sockets in between: retry a few times
    for _ in range(5):
        ours = rows_of(port_json(run))
        theirs = ss_rows()
        if ours == theirs:
            break
    assert ours == theirs
    assert ("tcp", "::", srv.ports[0], srv.pid) in ours


def test_fallback_matches_diag(run, listen):
    srv = listen([{"proto": "tcp", "addr": "::"}, {"proto": "udp", "addr": "127.0.0.1"}],
                 fork=1)
    env = dict(os.environ, RAMPART_PORT_NO_DIAG="1")
    for port in srv.ports:
        diag = port_json(run, port)
        res = run("port", "--json", port, env=env)
        assert res.returncode == 0
        text = json.loads(res.stdout)
        assert rows_of(text) == rows_of(diag) == ss_rows(f"sport = :{port}")


def test_kill(run, listen):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}])
    res = run("port", "--kill", "tcp", srv.port)
    assert res.returncode == 0, res.stderr
    assert srv.proc.wait(timeout=10) == -signal.SIGTERM
    assert port_json(run, srv.port, expect=1) == []


def test_kill_with_signal_and_children(run, listen):
    srv = listen([{"proto": "udp", "addr": "127.0.0.1"}], fork=2)
    res = run("port", "--pids", "--kill=KILL", "udp", srv.port)
    assert res.returncode == 0, res.stderr
    assert {int(x) for x in res.stdout.split()} == srv.pids
    assert srv.proc.wait(timeout=10) == -signal.SIGKILL


def test_not_found(run, listen):
    srv = listen([{"proto": "tcp", "addr": "127.0.0.1"}])
    res = run("port", "udp", srv.port)
    assert (res.returncode, res.stdout, res.stderr) == (1, "", "")
    assert run("port", "--pids", "udp", srv.port).returncode == 1


@pytest.mark.parametrize("args, message", [
    (["0"], "port '0': must be 1..65535"),
    (["70000"], "port '70000': must be 1..65535"),
    (["abc"], "'abc': not a port"),
    (["-5"], "port '-5': must be 1..65535"),
    (["tcp", "-5"], "port '-5': must be 1..65535"),
    (["127.0.0.1:0"], "must be 1..65535"),
    (["127.0.0.1"], "give a port too"),
    (["sctp", "80"], "'sctp': expected tcp, udp or unix"),
    (["tcp", "udp"], "give one protocol"),
    (["tcp", "80", "abc"], "'abc': not a port"),
    (["--kill=NOPE", "80"], "unknown signal 'NOPE'"),
    (["--pids", "--json", "80"], "do not go together"),
    (["--bogus"], "--bogus"),
    (["-x", "80"], "unknown option '-x'"),
])
def test_bad_input(run, args, message):
    res = run("port", *args)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.startswith("rampart: port: ")
    assert message in res.stderr


def test_help(run):
    res = run("port", "--help")
    assert res.returncode == 0 and res.stdout.startswith("usage: rampart port")
    assert run("help", "port").stdout == res.stdout
