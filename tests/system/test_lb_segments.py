"""What `Connection: close` requests cost on the wire: the TCP segments rampart sends to its
clients, counted by nftables in a network namespace made by the test (its loopback only).

A client that asks for a close is answered with the response and the FIN in one segment, and
the ACK of its request goes with that response (`smart-accept`, TCP_QUICKACK off on the
listener): SYN-ACK, response+FIN and the last ACK, three segments per request. With
`smart-accept: false` the request is acked alone as soon as it is read: one more. The same
holds for an answer of rampart's own (a 400), which goes out before the lingering close.
Needs root and nft (nftables).
"""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from lbutil import Lb, listener, server

SERVER_PORT, SMART_PORT, PLAIN_PORT = 8080, 8000, 8001
REQUESTS = 200

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"),
                                reason="needs root and nft (nftables)")

# HTTP/1.1 with a length: the balancer keeps one pooled connection to it
BACKEND = textwrap.dedent("""\
    import http.server, socketserver
    class S(http.server.ThreadingHTTPServer):
        def server_bind(self):
            socketserver.TCPServer.server_bind(self)  # no DNS look-up in this namespace
            self.server_name, self.server_port = self.server_address[:2]
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self):
            # in one write, as nginx does (a head sent alone goes on alone)
            self.wfile.write(b"HTTP/1.1 200 OK\\r\\nContent-Length: 6\\r\\n\\r\\nhello\\n")
        def log_message(self, *a):
            pass
    s = S(("127.0.0.1", %d), H)
    print("ready", flush=True)
    s.serve_forever()
""" % SERVER_PORT)

# n requests, one connection each, read to the end; argv: port, n, request, and how the
# answer starts and ends
CLIENT = textwrap.dedent("""\
    import socket, sys
    port, n = int(sys.argv[1]), int(sys.argv[2])
    request, start, end = (a.encode() for a in sys.argv[3:6])
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(request)
        buf = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            buf += d
        c.close()
        if not (buf.startswith(start) and buf.endswith(end)):
            sys.exit("request %d: %r" % (i, buf))
    print("ok")
""")


def sh(*cmd, ns):
    r = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, (cmd, r.stderr)
    return r.stdout


@pytest.fixture
def netns():
    ns = f"rp-seg-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("nft", "add table inet seg; add chain inet seg out { type filter hook output "
           "priority 0; }", ns=ns)
        for port in (SMART_PORT, PLAIN_PORT):
            sh("nft", f"add rule inet seg out tcp sport {port} counter", ns=ns)
        backend = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", BACKEND],
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert backend.stdout.readline().strip() == "ready"
            yield ns
        finally:
            backend.kill()
            backend.wait()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def sent_from(ns, port):
    """Packets counted so far from the balancer's listening port."""
    for line in sh("nft", "list chain inet seg out", ns=ns).splitlines():
        if f"tcp sport {port} " in line:
            return int(line.split("packets")[1].split()[0])
    raise AssertionError(f"no counter for port {port}")


CLOSE = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def segments_per_request(ns, port, request, answer):
    before = sent_from(ns, port)
    assert sh(sys.executable, "-c", CLIENT, str(port), str(REQUESTS), request, *answer,
              ns=ns).strip() == "ok"
    return (sent_from(ns, port) - before) / REQUESTS


# a proxied answer, and one of rampart's own (400: a request line without a version)
@pytest.mark.parametrize("request_, answer", [
    (CLOSE, ("HTTP/1.1 200 ", "\r\n\r\nhello\n")),
    ("GET /\r\n\r\n", ("HTTP/1.1 400 ", "\r\n\r\n400 Bad Request\n")),
], ids=["proxied", "error"])
def test_close_answers_take_three_segments(tmp_path, netns, request_, answer):
    backend = [server("s1", f"127.0.0.1:{SERVER_PORT}")]
    lis = [listener("smart", SMART_PORT, backend, check={"type": "none"}),
           listener("plain", PLAIN_PORT, backend, check={"type": "none"}, smart_accept=False)]
    inst = Lb(tmp_path / "lb", lis, netns=netns).start()
    try:
        per_request = {port: segments_per_request(netns, port, request_, answer)
                       for port in (SMART_PORT, PLAIN_PORT)}
        # a delayed-ACK timer may add a segment to a request answered slowly (a loaded host)
        assert 3.0 <= per_request[SMART_PORT] < 3.5, per_request
        assert per_request[PLAIN_PORT] >= per_request[SMART_PORT] + 0.8, per_request
    finally:
        assert inst.stop() == 0, inst.log()[-2000:]
