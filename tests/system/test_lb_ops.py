"""`rampart lb` operations with real nginx backends: SIGHUP reloads under wrk load, a broken
reload, `rampart lb ctl`, the stats listener, the access log, `rampart up`,
`rampart check-config`, and the PROXY protocol both ways."""
import collections
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from lbutil import (RAMPART, free_port, http_get, lb, listener, parse_response,  # noqa: F401
                    raw_exchange, render_config, server, wait_for, who)
from nginx import nginx, parse_headers_answer  # noqa: F401

NO_CHECK = {"type": "none"}
FAST_CHECK = {"type": "http", "path": "/", "interval": "300ms", "timeout": "300ms",
              "rise": 2, "fall": 2}


def pool(*backends, **kw):
    return [server(b.name, b.addr, **kw) for b in backends]


# ---------------------------------------------------------------- reload

def parse_wrk(out):
    m = re.search(r"(\d+) requests in", out)
    return {
        "requests": int(m.group(1)) if m else 0,
        "non2xx": re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out),
        "socket_errors": re.search(r"Socket errors:.*", out),
    }


def test_sighup_changes_servers_under_load_without_errors(lb, nginx):
    wrk = shutil.which("wrk")
    if not wrk:
        pytest.fail("wrk is not installed (Debian package wrk)")
    s1, s2, s3 = nginx("s1"), nginx("s2"), nginx("s3")
    port = free_port()
    lis = lambda servers: [listener("web", port, servers, check=FAST_CHECK,  # noqa: E731
                                    access_log=False)]
    l = lb(lis(pool(s1, s2)))
    for b in (s1, s2):
        l.wait_health(b.name, "up")

    def served(b):  # requests of clients (health checks send another Host)
        return [e for e in b.access_log() if e["http_host"] == f"127.0.0.1:{port}"]

    proc = subprocess.Popen([wrk, "-t1", "-c20", "-d6s", "--timeout", "5s",
                             f"http://127.0.0.1:{port}/"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.2)
        assert "lb reloaded" in l.reload(lis(pool(s1, s2, s3)))  # add s3
        time.sleep(1.2)
        assert "lb reloaded" in l.reload(lis(pool(s2, s3)))  # remove s1
        time.sleep(1.0)
        s1_after_removal = len(served(s1))
        s3_seen = len(served(s3))
        assert "lb reloaded" in l.reload(lis([server("s2", s2.addr, weight=2),
                                              server("s3", s3.addr)]))  # a weight change
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    w = parse_wrk(out)
    assert w["requests"] > 0, out
    assert not w["non2xx"], out
    assert not w["socket_errors"], out
    assert l.alive()
    assert s3_seen > 0, "the added server got no traffic after the reload"
    assert len(served(s3)) > s3_seen
    assert len(served(s1)) == s1_after_removal, \
        f"the removed server still got {len(served(s1)) - s1_after_removal} requests"
    # and after the load: s2 and s3 only, 2:1
    seen = collections.Counter(who(port) for _ in range(30))
    assert seen == {"s2": 20, "s3": 10}, seen


def test_reload_with_error_keeps_running_config(lb, nginx):
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    good = [listener("web", port, pool(s1, s2), check=NO_CHECK)]
    l = lb(good)
    assert set(who(port) for _ in range(4)) == {"s1", "s2"}
    bad = render_config(good, l.ctl_socket).replace("check:", "balance: bogus\n      check:")
    assert "balance: bogus" in bad
    line = l.reload(text=bad)
    assert "keeping the running configuration" in line, l.log()
    assert re.search(r"lb\.yaml:\d+:\d+", l.log()), l.log()  # the error, with its place
    assert l.alive()
    assert [who(port) for _ in range(6)] in (["s1", "s2"] * 3, ["s2", "s1"] * 3)
    # a listener address already taken by another socket: refused as a whole, kept running
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        two = good + [listener("other", taken.getsockname()[1], pool(s1), check=NO_CHECK)]
        line = l.reload(two)
        assert "keeping the running configuration" in line, l.log()
        assert l.alive() and who(port) in ("s1", "s2")
        assert set(l.show_json()["listeners"][i]["name"]
                   for i in range(len(l.show_json()["listeners"]))) == {"web"}
    finally:
        taken.close()
    # a good reload after the bad ones still works
    assert "lb reloaded" in l.reload([listener("web", port, pool(s2), check=NO_CHECK)])
    assert [who(port) for _ in range(4)] == ["s2"] * 4


def test_reload_new_listener_and_keeps_connection(lb, nginx):
    """A keep-alive client connection survives a reload; a new listener starts listening."""
    s1, s2 = nginx("s1"), nginx("s2")
    port, port2 = free_port(), free_port()
    l = lb([listener("web", port, pool(s1), check=NO_CHECK)])
    from lbutil import connection
    c = connection(port)
    c.request("GET", "/")
    assert c.getresponse().read() == b"s1\n"
    l.reload([listener("web", port, pool(s2), check=NO_CHECK),
              listener("two", port2, pool(s1), check=NO_CHECK)])
    c.request("GET", "/")
    r = c.getresponse()
    assert r.status == 200 and r.read() in (b"s1\n", b"s2\n")
    assert who(port) == "s2"  # a new connection: the new pool
    assert who(port2) == "s1"

    # the kept-alive connection moves to the new pool too (after a moment): s1 is no longer
    # in web's pool, so no request on it may go there
    def on_kept_connection():
        c.request("GET", "/")
        return c.getresponse().read()

    wait_for(lambda: [on_kept_connection() for _ in range(4)] == [b"s2\n"] * 4, 5,
             interval=0.2, what="requests on the kept-alive connection going to the new pool")
    c.close()


# ---------------------------------------------------------------- ctl

def test_ctl_show_disable_enable_weight(lb, nginx):
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    l = lb([listener("web", port, pool(s1, s2), check=NO_CHECK)])
    r = l.ctl("show", "servers")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(re.search(rf"^web\s+s1\s+{re.escape(s1.addr)}\s", ln) for ln in lines), r.stdout
    assert any(re.search(rf"^web\s+s2\s+{re.escape(s2.addr)}\s", ln) for ln in lines), r.stdout
    assert l.ctl("show", "servers", "web").returncode == 0
    data = l.show_json()
    srv = {s["name"]: s for s in data["listeners"][0]["servers"]}
    assert srv["s1"]["address"] == s1.addr and srv["s1"]["admin"] == "ready"
    assert srv["s1"]["weight"] == 1
    r = l.ctl("show", "prometheus")
    assert r.returncode == 0 and "s1" in r.stdout

    for _ in range(4):
        who(port)
    assert l.servers()["s1"]["total"] == 2 and l.servers()["s2"]["total"] == 2

    r = l.ctl("disable", "web/s1")
    assert r.returncode == 0, r.stderr
    assert l.servers()["s1"]["admin"] != "ready"
    assert [who(port) for _ in range(10)] == ["s2"] * 10
    r = l.ctl("enable", "web/s1")
    assert r.returncode == 0, r.stderr
    assert l.servers()["s1"]["admin"] == "ready"
    assert set(who(port) for _ in range(4)) == {"s1", "s2"}

    assert l.ctl("weight", "web/s1", "3").returncode == 0
    assert l.servers()["s1"]["weight"] == 3
    seen = collections.Counter(who(port) for _ in range(40))
    assert 28 <= seen["s1"] <= 32 and seen["s1"] + seen["s2"] == 40, seen
    assert l.ctl("weight", "web/s1", "0").returncode == 0
    assert [who(port) for _ in range(8)] == ["s2"] * 8
    assert l.ctl("weight", "web/s1", "1").returncode == 0
    assert set(who(port) for _ in range(4)) == {"s1", "s2"}


def test_reload_keeps_what_ctl_set(lb, nginx):
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    lis = [listener("web", port, pool(s1, s2), check=NO_CHECK)]
    l = lb(lis)
    assert l.ctl("disable", "web/s1").returncode == 0
    assert l.ctl("weight", "web/s2", "3").returncode == 0
    l.reload(lis)
    srv = l.servers()
    assert srv["s1"]["admin"] != "ready" and srv["s2"]["weight"] == 3, srv
    assert [who(port) for _ in range(6)] == ["s2"] * 6
    # a weight changed in the file wins over the one ctl set
    lis2 = [listener("web", port, [server("s1", s1.addr), server("s2", s2.addr, weight=2)],
                     check=NO_CHECK)]
    l.reload(lis2)
    srv = l.servers()
    assert srv["s2"]["weight"] == 2 and srv["s1"]["admin"] != "ready", srv


def listening_defer_accept(pid, port):
    """TCP_DEFER_ACCEPT of the lb's listening socket on port, read from a copy of its
    descriptor (pidfd_getfd)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(434, pid, 0)  # pidfd_open
    assert pidfd >= 0, ctypes.get_errno()
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                continue
            fd = libc.syscall(438, pidfd, int(name), 0)  # pidfd_getfd
            if fd < 0:
                continue
            s = socket.socket(fileno=fd)
            try:
                if (s.family == socket.AF_INET and s.type == socket.SOCK_STREAM
                        and s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
                        and s.getsockname()[1] == port):
                    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)
            finally:
                s.close()
    finally:
        os.close(pidfd)
    raise AssertionError(f"no listening socket on port {port} in {pid}")


def test_defer_accept_follows_mode_and_key(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    srv = [server("s1", s1.addr)]
    l = lb([listener("web", port, srv, check=NO_CHECK)])
    assert listening_defer_accept(l.pid, port) > 0  # http: on by default
    # the socket is kept across reloads: its option follows the new mode and key
    l.reload([listener("web", port, srv, check=NO_CHECK, mode="tcp")])
    assert listening_defer_accept(l.pid, port) == 0  # tcp: a server may speak first
    l.reload([listener("web", port, srv, check=NO_CHECK, defer_accept=False)])
    assert listening_defer_accept(l.pid, port) == 0
    # a silent client is then taken at once
    before = l.fd_count()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    wait_for(lambda: l.fd_count() > before, what="the silent client accepted")
    c.close()
    l.reload([listener("web", port, srv, check=NO_CHECK)])
    assert listening_defer_accept(l.pid, port) > 0
    assert who(port) == "s1"


def test_ctl_exit_codes(lb, nginx, tmp_path):
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, pool(s1), check=NO_CHECK)])
    ok = l.ctl("show", "servers")
    assert ok.returncode == 0
    # 1: the lb refused the command
    for args in (("disable", "web/nosuch"), ("enable", "nosuch/s1"), ("drain", "web/nosuch"),
                 ("weight", "web/s1", "999"), ("weight", "web/s1", "-1"),
                 ("weight", "web/s1", "many"), ("show", "servers", "nosuch")):
        r = l.ctl(*args)
        assert r.returncode == 1, (args, r.returncode, r.stdout, r.stderr)
        assert r.stderr.strip(), args
    # 2: not a command the lb knows (DESIGN: a usage error), said by the lb itself
    for args in (("frobnicate",), ("disable", "web"), ("show",), ("show", "bogus"),
                 ("weight", "web/s1"), ("drain", "web/s1", "web/s1"), ("enable",)):
        r = l.ctl(*args)
        assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
        assert "usage: " in r.stderr and not r.stdout, (args, r.stderr)
    assert l.servers()["s1"]["weight"] == 1 and l.servers()["s1"]["admin"] == "ready"
    # 2: usage
    r = subprocess.run([RAMPART, "lb", "ctl", "-s", l.ctl_socket], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2, r
    r = subprocess.run([RAMPART, "lb", "ctl", "--bogus", "show", "servers"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, r
    # 3: cannot reach the socket
    r = l.ctl("show", "servers", socket_path=str(tmp_path / "nothing.sock"))
    assert r.returncode == 3, r
    # the socket named by the config (-c)
    r = subprocess.run([RAMPART, "lb", "ctl", "-c", str(l.config), "show", "json"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and json.loads(r.stdout)["listeners"][0]["name"] == "web", r
    # after the lb stops: 3
    assert l.stop() == 0
    r = l.ctl("show", "servers")
    assert r.returncode == 3, r


def test_ctl_drain_lets_requests_in_flight_finish(lb, nginx):
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    l = lb([listener("web", port, pool(s1, s2), check=NO_CHECK)])
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        http_get(port, "/slow?ms=3000", timeout=30)), daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: all(s["active"] == 1 for s in l.servers().values()), 10,
             what="one slow request in flight on each server")
    r = l.ctl("drain", "web/s1")
    assert r.returncode == 0, r.stderr
    assert l.servers()["s1"]["admin"] not in ("ready",)
    assert [who(port) for _ in range(10)] == ["s2"] * 10
    for t in threads:
        t.join(timeout=30)
    assert sorted(r[2] for r in results) == [b"s1\n", b"s2\n"]
    assert all(r[0] == 200 for r in results)
    assert [who(port) for _ in range(4)] == ["s2"] * 4
    assert l.ctl("enable", "web/s1").returncode == 0
    assert set(who(port) for _ in range(4)) == {"s1", "s2"}


# ---------------------------------------------------------------- stats, access log

def test_stats_listener_json_and_metrics(lb, nginx):
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    l = lb([listener("web", port, pool(s1, s2), check=NO_CHECK)], stats=True)
    for _ in range(6):
        who(port)
    http_get(port, "/status/404")
    http_get(port, "/status/404")
    st, headers, body = http_get(l.stats_port, "/stats")
    assert st == 200 and "json" in headers.get("content-type", ""), headers
    data = json.loads(body)
    lis = {x["name"]: x for x in data["listeners"]}
    srv = {s["name"]: s for s in lis["web"]["servers"]}
    assert srv["s1"]["total"] + srv["s2"]["total"] == 8, srv
    assert srv["s1"]["responses"]["4xx"] + srv["s2"]["responses"]["4xx"] == 2
    assert srv["s1"]["responses"]["2xx"] + srv["s2"]["responses"]["2xx"] == 6
    st, headers, body = http_get(l.stats_port, "/metrics")
    text = body.decode()
    assert st == 200 and "text/plain" in headers.get("content-type", ""), headers
    assert "# TYPE" in text
    samples = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert samples and all(re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? \S+$', ln)
                           for ln in samples), text[:2000]
    assert any('server="s1"' in ln and 'listener="web"' in ln for ln in samples), text[:2000]
    assert http_get(l.stats_port, "/nothing-here")[0] == 404


def test_access_log_line_per_request(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, pool(s1), check=NO_CHECK, access_log=True)])
    paths = ["/a", "/b/c", "/status/404", "/d?q=1"]
    for p in paths:
        http_get(port, p, source="127.0.0.3")
    http_get(port, "/e", method="HEAD")
    wait_for(lambda: len(l.access_lines()) >= 5, 10, what="5 access log lines")
    lines = l.access_lines()
    assert len(lines) == 5, l.log()
    for e, p in zip(lines, paths):
        assert e["listener"] == "web" and e["server"] == "s1" and e["method"] == "GET", e
        assert e["path"] == p.split("?")[0] or e["path"] == p, e
        assert e["client"].split(":")[0] == "127.0.0.3", e
    assert [e["status"] for e in lines] == ["200", "200", "404", "200", "200"]
    assert lines[4]["method"] == "HEAD"
    # access-log off: no lines
    port2 = free_port()
    l2 = lb([listener("quiet", port2, pool(s1), check=NO_CHECK, access_log=False)],
            name="quiet")
    http_get(port2, "/x")
    time.sleep(0.3)
    assert not l2.access_lines()


# ---------------------------------------------------------------- rampart up, check-config

def test_rampart_up_starts_the_lb(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    u = lb([listener("web", port, pool(s1), check=NO_CHECK)], verb=("up",))
    assert who(port) == "s1"
    wait_for(lambda: u.ctl("show", "servers").returncode == 0, 10, what="the ctl socket")
    u.proc.send_signal(signal.SIGTERM)
    assert u.proc.wait(timeout=15) == 0
    with pytest.raises(OSError):
        http_get(port, "/", timeout=2)


def test_lb_drops_to_user_once_bound(lb, nginx):
    """Started as root with lb.user, the process runs as that user and still serves (its
    sockets were opened before the drop); `rampart up` keeps root for the other parts."""
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, pool(s1), check=NO_CHECK)], extra={"user": "nobody"})
    wait_for(lambda: "running as user=nobody" in l.log(), 10, what="the privilege drop")
    uids = [ln for ln in open(f"/proc/{l.pid}/status") if ln.startswith("Uid:")][0].split()[1:]
    assert uids == ["65534"] * 4, uids
    assert who(port) == "s1"
    assert l.ctl("show", "servers").returncode == 0
    u = lb([listener("web2", free_port(), pool(s1), check=NO_CHECK)], name="up", verb=("up",),
           extra={"user": "nobody"})
    uids = [ln for ln in open(f"/proc/{u.pid}/status") if ln.startswith("Uid:")][0].split()[1:]
    assert uids == ["0"] * 4, uids


def test_lb_unknown_user_refuses_to_run(tmp_path, nginx):
    """lb.user naming no account: rampart lb does not go on as root, it exits 1 and says why."""
    s1 = nginx("s1")
    cfg = tmp_path / "lb.yaml"
    cfg.write_text(f"""lb:
  user: no-such-user-here
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:{free_port()}
      servers:
        - {{ name: s1, address: {s1.addr} }}
""")
    r = subprocess.run([RAMPART, "lb", "-c", str(cfg)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 1, r
    assert "cannot drop privileges user=no-such-user-here" in r.stderr, r.stderr


def test_process_metrics_endpoint_has_lb_series(tmp_path, nginx):
    """metrics.listen (the process's Prometheus endpoint) carries the lb's server series too."""
    s1 = nginx("s1")
    port, mport = free_port(), free_port()
    cfg = tmp_path / "lb.yaml"
    cfg.write_text(f"""metrics:
  listen: 127.0.0.1:{mport}
lb:
  threads: 1
  ctl-socket: {tmp_path}/lb.sock
  listeners:
    - name: web
      bind: 127.0.0.1:{port}
      check: {{ type: none }}
      servers:
        - {{ name: s1, address: {s1.addr} }}
""")
    p = subprocess.Popen([RAMPART, "lb", "-c", str(cfg)], stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: http_get(mport, "/metrics", timeout=2)[0] == 200 if
                 _port_open(mport) else False, 10, what="the metrics endpoint")
        assert who(port) == "s1"
        st, _, body = http_get(mport, "/metrics")
        text = body.decode() if isinstance(body, bytes) else body
        assert 'rampart_lb_server_up{listener="web",server="s1"} 1' in text, text
        assert "rampart_start_time_seconds" in text
    finally:
        p.terminate()
        p.wait(timeout=10)


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


BAD_CONFIGS = [
    # (id, config text, the message's substring, exact line); the bad line is marked <<<;
    # rules on a whole listener may point at its entry or the servers key near it
    ("bogus-balance", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      balance: bogus  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "bogus", True),
    ("server-without-address", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
        - { name: s2 }  # <<<
""", "address", True),
    ("duplicate-server-names", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
        - { name: s1, address: 127.0.0.1:9002 }  # <<<
""", "s1", True),
    ("header-without-hash-header", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web  # <<<
      bind: 127.0.0.1:18080
      balance: header
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "hash-header", False),
    ("bad-server-address", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: "127.0.0.1" }  # <<<
""", "address", True),
    ("bad-expect-status", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      check: { type: http, expect-status: "2xx" }  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "expect-status", True),
    ("send-check-without-send", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      check: { type: send }  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "send", True),
    ("check-timeout-over-interval", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      check: { type: tcp, interval: 1s, timeout: 2s }  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "timeout", True),
    ("bogus-check-type", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      check: { type: ping }  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "ping", True),
    ("weight-over-256", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001, weight: 300 }  # <<<
""", "weight", True),
    ("no-servers", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers: []  # <<<
""", "server", False),
    ("tcp-with-uri-balance", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      mode: tcp
      balance: uri  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "balance", True),
    ("bad-mode", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      mode: udp  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "udp", True),
    ("negative-threads", """\
lb:
  threads: -1  # <<<
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "threads", True),
    ("bad-duration", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      timeout: { connect: 5 parsecs }  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "connect", True),
    ("bad-defer-accept", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      defer-accept: sometimes  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "sometimes", True),
    ("bad-smart-accept", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      smart-accept: 2  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "smart-accept", True),
    ("bad-io-uring", """\
lb:
  ctl-socket: ""
  io-uring: sometimes  # <<<
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "io-uring", True),
    ("bad-busy-poll-word", """\
lb:
  ctl-socket: ""
  busy-poll: fast  # <<<
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "busy-poll", True),
    ("busy-poll-negative", """\
lb:
  ctl-socket: ""
  busy-poll: -1  # <<<
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "busy-poll", True),
    ("busy-poll-too-long", """\
lb:
  ctl-socket: ""
  busy-poll: 10001  # <<<
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "busy-poll", True),
    ("bad-send-proxy", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001, send-proxy: v3 }  # <<<
""", "v3", True),
    ("bad-check-send-proxy", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      check: { type: http, port: 9002, send-proxy: always }  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "always", True),
    ("bad-accept-proxy-cidr", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      accept-proxy: [ 10.0.0.0/33 ]  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "accept-proxy", True),
    # names `lb ctl` could not address as LISTENER/SERVER
    ("server-name-with-slash", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: a/b, address: 127.0.0.1:9001 }  # <<<
""", "'/'", True),
    ("listener-name-with-slash", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web/1  # <<<
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "'/'", True),
    ("listener-name-with-space", """\
lb:
  ctl-socket: ""
  listeners:
    - name: "web one"  # <<<
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "blanks", True),
    ("server-name-with-control-byte", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: "s\\x01", address: 127.0.0.1:9001 }  # <<<
""", "control", True),
    ("server-name-with-tab", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: "s\\t1", address: 127.0.0.1:9001 }  # <<<
""", "blanks", True),
    ("empty-server-name", """\
lb:
  ctl-socket: ""
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: "", address: 127.0.0.1:9001 }  # <<<
""", "empty", True),
    ("relative-ctl-socket", """\
lb:
  ctl-socket: run/lb.sock  # <<<
  listeners:
    - name: web
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "absolute", True),
    ("same-bind-twice", """\
lb:
  ctl-socket: ""
  listeners:
    - name: a
      bind: 127.0.0.1:18080
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
    - name: b
      bind: 127.0.0.1:18080  # <<<
      servers:
        - { name: s1, address: 127.0.0.1:9001 }
""", "bind", True),
]


@pytest.mark.parametrize("text,needle,exact", [c[1:] for c in BAD_CONFIGS],
                         ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_reports_bad_lb_config(run, tmp_path, text, needle, exact):
    path = tmp_path / "rampart.yaml"
    path.write_text(text)
    bad_line = [i + 1 for i, ln in enumerate(text.splitlines()) if "# <<<" in ln][0]
    r = run("check-config", path)
    assert r.returncode == 2, r
    out = r.stdout + r.stderr
    m = re.search(rf"{re.escape(str(path))}:(\d+):(\d+): (.*)", out)
    assert m, out
    line = int(m.group(1))
    if exact:
        assert line == bad_line, out
    else:
        assert abs(line - bad_line) <= 2, out
    assert needle in m.group(3), out
    good = path.with_name("good.yaml")
    good.write_text("lb:\n  ctl-socket: \"\"\n  listeners:\n    - name: web\n"
                    "      bind: 127.0.0.1:18080\n      servers:\n"
                    "        - { name: s1, address: 127.0.0.1:9001 }\n")
    assert run("check-config", good).returncode == 0


# ---------------------------------------------------------------- PROXY protocol

def proxy_backend(nginx, name):
    """An nginx backend with a second listen port that expects the PROXY protocol and answers
    /pp with the address it conveyed."""
    pp = free_port()
    b = nginx(name, extra=f"""
        listen 127.0.0.1:{pp} proxy_protocol;
        location = /pp {{
            return 200 "pp=$proxy_protocol_addr port=$proxy_protocol_port remote=$remote_addr\\n";
        }}""")
    return b, pp


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_send_proxy_conveys_client_address(lb, nginx, version):
    b, pp = proxy_backend(nginx, "p1")
    port = free_port()
    lb([listener("web", port, [server("p1", f"127.0.0.1:{pp}", send_proxy=version)],
                 check=NO_CHECK)])
    from lbutil import connection
    c = connection(port, source="127.0.0.42")
    c.request("GET", "/pp")
    r = c.getresponse()
    body = r.read().decode()
    src_port = c.sock.getsockname()[1]
    assert r.status == 200, body
    assert body.startswith("pp=127.0.0.42 "), body
    assert f"port={src_port} " in body, (body, src_port)
    # the PROXY header is sent once per server connection: a second request on it is fine
    c.request("GET", "/pp")
    r = c.getresponse()
    assert r.status == 200 and r.read().decode().startswith("pp=127.0.0.42 ")
    c.close()


def test_send_proxy_tcp_mode(lb, nginx):
    b, pp = proxy_backend(nginx, "p1")
    port = free_port()
    lb([listener("raw", port, [server("p1", f"127.0.0.1:{pp}", send_proxy="v1")],
                 mode="tcp", check=NO_CHECK)])
    out = raw_exchange(port, b"GET /pp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                       source="127.0.0.43")
    st, _, body, _ = parse_response(out)
    assert st == 200 and body.startswith(b"pp=127.0.0.43 "), out


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_checks_send_proxy_header(lb, nginx, version):
    """A server behind send-proxy refuses requests without the header, checks included."""
    b, pp = proxy_backend(nginx, "p1")
    port = free_port()
    check = {"type": "http", "path": "/pp", "interval": "200ms", "timeout": "200ms",
             "rise": 1, "fall": 1}
    inst = lb([listener("web", port, [server("p1", f"127.0.0.1:{pp}", send_proxy=version),
                                      server("plain", f"127.0.0.1:{pp}")], check=check)])
    # the same listener without a PROXY header: nginx drops the connection, the check fails
    inst.wait_health("plain", "down")
    before = len(b.access_log())
    wait_for(lambda: len(b.access_log()) >= before + 3, what="three more checks")
    srv = inst.servers()
    assert srv["p1"]["health"] == "up", srv
    assert "status 200" in srv["p1"]["check"], srv
    assert not srv["plain"]["check"].startswith("ok"), srv


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_check_send_proxy_on_own_port(lb, nginx, version):
    """A check on its own port sends a PROXY header only when its send-proxy asks for one
    (haproxy's check-send-proxy); by default (auto) it follows haproxy's rule and sends none."""
    b, pp = proxy_backend(nginx, "p1")
    check = {"type": "http", "path": "/pp", "interval": "200ms", "timeout": "200ms",
             "rise": 1, "fall": 1, "port": pp}
    inst = lb([listener("forced", free_port(), [server("p1", f"127.0.0.1:{b.port}")],
                        check=dict(check, **{"send-proxy": version})),
               listener("auto", free_port(), [server("p1", f"127.0.0.1:{b.port}")],
                        check=check)])
    inst.wait_health("p1", "down", lis="auto")
    before = len(b.access_log())
    wait_for(lambda: len(b.access_log()) >= before + 3, what="three more checks")
    forced = inst.servers("forced")["p1"]
    assert forced["health"] == "up", forced
    assert "status 200" in forced["check"], forced
    # nginx answered them on its proxy_protocol port: it had read a valid header first
    assert any(e["request"].startswith("GET /pp ") and e["status"] == "200"
               for e in b.access_log()[before:]), b.access_log()[before:]


def proxy_v2(src, dst, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack(">H", len(addrs)) + addrs


REQ = b"GET /headers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize("header", [
    b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n",
    proxy_v2("203.0.113.7", "127.0.0.1", 5555, 80),
], ids=["v1", "v2"])
def test_accept_proxy_from_trusted_peer(lb, nginx, header):
    s1 = nginx("s1")
    port = free_port()
    lb([listener("web", port, pool(s1), check=NO_CHECK, accept_proxy=["127.0.0.1/32"])])
    out = raw_exchange(port, header + REQ, source="127.0.0.1")
    st, _, body, _ = parse_response(out)
    assert st == 200, out
    h = parse_headers_answer(body)
    assert h["x-forwarded-for"] == "203.0.113.7", h
    assert h["forwarded"] == "for=203.0.113.7;proto=http", h


def test_accept_proxy_not_from_untrusted_peer(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    lb([listener("web", port, pool(s1), check=NO_CHECK, accept_proxy=["127.0.0.1/32"])])
    before = len(s1.access_log())
    out = raw_exchange(port, b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n" + REQ,
                       source="127.0.0.2")
    assert out.startswith(b"HTTP/1.1 400"), out
    # a request without a PROXY header from that peer is served with its own address
    out = raw_exchange(port, REQ, source="127.0.0.2")
    st, _, body, _ = parse_response(out)
    assert st == 200 and parse_headers_answer(body)["x-forwarded-for"] == "127.0.0.2"
    # nginx writes its log line after the response: wait for it, then no other request came
    wait_for(lambda: len(s1.access_log()) > before, 5, what="the access log line")
    assert [e["http_x_forwarded_for"] for e in s1.access_log()[before:]] == ["127.0.0.2"]


# ---------------------------------------------------------------- operational defects

def busy_socket(reuseport=False):
    """A socket of this process listening on a free loopback port."""
    s = socket.socket()
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def test_second_lb_on_same_listener_refuses_to_start(lb, nginx, tmp_path):
    """SO_REUSEPORT would let a second `rampart lb` with the same listener (same user) take part
    of its traffic unseen: it exits 1 and names the address instead."""
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    first = lb([listener("web", port, pool(s1), check=NO_CHECK)])
    cfg = tmp_path / "second.yaml"
    cfg.write_text(render_config([listener("web", port, pool(s2), check=NO_CHECK)],
                                 str(tmp_path / "second.sock")))
    p = subprocess.Popen([RAMPART, "lb", "-c", str(cfg)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate(timeout=10)
        pytest.fail(f"the second lb is running on the first one's address:\n{out}")
    assert p.returncode == 1, out
    assert f"127.0.0.1:{port}" in out and "in use" in out, out
    assert not os.path.exists(tmp_path / "second.sock")
    # the first keeps all of the traffic, and its own reload still reuses its sockets
    assert [who(port) for _ in range(20)] == ["s1"] * 20
    assert "lb reloaded" in first.reload([listener("web", port, pool(s1), check=NO_CHECK)])
    assert [who(port) for _ in range(4)] == ["s1"] * 4
    # a plain socket with SO_REUSEPORT of another process counts as well
    other = busy_socket(reuseport=True)
    try:
        cfg.write_text(render_config([listener("web", other.getsockname()[1], pool(s2),
                                               check=NO_CHECK)], str(tmp_path / "third.sock")))
        r = subprocess.run([RAMPART, "lb", "-c", str(cfg)], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1 and f"127.0.0.1:{other.getsockname()[1]}" in r.stderr, r
    finally:
        other.close()


def metric(port, name):
    st, _, body = http_get(port, "/metrics")
    assert st == 200
    for ln in body.decode().splitlines():
        if ln.split(" ")[0] == name:
            return float(ln.split(" ")[1])
    raise AssertionError(f"no {name} in\n{body.decode()}")


def test_failed_reload_changes_nothing(nginx, tmp_path):
    """A reload that cannot be applied whole (a busy listener, stats or ctl address) keeps
    everything as it was: the lb's pools, the log level, the stats listener and ctl socket;
    the failure is logged once and counted, and "reloaded" is never logged."""
    from lbutil import Lb
    s1, s2 = nginx("s1"), nginx("s2")
    port, mport = free_port(), free_port()
    lis = [listener("web", port, pool(s1), check=NO_CHECK)]
    inst = Lb(tmp_path / "lb", lis, stats=True)

    def text(listeners, level="info", stats_port=inst.stats_port, ctl=inst.ctl_socket):
        return (f"log:\n  level: {level}\nmetrics:\n  listen: 127.0.0.1:{mport}\n"
                + render_config(listeners, ctl, stats_port, extra=inst.extra))

    inst.write(text=text(lis))
    inst.start()
    try:
        busy = busy_socket()
        bad = [
            # a new listener on a busy address, with a quieter log level
            text(lis + [listener("two", busy.getsockname()[1], pool(s2), check=NO_CHECK)],
                 level="error"),
            # the stats listener moved to a busy address
            text([listener("web", port, pool(s2), check=NO_CHECK)],
                 stats_port=busy.getsockname()[1]),
            # the ctl socket moved where it cannot be made (its directory is a file)
            text([listener("web", port, pool(s2), check=NO_CHECK)],
                 ctl=str(inst.config) + "/lb.sock"),
        ]
        try:
            for n, t in enumerate(bad, 1):
                line = inst.reload(text=t)
                assert "lb reload failed, keeping the running configuration" in line, line
                # the counter is written in the same turn as every line of that reload
                wait_for(lambda: metric(mport, "rampart_config_reload_failures_total") == n,
                         10, what=f"{n} reload failures counted")
                assert metric(mport, "rampart_config_reloads_total") == n
        finally:
            busy.close()
        log = inst.log()
        assert "reloaded" not in log, log
        assert len([ln for ln in log.splitlines() if "reload failed" in ln]) == 3, log
        assert [who(port) for _ in range(4)] == ["s1"] * 4
        assert http_get(inst.stats_port, "/stats")[0] == 200
        assert [s["name"] for s in inst.show_json()["listeners"][0]["servers"]] == ["s1"]
        # the log level is still info: a request writes its access line
        wait_for(lambda: len(inst.access_lines()) >= 4, 10, what="access lines at info")
        # a good reload after them applies it all
        assert "lb reloaded" in inst.reload(text=text([listener("web", port, pool(s2),
                                                                check=NO_CHECK)]))
        wait_for(lambda: "reloaded config=" in inst.log(), 10, what="the process's line")
        assert [who(port) for _ in range(4)] == ["s2"] * 4
        assert metric(mport, "rampart_config_reload_failures_total") == 3
    finally:
        assert inst.stop() == 0, inst.log()


def test_ctl_reaches_the_lb_when_the_file_has_errors(lb, nginx, tmp_path):
    """The running lb keeps its ctl socket while its file is being edited: `lb ctl -c FILE`
    reads lb.ctl-socket alone when the rest has errors (and says so)."""
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, pool(s1), check=NO_CHECK)])
    good = l.config.read_text()
    broken = good.replace("check:", "balance: bogus\n      check:")
    assert broken != good
    l.config.write_text(broken)
    r = subprocess.run([RAMPART, "lb", "ctl", "-c", str(l.config), "show", "json"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["listeners"][0]["name"] == "web"
    assert "error" in r.stderr and l.ctl_socket in r.stderr, r.stderr
    # without the key, the default socket; a bad key itself is an input error (2)
    l.config.write_text(broken.replace(f"ctl-socket: {l.ctl_socket}", "ctl-socket: rel.sock"))
    r = subprocess.run([RAMPART, "lb", "ctl", "-c", str(l.config), "show", "json"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "absolute" in r.stderr, r
    l.config.write_text("lb: [ not yaml\n")
    r = subprocess.run([RAMPART, "lb", "ctl", "-c", str(l.config), "show", "json"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and r.stderr.strip(), r
    l.config.write_text(good)


def test_ctl_socket_belongs_to_lb_user(nginx):
    """With lb.user the socket is given to that user before the drop: the balancer's own
    user can use `lb ctl` (root still can); others cannot."""
    import tempfile
    from lbutil import Lb
    s1 = nginx("s1")
    port = free_port()
    base = tempfile.mkdtemp(prefix="rampart-ops-", dir="/tmp")  # nobody can reach it
    os.chmod(base, 0o755)
    inst = Lb(base, [listener("web", port, pool(s1), check=NO_CHECK)],
              extra={"user": "nobody"})
    try:
        inst.start()
        wait_for(lambda: "running as user=nobody" in inst.log(), 10, what="the drop")
        r = subprocess.run([RAMPART, "lb", "ctl", "-s", inst.ctl_socket, "show", "servers"],
                           capture_output=True, text=True, timeout=20, user="nobody")
        assert r.returncode == 0 and "s1" in r.stdout, r
        st = os.stat(inst.ctl_socket)
        assert st.st_uid == 65534 and (st.st_mode & 0o077) == 0, oct(st.st_mode)
        assert inst.ctl("disable", "web/s1").returncode == 0  # root
        assert inst.servers()["s1"]["admin"] == "maint"
    finally:
        assert inst.stop() == 0, inst.log()
        shutil.rmtree(base, ignore_errors=True)


def ctl_raw(path, data, timeout=10, half_close=False):
    """data sent on one connection to the ctl socket -> all of the reply, to the close."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    out = b""
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    finally:
        s.close()
    return out


def test_ctl_second_command_on_a_connection_is_refused(lb, nginx):
    """One command per connection: a second line is answered with an error and nothing is run
    (a script must not find half of its commands done), never dropped silently."""
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    l = lb([listener("web", port, pool(s1, s2), check=NO_CHECK)])
    out = ctl_raw(l.ctl_socket, b"disable web/s1\ndisable web/s2\n")
    assert out.startswith(b"error: usage: one command per connection"), out
    assert out.count(b"\n") == 1, out
    assert {s["admin"] for s in l.servers().values()} == {"ready"}
    # a blank line after the command, or CRLF, is still one command
    assert ctl_raw(l.ctl_socket, b"disable web/s1\r\n\r\n") == b"ok\n"
    assert l.servers()["s1"]["admin"] == "maint"
    # a last line without LF ends with the client's half-close
    assert ctl_raw(l.ctl_socket, b"enable web/s1", half_close=True) == b"ok\n"
    assert l.servers()["s1"]["admin"] == "ready"
