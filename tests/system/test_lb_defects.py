"""`rampart lb` http mode, four defects users reported, each against real servers:

- a response whose head the lb rewrites (its Connection differs from what the lb answers the
  client: an HTTP/1.0 server, `Connection: close` either side, an HTTP/1.0 client) streams
  whole whatever its size, also when the head and the body bytes read with it no longer fit
  the 16 KiB buffer (was: 502 with a 16-byte body);
- an error rampart answers itself (400, 408, 431, 501, 505) reaches the client also for a
  later request of a kept-alive connection, and the access log gives it its own line (was: a
  bare close, the error logged under the previous request or not at all);
- the access log quotes and escapes what the client sent, so a line always reads back to the
  same fields (was: the path written raw, `path=/a"b=c`), and in tcp mode the listener and
  server names as http mode does (was: written raw);
- a request that finds its pooled server connection closed by the server (before any answer
  byte) goes again on a new connection to the same server (was: 503 with a single server, the
  server counted as failed and excluded).
"""
import hashlib
import re
import socket
import subprocess
import sys
import time

import pytest

from lbutil import free_port, lb, listener, parse_response, server, wait_for  # noqa: F401
from nginx import content, content_sha256, make_file, nginx, port_open  # noqa: F401

NO_CHECK = {"type": "none"}
SIZES = (17000, 1 << 20)  # past the lb's 16 KiB buffer, and far past it
# the files of /big/ without sendfile, so that nginx writes the head with the first body
# bytes (the lb reads them together): with Content-Length and chunked (a sub_filter that never
# matches takes the length away), each also with Connection: close (a client kept alive then
# gets a longer head: the lb's Connection: keep-alive in place of the server's close)
NO_MATCH = b"rampart-never-in-the-file"
LOCATIONS = """
        location /big-ka/ {
            alias %(files)s/;
            default_type application/octet-stream;
            sendfile off;
        }
        location /big-close/ {
            alias %(files)s/;
            default_type application/octet-stream;
            sendfile off;
            keepalive_timeout 0;
        }
        location /big-chunked/ {
            alias %(files)s/;
            default_type application/octet-stream;
            sendfile off;
            sub_filter_types *;
            sub_filter %(no_match)s x;
        }
        location /big-chunked-close/ {
            alias %(files)s/;
            default_type application/octet-stream;
            sendfile off;
            sub_filter_types *;
            sub_filter %(no_match)s x;
            keepalive_timeout 0;
        }
"""
NGINX_PATHS = {"nginx-length": b"/big-ka/", "nginx-length-close": b"/big-close/",
               "nginx-chunked": b"/big-chunked/", "nginx-chunked-close": b"/big-chunked-close/"}

# A server that writes its whole answer in one send, so the lb reads the head together with
# as much body as its buffer takes: "close" answers HTTP/1.1 without Content-Length (the body
# runs to the close), "length-1.0" HTTP/1.0 with Content-Length; both close after it.
ONE_WRITE_SERVER = r"""
import os, socket, sys, threading
port, files, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def serve(c):
    with c:
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = c.recv(65536)
            if not b:
                return
            buf += b
        name = os.path.basename(buf.split(b" ", 2)[1].decode())
        path = os.path.join(files, name)
        data = open(path, "rb").read() if name and os.path.isfile(path) else b"ok\n"
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        if mode == "length-1.0":
            head = b"HTTP/1.0" + head[8:] + b"Content-Length: %d\r\n" % len(data)
        c.sendall(head + b"\r\n" + data)
        c.shutdown(socket.SHUT_WR)
s = socket.create_server(("127.0.0.1", port))
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# A keep-alive server (Connection: keep-alive, Content-Length) that closes a connection when
# the next request arrives on it, without a byte of answer: what the balancer sees when a
# server closes an idle connection just as a request goes out on it (the race of every pool;
# a close while idle is seen and the connection dropped before it is used again). mode: "fin"
# a plain close, "reset" an abortive one (RST). Every answer's body is "ok\n".
STALE_SERVER = r"""
import socket, struct, sys, threading
port, mode = int(sys.argv[1]), sys.argv[3]
def serve(c):
    with c:
        buf, n = b"", 0
        while True:
            while b"\r\n\r\n" not in buf:
                b = c.recv(65536)
                if not b:
                    return
                buf += b
            head, _, buf = buf.partition(b"\r\n\r\n")
            n += 1
            if n == 2:
                if mode == "reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            for ln in head.split(b"\r\n")[1:]:
                k, _, v = ln.partition(b":")
                if k.strip().lower() == b"content-length":
                    want = int(v)
                    while len(buf) < want:
                        b = c.recv(65536)
                        if not b:
                            return
                        buf += b
                    buf = buf[want:]
            c.sendall(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n"
                      b"Content-Length: 3\r\n\r\nok\n")
s = socket.create_server(("127.0.0.1", port))
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


# ---------------------------------------------------------------- helpers

@pytest.fixture
def py_http(tmp_path):
    """py_http(kind) -> "127.0.0.1:PORT" of a Python server on the files of tmp_path/files:
    "http.server" is `python3 -m http.server` (HTTP/1.0 answers, closes after each),
    "http.server-1.1" the same with `--protocol HTTP/1.1` (keep-alive, no Connection field),
    "close" and "length-1.0" the one-write server above, "stale-fin" and "stale-reset" the
    keep-alive server that closes a connection at its second request."""
    procs = []
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    for size in SIZES:
        make_file(size, files)

    def start(kind):
        port = free_port()
        if kind.startswith("http.server"):
            cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                   "--directory", str(files)]
            if kind.endswith("1.1"):
                cmd += ["--protocol", "HTTP/1.1"]
        elif kind.startswith("stale-"):
            cmd = [sys.executable, "-c", STALE_SERVER, str(port), str(files), kind[6:]]
        else:
            cmd = [sys.executable, "-c", ONE_WRITE_SERVER, str(port), str(files), kind]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        wait_for(lambda: port_open(port) or p.poll() is not None, 15, what=f"{kind} on {port}")
        assert p.poll() is None, f"{kind} exited {p.returncode}"
        return f"127.0.0.1:{port}"

    yield start
    for p in procs:
        p.kill()
        p.wait(timeout=10)


def split_head(buf):
    """(status, {lowercase name: value}, bytes after the head) of a response in buf."""
    i = buf.find(b"\r\n\r\n")
    lines = buf[:i].decode("latin-1").split("\r\n")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ", 2)[1]), headers, buf[i + 4:]


class Conn:
    """A client connection to 127.0.0.1:port that reads responses one at a time (what comes
    after one stays for the next)."""

    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.port = self.sock.getsockname()[1]
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def read_one(self, timeout=30):
        """One response -> (status, headers, body, closed): Content-Length, chunked or
        (closed True) a body that runs to the close."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"\r\n\r\n" in self.buf:
                status, headers, rest = split_head(self.buf)
                chunked = "chunked" in headers.get("transfer-encoding", "").lower()
                n = int(headers.get("content-length", "-1"))
                if (n >= 0 and len(rest) >= n) or (chunked and b"0\r\n\r\n" in rest) or \
                        status in (204, 304):
                    r = parse_response(self.buf)
                    if r is not None:
                        self.buf = r[3]
                        return r[0], r[1], r[2], False
            try:
                b = self.sock.recv(1 << 16)
            except (socket.timeout, ConnectionResetError):
                break
            if not b:
                assert b"\r\n\r\n" in self.buf, f"closed before a response: {self.buf[:300]!r}"
                status, headers, rest = split_head(self.buf)
                self.buf = b""
                return status, headers, rest, True
            self.buf += b
        raise AssertionError(f"no complete response in {timeout}s: {self.buf[:300]!r}")

    def closed_after(self, timeout=10):
        """True when the peer closes with nothing more sent (a reset counts as a close)."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def request(path, client):
    if client == "http/1.0":
        return b"GET %s HTTP/1.0\r\n\r\n" % path
    close = b"Connection: close\r\n" if client == "close" else b""
    return b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, close)


# the log format: key=value, the value bare (printable ASCII but " \ =) or quoted with escapes
FIELD = re.compile(rb'([a-z_]+)=("(?:[^"\\\x00-\x1f\x7f-\xff]|\\["\\nt]|\\x[0-9a-f]{2})*"'
                   rb'|[!#-<>-\[\]-~]*)(?: |$)')


def unescape(v):
    """A field value (as FIELD matched it) back to its bytes."""
    def one(m):
        e = m.group(1)
        if e.startswith(b"x"):
            return bytes([int(e[1:], 16)])
        return {b"n": b"\n", b"t": b"\t"}.get(e, e)

    if not v.startswith(b'"'):
        return v
    return re.sub(rb'\\(x[0-9a-f]{2}|["\\nt])', one, v[1:-1])


def parse_fields(line):
    """The fields of a log line after its message, strictly: [(key, value bytes)]."""
    out, pos = [], 0
    while pos < len(line):
        m = FIELD.match(line, pos)
        assert m, f"not a key=value field at {pos}: {line[pos:pos + 80]!r} in {line!r}"
        out.append((m.group(1).decode(), unescape(m.group(2))))
        pos = m.end()
    return out


ACCESS_KEYS = ["listener", "client", "server", "method", "path", "status", "bytes", "ms"]
TCP_ACCESS_KEYS = ["listener", "client", "server", "bytes_in", "bytes_out", "ms"]


def access_of(l, client_port, keys=ACCESS_KEYS):
    """The access lines of one client connection, each [(key, value)] checked to read back as
    exactly the access line's fields (keys: those of an http line, or TCP_ACCESS_KEYS)."""
    out = []
    for raw in l.log_path.read_bytes().splitlines():
        if b" access " not in raw:
            continue
        fields = parse_fields(raw.split(b" access ", 1)[1])
        assert [k for k, _ in fields] == keys, raw
        if dict(fields)["client"] == b"127.0.0.1:%d" % client_port:
            out.append(dict(fields))
    return out


# ---------------------------------------------------------------- 1: big rewritten responses

SERVERS = ["python-http.server", "python-http.server-1.1", "python-close", "python-length-1.0",
           "nginx-length", "nginx-length-close", "nginx-chunked", "nginx-chunked-close"]
CLIENTS = ["keep-alive", "close", "http/1.0"]


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("kind", SERVERS)
def test_big_response_with_rewritten_head(lb, nginx, py_http, kind, client):
    """Every size comes through whole (status and sha256 of the body), for every server
    framing and client kind; on keep-alive the connection then serves another request."""
    if kind.startswith("python"):
        addr = py_http(kind.split("-", 1)[1])
        paths = {size: b"/%d" % size for size in SIZES}
        want = {size: content_sha256(size) for size in SIZES}
    else:
        s1 = nginx("s1")
        s1.reload(extra=LOCATIONS % {"files": s1.files, "no_match": NO_MATCH.decode()})
        addr = s1.addr
        for size in SIZES:
            s1.make_file(size)
            assert NO_MATCH not in content(size)
        paths = {size: NGINX_PATHS[kind] + b"%d" % size for size in SIZES}
        want = {size: content_sha256(size) for size in SIZES}
    port = free_port()
    l = lb([listener("web", port, [server("s1", addr)], check=NO_CHECK)])
    for size in SIZES:
        with Conn(port) as c:
            c.send(request(paths[size], client))
            status, headers, body, closed = c.read_one()
            assert status == 200, (kind, client, size, status, body[:100])
            assert hashlib.sha256(body).hexdigest() == want[size], \
                (kind, client, size, len(body), body[:100])
            # the framing the server was meant to use
            if kind.startswith("nginx-length"):
                assert headers.get("content-length") == str(size), headers
            elif kind.startswith("nginx-chunked") and client != "http/1.0":
                assert headers.get("transfer-encoding") == "chunked", headers
            if closed:
                continue  # the body ran to the close
            if client != "keep-alive" or headers.get("connection", "").lower() == "close":
                assert c.closed_after(), (kind, client, size, headers)
                continue
            # the framing held: the same connection answers the next request
            c.send(request(b"/", client))
            assert c.read_one()[0] == 200
    assert l.alive()


# ---------------------------------------------------------------- 2: errors after a first request

FIRST = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
SECOND = {
    400: b"GET /b HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
    431: b"GET /b HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n",
    501: b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    505: b"GET /b HTTP/2.0\r\nHost: x\r\n\r\n",
    408: b"GET /b HTTP/1.1\r\nHo",  # then nothing: the request timeout (1s) passes
}


@pytest.mark.parametrize("send", ["pipelined", "one-after-the-other"])
@pytest.mark.parametrize("code", sorted(SECOND))
def test_error_on_later_request_of_a_connection(lb, nginx, code, send):
    """200 for the first request, then rampart's own error for the second, then the close; the
    access log has a line for each, the error's own (no method, path or server)."""
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, [server("s1", s1.addr)], check=NO_CHECK,
                     max_header_size="4k", timeout={"request": "1s"})])
    with Conn(port) as c:
        me = c.port
        if send == "pipelined":
            c.send(FIRST + SECOND[code])
            first = c.read_one(timeout=10)
        else:
            c.send(FIRST)
            first = c.read_one(timeout=10)
            c.send(SECOND[code])
        assert (first[0], first[2]) == (200, b"s1\n"), first
        status, headers, body, _ = c.read_one(timeout=10)
        assert status == code, (status, body)
        assert headers.get("connection") == "close" and body.startswith(b"%d " % code)
        assert c.closed_after()
    lines = wait_for(lambda: len(access_of(l, me)) >= 2 and access_of(l, me), 10,
                     what="two access lines")
    assert len(lines) == 2, lines
    assert (lines[0]["status"], lines[0]["method"], lines[0]["path"], lines[0]["server"]) == \
        (b"200", b"GET", b"/a", b"s1"), lines[0]
    assert (lines[1]["status"], lines[1]["method"], lines[1]["path"], lines[1]["server"]) == \
        (b"%d" % code, b"-", b"-", b"-"), lines[1]
    assert int(lines[1]["bytes"]) > 0, lines[1]


# ---------------------------------------------------------------- 3: the access log is escaped

# (path, answered by the server): what a request target can carry to the log
PATHS = [
    (b'/a"b=c', True),                      # the reported forgery
    (b'/q"%20status=200%20x="', True),      # a quote and = to end the field and forge another
    (b"/back\\slash\\", True),
    (b"/" + b'"' * 3000, True),             # longer than the field allows: cut, still one field
    # past ASCII: the lb may refuse such a target (400, then no path is logged) or pass it on;
    # either way nothing of it reaches the log raw
    (b"/x\xffy", None),                     # not UTF-8
    (b"/\xc3\xbc\xe2\x80\xa8", None),       # UTF-8, a line separator among it
]


def test_access_log_values_read_back(lb, nginx):
    """Every access line reads back as exactly its fields, and the path as the bytes sent."""
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, [server("s1", s1.addr)], check=NO_CHECK)])
    ports, status = [], []
    for p, ok in PATHS:
        with Conn(port) as c:
            ports.append(c.port)
            c.send(b"GET " + p + b"?k=\"v\" HTTP/1.1\r\nHost: x\r\n\r\n")
            status.append(c.read_one(timeout=10)[0])
            assert status[-1] == 200 if ok else status[-1] in (200, 400), (p, status[-1])
    raw = wait_for(lambda: all(access_of(l, me) for me in ports) and l.log_path.read_bytes(),
                   10, what="an access line per request")
    for (p, _), me, st in zip(PATHS, ports, status):
        (line,) = access_of(l, me)
        assert line["status"] == b"%d" % st, line
        if st == 400:
            assert (line["method"], line["path"], line["server"]) == (b"-", b"-", b"-"), line
            continue
        assert (line["method"], line["server"]) == (b"GET", b"s1"), line
        if len(p) < 1000:
            assert line["path"] == p, line
        else:
            assert line["path"].endswith(b"...") and len(line["path"]) > 100, line
            assert p.startswith(line["path"][:-3]), line
    # nothing the client sent reached the log raw
    for bad in (b'/a"b', b'q"', b"\xff", b"\xc3", b"\xe2"):
        assert bad not in raw, bad


def test_tcp_access_line_reads_back(lb, nginx, run):
    """Listener and server names may hold '"', '=' and '\\' (no blank or control byte): the
    tcp access line quotes them as the http one does, and reads back as its fields (was: the
    names written raw, `listener=raw"l=1\\`)."""
    s1 = nginx("s1")
    port = free_port()
    lis, srv = 'raw"l=1\\', 's"1=\\x'
    l = lb([listener(lis, port, [server(srv, s1.addr)], mode="tcp", check=NO_CHECK)])
    r = run("check-config", l.config)
    assert r.returncode == 0, r.stderr
    req = b"GET / HTTP/1.0\r\n\r\n"
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        me = c.getsockname()[1]
        c.sendall(req)
        while b := c.recv(65536):  # nginx closes after an HTTP/1.0 answer
            out += b
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"\r\n\r\ns1\n"), out
    (line,) = wait_for(lambda: access_of(l, me, TCP_ACCESS_KEYS), 10, what="the access line")
    assert (line["listener"], line["server"]) == (lis.encode(), srv.encode()), line
    assert line["client"] == b"127.0.0.1:%d" % me, line
    assert (line["bytes_in"], line["bytes_out"]) == (b"%d" % len(req), b"%d" % len(out)), line


# ---------------------------------------------------------------- 4: a pooled connection closed

@pytest.mark.parametrize("client", ["kept-alive", "new-connections"])
@pytest.mark.parametrize("close", ["fin", "reset"])
def test_pooled_connection_its_server_closed_is_no_failure(lb, py_http, close, client):
    """A request that finds its pooled connection closed by the server goes again on a new
    connection to the same server: a single server answers every one (200), the retry is no
    try (retries: 0) and no error of the server's (passive.errors: 1 would take it out). A
    request that cannot go again (its body went out) gets 502, and the server stays up."""
    addr = py_http(f"stale-{close}")
    port = free_port()
    l = lb([listener("web", port, [server("s1", addr)], check=NO_CHECK, retries=0,
                     passive={"errors": 1})])
    n = 8  # after the first, each request finds the connection the one before it pooled
    if client == "kept-alive":
        with Conn(port) as c:
            for i in range(n):
                c.send(request(b"/ka/%d" % i, "keep-alive"))
                status, _, body, closed = c.read_one(timeout=10)
                assert (status, body, closed) == (200, b"ok\n", False), (i, status, body)
    else:
        for i in range(n):
            with Conn(port) as c:
                c.send(request(b"/new/%d" % i, "keep-alive"))
                status, _, body, _ = c.read_one(timeout=10)
                assert (status, body) == (200, b"ok\n"), (i, status, body)
    with Conn(port) as c:
        c.send(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert c.read_one(timeout=10)[0] == 502
    assert l.servers()["s1"]["health"] == "up", l.servers()
    assert not l.log_lines("server down"), l.log()
    with Conn(port) as c:
        c.send(request(b"/after", "keep-alive"))
        assert c.read_one(timeout=10)[:3:2] == (200, b"ok\n")
