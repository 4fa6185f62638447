"""The answer cache and the per-thread deadline of src/core/dns against a real knot server.

`rampart dns query --repeat N` runs one query N times in one process and prints, per query,
which path answered (;; query I source=hit|joined|miss|none status=S) and the resolver's
counters at the end. knot is reached through a counting UDP relay, so the tests also see how
many queries reached knot for each name and type.
"""
import collections
import re
import socket
import struct
import threading

import pytest

from knot import knot_zone

ZONES = {
    # negative answers here are kept 300 s (SOA MINIMUM)
    "example.com": """$ORIGIN example.com.
$TTL 300
@      SOA ns1 hostmaster 1 7200 3600 1209600 300
       NS  ns1
ns1    A   192.0.2.53
www    A   192.0.2.1
txt    TXT "v=spf1 -all"
short  2 A 192.0.2.2
zero   0 A 192.0.2.3
""",
    # RFC 2308 section 5: the negative TTL is min(SOA TTL, MINIMUM), here 2 s
    "neg.example": """$ORIGIN neg.example.
$TTL 300
@      SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 2
       NS  ns1.example.com.
host   A   192.0.2.9
""",
}

QUERY_LINE = re.compile(r"^;; query (\d+) source=(\w+) status=(\w+)$", re.M)
STATS_LINE = re.compile(r"^;; stats hits=(\d+) misses=(\d+) joined=(\d+) entries=(\d+)$", re.M)


def _question(data):
    """(name, qtype) of a DNS message's first question; None when malformed."""
    pos, labels = 12, []
    try:
        while data[pos]:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode("ascii", "replace"))
            pos += 1 + data[pos]
        return ".".join(labels).lower(), struct.unpack("!H", data[pos + 1:pos + 3])[0]
    except (IndexError, struct.error):
        return None


class Relay:
    """UDP relay to knot that counts the questions it forwards, per (name, qtype)."""

    def __init__(self, port):
        self.knot = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data, client = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            q = _question(data)
            with self.lock:
                self.counts[q] += 1
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(2)
                try:
                    up.sendto(data, self.knot)
                    self.sock.sendto(up.recv(65535), client)
                except OSError:
                    pass

    def count(self, name, qtype):
        with self.lock:
            return self.counts[(name, qtype)]

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def relay():
    with knot_zone(ZONES) as (_, port):
        r = Relay(port)
        yield r
        r.close()


def parse(out):
    """[(source, status) per query], {hits, misses, joined, entries}"""
    queries = [(m[2], m[3]) for m in QUERY_LINE.finditer(out)]
    assert [int(m[1]) for m in QUERY_LINE.finditer(out)] == list(range(1, len(queries) + 1))
    s = STATS_LINE.search(out)
    assert s, out
    return queries, dict(zip(("hits", "misses", "joined", "entries"), map(int, s.groups())))


@pytest.fixture
def q(run, relay):
    """q(NAME, TYPE, *options) through the relay; DNSSEC off (the zones are unsigned)."""

    def _q(name, qtype, *args, server=None, timeout=30):
        return run("dns", "query", name, qtype, *args, "--dns-server",
                   server or f"127.0.0.1:{relay.port}", "--no-dnssec", "--dns-timeout", "5s",
                   timeout=timeout)

    return _q


A, TXT = 1, 16


def test_second_lookup_is_a_cache_hit(q, relay):
    r = q("www.example.com", "A", "--repeat", "3")
    assert r.returncode == 0, r.stderr
    queries, stats = parse(r.stdout)
    assert queries == [("miss", "NOERROR"), ("hit", "NOERROR"), ("hit", "NOERROR")]
    assert stats == {"hits": 2, "misses": 1, "joined": 0, "entries": 1}
    assert relay.count("www.example.com", A) == 1
    # a hit carries the records, with what is left of their TTL
    recs = re.findall(r"^www\.example\.com\. (\d+) IN A 192\.0\.2\.1$", r.stdout, re.M)
    assert len(recs) == 3 and all(0 < int(t) <= 300 for t in recs)


def test_txt_hit_keeps_the_data(q, relay):
    r = q("txt.example.com", "TXT", "--repeat", "2")
    assert r.returncode == 0, r.stderr
    assert parse(r.stdout)[0] == [("miss", "NOERROR"), ("hit", "NOERROR")]
    assert r.stdout.count('IN TXT "v=spf1 -all"') == 2
    assert relay.count("txt.example.com", TXT) == 1


def test_expiry_after_ttl(q, relay):
    """TTL 2 s: after a 3 s pause the answer is asked for again."""
    r = q("short.example.com", "A", "--repeat", "2", "--pause", "3s")
    assert r.returncode == 0, r.stderr
    queries, stats = parse(r.stdout)
    assert queries == [("miss", "NOERROR"), ("miss", "NOERROR")]
    assert stats["hits"] == 0
    assert relay.count("short.example.com", A) == 2


def test_ttl_zero_is_not_cached(q, relay):
    r = q("zero.example.com", "A", "--repeat", "2")
    assert r.returncode == 0, r.stderr
    queries, stats = parse(r.stdout)
    assert queries == [("miss", "NOERROR"), ("miss", "NOERROR")]
    assert stats["entries"] == 0
    assert relay.count("zero.example.com", A) == 2


def test_nxdomain_cached(q, relay):
    r = q("nx.example.com", "A", "--repeat", "3")
    assert r.returncode == 1, r.stderr
    queries, stats = parse(r.stdout)
    assert queries == [("miss", "NXDOMAIN"), ("hit", "NXDOMAIN"), ("hit", "NXDOMAIN")]
    assert stats["entries"] == 1
    assert relay.count("nx.example.com", A) == 1


def test_nodata_cached(q, relay):
    r = q("www.example.com", "TXT", "--repeat", "3")
    assert r.returncode == 1, r.stderr
    queries, _ = parse(r.stdout)
    assert queries == [("miss", "NODATA"), ("hit", "NODATA"), ("hit", "NODATA")]
    assert relay.count("www.example.com", TXT) == 1


def test_negative_answers_expire_with_the_soa(q, relay):
    """neg.example's SOA MINIMUM is 2 s: NXDOMAIN and NODATA are asked for again after 3 s."""
    for name, qtype, status, code in (("nx.neg.example", A, "NXDOMAIN", 1),
                                      ("host.neg.example", TXT, "NODATA", 1)):
        r = q(name, "TXT" if qtype == TXT else "A", "--repeat", "2", "--pause", "3s")
        assert r.returncode == code, r.stderr
        assert parse(r.stdout)[0] == [("miss", status), ("miss", status)]
        assert relay.count(name, qtype) == 2


def test_servfail_not_cached(q, relay):
    """knot refuses a name outside its zones: SERVFAIL each time, nothing kept."""
    r = q("www.example.net", "A", "--repeat", "3")
    assert r.returncode == 3, r.stderr
    queries, stats = parse(r.stdout)
    assert queries == [("miss", "SERVFAIL")] * 3
    assert stats == {"hits": 0, "misses": 3, "joined": 0, "entries": 0}


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dead_port_never_cached(q):
    """Nothing listens: a temporary error each time (exit 3), never an answer, nothing kept."""
    r = q("www.example.com", "A", "--repeat", "2", "--dns-timeout", "1s",
          server=f"127.0.0.1:{_free_udp_port()}")
    assert r.returncode == 3, r.stdout + r.stderr
    queries, stats = parse(r.stdout)
    assert [s for _, s in queries] != [] and all(s in ("TIMEOUT", "SERVFAIL") for _, s in queries)
    assert [src for src, _ in queries] == ["miss", "miss"]
    assert stats["entries"] == 0 and stats["hits"] == 0


def test_silent_server_held_to_the_deadline(q):
    """A server that never answers: the 30 s query timeout is cut to the 500 ms budget, and the
    later queries of the same budget are TIMEOUT too."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        r = q("www.example.com", "A", "--repeat", "3", "--dns-timeout", "30s",
              "--deadline", "500ms", server=f"127.0.0.1:{silent.getsockname()[1]}", timeout=20)
    assert r.returncode == 3, r.stdout + r.stderr
    queries, stats = parse(r.stdout)
    assert queries == [("miss", "TIMEOUT")] * 3
    assert stats["entries"] == 0


def test_past_the_deadline_only_the_cache_answers(q, relay):
    """Budget 2 s, pause 2.5 s: the second query comes after the deadline. A cached answer is
    still given; an uncached one (TTL 0) is TIMEOUT and nothing is sent for it."""
    r = q("www.example.com", "MX", "--repeat", "2", "--deadline", "2s", "--pause", "2500ms")
    assert parse(r.stdout)[0] == [("miss", "NODATA"), ("hit", "NODATA")]
    before = relay.count("zero.example.com", A)
    r = q("zero.example.com", "A", "--repeat", "2", "--deadline", "2s", "--pause", "2500ms")
    assert r.returncode == 3, r.stdout + r.stderr
    assert parse(r.stdout)[0] == [("miss", "NOERROR"), ("miss", "TIMEOUT")]
    assert relay.count("zero.example.com", A) == before + 1


def test_prefetch_then_query_joins(q, relay):
    """The query after a prefetch waits for it instead of sending a second one."""
    r = q("ns1.example.com", "A", "--prefetch", "--repeat", "2")
    assert r.returncode == 0, r.stderr
    queries, stats = parse(r.stdout)
    assert queries == [("joined", "NOERROR"), ("hit", "NOERROR")]
    assert stats["joined"] == 1
    assert relay.count("ns1.example.com", A) == 1


def test_plain_query_prints_no_diagnostics(q):
    r = q("www.example.com", "A")
    assert r.returncode == 0
    assert ";;" not in r.stdout
    assert r.stdout.splitlines()[0] == "status=NOERROR secure=no"


@pytest.mark.parametrize("args", [["--repeat", "0"], ["--repeat", "1001"], ["--repeat", "x"],
                                  ["--pause", "forever"], ["--deadline", "-1"]])
def test_bad_diagnostic_options(run, args):
    r = run("dns", "query", "www.example.com", *args, "--dns-offline")
    assert r.returncode == 2
    assert "rampart: dns:" in r.stderr
