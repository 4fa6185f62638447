"""`rampart guard ban|unban|list|test-log` as an administrator runs them.

Everything that touches nftables runs in a network namespace the test creates (lo up, and a
veth pair carrying 10.77.0.1/24 and fd00:77::1/64 as the host's own addresses); the state
file lives under tmp_path. test-log reads the shared fail2ban sshd corpus in place.
"""
import ipaddress
import json
import os
import re
import subprocess
import time

import pytest

from conftest import SHARED

SSHD_LOG = SHARED / "testdata" / "authlogs" / "fail2ban" / "sshd"
OWN4, OWN6 = "10.77.0.1", "fd00:77::1"
LINE_RE = re.compile(r"^(\d+): (attack|login) (sshd|dropbear|postfix|dovecot) (\S+) "
                     r"danger=(\d+) (\S+)$")
SUMMARY_RE = re.compile(r"^lines=(\d+) attacks=(\d+) logins=(\d+)$", re.M)
ROW_RE = re.compile(r"^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(would ban|trusted \(logged in\)|-)$",
                    re.M)


def sh(*args, check=True, input=None):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=30,
                       input=input)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed ({r.returncode}): {r.stderr.strip()}")
    return r


@pytest.fixture
def ns():
    name = f"rgc{os.getpid() % 100000}"
    sh("ip", "netns", "del", name, check=False)
    sh("ip", "netns", "add", name)
    try:
        x = ("ip", "netns", "exec", name)
        sh(*x, "ip", "link", "set", "lo", "up")
        sh(*x, "ip", "link", "add", "gc0", "type", "veth", "peer", "name", "gc1")
        sh(*x, "ip", "link", "set", "gc0", "up")
        sh(*x, "ip", "link", "set", "gc1", "up")
        sh(*x, "ip", "addr", "add", f"{OWN4}/24", "dev", "gc0")
        sh(*x, "ip", "addr", "add", f"{OWN6}/64", "dev", "gc0", "nodad")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


class G:
    """The guard commands in namespace ns with config file conf."""

    def __init__(self, rampart, ns, conf):
        self.rampart, self.ns, self.conf = rampart, ns, str(conf)

    def __call__(self, *args, input=None):
        return sh("ip", "netns", "exec", self.ns, self.rampart, "guard", *args, "-c",
                  self.conf, check=False, input=input)

    def listed(self):
        r = self("list", "--json")
        assert r.returncode == 0, r.stderr
        return {b["prefix"]: b for b in json.loads(r.stdout)}

    def tables(self):
        return sh("ip", "netns", "exec", self.ns, "nft", "list", "tables").stdout

    def bannet(self, family):
        """{"network/len": timeout or None} over every bannetF_LEN set (one per length)."""
        r = sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "sets", "table", "inet",
               "rampart")
        out = {}
        for obj in json.loads(r.stdout)["nftables"]:
            name = obj.get("set", {}).get("name", "")
            m = re.fullmatch(rf"bannet{family}_(\d+)", name)
            if m:
                out.update({f"{e}/{m.group(1)}": t for e, t in self.elems(name).items()})
        return out

    def elems(self, set_name):
        """{element text: timeout seconds or None} of a set in table inet rampart."""
        r = sh("ip", "netns", "exec", self.ns, "nft", "-j", "list", "set", "inet", "rampart",
               set_name)
        out = {}
        for obj in json.loads(r.stdout)["nftables"]:
            for e in obj.get("set", {}).get("elem", []):
                timeout = None
                if isinstance(e, dict) and "elem" in e:
                    timeout = e["elem"].get("timeout")
                    e = e["elem"]["val"]
                if isinstance(e, dict) and "prefix" in e:
                    e = f"{e['prefix']['addr']}/{e['prefix']['len']}"
                out[e] = timeout
        return out


def write_conf(path, extra=""):
    path.write_text(f"guard:\n  state: {path.parent}/guard.db\n  sources: []\n"
                    f"  whitelist: [198.51.100.0/24, 192.0.2.99, 2001:db8:ffff::/48]\n"
                    f"{extra}")
    return path


@pytest.fixture
def g(rampart, ns, tmp_path):
    return G(rampart, ns, write_conf(tmp_path / "guard.yaml",
                                     "  ban:\n    time: 3m\n    escalate: 3.0\n"))


@pytest.fixture
def g_observe(rampart, ns, tmp_path):
    return G(rampart, ns, write_conf(tmp_path / "guard.yaml", "  mode: observe\n"))


# --- help -------------------------------------------------------------------------------------

def test_help_and_dash_dash_help(run):
    a, b = run("help", "guard"), run("guard", "--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout and a.stdout.startswith("usage: rampart guard")
    for sub in ("ban ADDR", "unban ADDR", "list [--json]", "test-log FILE"):
        assert f"rampart guard {sub}" in a.stdout


def test_usage_error_hint_names_a_command_that_works(run, g):
    r = g("ban")
    assert r.returncode == 2
    hint = re.search(r"Try '(rampart [^']+)'", r.stderr)
    assert hint, r.stderr
    h = run(*hint.group(1).split()[1:])
    assert h.returncode == 0, f"{hint.group(1)}: {h.stderr}"
    assert h.stdout.startswith("usage: rampart guard")


# --- ban --------------------------------------------------------------------------------------

def test_ban_ipv4_then_escalates(g):
    r = g("ban", "192.0.2.7", "--reason", "brute force")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "banned 192.0.2.7/32 for 3m (ban 1)\n"
    assert g.elems("ban4") == {"192.0.2.7": 180}
    b = g.listed()["192.0.2.7/32"]
    assert (b["count"], b["origin"], b["reason"]) == (1, "manual", "brute force")
    assert b["expires_ms"] - b["created_ms"] == 180_000

    r = g("ban", "192.0.2.7")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "banned 192.0.2.7/32 for 9m (ban 2)\n"  # ban.time x ban.escalate
    assert g.elems("ban4") == {"192.0.2.7": 540}
    b = g.listed()["192.0.2.7/32"]
    assert b["count"] == 2 and b["expires_ms"] - b["created_ms"] == 540_000


def test_ban_creates_the_table_when_guard_never_ran(g):
    assert "inet rampart" not in g.tables()
    assert g("ban", "192.0.2.8").returncode == 0
    assert "table inet rampart" in g.tables()


def test_ban_for_duration(g):
    r = g("ban", "192.0.2.9", "--for", "10m")
    assert r.returncode == 0 and r.stdout == "banned 192.0.2.9/32 for 10m (ban 1)\n"
    assert g.elems("ban4") == {"192.0.2.9": 600}
    b = g.listed()["192.0.2.9/32"]
    assert b["expires_ms"] - b["created_ms"] == 600_000


def test_ban_permanent(g):
    r = g("ban", "192.0.2.10", "--permanent")
    assert r.returncode == 0 and r.stdout == "banned 192.0.2.10/32 permanently (ban 1)\n"
    assert g.elems("ban4") == {"192.0.2.10": None}
    assert g.listed()["192.0.2.10/32"]["expires_ms"] is None
    human = g("list").stdout
    assert re.search(r"^192\.0\.2\.10/32\s+permanent\s+1\s+manual\s+manual$", human, re.M)


@pytest.mark.parametrize("reason", ["text with spaces and ünïcode",
                                    'quote " backslash \\ tab\tend', "日本語 ✓"])
def test_reason_round_trips(g, reason):
    assert g("ban", "192.0.2.11", "--reason", reason).returncode == 0
    assert g.listed()["192.0.2.11/32"]["reason"] == reason


def test_overlong_reason_is_cut_on_a_character_or_refused(g):
    reason = "ü" * 300
    r = g("ban", "192.0.2.12", "--reason", reason)
    if r.returncode == 2:
        assert "reason" in r.stderr and not g.listed()
        return
    assert r.returncode == 0, r.stderr
    stored = g.listed()["192.0.2.12/32"]["reason"]
    assert stored and reason.startswith(stored), f"reason stored as {stored[-4:]!r}"


def test_ban_ipv6_bans_its_64(g):
    r = g("ban", "2001:db8:1:2::5")
    assert r.returncode == 0 and r.stdout.startswith("banned 2001:db8:1:2::/64 for 3m (ban 1)")
    assert g.elems("ban6") == {"2001:db8:1:2::": 180}
    assert "2001:db8:1:2::/64" in g.listed()
    # another host in the same /64 is the same ban
    r = g("ban", "2001:db8:1:2:ffff::1")
    assert r.returncode == 0 and "(ban 2)" in r.stdout


def test_ban_v4_mapped_is_the_v4_address(g):
    r = g("ban", "::ffff:192.0.2.13")
    assert r.returncode == 0 and r.stdout.startswith("banned 192.0.2.13/32 ")
    assert "192.0.2.13" in g.elems("ban4")


def test_ban_cidr_goes_to_bannet4(g):
    r = g("ban", "203.0.113.0/24")
    assert r.returncode == 0 and r.stdout.startswith("banned 203.0.113.0/24 for 3m (ban 1)")
    assert g.elems("bannet4_24") == {"203.0.113.0": 180}
    assert g.bannet(4) == {"203.0.113.0/24": 180}
    assert g.listed()["203.0.113.0/24"]["count"] == 1
    # host bits are dropped: the same network
    r = g("ban", "203.0.113.77/24")
    assert r.returncode == 0 and r.stdout.startswith("banned 203.0.113.0/24 for 9m (ban 2)")


def covered(g, family, addr, permanent=False):
    a = ipaddress.ip_address(addr)
    for e, timeout in g.bannet(family).items():
        if a in ipaddress.ip_network(e) and (timeout is None or not permanent):
            return True
    return False


def test_ban_wider_cidr_over_a_narrower_one(g):
    assert g("ban", "172.16.5.0/24").returncode == 0
    r = g("ban", "172.16.0.0/12", "--permanent")
    assert r.returncode == 0, r.stderr
    assert covered(g, 4, "172.16.9.9", permanent=True)
    assert g.bannet(4)["172.16.5.0/24"] == 180  # the first ban keeps its own length


def test_ban_narrower_cidr_inside_a_wider_one(g):
    assert g("ban", "100.64.0.0/10").returncode == 0
    r = g("ban", "100.64.8.0/24", "--permanent")
    assert r.returncode == 0, r.stderr
    assert covered(g, 4, "100.64.8.1", permanent=True)
    assert g.bannet(4)["100.64.0.0/10"] == 180


def test_ban_v6_cidr_inside_a_wider_one_is_enforced_when_claimed(g):
    assert g("ban", "2001:db8:aa::/48").returncode == 0
    r = g("ban", "2001:db8:aa:100::/56", "--permanent")
    assert r.returncode == 0, r.stderr
    assert covered(g, 6, "2001:db8:aa:100::1", permanent=True), g.bannet(6)
    assert g.bannet(6)["2001:db8:aa::/48"] == 180
    # a /64 is the IPv6 ban key itself: it goes to ban6, also inside a wider ban
    assert g("ban", "2001:db8:aa:2::/64", "--permanent").returncode == 0
    assert g.elems("ban6") == {"2001:db8:aa:2::": None}


def test_for_and_permanent_together(g):
    r = g("ban", "192.0.2.14", "--for", "10m", "--permanent")
    assert r.returncode == 2
    assert r.stderr.startswith("rampart: guard ban: ") and "--permanent" in r.stderr
    assert r.stdout == "" and not g.listed()


@pytest.mark.parametrize("args", [["--for", "0"], ["--for", "soon"], ["--for", "-5m"]])
def test_bad_for(g, args):
    r = g("ban", "192.0.2.15", *args)
    assert r.returncode == 2 and r.stderr.startswith("rampart: guard ban: --for")
    assert not g.listed()


@pytest.mark.parametrize("addr", ["1.2.3", "example.com", "1.2.3.4/33", "2001:db8::/129",
                                  "", "1.2.3.4 ", "300.1.1.1"])
def test_bad_address(g, addr):
    r = g("ban", addr)
    assert r.returncode == 2
    assert r.stderr.startswith(f"rampart: guard ban: '{addr}' is not an IPv4 or IPv6 address")
    assert not g.listed()


@pytest.mark.parametrize("args", [[], ["192.0.2.1", "192.0.2.2"], ["--bogus", "192.0.2.1"]])
def test_ban_argument_count(g, args):
    r = g("ban", *args)
    assert r.returncode == 2 and r.stderr.startswith("rampart: guard ban: ")
    assert not g.listed()


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.1.2.3", "::1", OWN4, "10.77.0.0/24",
                                  "fd00:77::99", OWN6, "198.51.100.9", "198.51.0.0/16",
                                  "192.0.2.99", "2001:db8:ffff:1::1", "0.0.0.0/0"])
def test_never_banned(g, addr):
    r = g("ban", addr)
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith(f"rampart: guard ban: {addr} is never banned")
    assert not g.listed()
    assert "inet rampart" not in g.tables()


def test_observe_records_but_leaves_nftables(g_observe):
    r = g_observe("ban", "192.0.2.16", "--reason", "watch")
    assert r.returncode == 0, r.stderr
    assert "192.0.2.16/32" in r.stdout and "observe" in r.stdout
    assert "nftables unchanged" in r.stdout
    assert "inet rampart" not in g_observe.tables()
    b = g_observe.listed()["192.0.2.16/32"]
    assert (b["count"], b["reason"]) == (1, "watch")
    assert g_observe("unban", "192.0.2.16").returncode == 0
    assert not g_observe.listed() and "inet rampart" not in g_observe.tables()


# --- unban ------------------------------------------------------------------------------------

def test_unban_removes_and_resets_the_count(g):
    for _ in range(2):
        assert g("ban", "192.0.2.20").returncode == 0
    assert g("ban", "203.0.113.0/24").returncode == 0
    assert g("ban", "2001:db8:5::1").returncode == 0
    for addr, shown, set_name, elem in [("192.0.2.20", "192.0.2.20/32", "ban4", "192.0.2.20"),
                                        ("203.0.113.0/24", "203.0.113.0/24", "bannet4_24",
                                         "203.0.113.0"),
                                        ("2001:db8:5::77", "2001:db8:5::/64", "ban6",
                                         "2001:db8:5::")]:
        assert elem in g.elems(set_name)
        r = g("unban", addr)
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"unbanned {shown}\n"
        assert elem not in g.elems(set_name)
        assert shown not in g.listed()
    r = g("ban", "192.0.2.20")
    assert r.returncode == 0 and r.stdout == "banned 192.0.2.20/32 for 3m (ban 1)\n"


def test_unban_never_banned(g):
    r = g("unban", "192.0.2.21")
    assert r.returncode == 1
    assert "was not banned" in r.stdout + r.stderr and "192.0.2.21" in r.stdout + r.stderr


@pytest.mark.parametrize("args", [[], ["bogus"], ["192.0.2.1", "192.0.2.2"]])
def test_unban_usage(g, args):
    r = g("unban", *args)
    assert r.returncode == 2 and r.stderr.startswith("rampart: guard unban: ")


# --- list -------------------------------------------------------------------------------------

def test_list_table_and_json(g):
    empty = g("list")
    assert empty.returncode == 0 and len(empty.stdout.splitlines()) == 1
    assert json.loads(g("list", "--json").stdout) == []
    bans = [("192.0.2.30", "192.0.2.30/32"), ("2001:db8:6::1", "2001:db8:6::/64"),
            ("203.0.113.0/25", "203.0.113.0/25")]
    for addr, _ in bans:
        assert g("ban", addr, "--reason", f"r {addr}").returncode == 0
    lines = g("list").stdout.splitlines()
    assert re.match(r"^PREFIX\s+LEFT\s+BANS\s+ORIGIN\s+REASON$", lines[0])
    assert sorted(l.split()[0] for l in lines[1:]) == sorted(s for _, s in bans)
    for l in lines[1:]:
        assert re.match(r"^\S+\s+\S+\s+1\s+manual\s+r \S+$", l), l
    data = json.loads(g("list", "--json").stdout)
    assert sorted(b["prefix"] for b in data) == sorted(s for _, s in bans)
    for b in data:
        assert set(b) == {"prefix", "created_ms", "expires_ms", "count", "origin", "reason",
                          "machine"}
        assert b["machine"] is None  # this machine's own ban, not a fleet peer's
        assert b["count"] == 1 and b["origin"] == "manual"
        assert b["expires_ms"] - b["created_ms"] == 180_000


def test_list_rejects_arguments(g):
    r = g("list", "extra")
    assert r.returncode == 2 and r.stderr.startswith("rampart: guard list: ")


def test_expired_ban_is_not_listed(g):
    assert g("ban", "192.0.2.31", "--for", "1s").returncode == 0
    assert g("ban", "192.0.2.32", "--for", "10m").returncode == 0
    time.sleep(1.5)
    listed = g.listed()
    assert "192.0.2.31/32" not in listed and "192.0.2.32/32" in listed
    assert "192.0.2.31/32" not in g("list").stdout


# --- test-log ---------------------------------------------------------------------------------

def guard_test_log(run, *args, input=None):
    return run("guard", "test-log", *args, input=input)


def parse_test_log(out):
    events = [LINE_RE.match(l) for l in out.splitlines() if re.match(r"^\d+: ", l)]
    assert all(events), out
    rows = {m.group(1): m.groups()[1:] for m in ROW_RE.finditer(out)}
    return [m.groups() for m in events], SUMMARY_RE.search(out), rows


def test_test_log_sshd_corpus(run):
    r = guard_test_log(run, SSHD_LOG)
    assert r.returncode == 0, r.stderr
    events, summary, rows = parse_test_log(r.stdout)
    assert summary, r.stdout
    lines, attacks, logins = map(int, summary.groups())
    assert lines == len(SSHD_LOG.read_bytes().splitlines())
    assert attacks == sum(e[1] == "attack" for e in events) > 0
    assert logins == sum(e[1] == "login" for e in events) > 0
    nums = [int(e[0]) for e in events]
    assert nums == sorted(nums) and nums[-1] <= lines
    src = SSHD_LOG.read_bytes().splitlines()
    for n, kind, svc, addr, danger, what in events:
        ipaddress.ip_address(addr)
        assert addr.encode() in src[int(n) - 1] or ipaddress.ip_address(addr).version == 6
        assert (int(danger) == 0) == (kind == "login")
    assert re.search(r"^SOURCE\s+FAILURES\s+DANGER\s+LOGINS\s+VERDICT$", r.stdout, re.M)
    verdicts = {v[-1] for v in rows.values()}
    assert {"would ban", "trusted (logged in)"} <= verdicts
    # sources as the daemon scores them: IPv6 per /64 (ipv6-prefix)
    def key(a):
        ip = ipaddress.ip_address(a)
        return a if ip.version == 4 else str(ipaddress.ip_network(f"{a}/64", strict=False))
    assert set(rows) == {key(e[3]) for e in events}
    assert rows["1.2.3.4"][-1] == "would ban"


def test_test_log_quiet_and_stdin(run):
    full = guard_test_log(run, SSHD_LOG).stdout
    q = guard_test_log(run, "-q", SSHD_LOG)
    assert q.returncode == 0
    assert not re.search(r"^\d+: ", q.stdout, re.M)
    assert q.stdout.startswith("lines=")
    assert SUMMARY_RE.search(q.stdout).group(0) == SUMMARY_RE.search(full).group(0)
    s = guard_test_log(run, "-", input=SSHD_LOG.read_text(errors="surrogateescape"))
    assert s.returncode == 0 and s.stdout == full


def test_test_log_missing_file(run, tmp_path):
    r = guard_test_log(run, tmp_path / "nope.log")
    assert r.returncode == 2
    assert r.stderr.startswith(f"rampart: guard test-log: cannot read {tmp_path}/nope.log")
    assert r.stdout == ""


@pytest.mark.parametrize("args", [[], ["a", "b"], ["--bogus", "x"]])
def test_test_log_usage(run, args):
    r = guard_test_log(run, *args)
    assert r.returncode == 2 and r.stderr.startswith("rampart: guard test-log: ")


def invalid_user(addr):
    return f"Dec  7 06:00:00 h sshd[1]: Invalid user x from {addr} port 22\n".encode()


def test_test_log_long_line_and_nul_bytes(run, tmp_path):
    p = tmp_path / "odd.log"
    p.write_bytes(b"x" * 20000 + b"\n" + invalid_user("9.9.9.1") +
                  b"abc\0def\n" + invalid_user("9.9.9.2") +
                  b"Dec  7 06:00:00 h sshd[1]: Invalid user \0x from 9.9.9.3 port 22\n" +
                  invalid_user("9.9.9.4") + b"\0\0\0\n" + invalid_user("9.9.9.5"))
    r = guard_test_log(run, p)
    assert r.returncode == 0, r.stderr
    events, summary, rows = parse_test_log(r.stdout)
    assert int(summary.group(1)) == 8
    got = {(int(e[0]), e[3]) for e in events}
    assert {(2, "9.9.9.1"), (4, "9.9.9.2"), (6, "9.9.9.4"), (8, "9.9.9.5")} <= got
    assert "9.9.9.3" not in {e[3] for e in events} or (5, "9.9.9.3") in got


def test_test_log_overlong_line_does_not_run_into_the_next(run, tmp_path):
    p = tmp_path / "long.log"
    p.write_bytes(b"Dec  7 06:00:00 h sshd[1]: Invalid user " + b"y" * 20000 +
                  b" from 9.9.8.1 port 22\n" + invalid_user("9.9.8.2"))
    r = guard_test_log(run, p)
    assert r.returncode == 0
    events, summary, _ = parse_test_log(r.stdout)
    assert int(summary.group(1)) == 2
    assert [(int(e[0]), e[3]) for e in events if e[3] == "9.9.8.2"] == [(2, "9.9.8.2")]


INJECTIONS = [
    "sshd[1]: Invalid user x from 6.6.6.6 port 22 from 1.2.3.4 port 22",
    "sshd[1]: Failed password for invalid user x from 6.6.6.6 port 22 ssh2 from 1.2.3.4 "
    "port 2222 ssh2",
    "sshd[1]: Failed password for from 6.6.6.6 port 1 ssh2 from 1.2.3.4 port 2222 ssh2",
    "sshd[1]: User root from 6.6.6.6 not allowed because not listed in AllowUsers from "
    "1.2.3.4 not allowed because not listed in AllowUsers",
    "sshd[1]: Connection closed by invalid user x from 6.6.6.6 port 22 1.2.3.4 port 41 "
    "[preauth]",
    "sshd[1]: Disconnected from invalid user x from 6.6.6.6 port 22 1.2.3.4 port 41 [preauth]",
    "sshd[1]: maximum authentication attempts exceeded for invalid user x from 6.6.6.6 port "
    "22 ssh2 from 1.2.3.4 port 5 ssh2 [preauth]",
    "sshd[1]: Accepted password for from 6.6.6.6 port 22 ssh2 from 1.2.3.4 port 22 ssh2",
    "dropbear[1]: Login attempt for nonexistent user 'x from 6.6.6.6:22' from 1.2.3.4:5",
    "dropbear[1]: Bad password attempt for 'x' from 6.6.6.6:22' from 1.2.3.4:5",
]


@pytest.mark.parametrize("line", INJECTIONS)
def test_test_log_injected_address_is_never_the_source(run, line):
    r = guard_test_log(run, "-", input=f"Dec  7 06:00:00 host {line}\n")
    assert r.returncode == 0
    events, _, rows = parse_test_log(r.stdout)
    assert "6.6.6.6" not in {e[3] for e in events} and "6.6.6.6" not in rows
    assert [e[3] for e in events] == ["1.2.3.4"], r.stdout


def test_test_log_scores_ipv6_per_prefix_as_the_daemon(run):
    log = "".join(invalid_user(f"2001:db8:5::{i}").decode() for i in range(1, 5))
    r = guard_test_log(run, "-q", "-", input=log)
    assert r.returncode == 0
    assert "would ban" in r.stdout, r.stdout


# --- config errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("sub", [["list"], ["ban", "192.0.2.40"], ["unban", "192.0.2.40"],
                                 ["test-log", "/dev/null"]])
def test_bad_guard_key(rampart, ns, tmp_path, sub):
    conf = tmp_path / "bad.yaml"
    conf.write_text(f"guard:\n  state: {tmp_path}/guard.db\n  bogus-key: 1\n")
    r = G(rampart, ns, conf)(*sub)
    assert r.returncode == 2
    assert re.search(re.escape(str(conf)) + r":3:3: guard: unknown key \"bogus-key\"", r.stderr)
    assert r.stdout == ""
    assert not (tmp_path / "guard.db").exists()


@pytest.mark.parametrize("sub", [["list"], ["ban", "192.0.2.41"], ["unban", "192.0.2.41"]])
def test_unusable_state_path(rampart, ns, tmp_path, sub):
    conf = tmp_path / "proc.yaml"
    conf.write_text("guard:\n  state: /proc/forbidden/x.db\n  sources: []\n")
    gg = G(rampart, ns, conf)
    r = gg(*sub)
    assert r.returncode in (1, 2), r
    assert r.stderr.startswith(f"rampart: guard {sub[0]}: cannot open the state "
                               "/proc/forbidden/x.db: ")
    assert "inet rampart" not in gg.tables()


def test_unknown_subcommand(run):
    r = run("guard", "bogus")
    assert r.returncode == 2 and r.stderr.startswith("rampart: guard: unexpected argument")


def test_missing_config_file(run, tmp_path):
    r = run("guard", "list", "-c", tmp_path / "none.yaml")
    assert r.returncode == 2
    assert r.stderr.startswith(f"rampart: guard list: cannot read {tmp_path}/none.yaml")


@pytest.mark.parametrize("args", [["list", "--for", "10m"], ["list", "--permanent"],
                                  ["unban", "192.0.2.50", "--reason", "x"],
                                  ["test-log", "--permanent", "/dev/null"],
                                  ["ban", "192.0.2.50", "--json"]], ids=" ".join)
def test_options_of_another_subcommand_are_usage_errors(g, args):
    r = g(*args)
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith(f"rampart: guard {args[0]}: ")
    assert not g.listed()


def test_for_beyond_what_nftables_holds_is_a_usage_error(g):
    r = g("ban", "192.0.2.61", "--for", "4000d")
    assert r.returncode == 2 and r.stderr.startswith("rampart: guard ban: "), r.stderr
    assert "--permanent" in r.stderr and not g.listed()
    assert g("ban", "192.0.2.61", "--for", "3650d").returncode == 0


def test_list_shows_control_bytes_of_a_reason_harmlessly(g):
    reason = "x\x1b[2J\x1b[31mRED\n10.9.9.9/32   permanent   1  manual  fake"
    assert g("ban", "192.0.2.62", "--reason", reason).returncode == 0
    out = g("list").stdout
    assert "\x1b" not in out and "10.9.9.9" in out
    assert "x\\x1b[2J\\x1b[31mRED\\x0a10.9.9.9" in out  # escaped as ss and ps do
    assert len(out.splitlines()) == 2, out  # the header and one row: no faked row
    assert g.listed()["192.0.2.62/32"]["reason"] == reason  # JSON keeps it, escaped
