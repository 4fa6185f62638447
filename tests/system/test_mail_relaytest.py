"""`rampart mail relaytest` against a real Postfix (postfixutil.py) and against small fake
servers that misbehave: open relay -> exit 1 with the tricks that worked, Debian's default
relay restrictions -> exit 0, STARTTLS, IPv6, and exit 3 for what cannot be told."""
import json
import socket
import subprocess
import threading

import pytest

from postfixutil import postfix  # noqa: F401  (pytest fixture)

RUN_TIMEOUT = 60  # every rampart run is bounded; the slowest one below takes a few seconds

# mynetworks covering everybody: the classic open relay (Postfix refuses a relay restriction
# list without any reject in it, so an open relay is made this way).
OPEN_RELAY = {"mynetworks": "0.0.0.0/0 [::]/0", "relay_domains": ""}
# Debian's main.cf as the postfix package writes it, with the client (127.0.0.1) outside
# mynetworks as an outside client would be.
DEBIAN_DEFAULT = {
    "mynetworks": "127.0.0.2/32",
    "relay_domains": "",
    "mydestination": "$myhostname, localhost.localdomain, localhost",
    "local_recipient_maps": "proxy:unix:passwd.byname $alias_maps",
    "smtpd_relay_restrictions":
        "permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
}
RELAY_TRICKS = {
    "plain", "null-sender", "own-domain-sender", "localhost-sender", "literal-sender",
    "unqualified-sender", "percent", "percent-literal", "percent-unqualified", "source-route",
    "source-route-bare", "bang", "bang-unqualified", "quoted", "quoted-percent",
    "quoted-unqualified", "double-at", "outside-literal",
}


def relaytest(run, *args, timeout=RUN_TIMEOUT):
    return run("mail", "relaytest", *args, timeout=timeout)


def report(run, *args):
    r = relaytest(run, *args, "--json")
    assert r.stdout, r.stderr
    return r, json.loads(r.stdout)


def by_name(rep):
    return {t["name"]: t for t in rep["tricks"]}


# ------------------------------------------------------------------ real Postfix


def test_open_relay_is_reported_open_with_the_tricks_that_worked(postfix, run):
    pf = postfix(main=OPEN_RELAY)
    r, rep = report(run, f"127.0.0.1:{pf.inbound_port}")
    assert r.returncode == 1, r.stderr
    assert rep["result"] == "open" and rep["error"] is None
    tricks = by_name(rep)
    assert RELAY_TRICKS <= set(tricks)
    plain = tricks["plain"]
    assert plain["accepted"] and plain["reply"]["code"] == 250 and plain["stage"] == "rcpt"
    assert plain["mail_from"] == "<relaytest@example.org>"
    assert plain["rcpt_to"] == "<relaytest@example.com>"
    assert tricks["percent"]["rcpt_to"] == "<relaytest%example.com@mx.test>"
    assert tricks["source-route"]["rcpt_to"] == "<@mx.test:relaytest@example.com>"
    assert tricks["quoted"]["rcpt_to"] == '<"relaytest@example.com"@mx.test>'
    accepted = {t["name"] for t in rep["tricks"] if t["accepted"] and t["relay"]}
    assert "plain" in accepted and "percent" in accepted
    assert pf.queue() == [] and "status=sent" not in pf.log()  # no DATA: nothing queued
    text = relaytest(run, f"127.0.0.1:{pf.inbound_port}")
    assert text.returncode == 1
    assert "OPEN RELAY" in text.stdout
    verdict = text.stdout.strip().splitlines()[-1]
    assert all(name in verdict for name in accepted), verdict


def test_debian_default_configuration_is_reported_closed(postfix, run):
    pf = postfix(main=DEBIAN_DEFAULT)
    r, rep = report(run, f"127.0.0.1:{pf.inbound_port}")
    assert r.returncode == 0, r.stderr
    assert rep["result"] == "closed"
    assert rep["domain"] == "mx.test"
    assert len(rep["tricks"]) == len(RELAY_TRICKS) + 1
    for t in rep["tricks"]:
        assert not t["accepted"], t
        assert t["reply"]["code"] // 100 in (4, 5), t
    assert by_name(rep)["plain"]["reply"]["code"] == 454  # defer_unauth_destination
    assert "Relay access denied" in by_name(rep)["plain"]["reply"]["text"]
    assert "reject: RCPT from unknown[127.0.0.1]" in pf.log()
    text = relaytest(run, f"127.0.0.1:{pf.inbound_port}")
    assert text.returncode == 0
    assert f"closed: all {len(RELAY_TRICKS)} relay tricks were refused" in text.stdout


def test_domain_option_is_used_in_the_tricks(postfix, run):
    pf = postfix(main=DEBIAN_DEFAULT)
    r, rep = report(run, f"127.0.0.1:{pf.inbound_port}", "--domain", "mail.example.net",
                    "--from", "probe@example.net", "--to", "victim@example.com")
    assert r.returncode == 0, r.stderr
    t = by_name(rep)
    assert t["percent"]["rcpt_to"] == "<victim%example.com@mail.example.net>"
    assert t["own-domain-sender"]["mail_from"] == "<probe@mail.example.net>"
    assert "to=<victim%example.com@mail.example.net>" in pf.log()


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("relaytls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=mx.test", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem")], check=True, capture_output=True, timeout=60)
    return d / "cert.pem", d / "key.pem"


def tls_main(cert, extra):
    return {**extra, "smtpd_tls_security_level": "may", "smtpd_tls_cert_file": cert[0],
            "smtpd_tls_key_file": cert[1], "smtpd_tls_loglevel": "1"}


def test_starttls_is_used_and_reported(postfix, run, cert):
    pf = postfix(main=tls_main(cert, DEBIAN_DEFAULT), tlsmgr=True)
    r, rep = report(run, f"127.0.0.1:{pf.inbound_port}")
    assert r.returncode == 0, r.stderr
    tls = rep["tls"]
    assert tls["offered"] and tls["used"], tls
    assert tls["version"].startswith("TLSv1.")
    assert tls["cipher"] and tls["bits"] >= 128
    assert "CN=mx.test" in tls["subject"]
    assert "TLS connection established from unknown[127.0.0.1]" in pf.log()
    assert f"{tls['version']} with cipher {tls['cipher']}" in pf.log()
    text = relaytest(run, f"127.0.0.1:{pf.inbound_port}")
    assert f"tls: {tls['version']} {tls['cipher']}" in text.stdout


def test_no_tls_skips_starttls(postfix, run, cert):
    pf = postfix(main=tls_main(cert, OPEN_RELAY), tlsmgr=True)
    r, rep = report(run, f"127.0.0.1:{pf.inbound_port}", "--no-tls")
    assert r.returncode == 1, r.stderr
    assert rep["tls"]["offered"] and not rep["tls"]["used"]
    assert "TLS connection established" not in pf.log()


def test_ipv6_target(postfix, run):
    pf = postfix(main=OPEN_RELAY, inbound6=True)
    r, rep = report(run, f"[::1]:{pf.inbound6_port}")
    assert r.returncode == 1, r.stderr
    assert rep["address"] == "::1" and rep["port"] == pf.inbound6_port
    assert by_name(rep)["percent-literal"]["rcpt_to"] == "<relaytest%example.com@[IPv6:::1]>"
    assert "connect from unknown[::1]" in pf.log()


def test_host_name_is_resolved(postfix, run, tmp_path):
    zone = tmp_path / "relay.zone"
    zone.write_text("$ORIGIN relay.test.\n$TTL 60\n"
                    "@ SOA ns hostmaster 1 60 60 600 60\n"
                    "mx A 127.0.0.1\n")
    pf = postfix(main=DEBIAN_DEFAULT)
    r, rep = report(run, f"mx.relay.test:{pf.inbound_port}", "--dns-zone", zone,
                    "--dns-offline")
    assert r.returncode == 0, r.stderr
    assert rep["host"] == "mx.relay.test" and rep["address"] == "127.0.0.1"
    r = relaytest(run, f"nowhere.relay.test:{pf.inbound_port}", "--dns-zone", zone,
                  "--dns-offline")
    assert r.returncode == 2
    assert "rampart: mail relaytest: nowhere.relay.test: no such host" in r.stderr


# ------------------------------------------------------------------ fake servers


class FakeServer:
    """A TCP server on a loopback port that runs handler(conn) per connection, in a thread;
    records what clients sent. At most 16 connections."""

    def __init__(self, handler, family=socket.AF_INET):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.received = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=10)

    def _serve(self):
        self.sock.settimeout(0.2)
        for _ in range(16):
            conn = None
            while conn is None and not self.stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except socket.timeout:
                    continue
                except OSError:
                    return
            if conn is None:
                return
            with conn:
                conn.settimeout(20)
                try:
                    self.handler(self, conn)
                except OSError:
                    pass

    def lines(self, conn):
        """Each command line the client sends, until it closes, QUIT, or 200 lines."""
        f = conn.makefile("rb")
        for _ in range(200):
            line = f.readline(2000)
            if not line:
                return
            line = line.decode(errors="replace").rstrip("\r\n")
            self.received.append(line)
            yield line
            if line.upper() == "QUIT":
                return


def smtp_ok(server, conn):
    """An SMTP server that accepts every recipient."""
    conn.sendall(b"220-fake.example ESMTP\r\n220 second line\r\n")
    for line in server.lines(conn):
        verb = line.split(":")[0].split(" ")[0].upper()
        reply = {"EHLO": b"250-fake.example\r\n250 8BITMIME\r\n", "QUIT": b"221 bye\r\n",
                 "DATA": b"354 go on\r\n"}.get(verb, b"250 ok\r\n")
        conn.sendall(reply)


def test_fake_server_accepting_everything_never_gets_data(run):
    with FakeServer(smtp_ok) as srv:
        r, rep = report(run, f"127.0.0.1:{srv.port}")
    assert r.returncode == 1, r.stderr
    assert rep["greeting"]["text"] == "fake.example ESMTP\nsecond line"
    assert rep["domain"] == "fake.example"
    assert not rep["tls"]["offered"]
    assert all(t["accepted"] for t in rep["tricks"])
    verbs = [line.split(":")[0].split(" ")[0].upper() for line in srv.received]
    assert "DATA" not in verbs and "BDAT" not in verbs
    assert verbs.count("RCPT") == len(rep["tricks"]) == verbs.count("RSET")
    assert "RCPT TO:<example.com!relaytest@fake.example>" in srv.received
    assert "RCPT TO:@fake.example:relaytest@example.com" in srv.received


def helo_only(server, conn):
    """An old server without EHLO; the greeting carries control characters."""
    conn.sendall(b"220 old.example \x1b[31mSMTP\x07\r\n")
    for line in server.lines(conn):
        verb = line.split(":")[0].split(" ")[0].upper()
        if verb == "EHLO":
            conn.sendall(b"502 5.5.1 no EHLO here\r\n")
        elif verb == "RCPT":
            conn.sendall(b"550 5.7.1 relaying denied\r\n")
        elif verb == "QUIT":
            conn.sendall(b"221 bye\r\n")
        else:
            conn.sendall(b"250 old.example\r\n")


def test_helo_fallback_and_escaped_text(run):
    with FakeServer(helo_only) as srv:
        r, rep = report(run, f"127.0.0.1:{srv.port}")
        text = relaytest(run, f"127.0.0.1:{srv.port}")
    assert r.returncode == 0, r.stderr
    assert not rep["esmtp"] and rep["domain"] == "old.example"
    assert any(line.startswith("HELO ") for line in srv.received)
    assert rep["greeting"]["text"] == "old.example \\x1b[31mSMTP\\x07"
    assert "\x1b" not in text.stdout and "\\x1b[31mSMTP\\x07" in text.stdout


def drop_after_two_rcpts(server, conn):
    """Closes the session with 421 at the third RCPT of a session."""
    conn.sendall(b"220 busy.example ESMTP\r\n")
    rcpts = 0
    for line in server.lines(conn):
        verb = line.split(":")[0].split(" ")[0].upper()
        if verb == "RCPT":
            rcpts += 1
            if rcpts == 3:
                conn.sendall(b"421 4.7.0 too many errors\r\n")
                return
            conn.sendall(b"554 5.7.1 relay access denied\r\n")
        else:
            conn.sendall(b"221 bye\r\n" if verb == "QUIT" else b"250 ok\r\n")


def test_session_closed_mid_test_is_reopened(run):
    with FakeServer(drop_after_two_rcpts) as srv:
        r, rep = report(run, f"127.0.0.1:{srv.port}")
    assert r.returncode == 0, r.stderr
    assert all(t["stage"] == "rcpt" and t["reply"]["code"] == 554 for t in rep["tricks"])
    assert rep["sessions"] > 3


def starttls(answer, then=b""):
    """Offers STARTTLS and answers it with answer; after a 220, answers the ClientHello
    with then (not TLS) and closes."""
    def handler(server, conn):
        conn.sendall(b"220 tls.example ESMTP\r\n")
        for line in server.lines(conn):
            verb = line.split(":")[0].split(" ")[0].upper()
            if verb == "EHLO":
                conn.sendall(b"250-tls.example\r\n250 STARTTLS\r\n")
            elif verb == "STARTTLS":
                conn.sendall(answer)
                if answer.startswith(b"220"):
                    conn.recv(4096)
                    conn.sendall(then)
                    return
            elif verb == "RCPT":
                conn.sendall(b"550 5.7.1 relaying denied\r\n")
            else:
                conn.sendall(b"221 bye\r\n" if verb == "QUIT" else b"250 ok\r\n")
    return handler


def test_tls_handshake_failure_cannot_tell(run):
    with FakeServer(starttls(b"220 go ahead\r\n", b"this is not TLS\r\n")) as srv:
        r = relaytest(run, f"127.0.0.1:{srv.port}", "--timeout", "3s")
        assert r.returncode == 3, r.stderr
        assert f"127.0.0.1:{srv.port}: TLS handshake: " in r.stderr
        assert "(--no-tls skips TLS)" in r.stderr
        r, rep = report(run, f"127.0.0.1:{srv.port}", "--no-tls")
    assert r.returncode == 0, r.stderr
    assert rep["tls"]["offered"] and not rep["tls"]["used"]


def test_starttls_refused_goes_on_in_plain_text(run):
    with FakeServer(starttls(b"454 4.7.0 TLS not available\r\n")) as srv:
        r, rep = report(run, f"127.0.0.1:{srv.port}")
    assert r.returncode == 0, r.stderr
    assert rep["tls"]["offered"] and not rep["tls"]["used"]
    assert rep["tls"]["starttls_refused"] == "454 4.7.0 TLS not available"


def greeting(data, then_wait=False):
    def handler(server, conn):
        if data:
            conn.sendall(data)
        if then_wait:
            server.stop.wait(30)
    return handler


@pytest.mark.parametrize("data,what", [
    (b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "not an SMTP reply: 'HTTP/1.0"),
    (b"SSH-2.0-OpenSSH_9.2p1\r\n", "not an SMTP reply: 'SSH-2.0"),
    (b"\x00\x01\x02garbage", "not an SMTP reply: '\\x00\\x01\\x02garbage'"),
    (b"220 " + b"x" * 5000 + b"\r\n", "greeting: reply too long"),
    (b"220-a\r\n250 b\r\n", "greeting: not an SMTP reply"),
    (b"421 4.3.2 shutting down\r\n", "greeting: refused: 421 4.3.2 shutting down"),
    (b"554 no SMTP service here\r\n", "greeting: refused: 554 no SMTP service here"),
])
def test_bad_greetings_cannot_tell(run, data, what):
    with FakeServer(greeting(data, then_wait=True)) as srv:
        r = relaytest(run, f"127.0.0.1:{srv.port}", "--timeout", "3s")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr.startswith(f"rampart: mail relaytest: 127.0.0.1:{srv.port}: "), r.stderr
    assert what in r.stderr


def test_silent_server_times_out(run):
    with FakeServer(greeting(b"", then_wait=True)) as srv:
        r = relaytest(run, f"127.0.0.1:{srv.port}", "--timeout", "1s", timeout=20)
    assert r.returncode == 3
    assert f"127.0.0.1:{srv.port}: greeting: no answer within 1s" in r.stderr


def test_server_silent_after_mail_from_times_out(run):
    def handler(server, conn):
        conn.sendall(b"220 slow.example ESMTP\r\n")
        for line in server.lines(conn):
            if line.upper().startswith("MAIL"):
                server.stop.wait(30)
                return
            conn.sendall(b"250 ok\r\n")
    with FakeServer(handler) as srv:
        r, rep = report(run, f"127.0.0.1:{srv.port}", "--timeout", "1s")
    assert r.returncode == 3
    assert rep["result"] == "unknown"
    assert rep["error"].endswith("MAIL FROM: no answer within 1s")
    assert all(t["stage"] == "not run" for t in rep["tricks"])


def test_server_closing_at_once(run):
    with FakeServer(greeting(b"")) as srv:
        r = relaytest(run, f"127.0.0.1:{srv.port}", "--timeout", "3s")
    assert r.returncode == 3
    assert "greeting: the server closed the connection" in r.stderr


def test_nothing_listening(run):
    with socket.socket() as s:  # a port that is bound but not listening: refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = relaytest(run, f"127.0.0.1:{port}")
    assert r.returncode == 3
    assert f"127.0.0.1:{port}: connect: Connection refused" in r.stderr


def test_time_limit_bounds_the_whole_run(run):
    def handler(server, conn):  # accepts the first trick, then says nothing more
        conn.sendall(b"220 slow.example ESMTP\r\n")
        for line in server.lines(conn):
            conn.sendall(b"250 ok\r\n")
            if line.upper() == "RSET":
                server.stop.wait(30)
                return
    with FakeServer(handler) as srv:
        r, rep = report(run, f"127.0.0.1:{srv.port}", "--timeout", "30s", "--time-limit", "5s")
    assert r.returncode == 1  # the first tricks were accepted before the limit
    assert rep["error"] and "the time limit ran out" in rep["error"]
    assert any(t["stage"] == "not run" for t in rep["tricks"])


@pytest.mark.parametrize("args", [
    [], ["a", "b"], ["bad host"], ["127.0.0.1:0"], ["127.0.0.1:65536"], ["[::1"],
    ["[::1]:"], ["mx.example:x"], ["1.2.3"], ["::1]:25"], ["mx..example"],
    ["127.0.0.1", "--from", "nobody"], ["127.0.0.1", "--to", "a%b@example.com"],
    ["127.0.0.1", "--timeout", "0"], ["127.0.0.1", "--helo", "bad name"],
    ["127.0.0.1", "--bogus"],
])
def test_usage_errors(run, args):
    r = relaytest(run, *args, timeout=10)
    assert r.returncode == 2, (args, r.stderr)
    assert r.stderr.startswith("rampart: mail relaytest: ")
    assert r.stdout == ""
