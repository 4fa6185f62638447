"""Issue 21, spf and dns: the time limit as a budget for the whole check, bad --dns-zone files
as usage errors (never temperror), relative names without $ORIGIN (and --dns-origin),
--dns-timeout messages, spf --trace (every DNS query, checked against a query log on the
wire), spf --batch and spf --record, dns query's new types and TXT strings.

Networks: a silent UDP socket on 127.0.0.1 (nothing answers), knotd on a loopback port with a
logging UDP relay in front of it. Each bounded by a subprocess timeout far below the DNS
timeout the command is given, so a check that waits for the DNS timeout instead of its budget
fails the test rather than passing slowly."""
import json
import os
import select
import socket
import struct
import subprocess
import threading

import pytest
import yaml

from conftest import SHARED
from knot import knot_zone

ZONE = """$ORIGIN example.org.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 300
@ TXT "v=spf1 include:_a.example.org -all"
_a TXT "v=spf1 ip4:192.0.2.0/24 a:mail.example.org ~all"
mail A 198.51.100.77
"""


@pytest.fixture
def zone(tmp_path):
    p = tmp_path / "z.zone"
    p.write_text(ZONE)
    return p


@pytest.fixture
def silent():
    """A UDP port on 127.0.0.1 where a socket is bound and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield f"127.0.0.1:{s.getsockname()[1]}"
    s.close()


def err_line(res):
    return res.stderr.strip().splitlines()[0] if res.stderr.strip() else ""


# Defect 1: --time-limit bounds the whole check, each query included. A DNS timeout of 20 s
# against a silent server: only the budget can end these within the 8 s the test waits.

@pytest.mark.parametrize("extra", [[], ["--dns-timeout", "20s"]])
def test_spf_time_limit_is_a_budget(run, silent, extra):
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org",
              "--dns-server", silent, "--time-limit", "1s", *extra, timeout=8)
    assert res.returncode == 3, res.stderr
    assert res.stdout.startswith("temperror time limit for the check exceeded: example.org")


def test_senderid_time_limit_is_a_budget(run, silent):
    msg = "From: a@example.org\nSubject: x\n\nbody\n"
    res = run("senderid", "check", "--ip", "192.0.2.1", "--message", "-", "--dns-server",
              silent, "--dns-timeout", "20s", "--time-limit", "1s", input=msg, timeout=8)
    assert res.returncode == 3, res.stderr
    assert res.stdout.startswith("temperror")


def test_mail_check_time_limit_is_a_budget(run, silent):
    res = run("mail", "check", "--domain", "example.org", "--dns-server", silent,
              "--dns-timeout", "20s", "--time-limit", "1s", timeout=8)
    assert res.returncode == 3, res.stdout + res.stderr


def test_dns_timeout_alone(run, silent):
    # the per-query timeout alone, the budget far away: a DNS timeout
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org",
              "--dns-server", silent, "--dns-timeout", "500ms", timeout=8)
    assert res.returncode == 3
    assert res.stdout.startswith("temperror DNS timeout: example.org")


# Defect 2: a bad --dns-zone is the user's error (exit 2), named, never temperror (exit 3).

@pytest.mark.parametrize("verb", [
    ["dns", "query", "x.example.org"],
    ["spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org"],
    ["dkim", "verify"],
    ["mail", "check", "--domain", "example.org"],
])
def test_dns_zone_directory_is_usage_error(run, tmp_path, verb):
    res = run(*verb, "--dns-zone", tmp_path, input="", timeout=10)
    assert res.returncode == 2, res.stdout + res.stderr
    name = "mail check" if verb[0] == "mail" else verb[0]
    assert err_line(res) == f"rampart: {name}: --dns-zone {tmp_path}: Is a directory"


def test_dns_zone_missing_and_not_a_directory(run, tmp_path):
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org",
              "--dns-zone", tmp_path / "nope.zone")
    assert res.returncode == 2
    assert err_line(res) == f"rampart: spf: --dns-zone {tmp_path}/nope.zone: No such file or directory"
    f = tmp_path / "file"
    f.write_text("")
    res = run("dns", "query", "x.example.org", "--dns-zone", f / "sub")
    assert res.returncode == 2
    assert err_line(res) == f"rampart: dns: --dns-zone {f}/sub: Not a directory"


def test_dns_zone_unreadable(rampart, tmp_path):
    # root reads any file: the check runs as nobody
    z = tmp_path / "z.zone"
    z.write_text(ZONE)
    z.chmod(0)
    tmp_path.chmod(0o755)
    res = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                          rampart, "dns", "query", "example.org", "--dns-zone", str(z)],
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 2, res.stderr
    assert err_line(res) == f"rampart: dns: --dns-zone {z}: Permission denied"


# Defect 7 (dns part): a FIFO or a device as --dns-zone is refused at once, not read for ever.

def test_dns_zone_fifo_and_device(run, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/zero"):
        res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org",
                  "--dns-zone", path, timeout=10)
        assert res.returncode == 2, res.stderr
        assert err_line(res) == f"rampart: spf: --dns-zone {path}: not a regular file"


# Defect 8: relative names and no $ORIGIN (opendkim-genkey's s1.txt): an error naming the file
# and line, as BIND gives; --dns-origin supplies the origin.

GENKEY = ('s1._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "\n'
          '\t  "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" )  ; ----- DKIM key s1 for x\n')


def test_relative_names_without_origin(run, tmp_path):
    z = tmp_path / "s1.txt"
    z.write_text(GENKEY)
    res = run("dns", "query", "s1._domainkey.example.com", "TXT", "--dns-zone", z)
    assert res.returncode == 2
    assert res.stderr.splitlines()[0] == (
        f"{z}:1: 's1._domainkey': a relative name and no $ORIGIN (or --dns-origin)")
    assert f"rampart: dns: --dns-zone {z}: the zone file has errors" in res.stderr


@pytest.mark.parametrize("origin", ["example.com", "Example.COM."])
def test_dns_origin(run, tmp_path, origin):
    z = tmp_path / "s1.txt"
    z.write_text(GENKEY)
    res = run("dns", "query", "s1._domainkey.example.com", "TXT", "--dns-zone", z,
              "--dns-origin", origin, "--dns-offline")
    assert res.returncode == 0, res.stderr
    assert "v=DKIM1; h=sha256; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" in res.stdout
    # $ORIGIN in the file still wins over --dns-origin after it
    z.write_text("$ORIGIN example.net.\n" + GENKEY)
    res = run("dns", "query", "s1._domainkey.example.net", "TXT", "--dns-zone", z,
              "--dns-origin", origin, "--dns-offline")
    assert res.returncode == 0, res.stderr


def test_dns_origin_for_every_dns_verb(run, tmp_path):
    z = tmp_path / "spf.txt"
    z.write_text('@ TXT "v=spf1 ip4:192.0.2.1 -all"\n')
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org", "--dns-zone",
              z, "--dns-origin", "example.org", "--dns-offline")
    assert res.returncode == 0, res.stderr
    res = run("dkim", "verify", "--dns-zone", z, "--dns-origin", "example.org",
              "--dns-offline", input="From: a@example.org\n\nx\n")
    assert (res.returncode, res.stdout, res.stderr) == (1, "dkim=none\n", "")
    res = run("mail", "check", "--domain", "example.org", "--dns-zone", z, "--dns-origin",
              "example.org", "--dns-offline")
    assert "v=spf1 TXT record at example.org" in res.stdout
    res = run("senderid", "check", "--ip", "192.0.2.1", "--message", "-", "--dns-zone", z,
              "--dns-origin", "example.org", "--dns-offline", input="From: a@example.org\n\nx\n")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("args,msg", [
    (["--dns-origin", "a..b", "--dns-zone", "Z"], "--dns-origin 'a..b': not a domain name"),
    (["--dns-origin", "example.com"], "--dns-origin needs --dns-zone"),
])
def test_dns_origin_bad(run, tmp_path, args, msg):
    z = tmp_path / "z"
    z.write_text("")
    args = [str(z) if a == "Z" else a for a in args]
    res = run("dns", "query", "example.com", *args)
    assert res.returncode == 2
    assert err_line(res) == f"rampart: dns: {msg}"


# Defect 9: --dns-timeout 0 is a duration, just not a valid one.

@pytest.mark.parametrize("value,msg", [
    ("0", "must be more than 0 and at most 1h"),
    ("2h", "must be more than 0 and at most 1h"),
    ("soon", "not a duration (e.g. 2s)"),
])
def test_dns_timeout_messages(run, value, msg):
    for verb in (["dns", "query", "example.com"],
                 ["spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org"]):
        res = run(*verb, "--dns-timeout", value)
        assert res.returncode == 2
        assert err_line(res) == f"rampart: {verb[0]}: --dns-timeout '{value}': {msg}"
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@b.org", "--time-limit", value)
    assert res.returncode == 2
    assert err_line(res) == f"rampart: spf: --time-limit '{value}': {msg}"


# spf --trace

def test_trace_text(run, zone):
    res = run("spf", "check", "--ip", "198.51.100.77", "--sender", "a@example.org", "--dns-zone",
              zone, "--dns-offline", "--trace")
    assert res.returncode == 0
    assert res.stdout.startswith("pass ")
    assert res.stderr.splitlines()[6:9] == [
        ";;   term ip4:192.0.2.0/24: no match",
        ";;   query mail.example.org A: NOERROR 198.51.100.77",
        ";;   term a:mail.example.org: match",
    ]


def test_trace_text_lines(run, zone):
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org", "--dns-zone",
              zone, "--dns-offline", "--trace")
    assert res.returncode == 0
    assert res.stdout.startswith("pass ")
    assert res.stderr.splitlines() == [
        ";; check example.org",
        ';; query example.org TXT: NOERROR "v=spf1 include:_a.example.org -all"',
        ";; record v=spf1 include:_a.example.org -all",
        ";;   check _a.example.org",
        ';;   query _a.example.org TXT: NOERROR "v=spf1 ip4:192.0.2.0/24 a:mail.example.org ~all"',
        ";;   record v=spf1 ip4:192.0.2.0/24 a:mail.example.org ~all",
        ";;   term ip4:192.0.2.0/24: match",
        ";;   result _a.example.org: pass",
        ";; term include:_a.example.org: match",
        ";; result example.org: pass",
    ]


def test_trace_json(run, zone):
    res = run("spf", "check", "--ip", "198.51.100.1", "--sender", "a@example.org",
              "--dns-zone", zone, "--dns-offline", "--trace", "--json")
    assert res.returncode == 1
    assert res.stderr == ""
    out = json.loads(res.stdout)
    assert out["result"] == "fail"
    queries = [(e["name"], e["type"], e["status"]) for e in out["trace"] if e["event"] == "query"]
    assert queries == [("example.org", "TXT", "NOERROR"), ("_a.example.org", "TXT", "NOERROR"),
                       ("mail.example.org", "A", "NOERROR")]
    assert len(queries) == out["dns_queries"]
    terms = [(e["depth"], e["term"], e["outcome"]) for e in out["trace"] if e["event"] == "term"]
    assert terms == [(1, "ip4:192.0.2.0/24", "no match"), (1, "a:mail.example.org", "no match"),
                     (1, "~all", "match"), (0, "include:_a.example.org", "no match"),
                     (0, "-all", "match")]
    assert out["trace"][-1] == {"event": "result", "depth": 0, "domain": "example.org",
                                "result": "fail"}


def test_trace_past_the_budget(run, silent):
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org", "--dns-server",
              silent, "--time-limit", "300ms", "--trace", timeout=8)
    assert res.returncode == 3
    assert ";; query example.org TXT: TIMEOUT" in res.stderr
    assert ";; result example.org: temperror" in res.stderr


# spf --record

def test_record(run, zone):
    base = ["spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org"]
    res = run(*base, "--record", "v=spf1 ip4:192.0.2.1 -all", "--dns-offline")
    assert (res.returncode, res.stdout.split()[0]) == (0, "pass")
    # replaces the zone's record for the sender's domain; includes still come from the zone
    res = run(*base, "--dns-zone", zone, "--dns-offline", "--record", "v=spf1 -all")
    assert (res.returncode, res.stdout.split()[0]) == (1, "fail")
    res = run(*base[:3], "198.51.100.1", *base[4:], "--dns-zone", zone, "--dns-offline",
              "--record", "v=spf1 include:_a.example.org ?all", "--json", "--trace")
    out = json.loads(res.stdout)
    assert out["result"] == "neutral"
    assert out["trace"][2] == {"event": "record", "depth": 0,
                               "record": "v=spf1 include:_a.example.org ?all"}
    # a null sender: the HELO name's policy
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "", "--helo", "mx.example.net",
              "--record", "v=spf1 ip4:192.0.2.1 -all", "--dns-offline")
    assert (res.returncode, res.stdout.split()[0]) == (0, "pass")
    # a syntax error is the record's permerror, the answer a user wants to see
    res = run(*base, "--record", "v=spf1 ip4:192.0.2.300 -all", "--dns-offline")
    assert (res.returncode, res.stdout.split()[0]) == (1, "permerror")


@pytest.mark.parametrize("record,msg", [
    ("spf1 -all", "--record 'spf1 -all': not an SPF record (v=spf1 ...)"),
    ("v=spf10 -all", "--record 'v=spf10 -all': not an SPF record (v=spf1 ...)"),
    ("", "--record '': not an SPF record (v=spf1 ...)"),
])
def test_record_bad(run, record, msg):
    res = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.org", "--record",
              record)
    assert res.returncode == 2
    assert err_line(res) == f"rampart: spf: {msg}"


# spf --batch

BATCH = """# replayed from a log
192.0.2.1 a@example.org
198.51.100.1   b@example.org  helo.example.net

192.0.2.77 <> mail.example.org
not-an-ip a@example.org
192.0.2.1
2001:db8::1 c@example.org mx.example.net rcpt@example.net
"""


def test_batch(run, zone, tmp_path):
    f = tmp_path / "queries"
    f.write_text(BATCH)
    for src, inp in ((f, None), ("-", BATCH)):
        res = run("spf", "check", "--batch", src, "--dns-zone", zone, "--dns-offline",
                  input=inp)
        assert res.returncode == 2, res.stderr  # two bad lines
        assert res.stdout.splitlines() == [
            "192.0.2.1 a@example.org pass domain of example.org designates 192.0.2.1 as "
            "permitted sender",
            "198.51.100.1 b@example.org fail domain of example.org does not designate "
            "198.51.100.1 as permitted sender",
            "192.0.2.77 <> none 192.0.2.77 is neither permitted nor denied by domain of "
            "mail.example.org",
            "2001:db8::1 c@example.org fail domain of example.org does not designate "
            "2001:db8::1 as permitted sender",
        ]
        assert res.stderr.splitlines() == [
            f"rampart: spf: {src}:6: 'not-an-ip': not an IPv4 or IPv6 address",
            f"rampart: spf: {src}:7: expected IP SENDER [HELO [RCPT-TO]]",
        ]


def test_batch_json_and_exit(run, zone):
    res = run("spf", "check", "--batch", "-", "--dns-zone", zone, "--dns-offline", "--json",
              input="192.0.2.1 a@example.org\n198.51.100.9 x@example.org\n")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [(x["line"], x["result"], x["client_ip"]) for x in lines] == [
        (1, "pass", "192.0.2.1"), (2, "fail", "198.51.100.9")]


def test_batch_temperror_exit(run, silent):
    res = run("spf", "check", "--batch", "-", "--dns-server", silent, "--time-limit", "200ms",
              input="192.0.2.1 a@example.org\n", timeout=8)
    assert res.returncode == 3
    assert res.stdout.startswith("192.0.2.1 a@example.org temperror")


@pytest.mark.parametrize("args,msg", [
    (["--batch", "-", "--ip", "192.0.2.1"],
     "--batch takes IP SENDER [HELO] from its lines, not from --ip, --sender or --helo"),
    (["--batch", "-", "--record", "v=spf1 -all"], "--record is for one check: not with --batch"),
])
def test_batch_bad_options(run, args, msg):
    res = run("spf", "check", *args, input="")
    assert res.returncode == 2
    assert err_line(res) == f"rampart: spf: {msg}"


def test_batch_missing_file_and_long_line(run, tmp_path, zone):
    res = run("spf", "check", "--batch", tmp_path / "nope")
    assert res.returncode == 2
    assert err_line(res) == f"rampart: spf: --batch {tmp_path}/nope: No such file or directory"
    res = run("spf", "check", "--batch", "-", "--dns-zone", zone, "--dns-offline",
              input="192.0.2.1 " + "a" * 5000 + "@example.org\n192.0.2.1 a@example.org\n")
    assert res.returncode == 2
    assert err_line(res) == "rampart: spf: -:1: longer than 4096 bytes"
    assert res.stdout.startswith("192.0.2.1 a@example.org pass")


# Acceptance 3: on the openspf suite's include-chain cases, the trace lists every DNS query
# made: compared with the queries a logging relay in front of knotd saw on the wire.

class Relay:
    """UDP relay 127.0.0.1:port -> knot, logging (qname, qtype) of every query; queries for
    the names in drop are logged and never answered (the suite's TIMEOUT)."""

    TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT",
             28: "AAAA", 99: "SPF"}

    def __init__(self, upstream, drop):
        self.up = upstream
        self.drop = {d.lower() for d in drop}
        self.log = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @staticmethod
    def question(data):
        pos, labels = 12, []
        while data[pos]:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode("latin-1"))
            pos += 1 + data[pos]
        qtype = struct.unpack("!H", data[pos + 1:pos + 3])[0]
        return ".".join(labels).lower(), qtype

    def loop(self):
        for _ in range(100000):
            if self.stop:
                return
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            data, client = self.sock.recvfrom(65535)
            name, qtype = self.question(data)
            self.log.append((name, self.TYPES.get(qtype, str(qtype))))
            if name in self.drop:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.settimeout(2)
                u.sendto(data, self.up)
                try:
                    self.sock.sendto(u.recv(65535), client)
                except socket.timeout:
                    pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def suite_zone(zonedata):
    lines = ["$ORIGIN example.com.", "$TTL 300",
             "@ SOA ns1 hostmaster 1 7200 3600 1209600 300", "@ NS ns1", "ns1 A 127.0.0.1"]
    drop = []
    for name, records in zonedata.items():
        for rec in records:
            if rec == "TIMEOUT":
                drop.append(name)
                continue
            (rtype, value), = rec.items()
            if rtype in ("SPF", "TXT"):
                # the suite's SPF records are published as TXT (RFC 7208 dropped type SPF)
                text = value if isinstance(value, str) else "".join(value)
                lines.append(f'{name}. TXT "' + text.replace('"', '\\"') + '"')
            elif rtype == "MX":
                lines.append(f"{name}. MX {value[0]} {value[1]}.")
            else:
                lines.append(f"{name}. {rtype} {value}")
    return "\n".join(lines) + "\n", drop


def suite_cases():
    docs = list(yaml.safe_load_all(
        (SHARED / "testdata/spf-openspf/rfc7208-tests.yml").read_text()))
    cases = []
    for doc in docs:
        for name, t in doc["tests"].items():
            if name.startswith("include-") and name != "include-ignores-exp":
                cases.append((name, t, doc["zonedata"]))
    return cases


CASES = suite_cases()


@pytest.mark.parametrize("name,case,zonedata", CASES, ids=[c[0] for c in CASES])
def test_trace_lists_every_query_on_the_wire(run, name, case, zonedata):
    text, drop = suite_zone(zonedata)
    with knot_zone(text, "example.com") as (addr, port):
        relay = Relay((addr, port), drop)
        try:
            res = run("spf", "check", "--ip", case["host"], "--sender", case["mailfrom"],
                      "--helo", case["helo"], "--dns-server", f"127.0.0.1:{relay.port}",
                      "--no-dnssec", "--dns-timeout", "1s", "--trace", "--json", timeout=30)
        finally:
            relay.close()
    out = json.loads(res.stdout)
    expected = case["result"] if isinstance(case["result"], list) else [case["result"]]
    assert out["result"] in expected
    traced = [(e["name"].lower(), e["type"]) for e in out["trace"] if e["event"] == "query"]
    assert len(traced) == out["dns_queries"]
    wire = set(relay.log)
    assert wire, "the relay saw no query"
    # every query that reached the wire is in the trace, and the trace shows none that did
    # not (libunbound retries a dropped query: the set, not the list)
    assert wire == set(traced), (wire, traced)


# dns query: SRV, CAA, TLSA, DS, DNSKEY; CNAME chains as dig shows them; TXT text and strings.

TYPES_ZONE = """$ORIGIN example.org.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.1
_sip._tcp SRV 10 60 5060 sip.example.org.
@ CAA 0 issue "letsencrypt.org"
_25._tcp.mx TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
child NS ns
child DS 12345 13 2 3A1EEC1B4B3F2A4C9A8E5F5B8E0D2D0E2E1A4F5B6C7D8E9F0A1B2C3D4E5F6A7B
@ DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
www CNAME web
web CNAME host
host A 192.0.2.5
t TXT "v=spf1 " "-all" ""
"""

TYPE_ANSWERS = [
    ("_sip._tcp.example.org", "SRV", "_sip._tcp.example.org. 300 IN SRV 10 60 5060 sip.example.org."),
    ("example.org", "CAA", 'example.org. 300 IN CAA 0 issue "letsencrypt.org"'),
    ("_25._tcp.mx.example.org", "tlsa", "_25._tcp.mx.example.org. 300 IN TLSA 3 1 1 "
     "0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"),
    ("child.example.org", "DS", "child.example.org. 300 IN DS 12345 13 2 "
     "3A1EEC1B4B3F2A4C9A8E5F5B8E0D2D0E2E1A4F5B6C7D8E9F0A1B2C3D4E5F6A7B"),
    ("example.org", "DNSKEY", "example.org. 300 IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0"
     "dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ=="),
]


@pytest.fixture(scope="module")
def types_server():
    with knot_zone(TYPES_ZONE, "example.org") as (addr, port):
        yield f"{addr}:{port}"


@pytest.mark.parametrize("name,qtype,line", TYPE_ANSWERS, ids=[t[1] for t in TYPE_ANSWERS])
def test_dns_query_new_types(run, types_server, name, qtype, line):
    res = run("dns", "query", name, qtype, "--dns-server", types_server, "--no-dnssec")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["status=NOERROR secure=no", line]
    out = json.loads(run("dns", "query", name, qtype, "--dns-server", types_server,
                         "--no-dnssec", "--json").stdout)
    assert out["records"][0]["rdata"] == line.split(f" IN {qtype.upper()} ")[1]


def test_dns_query_srv_json(run, types_server):
    out = json.loads(run("dns", "query", "_sip._tcp.example.org", "SRV", "--dns-server",
                         types_server, "--no-dnssec", "--json").stdout)
    rec = out["records"][0]
    assert (rec["priority"], rec["weight"], rec["port"], rec["target"]) == (
        10, 60, 5060, "sip.example.org")


def test_dns_query_cname_chain(run, types_server):
    res = run("dns", "query", "www.example.org", "--dns-server", types_server, "--no-dnssec")
    assert res.returncode == 0
    assert res.stdout.splitlines() == [
        "status=NOERROR secure=no",
        "www.example.org. 300 IN CNAME web.example.org.",
        "web.example.org. 300 IN CNAME host.example.org.",
        "host.example.org. 300 IN A 192.0.2.5",
    ]
    out = json.loads(run("dns", "query", "www.example.org", "--dns-server", types_server,
                         "--no-dnssec", "--json").stdout)
    assert out["owner"] == "host.example.org"
    assert out["cname"] == [
        {"name": "www.example.org", "ttl": 300, "target": "web.example.org"},
        {"name": "web.example.org", "ttl": 300, "target": "host.example.org"}]
    out = json.loads(run("dns", "query", "host.example.org", "--dns-server", types_server,
                         "--no-dnssec", "--json").stdout)
    assert (out["owner"], out["cname"]) == ("host.example.org", [])


def test_dns_query_txt_text_and_strings(run, types_server, tmp_path):
    out = json.loads(run("dns", "query", "t.example.org", "TXT", "--dns-server", types_server,
                         "--no-dnssec", "--json").stdout)
    rec = out["records"][0]
    assert (rec["text"], rec["strings"], rec["length"]) == ("v=spf1 -all", ["v=spf1 ", "-all", ""], 11)
    # the same from a zone file
    z = tmp_path / "t.zone"
    z.write_text('t.example.org. TXT "v=spf1 " "-all" ""\n')
    out = json.loads(run("dns", "query", "t.example.org", "TXT", "--dns-zone", z,
                         "--dns-offline", "--json").stdout)
    assert out["records"][0]["strings"] == ["v=spf1 ", "-all", ""]


def test_dns_query_unknown_type(run):
    res = run("dns", "query", "example.org", "HINFO")
    assert res.returncode == 2
    assert err_line(res) == ("rampart: dns: unknown record type 'HINFO' (A, AAAA, MX, TXT, "
                             "SPF, PTR, CNAME, NS, SOA, SRV, CAA, TLSA, DS, DNSKEY)")


# spf's text and JSON output use the shared escaping (core/esc.h, core/json.h): in text a
# backslash becomes \\ and C1 controls (U+0080..U+009F, obeyed by some terminals) and bytes
# that are not UTF-8 become \xHH; in JSON a string that is not UTF-8 gets KEY_raw (base64).
# Bytes are passed and read as bytes: these are what a hostile sender can put in MAIL FROM.

import base64  # noqa: E402  (appended section)


def run_bytes(rampart, *args, input=None):
    return subprocess.run([rampart, *args], input=input, capture_output=True, timeout=30)


def test_spf_text_escapes_backslash_and_c1(rampart, zone):
    sender = b"a\\b\xc2\x85c@example.org"
    res = run_bytes(rampart, "spf", "check", "--ip", "198.51.100.1", "--sender", sender,
                    "--explanation", "%{s}", "--dns-zone", str(zone), "--dns-offline")
    assert res.returncode == 1, res.stderr
    assert res.stdout == b"fail a\\\\b\\xc2\\x85c@example.org\n"
    # a batch line starts with the sender, escaped the same way (invalid UTF-8 too)
    res = run_bytes(rampart, "spf", "check", "--batch", "-", "--dns-zone", str(zone),
                    "--dns-offline", input=b"198.51.100.1 a\\b\xc2\x9b\xffc@example.org\n")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(b"198.51.100.1 a\\\\b\\xc2\\x9b\\xffc@example.org fail ")
    assert all(0x20 <= c < 0x7f for c in res.stdout.rstrip(b"\n"))


def test_spf_json_raw_members(rampart, zone):
    res = run_bytes(rampart, "spf", "check", "--ip", "198.51.100.1", "--sender",
                    b"a\xffb@example.org", "--explanation", "x %{s}", "--dns-zone", str(zone),
                    "--dns-offline", "--json")
    assert res.returncode == 1, res.stderr
    out = json.loads(res.stdout)
    assert out["sender"] == "a\ufffdb@example.org"
    assert base64.b64decode(out["sender_raw"]) == b"a\xffb@example.org"
    assert base64.b64decode(out["explanation_raw"]) == b"x a\xffb@example.org"
    assert "domain_raw" not in out and "client_ip_raw" not in out
    res = run_bytes(rampart, "spf", "check", "--ip", "198.51.100.1", "--sender",
                    b"a@ex\xffample.org", "--dns-zone", str(zone), "--dns-offline", "--json")
    out = json.loads(res.stdout)
    assert out["domain"] == "ex\ufffdample.org"
    assert base64.b64decode(out["domain_raw"]) == b"ex\xffample.org"
    # valid UTF-8 is kept as it is, with no _raw
    res = run_bytes(rampart, "spf", "check", "--ip", "192.0.2.1", "--sender",
                    "é@example.org".encode(), "--dns-zone", str(zone), "--dns-offline", "--json")
    out = json.loads(res.stdout)
    assert out["sender"] == "é@example.org" and "sender_raw" not in out


def test_batch_line_with_nul(rampart, zone):
    # a NUL byte would cut the line short: the line is refused, the next one still checked
    res = run_bytes(rampart, "spf", "check", "--batch", "-", "--dns-zone", str(zone),
                    "--dns-offline",
                    input=b"192.0.2.1 a@example.org\x00 b@example.org\n192.0.2.1 a@example.org\n")
    assert res.returncode == 2
    assert res.stderr.decode().splitlines() == ["rampart: spf: -:1: a NUL byte in the line"]
    assert res.stdout.decode().splitlines() == [
        "192.0.2.1 a@example.org pass domain of example.org designates 192.0.2.1 as "
        "permitted sender"]
