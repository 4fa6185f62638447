"""rampart dns: lookups through src/core/dns against a real authoritative server (knot) and
against --dns-zone files; bad input."""
import json
import re
import shutil
import socket
import struct
import subprocess
import threading

import pytest

from knot import knot, knot_zone, trust_anchor  # noqa: F401  (knot is a fixture)

ZONE = r"""$ORIGIN example.com.
$TTL 300
@       SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
        NS  ns1
        MX  10 mx1
        MX  20 mx2.example.net.
ns1     A   192.0.2.53
mx1     A   192.0.2.1
mx1     A   192.0.2.2
mx1     AAAA 2001:db8::1
txt     TXT "v=spf1 " "ip4:192.0.2.0/24 " "-all"
bin     TXT "a\"b\\c\000d\255"
www     CNAME mx1
a.b     TXT "deep"
Mixed   600 TXT "Case"
long    TXT ( "{a255}"
              "BBBBBBBBBB" )
""".replace("{a255}", "A" * 255)

REVERSE = """$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@  SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300
1  PTR mx1.example.com.
2  PTR mx1.example.com.
"""


@pytest.fixture(scope="module")
def server():
    with knot_zone({"example.com": ZONE, "2.0.192.in-addr.arpa": REVERSE}) as (addr, port):
        yield f"{addr}:{port}"


@pytest.fixture
def q(run, server):
    """q(NAME, [TYPE], *options) against knot, DNSSEC off (the test zone is unsigned)."""

    def _q(*args):
        return run("dns", "query", *args, "--dns-server", server, "--no-dnssec",
                   "--dns-timeout", "5s")

    return _q


def records(out):
    lines = out.splitlines()
    return lines[0], lines[1:]


def test_a(q):
    r = q("mx1.example.com")
    assert r.returncode == 0, r.stderr
    status, recs = records(r.stdout)
    assert status == "status=NOERROR secure=no"
    assert sorted(recs) == ["mx1.example.com. 300 IN A 192.0.2.1",
                            "mx1.example.com. 300 IN A 192.0.2.2"]


def test_aaaa(q):
    r = q("mx1.example.com", "AAAA")
    assert r.returncode == 0
    assert records(r.stdout)[1] == ["mx1.example.com. 300 IN AAAA 2001:db8::1"]


def test_mx(q):
    r = q("example.com", "mx")
    assert r.returncode == 0
    assert sorted(records(r.stdout)[1]) == ["example.com. 300 IN MX 10 mx1.example.com.",
                                            "example.com. 300 IN MX 20 mx2.example.net."]


def test_txt_strings_are_joined(q):
    r = q("txt.example.com", "TXT")
    assert r.returncode == 0
    assert records(r.stdout)[1] == ['txt.example.com. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"']


def test_txt_escapes_and_long_records(q):
    r = q("bin.example.com", "TXT")
    assert records(r.stdout)[1] == ['bin.example.com. 300 IN TXT "a\\"b\\\\c\\000d\\255"']
    r = q("long.example.com", "TXT", "--json")
    rec = json.loads(r.stdout)["records"][0]
    assert rec["length"] == 265
    assert rec["rdata"] == '"' + "A" * 255 + '" "' + "B" * 10 + '"'


def test_txt_agrees_with_kdig(q, server):
    if not shutil.which("kdig"):
        pytest.skip("kdig is not installed (Debian package knot-dnsutils)")
    addr, port = server.rsplit(":", 1)
    peer = subprocess.run(["kdig", "@" + addr, "-p", port, "+short", "txt.example.com", "TXT"],
                          capture_output=True, text=True, timeout=30)
    joined = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', peer.stdout))
    ours = records(q("txt.example.com", "TXT").stdout)[1][0].split(" TXT ", 1)[1]
    assert peer.returncode == 0 and ours == '"' + joined + '"'


def test_ptr(q):
    r = q("192.0.2.1", "PTR")
    assert r.returncode == 0
    assert records(r.stdout)[1] == ["1.2.0.192.in-addr.arpa. 300 IN PTR mx1.example.com."]
    r = q("2.2.0.192.in-addr.arpa", "PTR")
    assert records(r.stdout)[1] == ["2.2.0.192.in-addr.arpa. 300 IN PTR mx1.example.com."]


def test_cname_followed_and_asked_for(q):
    r = q("www.example.com")
    assert r.returncode == 0
    # as dig shows it (issue 21): the CNAME, then the target's records under the target's name
    lines = records(r.stdout)[1]
    assert lines[0] == "www.example.com. 300 IN CNAME mx1.example.com."
    assert sorted(lines[1:]) == ["mx1.example.com. 300 IN A 192.0.2.1",
                                 "mx1.example.com. 300 IN A 192.0.2.2"]
    r = q("www.example.com", "CNAME")
    assert records(r.stdout)[1] == ["www.example.com. 300 IN CNAME mx1.example.com."]


def test_ns_and_case(q):
    assert records(q("EXAMPLE.com.", "NS").stdout)[1] == ["example.com. 300 IN NS ns1.example.com."]
    r = q("mixed.EXAMPLE.COM", "TXT")
    assert records(r.stdout)[1] == ['mixed.example.com. 600 IN TXT "Case"']


def test_nxdomain_and_nodata(q):
    r = q("nope.example.com")
    assert (r.returncode, r.stdout) == (1, "status=NXDOMAIN secure=no\n")
    r = q("mx1.example.com", "TXT")
    assert (r.returncode, r.stdout) == (1, "status=NODATA secure=no\n")
    r = q("b.example.com", "TXT")  # empty non-terminal
    assert (r.returncode, r.stdout) == (1, "status=NODATA secure=no\n")


def test_refused_is_servfail(q):
    """knot refuses names outside its zones: a temporary failure, never an empty answer."""
    r = q("example.org")
    assert (r.returncode, r.stdout) == (3, "status=SERVFAIL secure=no\n")


def test_json(q):
    r = q("example.com", "MX", "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["name"] == "example.com" and doc["type"] == "MX"
    assert doc["status"] == "NOERROR" and doc["secure"] is False
    assert sorted((x["preference"], x["exchange"], x["ttl"]) for x in doc["records"]) == [
        (10, "mx1.example.com", 300), (20, "mx2.example.net", 300)]
    doc = json.loads(q("nope.example.com", "--json").stdout)
    assert doc["status"] == "NXDOMAIN" and doc["records"] == []


def test_timeout(run):
    """A server that never answers: TIMEOUT (exit 3) when the timeout passes."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        r = run("dns", "query", "example.com", "--dns-server", f"127.0.0.1:{port}",
                "--no-dnssec", "--dns-timeout", "500ms")
    assert (r.returncode, r.stdout) == (3, "status=TIMEOUT secure=no\n")


# Answers with one bad and one good record per type: an A of 3 bytes, a character-string
# running past its record, an MX name with a control byte (no name rampart can ask for).
# unbound passes those on; rampart must drop them and keep the good ones.
CRAFTED = {
    1: [b"\xc0\x00\x02", b"\xc0\x00\x02\x09"],
    16: [b"\x05abc", b"\x02ok"],
    15: [b"\x00\x0a\x03a\x01b\x00", b"\x00\x0a\x02mx\x04test\x00"],
}


def crafted_answer(query):
    qid = query[:2]
    end = 12
    while query[end] != 0:
        end += 1 + query[end]
    qtype = struct.unpack("!H", query[end + 1:end + 3])[0]
    question = query[12:end + 5]
    rrs = CRAFTED.get(qtype, [])
    out = qid + struct.pack("!HHHHH", 0x8580, 1, len(rrs), 0, 0) + question
    for rdata in rrs:
        out += b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
    return out


@pytest.fixture
def crafty():
    """A UDP server on loopback that answers every query with CRAFTED records."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
                sock.sendto(crafted_answer(data), peer)
            except (OSError, IndexError, struct.error):
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield "127.0.0.1:%d" % sock.getsockname()[1]
    finally:
        stop.set()
        t.join()
        sock.close()


@pytest.mark.parametrize("qtype, want", [
    ("A", "crafted.example.net. 60 IN A 192.0.2.9"),
    ("TXT", 'crafted.example.net. 60 IN TXT "ok"'),
    ("MX", "crafted.example.net. 60 IN MX 10 mx.test."),
])
def test_malformed_records_are_dropped(run, crafty, qtype, want):
    r = run("dns", "query", "crafted.example.net", qtype, "--dns-server", crafty, "--no-dnssec",
            "--dns-timeout", "5s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert records(r.stdout)[1] == [want]


SIGNED = """$ORIGIN signed.example.net.
$TTL 300
@    SOA ns1 hostmaster 1 7200 3600 1209600 300
     NS  ns1
ns1  A   192.0.2.53
www  TXT "signed data"
"""


def test_dnssec_secure_and_bogus(run, knot, tmp_path):
    """A signed zone validates (secure=yes) with its key as trust anchor; with a wrong key the
    answer is bogus, which is a server failure, never data."""
    addr, port = knot(SIGNED, "signed.example.net", dnssec=True)
    ta = tmp_path / "ta.key"
    ta.write_text(trust_anchor(port, "signed.example.net"))
    args = ["--dns-server", f"{addr}:{port}", "--dns-trust-anchor", str(ta), "--dns-timeout", "5s"]
    r = run("dns", "query", "www.signed.example.net", "TXT", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ('status=NOERROR secure=yes\n'
                        'www.signed.example.net. 300 IN TXT "signed data"\n')
    r = run("dns", "query", "nope.signed.example.net", *args)
    assert (r.returncode, r.stdout) == (1, "status=NXDOMAIN secure=yes\n")
    r = run("dns", "query", "www.signed.example.net", "TXT", *args, "--no-dnssec")
    assert (r.returncode, r.stdout.splitlines()[0]) == (0, "status=NOERROR secure=no")

    key = ta.read_text().split()
    key[-1] = ("B" if key[-1][0] != "B" else "C") + key[-1][1:]
    ta.write_text(" ".join(key) + "\n")
    r = run("dns", "query", "www.signed.example.net", "TXT", *args)
    assert (r.returncode, r.stdout) == (3, "status=SERVFAIL secure=no\n")


def test_trust_anchor_missing(run):
    r = run("dns", "query", "a.example.net", "--dns-trust-anchor", "/nonexistent/ta.key")
    assert r.returncode == 2 and "--dns-trust-anchor '/nonexistent/ta.key'" in r.stderr


def write_zone(tmp_path, text, name="z.zone"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


OVERRIDE = """$ORIGIN example.com.
@    SOA ns1 hostmaster 1 2 3 4 5
mx1  60 A 198.51.100.7
outside.example.org. TXT "from the file"
"""


def test_zone_file_takes_precedence(q, tmp_path):
    z = write_zone(tmp_path, OVERRIDE)
    r = q("mx1.example.com", "--dns-zone", z)
    assert records(r.stdout)[1] == ["mx1.example.com. 60 IN A 198.51.100.7"]
    # the file's SOA zone is answered from the file alone, even where knot has data
    r = q("txt.example.com", "TXT", "--dns-zone", z)
    assert (r.returncode, r.stdout) == (1, "status=NXDOMAIN secure=no\n")
    # names outside it go to the server; a name without an apex has its own records only
    r = q("1.2.0.192.in-addr.arpa", "PTR", "--dns-zone", z)
    assert r.returncode == 0
    r = q("outside.example.org", "TXT", "--dns-zone", z)
    assert records(r.stdout)[1] == ['outside.example.org. 60 IN TXT "from the file"']
    r = q("outside.example.org", "A", "--dns-zone", z)
    assert (r.returncode, r.stdout) == (3, "status=SERVFAIL secure=no\n")


def test_offline(run, tmp_path):
    z = write_zone(tmp_path, OVERRIDE)
    r = run("dns", "query", "MX1.example.com", "--dns-zone", z, "--dns-offline")
    assert r.returncode == 0
    assert records(r.stdout)[1] == ["mx1.example.com. 60 IN A 198.51.100.7"]
    for name in ("example.net", "nope.example.com"):
        r = run("dns", "query", name, "--dns-zone", z, "--dns-offline")
        assert (r.returncode, r.stdout) == (1, "status=NXDOMAIN secure=no\n")
    r = run("dns", "query", "outside.example.org", "a", "--dns-zone", z, "--dns-offline")
    assert (r.returncode, r.stdout) == (1, "status=NODATA secure=no\n")
    r = run("dns", "query", "anything.test", "--dns-offline")
    assert (r.returncode, r.stdout) == (1, "status=NXDOMAIN secure=no\n")


def test_bad_zone_file(run, tmp_path):
    z = write_zone(tmp_path, "$ORIGIN example.com.\nok A 192.0.2.1\nbad A 999.1.1.1\n"
                             "x TXT \"" + "y" * 300 + "\"\n\ny NOTATYPE 1\n")
    r = run("dns", "query", "ok.example.com", "--dns-zone", z, "--dns-offline")
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines[0] == f"{z}:3: '999.1.1.1': not an IPv4 address"
    assert lines[1].startswith(f"{z}:4: string of 300 bytes")
    assert lines[2] == f"{z}:6: 'NOTATYPE': unknown or unsupported record type"
    assert lines[3] == f"rampart: dns: --dns-zone {z}: the zone file has errors"


def test_missing_and_binary_zone_file(run, tmp_path):
    r = run("dns", "query", "a.test", "--dns-zone", str(tmp_path / "none"), "--dns-offline")
    assert r.returncode == 2 and "No such file" in r.stderr
    (tmp_path / "bin").write_bytes(b"\x7fELF\x02\x01\x00\x00\xff")
    r = run("dns", "query", "a.test", "--dns-zone", str(tmp_path / "bin"), "--dns-offline")
    assert r.returncode == 2 and f"{tmp_path / 'bin'}:1: control character" in r.stderr


@pytest.mark.parametrize("args, message", [
    ([], "missing subcommand"),
    (["lookup", "a.test"], "unknown subcommand 'lookup'"),
    (["query"], "missing NAME"),
    (["query", "a.test", "A", "extra"], "unexpected argument 'extra'"),
    (["query", "a.test", "HINFO"], "unknown record type 'HINFO'"),
    (["query", "a..test"], "'a..test': not a valid domain name"),
    (["query", "x" * 64 + ".test"], "not a valid domain name"),
    (["query", "."], "not a valid domain name"),
    (["query", "a.test", "--dns-server", "nowhere"], "--dns-server 'nowhere'"),
    (["query", "a.test", "--dns-timeout", "soon"], "--dns-timeout 'soon'"),
    (["query", "a.test", "--bogus"], "unknown option '--bogus'"),
    (["query", "a.test", "--dns-zone"], "needs a value"),
])
def test_usage_errors(run, args, message):
    r = run("dns", "--dns-offline", *args)
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    assert message in r.stderr and r.stderr.startswith("rampart: dns: ")


def test_help(run):
    a, b = run("help", "dns"), run("dns", "--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and a.stdout.startswith("usage: rampart dns query NAME")
    assert "--dns-zone FILE" in a.stdout


LAB = """$ORIGIN lab.test.
$TTL 300
@   SOA ns hostmaster 1 7200 3600 1209600 300
    NS  ns
ns  A   192.0.2.53
@   TXT "v=spf1 -all"
"""


@pytest.mark.parametrize("dnssec", [[], ["--no-dnssec"]])
def test_test_domain_goes_to_the_forwarder(run, dnssec):
    """RFC 6761's test. is unbound's own NXDOMAIN by default; with a forwarder, a lab's
    records under it are the forwarder's to answer (DNSSEC on or off: test. is unsigned)."""
    with knot_zone({"lab.test": LAB}) as (addr, port):
        r = run("dns", "query", "lab.test", "TXT", "--dns-server", f"{addr}:{port}", *dnssec)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"v=spf1 -all"' in r.stdout
