"""A real OpenSSH server and `rampart guard` in a network namespace the test creates, with
client namespaces joined to it by veth pairs (one pair, one /24 and one /64 per client):

    client i  10.99.i.2/24 fd99:i::2/64 --veth-- 10.99.i.1/24 fd99:i::1/64  server

The test's own sshd (host keys and config in the test's temp directory, authorized_keys in a
world-readable one: sshd reads it as the user) runs in the foreground with `-D -e`, listening
on port 22 of the server's veth addresses only; the test user is the system account
rampart-test (created if absent, password set). A relay thread writes each of its log lines
where the guard reads it:
  - source "file": to an auth.log as rsyslog would ("Mmm dd hh:mm:ss host sshd[pid]: msg");
    `sshd -E FILE` is not used: it writes bare messages without the "sshd[pid]: " prefix;
  - source "journal": into a journal directory through systemd-journal-remote (Journal Export
    Format on its stdin, SYSLOG_IDENTIFIER=sshd), which the guard follows as `journalctl -D`
    would. Every line also goes to auth.log, which the tests read for diagnostics.

Nothing here touches the host's firewall or sshd. Everything started is stopped and every
namespace deleted by close(), which the fixtures call in their finalisers.
"""
import json
import re
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SSHD = "/usr/sbin/sshd"
JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
BOOT_ID = "0123456789abcdef0123456789abcdef"
USER = "rampart-test"
# The test account's password: the account exists only for these tests (created if absent);
# sshd runs with UsePAM no, so the password is checked against /etc/shadow.
PASSWORD = "rampart-test-pw-7Qe2"
WRONG = "not-the-password"
NEEDED = ("ip", "nft", "ssh", "ssh-keygen", "sshpass", "useradd", "chpasswd", SSHD,
          JOURNAL_REMOTE)
BAN_SETS = ("ban4", "ban6")  # and every bannet4_LEN / bannet6_LEN set


def missing_tools():
    return [t for t in NEEDED if not shutil.which(t) and not os.access(t, os.X_OK)]


def sh(*cmd, ns=None, check=True, timeout=30, input=None):
    full = (["ip", "netns", "exec", ns] if ns else []) + [str(c) for c in cmd]
    r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"{full} exited {r.returncode}: {r.stderr.strip()}")
    return r


def wait_until(pred, timeout, step=0.05):
    """Polls pred() until it returns something true or timeout seconds pass; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def ensure_user():
    """The system account the test logs in as, with the known password."""
    if subprocess.run(["getent", "passwd", USER], capture_output=True).returncode != 0:
        sh("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
           "--shell", "/bin/sh", USER)
    sh("chpasswd", input=f"{USER}:{PASSWORD}\n")


class Client:
    def __init__(self, lab, ns, idx):
        self.lab, self.ns, self.idx = lab, ns, idx
        self.v4, self.server_v4 = f"10.99.{idx}.2", f"10.99.{idx}.1"
        self.v6, self.server_v6 = f"fd99:{idx}::2", f"fd99:{idx}::1"
        self.v6_prefix = f"fd99:{idx}::"  # the /64 a ban of v6 covers

    def server(self, family):
        return self.server_v4 if family == 4 else self.server_v6

    def _ssh_args(self, family, extra):
        return ["ssh", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                "-o", "ConnectTimeout=3", "-o", "ServerAliveInterval=0", *extra,
                f"{USER}@{self.server(family)}"]

    def key_args(self, family=4):
        return self._ssh_args(family, ["-i", self.lab.client_key, "-o", "IdentitiesOnly=yes",
                                       "-o", "BatchMode=yes",
                                       "-o", "PreferredAuthentications=publickey"])

    def ssh_key(self, command, family=4, timeout=20):
        """Runs command over ssh with the key: the CompletedProcess."""
        return sh(*self.key_args(family), command, ns=self.ns, check=False, timeout=timeout)

    def fail_password(self, family=4):
        """One connection with one wrong password: one "Failed password" line on the server."""
        args = self._ssh_args(family, ["-o", "PubkeyAuthentication=no",
                                       "-o", "PreferredAuthentications=password",
                                       "-o", "NumberOfPasswordPrompts=1"])
        return sh("sshpass", "-p", WRONG, *args, "true", ns=self.ns, check=False, timeout=20)

    def session(self, family=4):
        """A long-lived ssh session running `cat` (logged in with the key)."""
        return Session(["ip", "netns", "exec", self.ns, *self.key_args(family), "cat"])

    def connects(self, family=4, timeout=2.0):
        """Whether a new TCP connection to the server's port 22 is accepted within timeout."""
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)\n"
                "s.settimeout(float(sys.argv[2]))\n"
                "try:\n s.connect((sys.argv[1],22)); print('connected')\n"
                "except OSError as e: print('failed', e)\n")
        r = sh(sys.executable, "-c", code, self.server(family), timeout, ns=self.ns,
               timeout=timeout + 10)
        return r.stdout.startswith("connected")


class Session:
    """A child process spoken to line by line, with bounded reads."""

    def __init__(self, argv):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, start_new_session=True)

    def echo(self, text, timeout=10.0):
        """Writes text + newline and returns what comes back on stdout within timeout."""
        want = (text + "\n").encode()
        try:
            self.p.stdin.write(want)
            self.p.stdin.flush()
        except OSError:
            return b""
        got = b""
        deadline = time.monotonic() + timeout
        while len(got) < len(want) and time.monotonic() < deadline:
            r, _, _ = select.select([self.p.stdout], [], [], deadline - time.monotonic())
            if not r:
                break
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                break
            got += chunk
        return got

    def close(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, 9)
        self.p.wait(timeout=10)


class RawConn:
    """A TCP connection from a client namespace to the server's port 22, held open by a child
    python: `open` reads sshd's banner; `probe` sends a client banner and reports how many bytes
    came back within a timeout (sshd answers a client banner with its KEXINIT)."""

    CODE = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 22), timeout=5)
print("banner", s.recv(256).split(b"\r\n")[0].decode(errors="replace"), flush=True)
sys.stdin.readline()
s.settimeout(float(sys.argv[2]))
s.sendall(b"SSH-2.0-rampart_test\r\n")
got = b""
deadline = time.monotonic() + float(sys.argv[2])
try:
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        c = s.recv(4096)
        if not c:
            break
        got += c
except OSError:
    pass
print("got", len(got), flush=True)
"""

    def __init__(self, client, family=4, wait=4.0):
        self.p = subprocess.Popen(["ip", "netns", "exec", client.ns, sys.executable, "-c",
                                   self.CODE, client.server(family), str(wait)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.wait = wait

    def banner(self):
        return self.p.stdout.readline().strip()

    def probe(self):
        """Bytes the server sent back after the client banner (0: none got through)."""
        out, err = self.p.communicate("go\n", timeout=self.wait + 10)
        assert out.startswith("got "), (out, err)
        return int(out.split()[1])

    def close(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, 9)
            self.p.wait(timeout=10)


class Lab:
    """The server namespace, its sshd and guard, and the client namespaces."""

    def __init__(self, tmp, source="file", tag=None):
        assert source in ("file", "journal")
        self.source = source
        self.tmp = pathlib.Path(tmp)
        self.tag = tag or f"{os.getpid() % 100000}{source[0]}"
        self.server_ns = f"rsd-s-{self.tag}"
        self.namespaces = []
        self.clients = {}
        self.procs = []
        self.threads = []
        self.authlog = self.tmp / "auth.log"
        self.journal_dir = self.tmp / "journal"
        self.guard_log = self.tmp / "guard.err"
        self.client_key = str(self.tmp / "client_key")
        self.sshd = self.guard = self.keys_dir = None
        self._add_ns(self.server_ns)

    def _add_ns(self, ns):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # a leftover
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)

    def add_client(self, name, idx):
        ns = f"rsd-{name}-{self.tag}"
        self._add_ns(ns)
        c = Client(self, ns, idx)
        sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"s{idx}",
           "netns", self.server_ns)
        for n, dev, v4, v6 in ((ns, "eth0", c.v4, c.v6),
                               (self.server_ns, f"s{idx}", c.server_v4, c.server_v6)):
            sh("ip", "addr", "add", f"{v4}/24", "dev", dev, ns=n)
            # nodad: the address is usable at once (sshd binds it), not after DAD
            sh("ip", "addr", "add", f"{v6}/64", "dev", dev, "nodad", ns=n)
            sh("ip", "link", "set", dev, "up", ns=n)
        self.clients[name] = c
        return c

    # --- sshd -------------------------------------------------------------------------------

    def start_sshd(self):
        ensure_user()
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privsep chroot
        hostkey = self.tmp / "ssh_host_ed25519_key"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostkey)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.client_key)
        # sshd reads the keys as the user, who cannot enter the test's temp directory
        self.keys_dir = pathlib.Path(tempfile.mkdtemp(prefix="rampart-sshd-keys-"))
        self.keys_dir.chmod(0o755)
        keys = self.keys_dir / "authorized_keys"
        keys.write_text(pathlib.Path(self.client_key + ".pub").read_text())
        keys.chmod(0o644)
        listen = "".join(f"ListenAddress {a}\n" for c in self.clients.values()
                         for a in (c.server_v4, f"[{c.server_v6}]"))
        cfg = self.tmp / "sshd_config"
        cfg.write_text(
            f"Port 22\n{listen}"
            f"HostKey {hostkey}\nPidFile {self.tmp / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {keys}\n"
            # the temp directory's parents are not root-only: StrictModes would refuse the keys
            "StrictModes no\nUsePAM no\nPasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            f"AllowUsers {USER}\nPermitRootLogin no\nLogLevel VERBOSE\n"
            # many failing connections in a row must all reach the password check
            "MaxStartups 100:30:200\nMaxAuthTries 10\nUseDNS no\n")
        sh("ip", "netns", "exec", self.server_ns, SSHD, "-t", "-f", cfg)
        self.authlog.touch()
        self.journal_dir.mkdir(exist_ok=True)
        self.sshd = subprocess.Popen(["ip", "netns", "exec", self.server_ns, SSHD, "-D", "-e",
                                      "-f", cfg], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.procs.append(self.sshd)
        t = threading.Thread(target=self._relay, args=(self.sshd.stderr, self.sshd.pid),
                             daemon=True)
        t.start()
        self.threads.append(t)
        if not wait_until(lambda: "Server listening" in self.authlog.read_text(), 10):
            raise AssertionError(f"sshd did not start: {self.authlog.read_text()}")

    def _relay(self, pipe, pid):
        """sshd's stderr to auth.log (and the journal), a line at a time."""
        fd = os.open(self.authlog, os.O_WRONLY | os.O_APPEND)
        try:
            for raw in iter(pipe.readline, b""):
                msg = raw.rstrip(b"\r\n").decode(errors="replace")
                if self.source == "journal":
                    self._journal_write(msg, pid)
                stamp = time.strftime("%b %e %H:%M:%S")
                os.write(fd, f"{stamp} srv sshd[{pid}]: {msg}\n".encode())
        finally:
            os.close(fd)

    def _journal_write(self, msg, pid):
        entry = (f"__REALTIME_TIMESTAMP={time.time_ns() // 1000}\n"
                 f"__MONOTONIC_TIMESTAMP={time.monotonic_ns() // 1000}\n"
                 f"_BOOT_ID={BOOT_ID}\n_HOSTNAME=srv\n_PID={pid}\n_COMM=sshd\n"
                 f"SYSLOG_IDENTIFIER=sshd\nMESSAGE={msg}\n\n")
        subprocess.run([JOURNAL_REMOTE, "-o", str(self.journal_dir / "remote.journal"), "-"],
                       input=entry.encode(), capture_output=True, timeout=30)

    def authlog_text(self):
        return self.authlog.read_text(errors="replace")

    # --- guard ------------------------------------------------------------------------------

    def write_guard_config(self, whitelist, threshold=30, trust="24h"):
        cfg = self.tmp / "rampart.yaml"
        wl = ", ".join(whitelist)
        source = (f"{{ type: file, path: {self.authlog} }}" if self.source == "file" else
                  f"{{ type: journal, match: sshd, directory: {self.journal_dir} }}")
        cfg.write_text(
            "guard:\n"
            "  mode: enforce\n"
            "  rate: []\n"
            "  sources:\n"
            f"    - {source}\n"
            f"  whitelist: [ {wl} ]\n"
            f"  trust-logged-in: {trust}\n"
            f"  ban: {{ threshold: {threshold}, window: 30m, time: 2m, escalate: 2.0, "
            "permanent-after: 5 }\n"
            f"  state: {self.tmp / 'guard.db'}\n")
        self.guard_cfg = cfg
        return cfg

    def start_guard(self, rampart):
        self.rampart = rampart
        err = open(self.guard_log, "wb")
        self.guard = subprocess.Popen(["ip", "netns", "exec", self.server_ns, rampart, "guard",
                                       "-c", self.guard_cfg], stdin=subprocess.DEVNULL,
                                      stdout=err, stderr=err, start_new_session=True)
        err.close()
        self.procs.append(self.guard)
        ok = wait_until(lambda: "guard: ready" in self.guard_text() or
                        self.guard.poll() is not None, 15)
        if not ok or self.guard.poll() is not None:
            raise AssertionError(f"rampart guard did not start: {self.guard_text()}")

    def guard_text(self):
        return self.guard_log.read_text(errors="replace")

    def wait_guard_line(self, needle, timeout=15):
        return wait_until(lambda: needle in self.guard_text(), timeout)

    def guard_cmd(self, *args, timeout=30):
        return sh(self.rampart, "guard", *args, "-c", self.guard_cfg, ns=self.server_ns,
                  check=False, timeout=timeout)

    def listed(self):
        r = self.guard_cmd("list", "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def set_elements(self, name):
        """The elements of set inet rampart NAME in the server namespace, as strings."""
        r = sh("nft", "-j", "list", "set", "inet", "rampart", name, ns=self.server_ns)
        out = []
        for item in json.loads(r.stdout)["nftables"]:
            for e in item.get("set", {}).get("elem", []):
                v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                if isinstance(v, dict) and "prefix" in v:
                    v = f"{v['prefix']['addr']}/{v['prefix']['len']}"
                out.append(str(v))
        return out

    def banned(self):
        """Every element of every ban set."""
        r = sh("nft", "-j", "list", "sets", "table", "inet", "rampart", ns=self.server_ns)
        names = [o["set"]["name"] for o in json.loads(r.stdout)["nftables"] if "set" in o]
        sets = [n for n in names if n in BAN_SETS or re.fullmatch(r"bannet[46]_\d+", n)]
        return {e for s in sets for e in self.set_elements(s)}

    # --- teardown ---------------------------------------------------------------------------

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 15)
                    p.wait(timeout=10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(p.pid, 9)
                    p.wait(timeout=10)
        # what is left in our namespaces (sshd's session children hold the relay's pipe)
        for ns in self.namespaces:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
        for t in self.threads:
            t.join(timeout=5)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.keys_dir:
            shutil.rmtree(self.keys_dir, ignore_errors=True)
