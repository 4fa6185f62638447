"""A private Postfix for the milter system tests: Debian's postfix, its own config, queue and log.

    from postfixutil import postfix, PostfixInstance  # noqa: F401  (postfix is a pytest fixture)

    def test_x(postfix):
        pf = postfix(smtpd_milters="inet:127.0.0.1:8891")    # started; stopped at teardown
        code, text = pf.send("a@example.org", ["b@example.com"], MSG,
                             xclient={"ADDR": "192.0.2.7", "HELO": "bad.example"})
        assert code == 250
        msg = pf.wait_delivered(1)[0]            # bytes as the sink received them

    with PostfixInstance(smtpd_milters=...) as pf:   # without pytest
        ...

PostfixInstance(smtpd_milters=None, non_smtpd_milters=None, milter_default_action="tempfail",
                milter_macros=None, main=None, users=None, sink=True, inbound6=False,
                tlsmgr=False)
    smtpd_milters, non_smtpd_milters: main.cf values, e.g. "inet:127.0.0.1:PORT" (None: unset).
    milter_macros: {"connect": "...", "mail": "...", ...} overrides of milter_<stage>_macros.
        By default {client_addr} {client_name} {client_port} {daemon_name} {daemon_addr} j _ v
        reach the milter at connect, i {auth_type} {auth_authen} {auth_author} {mail_addr}
        at MAIL FROM, i at every later stage.
    main: extra main.cf lines {name: value}, written last (they win).
    users: {login: password} put in the sasldb (default {"alice": "secret"}, realm mx.test).
    sink: False relays to a sink that keeps nothing (for load tests).
    inbound6: True adds a listener like inbound on [::1] (attribute inbound6_port) and sets
        inet_protocols = all (unless main sets it).
    tlsmgr: True adds Postfix's tlsmgr service, without which smtpd answers STARTTLS with
        454 "TLS not available due to local problem" (give smtpd_tls_* in main).

Layout (all in one temporary directory, removed on exit; the system's /etc/postfix is only
read for Postfix's own metadata, never written): conf/ (main.cf, master.cf: `postfix -c`;
conf/sasl/ smtpd.conf + sasldb2), queue/, data/, maillog (Postfix's postlogd writes it, no
syslog), sink/ (one file per message). myhostname mx.test, mydestination empty, inet_interfaces
127.0.0.1, mynetworks 127.0.0.0/8; every message is relayed to relayhost [127.0.0.1]:SINK,
where Postfix's `smtp-sink -d` saves it. Recipients outside mynetworks/SASL are accepted for
RELAY_DOMAINS (or main={"relay_domains": ...}).

Listeners (free ephemeral loopback ports, attributes inbound_port and submission_port):
    inbound     port-25 role; XCLIENT allowed from 127.0.0.1 (so a test presents an outside
                client address: the mynetworks check then sees that address); no SASL;
                milter {daemon_name} is mx.test (Postfix's default, $myhostname).
    submission  SASL required (PLAIN/LOGIN over plain text, fine on loopback); unauthenticated
                clients are refused at RCPT (5xx); milter {daemon_name} is "ORIGINATING".
The SASL realm is mx.test: Received headers of SASL mail carry "(Authenticated sender:
LOGIN@mx.test)" and the milter's {auth_authen} is LOGIN@mx.test. A milter that cannot be
reached with milter_default_action=tempfail makes Postfix answer 451 4.7.1 from MAIL FROM on.

Methods:
    send(mail_from, rcpts, data, helo="client.test", xclient=None, auth=None, port="inbound")
        -> (code, text) of the last SMTP reply: the end-of-data reply on success, else the first
        refusal (connect, XCLIENT, AUTH, MAIL, all RCPTs refused, DATA). Never raises on 4xx/5xx.
        xclient: {"ADDR": ..., "HELO": ..., "NAME": ..., ...}; auth: (login, password); data:
        bytes or str (str gets CRLF line ends; bytes go as they are, dot-stuffed).
    wait_delivered(n, timeout=30) -> list of bytes: the first n messages the sink saved (in
        arrival order; each begins with smtp-sink's X-Client-Addr/X-Helo-Args/X-Mail-Args/
        X-Rcpt-Args lines, then the message with Postfix's and the milter's headers).
    delivered() -> every message saved so far.   log() -> the Postfix log text.
    queue() -> list of dicts from `postqueue -j` (queue_name "hold" is quarantined mail).
    postconf(*args) -> stdout of `postconf -c CONF ...`.   dir: the temporary directory.
"""
import contextlib
import json
import os
import pathlib
import pty
import select
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

POSTFIX = "/usr/sbin/postfix"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"
HOSTNAME = "mx.test"
RELAY_DOMAINS = "example.com example.org example.net example.test test"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

MACROS = {
    "connect": "j {daemon_name} {daemon_addr} v _ {client_addr} {client_name} {client_port}",
    "helo": "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
    "rcpt": "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
    "data": "i", "end_of_header": "i", "end_of_data": "i",
}

MASTER_CF = """\
127.0.0.1:{inbound} inet n - n - - smtpd
  -o syslog_name=postfix/inbound
  -o smtpd_authorized_xclient_hosts=127.0.0.1
127.0.0.1:{submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o milter_macro_daemon_name=ORIGINATING
pickup     unix n - n 60 1 pickup
cleanup    unix n - n - 0 cleanup
qmgr       unix n - n 300 1 qmgr
rewrite    unix - - n - - trivial-rewrite
bounce     unix - - n - 0 bounce
defer      unix - - n - 0 bounce
trace      unix - - n - 0 bounce
verify     unix - - n - 1 verify
flush      unix n - n 1000? 0 flush
proxymap   unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp       unix - - n - - smtp
relay      unix - - n - - smtp
showq      unix n - n - - showq
error      unix - - n - - error
retry      unix - - n - - error
discard    unix - - n - - discard
anvil      unix - - n - 1 anvil
scache     unix - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_port6():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.bind(("::1", 0))
        return s.getsockname()[1]


def _banner(port, host="127.0.0.1"):
    """True when something on port greets with 220 (Postfix's smtpd is up)."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            return s.recv(512).startswith(b"220")
    except OSError:
        return False


def _xtext(value):
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else "+%02X" % ord(c)
                   for c in str(value))


class PostfixInstance:
    def __init__(self, smtpd_milters=None, non_smtpd_milters=None,
                 milter_default_action="tempfail", milter_macros=None, main=None, users=None,
                 sink=True, inbound6=False, tlsmgr=False):
        self.inbound6 = inbound6
        self.tlsmgr = tlsmgr
        self.inbound6_port = None
        self.milters = {"smtpd_milters": smtpd_milters, "non_smtpd_milters": non_smtpd_milters}
        self.default_action = milter_default_action
        self.macros = {**MACROS, **(milter_macros or {})}
        self.extra = main or {}
        self.users = {"alice": "secret"} if users is None else users
        self.keep = sink
        self.dir = None
        self.sink_proc = None
        self.started = False

    # ------------------------------------------------------------- start and stop

    def __enter__(self):
        for path in (POSTFIX, SMTP_SINK, SASLPASSWD2):
            if not os.path.exists(path):
                pytest.fail(f"{path} is missing: run `make deps` (postfix, sasl2-bin)")
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="rampart-postfix-"))
        try:
            self._setup()
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.started:
                self._stop_postfix()
        finally:
            if self.sink_proc and self.sink_proc.poll() is None:
                self.sink_proc.kill()
                self.sink_proc.wait()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _setup(self):
        d = self.dir
        d.chmod(0o755)  # Postfix's unprivileged daemons must reach queue/ and conf/sasl/
        for sub in ("conf", "conf/sasl", "queue", "data", "sink"):
            (d / sub).mkdir()
        self.conf = d / "conf"
        self.inbound_port, self.submission_port, self.sink_port = (
            _free_port(), _free_port(), _free_port())
        shutil.chown(d / "data", "postfix")
        shutil.chown(d / "sink", "postfix")
        self._sasl()
        master = MASTER_CF.format(inbound=self.inbound_port, submission=self.submission_port)
        if self.inbound6:
            self.inbound6_port = _free_port6()
            master += (f"[::1]:{self.inbound6_port} inet n - n - - smtpd\n"
                       "  -o syslog_name=postfix/inbound6\n")
        if self.tlsmgr:
            master += "tlsmgr unix - - n 1000? 1 tlsmgr\n"
        (self.conf / "master.cf").write_text(master)
        (self.conf / "main.cf").write_text(
            "".join(f"{k} = {v}\n" for k, v in self._main_cf().items()))

    def _main_cf(self):
        d = self.dir
        cf = {
            "compatibility_level": "3.6",
            "queue_directory": d / "queue", "data_directory": d / "data",
            "mail_owner": "postfix", "setgid_group": "postdrop",
            "maillog_file": d / "maillog", "maillog_file_prefixes": d,
            "myhostname": HOSTNAME, "myorigin": "$myhostname", "mydestination": "",
            "local_recipient_maps": "", "alias_maps": "", "alias_database": "",
            "inet_interfaces": "127.0.0.1", "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8", "relay_domains": RELAY_DOMAINS,
            "relayhost": f"[127.0.0.1]:{self.sink_port}",
            "smtpd_relay_restrictions":
                "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
            "smtpd_peername_lookup": "no", "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native", "smtpd_tls_security_level": "none",
            "smtp_tls_security_level": "none", "biff": "no",
            "smtpd_banner": "$myhostname ESMTP",
            "smtpd_sasl_type": "cyrus", "smtpd_sasl_path": "smtpd",
            "cyrus_sasl_config_path": d / "conf/sasl", "smtpd_sasl_local_domain": HOSTNAME,
            "smtpd_sasl_security_options": "noanonymous", "smtpd_tls_auth_only": "no",
            "smtpd_sasl_authenticated_header": "yes",
            "milter_default_action": self.default_action, "milter_protocol": "6",
            # a test's sink that is briefly slow must not push mail into a long backoff
            "minimal_backoff_time": "2s", "maximal_backoff_time": "5s",
            "queue_run_delay": "2s",
        }
        cf.update({k: v for k, v in self.milters.items() if v is not None})
        cf.update({f"milter_{stage}_macros": v for stage, v in self.macros.items()})
        if self.inbound6:
            cf["inet_protocols"] = "all"
        cf.update(self.extra)
        return cf

    def _sasl(self):
        sasl = self.conf / "sasl"  # Debian's Postfix reads $config_directory/sasl only
        db = sasl / "sasldb2"
        (sasl / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: {db}\n"
            "mech_list: PLAIN LOGIN\n")
        for login, password in self.users.items():
            subprocess.run([SASLPASSWD2, "-c", "-p", "-f", str(db), "-u", HOSTNAME, login],
                           input=password.encode(), check=True, capture_output=True)
        if db.exists():
            shutil.chown(db, "postfix")
            db.chmod(0o600)

    def _start(self):
        dump = ["-d", f"{self.dir}/sink/%Y%m%d%H%M%S."] if self.keep else []
        self.sink_proc = subprocess.Popen(
            [SMTP_SINK, "-u", "postfix", *dump, f"127.0.0.1:{self.sink_port}", "64"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "sink.stderr", "w"))
        rc, out = self._postfix_tty("start")
        self.started = True
        if rc != 0:
            raise RuntimeError(f"postfix start failed ({rc}):\n{out}\n{self.log()}")
        deadline = time.monotonic() + START_TIMEOUT
        for port in (self.inbound_port, self.submission_port, self.sink_port):
            while not _banner(port):
                if time.monotonic() > deadline or self.sink_proc.poll() is not None:
                    raise RuntimeError(f"port {port} did not answer:\n{self.log()}"
                                       f"{(self.dir / 'sink.stderr').read_text()}")
                time.sleep(0.1)
        while self.inbound6 and not _banner(self.inbound6_port, "::1"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"[::1]:{self.inbound6_port} did not answer:\n{self.log()}")
            time.sleep(0.1)

    def _postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", str(self.conf), *args], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)

    def _postfix_tty(self, *args):
        """Runs postfix with a terminal on stderr: only then does it print why it failed (its
        log goes to postlogd, which is not running yet)."""
        m, s = pty.openpty()
        try:
            proc = subprocess.Popen([POSTFIX, "-c", str(self.conf), *args],
                                    stdin=subprocess.DEVNULL, stdout=s, stderr=s)
        finally:
            os.close(s)
        out, deadline = bytearray(), time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if select.select([m], [], [], 0.1)[0]:
                    try:
                        chunk = os.read(m, 4096)
                    except OSError:  # EIO: every writer closed the terminal
                        break
                    if not chunk:
                        break
                    out += chunk
                elif proc.poll() is not None:
                    break
        finally:
            os.close(m)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        return proc.returncode, out.decode(errors="replace")

    def _master_pid(self):
        try:
            return int((self.dir / "queue/pid/master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _stop_postfix(self):
        pid = self._master_pid()
        self._postfix("stop")
        deadline = time.monotonic() + STOP_TIMEOUT
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        if pid:  # master ignored SIGTERM: kill its whole process group (setsid'd master)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    # ------------------------------------------------------------- helpers for tests

    def postconf(self, *args):
        return subprocess.run(["postconf", "-c", str(self.conf), *args], capture_output=True,
                              text=True, check=True).stdout

    def log(self):
        p = self.dir / "maillog"
        return p.read_text(errors="replace") if p.exists() else ""

    def queue(self):
        r = subprocess.run(["postqueue", "-c", str(self.conf), "-j"], capture_output=True,
                           text=True, timeout=30, check=True)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def delivered(self):
        files = sorted((self.dir / "sink").iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [p.read_bytes() for p in files]

    def wait_delivered(self, n, timeout=30):
        """The first n messages, once Postfix logged n deliveries to the sink (so the sink has
        closed their files)."""
        deadline = time.monotonic() + timeout
        while True:
            sent = self.log().count("status=sent")
            msgs = self.delivered()
            if sent >= n and len(msgs) >= n:
                return msgs[:n]
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(msgs)} of {n} messages delivered in {timeout}s; "
                                     f"queue {self.queue()}\nlog:\n{self.log()}")
            time.sleep(0.1)

    def send(self, mail_from, rcpts, data, helo="client.test", xclient=None, auth=None,
             port="inbound"):
        port_no = {"inbound": self.inbound_port, "submission": self.submission_port}[port]
        rcpts = [rcpts] if isinstance(rcpts, str) else list(rcpts)
        try:
            with smtplib.SMTP("127.0.0.1", port_no, local_hostname=helo, timeout=60) as s:
                return self._transaction(s, mail_from, rcpts, data, helo, xclient, auth)
        except smtplib.SMTPResponseException as e:  # refused at connect or a 421 mid-session
            return e.smtp_code, e.smtp_error.decode(errors="replace")

    @staticmethod
    def _transaction(s, mail_from, rcpts, data, helo, xclient, auth):
        def text(msg):
            return msg.decode(errors="replace") if isinstance(msg, bytes) else msg

        s.ehlo(helo)
        if xclient:
            code, msg = s.docmd("XCLIENT", " ".join(f"{k}={_xtext(v)}" for k, v in xclient.items()))
            if code != 220:
                return code, text(msg)
            s.ehlo(xclient.get("HELO", helo))
        if auth:
            try:
                s.login(*auth)
            except smtplib.SMTPAuthenticationError as e:
                return e.smtp_code, text(e.smtp_error)
        code, msg = s.mail(mail_from)
        if code != 250:
            return code, text(msg)
        accepted, refusal = 0, None
        for rcpt in rcpts:
            code, msg = s.rcpt(rcpt)
            if code in (250, 251):
                accepted += 1
            elif refusal is None:
                refusal = (code, text(msg))
        if not accepted:
            return refusal
        if isinstance(data, str):
            data = data.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        try:
            code, msg = s.data(data)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, text(e.smtp_error)
        return code, text(msg)


@pytest.fixture
def postfix():
    """postfix(**PostfixInstance kwargs) -> started PostfixInstance; all stopped at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda **kw: stack.enter_context(PostfixInstance(**kw))
