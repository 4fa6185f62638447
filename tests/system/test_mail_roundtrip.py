"""Issue 16, acceptance 1 end to end: a real knotd on a loopback port serves exactly what
`rampart mail setup` printed (plus the SOA and NS a zone needs) and `rampart mail check`
reports every check ok; the same output edited the ways admins get it wrong gives each its own
named failure. The edits are made on setup's text, so a change in what setup prints that
check does not accept fails here."""
import json
import re
import subprocess

import pytest

from knot import knot_zone, zone_apex

DOMAIN = "example.test"
SOA = zone_apex(DOMAIN)


@pytest.fixture(scope="module")
def setup_out(rampart, tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    r = subprocess.run([rampart, "mail", "setup", "--domain", DOMAIN, "--mx", f"mail.{DOMAIN}",
                        "--ip", "127.0.0.1", "--ip", "::1", "--type", "both", "--out", str(d)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return d, r.stdout


def check(rampart, keydir, zone, *extra):
    keys = [f"--key={keydir}/rampart.private", f"--key={keydir}/rampart-ed25519.private"]
    with knot_zone(SOA + zone, DOMAIN) as (_, port):
        r = subprocess.run([rampart, "mail", "check", "--domain", DOMAIN, "--selector",
                            "rampart", "--selector", "rampart-ed25519", *keys, "--json",
                            "--dns-server", f"127.0.0.1:{port}", *extra],
                           capture_output=True, text=True, timeout=60)
    return r.returncode, json.loads(r.stdout), r.stderr


def test_setup_output_checks_all_ok(rampart, setup_out):
    keydir, records = setup_out
    code, report, err = check(rampart, keydir, records)
    bad = [row for row in report["rows"] if row["status"] != "ok"]
    assert code == 0 and bad == [], (bad, err)
    names = {row["check"] for row in report["rows"]}
    for must in ("spf.present", "spf.lookups", "dkim.rampart.local-key",
                 "dkim.rampart-ed25519.local-key", "domainkeys.policy", "dmarc.policy",
                 "mx.resolve"):
        assert must in names
    assert report["summary"]["fail"] == 0 and report["summary"]["warn"] == 0


def spf_line(records):
    return re.search(rf'^{re.escape(DOMAIN)}\. IN TXT \( "v=spf1[^\n]*\n', records, re.M)


def two_spf(records):
    return records + f'{DOMAIN}. IN TXT "v=spf1 mx -all"\n'


def eleven_lookups(records):
    incs = " ".join(f"include:i{i}.{DOMAIN}" for i in range(11))
    extra = "".join(f'i{i}.{DOMAIN}. IN TXT "v=spf1 -all"\n' for i in range(11))
    m = spf_line(records)
    return records[:m.start()] + f'{DOMAIN}. IN TXT "v=spf1 {incs} -all"\n' + \
        records[m.end():] + extra


def revoked(records):
    return re.sub(r'(rampart\._domainkey[^\n]*?k=rsa; )p=[^)]*\)', r'\1p=" )', records, flags=re.S)


def no_dmarc(records):
    return re.sub(r"^_dmarc\.[^\n]*\n", "", records, flags=re.M)


def plus_all(records):
    return records.replace(" -all\"", " +all\"")


@pytest.mark.parametrize("edit,row", [(two_spf, "spf.single"), (eleven_lookups, "spf.lookups"),
                                      (revoked, "dkim.rampart.revoked"),
                                      (no_dmarc, "dmarc.present"), (plus_all, "spf.all")],
                         ids=["two-spf", "11-lookups", "revoked", "no-dmarc", "plus-all"])
def test_broken_variant_named_failure(rampart, setup_out, edit, row):
    keydir, records = setup_out
    zone = edit(records)
    assert zone != records
    code, report, err = check(rampart, keydir, zone)
    failed = {r["check"] for r in report["rows"] if r["status"] == "fail"}
    assert code == 1 and row in failed, (report, err)


def test_key_not_matching_local_key(rampart, setup_out, tmp_path):
    keydir, records = setup_out
    # the same selector made again elsewhere: a key the published record does not match
    r = subprocess.run([rampart, "mail", "setup", "--domain", DOMAIN, "--type", "both",
                        "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    code, report, err = check(rampart, tmp_path, records)
    failed = {r["check"] for r in report["rows"] if r["status"] == "fail"}
    assert code == 1 and failed == {"dkim.rampart.local-key",
                                    "dkim.rampart-ed25519.local-key"}, (report, err)
