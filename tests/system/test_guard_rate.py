"""Acceptance 1 of issue 15: guard's rate rule against the kernel's own xt_recent.

An attacker namespace runs the same connection patterns, at the same moments (one thread per
pattern and target), against a namespace running the two iptables/ip6tables `recent` rules
and one running our table; the pass/drop sequences must be identical, over IPv4 and IPv6.
Then again after our side was SIGKILLed: the table stays and still decides alike.

Scaled down: port 22 with seconds 3, hitcount 4; port 2222 with seconds 2, hitcount 1. Every
pattern uses a source address of its own, so patterns do not share state and run at once.
Offsets keep at least 0.3 s away from a window's edge: the two targets see each attempt at
nearly the same instant, but no test can be exact at the edge.
"""
import pytest

import guardutil

RATES = [{"port": 22, "seconds": 3, "hitcount": 4},
         {"port": 2222, "seconds": 2, "hitcount": 1}]

Q = 0.3  # connect timeout: a dropped SYN is not retransmitted within one attempt (RTO 1 s)


def burst(n, at=0.0):
    return [[at, Q]] * n


# name: (port, steps, the sequence xt_recent must give: a check that the test can fail)
PATTERNS = {
    "burst3": (22, burst(3), "PPP"),
    "burst4": (22, burst(4), "PPPP"),
    "burst5": (22, burst(5), "PPPPD"),
    # 10 at once, hammering every 0.5 s (each drop refreshes the window), waiting it out
    # (last drop at 7 s, window 3 s), then a burst again
    "burst10-hammer-wait": (22, burst(10) + [[2.5 + 0.5 * i, Q] for i in range(10)] +
                            burst(5, 10.5), "PPPP" + "D" * 6 + "D" * 10 + "PPPPD"),
    # every 0.55 s: four pass, then each finds four or five stamps within 3 s
    "spaced-0.55": (22, [[0.55 * i, Q] for i in range(9)], "PPPPDDDDD"),
    # every 1.2 s: never four within 3 s
    "spaced-1.2": (22, [[1.2 * i, Q] for i in range(6)], "PPPPPP"),
    # hitcount 1: one connection per 2 s
    "h1-spaced": (2222, [[0, Q], [0.5, Q], [2.9, Q], [3.4, Q], [5.8, Q]], "PDPDP"),
    # the attacker's kernel retransmits the SYN (at about +1 s and +3 s): every retransmit
    # is a new-state packet that refreshes the window, so 1.5 s after the last one (5 s after
    # the first SYN) the source is still out; 3.5 s after it, it is back
    "h1-retransmit": (2222, [[0, Q], [0.5, 3.7], [5.0, Q], [8.0, Q]], "PDDP"),
    # hitcount 4: the retransmits (about 0.2 s and 1.2 s) count; four stamps are not reached
    # again within 3 s
    "burst-retransmit": (22, burst(4) + [[0.2, 2.5], [3.9, Q], [4.3, Q]], "PPPPDPP"),
}


@pytest.fixture
def net():
    n = guardutil.Net("r", ["ipt", "nft"])
    try:
        yield n
    finally:
        n.close()


def setup_targets(net, tmp_path):
    guardutil.iptables_recent(net.ns("ipt"), RATES)
    # another table that accepts established traffic first must change nothing
    guardutil.sh("nft", "add table inet filter; add chain inet filter input { type filter "
                 "hook input priority filter; policy accept; }; add rule inet filter input "
                 "ct state established,related accept", ns=net.ns("nft"))
    listeners = [guardutil.start_listener(net.ns(t), [r["port"] for r in RATES])
                 for t in ("ipt", "nft")]
    guard = guardutil.Guard(net.ns("nft"), RATES, str(tmp_path)).start()
    return guard, listeners


def run_patterns(net, first_host):
    jobs = []
    host = first_host
    for v6 in (False, True):
        for name, (port, steps, _) in PATTERNS.items():
            for t in ("ipt", "nft"):
                jobs.append({"key": f"{name}/{'v6' if v6 else 'v4'}/{t}",
                             "src": net.src(t, v6, host), "dst": net.dst(t, v6),
                             "port": port, "steps": steps})
            host += 1
    return guardutil.drive(net.attacker, jobs)


def check_identical(res):
    diffs = []
    for name, (_, _, expect) in PATTERNS.items():
        for fam in ("v4", "v6"):
            ipt, ours = res[f"{name}/{fam}/ipt"], res[f"{name}/{fam}/nft"]
            if ipt != ours:
                diffs.append(f"{name}/{fam}: xt_recent {ipt} rampart {ours}")
            elif expect is not None and ipt != expect:
                diffs.append(f"{name}/{fam}: both {ipt}, expected {expect} (timing?)")
    assert not diffs, "\n".join(diffs)


def test_rate_matches_xt_recent(net, tmp_path):
    guard, listeners = setup_targets(net, tmp_path)
    try:
        check_identical(run_patterns(net, first_host=3))
    finally:
        guard.stop()
        for p in listeners:
            p.kill()


def test_rate_matches_xt_recent_after_kill(net, tmp_path):
    guard, listeners = setup_targets(net, tmp_path)
    try:
        guard.kill()
        out = guardutil.sh("nft", "list", "chain", "inet", "rampart", "input",
                           ns=net.ns("nft")).stdout
        assert "rate0_v4_drop" in out
        check_identical(run_patterns(net, first_host=3))
    finally:
        guard.stop()
        for p in listeners:
            p.kill()
