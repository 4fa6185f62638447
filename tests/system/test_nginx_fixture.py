"""Self-test of the nginx backend fixture (tests/system/nginx.py) the lb system tests use."""
import hashlib
import http.client
import os
import socket
import subprocess
import time

import pytest

from nginx import (content, content_sha256, http_get, nginx, nginx_backend,  # noqa: F401
                   nginx_pair, parse_headers_answer, port_open, py_backend, ws_connect)


def get(backend, path="/", **kw):
    return http_get(backend.addr, path, **kw)


def refused(port):
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
    return False


def test_two_backends_answer_their_names(nginx_pair):
    s1, s2 = nginx_pair
    assert s1.port != s2.port
    assert s1.addr == f"127.0.0.1:{s1.port}"
    for b in (s1, s2):
        status, headers, body = get(b)
        assert status == 200 and body == f"{b.name}\n".encode()
        assert headers["x-server"] == b.name
        c = http.client.HTTPConnection("127.0.0.1", b.port, timeout=5)
        for _ in range(3):  # keep-alive: three requests on one connection
            c.request("GET", "/anything")
            r = c.getresponse()
            assert r.read() == f"{b.name}\n".encode()
        c.close()
    log = s1.access_log()
    assert [e["connection_requests"] for e in log[-3:]] == ["1", "2", "3"]
    assert len({e["connection"] for e in log[-3:]}) == 1


def test_stop_refuses_then_start_on_same_port(nginx_pair):
    s1, s2 = nginx_pair
    port = s1.port
    s1.stop()
    assert refused(port)
    assert get(s2)[2] == b"s2\n"  # the other one is untouched
    s1.start()
    assert s1.port == port
    assert get(s1)[2] == b"s1\n"
    s1.kill()
    assert refused(port)
    s1.start()
    assert get(s1)[2] == b"s1\n"


def test_reload_keeps_serving(nginx):
    s1 = nginx("s1")
    c = http.client.HTTPConnection("127.0.0.1", s1.port, timeout=5)
    c.request("GET", "/")
    assert c.getresponse().read() == b"s1\n"
    s1.reload(name="s1-new")
    assert get(s1)[2] == b"s1-new\n"
    s1.reload(name="s1")
    assert get(s1)[2] == b"s1\n"
    c.close()


def test_locations(nginx):
    b = nginx("s1")
    assert get(b, "/status/503")[0] == 503
    assert get(b, "/status/404")[0] == 404
    assert get(b, "/status/204")[:1] == (204,)
    status, headers, _ = get(b, "/status/302")
    assert status == 302 and headers["location"].endswith("/")
    t0 = time.monotonic()
    assert get(b, "/slow?ms=200")[2] == b"s1\n"
    assert time.monotonic() - t0 >= 0.19
    _, _, body = get(b, "/headers", headers={"X-Forwarded-For": "192.0.2.1",
                                             "X-Forwarded-Proto": "https",
                                             "Forwarded": "for=192.0.2.1;proto=https"})
    h = parse_headers_answer(body)
    assert h["x-forwarded-for"] == "192.0.2.1"
    assert h["x-forwarded-proto"] == "https"
    assert h["forwarded"] == "for=192.0.2.1;proto=https"
    assert h["host"] == b.addr
    assert h["via"] is None
    assert h["remote-addr"] == "127.0.0.1"
    raw = get(b, "/raw-headers", headers={"X-Dup": "a"})[2]
    assert raw.startswith(b"GET /raw-headers HTTP/1.1\r\n") and b"X-Dup: a\r\n" in raw


def test_big_file_and_upload(nginx):
    b = nginx("s1")
    size = 3 * 1024 * 1024 + 7
    sha = b.make_file(size)
    assert sha == content_sha256(size)
    status, headers, body = get(b, f"/big/{size}")
    assert status == 200 and int(headers["content-length"]) == size
    assert hashlib.sha256(body).hexdigest() == sha
    assert get(b, "/big/12345")[0] == 404  # not made
    data = content(2_000_000)
    status, _, body = get(b, "/upload", method="POST", body=data)
    assert status == 200 and body.startswith(b"s1\n")
    assert b.upload_result(body) == (len(data), hashlib.sha256(data).hexdigest())


def test_chunked_response(nginx):
    b = nginx("s1")
    raw = subprocess.run(["curl", "-s", "--raw", "-i", f"http://{b.addr}/chunked"],
                         capture_output=True, timeout=10).stdout
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert body == b"3\r\ns1\n\r\n2\r\n1\n\r\n2\r\n2\n\r\n2\r\n3\n\r\n0\r\n\r\n"
    status, headers, body = get(b, "/chunked-big")
    assert headers["transfer-encoding"] == "chunked" and len(body) == 3 + 65536 * 16


def test_py_backend_websocket_and_upload(py_backend):
    w = py_backend("w1")
    ws = ws_connect(w.addr)
    assert "X-Server: w1" in ws.response_head
    ws.send("hello")
    assert ws.recv() == "hello"
    ws.send(b"\x00" * 70000)
    assert ws.recv() == b"\x00" * 70000
    ws.close()
    data = content(5_000_000)
    _, _, body = http_get(w.addr, "/upload", method="POST", body=data)
    assert body == f"w1\nbytes={len(data)}\nsha256={content_sha256(len(data))}\n".encode()
    port = w.port
    w.stop()
    assert refused(port)
    w.start()
    assert w.port == port and http_get(w.addr)[2] == b"w1\n"


def test_teardown_leaves_nothing():
    """A backend made outside the fixture and closed: process gone, port refused, dir gone."""
    with nginx_backend("tmp") as b:
        port, d, pid = b.port, b.dir, b.pid
    assert refused(port) and not d.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not port_open(port)
