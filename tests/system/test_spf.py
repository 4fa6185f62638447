"""rampart spf / senderid: checks through real libunbound against a real authoritative server
(knotd on a loopback port, started here) serving include chains, MX, PTR and IPv6; the command
line's output, exit codes and errors. The zones are under example.com: libunbound answers the
special-use test. domain locally (NXDOMAIN) and never forwards it."""
import json
import socket

import pytest

from knot import knot_zone

SOA = "@ SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300\n@ NS ns1.example.com.\n"

ZONE = """$ORIGIN example.com.
$TTL 300
""" + SOA + """ns1 A 127.0.0.1
@       TXT "v=spf1 include:_spf.example.com include:_v6.example.com mx -all"
@       MX  10 mx1
@       MX  20 mx2
mx1     A   203.0.113.10
mx2     AAAA 2001:db8:300::10
_spf    TXT "v=spf1 ip4:192.0.2.0/28 include:_inner.example.com ~all"
_inner  TXT "v=spf1 a:relay.example.com -all"
relay   A   198.51.100.20
_v6     TXT "v=spf1 ip6:2001:db8:100::/48 a:v6host.example.com/24//64 -all"
v6host  AAAA 2001:db8:200::25
ptrdom  TXT "v=spf1 ptr -all"
mail.ptrdom  A    203.0.113.50
mail.ptrdom  AAAA 2001:db8:300::50
exp     TXT "v=spf1 mx:example.com -all exp=why.example.com"
why     TXT "%{i} may not send mail as %{l} from %{o} (%{v})"
macro   TXT "v=spf1 exists:%{ir}.%{l1r-}.bl.example.com -all"
50.2.0.192.joe.bl A 127.0.0.2
long    TXT ( "v=spf1 ip4:10.0.0.1 ip4:10.0.0.2 ip4:10.0.0.3 ip4:10.0.0.4 ip4:10.0.0.5 "
              "ip4:10.0.0.6 ip4:10.0.0.7 ip4:10.0.0.8 ip4:10.0.0.9 ip4:10.0.0.10 ip4:10.0.0.11 "
              "ip4:10.0.0.12 ip4:10.0.0.13 ip4:10.0.0.14 ip4:10.0.0.15 ip4:10.0.0.16 ip4:10.0.0.1"
              "7 ip4:10.0.0.18 -all" )
bad     TXT "v=spf1 a:example.com:8080 -all"
void    TXT "v=spf1 a:n1.example.com a:n2.example.com a:n3.example.com ?all"
lame    TXT "v=spf1 include:other.example.net -all"
redir   TXT "v=spf1 redirect=_spf.example.com"
mail    A   192.0.2.99
mail    TXT "v=spf1 a -all"
sid     TXT "spf2.0/pra ip4:192.0.2.77 -all"
sid     TXT "v=spf1 -all"
"""

REV4 = """$ORIGIN 113.0.203.in-addr.arpa.
$TTL 300
""" + SOA + """50 PTR mail.ptrdom.example.com.
51 PTR mail.ptrdom.example.com.
"""

# 2001:db8:300::50 and ::51 under 0.0.3.0.8.b.d.0.1.0.0.2.ip6.arpa
V6_TAIL = "0.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
REV6 = """$ORIGIN 0.0.3.0.8.b.d.0.1.0.0.2.ip6.arpa.
$TTL 300
""" + SOA + V6_TAIL + " PTR mail.ptrdom.example.com.\n" + \
    "1." + V6_TAIL[2:] + " PTR mail.ptrdom.example.com.\n"


@pytest.fixture(scope="module")
def server():
    with knot_zone({"example.com": ZONE, "113.0.203.in-addr.arpa": REV4,
                    "0.0.3.0.8.b.d.0.1.0.0.2.ip6.arpa": REV6}) as addr:
        yield addr


@pytest.fixture
def spf(run, server):
    """spf(ip, sender, *more) -> CompletedProcess of `rampart spf check` against knot."""
    addr, port = server

    def _spf(ip, sender, *more, verb="spf"):
        return run(verb, "check", "--ip", ip, "--sender", sender, "--receiver", "rcv.test",
                   "--dns-server", f"{addr}:{port}", "--no-dnssec", "--dns-timeout", "2s",
                   *more)

    return _spf


def first_word(r):
    return r.stdout.split("\n", 1)[0].split(" ", 1)[0]


@pytest.mark.parametrize("ip,result", [
    ("192.0.2.5", "pass"),           # ip4 inside the first include
    ("198.51.100.20", "pass"),       # a: two includes deep
    ("2001:db8:100::1", "pass"),     # ip6 in the second include
    ("2001:db8:200::99", "pass"),    # a: with an IPv6 prefix (//64)
    ("203.0.113.10", "pass"),        # mx, IPv4 exchange
    ("2001:db8:300::10", "pass"),    # mx, IPv6 exchange
    ("::ffff:192.0.2.7", "pass"),    # IPv4-mapped counts as IPv4
    ("192.0.2.200", "fail"),
    ("2001:db8:999::1", "fail"),
])
def test_include_chains_mx_ipv6(spf, ip, result):
    r = spf(ip, "joe@example.com")
    assert first_word(r) == result, r.stdout + r.stderr
    assert r.returncode == (0 if result == "pass" else 1)


def test_ptr_validated_v4_and_v6(spf):
    assert first_word(spf("203.0.113.50", "x@ptrdom.example.com")) == "pass"
    assert first_word(spf("2001:db8:300::50", "x@ptrdom.example.com")) == "pass"
    # the PTR name exists but does not point back at 203.0.113.51
    assert first_word(spf("203.0.113.51", "x@ptrdom.example.com")) == "fail"


def test_fail_explanation_from_dns(spf):
    r = spf("192.0.2.50", "joe-x@exp.example.com")
    assert r.returncode == 1
    assert r.stdout.splitlines()[0] == \
        "fail 192.0.2.50 may not send mail as joe-x from exp.example.com (in-addr)"


def test_exists_macro_and_long_record(spf):
    assert first_word(spf("192.0.2.50", "joe-smith@macro.example.com")) == "pass"
    assert first_word(spf("192.0.2.51", "joe-smith@macro.example.com")) == "fail"
    assert first_word(spf("10.0.0.17", "a@long.example.com")) == "pass"
    assert first_word(spf("10.0.0.19", "a@long.example.com")) == "fail"


def test_redirect_and_helo_identity(spf):
    assert first_word(spf("192.0.2.1", "a@redir.example.com")) == "pass"
    assert first_word(spf("192.0.2.99", "", "--helo", "mail.example.com")) == "pass"
    r = spf("192.0.2.98", "", "--helo", "mail.example.com", "--received-spf")
    assert first_word(r) == "fail"
    assert "identity=helo" in r.stdout and "envelope-from" not in r.stdout


def test_errors_none_and_temperror(spf):
    r = spf("192.0.2.1", "a@bad.example.com")
    assert r.returncode == 1
    assert r.stdout.startswith("permerror Invalid domain found (use FQDN): example.com:8080")
    r = spf("192.0.2.1", "a@void.example.com")
    assert r.stdout.startswith("permerror Void lookup limit of 2 exceeded")
    r = spf("192.0.2.1", "a@nothing.example.com")
    assert r.returncode == 1 and first_word(r) == "none"
    # knot refuses names outside its zones: the resolver fails, the check is temporary
    r = spf("192.0.2.1", "a@lame.example.com")
    assert r.returncode == 3 and first_word(r) == "temperror", r.stdout


def test_received_spf_and_json(spf):
    r = spf("192.0.2.5", "joe@example.com", "--helo", "client.test", "--received-spf",
            "--authres")
    lines = r.stdout.splitlines()
    assert lines[1] == (
        "Received-SPF: Pass (rcv.test: domain of example.com designates 192.0.2.5 as "
        "permitted sender) client-ip=192.0.2.5; envelope-from=\"joe@example.com\"; "
        "helo=client.test; receiver=rcv.test; mechanism=\"include:_spf.example.com\"; "
        "identity=mailfrom")
    assert lines[2] == "Authentication-Results: rcv.test; spf=pass smtp.mailfrom=joe@example.com"
    j = json.loads(spf("2001:db8:100::1", "joe@example.com", "--json").stdout)
    assert j["result"] == "pass"
    assert j["mechanism"] == "include:_v6.example.com"
    assert j["lookups"] == 4 and j["void_lookups"] == 1  # relay has no AAAA
    assert j["authentication_results"] == "spf=pass smtp.mailfrom=joe@example.com"


def test_senderid_pra_from_stdin(run, server):
    addr, port = server
    msg = "Received: by x\nFrom: Joe <joe@sid.example.com>\nSubject: hi\n\nbody\n"
    dns = ["--dns-server", f"{addr}:{port}", "--no-dnssec", "--receiver", "rcv.test"]
    r = run("senderid", "check", "--ip", "192.0.2.77", "--message", "-", "--authres", *dns,
            input=msg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        "pass domain of sid.example.com designates 192.0.2.77 as permitted sender",
        "PRA: joe@sid.example.com (From)",
        "Authentication-Results: rcv.test; sender-id=pass header.from=joe@sid.example.com"]
    # mfrom scope: no spf2.0/mfrom record, so v=spf1 decides
    r = run("senderid", "check", "--ip", "192.0.2.77", "--scope", "mfrom", "--sender",
            "joe@sid.example.com", *dns)
    assert r.returncode == 1 and first_word(r) == "fail"
    r = run("senderid", "check", "--ip", "192.0.2.77", "--message", "-", *dns,
            input="From: a@x.test\nFrom: b@y.test\n\n")
    assert r.returncode == 1
    assert r.stdout.startswith("permerror no purported responsible address")


def test_zone_file_preview(run, tmp_path):
    z = tmp_path / "preview.zone"
    z.write_text("$ORIGIN preview.test.\n" + SOA.replace("example.com", "preview.test") +
                 '@ TXT "v=spf1 ip4:192.0.2.0/24 -all"\n')
    r = run("spf", "check", "--ip", "192.0.2.9", "--sender", "a@preview.test", "--dns-zone", z,
            "--dns-offline")
    assert r.returncode == 0 and first_word(r) == "pass"


@pytest.mark.parametrize("args,message", [
    ([], "missing subcommand 'check'"),
    (["verify"], "unknown subcommand 'verify'"),
    (["check", "--sender", "a@b.test"], "check needs --ip and --sender"),
    (["check", "--ip", "1.2.3", "--sender", "a@b.test"], "--ip '1.2.3': not an IPv4 or IPv6"),
    (["check", "--ip", "192.0.2.1", "--sender", ""], "give --helo"),
    (["check", "--ip", "192.0.2.1", "--sender", "a@b.test", "--bogus"], "unknown option '--bogus'"),
    (["check", "--ip", "192.0.2.1", "--sender", "a@b.test", "--explanation", "%{x}"],
     "not a valid macro string"),
    (["check", "--ip", "192.0.2.1", "--sender", "a@b.test", "extra"], "unexpected argument"),
])
def test_usage_errors(run, args, message):
    r = run("spf", *args)
    assert r.returncode == 2
    assert r.stderr.startswith("rampart: spf: ") and message in r.stderr, r.stderr
    assert r.stdout == ""


def test_senderid_usage_errors(run):
    r = run("senderid", "check", "--ip", "192.0.2.1")
    assert r.returncode == 2 and "scope pra needs --message" in r.stderr
    r = run("senderid", "check", "--ip", "192.0.2.1", "--scope", "x")
    assert r.returncode == 2 and "expected pra or mfrom" in r.stderr
    r = run("senderid", "check", "--ip", "192.0.2.1", "--message", "/nonexistent/msg")
    assert r.returncode == 2 and r.stderr.startswith("rampart: senderid: /nonexistent/msg")


def test_help(run):
    for verb in ("spf", "senderid"):
        r = run("help", verb)
        assert r.returncode == 0 and r.stdout.startswith(f"usage: rampart {verb} check")


def _txt(value):
    """A TXT rdata of 255-byte quoted strings; bytes outside printable ASCII as \\DDD."""
    out = []
    for i in range(0, max(len(value), 1), 255):
        chunk = value[i:i + 255]
        out.append('"' + "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\{b:03d}"
                                 for b in chunk) + '"')
    return " ".join(out)


def test_hostile_records(run, tmp_path):
    """5,000 terms, a 64 KB record, macro bombs, include loops, NUL bytes and invalid UTF-8:
    each ends in a plain result (permerror for the broken ones), never a crash or a hang."""
    many = b"v=spf1" + b"".join(b" a:x%d.hostile.test" % (i % 97) for i in range(5000))
    huge = b"v=spf1" + b" ip4:192.0.2.1" * 4600
    bomb = b"v=spf1 exists:" + b"%{S}%{lr}%{ir}" * 4000 + b".bomb.hostile.test -all"
    records = {
        "many": many[:65000], "huge": huge, "bomb": bomb,
        "loop": b"v=spf1 include:loop2.hostile.test", "loop2": b"v=spf1 include:loop.hostile.test",
        "nul": b"v=spf1 ip4:192.0.2.1\0 -all", "utf": b"v=spf1 a:\xff\xfe.hostile.test -all",
        "utf8": "v=spf1 a:bücher.hostile.test -all".encode(),
    }
    zone = "$ORIGIN hostile.test.\n" + SOA.replace("example.com", "hostile.test")
    for name, value in records.items():
        zone += f"{name} TXT {_txt(value)}\n"
    z = tmp_path / "hostile.zone"
    z.write_text(zone)
    want = {"many": "permerror", "huge": "permerror", "bomb": "fail", "loop": "permerror",
            "nul": "permerror", "utf": "permerror", "utf8": "permerror"}
    for name, result in want.items():
        r = run("spf", "check", "--ip", "192.0.2.9", "--sender", f"x@{name}.hostile.test",
                "--dns-zone", z, "--dns-offline", "--json", timeout=30)
        assert r.returncode == 1 and r.stderr == "", (name, r.stderr)
        assert json.loads(r.stdout)["result"] == result, (name, r.stdout)


def test_dns_timeout_is_temperror(run):
    """A server that never answers: the query times out and the result is temperror (exit 3)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
        hole.bind(("127.0.0.1", 0))
        port = hole.getsockname()[1]
        r = run("spf", "check", "--ip", "192.0.2.1", "--sender", "a@example.com",
                "--dns-server", f"127.0.0.1:{port}", "--no-dnssec", "--dns-timeout", "300ms")
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("temperror ")
