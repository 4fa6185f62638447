"""Fixtures for the guard system tests: network namespaces joined by veth pairs, TCP
listeners inside them, the reference xt_recent rules, our side (the daemon, or the
guard-nft-setup helper until the daemon runs the tests), and a connection driver that runs
the same patterns against several targets at once from an attacker namespace.

Addresses are private (10.201.0.0/16, fd00:201::/32) and exist only in the test's own
namespaces. Every namespace name carries the test process's pid.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import BUILD

# The switch: True runs `rampart guard -c FILE` for our side, False the guard-nft-setup helper.
USE_DAEMON = True


def sh(*args, ns=None, check=True, timeout=30, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Net:
    """An attacker namespace and targets, each on its own veth pair (link index i:
    attacker 10.201.i.1/24 + aliases, target 10.201.i.2; fd00:201:i::1/64, ::2)."""

    def __init__(self, tag, targets, aliases=40):
        self.tag = f"rg{os.getpid() % 100000}{tag}"
        self.attacker = f"{self.tag}a"
        self.targets = {}
        self.aliases = aliases
        self.nss = [self.attacker]
        sh("ip", "netns", "add", self.attacker)
        sh("ip", "link", "set", "lo", "up", ns=self.attacker)
        for i, name in enumerate(targets, start=1):
            ns = f"{self.tag}{name}"
            self.nss.append(ns)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
            a, t = f"{self.tag}x{i}", f"{self.tag}y{i}"
            sh("ip", "link", "add", a, "netns", self.attacker, "type", "veth", "peer", t,
               "netns", ns)
            for n, dev in ((self.attacker, a), (ns, t)):
                sh("ip", "link", "set", dev, "up", ns=n)
            sh("ip", "addr", "add", f"10.201.{i}.2/24", "dev", t, ns=ns)
            sh("ip", "addr", "add", f"fd00:201:{i}::2/64", "dev", t, "nodad", ns=ns)
            batch = [f"addr add 10.201.{i}.{h}/24 dev {a}" for h in range(1, aliases + 1)
                     if h != 2]
            batch += [f"addr add fd00:201:{i}::{h:x}/64 dev {a} nodad"
                      for h in range(1, aliases + 1) if h != 2]
            sh("ip", "-batch", "-", ns=self.attacker, input="\n".join(batch) + "\n")
            self.targets[name] = {"ns": ns, "index": i}

    def ns(self, target):
        return self.targets[target]["ns"]

    def dst(self, target, v6):
        i = self.targets[target]["index"]
        return f"fd00:201:{i}::2" if v6 else f"10.201.{i}.2"

    def src(self, target, v6, host):
        """The attacker's address number host (3..aliases) on the link to target."""
        i = self.targets[target]["index"]
        return f"fd00:201:{i}::{host:x}" if v6 else f"10.201.{i}.{host}"

    def close(self):
        for ns in self.nss:
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


LISTENER = r"""
import select, socket, sys
socks = []
for port in map(int, sys.argv[1:]):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(512)
    socks.append(s)
print("listening", flush=True)
while True:
    for s in select.select(socks, [], [])[0]:
        c, _ = s.accept()
        c.close()
"""


def start_listener(ns, ports):
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", LISTENER,
                          *map(str, ports)], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip() == "listening", f"listener in {ns} did not start"
    return p


def iptables_recent(ns, rates):
    """The reference: per rate entry the two xt_recent rules, inserted at the top as the
    issue gives them (so --update runs first), with ip6tables the same for IPv6."""
    for k, r in enumerate(rates):
        name = f"R{k}"
        for tool in ("iptables", "ip6tables"):
            sh(tool, "-I", "INPUT", "-p", "tcp", "--dport", r["port"], "-m", "state", "--state",
               "NEW", "-m", "recent", "--set", "--name", name, "--rsource", ns=ns)
            sh(tool, "-I", "INPUT", "-p", "tcp", "--dport", r["port"], "-m", "state", "--state",
               "NEW", "-m", "recent", "--update", "--seconds", r["seconds"], "--hitcount",
               r["hitcount"], "--name", name, "--rsource", "-j", "DROP", ns=ns)


class Guard:
    """Our side in namespace ns: `rampart guard -c FILE` (USE_DAEMON) or the helper."""

    def __init__(self, ns, rates, directory):
        self.ns, self.rates, self.dir = ns, rates, directory
        self.proc = None

    def config(self):
        rates = "\n".join(f"    - {{ port: {r['port']}, seconds: {r['seconds']}, "
                          f"hitcount: {r['hitcount']} }}" for r in self.rates)
        return (f"guard:\n  mode: enforce\n  rate:\n{rates}\n  sources: []\n"
                f"  state: {self.dir}/guard.db\n")

    def start(self, timeout=20):
        if not USE_DAEMON:
            helper = BUILD / "tests" / "guard-nft-setup"
            if not helper.exists():
                pytest.fail(f"{helper} is missing: build first")
            sh(helper, *(f"{r['port']}/{r['seconds']}/{r['hitcount']}" for r in self.rates),
               ns=self.ns)
            return self
        conf = os.path.join(self.dir, "guard.yaml")
        with open(conf, "w") as f:
            f.write(self.config())
        self.log = open(os.path.join(self.dir, "guard.log"), "w+")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, str(BUILD / "rampart"),
                                      "guard", "-c", conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.log.seek(0)
            if "guard: ready" in self.log.read():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.log.seek(0)
        pytest.fail(f"rampart guard did not get ready: {self.log.read()[-2000:]}")

    def kill(self):
        """SIGKILL: the table must stay and keep working without us."""
        if self.proc:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


DRIVER = r"""
import json, socket, sys, threading, time

def attempt(src, dst, port, timeout):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect((dst, port))
        return "P"
    except (socket.timeout, OSError):
        return "D"
    finally:
        s.close()

def run(job, t0, out):
    res = []
    for step in job["steps"]:
        at, timeout = step
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        res.append(attempt(job["src"], job["dst"], job["port"], timeout))
    out[job["key"]] = "".join(res)

jobs = json.load(sys.stdin)
out = {}
t0 = time.monotonic() + 0.2
threads = [threading.Thread(target=run, args=(j, t0, out)) for j in jobs]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out))
"""


def drive(attacker_ns, jobs, timeout=120):
    """Runs every job at once from the attacker namespace; a job is {key, src, dst, port,
    steps: [[start offset s, connect timeout s], ...]} (an attempt starts at its offset or
    when the one before ends). Returns {key: "PPDD..."} (P connected, D no answer)."""
    r = sh(sys.executable, "-c", DRIVER, ns=attacker_ns, input=json.dumps(jobs),
           timeout=timeout)
    return json.loads(r.stdout)
