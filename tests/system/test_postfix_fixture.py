"""The private Postfix of postfixutil.py works and leaves the system's Postfix alone."""
import email
import os
import pathlib
import re
import socket

import pytest

from postfixutil import PostfixInstance, postfix  # noqa: F401  (postfix: pytest fixture)

MSG = ("From: a@example.org\nTo: b@example.com\nSubject: {s}\nMessage-ID: <{s}@example.org>\n"
       "\nbody {s}\n")
SYSTEM_CF = pathlib.Path("/etc/postfix/main.cf")


def _received(raw):
    """The Received headers Postfix added (the sink's own one, first, is left out)."""
    msg = email.message_from_bytes(raw)
    return [" ".join(h.split()) for h in msg.get_all("Received")[1:]]


def test_inbound_xclient_arrives_with_outside_client_address(postfix):
    pf = postfix()
    code, text = pf.send("a@example.org", ["b@example.com"], MSG.format(s="in1"),
                         helo="bad.example", xclient={"ADDR": "192.0.2.7", "HELO": "bad.example"})
    assert code == 250, text
    (raw,) = pf.wait_delivered(1)
    msg = email.message_from_bytes(raw)
    assert msg["Subject"] == "in1"
    assert msg["X-Rcpt-Args"].startswith("<b@example.com>")
    rcvd = _received(raw)
    assert len(rcvd) == 1
    assert rcvd[0].startswith(
        "from bad.example (unknown [192.0.2.7]) by mx.test (Postfix) with ESMTP ")
    assert "Authenticated" not in rcvd[0]
    assert "client=unknown[192.0.2.7]" in pf.log()


def test_outside_client_cannot_relay_to_foreign_domain(postfix):
    """XCLIENT ADDR really replaces the client address for the mynetworks check."""
    pf = postfix()
    code, text = pf.send("a@example.org", ["x@elsewhere.invalid"], MSG.format(s="relay"),
                         xclient={"ADDR": "192.0.2.7"})
    assert code == 554 and "Relay access denied" in text, (code, text)
    code, text = pf.send("a@example.org", ["x@elsewhere.invalid"], MSG.format(s="local"))
    assert code == 250, text  # 127.0.0.1 itself is in mynetworks


def test_submission_with_sasl_is_marked_authenticated(postfix):
    pf = postfix(users={"bob": "pw 1"})
    code, text = pf.send("bob@example.com", ["c@example.net"], MSG.format(s="sub1"),
                         auth=("bob", "pw 1"), port="submission")
    assert code == 250, text
    (raw,) = pf.wait_delivered(1)
    rcvd = _received(raw)
    assert len(rcvd) == 1
    assert "(Authenticated sender: bob@mx.test)" in rcvd[0]
    assert " with ESMTPA " in rcvd[0]


def test_submission_refuses_unauthenticated_and_wrong_password(postfix):
    pf = postfix()
    code, text = pf.send("alice@example.com", ["c@example.net"], MSG.format(s="noauth"),
                         port="submission")
    assert 500 <= code < 600, (code, text)
    code, text = pf.send("alice@example.com", ["c@example.net"], MSG.format(s="badpw"),
                         auth=("alice", "wrong"), port="submission")
    assert code == 535, (code, text)
    assert pf.delivered() == []
    assert pf.queue() == []


def test_dead_milter_with_tempfail_default_defers_mail(postfix):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pf = postfix(smtpd_milters=f"inet:127.0.0.1:{port}", milter_default_action="tempfail")
    assert pf.postconf("-h", "milter_protocol").strip() == "6"
    assert "{auth_authen}" in pf.postconf("-h", "milter_mail_macros")
    assert "{client_addr}" in pf.postconf("-h", "milter_connect_macros")
    code, text = pf.send("a@example.org", ["b@example.com"], MSG.format(s="milter"))
    assert 400 <= code < 500, (code, text)
    assert f"connect to Milter service inet:127.0.0.1:{port}" in pf.log()
    assert pf.delivered() == []


def test_dead_milter_with_accept_default_lets_mail_through(postfix):
    """The other side of the previous test: the 4xx came from the milter setting."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pf = postfix(smtpd_milters=f"inet:127.0.0.1:{port}", milter_default_action="accept")
    code, text = pf.send("a@example.org", ["b@example.com"], MSG.format(s="accept"))
    assert code == 250, text
    assert len(pf.wait_delivered(1)) == 1


def test_instance_is_private_and_cleaned_up():
    assert not SYSTEM_CF.exists()
    with PostfixInstance() as pf:
        d, master = pf.dir, pf._master_pid()
        assert pf.postconf("-h", "config_directory").strip() == str(d / "conf")
        assert re.search(r"daemon started -- version 3\.\S+, configuration "
                         + re.escape(str(d / "conf")), pf.log())
        code, text = pf.send("a@example.org", ["b@example.com"], MSG.format(s="p"))
        assert code == 250, text
        pf.wait_delivered(1)
        os.kill(master, 0)
    assert not d.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(master, 0)
    assert not SYSTEM_CF.exists()
    assert not os.path.exists("/var/spool/postfix/pid/master.pid")
