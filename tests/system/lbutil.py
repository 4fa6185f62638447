"""Helpers for the `rampart lb` system tests (test_lb_*.py): a running lb process, its config,
raw HTTP over sockets, ctl, polling.

    from lbutil import lb  # noqa: F401  (lb is a pytest fixture)

    def test_x(lb, nginx):
        s1 = nginx("s1")
        l = lb(listeners=[listener("web", servers=[server("s1", s1.addr)])])
        status, headers, body = l.get("/")

The lb runs in the foreground (`rampart lb -c FILE`) with its log (stderr) in a file; it is
stopped with SIGTERM (SIGKILL when that takes too long) at teardown, also when the test fails.
Every wait is bounded; nothing asserts on timing.
"""
import contextlib
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

from nginx import free_port, kill_group, port_open  # noqa: F401
from nginx import http_get as ngx_http_get

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("RAMPART_BUILD", ROOT / "build"))
RAMPART = str(BUILD / "rampart")
START_TIMEOUT = 15.0


# ---------------------------------------------------------------- polling

def wait_for(cond, timeout=15.0, interval=0.05, what="condition"):
    """Polls cond() until it returns a true value (returned); fails the test after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------- config

def _yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k}: {_yaml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, str) and v.startswith("["):
        return f"'{v}'"  # an IPv6 [address]:port, not a flow sequence
    return str(v)


def server(name, address, **kw):
    """A server entry: server("s1", "127.0.0.1:9001", weight=5)."""
    d = {"name": name, "address": address}
    d.update({k.replace("_", "-"): v for k, v in kw.items()})
    return d


def listener(name, port, servers, **kw):
    """A listener entry; keyword names with _ become YAML keys with - (hash_header ->
    hash-header)."""
    d = {"name": name, "bind": f"127.0.0.1:{port}"}
    d.update({k.replace("_", "-"): v for k, v in kw.items()})
    d["servers"] = servers
    return d


def render_config(listeners, ctl_socket, stats_port=None, threads=1, extra=None):
    """The YAML text of an lb config (one line per server, so errors have clear lines)."""
    out = ["lb:", f"  ctl-socket: {ctl_socket}"]
    if threads is not None:  # None: the default (auto, one worker per CPU)
        out.append(f"  threads: {threads}")
    if stats_port is not None:
        out.append(f"  stats: {{ listen: 127.0.0.1:{stats_port} }}")
    for k, v in (extra or {}).items():
        out.append(f"  {k}: {_yaml_value(v)}")
    out.append("  listeners:")
    for lis in listeners:
        first = True
        for k, v in lis.items():
            if k == "servers":
                continue
            out.append(f"    {'- ' if first else '  '}{k}: {_yaml_value(v)}")
            first = False
        out.append("      servers:")
        for s in lis["servers"]:
            out.append(f"        - {_yaml_value(s)}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the lb process

# `lb.io-uring` for every Lb that does not set it (None: the default); conftest sets it
IO_URING = None


class Lb:
    """One `rampart lb -c FILE` process. port: the first listener's port."""

    def __init__(self, directory, listeners, stats=False, threads=1, verb=("lb",), extra=None,
                 netns=None, env=None):
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config = self.dir / "lb.yaml"
        self.log_path = self.dir / "lb.log"
        self.ctl_socket = str(self.dir / "lb.sock")
        self.stats_port = free_port() if stats else None
        self.threads = threads
        self.extra = extra
        if IO_URING is not None and "io-uring" not in (extra or {}):
            self.extra = {"io-uring": IO_URING, **(extra or {})}
        self.verb = verb
        self.netns = netns  # run inside this network namespace (ip netns exec)
        self.env = env  # added to the process's environment
        self.listeners = listeners
        self.proc = None
        self.write(listeners)

    @property
    def port(self):
        return int(self.listeners[0]["bind"].rsplit(":", 1)[1])

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid

    def write(self, listeners=None, text=None):
        """Writes the config file (from listeners, or text as is)."""
        if listeners is not None:
            self.listeners = listeners
        if text is None:
            text = render_config(self.listeners, self.ctl_socket, self.stats_port, self.threads,
                                 self.extra)
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.rename(self.config)

    def start(self):
        self.log_file = open(self.log_path, "ab")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen([*prefix, RAMPART, *self.verb, "-c", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=self.log_file, start_new_session=True,
                                     env={**os.environ, **(self.env or {})})
        if self.netns:
            # its ports are not reachable from here: its start line says they are bound
            wait_for(lambda: self.log_lines("lb started") or self.proc.poll() is not None,
                     START_TIMEOUT, what="the lb's start line")
            if self.proc.poll() is not None:
                raise RuntimeError(f"rampart lb exited {self.proc.returncode}:\n{self.log()}")
            return self
        ports = [int(lis["bind"].rsplit(":", 1)[1]) for lis in self.listeners]
        if self.stats_port:
            ports.append(self.stats_port)
        deadline = time.monotonic() + START_TIMEOUT
        for p in ports:
            while not port_open(p, timeout=0.5):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"rampart lb exited {self.proc.returncode}:\n{self.log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"rampart lb does not listen on {p}:\n{self.log()}")
                time.sleep(0.02)
        if self.verb == ("lb",):
            wait_for(lambda: os.path.exists(self.ctl_socket), 10, what="the ctl socket")
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after a while; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
        rc = self.proc.returncode
        self.log_file.close()
        return rc

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self, needle):
        return [ln for ln in self.log().splitlines() if needle in ln]

    def access_lines(self):
        """The access log lines as dicts (listener, client, server, method, path, status...)."""
        out = []
        for ln in self.log_lines(" access "):
            fields = {}
            for part in ln.split(" access ", 1)[1].split():
                k, _, v = part.partition("=")
                fields[k] = v
            out.append(fields)
        return out

    def reload(self, listeners=None, text=None, timeout=15):
        """Rewrites the config, SIGHUP, waits for the lb's "reloaded" or "reload failed" line;
        returns that line."""
        def done():
            return [ln for ln in self.log().splitlines()
                    if "lb reloaded" in ln or "reload failed" in ln]

        before = len(done())
        self.write(listeners, text)
        self.proc.send_signal(signal.SIGHUP)
        lines = wait_for(lambda: done()[before:] or None, timeout,
                         what="the lb's reload log line")
        return lines[0]

    def ctl(self, *args, socket_path=None, timeout=20):
        """rampart lb ctl -s SOCKET ARGS -> CompletedProcess."""
        return subprocess.run([RAMPART, "lb", "ctl", "-s", socket_path or self.ctl_socket,
                               *map(str, args)], capture_output=True, text=True, timeout=timeout)

    def show_json(self):
        r = self.ctl("show", "json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def servers(self, lis=None):
        """{server name: its show-json dict} of listener lis (default: the first)."""
        data = self.show_json()
        lis = lis or self.listeners[0]["name"]
        for entry in data["listeners"]:
            if entry["name"] == lis:
                return {s["name"]: s for s in entry["servers"]}
        raise KeyError(lis)

    def wait_health(self, name, health, lis=None, timeout=20):
        return wait_for(lambda: self.servers(lis)[name]["health"] == health, timeout, 0.1,
                        f"server {name} health {health}")

    def get(self, path="/", **kw):
        return http_get(self.port, path, **kw)

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def socket_count(self):
        """The balancer's open sockets: what sessions hold. Not fd_count: a worker makes its
        io_uring and eventfd when it starts, which may come after a count taken at once."""
        fds = f"/proc/{self.pid}/fd"
        n = 0
        for fd in os.listdir(fds):
            try:
                n += os.readlink(f"{fds}/{fd}").startswith("socket:")
            except FileNotFoundError:
                pass
        return n

    def rss_kib(self, field="VmRSS"):
        return proc_status_kib(self.pid, field)


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


@pytest.fixture
def lb(tmp_path):
    """lb(listeners, stats=False, threads=1, verb=("lb",), name="lb") -> started Lb; all
    stopped at teardown."""
    made = []

    def make(listeners, name="lb", **kw):
        inst = Lb(tmp_path / name, listeners, **kw)
        made.append(inst)
        return inst.start()

    yield make
    bad = []
    for inst in made:
        rc = None
        with contextlib.suppress(Exception):
            rc = inst.stop()
        # a clean stop exits 0; anything else (a crash, a hang killed, a sanitizer report
        # when RAMPART_BUILD is the ASan build) fails the test that ran it
        if rc not in (0, None):
            bad.append(f"{inst.dir.name}: exit {rc}\n{inst.log()[-2000:]}")
    assert not bad, "\n".join(bad)


# ---------------------------------------------------------------- HTTP clients

def connection(port, source=None, timeout=10):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0) if source else None)


def http_get(port, path="/", headers=None, source=None, timeout=10, method="GET", body=None):
    """One request on a fresh connection to the lb on 127.0.0.1:port -> (status,
    {lowercase: value}, body)."""
    return ngx_http_get(f"127.0.0.1:{port}", path, headers, timeout, method, body, source)


def who(port, path="/", **kw):
    """The name of the server that answered (its body "NAME\\n"); asserts a 200."""
    status, headers, body = http_get(port, path, **kw)
    assert status == 200, (status, body[:200])
    return headers.get("x-server") or body.decode().split("\n", 1)[0]


def raw_exchange(port, data, timeout=5, source=None, until_close=True):
    """Sends data on a fresh connection, half-closes nothing, reads until the peer closes (or
    timeout, or with until_close=False one complete response); returns the bytes read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    out = b""
    try:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
            if not until_close and response_complete(out):
                break
    finally:
        s.close()
    return out


def status_of(raw):
    """The status code of the first response in raw bytes (None if there is none)."""
    if not raw.startswith(b"HTTP/1."):
        return None
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def parse_response(buf, head_request=False):
    """(status, headers dict lowercase, body, rest) of the first complete response in buf, or
    None when it is not complete yet. Content-Length and chunked bodies."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    head = buf[:i].decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    rest = buf[i + 4:]
    if head_request or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", rest
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        while True:
            j = rest.find(b"\r\n")
            if j < 0:
                return None
            size = int(rest[:j].split(b";")[0], 16)
            if size == 0:
                k = rest.find(b"\r\n\r\n", j)
                if k < 0:
                    return None
                return status, headers, body, rest[k + 4:]
            if len(rest) < j + 2 + size + 2:
                return None
            body += rest[j + 2:j + 2 + size]
            rest = rest[j + 2 + size + 2:]
    n = int(headers.get("content-length", "-1"))
    if n < 0:
        return None  # body until close: incomplete until the caller says so
    if len(rest) < n:
        return None
    return status, headers, rest[:n], rest[n:]


def response_complete(buf):
    try:
        return parse_response(buf) is not None
    except ValueError:
        return True


def parse_responses(buf):
    """Every complete response in buf, in order: [(status, headers, body)]."""
    out = []
    while buf:
        r = parse_response(buf)
        if r is None:
            break
        out.append(r[:3])
        buf = r[3]
    return out
