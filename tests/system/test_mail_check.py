"""rampart mail check against a real authoritative server (knotd on a loopback port, started
here) through libunbound: a domain shaped like `rampart mail setup`'s output (SPF, the DKIM key
made by `rampart dkim keygen`, _domainkey o=~, _dmarc p=none with rua) passes every check; each
broken variant gives its own named failure and exit 1; DNS trouble is exit 3, never a check
result; bad arguments exit 2. Every variant is a domain of its own under example.com, so one
knotd serves them all."""
import json
import re
import socket
import threading

import pytest

from knot import knot_zone

SOA = "@ SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300\n@ NS ns1.example.com.\n"
IP = "192.0.2.10"
SPF_OK = "v=spf1 ip4:192.0.2.10 -all"
DMARC_OK = "v=DMARC1; p=none; rua=mailto:dmarc-reports@{d}"

# variant -> the row that must fail
BROKEN = {
    "twospf": "spf.single",
    "lookups": "spf.lookups",
    "revoked": "dkim.rampart.revoked",
    "mismatch": "dkim.rampart.local-key",
    "nodmarc": "dmarc.present",
    "plusall": "spf.all",
}


def txt(owner, text):
    """A TXT record in strings of at most 255 bytes."""
    parts = " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))
    return f"{owner}. TXT ( {parts} )\n"


def domain_records(d, key, spf=(SPF_OK,), dmarc=DMARC_OK, extra=""):
    out = [txt(d, s) for s in spf]
    out.append(txt(f"rampart._domainkey.{d}", key))
    out.append(txt(f"_domainkey.{d}", "o=~"))
    if dmarc:
        out.append(txt(f"_dmarc.{d}", dmarc.format(d=d)))
    out.append(f"{d}. MX 10 mail.ok.example.com.\n")
    return "".join(out) + extra


def eleven_lookups(d):
    """2 includes + 4 a + 5 mx: one DNS-querying term over RFC 7208's limit of 10."""
    a = " ".join(["a:mail.ok.example.com"] * 4)
    mx = " ".join([f"mx:{d}"] * 5)
    return (f"v=spf1 ip4:{IP} include:_s1.{d} include:_s2.{d} -all",
            txt(f"_s1.{d}", f"v=spf1 {a} -all") + txt(f"_s2.{d}", f"v=spf1 {mx} -all"))


def zone_text(key, other_key):
    d = lambda v: f"{v}.example.com"  # noqa: E731
    spf11, more = eleven_lookups(d("lookups"))
    parts = [
        "$ORIGIN example.com.\n$TTL 300\n", SOA, "ns1 A 127.0.0.1\n",
        "mail.ok A 192.0.2.10\n",
        domain_records(d("ok"), key),
        domain_records(d("twospf"), key, spf=(SPF_OK, "v=spf1 ip4:192.0.2.11 -all")),
        domain_records(d("lookups"), key, spf=(spf11,), extra=more),
        domain_records(d("revoked"), "v=DKIM1; k=rsa; p="),
        domain_records(d("mismatch"), other_key),
        domain_records(d("nodmarc"), key, dmarc=None),
        domain_records(d("plusall"), key, spf=("v=spf1 ip4:192.0.2.10 +all",)),
    ]
    return "".join(parts)


REV = "$ORIGIN 2.0.192.in-addr.arpa.\n$TTL 300\n" + SOA + "10 PTR mail.ok.example.com.\n"


def keygen(run, out, selector):
    r = run("dkim", "keygen", "--domain", "example.com", "--selector", selector, "--out", out)
    assert r.returncode == 0, r.stderr
    record = (out / f"{selector}.txt").read_text()
    return "".join(re.findall(r'"([^"]*)"', record))


@pytest.fixture(scope="module")
def keys(tmp_path_factory, rampart):
    import subprocess

    def run(*args):
        return subprocess.run([rampart, *map(str, args)], capture_output=True, text=True,
                              timeout=60)

    d = tmp_path_factory.mktemp("mailcheck")
    (d / "other").mkdir()
    key = keygen(run, d, "rampart")
    other = keygen(run, d / "other", "rampart")
    return d / "rampart.private", key, other


@pytest.fixture(scope="module")
def server(keys):
    _, key, other = keys
    with knot_zone({"example.com": zone_text(key, other), "2.0.192.in-addr.arpa": REV}) as addr:
        yield addr


@pytest.fixture
def check(run, server, keys):
    """check(domain, *more) -> CompletedProcess of `rampart mail check` against knot."""
    addr, port = server
    key_file = keys[0]

    def _check(domain, *more):
        return run("mail", "check", "--domain", domain, "--selector", "rampart", "--key",
                   key_file, "--ip", IP, "--dns-server", f"{addr}:{port}", "--no-dnssec",
                   "--dns-timeout", "2s", *more)

    return _check


def rows(result):
    return {r["check"]: r for r in json.loads(result.stdout)["rows"]}


def test_all_ok(check):
    r = check("ok.example.com")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["CHECK", "STATUS"]
    for name in ["spf.present", "spf.lookups", "spf.ip", "senderid.syntax",
                 "dkim.rampart.local-key", "domainkeys.policy", "dmarc.policy", "mx.present",
                 "fcrdns"]:
        assert any(line.split()[:2] == [name, "ok"] for line in lines), r.stdout
    j = check("ok.example.com", "--json")
    assert j.returncode == 0
    got = rows(j)
    assert {n: v["status"] for n, v in got.items() if v["status"] != "ok"} == {}
    assert len(got) == 24
    assert "monitoring only" in got["dmarc.policy"]["reason"]
    assert got["dkim.rampart.type"]["reason"] == "rsa 2048 bits"
    summary = json.loads(j.stdout)["summary"]
    assert summary == {"ok": 24, "warn": 0, "fail": 0, "result": "ok"}


@pytest.mark.parametrize("variant", sorted(BROKEN))
def test_broken(check, variant):
    r = check(f"{variant}.example.com", "--json")
    assert r.returncode == 1, r.stdout + r.stderr
    got = rows(r)
    assert got[BROKEN[variant]]["status"] == "fail", got
    assert got[BROKEN[variant]]["fix"]
    failed = {n for n, v in got.items() if v["status"] == "fail"}
    assert failed == {BROKEN[variant]}
    assert json.loads(r.stdout)["summary"]["result"] == "fail"
    # the table says the same
    t = check(f"{variant}.example.com")
    assert t.returncode == 1
    assert any(line.split()[:2] == [BROKEN[variant], "fail"] for line in t.stdout.splitlines())


def test_lookup_count(check):
    got = rows(check("lookups.example.com", "--json"))
    assert got["spf.lookups"]["reason"].startswith("11 DNS-querying terms")


def test_unknown_domain(check):
    r = check("nonexistent.example.com")
    assert r.returncode == 1
    assert "rampart: mail check: nonexistent.example.com does not exist (NXDOMAIN)" in r.stderr
    assert r.stdout.splitlines()[1].split()[:2] == ["domain.exists", "fail"]


def test_refused_zone(check):
    """knot refuses a zone it does not serve: libunbound's SERVFAIL, exit 3, not a check."""
    r = check("example.org", "--json")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "rampart: mail check: TXT lookup of example.org: server failure" in r.stderr
    j = json.loads(r.stdout)
    assert j["rows"] == [] and j["summary"]["result"] == "dns-error"


class Silent:
    """A UDP socket on loopback that reads queries and answers nothing, or garbage."""

    def __init__(self, garbage=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.garbage = garbage
        self.queries = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            self.queries += 1
            if self.garbage:
                self.sock.sendto(data[:2] + b"\xff" * 7, peer)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.mark.parametrize("garbage", [False, True], ids=["silent", "garbage"])
def test_dns_server_trouble(run, garbage):
    s = Silent(garbage)
    try:
        r = run("mail", "check", "--domain", "ok.example.com", "--selector", "rampart",
                "--dns-server", f"127.0.0.1:{s.port}", "--no-dnssec",
                # silent: the time limit, not the query timeout, must end the run
                "--dns-timeout", "1s" if garbage else "60s", "--time-limit", "2s",
                timeout=30)
    finally:
        s.close()
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stderr.startswith("rampart: mail check: TXT lookup of ok.example.com: ")
    assert s.queries >= 1
    assert " fail " not in r.stdout and " ok " not in r.stdout


@pytest.mark.parametrize("args,message", [
    (["--domain", "not a domain"], "--domain 'not a domain': not a domain name"),
    (["--domain", "com"], "not a domain name"),
    (["--domain", "example.com", "--ip", "192.0.2.300"], "--ip '192.0.2.300'"),
    (["--domain", "example.com", "--key", "/nonexistent/k.private"], "/nonexistent/k.private"),
    (["--domain", "example.com", "--selector", "a b"], "--selector 'a b'"),
    (["--selector", "rampart"], "--domain is required"),
    (["--domain", "example.com", "--frobnicate"], "unknown option '--frobnicate'"),
    (["--domain", "example.com", "extra"], "unexpected argument 'extra'"),
    (["--domain", "example.com", "--time-limit", "soon"], "--time-limit 'soon'"),
])
def test_bad_args(run, args, message):
    r = run("mail", "check", *args, "--dns-server", "127.0.0.1:9")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("rampart: mail check: ")
    assert message in r.stderr
    assert r.stdout == ""


def test_key_not_a_key(run, tmp_path):
    bad = tmp_path / "bad.private"
    bad.write_text("not a key\n")
    r = run("mail", "check", "--domain", "example.com", "--key", bad,
            "--dns-server", "127.0.0.1:9")
    assert r.returncode == 2
    assert "not a PEM private key" in r.stderr
