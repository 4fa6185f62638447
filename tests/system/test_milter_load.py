"""Load through a private Postfix and `rampart milter` (issue 14, acceptance 3).

Postfix's `smtp-source` sends N = 5,000 messages of 4 KB, 20 sessions at a time (one message
per session, as it does without -d), to the private Postfix of postfixutil.py whose
smtpd_milters is the milter of milterutil.py (keys from `rampart dkim keygen`, DNS from knot).
Two passes, each with its own Postfix and milter:

  sign    from 127.0.0.1, an internal network: smtp-source's own messages (it writes
          From: <a@example.com>, To, Date, Message-Id, Subject and -l bytes of body); each must
          leave with exactly two DKIM-Signature fields (rsa-sha256 s=s1, ed25519-sha256
          s=s1-ed25519) and no Authentication-Results.
  verify  from 192.0.2.7, an outside address: smtp-source cannot send XCLIENT, so it talks to
          XclientRelay, which opens each session to Postfix's inbound port with
          `XCLIENT ADDR=192.0.2.7` and then passes the bytes through. The message is one file
          (smtp-source -F) signed beforehand by `rampart dkim sign` with both keys; each copy
          must arrive with exactly one Authentication-Results of mx.test with spf=pass,
          dmarc=pass and dkim=pass for both signatures, and no signature added.

Both: smtp-source exits 0 (it stops at the first reply that is not 2xx/3xx), the sink saved N
messages, Postfix logged N status=sent, the queue is empty, the milter logged N results with
action=accept, and its resident set after the first 1,000 messages and at the end differ by
at most RSS_GROWTH (see there). No timing is asserted; every wait is bounded.
"""
import asyncio
import contextlib
import email.parser
import os
import re
import shutil
import subprocess
import threading
import time

import pytest

from conftest import BUILD
from milterutil import Milter
from postfixutil import PostfixInstance

N = 5000
SESSIONS = 20
SIZE = 4096
WARMUP = 1000
OUTSIDE = "192.0.2.7"
HELO = "mail.example.com"
SENDER = "a@example.com"
RCPT = "b@example.net"
AUTHSERV = "mx.test"
KEYS = [("example.com", "s1", "rsa"), ("example.com", "s1-ed25519", "ed25519")]
ZONE = """\
$ORIGIN example.com.
$TTL 300
@ SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300
@ NS ns.example.com.
ns A 127.0.0.1
@ TXT "v=spf1 ip4:192.0.2.0/24 -all"
mail TXT "v=spf1 ip4:192.0.2.0/24 -all"
_dmarc TXT "v=DMARC1; p=reject"
"""
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
LOAD_TIMEOUT = 300.0  # one pass at most (smtp-source, then delivery of what it sent)
SAMPLE_EVERY = 0.2
# RSS after warm-up (the first 1,000 messages: every libmilter connection thread of 20
# concurrent sessions has run, glibc has made its per-thread malloc arenas, the keys' OpenSSL
# contexts and the DNS cache are filled) against the end, 4,000 messages later. Allowed:
# 10% + 8 MiB. glibc keeps freed memory in its arenas and hands it out again, so a steady
# state moves by a few hundred KiB, while keeping any per-message buffer (a 4 KB body, the
# header block, a signature) grows RSS by 4,000 x >= 2 KiB = 8 MiB or more: that is caught.
# Smaller per-message leaks are the ASan/LeakSanitizer runs' job (acceptance 2).
RSS_GROWTH = (0.10, 8 * 1024)  # (fraction, KiB)


# ------------------------------------------------------------------------- helpers


class XclientRelay:
    """A loopback listener whose every connection is forwarded to Postfix's inbound port after
    `XCLIENT ADDR=addr`: Postfix's 220 reply to XCLIENT becomes the client's greeting, then
    bytes pass through unchanged. Errors are collected in .errors (checked by the test)."""

    def __init__(self, upstream_port, addr):
        self.upstream = upstream_port
        self.addr = addr
        self.errors = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self):
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=128), self.loop)
        self.thread.start()
        self.server = self.server.result(timeout=10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc):
        async def close():
            self.server.close()
            await self.server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    @staticmethod
    async def _reply(reader):
        text = b""
        while True:
            line = await asyncio.wait_for(reader.readline(), 60)
            text += line
            if len(line) < 4 or line[3:4] != b"-":
                return text

    @staticmethod
    async def _pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handle(self, creader, cwriter):
        uwriter = None
        try:
            ureader, uwriter = await asyncio.open_connection("127.0.0.1", self.upstream)
            await self._reply(ureader)  # Postfix's banner: the client gets the one below
            uwriter.write(f"XCLIENT ADDR={self.addr}\r\n".encode())
            reply = await self._reply(ureader)
            if not reply.startswith(b"220"):
                self.errors.append(reply)
                return
            cwriter.write(reply)
            await asyncio.gather(self._pipe(creader, uwriter), self._pipe(ureader, cwriter))
        except Exception as e:  # noqa: BLE001  (reported by the test)
            self.errors.append(repr(e))
        finally:
            cwriter.close()
            if uwriter:
                uwriter.close()


class RssSampler:
    """Samples the milter's VmRSS while the sink fills: .at_warmup is the first sample taken
    once WARMUP messages were saved, .peak the largest."""

    def __init__(self, milter, sink_dir):
        self.milter, self.sink = milter, sink_dir
        self.at_warmup, self.peak = None, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(SAMPLE_EVERY):
            with contextlib.suppress(OSError):
                rss = self.milter.rss_kb()
                self.peak = max(self.peak, rss)
                if self.at_warmup is None and len(os.listdir(self.sink)) >= WARMUP:
                    self.at_warmup = rss

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=10)


def smtp_source(port, *extra):
    """smtp-source's whole run: N messages, SESSIONS at a time -> (CompletedProcess, seconds)."""
    cmd = [SMTP_SOURCE, "-s", str(SESSIONS), "-m", str(N), "-f", SENDER, "-t", RCPT,
           "-M", HELO, *extra, f"127.0.0.1:{port}"]
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=LOAD_TIMEOUT)
    return r, time.monotonic() - start


def wait_all_sent(pf, timeout=LOAD_TIMEOUT):
    """Waits until the sink holds N files and Postfix logged N deliveries -> the sink's files."""
    sink, deadline = pf.dir / "sink", time.monotonic() + timeout
    while True:
        if len(os.listdir(sink)) >= N and pf.log().count("status=sent") >= N:
            return sorted(sink.iterdir())
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(os.listdir(sink))} of {N} messages delivered and "
                                 f"{pf.log().count('status=sent')} logged sent in {timeout}s; "
                                 f"queue {pf.queue()[:5]}")
        time.sleep(0.5)


def fields(path, name):
    """The unfolded values of every `name` field of the saved message at path."""
    with open(path, "rb") as f:
        msg = email.parser.BytesHeaderParser().parse(f)
    return [" ".join(v.split()) for v in msg.get_all(name) or []]


def check_rss(sampler, end_kb):
    assert sampler.at_warmup is not None, "no RSS sample after the warm-up"
    limit = sampler.at_warmup * (1 + RSS_GROWTH[0]) + RSS_GROWTH[1]
    assert end_kb <= limit, (f"milter RSS grew from {sampler.at_warmup} KiB after {WARMUP} "
                             f"messages to {end_kb} KiB at {N} (limit {limit:.0f})")


def check_delivery(pf, m, r):
    assert r.returncode == 0, f"smtp-source failed: {r.stderr[-2000:]}"
    files = wait_all_sent(pf)
    assert len(files) == N, f"{len(files)} saved, {N} sent"  # none lost, none doubled
    assert pf.queue() == []
    results = m.results()
    assert len(results) == N, f"the milter logged {len(results)} results for {N} messages"
    assert {x["action"] for x in results} == {"accept"}, results[:5]
    return files


@pytest.fixture
def load_milter():
    with Milter(zones={"example.com": ZONE}, keys=KEYS,
                mail={"internal-networks": ["127.0.0.1/32"]}) as m:
        yield m


def signed_message(m, tmp_path):
    """A 4 KB message from SENDER signed with both keys (LF line ends: smtp-source -F sends
    each line with CRLF, which is what was signed)."""
    body = "".join(f"{i:04d} " + "lorem ipsum dolor sit amet " * 2 + "\r\n" for i in range(70))
    msg = (f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: load verify\r\n"
           f"Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <load@example.com>\r\n\r\n"
           f"{body}").encode()
    assert SIZE - 200 <= len(body) <= SIZE + 200
    args = [str(BUILD / "rampart"), "dkim", "sign", "--domain", "example.com"]
    for domain, selector, _ in KEYS:
        args += ["--selector", selector, "--key", m.key(domain, selector)]
    r = subprocess.run(args, input=msg, capture_output=True, timeout=60, check=True)
    path = tmp_path / "signed.eml"
    path.write_bytes(r.stdout.replace(b"\r\n", b"\n"))
    return path


# ------------------------------------------------------------------------- tests


def test_sign_load_none_lost_two_signatures_each_rss_flat(load_milter):
    m = load_milter
    with PostfixInstance(smtpd_milters=m.postfix_spec) as pf:
        with RssSampler(m, pf.dir / "sink") as sampler:
            r, seconds = smtp_source(pf.inbound_port, "-l", str(SIZE), "-S", "load sign")
            files = check_delivery(pf, m, r)
        end_kb = m.rss_kb()
        print(f"sign: {N} messages in {seconds:.1f} s ({N / seconds:.0f}/s); milter RSS "
              f"{sampler.at_warmup} KiB after {WARMUP}, {end_kb} KiB at the end, "
              f"peak {sampler.peak} KiB")
        assert {x["signed"] for x in m.results()} == {"2"}
        for path in files:
            sigs = fields(path, "DKIM-Signature")
            assert len(sigs) == 2, (path, sigs)
            assert "a=rsa-sha256" in sigs[0] and "s=s1;" in sigs[0], sigs
            assert "a=ed25519-sha256" in sigs[1] and "s=s1-ed25519;" in sigs[1], sigs
            assert fields(path, "Authentication-Results") == [], path
            assert fields(path, "Subject") == ["load sign"], path
        check_rss(sampler, end_kb)


def test_verify_load_via_xclient_none_lost_results_each_rss_flat(load_milter, tmp_path):
    m = load_milter
    eml = signed_message(m, tmp_path)
    with PostfixInstance(smtpd_milters=m.postfix_spec) as pf, \
            XclientRelay(pf.inbound_port, OUTSIDE) as relay:
        with RssSampler(m, pf.dir / "sink") as sampler:
            r, seconds = smtp_source(relay.port, "-F", str(eml))
            files = check_delivery(pf, m, r)
        end_kb = m.rss_kb()
        print(f"verify: {N} messages in {seconds:.1f} s ({N / seconds:.0f}/s); milter RSS "
              f"{sampler.at_warmup} KiB after {WARMUP}, {end_kb} KiB at the end, "
              f"peak {sampler.peak} KiB")
        assert relay.errors == []
        assert {(x["client"], x["dkim"], x["dmarc"]) for x in m.results()} == {
            (OUTSIDE, "pass", "pass")}, m.results()[:5]
        want = re.compile(
            rf"^{re.escape(AUTHSERV)}; spf=pass smtp\.mailfrom={re.escape(SENDER)};.*"
            r"dkim=pass header\.d=example\.com header\.s=s1 header\.a=rsa-sha256 .*"
            r"dkim=pass header\.d=example\.com header\.s=s1-ed25519 header\.a=ed25519-sha256 .*"
            r"dmarc=pass ")
        for path in files:
            ar = fields(path, "Authentication-Results")
            assert len(ar) == 1 and want.search(ar[0]), (path, ar)
            assert len(fields(path, "DKIM-Signature")) == 2, path  # verified, not re-signed
            assert fields(path, "X-Client-Addr") == ["127.0.0.1"]  # the sink's view: Postfix
            assert f"[{OUTSIDE}]" in fields(path, "Received")[1], path  # Postfix saw OUTSIDE
        check_rss(sampler, end_kb)
