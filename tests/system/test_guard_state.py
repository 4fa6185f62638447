"""`rampart guard`'s state and privileges (issue 15, acceptance 4), each test in network
namespaces of its own (guardstate.py):

  - 5,000 stored bans come back into ban4/ban6 at start with the time they have left (never
    the full duration again), expired ones do not; after SIGTERM, again in the same namespace
    (the table was kept) and in a fresh one (no table);
  - a 100,000-prefix blocklist fills the block sets exactly; SIGHUP swaps in a new file;
  - with `guard.user: nobody` the daemon runs as nobody with no capability, its nftables
    writer child as nobody with CAP_NET_ADMIN alone, and a ban still works end to end;
  - the metrics after a ban;
  - keep-table: false removes the table when the daemon stops.

The state and logs live in a directory of the test's own that nobody can enter (pytest's
tmp_path cannot be: its parent is root-only). Every wait is bounded.
"""
import ipaddress
import os
import pathlib
import pwd
import random
import re
import shutil
import signal
import tempfile
import time

import pytest

import guardstate
from guardstate import Daemon, Netns, now_ms, scrape, table, table_exists
from guardutil import sh
from sshdutil import wait_until

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
BAN_WAIT = 15       # seconds: a bound for a wait, not a measurement
START_WAIT = 180    # seconds: loading 100,000 prefixes on a shared 2-core machine
METRICS_PORT = 9187  # in the test's own namespace: nothing else listens there
CAP_NET_ADMIN = 12


@pytest.fixture
def work():
    d = pathlib.Path(tempfile.mkdtemp(prefix="rampart-guard-state-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def lab(rampart, work):
    """Makes namespaces and daemons; stops and deletes them all in the finaliser."""

    class Lab:
        def __init__(self):
            self.nets, self.daemons, self.runs = [], [], 0

        def netns(self, tag):
            n = Netns(tag)
            self.nets.append(n)
            return n.name

        def daemon(self, ns, conf):
            self.runs += 1
            d = Daemon(rampart, ns, str(conf), str(work / f"guard-{self.runs}.log"))
            self.daemons.append(d)
            return d

        def guard_cmd(self, ns, conf, *args):
            return sh(rampart, "guard", *args, "-c", conf, ns=ns, check=False, timeout=60)

    lab = Lab()
    try:
        yield lab
    finally:
        for d in lab.daemons:
            d.close()
        for n in lab.nets:
            n.close()


def write_config(path, state, *, sources=(), blocklists=(), user=None, keep_table=None,
                 metrics_port=None):
    src = "".join(f"\n    - {{ type: file, path: {p} }}" for p in sources) or " []"
    text = (f"guard:\n  mode: enforce\n  rate: []\n  sources:{src}\n"
            "  ban: { threshold: 30, window: 30m, time: 2m }\n"
            f"  state: {state}\n")
    if blocklists:
        text += "  blocklists: [ " + ", ".join(str(b) for b in blocklists) + " ]\n"
    if user:
        text += f"  user: {user}\n"
    if keep_table is not None:
        text += f"  keep-table: {'true' if keep_table else 'false'}\n"
    if metrics_port:
        text += f"metrics:\n  listen: 127.0.0.1:{metrics_port}\n"
    path.write_text(text)
    path.chmod(0o644)
    return str(path)


# --- 1. restore of 5,000 bans -----------------------------------------------------------------

N_V4, N_V6, N_EXPIRED = 3000, 2000, 300
EXPIRY_SLACK_S = 3


def unique(rng, n, make, taken):
    out = []
    while len(out) < n:
        p = make(rng)
        if p not in taken:
            taken.add(p)
            out.append(p)
    return out


def make_v4(rng):
    return ipaddress.ip_network(f"198.{18 + rng.randrange(2)}.{rng.randrange(256)}."
                                f"{rng.randrange(1, 255)}/32").compressed


def make_v6(rng):
    # every hextet before the /64 non-zero: the text has one form only
    return ipaddress.ip_network(f"2001:db8:{rng.randrange(1, 0x10000):x}:"
                                f"{rng.randrange(1, 0x10000):x}::/64").compressed


def stored_bans(now):
    """(rows for offenders, {prefix: expires_ms} of the active ones). Every timed ban started
    well before now (created_ms + full duration = expires_ms, full duration at least a minute
    longer than the time left), so an expiry restarted from the full duration shows."""
    rng = random.Random(15)
    taken = set()
    rows, active = [], {}
    for family, n, make in ((4, N_V4, make_v4), (6, N_V6, make_v6)):
        for i, prefix in enumerate(unique(rng, n, make, taken)):
            if i % 12 == 0:
                expires, created = 0, now - rng.randrange(HOUR_MS, 30 * DAY_MS)
            else:
                left = rng.randrange(HOUR_MS, 10 * DAY_MS)
                expires = now + left
                created = expires - (left + rng.randrange(60_000, 2 * DAY_MS))
            origin = "manual" if i % 7 == 0 else "auto"
            rows.append((prefix, family, 1 + i % 5, created, expires, origin,
                         f"sshd-invalid-user danger={30 + i % 40}"))
            active[prefix] = expires
    for i in range(N_EXPIRED):
        family, make = (4, make_v4) if i % 2 else (6, make_v6)
        prefix = unique(rng, 1, make, taken)[0]
        expires = now - rng.randrange(1000, 10 * DAY_MS)
        rows.append((prefix, family, 2, expires - HOUR_MS, expires, "auto", "expired"))
    rng.shuffle(rows)
    return rows, active


def element(prefix):
    """A stored prefix as an element of ban4/ban6: the address (IPv6: the /64's network)."""
    return prefix.split("/")[0]


def check_restored(d, ns, active):
    m = re.search(r"guard: restored bans=(\d+) ipv4=(\d+) ipv6=(\d+)", d.text())
    assert m, f"no restore logged:\n{d.text()[-2000:]}"
    assert tuple(map(int, m.groups())) == (N_V4 + N_V6, N_V4, N_V6)

    before = now_ms()
    sets = table(ns)
    after = now_ms()
    want4 = {element(p) for p in active if ":" not in p}
    want6 = {element(p) for p in active if ":" in p}
    assert set(sets["ban4"]) == want4, (len(sets["ban4"]), sorted(set(sets["ban4"]) ^ want4)[:10])
    assert set(sets["ban6"]) == want6, (len(sets["ban6"]), sorted(set(sets["ban6"]) ^ want6)[:10])
    assert not sets.get("bannet4") and not sets.get("bannet6")
    wrong = []
    for prefix, expires_ms in active.items():
        info = sets["ban6" if ":" in prefix else "ban4"][element(prefix)]
        if expires_ms == 0:
            if info is not None:
                wrong.append(f"{prefix}: permanent, but nft has timeout/expires {info}")
            continue
        if info is None or info[1] is None:
            wrong.append(f"{prefix}: {expires_ms - after} ms left, but no expiry in nft")
            continue
        # nft's "expires" is the whole seconds left when nft read the set, somewhere between
        # before and after; the slack covers that rounding and the time between the query and
        # this check, not the daemon's speed (the kernel counts down from the stored expiry)
        lo = (expires_ms - after) / 1000 - EXPIRY_SLACK_S
        hi = (expires_ms - before) / 1000 + EXPIRY_SLACK_S
        if not lo <= info[1] <= hi:
            wrong.append(f"{prefix}: nft expires in {info[1]} s, stored {lo:.0f}..{hi:.0f} s")
    assert not wrong, f"{len(wrong)} wrong expiries, first: " + "\n".join(wrong[:10])


def test_restore_5000_bans(lab, work):
    ns = lab.netns("r1")
    state = str(work / "guard.db")
    conf = write_config(work / "rampart.yaml", state)
    r = lab.guard_cmd(ns, conf, "list")
    assert r.returncode == 0, r.stderr
    assert os.path.exists(state)
    rows, active = stored_bans(now_ms())
    guardstate.store_insert(state, rows)

    d = lab.daemon(ns, conf).start()
    check_restored(d, ns, active)
    assert d.stop() == 0, d.text()[-2000:]

    # the same namespace: the kept table still holds the bans when the daemon starts again
    assert table_exists(ns), "keep-table is true by default: the table must stay"
    d = lab.daemon(ns, conf).start()
    check_restored(d, ns, active)
    assert d.stop() == 0, d.text()[-2000:]

    # a fresh namespace: no table at all, every ban comes from the store
    fresh = lab.netns("r2")
    assert not table_exists(fresh)
    d = lab.daemon(fresh, conf).start()
    check_restored(d, fresh, active)
    assert d.stop() == 0, d.text()[-2000:]


# --- 2. a 100,000-prefix blocklist and SIGHUP ---------------------------------------------------

def blocklist(seed, counts):
    """(file text, {set name: {element}}, prefix count). counts: {(family, len): n}. The
    prefixes never overlap: each family and length has address space of its own, so no
    merging changes the count. Comment lines, blank lines, "; SBL" comments and two bad
    lines as a real DROP list may have them."""
    rng = random.Random(seed)
    # first octet (IPv4) or second hextet (IPv6) ranges no other length uses
    spaces = {(4, 32): (60, 70), (4, 24): (40, 50), (4, 20): (35, 40), (4, 16): (11, 31),
              (6, 48): (0xdb8, 0xdb9), (6, 56): (0xdba, 0xdbb), (6, 64): (0xdb9, 0xdba)}
    sets, lines = {}, []
    for (family, plen), n in counts.items():
        lo, hi = spaces[(family, plen)]
        names = set()
        while len(names) < n:
            if family == 4:
                v = (rng.randrange(lo, hi) << 24) | rng.getrandbits(24)
                net = ipaddress.ip_network((v >> (32 - plen) << (32 - plen), plen))
            else:
                tail = [rng.randrange(1, 0x10000) for _ in range((plen - 32) // 16 + 1)]
                v = (0x2001 << 112) | (rng.randrange(lo, hi) << 96)
                for k, h in enumerate(tail):
                    v |= h << (80 - 16 * k)
                v = v >> (128 - plen) << (128 - plen)
                net = ipaddress.ip_network((v, plen))
            names.add(net)
        sets[f"block{family}_{plen}"] = {str(n.network_address) for n in names}
        for k, net in enumerate(sorted(names)):
            text = (str(net.network_address) if plen == 32 and k % 2 else net.compressed)
            lines.append(f"{text} ; SBL{rng.randrange(100000, 999999)}" if k % 3 else text)
    rng.shuffle(lines)
    total = len(lines)
    for k in range(0, len(lines), 5000):
        lines.insert(k, "" if k % 10000 else f"; Spamhaus DROP List {seed}, part {k}")
    lines.insert(len(lines) // 3, "999.1.2.3/24 ; SBL000001")
    lines.insert(2 * len(lines) // 3, "not-an-address ; SBL000002")
    return "\n".join(lines) + "\n", sets, total


def block_sets(ns):
    return {name: set(elems) for name, elems in table(ns).items() if name.startswith("block")}


def test_blocklist_100000_and_sighup(lab, work):
    ns = lab.netns("b")
    path = work / "drop.txt"
    text, want, total = blocklist(1, {(4, 32): 60000, (4, 24): 25000, (4, 16): 5000,
                                      (6, 48): 5000, (6, 64): 5000})
    assert total == 100000
    path.write_text(text)
    conf = write_config(work / "rampart.yaml", str(work / "guard.db"), blocklists=[path])
    d = lab.daemon(ns, conf).start(timeout=START_WAIT)
    loaded = d.lines("guard: blocklists loaded")
    assert loaded and "files=1 prefixes=100000" in loaded[-1], d.text()[-2000:]
    skipped = d.lines("guard: blocklist lines skipped")
    assert skipped and "count=2" in skipped[-1], d.text()[-2000:]
    got = block_sets(ns)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == want[name], (name, len(got[name]), len(want[name]))
    assert sum(map(len, got.values())) == 100000

    # a different list: other lengths (/16 gone, /20 and /56 new), other prefixes
    text2, want2, total2 = blocklist(2, {(4, 32): 30000, (4, 24): 10000, (4, 20): 2000,
                                         (6, 56): 3000, (6, 64): 1000})
    tmp = work / "drop.txt.new"
    tmp.write_text(text2)
    os.replace(tmp, path)
    d.signal(signal.SIGHUP)
    assert d.wait_lines("guard: reloaded", 1, START_WAIT), d.text()[-2000:]
    loaded = d.lines("guard: blocklists loaded")
    assert len(loaded) == 2 and f"files=1 prefixes={total2}" in loaded[-1], d.text()[-2000:]
    got = block_sets(ns)
    assert got.keys() == want2.keys()
    for name in want2:
        assert got[name] == want2[name], (name, len(got[name]), len(want2[name]))
    assert sum(map(len, got.values())) == total2

    # a blocklist that cannot be read: the reload fails whole, the running list stays
    path.unlink()
    d.signal(signal.SIGHUP)
    assert d.wait_lines("guard reload failed", 1, START_WAIT), d.text()[-2000:]
    assert "blocklist" in d.lines("guard reload failed")[-1]
    assert block_sets(ns) == got
    assert d.stop() == 0, d.text()[-2000:]


# --- 3 and 4. user: nobody; the metrics after a ban ---------------------------------------------

ATTACKER = "10.77.5.9"
FAILURES = 3  # 10 danger each: the third reaches the threshold of 30


def caps(status, key):
    return int(status[key], 16)


def start_as_nobody(lab, work, tag):
    """The daemon as user nobody following auth.log, with metrics; (daemon, ns, paths)."""
    ns = lab.netns(tag)
    state_dir = work / "state"
    state_dir.mkdir(mode=0o755)
    state = state_dir / "guard.db"
    authlog = work / "auth.log"
    authlog.touch()
    authlog.chmod(0o644)
    conf = write_config(work / "rampart.yaml", str(state), sources=[authlog], user="nobody",
                        metrics_port=METRICS_PORT)
    d = lab.daemon(ns, conf).start(ready="running as user=nobody")
    return d, ns, state, authlog


def fail_logins(authlog, addr, n):
    with open(authlog, "a") as f:
        for _ in range(n):
            stamp = time.strftime("%b %e %H:%M:%S")
            f.write(f"{stamp} host sshd[123]: Failed password for invalid user x from {addr} "
                    "port 1234 ssh2\n")


def wait_banned(d, ns, addr):
    ok = wait_until(lambda: addr in table(ns).get("ban4", {}), BAN_WAIT, step=0.2)
    assert ok, f"{addr} not in ban4 within {BAN_WAIT} s:\n{d.text()[-2000:]}"


def test_runs_as_nobody_writer_keeps_net_admin(lab, work):
    nobody = pwd.getpwnam("nobody")
    d, ns, state, authlog = start_as_nobody(lab, work, "u")

    main = guardstate.proc_status(d.pid)
    assert main.get("Name") == "rampart", main
    assert main["Uid"].split() == [str(nobody.pw_uid)] * 4, main["Uid"]
    assert main["Gid"].split() == [str(nobody.pw_gid)] * 4, main["Gid"]
    assert caps(main, "CapEff") == 0 and caps(main, "CapPrm") == 0, main

    writers = [p for p in guardstate.children(d.pid)
               if guardstate.proc_status(p).get("Name") == "rampart"]
    assert len(writers) == 1, writers
    w = guardstate.proc_status(writers[0])
    assert caps(w, "CapEff") == 1 << CAP_NET_ADMIN, w["CapEff"]
    assert caps(w, "CapPrm") == 1 << CAP_NET_ADMIN, w["CapPrm"]
    assert w["Uid"].split() == [str(nobody.pw_uid)] * 4, w["Uid"]

    fail_logins(authlog, ATTACKER, FAILURES)
    wait_banned(d, ns, ATTACKER)
    assert d.lines(f"guard: banned source={ATTACKER}"), d.text()[-2000:]
    assert os.stat(state).st_uid == nobody.pw_uid
    assert os.stat(state.parent).st_uid == nobody.pw_uid
    assert d.stop() == 0, d.text()[-2000:]


def test_metrics_after_a_ban(lab, work):
    d, ns, state, authlog = start_as_nobody(lab, work, "m")
    before = scrape(ns, METRICS_PORT)
    assert before["rampart_guard_bans_total"] == 0
    assert before['rampart_guard_active_bans{family="ipv4"}'] == 0

    fail_logins(authlog, ATTACKER, FAILURES)
    wait_banned(d, ns, ATTACKER)
    m = scrape(ns, METRICS_PORT)
    assert m["rampart_guard_bans_total"] >= 1
    assert m["rampart_guard_ban_errors_total"] == 0
    assert m['rampart_guard_active_bans{family="ipv4"}'] == len(table(ns)["ban4"]) == 1
    assert m['rampart_guard_active_bans{family="ipv6"}'] == 0
    assert m["rampart_guard_lines_total"] == FAILURES
    assert m["rampart_guard_events_total"] == FAILURES
    assert d.stop() == 0, d.text()[-2000:]


# --- 5. keep-table: false ------------------------------------------------------------------------

def test_keep_table_false_removes_the_table(lab, work):
    ns = lab.netns("k")
    conf = write_config(work / "rampart.yaml", str(work / "guard.db"), keep_table=False)
    d = lab.daemon(ns, conf).start()
    assert table_exists(ns)
    assert d.stop() == 0, d.text()[-2000:]
    assert not table_exists(ns), f"table inet rampart is still there:\n{d.text()[-2000:]}"


# --- 6. escalation: each repeat ban longer, then permanent ----------------------------------------

def test_repeat_bans_escalate_then_permanent(lab, work, rampart):
    """ban.time 2s, escalate 2.0, permanent-after 3: the same source's bans last 2 s, 4 s, then
    for good; the store's count follows, and a ban in force is not counted again."""
    ns = lab.netns("e")
    authlog = work / "auth.log"
    authlog.touch()
    conf = work / "rampart.yaml"
    conf.write_text("guard:\n  mode: enforce\n  rate: []\n"
                    f"  sources: [ {{ type: file, path: {authlog} }} ]\n"
                    "  ban: { threshold: 30, window: 30m, time: 2s, escalate: 2.0, "
                    "permanent-after: 3 }\n"
                    f"  state: {work / 'guard.db'}\n")
    d = lab.daemon(ns, str(conf)).start()
    for count, length, timeout in [(1, "2s", 2), (2, "4s", 4), (3, "permanent", None)]:
        fail_logins(authlog, ATTACKER, FAILURES)
        assert d.wait_lines(f"count={count} ", 1, BAN_WAIT), d.text()[-2000:]
        line = d.lines(f"count={count} ")[-1]
        assert f"banned source={ATTACKER} for={length} count={count}" in line, line
        wait_banned(d, ns, ATTACKER)
        info = table(ns)["ban4"][ATTACKER]
        assert (info[0] if info else None) == timeout, (count, info)
        if count == 1:
            # more failures while the ban is in force start no second ban
            fail_logins(authlog, ATTACKER, FAILURES)
        if timeout:
            ok = wait_until(lambda: ATTACKER not in table(ns).get("ban4", {}), BAN_WAIT,
                            step=0.2)
            assert ok, f"the {length} ban did not end:\n{d.text()[-2000:]}"
    assert len(d.lines("guard: banned source=")) == 3, d.text()[-2000:]
    listed = sh(rampart, "guard", "list", "--json", "-c", str(conf)).stdout
    assert '"count":3' in listed and '"expires_ms":null' in listed, listed
    assert d.stop() == 0, d.text()[-2000:]


# --- 7. a stored ban further out than nftables holds -------------------------------------------

def test_ban_beyond_nftables_limit_still_restores(lab, work):
    """A row expiring in 20 years (an old version's or a hand-made one) is restored with the
    longest timeout nftables takes (10 years), not refused: one row must not stop the start."""
    ns = lab.netns("far")
    state = str(work / "guard.db")
    conf = write_config(work / "rampart.yaml", state)
    assert lab.guard_cmd(ns, conf, "list").returncode == 0
    now = now_ms()
    guardstate.store_insert(state, [("198.18.7.7/32", 4, 1, now, now + 20 * 365 * DAY_MS,
                                     "manual", "far out")])
    d = lab.daemon(ns, conf).start()
    assert "guard: restored bans=1 " in d.text(), d.text()[-2000:]
    timeout = table(ns)["ban4"]["198.18.7.7"][0]
    assert 3649 * 86400 <= timeout <= 3650 * 86400, timeout
    assert d.stop() == 0, d.text()[-2000:]
