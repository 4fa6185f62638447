"""`rampart guard` bans shared across a fleet through PostgreSQL (issue 19), in namespaces of
the test's own (fleetutil.py): a bridge joins PostgreSQL 15 (db, 10.98.0.10) and three guards
(a, b, c: 10.98.0.1-3, each with a file source, a TCP listener on port 22 and metrics), and an
attacker namespace (10.98.0.66, and an innocent 10.98.0.67).

  1. a brute force against a is banned on a, then on b and c; the attacker's new connections
     to b and c fail, another address still connects; `guard list --json` on b names "a";
     `guard ban --fleet` and `guard unban --fleet` on a reach b and c;
  2. PostgreSQL stopped for 30 s (c restarted meanwhile: it starts without the database)
     while a bans 50 sources and b 50 others: after it is back every guard holds the same
     100 bans, the history has each (machine, prefix) once, and every element expires when
     the banning machine's store says;
  3. rows forged into the history (bad addresses, bad expiries, whitelisted, loopback, own
     and logged-in addresses, a kind not accepted, a machine not accepted) are logged and
     never applied, while a later good row is; SQL injection text in reasons and machine
     names stays data; what was applied restores at the next start;
  4. 10,000 rows from peer a inserted in one statement all reach b's ban4 (the time is
     printed; the figure belongs to bench/guard/fleet);
  5. b stopped while a bans 5 more: b restores its own store first, then catches up.

Every wait is bounded; its bound is a limit, never a measurement.
"""
import json
import pathlib
import re
import shutil
import tempfile
import time

import pytest

import fleetutil
from fleetutil import ATTACKER, HOSTS, INNOCENT, Fleet, ban4, wait_elements
from guardstate import now_ms, scrape
from guardutil import drive, sh
from sshdutil import wait_until

WAIT = 30           # seconds: one ban crossing the fleet (a bound, not a measurement)
CONVERGE = 120      # seconds: the reconnect backoff (up to 10 s) plus the catch-up
BIG_WAIT = 180      # seconds: 10,000 rows on a shared 2-core machine
EXPIRY_SLACK_S = 3
HOUR_MS = 3600 * 1000


@pytest.fixture
def work():
    d = pathlib.Path(tempfile.mkdtemp(prefix="rampart-guard-fleet-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_fleet(rampart, work):
    """make_fleet(options=None) -> a Fleet, stopped and removed in the finaliser."""
    made = []

    def make(options=None):
        f = Fleet(rampart, work, f"f{len(made)}", options)
        made.append(f)
        return f

    try:
        yield make
    finally:
        for f in made:
            f.close()


def addrs(third, n, first=1):
    """n distinct addresses 10.<third>.x.y (outside the fleet's subnet and whitelist)."""
    return [f"10.{third}.{(first + i) // 250}.{(first + i) % 250 + 1}" for i in range(n)]


def history(pg, where="TRUE"):
    return pg.query("SELECT id, machine, seq, action, kind, prefix, reason, created_ms, "
                    f"expires_ms FROM rampart_guard_history WHERE {where} ORDER BY id")


def list_json(fleet, m, *extra):
    r = fleet.guard_cmd(m, "list", "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def connects(fleet, src, targets, timeout=1.5):
    """{target: True if a new TCP connection from src to target's port 22 was accepted}."""
    jobs = [{"key": t, "src": src, "dst": HOSTS[t], "port": 22, "steps": [[0, timeout]]}
            for t in targets]
    return {k: v == "P" for k, v in drive(fleet.ns("x"), jobs).items()}


def insert_rows(pg, rows):
    """rows of (machine, seq, action, kind, prefix, reason, created_ms, expires_ms) inserted
    by the superuser as a forged peer would; every value a psql variable (quoted by psql)."""
    for i, r in enumerate(rows):
        names = ("machine", "seq", "action", "kind", "prefix", "reason", "created", "expires")
        pg.query("INSERT INTO rampart_guard_history (machine, seq, action, kind, prefix, "
                 "reason, created_ms, expires_ms) VALUES (:'machine', :'seq', :'action', "
                 ":'kind', :'prefix', :'reason', :'created', :'expires')",
                 **dict(zip(names, map(str, r))))


# --- 1. one ban, every server ---------------------------------------------------------------------

def test_ban_on_a_reaches_b_and_c(make_fleet):
    fleet = make_fleet()
    fleet.start_all()
    assert connects(fleet, ATTACKER, ["a", "b", "c"]) == {"a": True, "b": True, "c": True}

    fleet.ban_on("a", [ATTACKER])
    for m in ("a", "b", "c"):
        missing = wait_elements(fleet.ns(m), [ATTACKER], WAIT)
        assert not missing, f"{ATTACKER} not in {m}'s ban4:\n{fleet.daemons[m].text()[-2000:]}"
    assert fleet.daemons["a"].lines(f"guard: banned source={ATTACKER}")

    assert connects(fleet, ATTACKER, ["a", "b", "c"]) == {"a": False, "b": False, "c": False}
    assert connects(fleet, INNOCENT, ["a", "b", "c"]) == {"a": True, "b": True, "c": True}

    listed = {b["prefix"]: b for b in list_json(fleet, "b")}
    ban = listed.get(f"{ATTACKER}/32")
    assert ban, listed
    assert ban["machine"] == "a" and ban["origin"] == "fleet:a", ban
    own = {b["prefix"]: b for b in list_json(fleet, "a")}[f"{ATTACKER}/32"]
    assert own["machine"] is None and own["origin"] == "auto", own
    assert ban["reason"] == own["reason"] and "danger=30" in own["reason"], (ban, own)
    # the expiry is the deciding machine's, not restarted on the peer
    assert ban["expires_ms"] == own["expires_ms"], (ban, own)

    rows = history(fleet.pg)
    assert [(r[1], r[3], r[4], r[5]) for r in rows] == [("a", "ban", "ban", f"{ATTACKER}/32")]
    fleet_list = {b["prefix"]: b for b in list_json(fleet, "c", "--fleet")}
    assert fleet_list[f"{ATTACKER}/32"]["machine"] == "a", fleet_list

    for m in ("b", "c"):
        met = scrape(fleet.ns(m), fleetutil.METRICS_PORT)
        assert met["rampart_guard_fleet_connected"] == 1, met
        assert met["rampart_guard_fleet_received_total"] == 1, met
        assert met["rampart_guard_fleet_applied_total"] == 1, met
        assert met["rampart_guard_fleet_rejected_total"] == 0, met
    met = scrape(fleet.ns("a"), fleetutil.METRICS_PORT)
    assert met["rampart_guard_fleet_published_total"] == 1, met
    assert met["rampart_guard_fleet_received_total"] == 0, met

    # by hand, everywhere: `guard ban --fleet` then `guard unban --fleet` on a
    manual = "10.96.7.7"
    r = fleet.guard_cmd("a", "ban", manual, "--permanent", "--fleet")
    assert r.returncode == 0 and "shared with the fleet as a" in r.stdout, (r.stdout, r.stderr)
    for m in ("b", "c"):
        assert not wait_elements(fleet.ns(m), [manual], WAIT), fleet.daemons[m].text()[-2000:]
        assert ban4(fleet.ns(m))[manual] is None  # permanent: no timeout
    for addr in (manual, ATTACKER):
        r = fleet.guard_cmd("a", "unban", addr, "--fleet")
        assert r.returncode == 0, (r.stdout, r.stderr)
    for m in ("a", "b", "c"):
        ok = wait_until(lambda: not {manual, ATTACKER} & set(ban4(fleet.ns(m))), WAIT, step=0.3)
        assert ok, (m, ban4(fleet.ns(m)), fleet.daemons[m].text()[-2000:])
    assert connects(fleet, ATTACKER, ["b", "c"]) == {"b": True, "c": True}
    assert [(r[1], r[3], r[5]) for r in history(fleet.pg)][1:] == [
        ("a", "ban", f"{manual}/32"), ("a", "unban", f"{manual}/32"),
        ("a", "unban", f"{ATTACKER}/32")]
    for m in HOSTS:
        assert fleet.daemons[m].stop() == 0, fleet.daemons[m].text()[-2000:]


# --- 2. the database down for 30 s ----------------------------------------------------------------

def stored_expiry(fleet, m):
    """{prefix: expires_ms} of m's own bans (its store, through `guard list --json`)."""
    return {b["prefix"]: b["expires_ms"] for b in list_json(fleet, m) if b["machine"] is None}


def check_expiries(fleet, ns, expected):
    """Every element of ns's ban4 expires when expected says (ms since the epoch)."""
    before = now_ms()
    got = ban4(ns)
    after = now_ms()
    wrong = []
    for prefix, expires_ms in expected.items():
        info = got.get(prefix.split("/")[0])
        if not info or info[1] is None:
            wrong.append(f"{prefix}: no expiry in nft ({info})")
            continue
        lo = (expires_ms - after) / 1000 - EXPIRY_SLACK_S
        hi = (expires_ms - before) / 1000 + EXPIRY_SLACK_S
        if not lo <= info[1] <= hi:
            wrong.append(f"{prefix}: nft expires in {info[1]} s, stored {lo:.0f}..{hi:.0f} s")
    return wrong


def test_database_down_30s_then_converge(make_fleet):
    fleet = make_fleet()
    fleet.start_all()
    on_a, on_b = addrs(201, 50), addrs(202, 50)

    fleet.pg.stop()
    stopped = time.monotonic()
    for m in HOSTS:
        assert fleet.daemons[m].wait_lines("guard: fleet disconnected", 1, WAIT), \
            fleet.daemons[m].text()[-2000:]
    # a guard starts without the database: the fleet is never a dependency
    assert fleet.daemons["c"].stop() == 0
    c = fleet.start("c", connected=False)
    assert "guard: fleet connected" not in c.text()
    fleet.ban_on("a", on_a)
    fleet.ban_on("b", on_b)
    # local blocking goes on without the database
    assert not wait_elements(fleet.ns("a"), on_a, WAIT), fleet.daemons["a"].text()[-2000:]
    assert not wait_elements(fleet.ns("b"), on_b, WAIT), fleet.daemons["b"].text()[-2000:]
    left = 30 - (time.monotonic() - stopped)
    if left > 0:
        time.sleep(left)
    # nothing crossed while the database was down
    assert not set(on_a) & set(ban4(fleet.ns("b"))) and not set(ban4(fleet.ns("c")))
    fleet.pg.start()

    want = set(on_a) | set(on_b)
    for m in HOSTS:
        missing = wait_elements(fleet.ns(m), want, CONVERGE, step=1)
        assert not missing, (f"{m} lacks {len(missing)} of the 100 bans, e.g. "
                             f"{sorted(missing)[:5]}:\n{fleet.daemons[m].text()[-2000:]}")
    for m in HOSTS:
        assert set(ban4(fleet.ns(m))) == want, m

    dup = fleet.pg.query("SELECT machine, prefix, count(*) FROM rampart_guard_history "
                         "GROUP BY machine, prefix HAVING count(*) <> 1")
    assert dup == [], dup
    per = dict(fleet.pg.query("SELECT machine, count(*) FROM rampart_guard_history "
                              "GROUP BY machine"))
    assert per == {"a": "50", "b": "50"}, per
    db = {(r[1], r[5]): int(r[8]) for r in history(fleet.pg)}

    expected = {}
    for m in ("a", "b"):
        own = stored_expiry(fleet, m)
        assert len(own) == 50, (m, len(own))
        for prefix, expires_ms in own.items():
            assert db[(m, prefix)] == expires_ms, (m, prefix, db[(m, prefix)], expires_ms)
        expected.update(own)
    for m in HOSTS:
        wrong = check_expiries(fleet, fleet.ns(m), expected)
        assert not wrong, f"{m}: {len(wrong)} wrong expiries:\n" + "\n".join(wrong[:10])
    for m in ("a", "b"):
        met = scrape(fleet.ns(m), fleetutil.METRICS_PORT)
        assert met["rampart_guard_fleet_reconnects_total"] >= 1, (m, met)
        assert met["rampart_guard_fleet_connected"] == 1, (m, met)
        assert met["rampart_guard_fleet_applied_total"] == 50, (m, met)
        assert met["rampart_guard_fleet_published_total"] == 50, (m, met)
    met = scrape(fleet.ns("c"), fleetutil.METRICS_PORT)
    assert met["rampart_guard_fleet_applied_total"] == 100, met


# --- 3. rows that must not be applied -----------------------------------------------------------

TRUSTED = "10.96.3.3"
INJECT_REASON = "x'); DROP TABLE rampart_guard_history; --"
INJECT_MACHINE = "evil'); DROP TABLE rampart_guard_bans; --"


def test_bad_rows_never_applied(make_fleet):
    # b applies only a's and c's bans; c no permanent ones
    fleet = make_fleet({"b": {"peers": ["a", "c"]}, "c": {"accept": ["ban"]}})
    fleet.start_all()
    for m in ("b", "c"):  # a source that logged in on b and c is trusted there
        fleetutil.append(fleet.authlog[m], f"{time.strftime('%b %e %H:%M:%S')} host "
                         f"sshd[123]: Accepted password for x from {TRUSTED} port 22 ssh2\n")
        assert fleet.daemons[m].wait_lines(f"trusting source={TRUSTED}", 1, WAIT), m
    now = now_ms()
    exp = now + HOUR_MS
    bad_addr = ["300.1.2.3/32", "1.2.3.4/33", "1.2.3.4/32'; DROP TABLE rampart_guard_history; --",
                "10.96.0.1", "10.96.0.1/24", ""]
    rows = [("evil", 100 + i, "ban", "ban", p, "forged", now, exp) for i, p in enumerate(bad_addr)]
    rows += [
        ("a", 1000, "ban", "ban", "192.0.2.5/32", "whitelisted", now, exp),
        ("a", 1001, "ban", "ban", "192.0.0.0/16", "covers the whitelist", now, exp),
        ("a", 1002, "ban", "ban", "127.0.0.1/32", "loopback", now, exp),
        ("a", 1003, "ban", "ban", "10.98.0.3/32", "c's own address", now, exp),
        ("a", 1004, "ban", "permanent", "10.96.1.1/32", "permanent", now, 0),
        ("a", 1005, "ban", "ban", f"{TRUSTED}/32", "logged in", now, exp),
        # a timed ban without an expiry (a permanent one past accept: [ban]), one past what
        # nftables takes (it failed its whole batch, then every start), a permanent one with
        # an expiry: none is what a guard writes
        ("a", 1006, "ban", "ban", "10.96.4.4/32", "no expiry", now, 0),
        ("a", 1007, "ban", "ban", "10.96.4.5/32", "20 years", now, now + 20 * 365 * 24 * HOUR_MS),
        ("a", 1008, "ban", "permanent", "10.96.4.6/32", "permanent, expiring", now, exp),
        # wider than one provider: one peer must not drop whole continents
        ("a", 1009, "ban", "ban", "160.0.0.0/3", "a continent", now, exp),
        ("a", 1010, "ban", "ban", "2000::/3", "the IPv6 internet", now, exp),
        ("evil", 1, "ban", "ban", "10.96.2.1/32", INJECT_REASON, now, exp),
        (INJECT_MACHINE, 1, "ban", "ban", "10.96.2.2/32", "machine name", now, exp),
    ]
    insert_rows(fleet.pg, rows)
    # the good row last: ids are in commit order, so once it is applied every row above was seen
    insert_rows(fleet.pg, [("a", 2000, "ban", "ban", "10.96.9.9/32", "good", now, exp)])
    for m in ("b", "c"):
        assert not wait_elements(fleet.ns(m), ["10.96.9.9"], WAIT), fleet.daemons[m].text()[-2000:]
    assert not wait_elements(fleet.ns("a"), ["10.96.2.1", "10.96.2.2"], WAIT)

    sets = {m: set(ban4(fleet.ns(m))) for m in HOSTS}
    assert sets["a"] == {"10.96.2.1", "10.96.2.2"}, sets["a"]
    assert sets["b"] == {"10.96.9.9", "10.96.1.1", "10.98.0.3"}, sets["b"]
    assert sets["c"] == {"10.96.9.9", "10.96.2.1", "10.96.2.2"}, sets["c"]

    def why(m, prefix):
        out = []
        for line in fleet.daemons[m].lines("guard: fleet row not applied"):
            g = re.search(r'prefix="(.*)" why=(\S+)', line)
            if g and g.group(1) == prefix:
                out.append(g.group(2))
        return out

    for m in HOSTS:
        for p in ["300.1.2.3/32", "1.2.3.4/33", "10.96.0.1", "10.96.0.1/24", ""]:
            assert why(m, p) == ["bad-address"], (m, p, fleet.daemons[m].text()[-3000:])
        injected = [line for line in fleet.daemons[m].lines("guard: fleet row not applied")
                    if "DROP TABLE rampart_guard_history" in line]
        assert len(injected) == 1 and "why=bad-address" in injected[0], (m, injected)
    for m in ("b", "c"):
        assert why(m, "192.0.2.5/32") == ["whitelisted-or-trusted"], m
        assert why(m, "192.0.0.0/16") == ["whitelisted-or-trusted"], m
        assert why(m, "127.0.0.1/32") == ["whitelisted-or-trusted"], m
        assert why(m, f"{TRUSTED}/32") == ["whitelisted-or-trusted"], m
        for p in ("10.96.4.4/32", "10.96.4.5/32", "10.96.4.6/32"):
            assert why(m, p) == ["bad-expiry"], (m, p)
        for p in ("160.0.0.0/3", "2000::/3"):
            assert why(m, p) == ["too-wide"], (m, p)
    assert why("c", "10.98.0.3/32") == ["whitelisted-or-trusted"]
    assert why("c", "10.96.1.1/32") == ["kind-not-accepted"]
    assert why("b", "10.96.2.1/32") == ["machine-not-accepted"]
    assert why("b", "10.96.2.2/32") == ["machine-not-accepted"]
    assert why("a", "192.0.2.5/32") == []  # its own rows are never fetched back

    met = {m: scrape(fleet.ns(m), fleetutil.METRICS_PORT) for m in HOSTS}
    bad = len(bad_addr)
    assert met["a"]["rampart_guard_fleet_rejected_total"] == bad, met["a"]
    # bad addresses; whitelist, loopback, trusted; expiries; too wide; and each one's own
    assert met["b"]["rampart_guard_fleet_rejected_total"] == bad + 4 + 3 + 2 + 2, met["b"]
    assert met["c"]["rampart_guard_fleet_rejected_total"] == bad + 4 + 3 + 2 + 2, met["c"]

    # the injection text is data: tables intact, values back as written
    assert fleet.pg.query("SELECT count(*) FROM rampart_guard_history") == [(str(len(rows) + 1),)]
    assert fleet.pg.query("SELECT count(*) FROM rampart_guard_bans") == [(str(len(rows) + 1),)]
    assert fleet.pg.query("SELECT reason FROM rampart_guard_history WHERE prefix = "
                          "'10.96.2.1/32'") == [(INJECT_REASON,)]
    assert fleet.pg.query("SELECT machine FROM rampart_guard_bans WHERE prefix = "
                          "'10.96.2.2/32'") == [(INJECT_MACHINE,)]
    listed = {b["prefix"]: b for b in list_json(fleet, "c")}
    assert listed["10.96.2.1/32"]["reason"] == INJECT_REASON, listed
    assert listed["10.96.2.2/32"]["machine"] == INJECT_MACHINE, listed
    fl = {(b["machine"], b["prefix"]): b for b in list_json(fleet, "b", "--fleet")}
    assert fl[("evil", "10.96.2.1/32")]["reason"] == INJECT_REASON, fl
    assert (INJECT_MACHINE, "10.96.2.2/32") in fl, fl
    for m in HOSTS:
        assert fleet.daemons[m].proc.poll() is None, fleet.daemons[m].text()[-2000:]
    # what b applied restores at its next start (no stored ban nftables refuses)
    assert fleet.daemons["b"].stop() == 0
    b = fleet.start("b")
    assert "guard: restored bans=3 " in b.text(), b.text()[-2000:]
    assert set(ban4(fleet.ns("b"))) == sets["b"]


# --- 4. 10,000 fleet bans on a peer -------------------------------------------------------------

N_BIG = 10000

BIG_INSERT = """
INSERT INTO rampart_guard_history (machine, seq, action, kind, prefix, reason, created_ms,
                                   expires_ms)
SELECT 'a', 1000000 + i, 'ban', 'ban',
       format('10.%s.%s.%s/32', 100 + i / 62500, (i / 250) % 250, i % 250 + 1),
       'bulk', :'now'::bigint, :'now'::bigint + 3600000
FROM generate_series(0, :'n'::int - 1) AS i
"""


def big_addrs(n):
    return [f"10.{100 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}" for i in range(n)]


def test_10000_fleet_bans_on_a_peer(make_fleet):
    fleet = make_fleet()
    fleet.start("b")  # b alone: the rows come from "a" through the database
    fleet.pg.query(BIG_INSERT, now=now_ms(), n=N_BIG, timeout=120)
    committed = time.monotonic()
    ns = fleet.ns("b")
    ok = wait_until(lambda: len(ban4(ns)) >= N_BIG, BIG_WAIT, step=0.5)
    took = time.monotonic() - committed
    got = set(ban4(ns))
    assert ok and got == set(big_addrs(N_BIG)), (len(got), fleet.daemons["b"].text()[-2000:])
    print(f"\n10,000 fleet bans on b: all in ban4 {took:.2f} s after the INSERT's commit "
          f"(polling every 0.5 s; bench/guard/fleet measures it properly)")
    met = scrape(ns, fleetutil.METRICS_PORT)
    assert met["rampart_guard_fleet_received_total"] == N_BIG, met
    assert met["rampart_guard_fleet_applied_total"] == N_BIG, met
    assert len(list_json(fleet, "b")) == N_BIG
    assert fleet.daemons["b"].stop() == 0, fleet.daemons["b"].text()[-2000:]


# --- 5. a restart: the local store first, then the fleet ----------------------------------------

def test_restart_restores_then_catches_up(make_fleet):
    fleet = make_fleet()
    fleet.start_all()
    first, local, later = addrs(203, 1), addrs(204, 1), addrs(205, 5)
    fleet.ban_on("a", first)
    fleet.ban_on("b", local)
    assert not wait_elements(fleet.ns("b"), first + local, WAIT), fleet.daemons["b"].text()[-2000:]
    assert fleet.daemons["b"].stop() == 0
    # the table would keep the old bans: empty it, so that each ban has to come back
    sh("nft", "delete", "table", "inet", "rampart", ns=fleet.ns("b"))

    fleet.ban_on("a", later)
    assert not wait_elements(fleet.ns("c"), later, WAIT), fleet.daemons["c"].text()[-2000:]
    b = fleet.start("b")
    assert not wait_elements(fleet.ns("b"), first + local + later, WAIT), b.text()[-2000:]
    text = b.text()
    restored = re.search(r"guard: restored bans=(\d+) ipv4=(\d+)", text)
    assert restored and restored.groups() == ("2", "2"), text[-2000:]
    assert text.index("guard: restored bans=") < text.index("guard: fleet connected"), text
    met = scrape(fleet.ns("b"), fleetutil.METRICS_PORT)
    assert met["rampart_guard_fleet_received_total"] == len(later), met
    assert met["rampart_guard_fleet_applied_total"] == len(later), met
    assert set(ban4(fleet.ns("b"))) == set(first + local + later)
    # b's own ban was published once, before the stop; nothing again after the restart
    assert fleet.pg.query("SELECT count(*) FROM rampart_guard_history WHERE machine = 'b'") \
        == [("1",)]


# --- 6. a machine whose state file was lost ----------------------------------------------------

def test_machine_with_a_new_state_file_still_shares(make_fleet):
    """The fleet numbers a machine's rows (machine, seq); a new state file starts its history
    ids at 1 again, and its bans must still reach the peers, not be dropped as duplicates."""
    fleet = make_fleet()
    fleet.start_all()
    before, after = addrs(206, 1), addrs(207, 2)
    fleet.ban_on("a", before)
    assert not wait_elements(fleet.ns("b"), before, WAIT), fleet.daemons["b"].text()[-2000:]
    assert fleet.daemons["a"].stop() == 0
    for suffix in ("", "-wal", "-shm"):
        pathlib.Path(fleet.state["a"] + suffix).unlink(missing_ok=True)
    time.sleep(1.1)  # a new second: the new state file's numbering starts above the old one
    a = fleet.start("a")
    assert a.wait_lines("guard: fleet connected", 1, WAIT), a.text()[-2000:]
    fleet.ban_on("a", after)
    assert not wait_elements(fleet.ns("b"), after, WAIT), fleet.daemons["b"].text()[-2000:]
    assert not wait_elements(fleet.ns("c"), after, WAIT), fleet.daemons["c"].text()[-2000:]
    assert fleet.pg.query("SELECT count(*) FROM rampart_guard_history WHERE machine = 'a'") \
        == [(str(len(before) + len(after)),)]
