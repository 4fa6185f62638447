"""Fixtures for test_guard_state.py: bare network namespaces, `rampart guard -c FILE` run in
one of them as a foreground child with its log in a file, the guard's store written directly,
and the nftables sets read back as Python values.

Nothing here touches the host's firewall: every nft command runs in a namespace the test
created, and every namespace name carries the test process's pid.
"""
import json
import os
import signal
import sqlite3
import subprocess
import time

from guardutil import sh
from sshdutil import wait_until


class Netns:
    """A namespace of its own with lo up (the metrics listener binds 127.0.0.1)."""

    def __init__(self, tag):
        self.name = f"rgs{os.getpid() % 100000}{tag}"
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)  # a leftover
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "set", "lo", "up", ns=self.name)

    def close(self):
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True,
                              text=True).stdout.split()
        for p in pids:
            try:
                os.kill(int(p), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class Daemon:
    """One run of `rampart guard -c conf` in namespace ns, its stderr in log_path.
    `ip netns exec` execs the command, so the Popen's pid is the daemon's main process."""

    def __init__(self, rampart, ns, conf, log_path):
        self.rampart, self.ns, self.conf, self.log_path = rampart, ns, conf, log_path
        self.proc = None

    def start(self, ready="guard: ready", timeout=120):
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, self.rampart, "guard",
                                          "-c", self.conf], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        ok = wait_until(lambda: ready in self.text() or self.proc.poll() is not None, timeout)
        if not ok or self.proc.poll() is not None:
            raise AssertionError(f"rampart guard did not start ({ready!r} not logged):\n"
                                 f"{self.text()[-3000:]}")
        return self

    @property
    def pid(self):
        return self.proc.pid

    def text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def lines(self, needle):
        return [line for line in self.text().splitlines() if needle in line]

    def wait_lines(self, needle, count, timeout):
        """Waits until needle is in count lines of the log (or the daemon exits)."""
        return wait_until(lambda: len(self.lines(needle)) >= count or
                          self.proc.poll() is not None, timeout) and \
            len(self.lines(needle)) >= count

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, timeout=30):
        """SIGTERM and wait: the exit status (killed after timeout seconds: an error)."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"rampart guard did not stop on SIGTERM within {timeout} s")

    def close(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


def proc_status(pid):
    """/proc/PID/status as {key: value}; {} when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except (FileNotFoundError, ProcessLookupError):
        return {}


def children(pid):
    """Pids of the processes whose parent is pid."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and proc_status(d).get("PPid") == str(pid):
            out.append(int(d))
    return out


def table(ns):
    """Every set of table inet rampart in ns: {set: {element: (timeout s, expires s) or None}};
    None for an element without a timeout (and a network written as "addr/len")."""
    r = sh("nft", "-j", "list", "table", "inet", "rampart", ns=ns, timeout=120)
    sets = {}
    for item in json.loads(r.stdout)["nftables"]:
        s = item.get("set")
        if not s:
            continue
        elems = sets.setdefault(s["name"], {})
        for e in s.get("elem", []):
            info = None
            if isinstance(e, dict) and "elem" in e:
                info = (e["elem"].get("timeout"), e["elem"].get("expires"))
                e = e["elem"]["val"]
            if isinstance(e, dict) and "prefix" in e:
                e = f"{e['prefix']['addr']}/{e['prefix']['len']}"
            elems[str(e)] = info
    return sets


def table_exists(ns):
    return sh("nft", "list", "table", "inet", "rampart", ns=ns, check=False).returncode == 0


def store_insert(path, rows):
    """rows of (prefix, family, count, created_ms, expires_ms, origin, reason) into offenders,
    as another writer would: the schema is the daemon's own (created by `rampart guard list`)."""
    db = sqlite3.connect(path, timeout=10)
    try:
        with db:
            db.executemany("INSERT INTO offenders (prefix, family, count, created_ms, "
                           "expires_ms, origin, reason) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        db.close()


def scrape(ns, port, timeout=10):
    """The metrics page served on 127.0.0.1:port inside ns: {series with labels: value}."""
    code = ("import sys, urllib.request\n"
            "print(urllib.request.urlopen('http://127.0.0.1:%s/metrics', timeout=%s)"
            ".read().decode())" % (port, timeout))
    r = sh("python3", "-c", code, ns=ns, timeout=timeout + 10)
    out = {}
    for line in r.stdout.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def now_ms():
    return int(time.time() * 1000)
