"""`rampart lb` soak, bounded (~25 s): mixed keep-alive and close load, through an http and a
tcp listener, while backends are killed and restarted; then its fds return to the baseline and its RSS is stable. And under
a CPU hog on every core it keeps answering every request (slower, without errors).

The long form (`make soak`) sets RAMPART_SOAK_SECONDS (default 12) and RAMPART_SOAK_PERIOD
(default 2: one backend killed, and restarted half a period later, every period seconds)."""
import collections
import contextlib
import http.client
import os
import subprocess
import threading
import time

from lbutil import free_port, http_get, lb, listener, server, wait_for  # noqa: F401
from nginx import nginx  # noqa: F401

CHECK = {"type": "http", "path": "/", "interval": "200ms", "timeout": "150ms",
         "rise": 2, "fall": 2}
PATHS = ["/", "/slow?ms=20", "/big/65536", "/status/404", "/chunked", "/headers"]
SOAK_SECONDS = min(float(os.environ.get("RAMPART_SOAK_SECONDS", "12")), 3600.0)
SOAK_PERIOD = max(float(os.environ.get("RAMPART_SOAK_PERIOD", "2")), 1.0)
# For an ASan build: its default quarantine holds up to 256 MiB of freed memory, which would
# read as growth of the lb's RSS (no effect on a normal build).
SMALL_QUARANTINE = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"}


class Load:
    """Client threads against port until stop(): keep-alive ones reuse a connection (a new one
    after an error), close ones open a connection per request. Counts statuses and errors."""

    def __init__(self, port, keepalive=2, close=2, timeout=20):
        self.port = port
        self.timeout = timeout
        self.stats = collections.Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(ka, i), daemon=True)
                        for i, ka in enumerate([True] * keepalive + [False] * close)]
        for t in self.threads:
            t.start()

    def _count(self, key):
        with self.lock:
            self.stats[key] += 1

    def _run(self, keepalive, idx):
        conn = None
        n = 0
        while not self.stopping.is_set() and n < 100000:
            path = PATHS[(n + idx) % len(PATHS)]
            n += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=self.timeout)
                conn.request("GET", path, headers={} if keepalive else {"Connection": "close"})
                r = conn.getresponse()
                r.read()
                self._count(r.status)
                if not keepalive or r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self._count(type(e).__name__)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 10)
        return self.stats


def fds(l):
    """(descriptors but pipes, pipes) the lb has open."""
    d = f"/proc/{l.pid}/fd"
    links = []
    for x in os.listdir(d):
        with contextlib.suppress(FileNotFoundError):  # closed since the listing
            links.append(os.readlink(f"{d}/{x}"))
    pipes = sum(x.startswith("pipe:") for x in links)
    return len(links) - pipes, pipes


def fd_baseline(l, samples=6):
    out = []
    for _ in range(samples):
        out.append(fds(l)[0])
        time.sleep(0.1)
    return max(out)


def test_soak_backends_killed_and_restarted(lb, nginx):
    s = [nginx(f"s{i}") for i in (1, 2, 3)]
    s[0].make_file(65536)
    port, port_tcp = free_port(), free_port()
    # the same requests through an http listener and a tcp one (io_uring tunnels)
    l = lb([listener("web", port, [server(b.name, b.addr) for b in s], check=CHECK,
                     access_log=False,
                     timeout={"pool-idle": "1s", "idle": "3s", "server": "10s"}),
            listener("raw", port_tcp, [server(b.name, b.addr) for b in s], check=CHECK,
                     access_log=False, mode="tcp")],
           threads=2, env=SMALL_QUARANTINE)
    for b in s:
        l.wait_health(b.name, "up")
        l.wait_health(b.name, "up", lis="raw")
    base_fds = fd_baseline(l)

    warm = [Load(port), Load(port_tcp)]
    time.sleep(2)
    for w in warm:
        warm_stats = w.stop()
        assert set(warm_stats) <= {200, 404}, warm_stats
    rss_warm = l.rss_kib()

    loads = [Load(port), Load(port_tcp)]
    kills = 0
    cycles = max(1, int(SOAK_SECONDS // SOAK_PERIOD))
    rss_peak = rss_warm
    try:
        for i in range(cycles):
            time.sleep(SOAK_PERIOD / 2)
            victim = s[i % 3]
            victim.kill()
            kills += 1
            time.sleep(SOAK_PERIOD / 2)
            victim.start()
            assert l.alive(), l.log()[-3000:]
            rss_peak = max(rss_peak, l.rss_kib())
    finally:
        all_stats = [ld.stop() for ld in loads]
        for b in s:
            b.start()
    assert l.alive(), l.log()[-3000:]
    assert kills == cycles
    for stats in all_stats:
        ok = stats[200] + stats[404]
        total = sum(stats.values())
        assert ok > 100, stats
        # killed backends cut the requests they were answering; nothing else may fail
        assert total - ok <= max(30, total // 20), stats

    # afterwards every server is back and every request succeeds
    for b in s:
        l.wait_health(b.name, "up")
    for _ in range(30):
        assert http_get(port, "/")[0] == 200
        assert http_get(port_tcp, "/")[0] == 200
    # fds back to the baseline (idle pooled server connections expire after pool-idle)
    wait_for(lambda: fds(l)[0] <= base_fds, 20, 0.2, f"the lb's fd count back to {base_fds}")
    # tcp mode keeps the pipes of finished splice(2) transfers for the next ones: at most a
    # pair per direction for each of the 4 tcp clients, on each of the 2 workers
    assert fds(l)[1] <= 2 * 2 * 4 * 2, fds(l)
    rss_after = l.rss_kib()
    assert rss_after - rss_warm < 16 * 1024, (rss_warm, rss_after)
    assert rss_peak - rss_warm < 16 * 1024, (rss_warm, rss_peak)
    # a clean stop (under ASan in CI this also means no leak and no memory error)
    assert l.stop() == 0, l.log()[-3000:]


def test_cpu_hog_every_request_answered(lb, nginx):
    s1, s2 = nginx("s1"), nginx("s2")
    port = free_port()
    # a check that tolerates a starved machine: the point is the traffic, not the checks
    slow_check = {"type": "http", "path": "/", "interval": "2s", "timeout": "2s",
                  "rise": 1, "fall": 3}
    l = lb([listener("web", port, [server(b.name, b.addr) for b in (s1, s2)],
                     check=slow_check,
                     access_log=False,
                     timeout={"connect": "10s", "server": "30s", "client": "30s"})],
           threads="auto")
    for b in (s1, s2):
        l.wait_health(b.name, "up")
    hogs = []
    try:
        for _ in range(max(4, 2 * (os.cpu_count() or 1))):
            # a busy loop that ends by itself after 40 s even if this test dies
            hogs.append(subprocess.Popen(["/usr/bin/python3", "-c",
                                          "import time\nend = time.monotonic() + 40\n"
                                          "while time.monotonic() < end: pass"]))
        time.sleep(0.5)
        load = Load(port, keepalive=2, close=2, timeout=30)
        time.sleep(6)
        stats = load.stop()
    finally:
        for h in hogs:
            with contextlib.suppress(OSError):
                h.kill()
        for h in hogs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                h.wait(timeout=5)
    assert l.alive()
    assert stats[200] + stats[404] > 20, stats
    assert set(stats) <= {200, 404}, stats  # slower, but not one error
    assert l.stop() == 0, l.log()[-3000:]
