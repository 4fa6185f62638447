"""A battery of malformed and ambiguous HTTP/1.x requests, each sent to `rampart lb` and to
HAProxy 2.6 (Debian's /usr/sbin/haproxy) in front of a recording backend.

For every case the test keeps what the client got (status lines, whether the connection was
closed) and what the backend received (every byte, framed back into requests), then holds
rampart to HAProxy:

- a request HAProxy refuses (its own 4xx/5xx, or a close without forwarding) rampart does not
  forward either;
- a request both forward reaches the backend with the same meaning: method, target (path and
  query; an absolute-form target counts by its path and its authority as the Host), Host,
  the framing fields (Content-Length and Transfer-Encoding values exactly as sent, so
  `Content-Length: 5, 5` forwarded as it came differs from HAProxy's one `5`) and the body;
- a request HAProxy forwards rampart forwards too, unless the case says why rampart is
  stricter (`stricter=`);
- where rampart departs from HAProxy on the strength of RFC 9110/9112 the case carries the
  argument (`rfc=`) and asserts rampart's own behaviour (`expect=`).

`pytest -s` prints the table of every case (case, HAProxy's result, rampart's) at the end.
HAProxy runs each case once; rampart once per I/O path (conftest.LB_BOTH_PATHS).
"""
import contextlib
import dataclasses
import pathlib
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

from lbutil import Lb, free_port, kill_group, listener, parse_response, server
from nginx import wait_port

HAPROXY = "/usr/sbin/haproxy"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CLIENT_WAIT = 2.0  # the longest a case waits for its answers (then the client gives up)
SETTLE = 0.1  # the backend is done with a case once it got nothing new for this long
NO_CHECK = {"type": "none"}


# ---------------------------------------------------------------- framing what arrived

class Unframeable(Exception):
    pass


@dataclasses.dataclass
class Req:
    """One request as the backend received it."""
    method: bytes
    target: bytes
    version: bytes
    headers: list  # [(name, value)] as received, value without surrounding OWS
    body: bytes  # decoded (chunked) or the Content-Length bytes there are
    chunked: bool
    complete: bool = True
    framed: bool = True  # False: the backend could not frame it (it closed)

    def values(self, name):
        return [v for n, v in self.headers if n.lower() == name]


def _head_end(buf):
    ends = [(i, n) for i, n in ((buf.find(b"\r\n\r\n"), 4), (buf.find(b"\n\n"), 2)) if i >= 0]
    return min(ends) if ends else None


def _dechunk(buf, final):
    """(body, bytes used) of a chunked body at the start of buf; None when incomplete."""
    body, i = b"", 0
    while True:
        j = buf.find(b"\n", i)
        if j < 0:
            return None
        size = buf[i:j].rstrip(b"\r").split(b";")[0].strip()
        if not re.fullmatch(rb"[0-9a-fA-F]{1,16}", size):
            raise Unframeable(buf[i:j])
        n = int(size, 16)
        if n == 0:
            k = _head_end(buf[j - 1:]) if buf[j + 1:j + 2] != b"\n" else None
            if buf[j + 1:j + 3] == b"\r\n":
                return body, j + 3
            if k is None:
                return None
            return body, j - 1 + k[0] + k[1]
        if len(buf) < j + 1 + n + 2:
            if final:
                return body + buf[j + 1:j + 1 + n], len(buf)
            return None
        body += buf[j + 1:j + 1 + n]
        i = j + 1 + n
        if buf[i:i + 2] == b"\r\n":
            i += 2
        elif buf[i:i + 1] == b"\n":
            i += 1
        else:
            raise Unframeable(buf[i:i + 2])


def frame(buf, final=False):
    """(Req, bytes used) of the request at the start of buf, None when more bytes are needed
    (final: whatever there is, as an incomplete Req); raises Unframeable."""
    he = _head_end(buf)
    if he is None:
        if final and buf.strip():
            return Req(b"?", b"?", b"?", [], buf, False, complete=False, framed=False), len(buf)
        return None
    lines = [ln.rstrip(b"\r") for ln in buf[:he[0]].split(b"\n")]
    parts = lines[0].split(b" ")
    method, target, version = (parts + [b"", b"", b""])[:3]
    headers = []
    for ln in lines[1:]:
        name, _, value = ln.partition(b":")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    start = he[0] + he[1]
    req = Req(method, target, version, headers, b"", False)
    te = [v.lower() for n, v in headers if n.lower() == "transfer-encoding"]
    cl = [v for n, v in headers if n.lower() == "content-length"]
    if te:
        if cl or te[-1].split(",")[-1].strip() != "chunked":
            raise Unframeable("te")
        req.chunked = True
        r = _dechunk(buf[start:], final)
        if r is None:
            if not final:
                return None
            req.complete = False
            return req, len(buf)
        req.body = r[0]
        return req, start + r[1]
    if cl:
        vals = {v.strip() for c in cl for v in c.split(",")}
        if len(vals) != 1 or not next(iter(vals)).isdigit():
            raise Unframeable("cl")
        n = int(next(iter(vals)))
        if len(buf) - start < n:
            if not final:
                return None
            req.complete = False
            req.body = buf[start:]
            return req, len(buf)
        req.body = buf[start:start + n]
        return req, start + n
    return req, start


def frame_all(buf):
    """Every request in what one connection received."""
    out = []
    while buf:
        try:
            r = frame(buf, final=True)
        except Unframeable:
            h = _head_end(buf)
            r = frame(buf[:h[0] + h[1]], final=True)
            r[0].framed = False
            out.append(r[0])
            return out
        if r is None:
            break
        out.append(r[0])
        buf = buf[r[1]:]
    return out


class Recorder:
    """A backend on 127.0.0.1 (ephemeral port) that keeps the bytes every connection receives,
    in arrival order, and answers each request it can frame with RESPONSE; one it cannot
    frame ends the connection."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.chunks = []  # [(connection number, bytes)]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            n += 1
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, n), daemon=True).start()

    def _serve(self, c, n):
        buf = b""
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.chunks.append((n, data))
                buf += data
                try:
                    while buf and (r := frame(buf)) is not None:
                        buf = buf[r[1]:]
                        c.sendall(RESPONSE)
                except (Unframeable, OSError):
                    return

    def mark(self):
        with self.lock:
            return len(self.chunks)

    def received(self, since):
        """{connection: bytes} received since the mark, connections in order of arrival."""
        out = {}
        with self.lock:
            for n, data in self.chunks[since:]:
                out[n] = out.get(n, b"") + data
        return out

    def settle(self):
        last, deadline = -1, time.monotonic() + 5
        while time.monotonic() < deadline:
            m = self.mark()
            if m == last:
                return
            last = m
            time.sleep(SETTLE)

    def stop(self):
        self.sock.close()
        with self.lock:
            for c in self.conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------- the client side

@dataclasses.dataclass
class Outcome:
    statuses: list  # status lines of the responses the client got
    closed: bool  # the balancer closed the connection
    forwarded: list  # [Req] in the order they reached the backend
    raw: dict  # {connection: bytes} the backend received

    def show(self):
        st = " ".join(s.split(b" ")[1].decode() for s in self.statuses) or "-"
        st += " close" if self.closed else ""
        if not self.forwarded:
            return f"{st}; nothing forwarded"
        return f"{st}; " + " | ".join(describe(q) for q in self.forwarded)


def exchange(port, case):
    s = socket.create_connection(("127.0.0.1", port), timeout=CLIENT_WAIT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out, closed = b"", False
    try:
        with contextlib.suppress(OSError):
            if case.slow:
                # one byte per segment, bounded: heads here are short
                for i in range(len(case.data)):
                    s.sendall(case.data[i:i + 1])
                    time.sleep(0.002)
            else:
                s.sendall(case.data)
        deadline = time.monotonic() + CLIENT_WAIT
        while time.monotonic() < deadline and final_count(out) < case.nreq:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not b:
                closed = True
                break
            out += b
        if not closed:
            # did it close after what it answered? (a short look, not a wait)
            s.settimeout(0.05)
            try:
                b = s.recv(65536)
                out += b
                closed = not b
            except socket.timeout:
                pass
            except OSError:
                closed = True
    finally:
        s.close()
    return out, closed


def final_count(buf):
    n = 0
    while buf:
        try:
            r = parse_response(buf)
        except (ValueError, IndexError):
            return n
        if r is None:
            return n
        n += r[0] >= 200
        buf = r[3]
    return n


def status_lines(buf):
    return [ln for ln in re.findall(rb"HTTP/1\.[01] \d{3}[^\r\n]*", buf)]


def run_case(port, rec, case):
    mark = rec.mark()
    out, closed = exchange(port, case)
    rec.settle()
    raw = rec.received(mark)
    fwd = [q for data in raw.values() for q in frame_all(data)]
    return Outcome(status_lines(out), closed, fwd, raw)


# ---------------------------------------------------------------- what counts

def _host(h):
    """A host as compared: case and http's default port do not matter (RFC 3986 6.2.3)."""
    return re.sub(r":(80)?$", "", h.lower())


def effective(q):
    """(path, [host]) of a forwarded request: an absolute-form target stands for its path
    and its authority (RFC 9112 3.2.2)."""
    t = q.target.decode("latin-1")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", t):
        u = urllib.parse.urlsplit(t)
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        return path, [_host(u.netloc)]
    return t, [_host(h) for h in q.values("host")]


def _length(v):
    return int(v) if re.fullmatch(r"[0-9]+", v) else v


def semantics(q):
    """What a server acts on. The framing fields are compared as sent but for what does not
    count (a number's leading zeros, the case of a coding: RFC 9112 7): `5, 5` or two fields
    are not HAProxy's one `5`."""
    path, host = effective(q)
    return {
        "method": q.method,
        "path": path,
        "version": q.version,
        "host": host,
        "content-length": [_length(v) for v in q.values("content-length")],
        "transfer-encoding": [v.lower() for v in q.values("transfer-encoding")],
        "body": q.body,
        "complete": q.complete,
        "framed": q.framed,
    }


def describe(q):
    """The request as forwarded, its Host and framing fields as they came."""
    d = f"{q.method.decode('latin-1')} {q.target.decode('latin-1')[:40]} {q.version.decode()}"
    d += f" host={'/'.join(q.values('host')) or '-'}"
    if q.values("content-length"):
        d += f" cl={'/'.join(q.values('content-length'))}"
    if q.values("transfer-encoding"):
        d += f" te={'/'.join(q.values('transfer-encoding'))}"
    if q.body:
        d += f" body={q.body[:12]!r}"
    if not q.complete:
        d += " (incomplete)"
    if not q.framed:
        d += " (unframeable)"
    return d


# ---------------------------------------------------------------- the cases

@dataclasses.dataclass
class Case:
    group: str
    id: str
    data: bytes
    nreq: int = 1  # responses a client waits for
    slow: bool = False
    stricter: str = ""  # why rampart may refuse what HAProxy forwards
    rfc: str = ""  # why rampart departs from HAProxy (then expect says what it does)
    expect: tuple = ()  # rfc cases: ((target, host), ...) of what rampart forwards

    def __str__(self):
        return self.id


H = b"Host: x\r\n"


def get(target=b"/", version=b"HTTP/1.1", headers=H, method=b"GET"):
    return method + b" " + target + b" " + version + b"\r\n" + headers + b"\r\n"


def post(headers, body=b"", target=b"/"):
    return b"POST " + target + b" HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def te(value, body=b"5\r\nhello\r\n0\r\n\r\n"):
    return post(b"Transfer-Encoding: " + value + b"\r\n", body)


def cl(value, body=b"hello"):
    return post(b"Content-Length: " + value + b"\r\n", body)


CHUNKED = b"Transfer-Encoding: chunked\r\n"


def chunked(body):
    return post(CHUNKED, body)


# Why rampart refuses what HAProxy 2.6 forwards: RFC 9110/9112 allow or require it.
CL_TE = ("RFC 9112 6.3(3): Content-Length with Transfer-Encoding 'ought to be handled as an "
         "error' (HAProxy drops the Content-Length)")
OBS_FOLD = ("RFC 9112 5.2: a server MUST either reject obs-fold with 400 or replace it "
            "(HAProxy unfolds)")
TE_10 = ("RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message MUST be treated as faulty "
         "framing")
CHUNK_CRLF = ("RFC 9112 7.1: chunk lines end in CRLF; the bare-LF leniency of 2.2 covers the "
              "start line and fields only")
CHUNK_BWS = "RFC 9112 7.1: whitespace after a chunk size only as BWS before a ';' extension"
TRAILER = ("RFC 9112 7.1.2: trailer fields are field lines; obs-fold or a bad name is refused "
           "as in the head")
HOST = ("RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, with "
        "more than one Host, or with an invalid Host value")
CTL = ("RFC 9110 5.5: NUL in a field value MUST be rejected or replaced; other CTLs are "
       "invalid (retaining them is only a MAY)")
LINE = ("RFC 9112 3: an invalid request line SHOULD get 400; splitting on other whitespace "
        "is only a MAY")
MAJOR = ("RFC 9110 15.6.6: 505 for a major version the server does not support (HAProxy "
         "forwards HTTP/2.0 and 3.0 as 1.1)")
STAR = "RFC 9112 3.2.4: the asterisk-form is only for OPTIONS"
USERINFO = ("RFC 9110 4.2.4: a recipient SHOULD treat userinfo in an http(s) target URI as an "
            "error")
SCHEME = ("RFC 9110 4.2, 7.4: the listener serves http(s) URIs; a target of another scheme "
          "names nothing it has")
NO_HOST = "RFC 9110 4.2.1: an http URI with an empty host MUST be rejected as invalid"
DEL = "RFC 3986 2: DEL is no URI character (HAProxy forwards it)"
CONNECT = "CONNECT (a tunnel) is not implemented: 501 (rampart.8)"

# Where rampart forwards what HAProxy refuses.
ABSOLUTE = ("RFC 9112 3.2.2: a server MUST accept the absolute-form and MUST use the "
            "target's host, ignoring the Host field. HAProxy refuses a Host that differs; "
            "rampart sends the request on in origin-form with the authority as its one Host "
            "(as nginx does): the server sees one host, the one the target names, and no "
            "absolute URI it could read another way")
FIELDS = ("RFC 9110 5.4: how many fields a server takes is its own limit (rampart 128, HAProxy "
          "101); the request is forwarded whole, nothing in it is ambiguous")


CASES = [
    # -- controls: well-formed requests both must forward unchanged
    Case("control", "get", get()),
    Case("control", "post-cl", cl(b"5")),
    Case("control", "post-chunked", chunked(b"5\r\nhello\r\n0\r\n\r\n")),
    Case("control", "http10-no-host", get(headers=b"", version=b"HTTP/1.0")),
    Case("control", "options-asterisk", get(b"*", method=b"OPTIONS")),
    Case("control", "custom-method", get(method=b"PURGE")),
    Case("control", "leading-empty-line", b"\r\n" + get()),

    # -- smuggling: Content-Length
    Case("smuggling", "cl-te", post(b"Content-Length: 5\r\n" + CHUNKED, b"0\r\n\r\n"),
         stricter=CL_TE),
    Case("smuggling", "te-cl", post(CHUNKED + b"Content-Length: 5\r\n", b"0\r\n\r\n"),
         stricter=CL_TE),
    Case("smuggling", "cl-te-smuggled-get",
         post(b"Content-Length: 44\r\n" + CHUNKED,
              b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"),
         stricter=CL_TE),
    Case("smuggling", "cl-dup-differ", post(b"Content-Length: 3\r\nContent-Length: 5\r\n",
                                            b"hello")),
    Case("smuggling", "cl-dup-same", post(b"Content-Length: 5\r\nContent-Length: 5\r\n",
                                          b"hello")),
    Case("smuggling", "cl-list-same", cl(b"5, 5")),
    Case("smuggling", "cl-list-same-nospace", cl(b"5,5")),
    Case("smuggling", "cl-list-differ", cl(b"3, 5")),
    Case("smuggling", "cl-list-trailing-comma", cl(b"5,")),
    Case("smuggling", "cl-list-empty-element", cl(b"5,,5")),
    Case("smuggling", "cl-plus", cl(b"+5")),
    Case("smuggling", "cl-minus", cl(b"-5")),
    Case("smuggling", "cl-leading-zeros", cl(b"005")),
    Case("smuggling", "cl-hex", cl(b"0x5")),
    Case("smuggling", "cl-space-inside", cl(b"1 0", b"0123456789")),
    Case("smuggling", "cl-trailing-space", cl(b"5 ")),
    Case("smuggling", "cl-leading-tab", cl(b"\t5")),
    Case("smuggling", "cl-empty", cl(b"")),
    Case("smuggling", "cl-decimal-point", cl(b"5.0")),
    Case("smuggling", "cl-overflow", cl(b"99999999999999999999999")),
    Case("smuggling", "cl-2pow64", cl(b"18446744073709551621")),
    Case("smuggling", "cl-space-before-colon", post(b"Content-Length : 5\r\n", b"hello")),
    Case("smuggling", "cl-on-get", get(headers=H + b"Content-Length: 5\r\n") + b"hello"),
    Case("smuggling", "cl-dup-same-zeros", post(b"Content-Length: 5\r\nContent-Length: 05\r\n",
                                                b"hello")),

    # -- smuggling: Transfer-Encoding
    Case("smuggling", "te-xchunked", te(b"xchunked")),
    Case("smuggling", "te-chunkedx", te(b"chunkedx")),
    Case("smuggling", "te-chunked-identity", te(b"chunked, identity")),
    Case("smuggling", "te-identity-chunked", te(b"identity, chunked")),
    Case("smuggling", "te-leading-space", te(b" chunked")),
    Case("smuggling", "te-leading-tab", te(b"\tchunked")),
    Case("smuggling", "te-trailing-space", te(b"chunked ")),
    Case("smuggling", "te-upper-case", te(b"CHUNKED")),
    Case("smuggling", "te-space-before-colon", post(b"Transfer-Encoding : chunked\r\n",
                                                    b"5\r\nhello\r\n0\r\n\r\n")),
    Case("smuggling", "te-tab-before-colon", post(b"Transfer-Encoding\t: chunked\r\n",
                                                  b"5\r\nhello\r\n0\r\n\r\n")),
    Case("smuggling", "te-chunked-chunked", te(b"chunked, chunked")),
    Case("smuggling", "te-twice", post(CHUNKED + CHUNKED, b"5\r\nhello\r\n0\r\n\r\n")),
    Case("smuggling", "te-gzip-chunked", te(b"gzip, chunked")),
    Case("smuggling", "te-chunked-gzip", te(b"chunked, gzip")),
    Case("smuggling", "te-empty", te(b"")),
    Case("smuggling", "te-empty-list-element", te(b", chunked")),
    Case("smuggling", "te-quoted", te(b'"chunked"')),
    Case("smuggling", "te-vertical-tab", te(b"\x0bchunked")),
    Case("smuggling", "te-nbsp", te(b"\xa0chunked")),
    Case("smuggling", "te-obs-fold", te(b"\r\n chunked"),
         stricter=OBS_FOLD),
    Case("smuggling", "te-http10", b"POST / HTTP/1.0\r\n" + H + CHUNKED +
         b"\r\n5\r\nhello\r\n0\r\n\r\n",
         stricter=TE_10),
    Case("smuggling", "te-on-get", get(headers=H + CHUNKED) + b"5\r\nhello\r\n0\r\n\r\n"),
    Case("smuggling", "te-hidden-by-connection", post(b"Connection: transfer-encoding\r\n" +
                                                      CHUNKED, b"5\r\nhello\r\n0\r\n\r\n")),
    Case("smuggling", "cl-hidden-by-connection", post(b"Connection: content-length\r\n"
                                                      b"Content-Length: 5\r\n", b"hello")),
    Case("smuggling", "te-underscore-name", post(b"Transfer_Encoding: chunked\r\n"
                                                 b"Content-Length: 5\r\n", b"hello")),

    # -- chunked framing
    Case("chunked", "chunk-size-overflow", chunked(b"FFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-size-16-digits", chunked(b"0000000000000005\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-size-not-hex", chunked(b"zz\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-size-negative", chunked(b"-5\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-size-0x", chunked(b"0x5\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-size-empty", chunked(b"\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-size-leading-space", chunked(b" 5\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-size-trailing-space", chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
         stricter=CHUNK_BWS),
    Case("chunked", "chunk-size-upper-hex", chunked(b"A\r\n0123456789\r\n0\r\n\r\n")),
    Case("chunked", "chunk-ext", chunked(b"5;foo=bar\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-ext-quoted", chunked(b'5;foo="b a r"\r\nhello\r\n0\r\n\r\n')),
    Case("chunked", "chunk-ext-bws", chunked(b"5 ;foo\r\nhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-ext-bare-lf", chunked(b"5;foo\nhello\r\n0\r\n\r\n"),
         stricter=CHUNK_CRLF),
    Case("chunked", "chunk-size-lf-only", chunked(b"5\nhello\r\n0\r\n\r\n"),
         stricter=CHUNK_CRLF),
    Case("chunked", "chunk-data-lf-only", chunked(b"5\r\nhello\n0\r\n\r\n"),
         stricter=CHUNK_CRLF),
    Case("chunked", "chunk-data-no-crlf", chunked(b"5\r\nhelloX0\r\n\r\n")),
    Case("chunked", "chunk-data-longer", chunked(b"5\r\nhelloEXTRA\r\n0\r\n\r\n")),
    Case("chunked", "chunk-bare-cr-size", chunked(b"5\rhello\r\n0\r\n\r\n")),
    Case("chunked", "chunk-last-lf-only", chunked(b"5\r\nhello\r\n0\n\n"),
         stricter=CHUNK_CRLF),
    Case("chunked", "chunk-trailer", chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")),
    Case("chunked", "chunk-trailer-obs-fold", chunked(b"5\r\nhello\r\n0\r\nX-T: 1\r\n 2\r\n\r\n"),
         stricter=TRAILER),
    Case("chunked", "chunk-trailer-bad-name", chunked(b"5\r\nhello\r\n0\r\nX T: 1\r\n\r\n"),
         stricter=TRAILER),
    Case("chunked", "chunk-smuggled-after-last", chunked(b"0\r\n\r\nGET /smuggled HTTP/1.1\r\n"
                                                         b"Host: x\r\n\r\n"), nreq=2),

    # -- line endings, folding
    Case("lines", "lf-only", b"GET / HTTP/1.1\nHost: x\n\n"),
    Case("lines", "lf-only-post", b"POST / HTTP/1.1\nHost: x\nContent-Length: 5\n\nhello"),
    Case("lines", "lf-mixed", b"GET / HTTP/1.1\r\nHost: x\nX-A: 1\r\n\n"),
    Case("lines", "bare-cr-value", get(headers=H + b"X-A: a\rb\r\n")),
    Case("lines", "bare-cr-line-end", get(headers=H + b"X-A: a\rX-B: b\r\n")),
    Case("lines", "bare-cr-request-line", b"GET /a\rb HTTP/1.1\r\n" + H + b"\r\n"),
    Case("lines", "bare-cr-after-version", b"GET / HTTP/1.1\r" + H + b"\r\n"),
    Case("lines", "cr-cr-lf", b"GET / HTTP/1.1\r\r\n" + H + b"\r\n"),
    Case("lines", "obs-fold-space", get(headers=H + b"X-A: a\r\n b\r\n"),
         stricter=OBS_FOLD),
    Case("lines", "obs-fold-tab", get(headers=H + b"X-A: a\r\n\tb\r\n"),
         stricter=OBS_FOLD),
    Case("lines", "obs-fold-host", b"GET / HTTP/1.1\r\nHost: x\r\n y\r\n\r\n",
         stricter=OBS_FOLD),
    Case("lines", "obs-fold-first-line", b"GET / HTTP/1.1\r\n X-A: a\r\n" + H + b"\r\n"),
    Case("lines", "leading-space-request-line", b" " + get()),
    Case("lines", "leading-lf-lines", b"\n\n" + get()),

    # -- request targets
    # a target in absolute-form goes on in origin-form with its authority as Host
    Case("target", "absolute-other-host", get(b"http://evil.example/x"),
         rfc=ABSOLUTE, expect=((b"/x", "evil.example"),)),
    Case("target", "absolute-other-port", get(b"http://x:81/y"),
         rfc=ABSOLUTE, expect=((b"/y", "x:81"),)),
    Case("target", "absolute-empty-path-query", get(b"http://x?a")),
    Case("target", "absolute-empty-host", get(b"http:///x"), stricter=NO_HOST),
    Case("target", "absolute-port-only", get(b"http://:80/x")),
    Case("target", "absolute-bad-port", get(b"http://x:8o/", headers=b"Host: x:8o\r\n"),
         stricter=HOST),
    Case("target", "absolute-no-slashes", get(b"http:x")),
    Case("target", "absolute-fragment", get(b"http://x/y#z")),
    Case("target", "absolute-11-no-host", get(b"http://x/y", headers=b""), stricter=HOST),
    Case("target", "mailto", get(b"mailto:a@b")),
    Case("target", "absolute-same-host", get(b"http://x/y")),
    Case("target", "absolute-same-host-port", get(b"http://x:80/y", headers=b"Host: x:80\r\n")),
    Case("target", "absolute-empty-path", get(b"http://x")),
    Case("target", "absolute-query", get(b"http://x/y?a=b")),
    Case("target", "absolute-https", get(b"https://x/y")),
    Case("target", "absolute-ftp", get(b"ftp://x/y"),
         stricter=SCHEME),
    Case("target", "absolute-http10-no-host", get(b"http://evil.example/x", b"HTTP/1.0", b"")),
    Case("target", "absolute-userinfo", get(b"http://u:p@x/"),
         stricter=USERINFO),
    Case("target", "absolute-userinfo-other", get(b"http://x@evil.example/")),
    Case("target", "absolute-upper-scheme", get(b"HTTP://x/y")),
    Case("target", "authority-form-get", get(b"evil.example:80")),
    Case("target", "authority-form-connect", get(b"x:80", method=b"CONNECT"),
         stricter=CONNECT),
    Case("target", "noslash", get(b"noslash")),
    Case("target", "asterisk-get", get(b"*"),
         stricter=STAR),
    Case("target", "asterisk-post", cl(b"5").replace(b"POST /", b"POST *", 1),
         stricter=STAR),
    Case("target", "fragment", get(b"/a#frag")),
    Case("target", "fragment-only", get(b"#")),
    Case("target", "space-in-target", get(b"/a b")),
    Case("target", "tab-in-target", get(b"/a\tb")),
    Case("target", "ctl-in-target", get(b"/a\x01b")),
    Case("target", "del-in-target", get(b"/a\x7fb"),
         stricter=DEL),
    Case("target", "nul-in-target", get(b"/a\x00b")),
    Case("target", "obs-text-in-target", get(b"/a\xffb")),
    Case("target", "backslash", get(b"/a\\b")),
    Case("target", "brace-pipe", get(b"/a{b}|c^d`")),
    Case("target", "quote-angle", get(b'/a"<b>')),
    Case("target", "percent-nul", get(b"/a%00b")),
    Case("target", "dot-segments", get(b"/a/../b")),
    Case("target", "double-slash", get(b"//x/y")),
    Case("target", "empty-target", get(b"")),
    Case("target", "long-8k", get(b"/" + b"a" * 8000)),
    Case("target", "long-20k", get(b"/" + b"a" * 20000)),

    # -- Host
    Case("host", "missing-host-11", get(headers=b""),
         stricter=HOST),
    Case("host", "two-hosts-same", get(headers=H + H),
         stricter=HOST),
    Case("host", "two-hosts-differ", get(headers=H + b"Host: y\r\n")),
    Case("host", "host-list", get(headers=b"Host: x, y\r\n"),
         stricter=HOST),
    Case("host", "host-empty", get(headers=b"Host: \r\n")),
    Case("host", "host-space", get(headers=b"Host: a b\r\n"),
         stricter=HOST),
    Case("host", "host-slash", get(headers=b"Host: a/b\r\n"),
         stricter=HOST),
    Case("host", "host-userinfo", get(headers=b"Host: u@x\r\n"),
         stricter=HOST),
    Case("host", "host-bad-port", get(headers=b"Host: x:8o\r\n"),
         stricter=HOST),
    Case("host", "host-ipv6", get(headers=b"Host: [::1]:80\r\n")),
    Case("host", "host-ctl", get(headers=b"Host: a\x01b\r\n"),
         stricter=HOST),
    Case("host", "host-obs-text", get(headers=b"Host: \xe9x\r\n"),
         stricter=HOST),
    Case("host", "host-underscore", get(headers=b"Host: a_b\r\n")),
    Case("host", "host-space-before-colon", get(headers=b"Host : x\r\n")),
    Case("host", "host-empty-port", get(headers=b"Host: x:\r\n")),
    Case("host", "host-default-port", get(headers=b"Host: x:80\r\n")),
    Case("host", "host-comma", get(headers=b"Host: x,y\r\n")),
    Case("host", "host-two-ports", get(headers=b"Host: x:80:80\r\n"), stricter=HOST),

    # -- versions
    # HTTP/1.2 to 1.9 go on as HTTP/1.1 (RFC 9110 2.5: a recipient processes a higher minor
    # version as the highest it conforms to), as HAProxy does
    Case("version", "http-1.2", get(version=b"HTTP/1.2")),
    Case("version", "http-1.9", get(version=b"HTTP/1.9")),
    Case("version", "http-1.2-post", cl(b"5").replace(b"HTTP/1.1", b"HTTP/1.2", 1)),
    Case("version", "http-2.0", get(version=b"HTTP/2.0"),
         stricter=MAJOR),
    Case("version", "http-3.0", get(version=b"HTTP/3.0"),
         stricter=MAJOR),
    Case("version", "http-0.9-line", b"GET /\r\n" + H + b"\r\n"),
    Case("version", "http-1.10", get(version=b"HTTP/1.10")),
    Case("version", "http-01.1", get(version=b"HTTP/01.1")),
    Case("version", "lower-case", get(version=b"http/1.1")),
    Case("version", "no-minor", get(version=b"HTTP/1")),
    Case("version", "trailing-space", get(version=b"HTTP/1.1 ")),
    Case("version", "space-inside", get(version=b"HTTP /1.1")),
    Case("version", "junk", get(version=b"HTTPS/1.1")),

    # -- methods
    # method names are case-sensitive tokens (RFC 9110 9.1): forwarded as they are
    Case("method", "lower-case", get(method=b"get")),
    Case("method", "mixed-case", get(method=b"Get")),
    Case("method", "bad-char", get(method=b"GE(T")),
    Case("method", "at-sign", get(method=b"G@T")),
    Case("method", "empty", b" / HTTP/1.1\r\n" + H + b"\r\n"),
    Case("method", "obs-text", get(method=b"G\xe9T")),
    Case("method", "long", get(method=b"X" * 2000)),
    Case("method", "double-space", b"GET  / HTTP/1.1\r\n" + H + b"\r\n",
         stricter=LINE),
    Case("method", "tab-separator", b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n",
         stricter=LINE),

    # -- header fields
    Case("field", "nul-in-value", get(headers=H + b"X-A: a\x00b\r\n"),
         stricter=CTL),
    Case("field", "nul-in-name", get(headers=H + b"X-\x00A: a\r\n")),
    Case("field", "ctl-in-value", get(headers=H + b"X-A: a\x01b\r\n"),
         stricter=CTL),
    Case("field", "del-in-value", get(headers=H + b"X-A: a\x7fb\r\n"),
         stricter=CTL),
    Case("field", "obs-text-in-value", get(headers=H + b"X-A: a\xe9b\r\n")),
    Case("field", "tab-in-value", get(headers=H + b"X-A: a\tb\r\n")),
    Case("field", "space-in-name", get(headers=H + b"X A: a\r\n")),
    Case("field", "space-before-colon", get(headers=H + b"X-A : a\r\n")),
    Case("field", "empty-name", get(headers=H + b": a\r\n")),
    Case("field", "bad-char-in-name", get(headers=H + b"X(A): a\r\n")),
    Case("field", "no-colon", get(headers=H + b"X-A a\r\n")),
    Case("field", "empty-value", get(headers=H + b"X-A:\r\n")),
    Case("field", "long-value-8k", get(headers=H + b"X-A: " + b"a" * 8000 + b"\r\n")),
    Case("field", "headers-90", get(headers=H + b"".join(b"X-H%d: v\r\n" % i
                                                         for i in range(90)))),
    # between HAProxy's field limit and rampart's: a limit, not a meaning (FIELDS)
    Case("field", "headers-120", get(headers=H + b"".join(b"X-H%d: v\r\n" % i
                                                          for i in range(120))),
         rfc=FIELDS, expect=((b"/", "x"),)),
    Case("field", "headers-200", get(headers=H + b"".join(b"X-H%d: v\r\n" % i
                                                          for i in range(200)))),

    # -- pipelining
    Case("pipeline", "two-good", get(b"/1") + get(b"/2"), nreq=2),
    Case("pipeline", "three-good", get(b"/1") + get(b"/2") + get(b"/3"), nreq=3),
    Case("pipeline", "post-then-get", cl(b"5") + get(b"/2"), nreq=2),
    Case("pipeline", "good-then-bad-line", get(b"/1") + b"GET /2 HTTP/1.1 x\r\n" + H + b"\r\n",
         nreq=2),
    Case("pipeline", "good-then-cl-te", get(b"/1") + post(b"Content-Length: 5\r\n" + CHUNKED,
                                                          b"0\r\n\r\n"), nreq=2,
         stricter=CL_TE),
    Case("pipeline", "good-bad-good", get(b"/1") + get(b"/2", headers=b"") + get(b"/3"),
         nreq=3, stricter=HOST),
    Case("pipeline", "bad-then-good", get(b"/1", headers=b"") + get(b"/2"), nreq=2,
         stricter=HOST),
    Case("pipeline", "good-then-absolute", get(b"/1") + get(b"http://evil.example/2"), nreq=2,
         rfc=ABSOLUTE, expect=((b"/1", "x"), (b"/2", "evil.example"))),
    Case("pipeline", "good-then-fragment", get(b"/1") + get(b"/2#x"), nreq=2),

    # -- Expect, Connection, Upgrade
    Case("misc", "expect-100-post", post(b"Expect: 100-continue\r\nContent-Length: 5\r\n",
                                         b"hello")),
    Case("misc", "expect-100-get", get(headers=H + b"Expect: 100-continue\r\n")),
    Case("misc", "expect-unknown", get(headers=H + b"Expect: 200-ok\r\n")),
    Case("misc", "connection-upgrade-no-upgrade", get(headers=H + b"Connection: Upgrade\r\n")),
    Case("misc", "upgrade-no-connection", get(headers=H + b"Upgrade: websocket\r\n")),
    Case("misc", "connection-close", get(headers=H + b"Connection: close\r\n")),
    Case("misc", "connection-names-host", get(headers=H + b"Connection: host\r\n")),

    # -- slow senders (one byte per segment)
    Case("slow", "slow-get", get(), slow=True),
    Case("slow", "slow-post-cl", cl(b"5"), slow=True),
    Case("slow", "slow-cl-te", post(b"Content-Length: 5\r\n" + CHUNKED, b"0\r\n\r\n"),
         slow=True, stricter=CL_TE),
    Case("slow", "slow-absolute", get(b"http://evil.example/x"), slow=True,
         rfc=ABSOLUTE, expect=((b"/x", "evil.example"),)),
]


# ---------------------------------------------------------------- the balancers

HAPROXY_CFG = """\
global
    nbthread 1
    maxconn 200
defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 5s
    timeout server 5s
    timeout http-request 3s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server rec {backend}
"""


class Battery:
    """The recorders, HAProxy, and one rampart lb per I/O path, shared by the module."""

    def __init__(self, directory):
        self.dir = pathlib.Path(directory)
        self.h_rec, self.r_rec = Recorder(), Recorder()
        self.h_port = free_port()
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=self.h_port, backend=self.h_rec.addr))
        self.h_log = open(self.dir / "haproxy.log", "wb")
        self.haproxy = subprocess.Popen([HAPROXY, "-f", str(cfg), "-db"],
                                        stdin=subprocess.DEVNULL, stdout=self.h_log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.h_port, proc=self.haproxy)
        self.lbs = {}
        self.h_results = {}
        self.rows = []

    def lb(self, io_uring):
        if io_uring not in self.lbs:
            port = free_port()
            lis = listener("web", port, [server("rec", self.r_rec.addr)], check=NO_CHECK,
                           timeout={"request": "3s", "server": "5s", "client": "5s"})
            inst = Lb(self.dir / f"lb-{io_uring}", [lis], extra={"io-uring": io_uring})
            self.lbs[io_uring] = inst.start()
        return self.lbs[io_uring]

    def haproxy_case(self, case):
        key = (case.group, case.id)
        if key not in self.h_results:
            assert self.haproxy.poll() is None, "haproxy exited"
            self.h_results[key] = run_case(self.h_port, self.h_rec, case)
        return self.h_results[key]

    def rampart_case(self, io_uring, case):
        inst = self.lb(io_uring)
        out = run_case(inst.port, self.r_rec, case)
        assert inst.alive(), inst.log()[-2000:]
        return out

    def close(self):
        bad = []
        for io_uring, inst in self.lbs.items():
            rc = inst.stop()
            if rc != 0:
                bad.append(f"lb io-uring={io_uring}: exit {rc}\n{inst.log()[-2000:]}")
        kill_group(self.haproxy)
        self.h_log.close()
        self.h_rec.stop()
        self.r_rec.stop()
        return bad

    def table(self):
        w = max(len(c.id) for c in CASES)
        out = [f"{'case':{w}}  {'path':8}  result"]
        for case, path, h, r in self.rows:
            note = " [rampart stricter]" if case.stricter else " [RFC]" if case.rfc else ""
            out.append(f"{case.group + '/' + case.id:{w + 10}}  {path:8}  haproxy: {h.show()}")
            out.append(f"{'':{w + 10}}  {'':8}  rampart: {r.show()}{note}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def battery():
    if not pathlib.Path(HAPROXY).exists():
        pytest.fail(f"{HAPROXY} is missing (Debian's haproxy: make deps)")
    with tempfile.TemporaryDirectory(prefix="rampart-battery-") as d:
        b = Battery(d)
        try:
            yield b
        finally:
            bad = b.close()
            print("\n" + b.table())
        assert not bad, "\n".join(bad)


def check(case, h, r):
    if len(r.forwarded) < case.nreq:
        # what rampart did not forward it answered with an error, or it closed: no hang
        assert r.closed or any(int(st.split(b" ")[1]) >= 400 for st in r.statuses), r.show()
    if case.rfc:
        # rampart's own reading, argued in case.rfc: exactly these requests, each with one
        # Host field
        got = [(q.target, q.values("host")) for q in r.forwarded]
        assert got == [(t, [host]) for t, host in case.expect], (
            f"rampart forwarded {r.show()}; haproxy {h.show()}")
        return
    # a request HAProxy cut short (its head went on, then it found the body bad: which comes
    # first is a race inside HAProxy) counts as refused; rampart's count as forwarded
    hs = [semantics(q) for q in h.forwarded if q.complete and q.framed]
    rs = [semantics(q) for q in r.forwarded]
    assert len(rs) <= len(hs), (
        f"rampart forwarded {len(rs)} request(s) where HAProxy forwarded {len(hs)}: "
        f"haproxy {h.show()}; rampart {r.show()}")
    for k, (a, b) in enumerate(zip(rs, hs)):
        assert a == b, f"request {k}: rampart forwarded {a}, HAProxy the normalised {b}"
    if case.stricter:
        assert len(rs) < case.nreq, (
            f"rampart forwarded what it should refuse ({case.stricter}): {r.show()}")
    else:
        assert len(rs) == len(hs), (
            f"rampart refused what HAProxy forwards: haproxy {h.show()}; rampart {r.show()}")


@pytest.mark.parametrize("case", CASES, ids=[c.group + "-" + c.id for c in CASES])
def test_battery(battery, lb_io_path, case):
    h = battery.haproxy_case(case)
    r = battery.rampart_case(lb_io_path, case)
    battery.rows.append((case, "io_uring" if lb_io_path else "epoll", h, r))
    check(case, h, r)
