"""Differential test: `rampart spf check` against pyspf (python3-spf) on generated policies.

A seeded generator builds 1,000 small DNS worlds (SPF records with random mechanisms,
qualifiers, CIDR lengths, macros, includes, redirects, exp= and unknown modifiers, plus syntax
errors), a client address and a sender. pyspf answers from the same data through its DNSLookup
hook; rampart answers from the same data written as a zone file (--dns-zone, --dns-offline).
Results must be identical, and so must the explanation of every fail.

The generator stays inside what RFC 7208 defines identically for both. pyspf departs from the
RFC text in a few corners, which the generator therefore does not produce:
  - it counts a redirect= against the 10-lookup limit when the record is parsed, even if a
    mechanism matches first (§4.6.4 counts terms evaluated): chains stay short of the limit
    unless they loop (a loop is a permerror for both);
  - it counts every empty DNS answer as a void lookup, also the address lookups of MX and PTR
    names (§4.6.4 speaks of terms): every MX and PTR target has both A and AAAA records;
  - it returns permerror for more than 10 MX records before looking at any (§4.6.4 limits the
    names looked up): at most 3 MX per domain;
  - it cuts only one label off an expanded name longer than 253 characters (§7.3: labels are
    dropped until it fits): expanded names stay short;
  - it rejects "include:" of the record's own domain when parsing ("trivial recursion"), even
    if a mechanism before it matches; RFC 7208 has no such syntax rule (a loop is caught by the
    §4.6.4 limit when it is evaluated): loops go through another domain.
"""
import concurrent.futures
import ipaddress
import json
import os
import random
import subprocess
import sys
import tempfile

import pytest

try:
    import spf  # Debian python3-spf
except ImportError:  # pragma: no cover
    spf = None

SEED = int(os.environ.get("SPF_DIFF_SEED", "20261127"))  # fixed: reproducible
CASES = 1000
ROOT = "example.test"
DOMAINS = [f"d{i}.{ROOT}" for i in range(5)]
HOSTS = [f"h{i}.{ROOT}" for i in range(5)]
IP4 = [f"192.0.2.{i}" for i in range(1, 9)] + ["198.51.100.7"]
IP6 = ["2001:db8::1", "2001:db8::2", "2001:db8:1::25", "2001:db8:ff::9"]
LOCALS = ["joe", "strong-bad", "a.b.c", "x+tag", "postmaster"]
QUALS = ["", "", "", "+", "-", "~", "?"]
BAD_TERMS = ["ip4:192.0.2", "ip4:192.0.2.1/33", "ip6:2001:db8::/129", "a:", "a/40",
             "mx//200", "foo", "include", "exists", "ptr/24", "all.", "-all:x",
             "exists:%{x}.bl." + ROOT, "a:%{c}." + ROOT, "redirect:" + DOMAINS[1],
             "1bad=mod", "ip4:192.0.2.1//32", "a:bad_top.lab_el", "exp=", "=x",
             "mod=%zz", "a:" + ROOT + ":25"]
# domain-specs with macros: (text, python function of (ctx) giving the expansion)
MACRO_TARGETS = [
    ("%{ir}.bl." + ROOT, lambda c: ".".join(reversed(c["i"].split("."))) + ".bl." + ROOT),
    ("%{l}.users." + ROOT, lambda c: c["l"] + ".users." + ROOT),
    ("%{l1r-}.u.%{d2}", lambda c: c["l"].split("-")[0] + ".u." + ".".join(c["d"].split(".")[-2:])),
    ("%{d1r}.%{o}", lambda c: c["d"].split(".")[0] + "." + c["o"]),
    ("%{i}.%{v}.rev." + ROOT, lambda c: c["i"] + "." + c["v"] + ".rev." + ROOT),
    ("%{h}.helo." + ROOT, lambda c: c["h"] + ".helo." + ROOT),
    ("%{p}.ptr." + ROOT, None),
]
EXP_TEXTS = ["You may not send from %{c} for %{d}.", "%{l} at %{o}: see %{ir}.%{v}",
             "Denied for %{S} via %{h}", "%{L} %{d2} %{i}", "plain words only"]


def ip_i(ip):
    """%{i}: dotted IPv4, upper-case nibbles for IPv6 (as both implementations do)."""
    a = ipaddress.ip_address(ip)
    if a.version == 6 and a.ipv4_mapped:
        a = a.ipv4_mapped
    if a.version == 4:
        return str(a)
    return ".".join(a.exploded.replace(":", "").upper())


class World:
    """One generated case: DNS data, a client and a sender."""

    def __init__(self, rng):
        self.rng = rng
        self.rr = {}  # name -> list of (type, value)
        self.ip = rng.choice(IP4 + IP6 + ["::ffff:192.0.2.3"])
        local = rng.choice(LOCALS)
        self.helo = rng.choice(["mail.client.test", DOMAINS[0], "h1." + ROOT])
        self.sender = "" if rng.random() < 0.1 else f"{local}@{DOMAINS[0]}"
        self.features = set()
        norm = ipaddress.ip_address(self.ip)
        if norm.version == 6 and norm.ipv4_mapped:
            norm = norm.ipv4_mapped
        self.v6 = norm.version == 6
        self.ctx = {"i": ip_i(self.ip), "v": "ip6" if self.v6 else "in-addr",
                    "l": local if self.sender else "postmaster", "h": self.helo,
                    "o": DOMAINS[0] if self.sender else self.helo, "d": DOMAINS[0]}
        self.lookups = 0  # DNS-querying terms written, to stay short of pyspf's redirect count

    def add(self, name, rtype, value):
        self.rr.setdefault(name.lower(), []).append((rtype, value))

    def hosts(self):
        for h in HOSTS:
            self.add(h, "A", self.rng.choice(IP4))
            self.add(h, "AAAA", self.rng.choice(IP6))
        for d in DOMAINS:
            if self.rng.random() < 0.5:
                for pref, h in enumerate(self.rng.sample(HOSTS, self.rng.randint(1, 3))):
                    self.add(d, "MX", (pref * 10, h))
            if self.rng.random() < 0.5:
                self.add(d, "A", self.rng.choice(IP4))
                self.add(d, "AAAA", self.rng.choice(IP6))
        # every client has PTR names, all of which have addresses of both families
        rev = ipaddress.ip_address(self.ip)
        if rev.version == 6 and rev.ipv4_mapped:
            rev = rev.ipv4_mapped
        for h in self.rng.sample(HOSTS, self.rng.randint(1, 2)):
            self.add(rev.reverse_pointer, "PTR", h)

    def cidr(self, v6):
        return self.rng.choice([0, 8, 16, 24, 25, 30, 31, 32]) if not v6 else \
            self.rng.choice([0, 16, 32, 48, 64, 96, 112, 127, 128])

    def net(self, v6):
        base = self.rng.choice(IP6 if v6 else IP4)
        n = self.cidr(v6)
        return f"{base}/{n}" if self.rng.random() < 0.7 else base

    def target(self, index, loop=False, self_ok=False):
        """A domain after index (a DAG), rarely one before it (a loop)."""
        r = self.rng.random()
        if loop and r < 0.05 and (index > 0 or self_ok):
            self.features.add("loop")
            return DOMAINS[self.rng.randint(0, index if self_ok else index - 1)]
        if index + 1 < len(DOMAINS) and r < 0.8:
            return DOMAINS[self.rng.randint(index + 1, len(DOMAINS) - 1)]
        return "none." + ROOT

    def macro_target(self, domain):
        spec, fn = self.rng.choice(MACRO_TARGETS)
        self.features.add("macro")
        if fn and self.rng.random() < 0.6:
            name = fn(dict(self.ctx, d=domain))
            self.add(name, "A", "127.0.0.2")
            if self.rng.random() < 0.5:
                self.add(name, "AAAA", "2001:db8::7")
        return spec

    def term(self, index, domain):
        q = self.rng.choice(QUALS)
        kind = self.rng.choice(["ip4", "ip4", "ip6", "a", "a", "mx", "ptr", "exists",
                                "include", "include", "all"])
        self.features.add(kind)
        if kind == "ip4":
            return q + "ip4:" + self.net(False)
        if kind == "ip6":
            return q + "ip6:" + self.net(True)
        if kind == "all":
            return q + "all"
        self.lookups += 1
        if kind in ("a", "mx"):
            t = q + kind
            if self.rng.random() < 0.5:
                t += ":" + self.rng.choice(HOSTS + DOMAINS + ["nx." + ROOT])
            if self.rng.random() < 0.3:
                t += f"/{self.cidr(False)}"
            if self.rng.random() < 0.3:
                t += f"//{self.cidr(True)}"
            return t
        if kind == "ptr":
            return q + "ptr" + (":" + self.rng.choice([ROOT, DOMAINS[0], "elsewhere.test"])
                                if self.rng.random() < 0.6 else "")
        if kind == "exists":
            return q + "exists:" + self.macro_target(domain)
        return q + "include:" + self.target(index, loop=True)

    def record(self, index):
        domain = DOMAINS[index]
        terms = []
        for _ in range(self.rng.randint(0, 5)):
            if self.lookups >= 7:
                break
            terms.append(self.term(index, domain))
        if self.rng.random() < 0.3 and self.lookups < 7:
            self.features.add("redirect")
            self.lookups += 1
            terms.append("redirect=" + self.target(index, loop=True, self_ok=True))
        if self.rng.random() < 0.3:
            self.features.add("exp")
            name = f"exp{index}.{ROOT}"
            terms.append("exp=" + (name if self.rng.random() < 0.7 else f"exp{index}.%{{d2}}"))
            self.add(name, "TXT", self.rng.choice(EXP_TEXTS))
            if self.rng.random() < 0.1:
                self.add(name, "TXT", "second")
        if self.rng.random() < 0.1:
            terms.append("x-note=%{d}.v1")
        if self.rng.random() < 0.07:
            self.features.add("syntax-error")
            terms.insert(self.rng.randint(0, len(terms)), self.rng.choice(BAD_TERMS))
        if self.rng.random() < 0.2:
            self.rng.shuffle(terms)
        version = self.rng.choice(["v=spf1"] * 8 + ["V=SPF1", "v=spf10"])
        return " ".join([version] + terms) + (" " if self.rng.random() < 0.1 else "")

    def build(self):
        self.hosts()
        for i, d in enumerate(DOMAINS):
            if self.rng.random() < 0.9:
                self.add(d, "TXT", self.record(i))
            if self.rng.random() < 0.05:
                self.features.add("two-records")
                self.add(d, "TXT", "v=spf1 -all")
            if self.rng.random() < 0.2:
                self.add(d, "TXT", "google-site-verification=abc")
        return self


def txt_zone(value):
    out, s = [], value.encode()
    for i in range(0, max(len(s), 1), 255):
        chunk = s[i:i + 255]
        out.append('"' + "".join(c if c not in '"\\' and " " <= c <= "~" else f"\\{ord(c):03d}"
                                 for c in chunk.decode("latin-1")) + '"')
    return " ".join(out)


def zone_text(world):
    lines = ["$TTL 300"]
    for name, rrs in world.rr.items():
        for rtype, v in rrs:
            if rtype == "TXT":
                lines.append(f"{name}. IN TXT {txt_zone(v)}")
            elif rtype == "MX":
                lines.append(f"{name}. IN MX {v[0]} {v[1]}.")
            elif rtype == "PTR":
                lines.append(f"{name}. IN PTR {v}.")
            else:
                lines.append(f"{name}. IN {rtype} {v}")
    return "\n".join(lines) + "\n"


def pyspf_check(world):
    data = world.rr

    def lookup(name, qtype, *args, **kwargs):
        name = name.lower().rstrip(".")
        out = []
        for rtype, v in data.get(name, []):
            if rtype != qtype:
                continue
            out.append(((name, rtype), [v.encode()] if rtype == "TXT" else v))
        return out

    spf.DNSLookup = lookup
    q = spf.query(i=world.ip, s=world.sender, h=world.helo, receiver="r.test")
    q.set_default_explanation("DEFAULT")
    res, _, exp = q.check()
    return res, exp


def rampart_check(rampart, world, path):
    with open(path, "w") as f:
        f.write(zone_text(world))
    args = [rampart, "spf", "check", "--ip", world.ip, "--sender", world.sender,
            "--helo", world.helo, "--receiver", "r.test", "--explanation", "DEFAULT",
            "--dns-zone", path, "--dns-offline", "--json"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert p.returncode in (0, 1, 3), p.stderr
    out = json.loads(p.stdout)
    return out["result"], out.get("explanation", ""), out


@pytest.mark.skipif(spf is None, reason="python3-spf is not installed")
def test_differential_against_pyspf(rampart):
    rng = random.Random(SEED)
    worlds = [World(rng).build() for _ in range(CASES)]
    expected = [pyspf_check(w) for w in worlds]
    with tempfile.TemporaryDirectory() as d:
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            got = list(pool.map(lambda iw: rampart_check(rampart, iw[1],
                                                         os.path.join(d, f"{iw[0]}.zone")),
                                 enumerate(worlds)))
    mismatches = []
    for n, (w, (pres, pexp), (rres, rexp, raw)) in enumerate(zip(worlds, expected, got)):
        if pres != rres or (pres == "fail" and pexp != rexp):
            mismatches.append(f"case {n}: pyspf {pres} {pexp!r}, rampart {rres} {rexp!r} "
                              f"({raw.get('reason')}: {raw.get('problem')})\n"
                              f"  ip={w.ip} sender={w.sender!r} helo={w.helo}\n"
                              + zone_text(w))
    results = {}
    for res, _ in expected:
        results[res] = results.get(res, 0) + 1
    features = set().union(*(w.features for w in worlds))
    print(f"{CASES} cases, results {sorted(results.items())}, "
          f"features {sorted(features)}, {len(mismatches)} mismatches", file=sys.stderr)
    assert not mismatches, f"{len(mismatches)} of {CASES} differ:\n" + "\n".join(mismatches[:5])
    # the generated set really exercises every result and feature
    for res in ("pass", "fail", "softfail", "neutral", "none", "permerror"):
        assert results.get(res, 0) >= 10, (res, results)
    for feat in ("ip4", "ip6", "a", "mx", "ptr", "exists", "include", "all", "macro",
                 "redirect", "exp", "syntax-error", "loop", "two-records"):
        assert feat in features, feat
