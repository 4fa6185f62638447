"""pyspf (python3-spf) evaluations per second over bench/spf/records.txt, answered from a
dict through pyspf's DNSLookup hook (its in-memory equivalent of a warm cache).
Usage: pyspf-bench.py RECORDS ROUNDS SECONDS -> prints "pyspf N" (median per second)."""
import statistics
import sys
import time

import spf


def load(path):
    rr, queries = {}, []
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("? "):
            queries.append(line[2:].split())
        elif line.strip():
            name, rtype, value = line.split(" ", 2)
            value = [value.encode()] if rtype == "TXT" else value
            rr.setdefault((name.lower(), rtype), []).append(((name.lower(), rtype), value))
    return rr, queries


def main():
    rr, queries = load(sys.argv[1])
    rounds, seconds = int(sys.argv[2]), float(sys.argv[3])
    spf.DNSLookup = lambda name, qtype, *a, **k: rr.get((name.lower().rstrip("."), qtype), [])

    def one_round(limit):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < limit:
            for ip, sender, want in queries:
                q = spf.query(i=ip, s=sender, h="client.example.net", receiver="mx.bench.test")
                res = q.check()[0]
                q.get_header(res)  # as the C programs build their Received-SPF text
                if res != want:
                    sys.exit(f"pyspf: {ip} gives {res}, want {want}")
                n += 1
        return n / (time.perf_counter() - start)

    one_round(seconds / 4)
    print("pyspf %.0f" % statistics.median(one_round(seconds) for _ in range(rounds)))


main()
