"""rampart lb limits: slow request heads (slowloris), per-server maxconn with its queue and
queue timeout, the listener's connection limit. Real nginx backends on loopback."""
import socket
import threading
import time

from lbutil import free_port, http_get, lb, listener, parse_response, server, wait_for  # noqa: F401
from nginx import nginx  # noqa: F401

NO_CHECK = {"type": "none"}


def test_slow_request_head_gets_408_and_close(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    lb([listener("web", port, [server("s1", s1.addr)], check=NO_CHECK,
                 timeout={"request": "1s"})])
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    out, sent = b"", 0
    deadline = time.monotonic() + 15
    c.settimeout(0.2)
    # one byte every 200 ms: the head would need 15 s; the lb gives it 1 s in all
    while time.monotonic() < deadline and sent < len(head):
        try:
            c.sendall(head[sent:sent + 1])
            sent += 1
        except OSError:
            break
        try:
            b = c.recv(4096)
            if not b:
                break
            out += b
        except socket.timeout:
            pass
    with_rest = out
    c.close()
    assert with_rest.startswith(b"HTTP/1.1 408"), with_rest
    assert sent < len(head)


def _slow(port, ms, results, i):
    results[i] = http_get(port, f"/slow?ms={ms}", timeout=20)[0]


def test_server_maxconn_queues_requests(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, [server("s1", s1.addr, maxconn=1)], check=NO_CHECK)])
    results = [None] * 4
    threads = [threading.Thread(target=_slow, args=(port, 300, results, i)) for i in range(4)]
    for t in threads:
        t.start()
    # while they wait, never more than one is in flight on the server
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, l.servers()["s1"]["active"])
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert results == [200] * 4
    assert peak <= 1


def test_queue_timeout_answers_503(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    lb([listener("web", port, [server("s1", s1.addr, maxconn=1)], check=NO_CHECK,
                 timeout={"queue": "300ms"})])
    results = [None] * 2
    slow = threading.Thread(target=_slow, args=(port, 3000, results, 0))
    slow.start()
    time.sleep(0.5)
    st, _, body, _ = parse_response(_get_raw(port, "/"))
    slow.join()
    assert st == 503, body
    assert results[0] == 200


def test_full_queue_answers_503_at_once(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    lb([listener("web", port, [server("s1", s1.addr, maxconn=1)], check=NO_CHECK,
                 queue=0)])
    results = [None]
    slow = threading.Thread(target=_slow, args=(port, 2000, results, 0))
    slow.start()
    time.sleep(0.5)
    st = parse_response(_get_raw(port, "/"))[0]
    slow.join()
    assert st == 503 and results[0] == 200


def _read_all(c):
    """What c receives until the peer closes; closes c."""
    out = b""
    with c:
        while b := c.recv(65536):
            out += b
    return out


def _get_raw(port, path):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return _read_all(c)


def test_queue_limit_counts_all_threads(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    l = lb([listener("web", port, [server("s1", s1.addr, maxconn=1)], check=NO_CHECK,
                     queue=1, timeout={"queue": "20s"})], threads=4)
    first = [None]
    slow = threading.Thread(target=_slow, args=(port, 3000, first, 0))
    slow.start()
    wait_for(lambda: l.servers()["s1"]["active"] == 1, what="the slow request in flight")
    # eight clients, spread over the four threads by SO_REUSEPORT: one waits, the queue is
    # full for the other seven, whichever thread took them
    results = [None] * 8
    clients = [threading.Thread(target=lambda i=i: results.__setitem__(
        i, parse_response(_get_raw(port, "/"))[0])) for i in range(8)]
    for t in clients:
        t.start()
    for t in clients + [slow]:
        t.join()
    assert first == [200]
    assert sorted(results) == [200] + [503] * 7, results


def test_listener_maxconn_holds_new_clients_back(lb, nginx):
    s1 = nginx("s1")
    port = free_port()
    lb([listener("web", port, [server("s1", s1.addr)], check=NO_CHECK, maxconn=2)])
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
    for c in held:
        # clients in the middle of a request (a silent one is not taken before it speaks:
        # defer-accept)
        c.sendall(b"GET / HTTP/1.1\r\n")
    try:
        # a third client connects (kernel backlog) but is not served while two are open
        third = socket.create_connection(("127.0.0.1", port), timeout=5)
        third.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        third.settimeout(1.0)
        try:
            early = third.recv(100)
        except socket.timeout:
            early = b""
        assert early == b""
    finally:
        for c in held:
            c.close()
    # one slot frees: it is served
    third.settimeout(10)
    out = _read_all(third)
    assert out.startswith(b"HTTP/1.1 200"), out
