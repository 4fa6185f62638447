"""`rampart lb` tcp mode on both of its paths: through io_uring (the default) and through
epoll (`io-uring: false`, also what runs where the kernel refuses io_uring). A backend written
here echoes what it gets and, after the client's EOF, says how many bytes it saw: that checks
byte order, the half-close passed on both ways, and the access log's byte counts."""
import contextlib
import os
import socket
import threading

import pytest

from lbutil import free_port, lb, listener, server, wait_for  # noqa: F401

NO_CHECK = {"type": "none"}
PATHS = [pytest.param(True, id="io_uring"), pytest.param(False, id="epoll")]


class EchoBackend:
    """Echoes every byte; on EOF from the client answers b"BYE <n>" (n bytes seen) and closes."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        n = 0
        with c:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                n += len(b)
                c.sendall(b)
            c.sendall(b"BYE %d" % n)

    def close(self):
        self.sock.close()


@pytest.fixture
def echo():
    made = []

    def make():
        made.append(EchoBackend())
        return made[-1]

    yield make
    for e in made:
        e.close()


def tcp_lb(lb, echo, ring, **kw):
    e = echo()
    port = free_port()
    return lb([listener("raw", port, [server("e1", e.addr)], mode="tcp", check=NO_CHECK, **kw)],
              extra={"io-uring": ring})


def recv_exactly(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        assert b, f"EOF after {len(out)} of {n} bytes"
        out += b
    return out


def recv_to_eof(s):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def access_bytes(l, port):
    """(bytes_in, bytes_out) of the access log line of the client on local port port (the
    lb's own readiness probe at start makes a line too)."""
    def line():
        return [a for a in l.access_lines() if a.get("client", "").endswith(f":{port}")]
    wait_for(line, what=f"the access log line of client port {port}")
    a = line()[0]
    return int(a["bytes_in"]), int(a["bytes_out"])


@pytest.mark.parametrize("ring", PATHS)
def test_small_exchanges_in_order_and_half_close(lb, echo, ring):
    """300 round trips of 1 byte to 6 KiB come back intact; the client's half-close reaches
    the backend, whose answer after it still comes through, then the backend's EOF."""
    l = tcp_lb(lb, echo, ring)
    s = socket.create_connection(("127.0.0.1", l.port), timeout=10)
    port = s.getsockname()[1]
    sent = 0
    for i in range(300):
        msg = os.urandom(1 + (i * 97) % 6000)
        s.sendall(msg)
        assert recv_exactly(s, len(msg)) == msg, f"round trip {i}"
        sent += len(msg)
    s.shutdown(socket.SHUT_WR)
    assert recv_to_eof(s) == b"BYE %d" % sent
    s.close()
    assert access_bytes(l, port) == (sent, sent + len(b"BYE %d" % sent))


@pytest.mark.parametrize("ring", PATHS)
def test_bulk_after_small_then_small_again(lb, echo, ring):
    """A tunnel that starts small and turns bulk (a full buffer read: the io_uring path hands
    it to splice(2)) keeps every byte in order both ways, and small exchanges go on after."""
    l = tcp_lb(lb, echo, ring)
    s = socket.create_connection(("127.0.0.1", l.port), timeout=30)
    port = s.getsockname()[1]
    s.sendall(b"hello")
    assert recv_exactly(s, 5) == b"hello"
    big = os.urandom(8 * 1024 * 1024)
    got = []
    reader = threading.Thread(target=lambda: got.append(recv_exactly(s, len(big))))
    reader.start()
    s.sendall(big)
    reader.join(60)
    assert got and got[0] == big
    for msg in (b"x", b"after the bulk", os.urandom(3000)):
        s.sendall(msg)
        assert recv_exactly(s, len(msg)) == msg
    s.shutdown(socket.SHUT_WR)
    total = 5 + len(big) + 1 + 14 + 3000
    assert recv_to_eof(s) == b"BYE %d" % total
    s.close()
    assert access_bytes(l, port) == (total, total + len(b"BYE %d" % total))


@pytest.mark.parametrize("ring", PATHS)
def test_server_side_eof_first(lb, echo, ring):
    """The backend closes first (its BYE after our EOF, here forced by a client that sent
    nothing): the client gets the bytes, then EOF, and the session ends."""
    l = tcp_lb(lb, echo, ring)
    s = socket.create_connection(("127.0.0.1", l.port), timeout=10)
    port = s.getsockname()[1]
    s.shutdown(socket.SHUT_WR)
    assert recv_to_eof(s) == b"BYE 0"
    s.close()
    assert access_bytes(l, port) == (0, 5)


@pytest.mark.parametrize("ring", PATHS)
def test_idle_tunnel_closed_after_timeout(lb, echo, ring):
    """timeout.tunnel: a tcp connection with no traffic is closed by the balancer."""
    l = tcp_lb(lb, echo, ring, timeout={"tunnel": "1s"})
    s = socket.create_connection(("127.0.0.1", l.port), timeout=20)
    s.sendall(b"ping")
    assert recv_exactly(s, 4) == b"ping"
    # the backend answers our (never sent) EOF only if the balancer passes one on: what the
    # client sees after the timeout is the balancer's close
    assert recv_to_eof(s) == b""
    s.close()


@pytest.mark.parametrize("ring", PATHS)
def test_client_reset_mid_tunnel(lb, echo, ring):
    """A client that resets its connection with a tunnel open ends the session (no fd left
    behind), and the balancer goes on serving."""
    l = tcp_lb(lb, echo, ring)
    base = l.socket_count()
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", l.port), timeout=10)
        s.sendall(b"abc")
        assert recv_exactly(s, 3) == b"abc"
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    wait_for(lambda: l.socket_count() <= base, what="the sessions' sockets closed")
    s = socket.create_connection(("127.0.0.1", l.port), timeout=10)
    s.sendall(b"still")
    assert recv_exactly(s, 5) == b"still"
    s.close()


@pytest.mark.parametrize("ring", PATHS)
def test_the_path_in_use(lb, echo, ring):
    """io-uring: true gives the worker an io_uring instance (this kernel allows it); false
    gives none."""
    l = tcp_lb(lb, echo, ring)
    links = []
    for fd in os.listdir(f"/proc/{l.pid}/fd"):
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            links.append(os.readlink(f"/proc/{l.pid}/fd/{fd}"))
    assert any("io_uring" in x for x in links) == ring, links
