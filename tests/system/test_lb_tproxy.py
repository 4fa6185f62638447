"""`rampart lb` with `transparent: true` for a client whose address is not local to the
balancer: three network namespaces made by the test (client, lb, server) joined by veth pairs,
and on the lb the policy routing that rampart.yaml(5) documents (the nftables form). The server
must see the client's own address; with `transparent: false` it sees the balancer's. Over IPv4
and IPv6:

    client 10.77.1.2 --veth-- 10.77.1.1 lb 10.77.2.1 --veth-- 10.77.2.2 server
    client fd77:1::2 --veth-- fd77:1::1 lb fd77:2::1 --veth-- fd77:2::2 server

Traffic stays inside these namespaces. Needs root, iproute2 and nftables.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from lbutil import Lb, listener, server, wait_for

# client, lb (client side), lb (server side), server; prefix length
NETS = {4: ("10.77.1.2", "10.77.1.1", "10.77.2.1", "10.77.2.2", 24),
        6: ("fd77:1::2", "fd77:1::1", "fd77:2::1", "fd77:2::2", 64)}
SERVER_PORT, LB_PORT = 8080, 8000

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"),
                                reason="needs root and nft (nftables)")

# answers every GET with the address it was connected from
BACKEND = textwrap.dedent("""\
    import http.server, socket, socketserver, sys
    class S(http.server.HTTPServer):
        address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
        def server_bind(self):
            # HTTPServer's own looks its name up in DNS, which this namespace has not
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = self.server_address[:2]
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = ("peer=%s\\n" % self.client_address[0]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a):
            pass
    s = S((sys.argv[1], int(sys.argv[2])), H)
    print("ready", flush=True)
    s.serve_forever()
""")

CLIENT_GET = textwrap.dedent("""\
    import sys, urllib.request
    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end="")
""")


def hostport(addr, port):
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def sh(*cmd, ns=None):
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    r = subprocess.run(full, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (full, r.stderr)
    return r.stdout


def divert(family):
    """rampart.yaml(5), Transparent proxying, step 3 (nftables form)."""
    table, ip, default = ("ip", "-4", "0.0.0.0/0") if family == 4 else ("ip6", "-6", "::/0")
    return (["nft", "add", "table", table, "filter"],
            ["nft", "add", "chain", table, "filter", "divert",
             "{ type filter hook prerouting priority -150; }"],
            ["nft", "add", "rule", table, "filter", "divert", "meta", "l4proto", "tcp",
             "socket", "transparent", "1", "meta", "mark", "set", "1", "accept"],
            ["ip", ip, "rule", "add", "fwmark", "1", "lookup", "100"],
            ["ip", ip, "route", "add", "local", default, "dev", "lo", "table", "100"])


@pytest.fixture(params=[4, 6], ids=["ipv4", "ipv6"])
def topo(request):
    family = request.param
    client, lb_in, lb_out, srv, plen = NETS[family]
    tag = str(os.getpid())
    ns = {k: f"rp-{k}-{tag}" for k in ("cli", "lb", "srv")}
    try:
        for n in ns.values():
            sh("ip", "netns", "add", n)
            sh("ip", "link", "set", "lo", "up", ns=n)
        sh("ip", "link", "add", "c0", "netns", ns["cli"], "type", "veth", "peer", "name", "c1",
           "netns", ns["lb"])
        sh("ip", "link", "add", "s1", "netns", ns["lb"], "type", "veth", "peer", "name", "s0",
           "netns", ns["srv"])
        for n, dev, addr in ((ns["cli"], "c0", client), (ns["lb"], "c1", lb_in),
                             (ns["lb"], "s1", lb_out), (ns["srv"], "s0", srv)):
            # nodad: an IPv6 address is usable at once, not after duplicate detection
            sh("ip", "addr", "add", f"{addr}/{plen}", "dev", dev, *(["nodad"] * (family == 6)),
               ns=n)
            sh("ip", "link", "set", dev, "up", ns=n)
        # the server's replies to the client go back through the balancer
        sh("ip", "route", "add", "default", "via", lb_in, ns=ns["cli"])
        sh("ip", "route", "add", "default", "via", lb_out, ns=ns["srv"])
        # the lb namespace does not forward, so a reply reaches the client side only through
        # rampart's socket
        for cmd in divert(family):
            sh(*cmd, ns=ns["lb"])
        forwarding = "net.ipv4.ip_forward" if family == 4 else "net.ipv6.conf.all.forwarding"
        assert sh("sysctl", "-n", forwarding, ns=ns["lb"]).strip() == "0"
        backend = subprocess.Popen(["ip", "netns", "exec", ns["srv"], sys.executable, "-c",
                                    BACKEND, srv, str(SERVER_PORT)],
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert backend.stdout.readline().strip() == "ready"
            ns["addrs"] = NETS[family]
            yield ns
        finally:
            backend.kill()
            backend.wait()
    finally:
        for k in ("cli", "lb", "srv"):
            subprocess.run(["ip", "netns", "del", ns[k]], capture_output=True)


def start_lb(tmp_path, ns, transparent):
    _, lb_in, _, srv, _ = ns["addrs"]
    lis = listener("web", LB_PORT, [server("s1", hostport(srv, SERVER_PORT))],
                   check={"type": "none"}, transparent=transparent)
    lis["bind"] = hostport(lb_in, LB_PORT)
    inst = Lb(tmp_path / f"lb-{transparent}", [lis], netns=ns["lb"])
    return inst.start()


def client_get(ns):
    url = f"http://{hostport(ns['addrs'][1], LB_PORT)}/"
    out = []

    def attempt():
        r = subprocess.run(["ip", "netns", "exec", ns["cli"], sys.executable, "-c", CLIENT_GET,
                            url], capture_output=True, text=True, timeout=30)
        out[:] = [r.stdout, r.stderr]
        return r.returncode == 0

    wait_for(attempt, what=f"an answer from {url} in {ns['cli']}")
    return out[0]


@pytest.mark.parametrize("transparent", [True, False])
def test_server_sees_the_foreign_client_address(tmp_path, topo, transparent):
    client, _, lb_out, _, _ = topo["addrs"]
    seen = client if transparent else lb_out
    inst = start_lb(tmp_path, topo, transparent)
    try:
        assert client_get(topo) == f"peer={seen}\n"
        assert client_get(topo) == f"peer={seen}\n"  # never pooled: a new bind each time
        (line,) = inst.log_lines(" access ")[:1]
        assert f"client={hostport(client, '')}" in line and "status=200" in line, line
    finally:
        assert inst.stop() == 0, inst.log()[-2000:]
