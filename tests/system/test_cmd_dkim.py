"""Issue 21, the dkim and dk verbs: what is not a message is not signed (no header fields, no
From), a signature of a message without From does not pass, a body past l= is said, one meaning
of -c, JSON that says none, keygen that takes "EXAMPLE.COM." and refuses odd RSA sizes, keygen's
record options (t=y, s=email, n=, a relative owner), -k on a FIFO, and `dkim testkey` (the
published record against the private key, as opendkim-testkey checks it) over a zone file and
over knot serving what `rampart mail setup` printed.

Every test here fails on the code before issue 21 (checked against the lead's build)."""
import json
import os
import random
import re
import subprocess

import dkim
import pytest

from knot import knot_zone, trust_anchor, zone_apex

DOMAIN = "example.com"
TIMEOUT = 60
MSG = b"From: Joe <joe@example.com>\r\nTo: b@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"
SOA = f"$TTL 300\n{DOMAIN}. IN SOA ns.{DOMAIN}. h.{DOMAIN}. 1 3600 600 86400 300\n"


def keygen(rampart, out, sel, *extra, domain=DOMAIN):
    r = subprocess.run([rampart, "dkim", "keygen", "--domain", domain, "--selector", sel,
                        "--out", str(out), *extra], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def record_text(zone_line):
    """The TXT strings of one zone-file record, joined."""
    return "".join(re.findall(r'"([^"]*)"', zone_line))


@pytest.fixture(scope="module")
def keys(rampart, tmp_path_factory):
    """Selector s1 (RSA) and ed (Ed25519), their zone file, and other keys: s1 again
    elsewhere (a mismatch), t=y, revoked, a broken record."""
    d = tmp_path_factory.mktemp("cmd-dkim")
    zone = SOA + keygen(rampart, d, "s1") + keygen(rampart, d, "ed", "--type", "ed25519")
    other = d / "other"
    other.mkdir()
    keygen(rampart, other, "s1")
    # t=y written here, not by keygen --testing, so that this fixture works on old code too
    rec = record_text(keygen(rampart, d, "test")).replace("k=rsa; ", "k=rsa; t=y; ")
    strings = " ".join(f'"{rec[i:i + 255]}"' for i in range(0, len(rec), 255))
    zone += f"test._domainkey.{DOMAIN}. IN TXT ( {strings} )\n"
    zone += f'revoked._domainkey.{DOMAIN}. IN TXT "v=DKIM1; k=rsa; p="\n'
    zone += f'broken._domainkey.{DOMAIN}. IN TXT "v=DKIM1; k=foo; p=AAAA"\n'
    (d / "zone").write_text(zone)
    return d


def run(rampart, *args, input=b"", timeout=TIMEOUT):
    r = subprocess.run([rampart, *map(str, args)], input=input, capture_output=True,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def sign(rampart, keys, data, verb="dkim", sel="s1", extra=()):
    return run(rampart, verb, "sign", "-d", DOMAIN, "-s", sel, "-k", keys / f"{sel}.private",
               *extra, input=data)


def verify(rampart, keys, data, verb="dkim", extra=()):
    return run(rampart, verb, "verify", "--dns-zone", keys / "zone", "--dns-offline", *extra,
               input=data)


# defect 3: only a message is signed

NOT_MESSAGES = {
    "text": (b"hello world\n", "no header fields: not a message"),
    "random": (bytes(random.Random(21).getrandbits(8) for _ in range(4096)), None),
    "empty": (b"", "no header fields: not a message"),
    "no-from": (b"To: b@example.net\r\nSubject: hi\r\n\r\nbody\r\n", "no From field"),
}


@pytest.mark.parametrize("verb", ["dkim", "dk"])
@pytest.mark.parametrize("name", list(NOT_MESSAGES))
def test_sign_refuses_what_is_not_a_message(rampart, keys, verb, name):
    data, message = NOT_MESSAGES[name]
    rc, out, err = sign(rampart, keys, data, verb)
    assert rc == 2 and out == "", (out, err)
    assert err.startswith(f"rampart: {verb}: ")
    # random bytes: no fields, or fields without From; either way it says which
    assert (message or "not a message") in err or "no From field" in err, err


@pytest.mark.parametrize("verb", ["dkim", "dk"])
def test_sign_still_signs_a_message(rampart, keys, verb):
    rc, out, err = sign(rampart, keys, MSG, verb)
    assert rc == 0, err
    rc, res, err = verify(rampart, keys, out.encode(), verb)
    assert rc == 0 and res.startswith(("dkim=pass", "domainkeys=pass")), res + err


def test_verify_signature_of_message_without_from(rampart, keys):
    """dkimpy signs h=from over a message that has none: the signature verifies, but it
    authenticates no author, so it does not pass."""
    body = b"Subject: no author\r\n\r\nbody\r\n"
    sig = dkim.sign(body, b"s1", DOMAIN.encode(), (keys / "s1.private").read_bytes(),
                    include_headers=[b"from", b"subject"])
    rc, out, err = verify(rampart, keys, sig + body)
    assert rc == 1, out + err
    assert out.startswith("dkim=policy reason=") and "no From field" in out, out
    rc, out, _ = verify(rampart, keys, sig + body, extra=["--json"])
    res = json.loads(out)
    assert [r["result"] for r in res] == ["policy"] and "no From field" in res[0]["reason"]


# defect 4: a body past l=

def test_body_past_l_is_said(rampart, keys):
    rc, signed, err = sign(rampart, keys, MSG, extra=["--length"])
    assert rc == 0 and " l=" in signed, err
    rc, out, _ = verify(rampart, keys, signed.encode())
    assert rc == 0 and out.startswith("dkim=pass header.d="), out
    rc, out, _ = verify(rampart, keys, signed.encode(), extra=["--json"])
    assert json.loads(out)[0]["body_extends_past_l"] is False
    # trailing empty lines are not body (RFC 6376 3.4.3/3.4.4): nothing extends
    rc, out, _ = verify(rampart, keys, signed.encode() + b"\r\n\r\n")
    assert rc == 0 and "reason=" not in out, out
    longer = signed.encode() + b"Appended: click here\r\n"
    rc, out, _ = verify(rampart, keys, longer)
    assert rc == 0 and out.startswith('dkim=pass reason="body extends past l="'), out
    rc, out, _ = verify(rampart, keys, longer, extra=["--json"])
    res = json.loads(out)[0]
    assert res["result"] == "pass" and res["body_extends_past_l"] is True
    assert res["reason"] == "body extends past l="


# defect 10: -c, JSON none, weak

@pytest.mark.parametrize("verb, canon", [("dkim", "relaxed/simple"), ("dk", "simple")])
def test_dash_c_is_not_canon(rampart, keys, verb, canon):
    rc, out, err = sign(rampart, keys, MSG, verb, extra=["-c", canon])
    assert rc == 2 and out == "" and "write --canon" in err, err
    rc, out, err = sign(rampart, keys, MSG, verb, extra=["--canon", canon])
    assert rc == 0 and f"c={canon};" in out, err
    # what a user who means the config gets: the same clear refusal, not a canon error
    rc, out, err = sign(rampart, keys, MSG, verb, extra=["-c", "/etc/rampart/rampart.yaml"])
    assert rc == 2 and "--canon '" not in err and "write --canon" in err, err


@pytest.mark.parametrize("verb, method", [("dkim", "dkim"), ("dk", "domainkeys")])
def test_json_says_none(rampart, keys, verb, method):
    rc, out, _ = verify(rampart, keys, MSG, verb)
    assert rc == 1 and out == f"{method}=none\n"
    rc, out, _ = verify(rampart, keys, MSG, verb, extra=["--json"])
    res = json.loads(out)
    assert rc == 1 and len(res) == 1
    assert res[0]["method"] == method and res[0]["result"] == "none"


def test_dk_weak_only_for_a_read_signature(rampart, keys):
    bad = b"DomainKey-Signature: a=rsa-sha1; ;;; garbage\r\n" + MSG
    rc, out, _ = verify(rampart, keys, bad, "dk", ["--json"])
    res = json.loads(out)[0]
    assert res["result"] == "neutral" and res["weak"] is False, res
    rc, signed, err = sign(rampart, keys, MSG, "dk")
    assert rc == 0, err
    rc, out, _ = verify(rampart, keys, signed.encode(), "dk", ["--json"])
    res = json.loads(out)[0]
    assert res["result"] == "pass" and res["weak"] is True, res


# defect 9: keygen's domain and bits

def test_keygen_domain_normalised(rampart, tmp_path):
    out = keygen(rampart, tmp_path, "s1", domain="EXAMPLE.COM.")
    assert out.startswith("s1._domainkey.example.com. IN TXT ("), out
    assert (tmp_path / "s1.txt").read_text() == out
    for bad in ("example.com..", ".", "exa mple.com"):
        rc, _, err = run(rampart, "dkim", "keygen", "-d", bad, "-s", "s", "--out", tmp_path)
        assert rc == 2 and f"--domain '{bad}': not a domain name" in err, err


@pytest.mark.parametrize("bits", ["2047", "1020", "4104", "8192", "1023", "abc"])
def test_keygen_refuses_odd_bits(run, tmp_path, bits):
    r = run("dkim", "keygen", "-d", DOMAIN, "-s", "s", "--bits", bits, "--out", tmp_path)
    assert r.returncode == 2 and f"--bits '{bits}': a multiple of 8 from 1024 to 4096" in r.stderr
    assert not (tmp_path / "s.private").exists()


def test_keygen_whole_byte_bits(rampart, tmp_path):
    keygen(rampart, tmp_path, "s", "--bits", "1032")
    rc, out, err = run(rampart, "dkim", "sign", "-d", DOMAIN, "-s", "s", "-k",
                       tmp_path / "s.private", input=MSG)
    assert rc == 0 and "DKIM-Signature:" in out, err


# keygen's record options

def test_keygen_record_options(rampart, tmp_path):
    note = 'key; "2026" = new \\ caf\u00e9'
    out = keygen(rampart, tmp_path, "s1", "--testing", "--service", "email", "--note", note)
    rec = record_text(out)
    assert rec.startswith("v=DKIM1; k=rsa; t=y; s=email; n="), rec
    n = re.search(r"n=([^;]*);", rec).group(1)
    # dkim-quoted-printable, with nothing a zone file would need to escape
    assert not re.search(r'[\s;"\\]', n)
    decoded = re.sub(rb"=([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), n.encode())
    assert decoded.decode() == note
    # the record is what dkimpy accepts as a key
    tags = dict(t.strip().split("=", 1) for t in rec.split(";") if t.strip())
    assert tags["t"] == "y" and tags["s"] == "email" and tags["p"].startswith("MIIB")


def test_keygen_relative(rampart, tmp_path):
    out = keygen(rampart, tmp_path, "s2", "--relative", "--type", "ed25519")
    assert re.fullmatch(r's2\._domainkey IN TXT \( "v=DKIM1; k=ed25519; p=[^"]+" \)\n', out), out
    assert (tmp_path / "s2.txt").read_text() == out
    # pasted into the zone of the domain, it is the record of S._domainkey.D
    zone = tmp_path / "zone"
    zone.write_text(f"$ORIGIN {DOMAIN}.\n" + SOA + out)
    rc, res, err = run(rampart, "dkim", "testkey", "-d", DOMAIN, "-s", "s2", "-k",
                       tmp_path / "s2.private", "--dns-zone", zone, "--dns-offline")
    assert rc == 0 and "key OK" in res, res + err


@pytest.mark.parametrize("args, message", [
    (["--service", "mail"], "--service 'mail': email or *"),
    (["--note", "x" * 201], "--note: at most 200 bytes"),
    (["--testing", "yes"], "unexpected argument 'yes'"),
])
def test_keygen_record_option_errors(run, tmp_path, args, message):
    r = run("dkim", "keygen", "-d", DOMAIN, "-s", "s", "--out", tmp_path, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "s.private").exists()


# defect 7: -k on a FIFO or a device

@pytest.mark.parametrize("argv", [
    ["dkim", "sign", "-d", DOMAIN, "-s", "s1", "-k"],
    ["dk", "sign", "-d", DOMAIN, "-s", "s1", "-k"],
    ["dkim", "testkey", "-d", DOMAIN, "-s", "s1", "--dns-offline", "-k"],
], ids=["dkim-sign", "dk-sign", "testkey"])
def test_key_fifo_refused(rampart, tmp_path, argv):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)
    # nothing ever writes the FIFO: reading it would block for ever (the timeout fails)
    rc, out, err = run(rampart, *argv, fifo, input=MSG, timeout=20)
    assert rc == 2 and out == "" and f"{fifo}: not a regular file" in err, err
    rc, out, err = run(rampart, *argv, "/dev/zero", input=MSG, timeout=20)
    assert rc == 2 and "/dev/zero: not a regular file" in err, err


# testkey over a zone file

def run_testkey(rampart, keys, sel, key=None, extra=None):
    key = key or keys / f"{sel}.private"
    extra = ["--dns-zone", keys / "zone", "--dns-offline"] if extra is None else extra
    return run(rampart, "dkim", "testkey", "-d", DOMAIN, "-s", sel, "-k", key, *extra)


@pytest.mark.parametrize("sel, key, code, says", [
    ("s1", None, 0, "key OK (rsa 2048 bits)"),
    ("ed", None, 0, "key OK (ed25519)"),
    ("s1", "other/s1.private", 1, "key mismatch: the published key (rsa 2048 bits) is not the "
                                  "public half of"),
    ("ed", "s1.private", 1, "key mismatch: the published key (ed25519)"),
    ("revoked", "s1.private", 4, "key revoked (empty p=)"),
    ("test", None, 5, "key OK but in testing mode (t=y)"),
    ("nokey", "s1.private", 1, "no key record (NXDOMAIN)"),
    ("broken", "s1.private", 1, "no usable key record: unsupported key type (k=)"),
])
def test_testkey_zone(rampart, keys, sel, key, code, says):
    rc, out, err = run_testkey(rampart, keys, sel, keys / key if key else None)
    name = f"{sel}._domainkey.{DOMAIN}"
    assert rc == code, out + err
    assert out.startswith(f"{name}: {says}"), out
    if code != 1 or "mismatch" in says or "usable" in says:
        assert out.splitlines()[-1] == (f"{name}: key not secure (the answer is not "
                                        "DNSSEC-validated)"), out


@pytest.mark.parametrize("args, message", [
    (["testkey", "-d", DOMAIN, "-s", "s1"], "testkey needs --domain, --selector and --key"),
    (["testkey", "-d", "EXAMPLE.COM.", "-s", "bad sel", "-k", "x"], "--selector 'bad sel'"),
    (["testkey", "-d", "a b", "-s", "s1", "-k", "x"], "--domain 'a b': not a domain name"),
    (["testkey", "-d", DOMAIN, "-s", "s1", "-k", "/nonexistent"], "/nonexistent"),
    (["testkey", "-d", DOMAIN, "-s", "s1", "-k", "x", "--dns-trust-anchor", "/nonexistent"],
     "--dns-trust-anchor '/nonexistent'"),
    (["testkey", "-d", DOMAIN, "-s", "s1", "-k", "x", "extra"], "unexpected argument 'extra'"),
])
def test_testkey_usage_errors(rampart, args, message):
    rc, out, err = run(rampart, "dkim", *args)
    assert rc == 2 and out == "" and message in err, err


def test_testkey_dns_trouble(rampart, keys):
    rc, out, err = run_testkey(rampart, keys, "s1", extra=["--dns-server", "127.0.0.1:9",
                                                       "--dns-timeout", "1s", "--no-dnssec"])
    assert rc == 3 and out == "" and "s1._domainkey.example.com" in err, out + err


# acceptance 4: testkey against what `rampart mail setup` publishes, served by knot

SETUP_DOMAIN = "example.test"
SETUP_SOA = zone_apex(SETUP_DOMAIN)


@pytest.fixture(scope="module")
def setup_out(rampart, tmp_path_factory):
    d = tmp_path_factory.mktemp("setup")
    r = subprocess.run([rampart, "mail", "setup", "--domain", SETUP_DOMAIN, "--type", "both",
                        "--out", str(d)], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return d, r.stdout


def knot_testkey(rampart, records, sel, key, dnssec=False, tmp_path=None):
    with knot_zone(SETUP_SOA + records, SETUP_DOMAIN, dnssec=dnssec) as (_, port):
        extra = ["--dns-server", f"127.0.0.1:{port}", "--dns-timeout", "5s"]
        if dnssec:
            ta = tmp_path / "ta.key"
            ta.write_text(trust_anchor(port, SETUP_DOMAIN))
            extra += ["--dns-trust-anchor", ta]
        return run(rampart, "dkim", "testkey", "-d", SETUP_DOMAIN, "-s", sel, "-k", key,
                   *extra)


def test_testkey_knot_setup_records(rampart, setup_out, tmp_path):
    keydir, records = setup_out
    for sel in ("rampart", "rampart-ed25519"):
        rc, out, err = knot_testkey(rampart, records, sel, keydir / f"{sel}.private")
        assert rc == 0 and out.startswith(f"{sel}._domainkey.{SETUP_DOMAIN}: key OK"), out + err
        assert "key not secure" in out
    # signed by knot, validated with its key as trust anchor: key secure
    rc, out, err = knot_testkey(rampart, records, "rampart", keydir / "rampart.private",
                                dnssec=True, tmp_path=tmp_path)
    assert rc == 0 and out.splitlines() == [
        f"rampart._domainkey.{SETUP_DOMAIN}: key OK (rsa 2048 bits)",
        f"rampart._domainkey.{SETUP_DOMAIN}: key secure (DNSSEC)"], out + err


def test_testkey_knot_mismatch_revoked_testing(rampart, setup_out, tmp_path):
    keydir, records = setup_out
    other = tmp_path / "other"
    other.mkdir()
    r = subprocess.run([rampart, "mail", "setup", "--domain", SETUP_DOMAIN, "--out",
                        str(other)], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    name = f"rampart._domainkey.{SETUP_DOMAIN}"
    rc, out, _ = knot_testkey(rampart, records, "rampart", other / "rampart.private")
    assert rc == 1 and out.startswith(f"{name}: key mismatch"), out

    revoked = re.sub(r'(rampart\._domainkey[^\n]*?k=rsa; )p=[^)]*\)', r'\1p=" )', records,
                     flags=re.S)
    assert revoked != records
    rc, out, _ = knot_testkey(rampart, revoked, "rampart", keydir / "rampart.private")
    assert rc == 4 and out.startswith(f"{name}: key revoked (empty p=)"), out

    testing = re.sub(r'(rampart\._domainkey[^\n]*?k=rsa; )', r'\1t=y; ', records, count=1)
    assert testing != records
    rc, out, _ = knot_testkey(rampart, testing, "rampart", keydir / "rampart.private")
    assert rc == 5 and out.startswith(f"{name}: key OK but in testing mode (t=y)"), out
