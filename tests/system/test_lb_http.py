"""`rampart lb` in http mode against real nginx backends: keep-alive, chunked bodies both
ways, 100-continue, WebSocket, pipelining, 100 MB each way with bounded memory, the
forwarding headers, and request-smuggling vectors the lb must refuse itself."""
import contextlib
import hashlib
import os
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from lbutil import (Lb, connection, free_port, http_get, lb, listener, parse_response,  # noqa: F401
                    proc_status_kib, raw_exchange, server, status_of, wait_for)
from nginx import (content_sha256, nginx, nginx_backend, parse_headers_answer,  # noqa: F401
                   py_backend, ws_connect)

NO_CHECK = {"type": "none"}
MIB = 1 << 20


def one_backend_lb(lb, backend, **kw):
    port = free_port()
    return lb([listener("web", port, [server(backend.name, backend.addr)], check=NO_CHECK,
                        **kw)])


def read_response(sock, timeout=10):
    """Reads one complete response from sock (Content-Length or chunked)."""
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = parse_response(buf)
        if r is not None:
            return r
        b = sock.recv(65536)
        if not b:
            break
        buf += b
    raise AssertionError(f"no complete response: {buf[:300]!r}")


def logged(backend, needle, n):
    """The backend's access log entries whose request contains needle, once there are n: nginx
    writes a line after its response, so the client can have the answer before the line."""
    def entries():
        return [e for e in backend.access_log() if needle in e["request"]]
    wait_for(lambda: len(entries()) >= n, 10, what=f"{n} access log lines for {needle}")
    log = entries()
    assert len(log) == n, log
    return log


# ---------------------------------------------------------------- keep-alive, chunked

def test_keepalive_reuses_one_server_connection(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    c = connection(l.port)
    socks = set()
    for i in range(6):
        c.request("GET", f"/ka/{i}")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"s1\n"
        socks.add(id(c.sock))
    c.close()
    assert len(socks) == 1  # the client connection was kept
    log = logged(s1, "/ka/", 6)
    assert len({e["connection"] for e in log}) == 1, log  # one server connection, reused
    assert [int(e["connection_requests"]) for e in log] == sorted(
        int(e["connection_requests"]) for e in log)


def test_server_connection_pooled_across_client_connections(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    for i in range(4):
        assert http_get(l.port, f"/pool/{i}")[0] == 200
    log = logged(s1, "/pool/", 4)
    assert len({e["connection"] for e in log}) == 1, log


def test_pooled_connection_the_server_closes_is_let_go(lb):
    """A backend that closes a kept-alive connection once idle, unannounced: the lb closes
    its end of the pooled connection at once (none left in CLOSE-WAIT) and the next request
    goes on a new connection."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    closed = threading.Event()
    accepted = []

    def serve():
        while len(accepted) < 2:
            c, _ = srv.accept()
            accepted.append(c)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(4096)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            time.sleep(0.3)
            c.close()
            closed.set()

    threading.Thread(target=serve, daemon=True).start()
    try:
        l = lb([listener("web", free_port(), [server("s1", f"127.0.0.1:{port}")],
                         check=NO_CHECK)])
        assert http_get(l.port, "/one")[0] == 200
        assert closed.wait(10)

        def close_wait():
            out = subprocess.run(["ss", "-tnH", "state", "close-wait", f"dport = :{port}"],
                                 capture_output=True, text=True, check=True).stdout
            return out.strip()

        wait_for(lambda: not close_wait(), 10, what="the lb to close its pooled end")
        status, _, body = http_get(l.port, "/two")
        assert (status, body) == (200, b"ok\n")
        assert len(accepted) == 2
    finally:
        srv.close()


def test_chunked_request_body(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    pieces = [os.urandom(n) for n in (1, 17, 4096, 65536, 100000, 3)]
    data = b"".join(pieces)
    c = connection(l.port)
    c.request("POST", "/upload", body=iter(pieces), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    text = r.read()
    c.close()
    assert r.status == 200, text
    assert s1.upload_result(text) == (len(data), hashlib.sha256(data).hexdigest())
    # raw, with a chunk extension and a trailer
    body = (b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    out = raw_exchange(l.port, b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n" + body)
    st, _, text, _ = parse_response(out)
    assert st == 200, out
    assert s1.upload_result(text) == (11, hashlib.sha256(b"hello world").hexdigest())


def test_chunked_response(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    out = raw_exchange(l.port, b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st, headers, body, _ = parse_response(out)
    assert st == 200 and body == b"s1\n1\n2\n3\n", out
    assert "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
    st, headers, body = http_get(l.port, "/chunked-big")
    assert st == 200
    assert body == b"s1\n" + b"0123456789abcde\n" * 65536


@pytest.mark.parametrize("host", [b"Host: x\r\n", b""], ids=["with-host", "without-host"])
def test_http10_client_gets_unchunked_response(lb, nginx, host):
    """An HTTP/1.0 client gets no chunked coding; the body ends with the connection. HTTP/1.0
    needs no Host: the lb forwards as HTTP/1.1, which does."""
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    out = raw_exchange(l.port, b"GET /chunked HTTP/1.0\r\n" + host + b"\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0], out
    assert b"chunked" not in head.lower()
    assert body == b"s1\n1\n2\n3\n", out


def test_expect_100_continue(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    data = os.urandom(50000)
    with socket.create_connection(("127.0.0.1", l.port), timeout=10) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(data))
        buf = b""
        deadline = time.monotonic() + 10
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
            b = s.recv(4096)
            if not b:
                break
            buf += b
        assert buf.startswith(b"HTTP/1.1 100 Continue\r\n"), buf
        rest = buf.split(b"\r\n\r\n", 1)[1]
        assert rest == b""  # nothing final before the body
        s.sendall(data)
        st, _, text, _ = read_response(s)
    assert st == 200, text
    assert s1.upload_result(text) == (len(data), hashlib.sha256(data).hexdigest())


def test_websocket_upgrade(lb, py_backend):
    w = py_backend("w1")
    l = one_backend_lb(lb, w)
    ws = ws_connect(l.addr, "/chat")
    try:
        assert ws.response_head.startswith("HTTP/1.1 101")
        ws.send("hello through the lb")
        assert ws.recv() == "hello through the lb"
        blob = os.urandom(70000)
        ws.send(blob)
        assert ws.recv() == blob
    finally:
        ws.close()
    assert w.ws_messages == 2


def test_pipelining_in_order(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    req = (b"GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /headers HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /status/503 HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = raw_exchange(l.port, req, timeout=10)
    resps = []
    buf = out
    for head_req in (False, False, True, False, False, False):
        r = parse_response(buf, head_request=head_req)
        assert r is not None, out
        resps.append(r[:3])
        buf = r[3]
    assert [r[0] for r in resps] == [201, 404, 200, 200, 503, 200], out
    assert resps[0][2] == b"s1 201\n" and resps[1][2] == b"s1 404\n"
    assert resps[2][2] == b"" and resps[5][2] == b"s1\n"
    assert b"uri: /headers" in resps[3][2]


# ---------------------------------------------------------------- 100 MB each way

class RssWatch:
    """Samples the lb's VmRSS in a thread; .peak after stop()."""

    def __init__(self, pid):
        self.pid = pid
        self.base = proc_status_kib(pid, "VmRSS")
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS"))
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._t.join(timeout=5)
        return self.peak - self.base


BIG = 100 * MIB
GROWTH_LIMIT_KIB = 40 * 1024


def test_upload_100mb_streamed(lb, py_backend):
    w = py_backend("w1")
    l = one_backend_lb(lb, w, timeout={"client": "60s", "server": "60s"})
    http_get(l.port, "/")  # warm up
    hwm0 = proc_status_kib(l.pid, "VmHWM")
    watch = RssWatch(l.pid)

    sent = hashlib.sha256()
    block = os.urandom(MIB)

    def body():
        for i in range(BIG // MIB):
            b = i.to_bytes(8, "big") + block[8:]  # no two blocks alike
            sent.update(b)
            yield b

    c = connection(l.port, timeout=120)
    c.request("POST", "/upload", body=body(), headers={"Content-Length": str(BIG)})
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    growth = watch.stop()
    assert r.status == 200, text
    assert f"bytes={BIG}\n" in text and f"sha256={sent.hexdigest()}" in text, text
    assert growth < GROWTH_LIMIT_KIB, f"lb RSS grew {growth} KiB during a 100 MB upload"
    hwm = proc_status_kib(l.pid, "VmHWM")
    assert hwm - max(hwm0, watch.base) < GROWTH_LIMIT_KIB, (hwm0, hwm, watch.base)


def test_download_100mb_streamed(lb, nginx):
    s1 = nginx("s1")
    s1.make_file(BIG)
    l = one_backend_lb(lb, s1, timeout={"client": "60s", "server": "60s"})
    http_get(l.port, "/")
    hwm0 = proc_status_kib(l.pid, "VmHWM")
    watch = RssWatch(l.pid)
    c = connection(l.port, timeout=120)
    c.request("GET", f"/big/{BIG}")
    r = c.getresponse()
    h = hashlib.sha256()
    n = 0
    while True:
        b = r.read(MIB)
        if not b:
            break
        n += len(b)
        h.update(b)
        # a slow reader: the lb must not buffer what the client does not take
        if n < 20 * MIB:
            time.sleep(0.005)
    c.close()
    growth = watch.stop()
    assert r.status == 200
    assert n == BIG and h.hexdigest() == content_sha256(BIG)
    assert growth < GROWTH_LIMIT_KIB, f"lb RSS grew {growth} KiB during a 100 MB download"
    hwm = proc_status_kib(l.pid, "VmHWM")
    assert hwm - max(hwm0, watch.base) < GROWTH_LIMIT_KIB, (hwm0, hwm, watch.base)


def test_tcp_mode_100mb_both_ways(lb, nginx, py_backend):
    """tcp mode: bulk bytes go through splice(2) after the first full buffer; intact, bounded
    memory, both directions, half-close passed on."""
    s1 = nginx("s1")
    s1.make_file(BIG)
    w = py_backend("w1")
    port_d, port_u = free_port(), free_port()
    l = lb([listener("down", port_d, [server("s1", s1.addr)], check=NO_CHECK, mode="tcp"),
            listener("up", port_u, [server("w1", w.addr)], check=NO_CHECK, mode="tcp")])
    http_get(port_d, "/")
    watch = RssWatch(l.pid)
    c = connection(port_d, timeout=120)
    c.request("GET", f"/big/{BIG}")
    r = c.getresponse()
    h, n = hashlib.sha256(), 0
    while True:
        b = r.read(MIB)
        if not b:
            break
        n += len(b)
        h.update(b)
    c.close()
    assert r.status == 200 and n == BIG and h.hexdigest() == content_sha256(BIG)

    sent = hashlib.sha256()
    block = os.urandom(MIB)

    def body():
        for i in range(BIG // MIB):
            b = i.to_bytes(8, "big") + block[8:]
            sent.update(b)
            yield b

    c = connection(port_u, timeout=120)
    c.request("POST", "/upload", body=body(), headers={"Content-Length": str(BIG)})
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    growth = watch.stop()
    assert r.status == 200 and f"sha256={sent.hexdigest()}" in text, text
    assert growth < GROWTH_LIMIT_KIB, f"lb RSS grew {growth} KiB in tcp mode"


# ---------------------------------------------------------------- forwarding headers

@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_transparent_connects_from_the_client_address(lb, nginx, mode):
    """transparent: the server sees the client's own address as its peer (IP_TRANSPARENT and
    a bind to the client address; 127.0.0.0/8 is local, so no policy routing is needed here)."""
    s1 = nginx("s1")
    port = free_port()
    lb([listener("web", port, [server("s1", s1.addr)], check=NO_CHECK, mode=mode,
                 transparent=True)])
    st, _, body = http_get(port, "/headers", source="127.0.0.7")
    assert st == 200
    assert parse_headers_answer(body)["remote-addr"] == "127.0.0.7"


def test_forwarded_headers_reach_backend(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1)
    st, _, body = http_get(l.port, "/headers", source="127.0.0.5",
                           headers={"Host": "app.example", "User-Agent": "lbtest"})
    assert st == 200
    h = parse_headers_answer(body)
    assert h["x-forwarded-for"] == "127.0.0.5", h
    assert h["x-forwarded-proto"] == "http", h
    assert h["forwarded"] == "for=127.0.0.5;proto=http", h
    assert h["host"] == "app.example" and h["user-agent"] == "lbtest", h
    assert h["method"] == "GET" and h["uri"] == "/headers"


def test_forwarded_off(lb, nginx):
    s1 = nginx("s1")
    l = one_backend_lb(lb, s1, forwarded=False)
    st, _, body = http_get(l.port, "/headers")
    h = parse_headers_answer(body)
    assert st == 200 and h["x-forwarded-for"] is None and h["forwarded"] is None, h


# ---------------------------------------------------------------- request smuggling

H = b"Host: x\r\n"
SMUGGLING = [
    # (id, raw request, status the lb answers)
    ("cl-and-te", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-and-cl", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("two-content-lengths", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\n"
     b"Content-Length: 4\r\n\r\nabcd", 400),
    ("content-length-list", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 4\r\n\r\nabcd",
     400),
    ("content-length-plus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc", 400),
    ("content-length-minus", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -3\r\n\r\nabc", 400),
    ("content-length-hex", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc", 400),
    ("content-length-space-inside", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1 0\r\n\r\n"
     b"0123456789", 400),
    ("content-length-overflow", b"POST / HTTP/1.1\r\n" + H +
     b"Content-Length: 99999999999999999999999\r\n\r\nabc", 400),
    ("te-chunked-identity", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity"
     b"\r\n\r\n0\r\n\r\n", 400),
    ("te-chunked-twice-split", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te-xchunked", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n"
     b"0\r\n\r\n", 501),
    ("te-obs-fold", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("obs-fold-any-header", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\r\n b\r\n\r\n", 400),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\r\n\tb\r\n\r\n", 400),
    ("bare-cr-in-header", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\rb\r\n\r\n", 400),
    ("bare-cr-line-end", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\r\rX-Bar: b\r\n\r\n", 400),
    ("bare-cr-in-request-line", b"GET /a\rb HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("bare-cr-after-version", b"GET / HTTP/1.1\r" + H + b"\r\n", 400),
    ("nul-in-header", b"GET / HTTP/1.1\r\n" + H + b"X-Foo: a\x00b\r\n\r\n", 400),
    ("nul-in-target", b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("space-before-colon", b"GET / HTTP/1.1\r\n" + H + b"X-Foo : a\r\n\r\n", 400),
    ("space-before-colon-te", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n"
     b"\r\n0\r\n\r\n", 400),
    ("missing-host", b"GET / HTTP/1.1\r\nX-Foo: a\r\n\r\n", 400),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("chunk-size-not-hex", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-size-overflow", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"FFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n", 400),
    ("chunk-data-longer-than-size", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked"
     b"\r\n\r\n5\r\nhelloEXTRA\r\n0\r\n\r\n", 400),
    ("request-line-double-space", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("request-line-no-version", b"GET /\r\n" + H + b"\r\n", 400),
    ("request-line-garbage", b"THIS IS NOT HTTP\r\n" + H + b"\r\n", 400),
    ("request-line-trailing-space", b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    ("lower-case-version", b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    ("http-2.0", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http-3.1", b"GET / HTTP/3.1\r\n" + H + b"\r\n", 505),
    ("header-over-max-size", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 6000 +
     b"\r\n\r\n", 431),
    ("many-headers-over-max-size", b"GET / HTTP/1.1\r\n" + H +
     b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 40) for i in range(200)) + b"\r\n", 431),
]


@pytest.fixture(scope="module")
def smuggle_env():
    """One nginx backend and one lb (max-header-size 4k) for every smuggling vector."""
    with nginx_backend("s1") as s1, tempfile.TemporaryDirectory(prefix="rampart-lb-") as d:
        port = free_port()
        inst = Lb(d, [listener("web", port, [server("s1", s1.addr)], check=NO_CHECK,
                               max_header_size="4k")])
        inst.start()
        try:
            yield inst, s1
        finally:
            inst.stop()


@pytest.mark.parametrize("vector,expected", [(v[1], v[2]) for v in SMUGGLING],
                         ids=[v[0] for v in SMUGGLING])
def test_smuggling_vector_refused_by_lb(smuggle_env, vector, expected):
    l, s1 = smuggle_env
    assert l.alive()
    before = len(s1.access_log())
    out = raw_exchange(l.port, vector, timeout=5)
    first_line = out.split(b"\r\n", 1)[0]
    assert status_of(out) == expected, f"expected {expected}, got {first_line!r} ({out[:300]!r})"
    # the refused request never reached the backend: a sentinel request on a new
    # connection is the only thing nginx logs since
    sentinel = f"/sentinel-{time.monotonic_ns()}"
    assert http_get(l.port, sentinel)[0] == 200
    wait_for(lambda: any(sentinel in e["request"] for e in s1.access_log()), 10,
             what="the sentinel in the backend's access log")
    time.sleep(0.1)
    after = s1.access_log()[before:]
    assert [e["request"] for e in after] == [f"GET {sentinel} HTTP/1.1"], after
    # and the lb closed the connection after its error (no second request read from it)
    assert out.count(b"HTTP/1.") == 1, out


def test_smuggled_second_request_not_forwarded(smuggle_env):
    """CL.TE: the body that would be a second request for a TE-reading server."""
    l, s1 = smuggle_env
    before = len(s1.access_log())
    out = raw_exchange(l.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                       b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(out) == 400 and out.count(b"HTTP/1.") == 1, out
    time.sleep(0.2)
    assert not any("/smuggled" in e["request"] for e in s1.access_log()[before:])
