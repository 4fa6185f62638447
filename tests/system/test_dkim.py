"""rampart dkim and dk against independent implementations, both ways.

What rampart signs (RSA and Ed25519; every canonicalisation pair; l=; folded, 8-bit, LF-only,
empty and 50 MB bodies) is verified by dkimpy (python3-dkim), OpenDKIM (`opendkim -t` with
TestPublicKeys) and Mail::DKIM (libmail-dkim-perl; RSA only: Debian 12's version has no
Ed25519). What dkimpy and Mail::DKIM sign is verified by rampart. dkimproxy is not packaged
in Debian 12, so Mail::DKIM signs through a small Perl script: Mail::DKIM::Signer for DKIM,
and the same signer with a Mail::DKIM::DkSignature for DomainKeys (what dkimproxy's DkSigner
wrapped). Tampered copies fail everywhere. Keys come from `rampart dkim keygen`; DNS is a
zone file (--dns-zone) for rampart and the same records handed to each peer.

OpenDKIM rebuilds each field milter-style, "Name: value", losing extra spaces after the colon,
so its simple header canonicalisation fails on "Subject:   x" whoever signed; the messages
here have one space after each colon (whitespace elsewhere is kept and varied).
"""
import base64
import json
import os
import re
import stat
import subprocess

import dkim
import pytest

DOMAIN = "example.com"
CANONS = ["simple/simple", "simple/relaxed", "relaxed/simple", "relaxed/relaxed"]
TIMEOUT = 120

MESSAGES = {
    "plain": b"From: Joe <joe@example.com>\r\nTo: Suzie <suzie@example.net>\r\n"
             b"Subject: Is dinner ready?\r\nDate: Fri, 11 Jul 2003 21:00:37 -0700\r\n"
             b"Message-ID: <1@example.com>\r\n\r\nHi.\r\n\r\nWe lost the game.\r\n",
    "folded": b"From: Joe <joe@example.com>\r\nTo: a@example.net,\r\n\tb@example.net,\r\n"
              b"  c@example.net\r\nSubject: a  subject\r\n  that goes on\t and on  \r\n"
              b"\r\nBody  with  spaces \t\r\n\t\r\n\r\n",
    "8bit": "From: Jos\u00e9 <jose@example.com>\r\nSubject: caf\u00e9 \u2615\r\n\r\n"
            "Cr\u00e8me br\u00fbl\u00e9e.\r\n".encode() + b"\xff\xfe raw bytes\r\n",
    "lf": b"From: joe@example.com\nSubject: LF only\n continued\n\nline one\nline  two \n\n",
    "empty": b"From: joe@example.com\r\nSubject: nothing below\r\n\r\n",
}

PERL_VERIFY = r"""
use strict; use warnings; use Mail::DKIM::Verifier;
my ($keys, $file) = @ARGV; my %DNS;
open my $k, "<", $keys or die; while (<$k>) { chomp; my ($n, $v) = split / /, $_, 2; $DNS{lc $n} = $v; }
{ no warnings 'redefine';
  *Mail::DKIM::DNS::query = sub { my ($d) = @_; my $v = $DNS{lc $d};
    if (!defined $v) { $@ = "NXDOMAIN"; return; }
    my $rr = Net::DNS::RR->new(name => $d, type => 'TXT'); $rr->txtdata($v); return ($rr); };
  *Mail::DKIM::DNS::query_async = sub { my ($d, $t, %p) = @_; my $cb = $p{Callbacks} || {};
    my @r = Mail::DKIM::DNS::query($d, $t);
    return sub { ($cb->{Success} || sub { $_[0] })->(@r) }; };
}
open my $m, "<", $file or die; binmode $m;
my $v = Mail::DKIM::Verifier->new();
while (<$m>) { s/\r?\n\z/\r\n/; $v->PRINT($_); } $v->CLOSE;
print join(" ", map { ($_->isa('Mail::DKIM::DkSignature') ? "dk" : "dkim") . "=" . $_->result }
                    $v->signatures), "\n";
"""

PERL_SIGN = r"""
use strict; use warnings;
use Mail::DKIM::Signer; use Mail::DKIM::DkSignature; use Mail::DKIM::TextWrap;
my ($kind, $key, $sel, $method, $file) = @ARGV;
open my $m, "<", $file or die; binmode $m; my $raw = do { local $/; <$m> };
(my $crlf = $raw) =~ s/\r?\n/\r\n/g;
my %a = (Domain => 'example.com', Selector => $sel, KeyFile => $key, Method => $method,
         Algorithm => $kind eq 'dk' ? 'rsa-sha1' : 'rsa-sha256');
$a{Policy} = sub { my $s = shift;
    $s->add_signature(Mail::DKIM::DkSignature->new(Algorithm => 'rsa-sha1', Method => $method,
        Headers => $s->headers, Domain => 'example.com', Selector => $sel, Query => 'dns'));
    return; } if $kind eq 'dk';
my $s = Mail::DKIM::Signer->new(%a); $s->PRINT($crlf); $s->CLOSE;
print $s->signature->as_string, "\r\n", $crlf;
"""


@pytest.fixture(scope="session")
def keys(rampart, tmp_path_factory):
    """RSA-2048 (s=rsa) and Ed25519 (s=ed) keys: files, zone, and records for the peers."""
    d = tmp_path_factory.mktemp("dkim-keys")
    for sel, args in (("rsa", []), ("ed", ["--type", "ed25519"])):
        r = subprocess.run([rampart, "dkim", "keygen", "--domain", DOMAIN, "--selector", sel,
                            "--out", str(d)] + args, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
    zone = "".join((d / f"{s}.txt").read_text() for s in ("rsa", "ed"))
    (d / "zone").write_text(zone)
    records = {}
    for m in re.finditer(r"^(\S+)\. IN TXT \((.*?)\)", zone, re.M | re.S):
        records[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    (d / "peer-keys").write_text("".join(f"{n} {v}\n" for n, v in records.items()))
    (d / "opendkim.conf").write_text(f"TestPublicKeys {d}/peer-keys\nMode v\nSyslog no\n")
    (d / "verify.pl").write_text(PERL_VERIFY)
    (d / "sign.pl").write_text(PERL_SIGN)
    pem = (d / "ed.private").read_text()
    der = base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l))
    return {"dir": d, "records": records, "ed_seed": base64.b64encode(der[-32:])}


def rampart_verify(rampart, keys, data, verb="dkim", extra=()):
    r = subprocess.run([rampart, verb, "verify", "--dns-zone", str(keys["dir"] / "zone"),
                        "--dns-offline", *extra], input=data, capture_output=True,
                       timeout=TIMEOUT)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def rampart_sign(rampart, keys, data, sels=("rsa",), extra=(), verb="dkim"):
    args = [rampart, verb, "sign", "--domain", DOMAIN]
    for s in sels:
        args += ["--selector", s, "--key", str(keys["dir"] / f"{s}.private")]
    r = subprocess.run(args + list(extra), input=data, capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def dkimpy_verify(keys, data):
    def dnsfunc(name, timeout=5):
        rec = keys["records"].get(name.decode().rstrip("."))
        return rec.encode() if rec else None
    def one(i):
        try:
            return dkim.DKIM(data).verify(idx=i, dnsfunc=dnsfunc)
        except dkim.DKIMException:  # dkimpy raises for some failures (body hash)
            return False
    return [one(i) for i in range(len(re.findall(rb"(?mi)^DKIM-Signature:", data)))]


def opendkim_verify(keys, path):
    """{selector: result} from the Authentication-Results field opendkim -t would add."""
    r = subprocess.run(["opendkim", "-x", str(keys["dir"] / "opendkim.conf"), "-vvv", "-t",
                        str(path)], capture_output=True, text=True, timeout=TIMEOUT)
    m = re.search(r"hvalue='(.*?)'", r.stdout + r.stderr, re.S)
    assert m, r.stdout + r.stderr
    return {s: res for res, s in re.findall(r"dkim=(\w+)[^;]*?header\.s=([\w.-]+)", m.group(1))}


def perl_verify(keys, path):
    r = subprocess.run(["perl", str(keys["dir"] / "verify.pl"), str(keys["dir"] / "peer-keys"),
                        str(path)], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def tamper(data):
    """The same message with one body byte changed."""
    i = data.index(b"\n\n") + 2 if b"\r\n\r\n" not in data else data.index(b"\r\n\r\n") + 4
    if i >= len(data):
        return data + b"tampered\r\n"
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]


def check_everywhere(rampart, keys, tmp_path, signed, sel, expect_pass):
    path = tmp_path / "msg.eml"
    path.write_bytes(signed)
    want = "pass" if expect_pass else "fail"
    rc, out, err = rampart_verify(rampart, keys, signed)
    assert out.startswith(f"dkim={want} ") and rc == (0 if expect_pass else 1), out + err
    assert dkimpy_verify(keys, signed) == [expect_pass]
    assert opendkim_verify(keys, path) == {sel: want}
    if sel == "rsa":
        assert perl_verify(keys, path) == [f"dkim={want}"]


@pytest.mark.parametrize("canon", CANONS)
@pytest.mark.parametrize("sel", ["rsa", "ed"])
def test_signed_by_rampart_verifies_everywhere(rampart, keys, tmp_path, sel, canon):
    signed = rampart_sign(rampart, keys, MESSAGES["folded"], (sel,), ["--canon", canon])
    assert signed.startswith(b"DKIM-Signature: v=1; a=" +
                             (b"rsa-sha256" if sel == "rsa" else b"ed25519-sha256"))
    assert f"c={canon};".encode() in signed
    check_everywhere(rampart, keys, tmp_path, signed, sel, True)
    check_everywhere(rampart, keys, tmp_path, tamper(signed), sel, False)


@pytest.mark.parametrize("kind", ["plain", "8bit", "lf", "empty"])
@pytest.mark.parametrize("sel", ["rsa", "ed"])
def test_message_kinds(rampart, keys, tmp_path, sel, kind):
    msg = MESSAGES[kind]
    signed = rampart_sign(rampart, keys, msg, (sel,))
    assert signed.endswith(msg), "the message follows its signature unchanged"
    if kind == "lf":
        assert b"\r" not in signed
    check_everywhere(rampart, keys, tmp_path, signed, sel, True)
    check_everywhere(rampart, keys, tmp_path, tamper(signed), sel, False)


@pytest.mark.parametrize("sel", ["rsa", "ed"])
def test_body_length(rampart, keys, tmp_path, sel):
    signed = rampart_sign(rampart, keys, MESSAGES["plain"], (sel,), ["--length"])
    assert b" l=" in signed
    check_everywhere(rampart, keys, tmp_path, signed, sel, True)
    # what follows the signed length is not covered: all still pass
    check_everywhere(rampart, keys, tmp_path, signed + b"Appended footer.\r\n", sel, True)


def test_dual_signature(rampart, keys, tmp_path):
    signed = rampart_sign(rampart, keys, MESSAGES["plain"], ("rsa", "ed"))
    rc, out, _ = rampart_verify(rampart, keys, signed)
    assert rc == 0 and out.splitlines()[0].startswith("dkim=pass header.d=example.com header.s=rsa")
    assert out.splitlines()[1].startswith("dkim=pass header.d=example.com header.s=ed "
                                          "header.a=ed25519-sha256")
    assert dkimpy_verify(keys, signed) == [True, True]
    path = tmp_path / "dual.eml"
    path.write_bytes(signed)
    assert opendkim_verify(keys, path) == {"rsa": "pass", "ed": "pass"}


def test_fifty_megabyte_body(rampart, keys, tmp_path):
    line = b"The quick brown fox jumps over the lazy dog;  \tDKIM hashes every byte.\r\n"
    path = tmp_path / "big.eml"
    with open(path, "wb") as f:
        f.write(b"From: joe@example.com\r\nSubject: big\r\n\r\n")
        for _ in range(50 * 1024 * 1024 // len(line) + 1):
            f.write(line)
    signed_path = tmp_path / "big-signed.eml"
    with open(path, "rb") as src, open(signed_path, "wb") as dst:
        r = subprocess.run([rampart, "dkim", "sign", "--domain", DOMAIN, "--selector", "rsa",
                            "--key", str(keys["dir"] / "rsa.private")], stdin=src, stdout=dst,
                           stderr=subprocess.PIPE, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert os.path.getsize(signed_path) > 50 * 1024 * 1024
    with open(signed_path, "rb") as f:
        r = subprocess.run([rampart, "dkim", "verify", "--dns-zone", str(keys["dir"] / "zone"),
                            "--dns-offline"], stdin=f, capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.startswith(b"dkim=pass "), r.stdout + r.stderr
    assert opendkim_verify(keys, signed_path) == {"rsa": "pass"}
    assert dkimpy_verify(keys, signed_path.read_bytes()) == [True]


@pytest.mark.parametrize("canon", CANONS)
@pytest.mark.parametrize("sel", ["rsa", "ed"])
def test_signed_by_dkimpy_verifies(rampart, keys, sel, canon):
    msg = MESSAGES["folded"]
    if sel == "rsa":
        priv, alg = (keys["dir"] / "rsa.private").read_bytes(), b"rsa-sha256"
    else:
        priv, alg = keys["ed_seed"], b"ed25519-sha256"
    h, b = canon.encode().split(b"/")
    sig = dkim.sign(msg, sel.encode(), DOMAIN.encode(), priv, canonicalize=(h, b),
                    signature_algorithm=alg, include_headers=[b"from", b"to", b"subject"])
    rc, out, err = rampart_verify(rampart, keys, sig + msg)
    assert rc == 0 and out.startswith(f"dkim=pass header.d=example.com header.s={sel} "), err
    rc, out, _ = rampart_verify(rampart, keys, tamper(sig + msg))
    assert rc == 1 and out.startswith("dkim=fail ")


def perl_sign(keys, tmp_path, kind, method, msg):
    path = tmp_path / "in.eml"
    path.write_bytes(msg)
    r = subprocess.run(["perl", str(keys["dir"] / "sign.pl"), kind,
                        str(keys["dir"] / "rsa.private"), "rsa", method, str(path)],
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


@pytest.mark.parametrize("method", ["simple", "relaxed", "relaxed/relaxed"])
def test_signed_by_mail_dkim_verifies(rampart, keys, tmp_path, method):
    signed = perl_sign(keys, tmp_path, "dkim", method, MESSAGES["folded"])
    rc, out, err = rampart_verify(rampart, keys, signed)
    assert rc == 0 and out.startswith("dkim=pass header.d=example.com header.s=rsa "), out + err
    rc, out, _ = rampart_verify(rampart, keys, tamper(signed))
    assert rc == 1 and out.startswith("dkim=fail ")


@pytest.mark.parametrize("method", ["nofws", "simple"])
def test_domainkeys_both_ways(rampart, keys, tmp_path, method):
    # Mail::DKIM signs, rampart verifies
    signed = perl_sign(keys, tmp_path, "dk", method, MESSAGES["folded"])
    assert signed.startswith(b"DomainKey-Signature:")
    rc, out, err = rampart_verify(rampart, keys, signed, "dk")
    assert rc == 0 and out.startswith("domainkeys=pass header.d=example.com "
                                      "header.from=joe@example.com header.s=rsa "), out + err
    rc, out, _ = rampart_verify(rampart, keys, tamper(signed), "dk")
    assert rc == 1 and out.startswith("domainkeys=fail ")
    # rampart signs, Mail::DKIM verifies
    signed = rampart_sign(rampart, keys, MESSAGES["folded"], ("rsa",), ["--canon", method], "dk")
    path = tmp_path / "dk.eml"
    path.write_bytes(signed)
    assert perl_verify(keys, path) == ["dk=pass"]
    assert rampart_verify(rampart, keys, signed, "dk")[0] == 0
    path.write_bytes(tamper(signed))
    assert perl_verify(keys, path) == ["dk=fail"]


def test_keygen_files(rampart, tmp_path):
    r = subprocess.run([rampart, "dkim", "keygen", "--domain", "Example.ORG", "--selector",
                        "sel-1", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    priv, txt = tmp_path / "sel-1.private", tmp_path / "sel-1.txt"
    assert stat.S_IMODE(priv.stat().st_mode) == 0o600
    assert priv.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    zone = txt.read_text()
    assert r.stdout == zone
    # the domain as DNS compares it: lower case (issue 21)
    m = re.fullmatch(r'sel-1\._domainkey\.example\.org\. IN TXT \( ("[^"]*"(?:\s+"[^"]*")*) \)\n',
                     zone)
    assert m, zone
    strings = re.findall(r'"([^"]*)"', m.group(1))
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    # existing files are kept unless --force
    again = [rampart, "dkim", "keygen", "-d", "example.org", "-s", "sel-1", "--out", str(tmp_path)]
    r = subprocess.run(again, capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 2 and "exists; --force replaces it" in r.stderr
    r = subprocess.run(again + ["--force", "--type", "ed25519"], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0 and "k=ed25519; p=" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["dkim"], "give a command"),
    (["dkim", "frob"], "unknown command 'frob'"),
    (["dkim", "sign", "--domain", "example.com"], "needs --domain, --selector and --key"),
    (["dkim", "sign", "-d", "example.com", "-s", "a", "-k", "/nonexistent"], "/nonexistent"),
    (["dkim", "sign", "-d", "bad domain", "-s", "a", "-k", "x"], "not a domain name"),
    (["dkim", "sign", "--canon", "fancy"], "--canon 'fancy'"),
    (["dkim", "keygen", "-d", "example.com", "-s", "s", "--bits", "512"], "--bits '512'"),
    (["dkim", "keygen", "-d", "example.com", "-s", "s", "--type", "ed25519", "--bits", "2048"],
     "--bits is for RSA"),
    (["dkim", "verify", "--max-signatures", "0"], "--max-signatures '0'"),
    (["dkim", "verify", "--bogus"], "unknown option '--bogus'"),
    (["dk", "sign", "-d", "example.com", "-s", "s", "--canon", "relaxed"], "--canon 'relaxed'"),
])
def test_usage_errors(run, args, message):
    r = run(*args, input="")
    assert r.returncode == 2
    assert r.stderr.startswith(f"rampart: {args[0]}: ") and message in r.stderr, r.stderr
    assert r.stdout == ""


def test_help(run):
    for verb in ("dkim", "dk"):
        r = run(verb, "--help")
        assert r.returncode == 0 and r.stdout.startswith(f"usage: rampart {verb} ")


def test_verify_exit_codes_and_json(rampart, keys, run):
    rc, out, _ = rampart_verify(rampart, keys, MESSAGES["plain"])
    assert rc == 1 and out == "dkim=none\n"
    signed = rampart_sign(rampart, keys, MESSAGES["plain"], ("rsa", "ed"))
    rc, out, _ = rampart_verify(rampart, keys, signed, extra=["--json"])
    res = json.loads(out)
    assert rc == 0 and [r["result"] for r in res] == ["pass", "pass"]
    assert res[1]["algorithm"] == "ed25519-sha256" and res[0]["key_bits"] == 2048
    # no key anywhere: a temporary error only, exit 3 (the server does not answer)
    r = subprocess.run([rampart, "dkim", "verify", "--dns-server", "127.0.0.1:9",
                        "--dns-timeout", "1s", "--no-dnssec"], input=signed,
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.decode().startswith("dkim=temperror reason=")


def test_bad_input(rampart, keys):
    """Hostile messages: clean per-signature results, no crash, bounded work."""
    signed = rampart_sign(rampart, keys, MESSAGES["plain"], ("ed",))
    sig = signed[:signed.index(b"From:")]
    # 10,000 signature fields: 8 are checked, the rest counted on stderr
    rc, out, err = rampart_verify(rampart, keys, sig * 10000 + signed)
    assert rc == 0 and out.count("dkim=pass") == 8, err
    assert "9993 more signatures not checked" in err
    # a 1 MB header line, signed and verified
    big = b"From: joe@example.com\r\nSubject: " + b"x" * (1 << 20) + b"\r\n\r\nbody\r\n"
    assert rampart_verify(rampart, keys, rampart_sign(rampart, keys, big, ("rsa",)))[0] == 0
    # malformed tag lists, bad base64, NUL bytes: each signature its own result
    bad = (b"DKIM-Signature: v=1; a=rsa-sha256; garbage\r\n"
           b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=rsa; h=from; bh=!!; b=AA\r\n"
           b"DKIM-Signature: v=1; a=rsa-sha256; d=exa\x00mple.com; s=rsa; h=from; bh=A; b=A\r\n"
           b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=nokey; h=from; bh=AAAA; b=AAAA\r\n")
    rc, out, _ = rampart_verify(rampart, keys, bad + MESSAGES["plain"])
    assert rc == 1
    assert [l.split()[0] for l in out.splitlines()] == [
        "dkim=neutral", "dkim=neutral", "dkim=neutral", "dkim=permerror"]
    # a header that never ends and binary junk are input errors or no signature, never a crash
    rc, out, err = rampart_verify(rampart, keys, b"X: " + b"\x00\xff" * (9 << 20))
    assert rc == 2 and "the message header is over" in err
    rc, out, _ = rampart_verify(rampart, keys, os.urandom(100000))
    assert rc == 1 and out == "dkim=none\n"
