"""`rampart milter` driven by Debian's `miltertest` (the MTA side of the milter protocol).

Each test runs one Lua script of tests/system/miltertest/ against a milter started by
milterutil (DNS from knot, keys from `rampart dkim keygen`): the script asserts the milter's
replies and header actions (mt.getreply, mt.eom_check, mt.getheader) and fails with a non-zero
exit; the test asserts that exit status, the milter's "milter qid=... action=..." log lines,
and, where a script dumps the inserted fields (-D out=FILE), their content. Every milter is
stopped with SIGTERM and must exit 0 with no sanitizer report (milterutil), so running this
module with RAMPART_BUILD pointing at an ASan/UBSan build checks for crashes and leaks too.

Covered (issue 14, acceptance 2): a normal inbound message (SPF, Sender ID, DKIM and DMARC
pass), forged Authentication-Results, a message aborted mid-body and another after it,
several messages on one connection, the null reverse path, 1,000 header fields, 8-bit and
LF-only bodies, clients that disconnect mid-body, a 50 MB body (memory stays flat), signing
(internal network and SASL; both signatures verified by dkimpy), spf: reject, and a dead
resolver (temperror, never pass; tempfail when configured, after a SIGHUP reload).

miltertest reads each milter reply into a 1 KB buffer, so the inserted fields stay under
that (2048-bit RSA keys; the messages are modest).
"""
import pathlib
import re
import shutil
import subprocess

import dkim
import pytest

from milterutil import Milter, free_port

SCRIPTS = pathlib.Path(__file__).resolve().parent / "miltertest"
MILTERTEST = shutil.which("miltertest") or "/usr/bin/miltertest"

ZONE = """$ORIGIN example.
$TTL 300
@          SOA ns hostmaster 1 7200 3600 1209600 300
           NS  ns
ns         A   127.0.0.1
pass       TXT "v=spf1 ip4:192.0.2.0/28 -all"
_dmarc.pass TXT "v=DMARC1; p=reject"
mail.pass  A   192.0.2.10
mail.pass  TXT "v=spf1 a -all"
fail       TXT "v=spf1 -all exp=exp.fail.example"
exp.fail   TXT "%{i} is not allowed to send mail for %{d}"
softfail   TXT "v=spf1 ~all"
neutral    TXT "v=spf1 ?all"
none       A   192.0.2.99
corp       TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.corp TXT "v=DMARC1; p=none"
"""
KEYS = [("pass.example", "s1", "rsa"), ("corp.example", "rsa1", "rsa"),
        ("corp.example", "ed1", "ed25519")]

MESSAGE = ("From: A <a@pass.example>\r\nTo: b@example.com\r\nSubject: hello there\r\n"
           "Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <m1@pass.example>\r\n\r\n"
           "Hello,\r\n\r\nthis is the body.\r\n")


def sign(m, data, domain="pass.example", selector="s1", *extra):
    """data signed by `rampart dkim sign` with the milter's test key."""
    r = subprocess.run([m.rampart, "dkim", "sign", "--domain", domain, "--selector", selector,
                        "--key", m.key(domain, selector), *extra], input=data,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def miltertest(m, script, timeout=900, **defs):
    cmd = [MILTERTEST, "-D", f"spec={m.spec}", "-D", f"dir={SCRIPTS}"]
    for k, v in defs.items():
        cmd += ["-D", f"{k}={v}"]
    cmd += ["-s", str(SCRIPTS / script)]
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
    assert r.returncode == 0, (f"miltertest {script} exited {r.returncode}:\n{r.stdout}"
                               f"{r.stderr}\n--- milter log ---\n{m.log()}")
    return r.stdout


def dumped(path):
    """{qid: [(name, value), ...]} from a script's t.dump file."""
    out = {}
    if not path.exists():
        return out
    parts = path.read_bytes().split(b"\0")
    for i in range(0, len(parts) - 2, 3):
        out.setdefault(parts[i].decode(), []).append(
            (parts[i + 1].decode(), parts[i + 2].decode("utf-8", "replace")))
    return out


def result(m, qid):
    found = [r for r in m.results() if r["qid"] == qid]
    assert len(found) == 1, f"{len(found)} result lines for qid={qid}:\n{m.log()}"
    return found[0]


@pytest.fixture(scope="module")
def m():
    if not pathlib.Path(MILTERTEST).exists():
        pytest.fail("miltertest is missing (Debian package miltertest)")
    with Milter(zones={"example": ZONE}, keys=KEYS) as mil:
        yield mil


def test_inbound_all_pass(m, tmp_path):
    msg = tmp_path / "msg.eml"
    msg.write_bytes(sign(m, MESSAGE.encode()))
    out = tmp_path / "out"
    miltertest(m, "inbound.lua", msg=msg, out=out)
    r = result(m, "INBOUND1")
    assert (r["client"], r["spf"], r["helo"], r["sender-id"], r["dkim"], r["dmarc"],
            r["removed"], r["action"]) == ("192.0.2.10", "pass", "pass", "pass", "pass",
                                           "pass", "0", "accept"), r
    fields = dict(dumped(out)["INBOUND1"])
    ar = fields["Authentication-Results"]
    assert ar.startswith(" mx.test;") and "dkim=pass header.d=pass.example header.s=s1" in ar, ar
    assert re.search(r"dmarc=pass \(p=reject[^)]*\) header.from=pass.example", ar), ar


def test_forged_authentication_results(m):
    miltertest(m, "forged_ar.lua")
    r = result(m, "FORGED1")
    assert (r["removed"], r["action"]) == ("2", "accept"), r


def test_abort_then_next_message(m, tmp_path):
    msg = tmp_path / "msg.eml"
    msg.write_bytes(sign(m, MESSAGE.encode()))
    miltertest(m, "abort.lua", msg=msg)
    assert not [r for r in m.results() if r["qid"] == "ABORT1"], m.log()
    r = result(m, "ABORT2")
    assert (r["spf"], r["dkim"], r["dmarc"], r["action"]) == ("pass", "pass", "pass",
                                                              "accept"), r


def test_several_messages_one_connection(m):
    miltertest(m, "several.lua")
    want = ["pass", "fail", "softfail", "neutral", "none"]
    got = [result(m, f"SEVERAL{i}")["spf"] for i in range(1, 6)]
    assert got == want
    # DMARC: pass.example aligns by SPF (p=reject is published; nothing is rejected here)
    assert result(m, "SEVERAL1")["dmarc"] == "pass"
    assert all(result(m, f"SEVERAL{i}")["action"] == "accept" for i in range(1, 6))


def test_null_reverse_path(m, tmp_path):
    """RFC 7208 2.4: with MAIL FROM:<> SPF checks the HELO identity (as postmaster@HELO);
    spf_header_authres reports it as "spf=pass smtp.helo=HELO" (RFC 8601 2.7.2) and
    Received-SPF says identity=helo. No second HELO check is made: it would be the same.
    DMARC takes the HELO domain as the SPF domain (RFC 7489 4.1): aligned here."""
    out = tmp_path / "out"
    miltertest(m, "null_sender.lua", out=out)
    fields = dict(dumped(out)["NULL1"])
    ar, spf = fields["Authentication-Results"], fields["Received-SPF"]
    assert re.findall(r"\bspf=[^;]*", ar) == ["spf=pass smtp.helo=mail.pass.example"], ar
    assert re.search(r"dmarc=pass .*header.from=mail.pass.example", ar), ar
    assert spf.startswith(" Pass (mx.test: ") and spf.rstrip().endswith("identity=helo"), spf
    r = result(m, "NULL1")
    assert (r["spf"], r["helo"], r["dmarc"], r["action"]) == ("pass", "-", "pass", "accept"), r


def test_thousand_headers(m, tmp_path):
    head = "".join(f"X-Filler-{i}: header field number {i}\r\n" for i in range(1000))
    data = MESSAGE.replace("\r\n\r\n", "\r\n" + head + "\r\n", 1).encode()
    msg = tmp_path / "msg.eml"
    msg.write_bytes(sign(m, data, "pass.example", "s1", "--headers",
                         "from:to:subject:x-filler-0:x-filler-500:x-filler-999"))
    miltertest(m, "many_headers.lua", msg=msg)
    r = result(m, "HEADERS1")
    assert (r["spf"], r["dkim"], r["dmarc"], r["action"]) == ("pass", "pass", "pass",
                                                              "accept"), r


def test_8bit_body(m, tmp_path):
    data = ("From: Jos\u00e9 <a@pass.example>\r\nSubject: caf\u00e9 \u2615\r\n\r\n"
            "Cr\u00e8me br\u00fbl\u00e9e.\r\n").encode() + b"\xff\xfe\x80 raw bytes\r\n" * 500
    msg = tmp_path / "msg.eml"
    msg.write_bytes(sign(m, data))
    miltertest(m, "body_form.lua", msg=msg, qid="EIGHTBIT1", dkim="pass", out=tmp_path / "o")
    assert result(m, "EIGHTBIT1")["dkim"] == "pass"


def test_lf_only_body(m, tmp_path):
    """Lines ended by LF alone (an MTA that does not convert; Postfix sends CRLF). The
    signer canonicalises LF as a line end (RFC 6376 3.4: the body is taken as CRLF lines);
    the milter's verifier does the same with the bytes it is given, so the result is pass."""
    data = (b"From: a@pass.example\nSubject: LF only\n continued\n\nline one\nline  two \n\n"
            + b"more  text\t\n" * 2000)
    msg = tmp_path / "msg.eml"
    msg.write_bytes(sign(m, data))
    assert b"\r" not in msg.read_bytes().split(b"\n\n", 1)[1]
    miltertest(m, "body_form.lua", msg=msg, qid="LFONLY1", dkim="pass", out=tmp_path / "o")
    assert result(m, "LFONLY1")["dkim"] == "pass"


def test_disconnect_mid_body(m, tmp_path):
    msg = tmp_path / "msg.eml"
    msg.write_bytes(sign(m, MESSAGE.encode()))
    miltertest(m, "disconnect.lua", msg=msg)
    assert not [r for r in m.results() if r["qid"] in ("GONE1", "GONE2")], m.log()
    assert result(m, "GONE3")["dkim"] == "pass"
    assert m.proc.poll() is None


def test_50mb_body(m, tmp_path):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ 50 MB body\r\n"
    body = line * (50 * 1000 * 1000 // len(line) + 1)
    msg = tmp_path / "big.eml"
    msg.write_bytes(sign(m, MESSAGE.split("\r\n\r\n")[0].encode() + b"\r\n\r\n" + body))
    del body
    before = m.rss_kb()
    miltertest(m, "big.lua", msg=msg)
    after = m.rss_kb(peak=True)
    assert result(m, "BIG1")["dkim"] == "pass"
    # streamed: the 50 MB never sit in the milter. Allowance: libmilter's 64 KB chunk buffers
    # and, in an ASan build, its 16 MB quarantine of freed chunks (peak +20 MB measured there,
    # +0.1 MB without ASan); a milter that kept the body would grow by 50 MB or more.
    print(f"milter RSS before {before} KiB, peak after the 50 MB message {after} KiB")
    assert after - before < 40 * 1024, (before, after)


def _dns_txt(m):
    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        for (domain, selector), value in m.records.items():
            if n.rstrip(".").lower() == f"{selector}._domainkey.{domain}":
                return value.encode()
        return None
    return dnsfunc


def _dkimpy(m, message):
    """dkimpy's verdict on each of the first two signatures (it raises on some failures)."""
    out = []
    for i in range(2):
        try:
            out.append(dkim.DKIM(message).verify(idx=i, dnsfunc=_dns_txt(m)))
        except dkim.DKIMException:
            out.append(False)
    return out


def test_signing_rsa_and_ed25519(m, tmp_path):
    text = ("From: Alice <alice@corp.example>\r\nTo: bob@example.net\r\nSubject: signed\r\n"
            "  with a folded subject\r\nDate: Mon, 07 Dec 2026 03:00:00 +0000\r\n"
            "Message-ID: <s1@corp.example>\r\n\r\nSigned body.\r\n\r\n")
    msg = tmp_path / "msg.eml"
    msg.write_bytes(text.encode())
    out = tmp_path / "out"
    miltertest(m, "sign.lua", msg=msg, out=out)
    for qid in ("SIGN1", "SIGN2"):
        r = result(m, qid)
        assert (r.get("signed"), r["action"]) == ("2", "accept"), r
    assert "signed" not in result(m, "SIGN3") and result(m, "SIGN3")["spf"] == "fail"
    # the message as Postfix delivers it: our fields on top, LF between lines made CRLF
    sigs = dumped(out)
    for qid in ("SIGN1", "SIGN2"):
        assert len(sigs[qid]) == 2, sigs
        top = "".join(f"{n}:{v}\r\n".replace("\r\n", "\n").replace("\n", "\r\n")
                      for n, v in sigs[qid])
        whole = top.encode() + msg.read_bytes()
        assert _dkimpy(m, whole) == [True, True], (qid, whole.decode())
        # and a changed body fails both
        assert _dkimpy(m, whole.replace(b"Signed body.", b"Signed bodY.")) == [False, False]


def test_reject_on_spf_fail(tmp_path):
    with Milter(zones={"example": ZONE}, mail={"actions": {"spf": "reject"}}) as m:
        miltertest(m, "reject.lua")
        assert (result(m, "REJECT1")["spf"], result(m, "REJECT1")["action"]) == ("fail",
                                                                                 "reject")
        assert result(m, "REJECT2")["action"] == "accept"


def test_dead_resolver_temperror_then_tempfail(tmp_path):
    dead = free_port()  # nothing listens there (UDP or TCP)
    with Milter(dns={"servers": [f"127.0.0.1:{dead}"], "timeout": "500ms"},
                keys=[("pass.example", "s1", "rsa")], sign=False,
                mail={"dns-budget": "2s"}) as m:
        msg = tmp_path / "msg.eml"
        msg.write_bytes(sign(m, MESSAGE.encode()))
        miltertest(m, "dead_dns.lua", msg=msg, mode="header", qid="DEAD1")
        r = result(m, "DEAD1")
        assert "pass" not in (r["spf"], r["helo"], r["sender-id"], r["dkim"], r["dmarc"]), r
        assert (r["spf"], r["dkim"], r["action"]) == ("temperror", "temperror", "accept"), r
        assert m.reload(mail={"dns-budget": "2s", "actions": {"temperror": "tempfail"}})
        print(miltertest(m, "dead_dns.lua", msg=msg, mode="tempfail", qid="DEAD2"))
        assert result(m, "DEAD2")["action"] == "tempfail"


def test_metrics_count_results_and_actions(tmp_path):
    """The milter's Prometheus series on the metrics listener: results by method, actions,
    the latency histogram; a second message moves the counters by one each."""
    import urllib.request
    port = free_port()
    with Milter(zones={"example": ZONE}, keys=KEYS,
                top={"metrics": {"listen": f"127.0.0.1:{port}"}}) as mil:
        msg = tmp_path / "msg.eml"
        msg.write_bytes(sign(mil, MESSAGE.encode()))

        def scrape():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                text = r.read().decode()
            return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines() if line and not line.startswith("#")}

        before = scrape()
        assert before['rampart_milter_results_total{method="dkim",result="pass"}'] == 0
        miltertest(mil, "inbound.lua", msg=msg, out=tmp_path / "out1")
        one = scrape()
        miltertest(mil, "inbound.lua", msg=msg, out=tmp_path / "out2")
        two = scrape()
    for method in ("spf", "helo", "sender-id", "dkim", "dmarc"):
        key = f'rampart_milter_results_total{{method="{method}",result="pass"}}'
        assert (one[key], two[key]) == (1, 2), (method, one[key], two[key])
    assert (one['rampart_milter_messages_total{action="accept"}'],
            two['rampart_milter_messages_total{action="accept"}']) == (1, 2)
    assert two['rampart_milter_results_total{method="spf",result="fail"}'] == 0
    assert (one["rampart_milter_message_seconds_count"],
            two["rampart_milter_message_seconds_count"]) == (1, 2)
    assert two['rampart_milter_message_seconds_bucket{le="+Inf"}'] == 2
    assert two["rampart_milter_signatures_total"] == 0


@pytest.mark.parametrize("on_error", ["accept", "tempfail"])
def test_internal_error_follows_on_error(on_error):
    """A message the milter cannot take (a header past its field cap) is an internal error:
    accepted unchanged or tempfailed as mail.actions.on-error says; the connection goes on."""
    with Milter(zones={"example": ZONE}, keys=KEYS,
                mail={"actions": {"on-error": on_error}}) as mil:
        miltertest(mil, "too_many_fields.lua",
                   want="tempfail" if on_error == "tempfail" else "continue")
        log = mil.log()
        assert re.search(r"milter qid=TOOMANY1 internal error, message "
                         + ("tempfailed" if on_error == "tempfail" else "accepted unchanged"),
                         log), log
        assert result(mil, "TOOMANY2")["spf"] == "pass"
