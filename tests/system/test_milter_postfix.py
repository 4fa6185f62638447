"""`rampart milter` behind a real Postfix (issue 14, acceptance 1 and 4, and reload).

Postfix is the private instance of postfixutil.py (its sink captures what leaves), the milter
and its knot DNS server come from milterutil.py. Signed mail is checked by dkimpy (python3-dkim)
with the keys looked up in knot; inbound mail presents an outside client with XCLIENT.

Names (one knot zone each): corp.example signs (RSA s1 + Ed25519 e1); good.example passes SPF
for 192.0.2.10, publishes DKIM s1 and DMARC p=reject; spffail.example / softfail.example fail /
softfail SPF for it; dmarcrej.example has p=reject and no SPF or DKIM of its own; dk.example
signs with DomainKeys.
"""
import email
import re
import smtplib
import socket
import subprocess
import time

import dkim
import dns.resolver
import pytest

from conftest import BUILD
from milterutil import Milter, milter  # noqa: F401  (milter: pytest fixture)
from postfixutil import PostfixInstance, postfix  # noqa: F401  (postfix: pytest fixture)

AUTHSERV = "mx.test"
OUTSIDE = "192.0.2.10"
HELO = "mail.good.example"
RCPT = "rcpt@example.com"
SOA = "@ SOA ns.{o}. hostmaster.{o}. 1 3600 600 86400 300\n@ NS ns.{o}.\nns A 127.0.0.1\n"
# Not under "test.": libunbound answers test. (RFC 6761) NXDOMAIN itself, forwarders or not.
RECORDS = {
    "good.example": ['@ TXT "v=spf1 ip4:192.0.2.10 -all"',
                     'mail TXT "v=spf1 ip4:192.0.2.10 -all"',
                     '_dmarc TXT "v=DMARC1; p=reject"'],
    "spffail.example": ['@ TXT "v=spf1 ip4:198.51.100.1 -all"'],
    "softfail.example": ['@ TXT "v=spf1 ip4:198.51.100.1 ~all"'],
    "dmarcrej.example": ['_dmarc TXT "v=DMARC1; p=reject"'],
    "dk.example": ['@ TXT "v=spf1 ip4:192.0.2.10 -all"'],
    "corp.example": ['@ TXT "v=spf1 ip4:127.0.0.1 -all"'],
}
ZONES = {o: f"$ORIGIN {o}.\n$TTL 300\n" + SOA.format(o=o) + "".join(r + "\n" for r in recs)
         for o, recs in RECORDS.items()}
SIGN_KEYS = [("corp.example", "s1", "rsa"), ("corp.example", "e1", "ed25519")]
VERIFY_KEYS = [("good.example", "s1", "rsa"), ("dk.example", "s1", "rsa")]
WAIT = 30.0


# ------------------------------------------------------------------------- helpers


def message(subject, sender, extra="", body="Hello.\r\nSecond line.\r\n"):
    return (f"From: {sender}\r\nTo: {RCPT}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@pfaccept.test>\r\n"
            f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\n{extra}\r\n{body}").encode()


def crlf(raw):
    return re.sub(rb"(?<!\r)\n", b"\r\n", raw)


def unfold(value):
    return " ".join(value.split())


def headers(raw, name):
    return [unfold(v) for v in email.message_from_bytes(raw).get_all(name) or []]


def _split_top(value):
    """Splits an A-R value at ';' outside comments and quoted strings."""
    parts, cur, depth, quoted = [], [], 0, False
    for c in value:
        if quoted:
            quoted = c != '"'
        elif c == '"':
            quoted = True
        elif c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif c == ";" and not depth:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    parts.append("".join(cur).strip())
    return parts


def our_ar(raw):
    """The single Authentication-Results of AUTHSERV -> [(method, result, rest)]."""
    ours = [v for v in headers(raw, "Authentication-Results")
            if _split_top(v)[0].lower() == AUTHSERV]
    assert len(ours) == 1, (ours, raw.decode(errors="replace"))
    out = []
    for part in _split_top(ours[0])[1:]:
        m = re.match(r"([\w.-]+)\s*=\s*([\w-]+)\s*(.*)", part)
        assert m, (part, ours[0])
        out.append((m.group(1).lower(), m.group(2).lower(), m.group(3)))
    return out


def results(ar, method, prop=None):
    """Results of method in ar (only entries with property prop, e.g. smtp.helo, if given)."""
    return [r for m, r, rest in ar if m == method and (prop is None or prop + "=" in rest)]


def wait_subject(pf, subject, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        for raw in pf.delivered():
            if headers(raw, "Subject") == [subject] and f"Subject: {subject}".encode() in raw:
                if pf.log().count("status=sent") >= len(pf.delivered()):
                    return crlf(raw)
        if time.monotonic() > deadline:
            raise AssertionError(f"{subject} not delivered in {timeout}s; queue {pf.queue()}\n"
                                 f"{pf.log()}")
        time.sleep(0.1)


def knot_dnsfunc(port):
    """dkimpy's dnsfunc answering from the knot server on port (what the milter publishes)."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = ["127.0.0.1"], port

    def lookup(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        try:
            ans = res.resolve(name, "TXT", lifetime=timeout)
        except dns.exception.DNSException:
            return None
        return b"".join(b"".join(rr.strings) for rr in ans)

    return lookup


def dict_dnsfunc(records):
    """dkimpy's dnsfunc over {(domain, selector): value}."""
    table = {f"{s}._domainkey.{d}.".lower(): v.encode() for (d, s), v in records.items()}

    def lookup(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return table.get(name.lower().rstrip(".") + ".")

    return lookup


def dkim_check(raw, dnsfunc):
    """Every DKIM-Signature of raw -> [(d, s, a, verified)] in header order."""
    d = dkim.DKIM(raw)
    sigs = headers(raw, "DKIM-Signature")
    out = []
    for i, sig in enumerate(sigs):
        tags = dict(t.strip().split("=", 1) for t in sig.split(";") if "=" in t)
        ok = d.verify(idx=i, dnsfunc=dnsfunc)
        out.append((tags["d"].strip(), tags["s"].strip(), tags["a"].strip(), ok))
    return out


def dkim_sign(raw, domain, selector, keyfile):
    with open(keyfile, "rb") as f:
        key = f.read()
    sig = dkim.sign(raw, selector.encode(), domain.encode(), key,
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"message-id", b"date"])
    return sig + raw


def dk_sign(raw, domain, selector, keyfile):
    r = subprocess.run([str(BUILD / "rampart"), "dk", "sign", "--domain", domain, "--selector",
                        selector, "--key", keyfile], input=raw, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"DomainKey-Signature:"), r.stdout[:200]
    return r.stdout


def inbound(pf, sender, raw, mail_from=None):
    return pf.send(mail_from or sender, [RCPT], raw, helo=HELO,
                   xclient={"ADDR": OUTSIDE, "HELO": HELO})


def started(milter_fixture, postfix_fixture, **kw):
    m = milter_fixture(zones=ZONES, keys=SIGN_KEYS + VERIFY_KEYS, **kw)
    return m, postfix_fixture(smtpd_milters=m.postfix_spec)


def milter_line(m, qid_pred=None, timeout=WAIT):
    """The logged result lines, once at least one (matching qid_pred) is there."""
    deadline = time.monotonic() + timeout
    while True:
        res = [r for r in m.results() if qid_pred is None or qid_pred(r)]
        if res:
            return res
        if time.monotonic() > deadline:
            raise AssertionError(f"no milter result line:\n{m.log()}")
        time.sleep(0.1)


# ------------------------------------------------------------------------- 1(a) signing


def assert_signed_by_both(raw, dnsfunc):
    checked = dkim_check(raw, dnsfunc)
    assert sorted((d, s, a) for d, s, a, _ in checked) == [
        ("corp.example", "e1", "ed25519-sha256"), ("corp.example", "s1", "rsa-sha256")], checked
    assert all(ok for *_, ok in checked), checked


def test_internal_network_mail_leaves_signed_rsa_and_ed25519(milter, postfix):
    m, pf = started(milter, postfix)
    raw = message("internal1", "Ann <ann@corp.example>")
    code, text = pf.send("ann@corp.example", ["x@example.net"], raw)  # 127.0.0.1, no XCLIENT
    assert code == 250, text
    out = wait_subject(pf, "internal1")
    assert_signed_by_both(out, knot_dnsfunc(m.dns_port))
    assert headers(out, "Authentication-Results") == []  # signed, not verified
    (res,) = milter_line(m)
    assert res["client"] == "127.0.0.1" and res["signed"] == "2" and res["action"] == "accept"


def test_sasl_submission_leaves_signed_and_unauthenticated_loopback_does_not(milter, postfix):
    """127.0.0.1 is not internal here: only {auth_authen} makes the milter sign."""
    m, pf = started(milter, postfix, mail={"internal-networks": ["10.255.0.0/16"]})
    code, text = pf.send("alice@corp.example", ["x@example.net"],
                         message("sasl1", "Alice <alice@corp.example>"),
                         auth=("alice", "secret"), port="submission")
    assert code == 250, text
    out = wait_subject(pf, "sasl1")
    assert "(Authenticated sender: alice@mx.test)" in out.decode(errors="replace")
    assert_signed_by_both(out, knot_dnsfunc(m.dns_port))

    code, text = pf.send("ann@corp.example", [RCPT], message("unauth1", "Ann <ann@corp.example>"))
    assert code == 250, text
    out = wait_subject(pf, "unauth1")
    assert headers(out, "DKIM-Signature") == []
    ar = our_ar(out)  # verified instead: corp.example permits 127.0.0.1
    assert results(ar, "spf", "smtp.mailfrom") == ["pass"], ar


# ------------------------------------------------------------------------- 1(b) inbound

CASES = {
    # name: (sender / MAIL FROM, how the message is made, expected results, Received-SPF)
    "dkim-valid": ("a@good.example", "dkim", {"spf": "pass", "dkim": "pass", "dmarc": "pass",
                                           "sender-id": "pass"}, "Pass"),
    "dkim-forged": ("a@good.example", "forged", {"spf": "pass", "dkim": "fail", "dmarc": "pass",
                                              "sender-id": "pass"}, "Pass"),
    "spf-fail": ("a@spffail.example", "plain", {"spf": "fail", "dkim": "none",
                                             "sender-id": "fail"}, "Fail"),
    "spf-softfail": ("a@softfail.example", "plain", {"spf": "softfail", "dkim": "none",
                                                  "sender-id": "softfail"}, "SoftFail"),
    "dmarc-reject": ("a@dmarcrej.example", "plain", {"spf": "pass", "dkim": "none",
                                                  "dmarc": "fail"}, "Pass"),
    "domainkeys": ("a@dk.example", "dk", {"spf": "pass", "domainkeys": "pass",
                                       "dkim": "none"}, "Pass"),
}


def make_case(m, name):
    sender, kind, _, _ = CASES[name]
    raw = message(name, sender)
    if kind in ("dkim", "forged"):
        raw = dkim_sign(raw, "good.example", "s1", m.key("good.example", "s1"))
        if kind == "forged":
            raw = raw.replace(b"Second line.", b"Second line!")
    elif kind == "dk":
        raw = dk_sign(raw, "dk.example", "s1", m.key("dk.example", "s1"))
    # dmarcrej.example has no SPF: the envelope is good.example's, which does not align
    mail_from = "bounce@good.example" if name == "dmarc-reject" else sender
    return mail_from, raw


@pytest.fixture(scope="module")
def inbound_env():
    with Milter(zones=ZONES, keys=SIGN_KEYS + VERIFY_KEYS) as m, \
            PostfixInstance(smtpd_milters=m.postfix_spec) as pf:
        yield m, pf


@pytest.mark.parametrize("name", list(CASES))
def test_inbound_arrives_with_expected_results(inbound_env, name):
    m, pf = inbound_env
    mail_from, raw = make_case(m, name)
    code, text = inbound(pf, mail_from, raw)
    assert code == 250, text
    out = wait_subject(pf, name)
    ar = our_ar(out)
    for method, want in CASES[name][2].items():
        prop = "smtp.mailfrom" if method == "spf" else None
        got = results(ar, method, prop)
        assert got and all(r == want for r in got), (method, want, ar)
    assert results(ar, "spf", "smtp.helo") == ["pass"], ar
    if name == "dkim-valid":
        assert any("header.d=good.example" in rest and "header.s=s1" in rest
                   for meth, r, rest in ar if meth == "dkim"), ar
    if name == "domainkeys":
        assert not any(r == "fail" for _, r, _ in ar), ar
    rspf = headers(out, "Received-SPF")
    assert len(rspf) == 1 and rspf[0].split()[0] == CASES[name][3], rspf
    assert f"client-ip={OUTSIDE}" in rspf[0], rspf


def test_forged_authentication_results_of_our_id_removed(inbound_env):
    m, pf = inbound_env
    forged = (f"Authentication-Results: {AUTHSERV}; dkim=pass header.d=good.example "
              "header.s=forged\r\n"
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=a@good.example\r\n"
              "Authentication-Results: (case and comments do not hide it) MX.Test;\r\n"
              "\tspf=pass smtp.mailfrom=a@good.example\r\n")
    raw = message("forged-ar", "a@good.example", extra=forged)
    code, text = inbound(pf, "a@good.example", raw)
    assert code == 250, text
    out = wait_subject(pf, "forged-ar")
    ar = our_ar(out)  # asserts exactly one field with our id
    assert results(ar, "dkim") == ["none"], ar
    assert b"header.s=forged" not in out and b"do not hide it" not in out
    others = [v for v in headers(out, "Authentication-Results")
              if v.startswith("other.example;")]
    assert others == ["other.example; spf=pass smtp.mailfrom=a@good.example"]
    assert len(headers(out, "Authentication-Results")) == 2
    assert any(r["removed"] == "2" for r in m.results()), m.log()


# ------------------------------------------------------------------------- 1(b) actions


def test_spf_reject_and_dmarc_policy_reject(milter, postfix):
    m, pf = started(milter, postfix, mail={"actions": {"spf": "reject", "dmarc-policy": True}})
    mail_from, raw = make_case(m, "spf-fail")
    code, text = inbound(pf, mail_from, raw)
    assert 500 <= code < 600 and "5.7.23" in text, (code, text)

    mail_from, raw = make_case(m, "dmarc-reject")
    code, text = inbound(pf, mail_from, raw)
    assert 500 <= code < 600 and "dmarcrej.example" in text, (code, text)

    mail_from, raw = make_case(m, "spf-softfail")  # softfail is not fail: delivered
    code, text = inbound(pf, mail_from, raw)
    assert code == 250, text
    wait_subject(pf, "spf-softfail")
    assert [r["action"] for r in m.results()] == ["reject", "reject", "accept"], m.log()
    subjects = [headers(r, "Subject") for r in pf.delivered()]
    assert subjects == [["spf-softfail"]], subjects


def test_spf_quarantine_holds_the_message(milter, postfix):
    m, pf = started(milter, postfix, mail={"actions": {"spf": "quarantine"}})
    mail_from, raw = make_case(m, "spf-fail")
    code, text = inbound(pf, mail_from, raw)
    assert code == 250, text
    deadline = time.monotonic() + WAIT
    while not (queue := pf.queue()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [q["queue_name"] for q in queue] == ["hold"], queue
    (res,) = milter_line(m)
    assert res["spf"] == "fail" and res["action"] == "quarantine", res
    mail_from, raw = make_case(m, "dkim-valid")  # passing mail still leaves
    assert inbound(pf, mail_from, raw)[0] == 250
    wait_subject(pf, "dkim-valid")
    assert [headers(r, "Subject") for r in pf.delivered()] == [["dkim-valid"]]


# ------------------------------------------------------------------------- 4 dead resolver


def dead_port():
    """A loopback port with nothing bound on UDP or TCP a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        return u.getsockname()[1]


def assert_temperror(out):
    ar = our_ar(out)
    assert results(ar, "spf", "smtp.mailfrom") == ["temperror"], ar
    assert results(ar, "dmarc") == ["temperror"], ar
    assert results(ar, "dkim") == ["temperror"], ar
    assert not any(r == "pass" for _, r, _ in ar), ar
    assert "=pass" not in " ".join(headers(out, "Authentication-Results"))
    assert headers(out, "Received-SPF")[0].split()[0] == "TempError"


def dead_dns_case(m):
    raw = dkim_sign(message("dead-dns", "a@good.example"), "good.example", "s1",
                    m.key("good.example", "s1"))
    return "a@good.example", raw


def test_dead_resolver_gives_temperror_never_pass(milter, postfix):
    m = milter(keys=VERIFY_KEYS, dns={"servers": [f"127.0.0.1:{dead_port()}"],
                                      "timeout": "500ms"}, mail={"dns-budget": "2s"})
    pf = postfix(smtpd_milters=m.postfix_spec)
    code, text = inbound(pf, *dead_dns_case(m))
    assert code == 250, text
    assert_temperror(wait_subject(pf, "dead-dns"))


def test_dead_resolver_with_tempfail_answers_4xx(milter, postfix):
    m = milter(keys=VERIFY_KEYS, dns={"servers": [f"127.0.0.1:{dead_port()}"],
                                      "timeout": "500ms"},
               mail={"dns-budget": "2s", "actions": {"temperror": "tempfail"}})
    pf = postfix(smtpd_milters=m.postfix_spec)
    code, text = inbound(pf, *dead_dns_case(m))
    assert 400 <= code < 500, (code, text)
    (res,) = milter_line(m)
    assert res["action"] == "tempfail" and res["spf"] == "temperror", res
    assert pf.delivered() == [] and pf.queue() == []


def test_silent_resolver_message_still_answered(milter, postfix):
    """A resolver that never answers: the budget ends the wait; accepted with temperror."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp.bind(("127.0.0.1", port))
        tcp.listen(1)  # never accepted: no RST either
        m = milter(keys=VERIFY_KEYS, dns={"servers": [f"127.0.0.1:{port}"], "timeout": "500ms"},
                   mail={"dns-budget": "2s"})
        pf = postfix(smtpd_milters=m.postfix_spec)
        code, text = inbound(pf, *dead_dns_case(m))
        assert code == 250, text
        out = wait_subject(pf, "dead-dns")
        assert_temperror(out)
        (res,) = milter_line(m)
        assert res["action"] == "accept" and res["spf"] == "temperror", res
        assert res["qid"] in pf.log()


# ------------------------------------------------------------------------- reload


def test_sighup_mid_transaction_then_new_key_signs(milter, postfix, tmp_path):
    m = milter(zones=ZONES, keys=[("corp.example", "s1", "rsa")])
    pf = postfix(smtpd_milters=m.postfix_spec)
    subprocess.run([str(BUILD / "rampart"), "dkim", "keygen", "--type", "ed25519", "--domain",
                    "corp.example", "--selector", "e1", "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=60)
    e1 = "".join(re.findall(r'"([^"]*)"', (tmp_path / "e1.txt").read_text()))
    records = {**m.records, ("corp.example", "e1"): e1}
    raw1 = message("reload1", "ann@corp.example")
    head, rest = raw1.split(b"\r\n\r\n", 1)

    with smtplib.SMTP("127.0.0.1", pf.inbound_port, local_hostname="client.test",
                      timeout=60) as s:
        s.ehlo()
        assert s.mail("ann@corp.example")[0] == 250
        assert s.rcpt(RCPT)[0] == 250
        assert s.docmd("DATA")[0] == 354
        s.send(head + b"\r\n\r\n")
        assert m.reload(mail={"sign": [
            {"domain": "corp.example", "selector": "s1", "key": m.key("corp.example", "s1")},
            {"domain": "corp.example", "selector": "e1", "key": str(tmp_path / "e1.private")}]})
        s.send(rest + b".\r\n")
        code, text = s.getreply()
        assert code == 250, text
    out1 = wait_subject(pf, "reload1")
    # the connection keeps the configuration it started with
    checked = dkim_check(out1, dict_dnsfunc(records))
    assert [(s_, ok) for _, s_, _, ok in checked] == [("s1", True)], checked

    code, text = pf.send("ann@corp.example", [RCPT], message("reload2", "ann@corp.example"))
    assert code == 250, text
    out2 = wait_subject(pf, "reload2")
    checked = dkim_check(out2, dict_dnsfunc(records))
    assert sorted((s_, a, ok) for _, s_, a, ok in checked) == [
        ("e1", "ed25519-sha256", True), ("s1", "rsa-sha256", True)], checked
    assert [r["signed"] for r in m.results()] == ["1", "2"], m.log()
    assert m.proc.poll() is None
