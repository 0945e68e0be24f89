#!/usr/bin/env python3
"""The benchmark suite: every workload under every configuration, interleaved.

    bench/bench.py [--python PATH]... [--runs N] [--only NAME,...] [--out DIR]

Configurations (each only where its library is installed):
  stock          the Python as it is
  pyhuge         LD_PRELOAD=libpyhuge.so (hugetlb pool, then THP)
  pyhuge-thp     the same with PYHUGE_BACKEND=thp: no pool needed
  mimalloc       PYTHONMALLOC=malloc + libmimalloc.so.2, MIMALLOC_LARGE_OS_PAGES=1
  jemalloc       PYTHONMALLOC=malloc + libjemalloc.so.2, MALLOC_CONF=thp:always,metadata_thp:always
  glibc-hugetlb1 PYTHONMALLOC=malloc, GLIBC_TUNABLES=glibc.malloc.hugetlb=1
  glibc-hugetlb2 PYTHONMALLOC=malloc, GLIBC_TUNABLES=glibc.malloc.hugetlb=2

Runs go round-robin (every workload and configuration once, then again, N
times) so that drift on a noisy machine hits them all alike. Figures per
configuration: median wall, user and system time with their range, minor
page faults, peak memory as RSS + hugetlb, huge pages taken from the pool,
and the ratio to stock. Writes bench.md, bench.json and bench.png to --out.
Needs a pool (root: the script reserves one and restores it).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import pyhuge  # noqa: E402  (measure, find_lib, meminfo)
import bench_workloads as W  # noqa: E402

LIBDIR = "/usr/lib/x86_64-linux-gnu"
STARTUP_SAMPLES = 8


def configs(lib):
    base = dict(os.environ)
    for k in ("LD_PRELOAD", "PYTHONMALLOC", "GLIBC_TUNABLES", "MALLOC_CONF", "MIMALLOC_LARGE_OS_PAGES",
              "PYHUGE_BACKEND"):
        base.pop(k, None)
    out = {"stock": base, "pyhuge": dict(base, LD_PRELOAD=lib),
           "pyhuge-thp": dict(base, LD_PRELOAD=lib, PYHUGE_BACKEND="thp")}
    mi, je = os.path.join(LIBDIR, "libmimalloc.so.2"), os.path.join(LIBDIR, "libjemalloc.so.2")
    if os.path.exists(mi):
        out["mimalloc"] = dict(base, PYTHONMALLOC="malloc", LD_PRELOAD=mi, MIMALLOC_LARGE_OS_PAGES="1")
    if os.path.exists(je):
        out["jemalloc"] = dict(base, PYTHONMALLOC="malloc", LD_PRELOAD=je,
                               MALLOC_CONF="thp:always,metadata_thp:always")
    out["glibc-hugetlb1"] = dict(base, PYTHONMALLOC="malloc", GLIBC_TUNABLES="glibc.malloc.hugetlb=1")
    out["glibc-hugetlb2"] = dict(base, PYTHONMALLOC="malloc", GLIBC_TUNABLES="glibc.malloc.hugetlb=2")
    return out


def touch_once(length, step, flags=0):
    """Maps length bytes of anonymous memory, writes one byte every step
    bytes, and unmaps it: each page is then backed, as on a machine that
    has been up a while. On a VM the host may back guest memory only at
    first touch, and would bill the first configuration to use a fresh
    page for the host's work. False if the mapping is refused."""
    import mmap
    try:
        m = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | flags)
    except OSError:
        return False
    for off in range(0, length, step):
        m[off] = 1
    m.close()
    return True


def warm_pool():
    """Touches every free pool page once."""
    free = pyhuge.meminfo().get("HugePages_Free", 0)
    if free:
        touch_once(free * pyhuge.HUGE, pyhuge.HUGE, flags=0x40000)  # MAP_HUGETLB


def warm_memory():
    """Touches all free memory but 1 GiB once. Where the host takes back
    freed guest memory (virtio free page reporting, as Firecracker does),
    transparent huge pages come from exactly such blocks, so THP runs pay
    the host's work that a machine up for days would not. See the README."""
    free = pyhuge.meminfo().get("MemFree", 0) * 1024 - (1 << 30)
    free -= free % pyhuge.HUGE
    if free > 0:
        touch_once(free, 4096)


def command(py, workload):
    if workload == "startup":
        return [py, "-c", "pass"]
    return [py, os.path.join(HERE, "bench_workloads.py"), workload]


def run_suite(py, names, cfgs, runs):
    raw = {w: {c: [] for c in cfgs} for w in names}
    total = runs * len(names) * len(cfgs)
    done = 0
    for r in range(runs):
        for w in names:
            order = list(cfgs) if r % 2 == 0 else list(cfgs)[::-1]
            for c in order:
                done += 1
                sys.stderr.write("\r%s: run %d/%d (%s, %s)%s" % (os.path.basename(py), done, total, w, c, " " * 20))
                sys.stderr.flush()
                # Start-up takes 20 ms: its goal (3%) needs more samples than a workload.
                for _ in range(STARTUP_SAMPLES if w == "startup" else 1):
                    m = pyhuge.measure(command(py, w), cfgs[c])
                    if m["exit"] != 0:
                        m["failed"] = True
                    raw[w][c].append(m)
    sys.stderr.write("\r" + " " * 80 + "\r")
    return raw


KEYS = ["wall_s", "user_s", "sys_s", "minor_faults", "peak_mem_mib", "pool_pages", "peak_thp_mib"]


def summarize(raw):
    out = {}
    for w, per in raw.items():
        out[w] = {}
        stock = per["stock"]
        for c, runs in per.items():
            ok = [r for r in runs if not r.get("failed")]
            s = {"failed_runs": len(runs) - len(ok)}
            for k in KEYS:
                vals = [r[k] for r in ok] or [float("nan")]
                s[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
                base = statistics.median([r[k] for r in stock]) if stock else 0
                s[k]["ratio"] = s[k]["median"] / base if base else None
            out[w][c] = s
    return out


def markdown(py, summary, cfgs):
    lines = ["### %s" % py, "",
             "Wall time, median ratio to stock (lower is better); in brackets: system time ratio.", "",
             "| workload | " + " | ".join(c for c in cfgs if c != "stock") + " | stock wall (s) |",
             "|---|" + "---|" * (len(cfgs) - 1) + "---|"]
    for w, per in summary.items():
        cells = []
        for c in cfgs:
            if c == "stock":
                continue
            s = per[c]
            if s["failed_runs"]:
                cells.append("failed x%d" % s["failed_runs"])
                continue
            cells.append("%.2f (%.2f)" % (s["wall_s"]["ratio"], s["sys_s"]["ratio"] or 0))
        lines.append("| %s | %s | %.3f |" % (w, " | ".join(cells), per["stock"]["wall_s"]["median"]))
    lines += ["", "Peak memory (RSS + hugetlb, MiB, median) and huge pages taken from the pool:", "",
              "| workload | " + " | ".join(cfgs) + " |", "|---|" + "---|" * len(cfgs)]
    for w, per in summary.items():
        lines.append("| %s | %s |" % (w, " | ".join("%.0f / %d" % (per[c]["peak_mem_mib"]["median"],
                                                                   per[c]["pool_pages"]["median"]) for c in cfgs)))
    lines += ["", "Minor page faults (median):", "",
              "| workload | " + " | ".join(cfgs) + " |", "|---|" + "---|" * len(cfgs)]
    for w, per in summary.items():
        lines.append("| %s | %s |" % (w, " | ".join("%d" % per[c]["minor_faults"]["median"] for c in cfgs)))
    return "\n".join(lines) + "\n"


# CPython's own huge-page build, on its workloads (wall time ratio to stock).
TARGETS = {"tuples": 0.705, "fragmentation": 0.735, "mixed_sizes": 0.749, "bulk_small_alloc": 0.779,
           "slots_instances": 0.800, "arena_pressure": 0.879, "random_walk": 0.924}
ALTERNATIVES = ("mimalloc", "jemalloc", "glibc-hugetlb1", "glibc-hugetlb2")


def goals(py, summary, cfgs):
    """The speed goals, held against this run: each says met or not."""
    alts = [c for c in ALTERNATIVES if c in cfgs]
    lines = ["Goals (%s): wall ratio to stock; the best alternative is the lowest of %s." % (
        py, ", ".join(alts)), "",
             "| workload | target | pyhuge | pyhuge-thp | best alternative | pyhuge meets target | pyhuge ahead of all | extra peak memory (MiB) |",
             "|---|---|---|---|---|---|---|---|"]
    for w, per in summary.items():
        ratio = lambda c: per[c]["wall_s"]["ratio"] if c in per and not per[c]["failed_runs"] else None
        mine, thp = ratio("pyhuge"), ratio("pyhuge-thp")
        best = min(((ratio(c), c) for c in alts if ratio(c) is not None), default=(None, "-"))
        if w == "startup":
            target, meets = "1.03", (mine is not None and mine <= 1.03)
        elif w in TARGETS:
            target, meets = "%.3f" % TARGETS[w], (mine is not None and mine <= TARGETS[w])
        else:
            target, meets = "-", None
        ahead = mine is not None and best[0] is not None and mine < best[0]
        extra = per["pyhuge"]["peak_mem_mib"]["median"] - per["stock"]["peak_mem_mib"]["median"] \
            if "pyhuge" in per else float("nan")
        fmt = lambda v: "-" if v is None else "%.2f" % v
        lines.append("| %s | %s | %s | %s | %s %s | %s | %s | %+.1f%s |" % (
            w, target, fmt(mine), fmt(thp), best[1], fmt(best[0]),
            "-" if meets is None else ("yes" if meets else "**no**"), "yes" if ahead else "**no**",
            extra, "" if extra <= 4 else " **over 4**"))
    return "\n".join(lines) + "\n"


def render(results, out, runs):
    md = "".join(markdown(py, r["summary"], r["configs"]) + "\n" + goals(py, r["summary"], r["configs"]) + "\n"
                 for py, r in results.items())
    with open(os.path.join(out, "bench.md"), "w") as f:
        f.write("Measured %s with `bench/bench.py --runs %d`; kernel %s\n\n" % (
            time.strftime("%Y-%m-%d"), runs, os.uname()[2]) + md)
    chart(results, os.path.join(out, "bench.png"))
    return md


def chart(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no chart: python3-matplotlib is not installed", file=sys.stderr)
        return
    n = len(results)
    fig, axes = plt.subplots(n, 1, figsize=(12, 4.2 * n), squeeze=False)
    for ax, (py, res) in zip(axes[:, 0], results.items()):
        summary = res["summary"]
        workloads = list(summary)
        cfgs = [c for c in res["configs"] if c != "stock"]
        width = 0.8 / len(cfgs)
        for i, c in enumerate(cfgs):
            vals = [summary[w][c]["wall_s"]["ratio"] or 0 for w in workloads]
            ax.bar([x + i * width for x in range(len(workloads))], vals, width, label=c)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(workloads))])
        ax.set_xticklabels(workloads, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("wall time / stock")
        ax.set_title(py, fontsize=10)
        ax.legend(fontsize=8, ncol=len(cfgs))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", action="append")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", help="comma-separated workloads")
    ap.add_argument("--configs", help="comma-separated configurations (default: all available)")
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--pool", type=int, default=1024, help="pool pages to reserve (default 1024)")
    ap.add_argument("--lib", default=None)
    ap.add_argument("--warm-memory", action="store_true",
                    help="touch all free memory once first (VMs with free page reporting)")
    ap.add_argument("--report", metavar="JSON", help="only redraw bench.md and bench.png from a bench.json")
    a = ap.parse_args()
    if a.report:
        with open(a.report) as f:
            results = json.load(f)
        os.makedirs(a.out, exist_ok=True)
        print(render(results, a.out, next(iter(results.values()))["runs"] if results else 0))
        return 0
    lib = pyhuge.find_lib(a.lib)
    if not lib:
        ap.error("no libpyhuge.so: build first")
    lib = os.path.abspath(lib)
    pys = a.python or ["/root/.pyenv/versions/3.11.7/bin/python3.11", "/usr/bin/python3.11"]
    names = a.only.split(",") if a.only else W.MICRO + W.REAL
    os.makedirs(a.out, exist_ok=True)
    before = int(open(pyhuge.NR_HUGEPAGES).read())
    changed = False
    results = {}
    try:
        if os.geteuid() == 0 and before < a.pool:
            with open(pyhuge.NR_HUGEPAGES, "w") as f:
                f.write("%d\n" % a.pool)
            changed = True
        elif before < a.pool:
            print("pool: %d pages, fewer than --pool %d, and only root can grow it; the shim and "
                  "glibc-hugetlb2 runs fall back where it runs dry" % (before, a.pool), file=sys.stderr)
        warm_pool()
        if a.warm_memory:
            warm_memory()
        for py in pys:
            if not os.path.exists(py):
                print("skipping %s: not installed" % py, file=sys.stderr)
                continue
            cfgs = configs(lib)
            if a.configs:
                cfgs = {k: v for k, v in cfgs.items() if k in a.configs.split(",") or k == "stock"}
            t0 = time.time()
            raw = run_suite(py, names, cfgs, a.runs)
            results[py] = {"configs": list(cfgs), "runs": a.runs, "summary": summarize(raw), "raw": raw,
                           "seconds": time.time() - t0}
    finally:
        if changed:
            with open(pyhuge.NR_HUGEPAGES, "w") as f:
                f.write("%d\n" % before)
    with open(os.path.join(a.out, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(render(results, a.out, a.runs))
    print("wrote %s/bench.md, bench.json, bench.png" % a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
