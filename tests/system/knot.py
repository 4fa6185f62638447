"""A real authoritative DNS server for system tests: knotd on a loopback port.

    from knot import knot, knot_zone  # noqa: F401  (knot is a pytest fixture)

    def test_x(knot):
        addr, port = knot(ZONE_TEXT, "example.com")

    with knot_zone(ZONE_TEXT, "example.com") as (addr, port):
        ...

knotd runs in the foreground with a generated config, its rundir and storage in a temporary
directory; it is killed and the directory removed on exit, also when the test fails. It
listens on 127.0.0.1 only, on a free ephemeral port. Several zones: knot_zone({origin: text}).
knot_zone(..., dnssec=True) signs the zones (knot's automatic signing); trust_anchor(port,
origin) then returns the zone's KSK as a DNSKEY line for a trust-anchor file.
"""
import base64
import contextlib
import os
import pathlib
import random
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
START_TIMEOUT = 15.0

CONF = """\
server:
    rundir: "{dir}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

database:
    storage: "{dir}/db"

log:
  - target: "{dir}/knotd.log"
    any: info

template:
  - id: default
    storage: "{dir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off

zone:
{zones}"""


def _free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (knot listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free loopback port")


def _soa_query(name):
    qid = random.randrange(65536)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.strip(".").split(".") if p)
    return qid, struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 6, 1)


def _answers_soa(port, origin):
    """True when knot answers origin's SOA authoritatively (the zone is loaded)."""
    qid, q = _soa_query(origin)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(q, ("127.0.0.1", port))
            data = s.recv(4096)
        except OSError:
            return False
    if len(data) < 12:
        return False
    rid, flags, _, ancount = struct.unpack("!HHHH", data[:8])
    return rid == qid and flags & 0x0400 and flags & 0xF == 0 and ancount >= 1


def _zone_entries(zones, d, dnssec):
    out = []
    for i, (origin, text) in enumerate(zones.items()):
        path = d / f"zone{i}.zone"
        path.write_text(text)
        out.append(f'  - domain: "{origin.rstrip(".")}."\n    file: "{path}"\n')
        if dnssec:
            out.append("    dnssec-signing: on\n")
    return "".join(out)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def zone_apex(domain):
    """What a zone for domain needs besides the records under test: $TTL, SOA, NS and the name
    server's address (relative names: the zone's origin is domain)."""
    return (f"$TTL 300\n@ IN SOA ns.{domain}. hostmaster.{domain}. 1 3600 600 86400 300\n"
            f"@ IN NS ns.{domain}.\nns IN A 127.0.0.1\n")


@contextlib.contextmanager
def knot_zone(zone_text, origin=None, dnssec=False):
    """Serves zone_text as origin (or a {origin: text} dict) -> (addr, port)."""
    zones = zone_text if isinstance(zone_text, dict) else {origin: zone_text}
    if not os.path.exists(KNOTD):
        pytest.skip("knotd is not installed (Debian package knot)")
    d = pathlib.Path(tempfile.mkdtemp(prefix="rampart-knot-"))
    proc = None
    try:
        (d / "db").mkdir()
        port = _free_port()
        conf = d / "knot.conf"
        conf.write_text(CONF.format(dir=d, port=port, zones=_zone_entries(zones, d, dnssec)))
        proc = subprocess.Popen([KNOTD, "-c", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=open(d / "stderr", "w"))
        _wait_ready(proc, port, list(zones), d)
        yield "127.0.0.1", port
    finally:
        if proc:
            _stop(proc)
        shutil.rmtree(d, ignore_errors=True)


def _wait_ready(proc, port, origins, d):
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(origins)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"knotd exited {proc.returncode}:\n{_logs(d)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"knotd did not load {pending} in time:\n{_logs(d)}")
        if _answers_soa(port, pending[0]):
            pending.pop(0)
        else:
            time.sleep(0.05)


def _logs(d):
    return "".join(p.read_text(errors="replace") for p in (d / "stderr", d / "knotd.log")
                   if p.exists())


def _skip_name(data, pos):
    while data[pos] != 0:
        if data[pos] & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + data[pos]
    return pos + 1


def trust_anchor(port, origin):
    """The zone's key-signing keys as DNSKEY lines (ub_ctx_add_ta_file / unbound format)."""
    origin = origin.rstrip(".") + "."
    qid, q = _soa_query(origin)
    q = q[:-4] + struct.pack("!HH", 48, 1)  # DNSKEY IN
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(q, ("127.0.0.1", port))
        data = s.recv(65535)
    ancount = struct.unpack("!H", data[6:8])[0]
    pos = _skip_name(data, 12) + 4
    lines = []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        rdata = data[pos + 10:pos + 10 + rdlen]
        pos += 10 + rdlen
        flags, proto, alg = struct.unpack("!HBB", rdata[:4])
        if rtype == 48 and flags & 1:
            key = base64.b64encode(rdata[4:]).decode()
            lines.append(f"{origin} 3600 IN DNSKEY {flags} {proto} {alg} {key}\n")
    if not lines:
        raise RuntimeError(f"no KSK for {origin} on port {port}")
    return "".join(lines)


@pytest.fixture
def knot():
    """knot(zone_text, origin, dnssec=False) -> (addr, port); every server started is stopped
    at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda zone_text, origin=None, dnssec=False: stack.enter_context(
            knot_zone(zone_text, origin, dnssec))
