#!/usr/bin/env python3
"""Prefork servers under load, with and without the shim: Debian's gunicorn
(Django) and uWSGI (Flask) running the demo apps of examples/servers/ on
loopback (test/servers/serve.py starts them), driven by wrk for a bounded
time, in interleaved rounds.

    bench/bench_servers.py --lib build/libpyhuge.so [--lib-before /tmp/b-prep/libpyhuge.so]
        [--servers gunicorn,uwsgi] [--rounds 3] [--duration 10] [--heap-mb 150]
        [--workers 2] [--connections 8] [--modes huge] [--no-freeze] [--json J] [--md M]

Arms: stock, stock again (the A/A arm: how far two identical arms differ on
this machine), the shim, the shim as it was before (--lib-before), and the
library loaded with PYHUGE=off. Per run: requests/s, p50/p99 latency (wrk
--latency), Pss + hugetlb of the master and its workers sampled half-way
through the load, the time from start to the first right answer, and the
master's first fork (DEMO_FORK_LOG: Python's before/after-fork hooks in
the master, the shim's move included). Prints a markdown table of medians
with each ratio to stock beside the A/A arm's ratio. Root: sizes the pool
for the run (free pages only, beside what others hold) and puts it back."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "servers"))
import serve  # noqa: E402

NR = "/proc/sys/vm/nr_hugepages"


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Pool:
    """Free huge pages for each run, beside what others hold: the machine is
    shared, and other programs size the pool too (tests that restore their
    own setting). Grown before each run when short; put back at the end
    only if nobody changed it since."""

    def __init__(self, want):
        self.want, self.orig, self.wrote = want, int(open(NR).read()), None

    def ensure(self):
        free = meminfo("HugePages_Free") - meminfo("HugePages_Rsvd")
        if os.geteuid() != 0 or free >= self.want:
            return
        self.wrote = int(open(NR).read()) + self.want - free
        with open(NR, "w") as f:
            f.write(str(self.wrote))

    def restore(self):
        if self.wrote is not None and int(open(NR).read()) == self.wrote:
            with open(NR, "w") as f:
                f.write(str(self.orig))


def to_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk(port, duration, connections, threads):
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % duration,
                          "--latency", "http://127.0.0.1:%d/work?n=7" % port],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = to_ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = to_ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p50, p99, int(errors.group(1)) if errors else 0


def total_memory(master):
    pids = [master] + serve.children(master)
    mems = [serve.memory(p) for p in pids]
    return {"total_mib": sum(m["pss_kb"] + m["hugetlb_kb"] for m in mems) / 1024,
            "hugetlb_mib": sum(m["hugetlb_kb"] for m in mems) / 1024,
            "workers_hugetlb_mib": sum(m["hugetlb_kb"] for m in mems[1:]) / 1024,
            "anon_huge_mib": sum(m["anon_huge_kb"] for m in mems) / 1024}


def one_run(server, env, a):
    fd, forklog = tempfile.mkstemp(prefix="pyhuge-forks-")
    os.close(fd)
    env = dict(env, DEMO_FORK_LOG=forklog)
    proc, port, log = serve.start(server, env, workers=a.workers, heap_mb=a.heap_mb,
                                  max_requests=a.max_requests)
    try:
        ready = serve.wait_ready(proc, port, timeout=120)
        if ready is None:
            raise RuntimeError("%s did not answer; log %s" % (server, log))
        wrk(port, 2, a.connections, a.threads)  # warm-up: workers up and past their first requests
        sample = {}

        def sampler():
            time.sleep(a.duration / 2)
            sample.update(total_memory(proc.pid))
        t = threading.Thread(target=sampler)
        t.start()
        rps, p50, p99, errors = wrk(port, a.duration, a.connections, a.threads)
        t.join()
    finally:
        serve.stop(proc)
    deaths, _ = serve.interesting(log)
    os.unlink(log)
    with open(forklog) as f:
        forks = [float(x) for x in f.read().split()]
    os.unlink(forklog)
    return dict(sample, rps=rps, p50_ms=p50, p99_ms=p99, errors=errors, ready_ms=ready,
                first_fork_ms=forks[0] if forks else float("nan"), deaths=len(deaths))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", required=True)
    p.add_argument("--lib-before")
    p.add_argument("--servers", default="gunicorn,uwsgi")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--heap-mb", type=int, default=150)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-requests", type=int, default=100000)
    p.add_argument("--pool", type=int, default=0, help="free pages wanted (default: 2 per heap MiB)")
    p.add_argument("--modes", default="huge", help="extra arms: huge (PYHUGE_FORK=huge), or ''")
    p.add_argument("--no-freeze", action="store_true",
                   help="the apps skip gc.freeze() (workers then copy most of the master's heap)")
    p.add_argument("--gc-every", type=int, default=0,
                   help="a full gc.collect() in the worker every N requests (DEMO_GC_EVERY)")
    p.add_argument("--tracked", action="store_true",
                   help="the preloaded heap as objects the collector tracks (DEMO_TRACKED=1)")
    p.add_argument("--skip-off", action="store_true", help="no PYHUGE=off arm")
    p.add_argument("--json")
    p.add_argument("--md")
    a = p.parse_args()
    lib = os.path.abspath(a.lib)
    arms = [("stock", {}), ("stock again (A/A)", {}), ("pyhuge", {"LD_PRELOAD": lib})]
    if a.lib_before:
        arms.append(("pyhuge before", {"LD_PRELOAD": os.path.abspath(a.lib_before)}))
    if not a.skip_off:
        arms.append(("PYHUGE=off", {"LD_PRELOAD": lib, "PYHUGE": "off"}))
    if "huge" in a.modes.split(","):
        arms.append(("pyhuge, PYHUGE_FORK=huge", {"LD_PRELOAD": lib, "PYHUGE_FORK": "huge"}))
    if a.no_freeze:
        for _, env in arms:
            env["DEMO_FREEZE"] = "0"
    if a.gc_every:
        for _, env in arms:
            env["DEMO_GC_EVERY"] = str(a.gc_every)
    if a.tracked:
        for _, env in arms:
            env["DEMO_TRACKED"] = "1"
    servers = a.servers.split(",")
    pool = Pool(a.pool or a.heap_mb * 2)
    results = {s: {name: [] for name, _ in arms} for s in servers}
    try:
        for rnd in range(a.rounds):
            for s in servers:
                k = rnd % len(arms)
                for name, env in arms[k:] + arms[:k]:
                    pool.ensure()
                    r = one_run(s, env, a)
                    results[s][name].append(r)
                    print("round %d %s %s: %.0f req/s, %.0f MiB, first fork %.1f ms" % (
                        rnd + 1, s, name, r["rps"], r.get("total_mib", 0), r["first_fork_ms"]),
                        file=sys.stderr, flush=True)
    finally:
        pool.restore()
    lines = table(results, arms, a)
    print("\n".join(lines))
    if a.md:
        with open(a.md, "w") as f:
            f.write("\n".join(lines) + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": results}, f, indent=1)


def table(results, arms, a):
    def med(rs, k):
        xs = [r[k] for r in rs if k in r]
        return statistics.median(xs) if xs else float("nan")

    out = ["%d rounds, interleaved; wrk -c%d -t%d -d%ds on /work?n=7; %d workers; heap %d MiB; %s; "
           "medians, ratio to stock (the A/A arm's ratio in brackets)" % (
               a.rounds, a.connections, a.threads, a.duration, a.workers, a.heap_mb,
               ("no gc.freeze()" if a.no_freeze else "gc.freeze() before fork") +
               (", gc.collect() every %d requests" % a.gc_every if a.gc_every else "") +
               (", a heap of tracked objects" if a.tracked else "")), ""]
    for s, by_arm in results.items():
        stock = by_arm["stock"]
        aa = by_arm["stock again (A/A)"]
        out.append("| %s | req/s | ratio [A/A] | p50 ms | p99 ms | Pss+hugetlb MiB | ratio [A/A] "
                   "| workers' hugetlb MiB | THP MiB | first answer ms | first fork ms | deaths |" % s)
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        aa_rps = med(aa, "rps") / med(stock, "rps")
        aa_mem = med(aa, "total_mib") / med(stock, "total_mib")
        for name, _ in arms:
            rs = by_arm[name]
            out.append("| %s | %.0f | %.3f [%.3f] | %.2f | %.2f | %.0f | %.3f [%.3f] | %.0f | %.0f | %.0f "
                       "| %.1f | %d |" % (
                           name, med(rs, "rps"), med(rs, "rps") / med(stock, "rps"), aa_rps,
                           med(rs, "p50_ms"), med(rs, "p99_ms"), med(rs, "total_mib"),
                           med(rs, "total_mib") / med(stock, "total_mib"), aa_mem,
                           med(rs, "workers_hugetlb_mib"), med(rs, "anon_huge_mib"),
                           med(rs, "ready_ms"), med(rs, "first_fork_ms"),
                           sum(r["deaths"] for r in rs)))
        out.append("")
    return out


if __name__ == "__main__":
    main()
