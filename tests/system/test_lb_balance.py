"""`rampart lb` with real nginx backends: balancing algorithms and health.

Each test starts its own nginx backends (tests/system/nginx.py) and its own `rampart lb -c
FILE` on free 127.0.0.1 ports; the server that answered is read from the body ("NAME\\n") or
the X-Server header. Nothing asserts on timing: conditions are awaited by bounded polling.
"""
import collections
import socket
import threading
import time

import pytest

from lbutil import (free_port, http_get, lb, listener, render_config, server,  # noqa: F401
                    wait_for, who)
from nginx import nginx  # noqa: F401

NO_CHECK = {"type": "none"}
FAST_CHECK = {"type": "http", "path": "/", "interval": "300ms", "timeout": "300ms",
              "rise": 2, "fall": 2}


def backends(nginx, n):
    return [nginx(f"s{i + 1}") for i in range(n)]


def test_roundrobin_smooth_weighted_order(lb, nginx):
    a, b, c = nginx("a"), nginx("b"), nginx("c")
    port = free_port()
    lb([listener("web", port, [server("a", a.addr, weight=5), server("b", b.addr, weight=1),
                               server("c", c.addr, weight=1)],
                 balance="roundrobin", check=NO_CHECK)])
    seq = [who(port) for _ in range(21)]
    # nginx's smooth weighted round-robin for 5,1,1: a a b a c a a, over and over
    assert seq == list("aabacaa") * 3


THREADS = [pytest.param(2, id="threads2"), pytest.param(4, id="threads4"),
           pytest.param(None, id="threads-default")]


@pytest.mark.parametrize("mode", ["http", "tcp"])
@pytest.mark.parametrize("threads", THREADS)
def test_roundrobin_exact_across_workers(lb, nginx, threads, mode):
    """Sequential new connections land on whichever worker the kernel picks (SO_REUSEPORT);
    the order is the listener's all the same, as HAProxy's is."""
    a, b = nginx("a"), nginx("b")
    p1, p2 = free_port(), free_port()
    l = lb([listener("even", p1, [server("a", a.addr), server("b", b.addr)], mode=mode,
                     check=NO_CHECK),
            listener("weighted", p2, [server("a", a.addr, weight=3),
                                      server("b", b.addr, weight=1)], mode=mode,
                     check=NO_CHECK)], threads=threads)
    if mode == "tcp":
        # the start-up probe of each port is a tcp connection too: it takes a turn, and a
        # worker still starting may accept it late, so it must be through before we count
        wait_for(lambda: len(l.access_lines()) >= 2, what="the probes' access lines")
    seq = "".join(who(p1) for _ in range(8))
    assert sorted(seq[:2]) == ["a", "b"] and seq == seq[:2] * 4, seq
    seq = "".join(who(p2) for _ in range(16))
    # smooth 3:1 is a a b a: whatever the phase, every 4 in a row hold exactly one b
    assert all(seq[i:i + 4].count("b") == 1 for i in range(len(seq) - 3)), seq
    assert seq == seq[:4] * 4, seq


@pytest.mark.parametrize("threads", THREADS)
def test_roundrobin_skips_a_server_its_check_took_out(lb, nginx, threads):
    s = backends(nginx, 3)
    port = free_port()
    l = lb([listener("web", port, [server(x.name, x.addr) for x in s], check=FAST_CHECK)],
           threads=threads)
    for x in s:
        l.wait_health(x.name, "up")
    s[1].stop()
    l.wait_health("s2", "down")
    seq = [who(port) for _ in range(8)]
    # the other two alternate exactly, whichever comes first
    assert sorted(seq[:2]) == ["s1", "s3"] and seq == seq[:2] * 4, seq
    s[1].start()
    l.wait_health("s2", "up")
    seq = [who(port) for _ in range(9)]
    assert all(sorted(seq[i:i + 3]) == ["s1", "s2", "s3"] for i in range(0, 9, 3)), seq


def test_roundrobin_worker_scope_is_opt_in(lb, nginx, run, tmp_path):
    """balance-scope: worker is accepted (each worker its own position); a bad value is not."""
    a, b = nginx("a"), nginx("b")
    port = free_port()
    lb([listener("web", port, [server("a", a.addr), server("b", b.addr)], check=NO_CHECK,
                 **{"balance-scope": "worker"})], threads=1)
    assert "".join(who(port) for _ in range(4)) == "abab"
    bad = tmp_path / "bad.yaml"
    bad.write_text(render_config([listener("web", free_port(), [server("a", a.addr)],
                                           **{"balance-scope": "thread"})], tmp_path / "s"))
    r = run("check-config", "-c", bad)
    assert r.returncode != 0 and "balance-scope" in r.stderr, r.stderr


def test_roundrobin_keepalive_requests_rotate(lb, nginx):
    """On one client connection each request is balanced on its own."""
    a, b = nginx("a"), nginx("b")
    port = free_port()
    lb([listener("web", port, [server("a", a.addr), server("b", b.addr)], check=NO_CHECK)])
    from lbutil import connection
    c = connection(port)
    seen = []
    for _ in range(6):
        c.request("GET", "/")
        r = c.getresponse()
        seen.append(r.read().decode().strip())
    c.close()
    assert seen == ["a", "b"] * 3


def test_random_shares_by_weight(lb, nginx):
    a, b = nginx("a"), nginx("b")
    port = free_port()
    lb([listener("web", port, [server("a", a.addr, weight=3), server("b", b.addr, weight=1)],
                 balance="random", check=NO_CHECK)])
    n = 400
    counts = collections.Counter(who(port) for _ in range(n))
    # expected 300:100; binomial sd ~8.7, bounds are about 4 sd wide
    assert 265 <= counts["a"] <= 335, counts
    assert counts["a"] + counts["b"] == n


def test_random_two_uses_every_server(lb, nginx):
    s = backends(nginx, 3)
    port = free_port()
    lb([listener("web", port, [server(x.name, x.addr) for x in s], balance="random-two",
                 check=NO_CHECK)])
    counts = collections.Counter(who(port) for _ in range(150))
    # equal weights, sequential requests (none in flight): all get a fair share
    assert sum(counts.values()) == 150 and all(counts[x.name] >= 20 for x in s), counts


class SlowBackend:
    """A stdlib HTTP backend answering "NAME\n" after a delay (a slow server for ewma)."""

    def __init__(self, name, delay):
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                time.sleep(delay)
                body = f"{name}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Server", name)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.addr = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_ewma_avoids_the_slow_server(lb, nginx):
    a, b = nginx("a"), nginx("b")
    slow = SlowBackend("slow", 0.15)
    try:
        port = free_port()
        lb([listener("web", port, [server("a", a.addr), server("b", b.addr),
                                   server("slow", slow.addr)], balance="ewma", check=NO_CHECK)])
        counts = collections.Counter(who(port) for _ in range(150))
    finally:
        slow.close()
    assert sum(counts.values()) == 150
    # random-two would give it about a third (50); its latency makes it the costly choice
    assert counts["slow"] < 20, counts
    assert counts["a"] > 0 and counts["b"] > 0, counts


def _active(l):
    return {k: v["active"] for k, v in l.servers().items()}


def test_leastconn_new_requests_go_to_least_loaded(lb, nginx):
    s = backends(nginx, 3)
    port = free_port()
    l = lb([listener("web", port, [server(x.name, x.addr) for x in s], balance="leastconn",
                     check=NO_CHECK, timeout={"server": "30s"})])
    results = []

    def slow():
        results.append(http_get(port, "/slow?ms=6000", timeout=30))

    threads = []
    try:
        # two slow requests held: each on a different server (the least loaded one)
        for k in (1, 2):
            t = threading.Thread(target=slow, daemon=True)
            t.start()
            threads.append(t)
            wait_for(lambda: sum(_active(l).values()) == k, 10, what=f"{k} requests in flight")
        active = _active(l)
        assert sorted(active.values()) == [0, 1, 1], active
        idle = [name for name, n in active.items() if n == 0][0]
        # short requests while those are held: every one goes to the idle server
        seen = collections.Counter(who(port) for _ in range(15))
        assert seen == {idle: 15}, (seen, active)
        # three more slow ones: 2 in flight on each server
        for k in (3, 4, 5, 6):
            t = threading.Thread(target=slow, daemon=True)
            t.start()
            threads.append(t)
            wait_for(lambda: sum(_active(l).values()) == k, 10, what=f"{k} requests in flight")
            assert max(_active(l).values()) - min(_active(l).values()) <= 1, _active(l)
        assert sorted(_active(l).values()) == [2, 2, 2]
    finally:
        for t in threads:
            t.join(timeout=40)
    assert len(results) == 6 and all(r[0] == 200 for r in results)


CLIENTS = [f"127.0.0.{i}" for i in range(2, 202)]  # 200 client addresses (127/8 is loopback)


def _map_clients(port, clients=CLIENTS):
    return {c: who(port, source=c) for c in clients}


@pytest.mark.parametrize("removal", ["disable", "stop"])
def test_source_sticky_and_minimal_disruption(lb, nginx, removal):
    s = backends(nginx, 4)
    port = free_port()
    check = FAST_CHECK if removal == "stop" else NO_CHECK
    l = lb([listener("web", port, [server(x.name, x.addr) for x in s], balance="source",
                     check=check)])
    if removal == "stop":
        for x in s:
            l.wait_health(x.name, "up")
    before = _map_clients(port)
    counts = collections.Counter(before.values())
    assert len(counts) == 4 and min(counts.values()) >= 20, counts  # spread over all four
    again = _map_clients(port, CLIENTS[::3])  # same address, same server
    assert all(before[c] == again[c] for c in again), \
        [(c, before[c], again[c]) for c in again if before[c] != again[c]]
    # one connection, several requests: the same server too
    from lbutil import connection
    conn = connection(port, source=CLIENTS[7])
    for _ in range(3):
        conn.request("GET", "/")
        assert conn.getresponse().read().decode().strip() == before[CLIENTS[7]]
    conn.close()

    gone = "s3"
    if removal == "disable":
        r = l.ctl("disable", f"web/{gone}")
        assert r.returncode == 0, r.stderr
    else:
        s[2].stop()
        l.wait_health(gone, "down")
    after = _map_clients(port)
    assert gone not in after.values()
    moved = [c for c in CLIENTS if after[c] != before[c]]
    assert len(moved) <= (1 / 4 + 0.05) * len(CLIENTS), \
        (len(moved), collections.Counter(before[c] for c in moved))
    # every client of the removed server moved
    assert {c for c in CLIENTS if before[c] == gone} <= set(moved)


def test_uri_hash_sticky(lb, nginx):
    s = backends(nginx, 3)
    port = free_port()
    lb([listener("web", port, [server(x.name, x.addr) for x in s], balance="uri",
                 check=NO_CHECK)])
    paths = [f"/item/{i}" for i in range(40)]
    first = {p: who(port, p) for p in paths}
    assert len(set(first.values())) == 3, collections.Counter(first.values())
    for rnd in range(2):
        for p in paths:
            assert who(port, p) == first[p], p
    # the query is not part of the key
    for p in paths[:10]:
        assert who(port, f"{p}?x=1") == first[p]
        assert who(port, f"{p}?y=2&z=3") == first[p]


def test_header_hash_sticky(lb, nginx):
    s = backends(nginx, 3)
    port = free_port()
    lb([listener("web", port, [server(x.name, x.addr) for x in s], balance="header",
                 hash_header="X-User", check=NO_CHECK)])
    users = [f"user-{i}" for i in range(40)]
    first = {u: who(port, headers={"X-User": u}) for u in users}
    assert len(set(first.values())) == 3, collections.Counter(first.values())
    for _ in range(2):
        for u in users:
            # a different source address does not matter: the header is the key
            assert who(port, headers={"X-User": u}, source="127.0.0.9") == first[u], u
    # without the header: the source address decides (sticky too)
    for src in ("127.0.0.20", "127.0.0.21", "127.0.0.22"):
        w = who(port, source=src)
        assert all(who(port, source=src) == w for _ in range(3))


def test_health_stopped_backend_out_then_back(lb, nginx):
    s = backends(nginx, 3)
    port = free_port()
    l = lb([listener("web", port, [server(x.name, x.addr) for x in s], check=FAST_CHECK)])
    for x in s:
        l.wait_health(x.name, "up")
    assert set(who(port) for _ in range(9)) == {"s1", "s2", "s3"}
    s[1].stop()
    l.wait_health("s2", "down")
    # then no request fails and none goes to it
    seen = collections.Counter(who(port) for _ in range(40))
    assert "s2" not in seen and sum(seen.values()) == 40, seen
    s[1].start()
    l.wait_health("s2", "up")
    seen = collections.Counter(who(port) for _ in range(30))
    assert seen["s2"] >= 5 and sum(seen.values()) == 30, seen
    assert l.log_lines("server down") and "s2" in "".join(l.log_lines("server down"))


def test_health_check_expect_status_and_body(lb, nginx):
    """A server whose check answers a status outside expect-status (or lacks expect-body) is
    down; the others serve."""
    s = backends(nginx, 2)
    port = free_port()
    l = lb([listener("web", port, [server(x.name, x.addr) for x in s],
                     check={"type": "http", "path": "/", "interval": "200ms",
                            "timeout": "150ms", "rise": 1, "fall": 1,
                            "expect-status": 200, "expect-body": "s1"})])
    l.wait_health("s1", "up")
    l.wait_health("s2", "down")
    assert set(who(port) for _ in range(10)) == {"s1"}


def test_all_down_http_503_and_log(lb, nginx):
    s = backends(nginx, 2)
    port = free_port()
    l = lb([listener("web", port, [server(x.name, x.addr) for x in s], check=FAST_CHECK)])
    assert who(port) in ("s1", "s2")
    for x in s:
        x.stop()
    for x in s:
        l.wait_health(x.name, "down")
    for _ in range(3):
        status, _, body = http_get(port, "/")
        assert status == 503, body
    wait_for(lambda: l.log_lines("no server available"), 5, what="'no server available' log")
    # back up: served again
    s[0].start()
    l.wait_health("s1", "up")
    assert who(port) == "s1"


def test_all_down_tcp_connection_closed(lb, nginx):
    s = backends(nginx, 2)
    port = free_port()
    l = lb([listener("raw", port, [server(x.name, x.addr) for x in s], mode="tcp",
                     check={"type": "tcp", "interval": "200ms", "timeout": "150ms",
                            "rise": 2, "fall": 2})])
    # tcp mode passes bytes: an HTTP request goes through to nginx
    from lbutil import raw_exchange
    out = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and out.endswith((b"s1\n", b"s2\n"))
    for x in s:
        x.stop()
    for x in s:
        l.wait_health(x.name, "down")
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            try:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                data = c.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            assert data == b""  # closed, nothing sent
    wait_for(lambda: l.log_lines("no server available"), 5, what="'no server available' log")


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_refused_server_costs_the_client_nothing(lb, nginx, mode):
    s = backends(nginx, 2)
    dead = free_port()  # nothing listens there: connections are refused
    port = free_port()
    lb([listener("web", port, [server("s1", s[0].addr), server("dead", f"127.0.0.1:{dead}"),
                               server("s2", s[1].addr)], mode=mode, check=NO_CHECK,
                 retries=3, redispatch=True)])
    seen = collections.Counter()
    for _ in range(60):
        status, headers, body = http_get(port, "/")
        assert status == 200, body
        seen[body.decode().strip()] += 1
    assert set(seen) == {"s1", "s2"} and sum(seen.values()) == 60, seen
