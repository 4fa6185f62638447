"""Real HTTP backends for the load-balancer system tests (and bench/lb): nginx, plus a small
stdlib Python backend for what nginx cannot do (WebSocket echo, hashing an upload).

    from nginx import nginx, py_backend  # noqa: F401  (pytest fixtures, like knot.py)

    def test_x(nginx, py_backend):
        s1, s2 = nginx("s1"), nginx("s2")        # two nginx instances, ports of their own
        lb_config = f"... {s1.addr} ... {s2.addr} ..."
        s1.stop()                                # killed; its port refuses connections
        s1.start()                               # back on the SAME port
        ws = py_backend("w1")                    # WebSocket echo + upload sink

    with nginx_backend("s1") as s1, nginx_backend("s2") as s2:   # without pytest
        ...

Each NginxBackend is its own nginx (master + `worker_processes 1`), started in the foreground
(`nginx -p DIR -c DIR/nginx.conf -e DIR/error.log -g 'daemon off;'`) in its own process group
on 127.0.0.1 and a free ephemeral port; config, logs, pid file and temp paths live in a
temporary directory removed at the end. Its locations:

    /                 (and any path not below)  200 "NAME\\n", header X-Server: NAME (every answer)
    /slow?ms=N        sleeps N ms (echo_sleep), then 200 "NAME\\n"
    /status/NNN       answers NNN (the codes in STATUS_CODES; 3xx redirect to /, nginx makes
                      the Location absolute: http://127.0.0.1:PORT/)
    /headers          the request headers a proxy touches, "name: value" one per line (see
                      HEADER_FIELDS; empty when absent; parse_headers_answer(body) -> dict with
                      None for those), then remote-addr, method, uri, protocol
    /raw-headers      the request line and header block exactly as received
    /big/SIZE         a static file of SIZE bytes; make it first with backend.make_file(SIZE)
                      (content(SIZE) is its deterministic content, content_sha256(SIZE) its hash)
    /upload           reads a body of any size (client_max_body_size 0; Content-Length or
                      chunked), keeps it in a file and answers "NAME\\nlength=N\\nfile=PATH\\n";
                      backend.upload_result(text) -> (bytes, sha256) hashes that file and
                      deletes it
    /chunked          a chunked response (no Content-Length): "NAME\\n", "1\\n", "2\\n", "3\\n",
                      each flushed as its own chunk
    /chunked-big      chunked: "NAME\\n" then 65536 lines "0123456789abcde\\n" (1 MiB)
    /close            200 "NAME\\n" with Connection: close (the backend closes after it)

The access log (backend.access_log() -> list of dicts) records per request the client address
and port, nginx's connection serial number and the request's number on that connection
(so a test can see connection reuse), status, bytes and X-Forwarded-For.

PyBackend (stdlib only, threads) answers "NAME\\n" like nginx, echoes WebSocket frames on any
path with `Upgrade: websocket`, and on POST/PUT /upload streams the body (Content-Length or
chunked) through sha256 and answers "NAME\\nbytes=N\\nsha256=HEX\\n". ws_connect(addr) is a
minimal WebSocket client for the tests.
"""
import contextlib
import hashlib
import os
import pathlib
import random
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import base64

try:
    import pytest
except ImportError:  # bench/lb imports this module without pytest
    pytest = None

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ECHO_MODULE = "/usr/share/nginx/modules/ngx_http_echo_module.so"
STREAM_MODULE = "/usr/share/nginx/modules/ngx_stream_module.so"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
STATUS_CODES = (200, 201, 202, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408,
                409, 410, 413, 429, 500, 501, 502, 503, 504)
HEADER_FIELDS = ("host", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                 "x-forwarded-port", "x-real-ip", "forwarded", "via", "connection", "upgrade",
                 "keep-alive", "te", "transfer-encoding", "content-length", "user-agent",
                 "x-request-id")
LOG_FIELDS = ("remote_addr", "remote_port", "connection", "connection_requests", "request",
              "status", "request_length", "body_bytes_sent", "http_x_forwarded_for",
              "http_host")


# ---------------------------------------------------------------- ports and processes

def free_port():
    """A free TCP port on 127.0.0.1: bind port 0, note the number, release it."""
    last = None
    for _ in range(50):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                return s.getsockname()[1]
        except OSError as e:
            last = e
            time.sleep(0.01)
    raise RuntimeError(f"no free loopback port: {last}")


def port_open(port, host="127.0.0.1", timeout=0.5):
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port, up=True, timeout=START_TIMEOUT, proc=None):
    """Waits until port accepts (up=True) or refuses (up=False) connections; raises on timeout
    (or, with proc, when that process exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and up and proc.poll() is not None:
            raise RuntimeError(f"process exited {proc.returncode} before port {port} opened")
        if port_open(port, timeout=0.2) == up:
            return
        time.sleep(0.02)
    raise RuntimeError(f"port {port} still {'closed' if up else 'open'} after {timeout}s")


def process_tree(pid):
    """pid and all its descendants (from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def rss_kib(pid):
    """Resident memory (KiB) of pid and its descendants together (VmRSS summed)."""
    total = 0
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def kill_group(proc, sig=signal.SIGKILL):
    """Signals proc's process group (started with start_new_session=True), then reaps proc."""
    if proc is None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass


# ---------------------------------------------------------------- deterministic file content

_BLOCK = 1 << 20
_BASE = random.Random(0x72616D70).randbytes(_BLOCK)


def _blocks(size):
    """content(size) in 1 MiB pieces: a fixed pseudo-random block whose first 8 bytes are the
    block's index, so no two blocks are alike (a reordered or repeated block changes the hash)."""
    i = 0
    while size > 0:
        block = struct.pack(">Q", i) + _BASE[8:]
        yield block[:size]
        size -= len(block)
        i += 1


def content(size):
    """The bytes /big/SIZE serves (deterministic)."""
    return b"".join(_blocks(size))


_SHA_CACHE = {}


def content_sha256(size):
    """sha256 hex of content(size), computed without holding it all in memory."""
    if size not in _SHA_CACHE:
        h = hashlib.sha256()
        for b in _blocks(size):
            h.update(b)
        _SHA_CACHE[size] = h.hexdigest()
    return _SHA_CACHE[size]


def make_file(size, directory):
    """Writes content(size) to directory/SIZE unless it is there; returns its sha256 hex."""
    path = pathlib.Path(directory) / str(int(size))
    if not path.exists() or path.stat().st_size != size:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for b in _blocks(size):
                f.write(b)
        os.chmod(tmp, 0o644)
        tmp.rename(path)
    return content_sha256(size)


def sha256_file(path):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return n, h.hexdigest()
            n += len(b)
            h.update(b)


# ---------------------------------------------------------------- nginx

class Nginx:
    """One nginx instance from a complete config text (bench/lb runs the nginx LB with it).
    The text may use {dir} for the instance's directory. Started in the foreground in its own
    process group; stop() kills the group and waits until `port` refuses."""

    def __init__(self, conf, port, directory=None, name="nginx"):
        self.name = name
        self.port = port
        self.dir = pathlib.Path(directory or tempfile.mkdtemp(prefix=f"rampart-{name}-"))
        self.dir.chmod(0o755)
        self._own_dir = directory is None
        self.conf_text = conf
        self.proc = None

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def _write_conf(self):
        (self.dir / "nginx.conf").write_text(self.conf_text.replace("{dir}", str(self.dir)))

    def _cmd(self, *extra):
        return [NGINX, "-p", f"{self.dir}/", "-c", str(self.dir / "nginx.conf"),
                "-e", str(self.dir / "error.log"), *extra]

    def start(self, timeout=START_TIMEOUT):
        """Starts nginx (on self.port) and waits until it answers."""
        if self.pid:
            return self
        self._write_conf()
        self.proc = subprocess.Popen(self._cmd("-g", "daemon off;"), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.dir / "stderr", "ab"),
                                     start_new_session=True)
        try:
            wait_port(self.port, True, timeout, self.proc)
            self._ready(timeout)
        except Exception as e:
            kill_group(self.proc)
            self.proc = None
            raise RuntimeError(f"{self.name}: nginx did not start: {e}\n{self.logs()}") from e
        return self

    def _ready(self, timeout):
        pass

    def stop(self, graceful=False):
        """Stops nginx: SIGTERM (fast shutdown; SIGQUIT with graceful=True, which lets
        requests in flight finish), SIGKILL to the group when that takes too long; waits
        until the port refuses connections."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT if graceful else signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.proc)  # the workers too, whatever the master did
        self.proc = None
        wait_port(self.port, False, STOP_TIMEOUT)

    def kill(self):
        """SIGKILL to master and workers at once (connections in flight are cut)."""
        if self.proc is not None:
            kill_group(self.proc)
            self.proc = None
        wait_port(self.port, False, STOP_TIMEOUT)

    def workers(self):
        return [p for p in process_tree(self.proc.pid) if p != self.proc.pid] if self.pid else []

    def reload(self, conf=None, timeout=START_TIMEOUT):
        """Re-reads the config (SIGHUP to the master; with conf, that text replaces it first).
        Returns when a new worker runs and the old workers have exited (nginx lets them finish
        the requests in flight and closes their idle connections); it does not wait longer than
        timeout for old workers held up by long requests."""
        if not self.pid:
            raise RuntimeError(f"{self.name}: not running")
        if conf is not None:
            self.conf_text = conf
        self._write_conf()
        before = set(self.workers())
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = set(self.workers())
            if now - before:
                while now & before and time.monotonic() < deadline:
                    time.sleep(0.02)
                    now = set(self.workers())
                self._ready(timeout)
                return self
            time.sleep(0.02)
        raise RuntimeError(f"{self.name}: no new worker after reload\n{self.logs()}")

    def rss_kib(self):
        return rss_kib(self.proc.pid) if self.pid else 0

    def logs(self):
        return "".join(p.read_text(errors="replace")[-4000:]
                       for p in (self.dir / "stderr", self.dir / "error.log") if p.exists())

    def close(self):
        """Stops it (fast shutdown, so the master reaps its workers) and removes its
        directory."""
        try:
            if self.proc is not None:
                self.stop()
        finally:
            if self._own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


BACKEND_CONF = """\
load_module {echo_module};
{user}
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log {error_level};

events {{
    worker_connections {conns};
}}

http {{
    default_type text/plain;
    log_format backend '$remote_addr $remote_port $connection $connection_requests "$request" '
                       '$status $request_length $body_bytes_sent "$http_x_forwarded_for" '
                       '"$http_host"';
    {access_log}
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    server_tokens off;

    map $arg_ms $rampart_sleep {{
        default 0;
        ~^(?<a>\\d)$ 0.00$a;
        ~^(?<a>\\d\\d)$ 0.0$a;
        ~^(?<a>\\d\\d\\d)$ 0.$a;
        ~^(?<a>\\d+)(?<b>\\d\\d\\d)$ $a.$b;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        server_name {name};
        add_header X-Server {name} always;

        location / {{
            return 200 "{name}\\n";
        }}
        location = /close {{
            keepalive_timeout 0;
            return 200 "{name}\\n";
        }}
        location = /slow {{
            echo_sleep $rampart_sleep;
            echo "{name}";
        }}
{status_locations}
        location = /headers {{
{header_echos}
            echo "remote-addr: $remote_addr";
            echo "method: $request_method";
            echo "uri: $request_uri";
            echo "protocol: $server_protocol";
        }}
        location = /raw-headers {{
            echo -n $echo_client_request_headers;
        }}
        location /big/ {{
            alias {files}/;
            default_type application/octet-stream;
        }}
        location = /upload {{
            client_max_body_size 0;
            client_body_in_file_only on;
            client_body_buffer_size 1m;
            echo_read_request_body;
            echo "{name}";
            echo "length=$content_length";
            echo "file=$request_body_file";
        }}
        location = /chunked {{
            echo "{name}";
            echo_flush;
            echo "1";
            echo_flush;
            echo "2";
            echo_flush;
            echo "3";
        }}
        location = /chunked-big {{
            echo "{name}";
            echo_duplicate 65536 "0123456789abcde\n";
        }}
{extra}
    }}
}}
"""


def _status_locations(name):
    out = []
    for code in STATUS_CODES:
        if 300 <= code < 400 and code != 304:
            ret = f"return {code} /;"
        else:
            ret = f'return {code} "{name} {code}\\n";' if code not in (204, 304) else \
                f"return {code};"
        out.append(f"        location = /status/{code} {{\n            {ret}\n        }}")
    return "\n".join(out)


def _header_echos():
    return "\n".join(
        f'            echo "{h}: ${{http_{h.replace("-", "_")}}}";' for h in HEADER_FIELDS)


class NginxBackend(Nginx):
    """A backend: its own nginx answering "NAME\\n" on 127.0.0.1:port (see the module text).

    name, port, addr ("127.0.0.1:PORT"), dir, files (the /big directory), start(), stop(),
    kill(), reload(), make_file(size), upload_result(text), access_log(), rss_kib()."""

    def __init__(self, name, port=None, files=None, access_log=True, extra="",
                 error_level="notice"):
        self.requested_port = port
        super().__init__("", port or free_port(), name=name)
        self.files = pathlib.Path(files) if files else self.dir / "big"
        self.files.mkdir(parents=True, exist_ok=True)
        self.files.chmod(0o755)
        self.access_log_enabled = access_log
        self.extra = extra
        self.error_level = error_level
        self.conf_text = self.render()

    def render(self):
        nofile = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        access = (f"access_log {self.dir}/access.log backend;" if self.access_log_enabled
                  else "access_log off;")
        return BACKEND_CONF.format(
            nofile=nofile, conns=max(1024, nofile - 100),
            echo_module=ECHO_MODULE, user="user root;" if os.geteuid() == 0 else "",
            dir=self.dir, error_level=self.error_level, access_log=access, port=self.port,
            name=self.name, files=self.files, status_locations=_status_locations(self.name),
            header_echos=_header_echos(), extra=self.extra)

    def start(self, timeout=START_TIMEOUT):
        """Starts on self.port. The first start retries on another free port if that one was
        taken meanwhile (unless a port was asked for); a restart keeps the same port and retries
        for a few seconds."""
        if self.pid:
            return self
        first = not hasattr(self, "_started")
        for attempt in range(10):
            self.conf_text = self.render()
            try:
                super().start(timeout)
                self._started = True
                return self
            except RuntimeError as e:
                if "Address already in use" not in str(e) or attempt == 9:
                    raise
                if first and self.requested_port is None:
                    self.port = free_port()
                else:
                    time.sleep(0.5)
        return self

    def reload(self, name=None, extra=None, timeout=START_TIMEOUT):
        """SIGHUP; with name/extra the config is regenerated first (e.g. answer another name)."""
        if name is not None:
            self.name = name
        if extra is not None:
            self.extra = extra
        return super().reload(self.render(), timeout)

    def _ready(self, timeout):
        """The answer on / must be ours (not another process that took the port)."""
        deadline = time.monotonic() + timeout
        err = None
        while time.monotonic() < deadline:
            try:
                status, headers, body = http_get(self.addr, "/", timeout=2)
                if status == 200 and body == f"{self.name}\n".encode():
                    return
                err = f"unexpected answer {status} {body[:80]!r}"
            except OSError as e:
                err = e
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} on {self.addr} not ready: {err}")

    def make_file(self, size):
        """Creates /big/SIZE (content(SIZE)); returns its sha256 hex."""
        return make_file(size, self.files)

    def upload_result(self, text):
        """From an /upload answer's text: (bytes, sha256 hex) of the body nginx stored; the
        stored file is deleted."""
        if isinstance(text, bytes):
            text = text.decode()
        m = re.search(r"^file=(\S+)$", text, re.M)
        if not m:
            raise ValueError(f"not an /upload answer: {text[:200]!r}")
        path = pathlib.Path(m.group(1))
        try:
            return sha256_file(path)
        finally:
            path.unlink(missing_ok=True)

    def access_log(self):
        """The requests logged so far: dicts with LOG_FIELDS as keys (strings)."""
        path = self.dir / "access.log"
        if not path.exists():
            return []
        pat = re.compile(r'(\S+) (\S+) (\d+) (\d+) "(.*)" (\d+) (\d+) (\d+) "(.*)" "(.*)"$')
        out = []
        for line in path.read_text(errors="replace").splitlines():
            m = pat.match(line)
            if m:
                out.append(dict(zip(LOG_FIELDS, m.groups())))
        return out

    def __repr__(self):
        return f"<NginxBackend {self.name} {self.addr} {'up' if self.pid else 'down'}>"


@contextlib.contextmanager
def nginx_backend(name, **kw):
    """Context manager: a started NginxBackend, closed (killed, directory removed) on exit."""
    if not os.path.exists(NGINX):
        _skip("nginx is not installed (Debian package nginx)")
    if not os.path.exists(ECHO_MODULE):
        _skip("the nginx echo module is not installed (libnginx-mod-http-echo)")
    b = NginxBackend(name, **kw)
    try:
        b.start()
        yield b
    finally:
        b.close()


def _skip(msg):
    if pytest is not None:
        pytest.skip(msg)
    raise RuntimeError(msg)


# ---------------------------------------------------------------- minimal HTTP client

def http_get(addr, path="/", headers=None, timeout=5, method="GET", body=None, source=None):
    """One request on a fresh connection (from address source, if given) -> (status,
    {lowercase header: value}, body bytes). Uses http.client (Content-Length and chunked
    answers)."""
    import http.client
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        c.close()


def parse_headers_answer(body):
    """The /headers answer as {name: value} (value None where the backend saw none)."""
    if isinstance(body, bytes):
        body = body.decode()
    out = {}
    for line in body.splitlines():
        k, _, v = line.partition(": ")
        out[k] = None if v == "" and k in HEADER_FIELDS else v
    return out


# ---------------------------------------------------------------- Python backend

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


class _Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        b = self.sock.recv(1 << 16)
        if not b:
            raise EOFError
        self.buf += b

    def read_until(self, sep, limit=65536):
        while sep not in self.buf:
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self.fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def stream(self, n):
        """Yields n bytes in pieces (never holds more than one recv at a time)."""
        while n > 0:
            if not self.buf:
                self.fill()
            piece, self.buf = self.buf[:n], self.buf[n:]
            n -= len(piece)
            yield piece


class PyBackend:
    """A threaded stdlib backend on 127.0.0.1:port: "NAME\\n" (X-Server: NAME) for any GET,
    WebSocket echo on any path with Upgrade: websocket (text, binary, ping -> pong, close),
    POST/PUT /upload -> "NAME\\nbytes=N\\nsha256=HEX\\n" (body streamed through the hash, not
    stored). HTTP/1.1 keep-alive. Counters: connections, requests, ws_messages; last_headers
    holds the last request's headers ({lowercase name: value})."""

    def __init__(self, name, port=None):
        self.name = name
        self.port = port or free_port()
        self.requested_port = port
        self.connections = 0
        self.requests = 0
        self.ws_messages = 0
        self.last_headers = {}
        self._lock = threading.Lock()
        self._socks = set()
        self._listener = None
        self._thread = None
        self._stopping = threading.Event()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    @property
    def running(self):
        return self._listener is not None

    def start(self):
        if self._listener is not None:
            return self
        for attempt in range(10):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                s.close()
                if attempt == 9:
                    raise
                if self.requested_port is None and self._thread is None:
                    self.port = free_port()
                else:
                    time.sleep(0.5)
        s.listen(1024)
        s.settimeout(0.2)
        self._listener = s
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept_loop, args=(s,), daemon=True,
                                        name=f"pybackend-{self.name}")
        self._thread.start()  # listening already: no probe (it would count as a connection)
        return self

    def stop(self):
        """Closes the listener and every open connection; waits until the port refuses."""
        if self._listener is None:
            return
        self._stopping.set()
        self._thread.join(timeout=STOP_TIMEOUT)
        self._listener.close()
        self._listener = None
        with self._lock:
            socks = list(self._socks)
            self._socks.clear()
        for c in socks:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        wait_port(self.port, False, STOP_TIMEOUT)

    kill = stop
    close = stop

    def _accept_loop(self, listener):
        while not self._stopping.is_set():
            try:
                c, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(60)
            with self._lock:
                self._socks.add(c)
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, sock):
        conn = _Conn(sock)
        try:
            while not self._stopping.is_set():
                head = conn.read_until(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                with self._lock:
                    self.requests += 1
                    self.last_headers = headers
                if headers.get("upgrade", "").lower() == "websocket":
                    self._websocket(conn, headers)
                    return
                n, digest = self._body(conn, headers)
                if target.split("?")[0] == "/upload" and method in ("POST", "PUT"):
                    body = f"{self.name}\nbytes={n}\nsha256={digest}\n".encode()
                else:
                    body = f"{self.name}\n".encode()
                close = ("close" in headers.get("connection", "").lower()
                         or (version == "HTTP/1.0"
                             and "keep-alive" not in headers.get("connection", "").lower()))
                resp = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                        f"Content-Length: {len(body)}\r\nX-Server: {self.name}\r\n"
                        f"{'Connection: close' if close else 'Connection: keep-alive'}"
                        f"\r\n\r\n").encode() + (b"" if method == "HEAD" else body)
                sock.sendall(resp)
                if close:
                    return
        except (EOFError, OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._socks.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _body(conn, headers):
        h = hashlib.sha256()
        n = 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size = int(conn.read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while conn.read_until(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                for piece in conn.stream(size):
                    h.update(piece)
                    n += len(piece)
                conn.read_exact(2)
        elif headers.get("content-length"):
            for piece in conn.stream(int(headers["content-length"])):
                h.update(piece)
                n += len(piece)
        return n, h.hexdigest()

    def _websocket(self, conn, headers):
        key = headers.get("sec-websocket-key", "")
        conn.sock.sendall((
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {ws_accept(key)}\r\nX-Server: {self.name}\r\n\r\n").encode())
        while not self._stopping.is_set():
            fin, opcode, payload = ws_read_frame(conn)
            if opcode == 0x8:  # close: answer with the same code
                conn.sock.sendall(ws_frame(payload[:2], 0x8))
                return
            if opcode == 0x9:  # ping
                conn.sock.sendall(ws_frame(payload, 0xA))
                continue
            if opcode == 0xA:
                continue
            with self._lock:
                self.ws_messages += 1
            conn.sock.sendall(ws_frame(payload, opcode, fin=fin))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"<PyBackend {self.name} {self.addr} {'up' if self.running else 'down'}>"


def ws_frame(payload, opcode=0x1, mask=False, fin=True):
    """One WebSocket frame (clients must mask, servers must not)."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def ws_read_frame(conn):
    """(fin, opcode, unmasked payload) of the next frame on a _Conn."""
    b0, b1 = conn.read_exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", conn.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", conn.read_exact(8))[0]
    key = conn.read_exact(4) if b1 & 0x80 else None
    payload = conn.read_exact(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bool(b0 & 0x80), b0 & 0x0F, payload


class WsClient:
    """Minimal WebSocket client: ws = ws_connect(addr); ws.send("hi"); ws.recv() -> "hi"."""

    def __init__(self, sock, conn, response_head):
        self.sock, self.conn, self.response_head = sock, conn, response_head

    def send(self, msg, opcode=None):
        op = opcode or (0x1 if isinstance(msg, str) else 0x2)
        self.sock.sendall(ws_frame(msg, op, mask=True))

    def recv(self):
        """The next data message (str for text, bytes for binary)."""
        while True:
            _, opcode, payload = ws_read_frame(self.conn)
            if opcode == 0x1:
                return payload.decode()
            if opcode in (0x2, 0x0):
                return payload
            if opcode == 0x8:
                raise EOFError("websocket closed")

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.sendall(ws_frame(struct.pack(">H", 1000), 0x8, mask=True))
            self.sock.close()


def ws_connect(addr, path="/ws", headers=None, timeout=5):
    """Opens a WebSocket through addr ("host:port"); checks the 101 and Sec-WebSocket-Accept."""
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    conn = _Conn(sock)
    head = conn.read_until(b"\r\n\r\n").decode("latin-1")
    if not head.startswith("HTTP/1.1 101") or ws_accept(key) not in head:
        sock.close()
        raise RuntimeError(f"websocket handshake failed: {head!r}")
    return WsClient(sock, conn, head)


# ---------------------------------------------------------------- fixtures

if pytest is not None:
    @pytest.fixture
    def nginx():
        """nginx(name, **kw) -> started NginxBackend. Backends made by one test share one /big
        directory (make_file on any of them serves on all). All are killed and their
        directories removed at teardown, also when the test fails."""
        files = tempfile.mkdtemp(prefix="rampart-big-")
        os.chmod(files, 0o755)
        with contextlib.ExitStack() as stack:
            stack.callback(shutil.rmtree, files, True)
            yield lambda name, **kw: stack.enter_context(
                nginx_backend(name, **{"files": files, **kw}))

    @pytest.fixture
    def nginx_pair(nginx):
        """Two started backends, s1 and s2."""
        return nginx("s1"), nginx("s2")

    @pytest.fixture
    def py_backend():
        """py_backend(name) -> started PyBackend (WebSocket echo, upload sink); stopped at
        teardown."""
        with contextlib.ExitStack() as stack:
            def make(name, port=None):
                b = PyBackend(name, port)
                stack.callback(b.stop)
                return b.start()
            yield make
