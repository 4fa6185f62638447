"""Fixtures for test_guard_fleet.py and bench/guard/fleet: a small fleet in network namespaces
of the test's own, joined by a Linux bridge in a hub namespace:

    hub  (bridge br0)
    db   10.98.0.10   PostgreSQL 15 (pg-test-server.sh run inside the namespace)
    a    10.98.0.1    rampart guard (share.name a), a TCP listener on port 22
    b    10.98.0.2    "        (b)
    c    10.98.0.3    "        (c)
    x    10.98.0.66, 10.98.0.67   the attacker and an innocent address

Nothing touches the host's firewall or network: every nft and ip command runs in one of these
namespaces. The daemons and namespaces are guardstate's (Daemon, Netns); PostgreSQL is
pgutil's cluster, started and stopped through `ip netns exec` so that it listens on the db
namespace's address (its Unix socket lives in the cluster's directory, so pg.query() works
from the host's namespace as before).
"""
import json
import subprocess
import tempfile
import time
import weakref

import pgutil
from guardstate import Daemon, Netns
from guardutil import sh, start_listener
from sshdutil import wait_until

NET = "10.98.0"
DB_ADDR = f"{NET}.10"
HOSTS = {"a": f"{NET}.1", "b": f"{NET}.2", "c": f"{NET}.3"}
ATTACKER = f"{NET}.66"
INNOCENT = f"{NET}.67"
PG_PORT = 5432  # the db namespace is the test's own: nothing else listens there
WHITELIST = "192.0.2.0/24"  # in every machine's configuration


class Topology:
    """The namespaces and the bridge; close() deletes them (killing what still runs)."""

    def __init__(self, tag):
        self.nets = []
        self.ns = {}
        try:
            self.hub = self._netns(f"{tag}h")
            sh("ip", "link", "add", "br0", "type", "bridge", "forward_delay", "0", ns=self.hub)
            sh("ip", "link", "set", "br0", "up", ns=self.hub)
            addrs = {"db": [DB_ADDR], **{m: [a] for m, a in HOSTS.items()},
                     "x": [ATTACKER, INNOCENT]}
            for name, ips in addrs.items():
                ns = self._netns(f"{tag}{name}")
                self.ns[name] = ns
                port = f"v-{name}"
                sh("ip", "link", "add", port, "type", "veth", "peer", "eth0", "netns", ns,
                   ns=self.hub)
                sh("ip", "link", "set", port, "master", "br0", ns=self.hub)
                sh("ip", "link", "set", port, "up", ns=self.hub)
                for ip in ips:
                    sh("ip", "addr", "add", f"{ip}/24", "dev", "eth0", ns=ns)
                sh("ip", "link", "set", "eth0", "up", ns=ns)
        except BaseException:
            self.close()
            raise

    def _netns(self, tag):
        n = Netns(tag)
        self.nets.append(n)
        return n.name

    def close(self):
        for n in reversed(self.nets):
            n.close()
        self.nets = []


class NsPostgres(pgutil.Postgres):
    """pgutil's cluster with its server in namespace ns, listening on listen:port there."""

    def __init__(self, ns, listen=DB_ADDR, port=PG_PORT):
        self.ns = ns
        self.dir = tempfile.mkdtemp(prefix="rampart-pg-")
        self._finalizer = weakref.finalize(self, pgutil._destroy, self.dir)
        self.listen, self.port = listen, port
        out = self._script("start", self.dir, port, listen)
        self.conninfo = out.strip().splitlines()[-1]
        self.passfile = pgutil.pathlib.Path(self.dir) / "passfile"
        self.password = self.passfile.read_text().strip().rsplit(":", 1)[1]
        self.running = True

    def _script(self, *args, timeout=120):
        cmd = ["ip", "netns", "exec", self.ns, "sh", str(pgutil.SCRIPT)] + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"pg-test-server.sh {' '.join(map(str, args))} in {self.ns} "
                                 f"exited {r.returncode}: {r.stderr.strip()}")
        return r.stdout

    def stop(self):
        self._script("stop", self.dir)
        self.running = False

    def start(self):
        self._script("start", self.dir)
        self.running = True


def machine_config(path, *, name, state, authlog, conninfo, accept=None, peers=None,
                   metrics_port=None, ban_time="1h"):
    """A guard configuration for fleet machine name; accept/peers as YAML lists or None."""
    share = f"  share:\n    postgres: \"{conninfo}\"\n    name: {name}\n"
    if accept is not None:
        share += f"    accept: [ {', '.join(accept)} ]\n"
    if peers is not None:
        share += f"    peers: [ {', '.join(peers)} ]\n"
    text = ("guard:\n  mode: enforce\n  rate: []\n"
            f"  sources:\n    - {{ type: file, path: {authlog} }}\n"
            f"  whitelist: [ {WHITELIST} ]\n"
            f"  ban: {{ threshold: 30, window: 30m, time: {ban_time} }}\n"
            f"  state: {state}\n" + share)
    if metrics_port:
        text += f"metrics:\n  listen: 127.0.0.1:{metrics_port}\n"
    path.write_text(text)
    path.chmod(0o644)
    return str(path)


def failed_lines(addrs, per_source=3):
    """sshd lines crossing the threshold of 30 (10 danger each) for every address."""
    stamp = time.strftime("%b %e %H:%M:%S")
    return "".join(f"{stamp} host sshd[123]: Failed password for invalid user x from {a} "
                   f"port 1234 ssh2\n" for a in addrs for _ in range(per_source))


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def ban4(ns):
    """{element: (timeout s, expires s) or None} of set ban4 in ns ({} without the table)."""
    r = sh("nft", "-j", "list", "set", "inet", "rampart", "ban4", ns=ns, check=False,
           timeout=120)
    if r.returncode != 0:
        return {}
    out = {}
    for item in json.loads(r.stdout)["nftables"]:
        s = item.get("set")
        for e in (s or {}).get("elem", []):
            info = None
            if isinstance(e, dict) and "elem" in e:
                info = (e["elem"].get("timeout"), e["elem"].get("expires"))
                e = e["elem"]["val"]
            out[str(e)] = info
    return out


def wait_elements(ns, want, timeout, step=0.3):
    """Waits until every address of want is in ban4 of ns; the ones still missing."""
    want = set(want)
    missing = [want]

    def done():
        missing[0] = want - set(ban4(ns))
        return not missing[0]

    wait_until(done, timeout, step=step)
    return missing[0]


METRICS_PORT = 9188  # inside each machine's own namespace


class Fleet:
    """The topology, PostgreSQL in db and one guard per machine of HOSTS (not started:
    start(m)). options: {machine: {accept: [...], peers: [...]}}. work: a directory the
    daemons (root) can use. close() stops everything; call it from a finaliser."""

    def __init__(self, rampart, work, tag, options=None, listeners=True):
        self.rampart, self.work = rampart, work
        self.daemons, self.conf, self.authlog, self.state = {}, {}, {}, {}
        self.runs = 0
        self.topo = self.pg = None
        try:
            self.topo = Topology(tag)
            self.pg = NsPostgres(self.topo.ns["db"])
            self.conninfo = self.pg.conninfo_for(host=DB_ADDR)
            for m in HOSTS:
                self.authlog[m] = work / f"auth-{m}.log"
                self.authlog[m].touch()
                self.state[m] = str(work / f"guard-{m}.db")
                self.conf[m] = machine_config(
                    work / f"rampart-{m}.yaml", name=m, state=self.state[m],
                    authlog=self.authlog[m], conninfo=self.conninfo,
                    metrics_port=METRICS_PORT, **(options or {}).get(m, {}))
                if listeners:
                    start_listener(self.topo.ns[m], [22])
        except BaseException:
            self.close()
            raise

    def ns(self, m):
        return self.topo.ns[m]

    def start(self, m, timeout=60, connected=True):
        """Starts m's guard and waits until it is ready and (connected) in the fleet."""
        self.runs += 1
        d = Daemon(self.rampart, self.ns(m), self.conf[m], str(self.work / f"{m}-{self.runs}.log"))
        self.daemons[m] = d
        d.start()
        if connected and not d.wait_lines("guard: fleet connected", 1, timeout):
            raise AssertionError(f"guard {m} did not connect to the fleet:\n{d.text()[-3000:]}\n"
                                 f"postgres log:\n{self.pg.log[-2000:]}")
        return d

    def start_all(self):
        for m in HOSTS:
            self.start(m)

    def ban_on(self, m, addrs):
        """Brute force against m: three failure lines per address in m's log."""
        append(self.authlog[m], failed_lines(addrs))

    def guard_cmd(self, m, *args, timeout=60):
        return sh(self.rampart, "guard", *args, "-c", self.conf[m], ns=self.ns(m), check=False,
                  timeout=timeout)

    def close(self):
        for d in self.daemons.values():
            d.close()
        if self.pg:
            self.pg.close()
        if self.topo:
            self.topo.close()
