"""rampart mail setup: the real binary in a temporary directory. Keys are written 0600 and
reused by a second run (never rewritten); the printed records are a zone kzonecheck accepts
(issue 16, acceptance 4) and, served by a real knotd on a loopback port, they verify what the
generated keys sign (DKIM, DomainKeys) and pass SPF for the given addresses; the written
rampart.yaml passes check-config; bad input is exit 2 with `rampart: mail setup: ...`."""
import concurrent.futures
import re
import shutil
import stat
import subprocess

import pytest

from knot import knot_zone

DOMAIN = "example.com"
TIMEOUT = 60
KZONECHECK = shutil.which("kzonecheck") or "/usr/bin/kzonecheck"
ARGS = ["--domain", DOMAIN, "--ip", "192.0.2.1", "--ip", "2001:db8:5::/48",
        "--mx", "mail.example.com"]
ZONE_HEAD = f"""$ORIGIN {DOMAIN}.
$TTL 300
@ SOA ns1.{DOMAIN}. hostmaster.{DOMAIN}. 1 7200 3600 1209600 300
@ NS ns1.{DOMAIN}.
ns1 A 127.0.0.1
mail A 198.51.100.25
mail AAAA 2001:db8:7::25
"""
MESSAGE = (b"From: Joe <joe@example.com>\r\nTo: ann@example.org\r\n"
           b"Subject: setup\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n"
           b"Message-ID: <setup-1@example.com>\r\n\r\nHello from the set-up test.\r\n")


def run_setup(run, out, *args):
    return run("mail", "setup", *ARGS, "--out", out, *args, timeout=TIMEOUT)


def txt_records(text):
    """{owner: joined strings} of the TXT records in zone-file text."""
    recs = {}
    for m in re.finditer(r"^(\S+) IN TXT \((.*?)\)\n", text, re.M | re.S):
        recs[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return recs


def key_state(path):
    st = path.stat()
    return path.read_bytes(), st.st_ino, st.st_mtime_ns, stat.S_IMODE(st.st_mode)


@pytest.fixture(scope="module")
def both(rampart, tmp_path_factory):
    """A run with --type both in a fresh directory: (dir, stdout)."""
    d = tmp_path_factory.mktemp("setup-both")
    r = subprocess.run([rampart, "mail", "setup", *ARGS, "--type", "both",
                        "--out", str(d)], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return d, r.stdout


def test_records_and_files(both):
    d, out = both
    recs = txt_records(out)
    assert recs[f"{DOMAIN}."] == ("v=spf1 ip4:192.0.2.1 ip6:2001:db8:5::/48 "
                                  "a:mail.example.com -all")
    assert recs[f"rampart._domainkey.{DOMAIN}."].startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert recs[f"rampart-ed25519._domainkey.{DOMAIN}."].startswith("v=DKIM1; k=ed25519; p=")
    assert recs[f"_domainkey.{DOMAIN}."] == "o=~"
    assert recs[f"_dmarc.{DOMAIN}."] == f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{DOMAIN}"
    assert "RFC 4406 §3.4" in out and '"spf2.0' not in out
    assert "p=reject" in out and "p=quarantine; pct=10" in out
    # every string of a TXT record is at most 255 bytes (the RSA key is longer)
    assert all(len(s) <= 255 for s in re.findall(r'"([^"]*)"', out))
    assert len(recs[f"rampart._domainkey.{DOMAIN}."]) > 255
    for name in ("rampart.private", "rampart-ed25519.private"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
        assert (d / name).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert sorted(p.name for p in d.iterdir()) == [
        "postfix-main.cf", "rampart-ed25519.private", "rampart-mail.yaml", "rampart.private"]
    pf = (d / "postfix-main.cf").read_text()
    for line in ("smtpd_milters = inet:127.0.0.1:8891", "non_smtpd_milters = $smtpd_milters",
                 "milter_default_action = accept", "milter_protocol = 6"):
        assert f"\n{line}\n" in pf
    yaml = (d / "rampart-mail.yaml").read_text()
    assert f'key: "{d}/rampart.private"' in yaml
    assert f'key: "{d}/rampart-ed25519.private"' in yaml
    assert "selector: rampart-ed25519" in yaml


def test_rerun_reuses_keys(run, tmp_path):
    first = run_setup(run, tmp_path, "--type", "both")
    assert first.returncode == 0, first.stderr
    keys = {n: key_state(tmp_path / n) for n in ("rampart.private", "rampart-ed25519.private")}
    assert all(k[3] == 0o600 for k in keys.values())
    (tmp_path / "rampart-mail.yaml").write_text("edited\n")
    again = run_setup(run, tmp_path, "--type", "both", "--softfail")
    assert again.returncode == 0, again.stderr
    assert {n: key_state(tmp_path / n) for n in keys} == keys
    a, b = txt_records(first.stdout), txt_records(again.stdout)
    for sel in ("rampart", "rampart-ed25519"):
        assert a[f"{sel}._domainkey.{DOMAIN}."] == b[f"{sel}._domainkey.{DOMAIN}."]
    assert "generated" in first.stdout and "reused" in again.stdout
    assert b[f"{DOMAIN}."].endswith(" a:mail.example.com ~all")
    # the configuration files are rewritten
    assert (tmp_path / "rampart-mail.yaml").read_text().count("selector: rampart") == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_concurrent_runs_share_one_key(rampart, tmp_path):
    """Runs racing in one directory: one key file wins and every run prints its record."""
    cmd = [rampart, "mail", "setup", "--domain", DOMAIN, "--type", "ed25519",
           "--out", str(tmp_path)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: subprocess.run(cmd, capture_output=True, text=True,
                                                      timeout=TIMEOUT), range(8)))
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    records = {txt_records(r.stdout)[f"rampart._domainkey.{DOMAIN}."] for r in runs}
    assert len(records) == 1
    zone = tmp_path / "zone"
    zone.write_text(ZONE_HEAD + runs[0].stdout)
    signed = subprocess.run([rampart, "dkim", "sign", "-d", DOMAIN, "-s", "rampart", "-k",
                             str(tmp_path / "rampart.private")], input=MESSAGE,
                            capture_output=True, timeout=TIMEOUT)
    assert signed.returncode == 0, signed.stderr
    r = subprocess.run([rampart, "dkim", "verify", "--dns-zone", str(zone), "--dns-offline"],
                       input=signed.stdout, capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.startswith(b"dkim=pass"), r.stdout + r.stderr


def test_kzonecheck_accepts_the_records(both, tmp_path):
    """Acceptance 4: what setup printed, with an SOA and an NS, is a valid zone."""
    _, out = both
    zone = tmp_path / "example.com.zone"
    zone.write_text(ZONE_HEAD + out)
    r = subprocess.run([KZONECHECK, "-o", DOMAIN, str(zone)], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout + r.stderr
    # the check is not a formality: a record cut short is refused
    zone.write_text(ZONE_HEAD + out.rsplit(" )\n", 1)[0] + "\n")
    r = subprocess.run([KZONECHECK, "-o", DOMAIN, str(zone)], capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode != 0


@pytest.fixture(scope="module")
def served(both):
    d, out = both
    with knot_zone(ZONE_HEAD + out, DOMAIN) as (addr, port):
        yield d, ["--dns-server", f"{addr}:{port}", "--no-dnssec", "--dns-timeout", "3s"]


@pytest.mark.parametrize("verb, selector, result", [
    ("dkim", "rampart", b"dkim=pass"),
    ("dkim", "rampart-ed25519", b"dkim=pass"),
    ("dk", "rampart", b"domainkeys=pass"),
])
def test_served_keys_verify_signatures(rampart, served, verb, selector, result):
    d, dns = served
    signed = subprocess.run([rampart, verb, "sign", "--domain", DOMAIN, "--selector", selector,
                             "--key", str(d / f"{selector}.private")], input=MESSAGE,
                            capture_output=True, timeout=TIMEOUT)
    assert signed.returncode == 0, signed.stderr
    r = subprocess.run([rampart, verb, "verify", *dns], input=signed.stdout,
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.startswith(result), r.stdout + r.stderr
    tampered = signed.stdout.replace(b"Hello", b"Jello")
    r = subprocess.run([rampart, verb, "verify", *dns], input=tampered,
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 1, r.stdout + r.stderr


@pytest.mark.parametrize("ip, result", [
    ("192.0.2.1", "pass"),          # --ip
    ("2001:db8:5::77", "pass"),     # inside the --ip prefix
    ("198.51.100.25", "pass"),      # --mx host, its A
    ("2001:db8:7::25", "pass"),     # --mx host, its AAAA
    ("192.0.2.2", "fail"),
    ("2001:db8:6::1", "fail"),
])
def test_served_spf(run, served, ip, result):
    _, dns = served
    r = run("spf", "check", "--ip", ip, "--sender", f"joe@{DOMAIN}", "--receiver", "rcv.test",
            *dns)
    assert r.stdout.split(" ", 1)[0].strip() == result, r.stdout + r.stderr
    assert r.returncode == (0 if result == "pass" else 1)


def test_served_dmarc_and_policy(run, served):
    _, dns = served
    r = run("dns", "query", f"_dmarc.{DOMAIN}", "TXT", *dns)
    assert r.returncode == 0 and "v=DMARC1; p=none; rua=mailto:dmarc-reports@" in r.stdout
    r = run("dns", "query", f"_domainkey.{DOMAIN}", "TXT", *dns)
    assert r.returncode == 0 and '"o=~"' in r.stdout, r.stdout


def test_check_config_accepts_the_yaml(run, both, root, tmp_path):
    d, _ = both
    mail = (d / "rampart-mail.yaml").read_text()
    r = run("check-config", d / "rampart-mail.yaml")
    assert r.returncode == 0, r.stderr
    # in the shipped file, in place of its mail: section
    shipped = (root / "etc" / "rampart.yaml").read_text()
    head, rest = shipped.split("\nmail:\n", 1)
    tail = rest[rest.index("\n# SSH brute-force"):]
    combined = tmp_path / "rampart.yaml"
    combined.write_text(head + "\n" + mail + tail)
    r = run("check-config", combined)
    assert r.returncode == 0, r.stderr
    assert combined.read_text().count("\nmail:\n") == 1
    # and the check is real: a sign entry without its key is refused
    combined.write_text(head + "\n" + re.sub(r"\n +key: .*", "", mail) + tail)
    r = run("check-config", combined)
    assert r.returncode == 2 and "key" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--domain", "bad domain"], "--domain 'bad domain': not a domain name"),
    (["--domain", "localhost"], "not a domain name"),
    (["--domain", DOMAIN, "--ip", "192.0.2.300"], "--ip '192.0.2.300'"),
    (["--domain", DOMAIN, "--ip", "mail.example.com"], "--ip 'mail.example.com'"),
    (["--domain", DOMAIN, "--ip", "0.0.0.0/0"], "--ip '0.0.0.0/0'"),
    (["--domain", DOMAIN, "--mx", "mail..example.com"], "--mx 'mail..example.com'"),
    (["--domain", DOMAIN, "--type", "dsa"], "--type 'dsa': rsa, ed25519 or both"),
    (["--domain", DOMAIN, "--rua", "a,b@example.com"], "--rua 'a,b@example.com'"),
    (["--domain", DOMAIN, "--selector", "bad sel"], "--selector 'bad sel'"),
    (["--domain", DOMAIN] + [a for i in range(11) for a in ("--mx", f"m{i}.example.net")],
     "11 DNS lookups; receivers allow 10"),
    (["--domain", DOMAIN, "--out", "/nonexistent/dir"], "--out '/nonexistent/dir'"),
    (["--domain", DOMAIN, "--out", __file__], "not a directory"),
    # unwritable even for root: refused up front, or when the key is written
    (["--domain", DOMAIN, "--out", "/proc/self"], "/proc/"),
    (["--ip", "192.0.2.1"], "needs --domain"),
    (["--domain", DOMAIN, "extra"], "unexpected argument 'extra'"),
    (["--domain", DOMAIN, "--bogus"], "unknown option '--bogus'"),
])
def test_bad_input(run, tmp_path, args, message):
    if "--out" not in args:
        args = args + ["--out", tmp_path]
    r = run("mail", "setup", *args, timeout=TIMEOUT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("rampart: mail setup: ") and message in r.stderr, r.stderr
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, args, message", [
    ("not a key\n", [], "not a PEM private key"),
    (None, ["--type", "ed25519"], "is an RSA key, not Ed25519"),
])
def test_existing_file_is_never_overwritten(run, rampart, tmp_path, content, args, message):
    key = tmp_path / "rampart.private"
    if content is None:
        r = subprocess.run([rampart, "dkim", "keygen", "-d", DOMAIN, "-s", "rampart", "--out",
                            str(tmp_path)], capture_output=True, timeout=TIMEOUT)
        assert r.returncode == 0
        (tmp_path / "rampart.txt").unlink()
    else:
        key.write_text(content)
        key.chmod(0o600)
    before = key_state(key)
    r = run("mail", "setup", "--domain", DOMAIN, "--out", tmp_path, *args, timeout=TIMEOUT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("rampart: mail setup: ") and message in r.stderr, r.stderr
    assert key_state(key) == before
    assert [p.name for p in tmp_path.iterdir()] == ["rampart.private"]


def test_default_out_is_cwd(rampart, tmp_path):
    r = subprocess.run([rampart, "mail", "setup", "--domain", DOMAIN], cwd=tmp_path,
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rampart.private").exists()
    assert txt_records(r.stdout)[f"{DOMAIN}."] == "v=spf1 mx -all"
