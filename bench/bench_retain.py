#!/usr/bin/env python3
"""What a long-running process keeps after a peak, per configuration.

    bench/bench_retain.py --lib /abs/libpyhuge.so [--runs 3] [--config NAME=VAR=VALUE,...]...

A child builds about 500 MiB of dicts, lists, ints and byte strings of
1 KiB to 512 KiB (dict tables, list storage and the larger strings are glibc
malloc's; the small objects are pymalloc's), frees them (all of it, or all
but every 100th dict, as a cache would keep), then serves small requests
for a second as an idle service does, and reports its memory, RSS +
hugetlb, at the peak, right after the free, after the idle second, and
after malloc_trim(0) (what glibc could give back if asked). "Warm": the
process has freed one 4 MiB block before, as any long-running one has, which
raises glibc's dynamic mmap threshold from 128 KiB to 4 MiB.
Configurations are bench.py's (stock, pyhuge, mimalloc, ...) and any given
with --config, as in bench.py: glibc tunables emulate what mallopt() in the
shim's constructor would do. Prints a Markdown table of medians.
"""
import argparse
import ctypes
import gc
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def memory_mib():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "HugetlbPages"):
                fields[k] = int(v.split()[0])
    return (fields.get("VmRSS", 0) + fields.get("HugetlbPages", 0)) / 1024


def child(keep_every, warm):
    if warm:
        bytes(4 << 20)  # made and freed at once
    rnd = random.Random(1)
    data = []
    while memory_mib() < 520:
        d = {i: [i, i * 7, str(i)] for i in range(rnd.randrange(500, 5000))}
        d["blob"] = bytes(rnd.randrange(1024, 512 * 1024))
        data.append(d)
    peak = memory_mib()
    kept = data[::keep_every] if keep_every else []
    del data, d
    gc.collect()
    freed = memory_mib()
    end, served = time.monotonic() + 1.0, 0
    while time.monotonic() < end:  # an idle service: small requests come and go
        reply = {"id": rnd.random(), "items": [str(i) for i in range(50)], "body": b"x" * 2000}
        served += len(reply["body"])
        time.sleep(0.001)
    idle = memory_mib()
    t0 = time.perf_counter()
    ctypes.CDLL(None).malloc_trim(0)
    trim_ms = (time.perf_counter() - t0) * 1000
    print("peak=%.1f freed=%.1f idle=%.1f trimmed=%.1f trim_ms=%.2f kept=%d" % (
        peak, freed, idle, memory_mib(), trim_ms, len(kept)))


def main():
    if sys.argv[1:2] == ["--child"]:
        child(int(sys.argv[2]), sys.argv[3] == "warm")
        return 0
    sys.path.insert(0, HERE)
    import bench
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--configs", default="stock,pyhuge,mimalloc")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=VAR=VALUE,...")
    ap.add_argument("--pool", type=int, default=512)
    ap.add_argument("--lock", default="/tmp/pyhuge-pool.lock")
    a = ap.parse_args()
    lib = os.path.abspath(a.lib)
    available = bench.configs(lib, a.config)
    names = [c for c in a.configs.split(",") + [c.partition("=")[0] for c in a.config] if c in available]
    scenarios = {"cold, all freed": (0, "cold"), "cold, 1% kept": (100, "cold"),
                 "warm, all freed": (0, "warm"), "warm, 1% kept": (100, "warm")}
    res = {(s, c): [] for s in scenarios for c in names}
    with bench.Pool(a.pool, a.lock):
        for r in range(a.runs):
            for s, (keep, warm) in scenarios.items():
                k = r % len(names)
                for c in names[k:] + names[:k]:
                    out = subprocess.run([a.python, __file__, "--child", str(keep), warm], env=available[c],
                                         capture_output=True, text=True, check=True).stdout
                    res[(s, c)].append(dict((k, float(v)) for k, v in (f.split("=") for f in out.split())))
    print("RSS + hugetlb (MiB), median of %d runs; `%s`\n" % (a.runs, " ".join(["bench/bench_retain.py"] + sys.argv[1:])))
    print("| scenario | configuration | peak | right after the free | after an idle second | "
          "kept after idle vs stock | after malloc_trim(0) | malloc_trim(0) took (ms) |")
    print("|---|---|---|---|---|---|---|---|")
    for s in scenarios:
        base = statistics.median(m["idle"] for m in res[(s, "stock")])
        for c in names:
            med = lambda key: statistics.median(m[key] for m in res[(s, c)])
            print("| %s | %s | %.0f | %.0f | %.0f | %+.0f | %.0f | %.1f |" % (
                s, c, med("peak"), med("freed"), med("idle"), med("idle") - base, med("trimmed"), med("trim_ms")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
