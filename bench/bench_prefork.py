#!/usr/bin/env python3
"""What fork costs under the shim, in memory and in time, for a prefork
server (test/fork/prefork.py: a master with a heap of small objects forks
workers that read part of it and build heaps of their own).

Runs each configuration ROUNDS times, interleaved, and prints a markdown
table of medians: total Pss + hugetlb of all processes (and its ratio to
stock), a worker's own memory (Private_Dirty + Private_Hugetlb), a worker's
hugetlb, the master's first fork and its later ones.

    bench/bench_prefork.py --lib build/libpyhuge.so [--python /usr/bin/python3.11]
        [--heap 400] [--workers 4] [--worker-mib 50] [--rounds 3] [--json out.json]

Configurations: stock; pyhuge (defaults; the master has one thread at fork,
so its huge pages move to ordinary memory before the first fork); pyhuge,
thread alive (a second thread in the master: each fork copies the hugetlb
heap into a snapshot the child takes over); pyhuge, PYHUGE_FORK=share
(children share private huge pages copy-on-write: unsafe with a drained
pool). `--move`: only the master's first fork, beside touching as much fresh
memory in the same process (test/fork/move_cost.py). Needs a pool big enough for the master's heap and the workers' (root:
it is sized for the run and put back)."""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFORK = os.path.join(ROOT, "test", "fork", "prefork.py")
NR = "/proc/sys/vm/nr_hugepages"


def run(python, env_extra, args):
    env = dict(os.environ)
    env.update(env_extra)
    out = subprocess.run([python, PREFORK] + args, env=env, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


MOVE_COST = os.path.join(ROOT, "test", "fork", "move_cost.py")


def move_table(a, lib):
    """--move: the master's first fork beside touching as much fresh memory
    (test/fork/move_cost.py), in the same process, ROUNDS times each way."""
    runs = {"stock": [], "pyhuge": []}
    for rnd in range(a.rounds):
        for name, env in [("stock", {}), ("pyhuge", {"LD_PRELOAD": lib})][::1 if rnd % 2 else -1]:
            e = dict(os.environ, **env)
            out = subprocess.run([a.python, MOVE_COST, str(a.heap)], env=e, capture_output=True,
                                 text=True, check=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
    med = statistics.median
    print("| %s, heap %d MiB, %d rounds | moved (MiB) | touch fresh (ms) | touch fresh, THP (ms) "
          "| first fork (ms) | fork / touch |" % (os.path.basename(a.python), a.heap, a.rounds))
    print("|---|---|---|---|---|---|")
    for name, rs in runs.items():
        print("| %s | %.0f | %.0f | %.0f | %.1f | %.2f [%.2f-%.2f] |" % (
            name, med([r["moved_mib"] for r in rs]), med([r["touch_ms"] for r in rs]),
            med([r["touch_thp_ms"] for r in rs]), med([r["fork_ms"] for r in rs]),
            med([r["fork_ms"] / r["touch_ms"] for r in rs]),
            min(r["fork_ms"] / r["touch_ms"] for r in rs),
            max(r["fork_ms"] / r["touch_ms"] for r in rs)))
    return runs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--move", action="store_true",
                   help="only the first fork's cost beside a fresh-memory touch of the same size")
    p.add_argument("--lib", required=True)
    p.add_argument("--python", default="/usr/bin/python3.11")
    p.add_argument("--heap", type=int, default=400)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--worker-mib", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pool", type=int, default=0, help="pages to reserve (default: enough)")
    p.add_argument("--json")
    a = p.parse_args()
    lib = os.path.abspath(a.lib)
    args = [str(a.heap), str(a.workers), str(a.worker_mib)]
    configs = [
        ("stock", {}, []),
        ("pyhuge", {"LD_PRELOAD": lib}, []),
        ("pyhuge, thread alive", {"LD_PRELOAD": lib}, ["10", "thread"]),
        ("pyhuge, PYHUGE_FORK=share", {"LD_PRELOAD": lib, "PYHUGE_FORK": "share"}, []),
    ]
    old = int(open(NR).read())
    want = a.pool or (a.heap * 3 + a.workers * a.worker_mib * 3)  # pages: about 1.5 per MiB asked
    if os.geteuid() == 0 and old < want:
        with open(NR, "w") as f:
            f.write(str(want))
    results = {name: [] for name, _, _ in configs}
    try:
        if a.move:
            results = move_table(a, lib)
        for rnd in range(0 if a.move else a.rounds):
            order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
            for name, env, extra in order:
                results[name].append(run(a.python, env, args + (extra or ["10"])))
                print("round %d %s: %.0f MiB" % (rnd + 1, name, results[name][-1]["total_mib"]),
                      file=sys.stderr)
    finally:
        if os.geteuid() == 0 and old < want:
            with open(NR, "w") as f:
                f.write(str(old))

    if a.move:
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"args": vars(a), "results": results}, f, indent=1)
        return

    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    stock_total = med([r["total_mib"] for r in results["stock"]])
    print("| %s, master heap %d MiB, %d workers building %d MiB each | Pss + hugetlb, all processes (MiB) "
          "| ratio to stock | a worker's own memory (MiB) | a worker's hugetlb (MiB) | first fork (ms) "
          "| later forks (ms) |" % (os.path.basename(a.python), a.heap, a.workers, a.worker_mib))
    print("|---|---|---|---|---|---|---|")
    for name, _, _ in configs:
        rs = results[name]
        total = med([r["total_mib"] for r in rs])
        private = med([w["private"] for r in rs for w in r["workers_mem"]])
        huge = med([w["hugetlb"] for r in rs for w in r["workers_mem"]])
        first = med([r["fork_ms"][0] for r in rs])
        later = med([x for r in rs for x in r["fork_ms"][1:]])
        print("| %s | %.0f | %.2f | %.0f | %.0f | %.1f | %.1f |" % (
            name, total, total / stock_total, private, huge, first, later))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
