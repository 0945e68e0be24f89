#!/usr/bin/env python3
"""The benchmark suites: every workload under every configuration, interleaved.

    bench/bench.py [--suite micro|apps] [--python PATH]... [--runs N] [--only NAME,...] [--out DIR]

Suites: `micro` (bench_workloads.py: allocation patterns and stdlib work) and
`apps` (bench_apps.py: real programs from Debian's archive on real inputs).

Configurations (each only where its library is installed):
  stock          the Python as it is
  stock-2        the same again: an A/A control, its ratio is the noise
  pyhuge         LD_PRELOAD=libpyhuge.so (hugetlb pool, then THP)
  pyhuge-thp     the same with PYHUGE_BACKEND=thp: no pool needed
  mimalloc       PYTHONMALLOC=malloc + libmimalloc.so.2, MIMALLOC_LARGE_OS_PAGES=1
  jemalloc       PYTHONMALLOC=malloc + libjemalloc.so.2, MALLOC_CONF=thp:always,metadata_thp:always
  glibc-hugetlb1 PYTHONMALLOC=malloc, GLIBC_TUNABLES=glibc.malloc.hugetlb=1
  glibc-hugetlb2 PYTHONMALLOC=malloc, GLIBC_TUNABLES=glibc.malloc.hugetlb=2

  seed           CPython 3.14.7 patched the seed's way (bench/seed-patch.sh:
                 2 MiB arenas, MAP_HUGETLB first), built by
                 scripts/build-cpython.sh --seed; only beside --python
                 3.14.7 (the same source, stock)

  --config NAME=VAR=VALUE,...  any other: e.g. the shim with glibc tunables,
                 --config 'pyhuge-top=LD_PRELOAD={lib},GLIBC_TUNABLES=glibc.malloc.top_pad=16777216'
                 PYTHON=PATH among them runs that interpreter instead of --python's

--paired runs each configuration at once beside a stock run of its own,
one on each CPU (taskset), swapping CPUs from pair to pair, and takes each
run's ratio to the stock run beside it: on a VM whose CPU speed swings
(here stock's own runs of one program differ by 20% and more) both runs
of a pair see the same host, so the ratios are steadier than those of runs
made minutes apart. The two share the L3 cache and memory bandwidth, which
a process alone on a machine does not.

Runs go round-robin (every workload and configuration once, then again, N
times; the configurations' order rotates from one workload and round to the
next) so that drift on a noisy machine hits them all alike. Figures per
configuration: median wall, user and system time with their range, minor
page faults, peak memory as RSS + hugetlb, huge pages taken from the pool,
the ratio to stock, and (apps) the geometric mean of the ratios. Writes
NAME.md, NAME.json and NAME.png to --out (NAME: bench, or bench-apps).
Needs a pool: each round takes --lock (flock, shared with whoever else
resizes the pool on this machine), reserves the pool, runs, restores it.
"""
import argparse
import fcntl
import json
import math
import os
import random
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from pyhuge import ab as pyhuge_ab, common as pyhuge_common  # noqa: E402
import bench_apps  # noqa: E402
import bench_workloads as W  # noqa: E402

LIBDIR = "/usr/lib/x86_64-linux-gnu"
STARTUP_SAMPLES = 8


# What makes one configuration differ from another; none is inherited from the caller.
ENV_KEYS = ("LD_PRELOAD", "PYTHONMALLOC", "GLIBC_TUNABLES", "MALLOC_CONF", "MIMALLOC_LARGE_OS_PAGES",
            "PYHUGE_BACKEND", "PYTHON")
# In a configuration, not a variable: the interpreter it runs instead of --python's.
PYTHON_KEY = "PYTHON"


def seed_python(py):
    """The seed's build of 3.14.7 (scripts/build-cpython.sh --seed), when py
    is the stock 3.14.7 built beside it; else None."""
    real = os.path.realpath(py)
    cache = os.path.dirname(os.path.dirname(os.path.dirname(real)))
    seed = os.path.join(cache, "3.14.7-seed", "bin", "python3.14")
    if os.path.basename(os.path.dirname(os.path.dirname(real))) == "3.14.7" and os.path.exists(seed):
        return seed
    return None


def split(py, cfg):
    """(the interpreter, the environment) a configuration runs with."""
    env = dict(cfg)
    return env.pop(PYTHON_KEY, None) or py, env


def configs(lib, extra=(), py=None):
    base = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("PYHUGE")}
    out = {"stock": base, "stock-2": dict(base), "pyhuge": dict(base, LD_PRELOAD=lib),
           "pyhuge-thp": dict(base, LD_PRELOAD=lib, PYHUGE_BACKEND="thp")}
    mi, je = os.path.join(LIBDIR, "libmimalloc.so.2"), os.path.join(LIBDIR, "libjemalloc.so.2")
    if os.path.exists(mi):
        out["mimalloc"] = dict(base, PYTHONMALLOC="malloc", LD_PRELOAD=mi, MIMALLOC_LARGE_OS_PAGES="1")
    if os.path.exists(je):
        out["jemalloc"] = dict(base, PYTHONMALLOC="malloc", LD_PRELOAD=je,
                               MALLOC_CONF="thp:always,metadata_thp:always")
    out["glibc-hugetlb1"] = dict(base, PYTHONMALLOC="malloc", GLIBC_TUNABLES="glibc.malloc.hugetlb=1")
    out["glibc-hugetlb2"] = dict(base, PYTHONMALLOC="malloc", GLIBC_TUNABLES="glibc.malloc.hugetlb=2")
    seed = seed_python(py) if py else None
    if seed:
        out["seed"] = dict(base, **{PYTHON_KEY: seed})
    for spec in extra:
        name, _, assigns = spec.partition("=")
        env = dict(base)
        for a in assigns.split(","):
            k, _, v = a.partition("=")
            env[k] = v.replace("{lib}", lib)
        out[name] = env
    return out


DEFAULT_CONFIGS = {"micro": ["stock", "pyhuge", "pyhuge-thp", "mimalloc", "jemalloc", "glibc-hugetlb1",
                             "glibc-hugetlb2"],
                   "apps": ["stock", "stock-2", "pyhuge", "mimalloc", "jemalloc", "glibc-hugetlb1",
                            "glibc-hugetlb2"]}


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
    free = pyhuge_common.meminfo().get("HugePages_Free", 0)
    if free:
        touch_once(free * pyhuge_common.HUGE, pyhuge_common.HUGE, flags=0x40000)  # MAP_HUGETLB


def warm_memory():
    """Touches all free memory but 1 GiB once. Where the host takes back
    freed guest memory (virtio free page reporting, as Firecracker does),
    transparent huge pages come from exactly such blocks, so THP runs pay
    the host's work that a machine up for days would not. See
    doc/benchmarks.md, "The THP tier on this VM"."""
    free = pyhuge_common.meminfo().get("MemFree", 0) * 1024 - (1 << 30)
    free -= free % pyhuge_common.HUGE
    if free > 0:
        touch_once(free, 4096)


def command(py, workload):
    if workload == "startup":
        return [py, "-c", "pass"]
    if workload in bench_apps.PROGRAMS:
        return [py, os.path.join(HERE, "bench_apps.py"), workload]
    return [py, os.path.join(HERE, "bench_workloads.py"), workload]


class Pool:
    """One round's hold on the machine's huge page pool: takes the lock that
    everyone who resizes the pool here takes, makes `pages` free pages (as
    few more as needed, beside whatever others hold), touches them once,
    and on leaving puts nr_hugepages back and lets the lock go."""

    def __init__(self, pages, lock):
        self.pages, self.lock = pages, lock

    def __enter__(self):
        self.fd = open(self.lock, "a") if self.lock else None
        if self.fd:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.before = int(open(pyhuge_common.NR_HUGEPAGES).read())
        short = self.pages - pyhuge_common.meminfo().get("HugePages_Free", 0)
        self.changed = short > 0 and os.geteuid() == 0
        if self.changed:
            with open(pyhuge_common.NR_HUGEPAGES, "w") as f:
                f.write("%d\n" % (self.before + short))
        elif short > 0:
            print("pool: %d pages short of --pool %d, and only root can grow it; the shim and "
                  "glibc-hugetlb2 runs fall back where it runs dry" % (short, self.pages), file=sys.stderr)
        warm_pool()
        return self

    def __exit__(self, *exc):
        if self.changed:
            with open(pyhuge_common.NR_HUGEPAGES, "w") as f:
                f.write("%d\n" % self.before)
        if self.fd:
            self.fd.close()


def measure_beside(cmd, stock_env, env, stock_cpu, other_cmd=None):
    """Stock and another configuration at once, each on a CPU of its own
    (stock on stock_cpu, the other on the next): both see the same host at
    the same moment. other_cmd: the other's command, where it runs another
    interpreter (the seed's build). Returns the other's measurement, with the stock run's
    times beside it, and the stock run's."""
    got = {}

    def one(key, c, e, cpu):
        got[key] = pyhuge_ab.measure(["taskset", "-c", str(cpu)] + c, e)
    cpus = os.sched_getaffinity(0)
    other_cpu = min((c for c in cpus if c != stock_cpu), default=stock_cpu)
    threads = [threading.Thread(target=one, args=("stock", cmd, stock_env, stock_cpu)),
               threading.Thread(target=one, args=("other", other_cmd or cmd, env, other_cpu))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m, base = got["other"], got["stock"]
    for r in (m, base):
        # The pool counter is the machine's, shared by both: a process's own is its hugetlb.
        r["pool_pages"] = int(r["peak_hugetlb_mib"] / 2)
    for k in PAIRED_KEYS:
        m["beside_" + k] = base[k]
    return m, base


def run_suite(py, names, cfgs, runs, pool_pages, lock, paired=False,
              after_round=lambda raw, rounds: None):
    """Every workload under every configuration, round after round, the
    order rotating. paired: each configuration runs at once beside a stock
    run of its own (measure_beside), CPUs swapping from one pair to the next."""
    raw = {w: {c: [] for c in cfgs} for w in names}
    order = [c for c in cfgs if c != "stock"] if paired else list(cfgs)
    total = runs * len(names) * len(order)
    cpus = sorted(os.sched_getaffinity(0))
    done = 0
    for r in range(runs):
        with Pool(pool_pages, lock):
            for i, w in enumerate(names):
                # Each configuration takes each place in the order as often as the others.
                k = (r + i) % len(order)
                for j, c in enumerate(order[k:] + order[:k]):
                    done += 1
                    sys.stderr.write("\r%s: run %d/%d (%s, %s)%s" % (os.path.basename(py), done, total, w, c,
                                                                    " " * 20))
                    sys.stderr.flush()
                    # Start-up takes 20 ms: its goal (3%) needs more samples than a workload.
                    for n in range(STARTUP_SAMPLES if w == "startup" else 1):
                        cpy, env = split(py, cfgs[c])
                        if paired:
                            m, base = measure_beside(command(py, w), cfgs["stock"], env,
                                                     cpus[(r + i + j + n) % len(cpus)], command(cpy, w))
                            base["failed"] = base["exit"] != 0
                            raw[w]["stock"].append(base)
                        else:
                            m = pyhuge_ab.measure(command(cpy, w), env)
                        m["failed"] = m["exit"] != 0 or m.get("beside_exit", 0) != 0
                        raw[w][c].append(m)
        after_round(raw, r + 1)
    sys.stderr.write("\r" + " " * 80 + "\r")
    return raw


KEYS = ["wall_s", "user_s", "sys_s", "minor_faults", "peak_mem_mib", "pool_pages", "peak_thp_mib"]
# Kept from the stock run beside each run of a paired suite.
PAIRED_KEYS = ["exit", "wall_s", "user_s", "sys_s", "minor_faults", "peak_mem_mib"]


def run_ratios(runs, k):
    """A paired run's ratios to the stock run beside it (none where there was none)."""
    return [r[k] / r["beside_" + k] for r in runs if r.get("beside_" + k)]


def summarize(raw):
    """Per workload and configuration: median, fastest and slowest of each
    figure, and its ratio to stock: the ratio of the medians, or in a paired
    run the median of each run's ratio to the stock run beside it (with
    their range, ratio_min and ratio_max)."""
    out = {}
    for w, per in raw.items():
        out[w] = {}
        stock = [r for r in per["stock"] if not r.get("failed")]
        for c, runs in per.items():
            ok = [r for r in runs if not r.get("failed")]
            s = {"failed_runs": len(runs) - len(ok)}
            for k in KEYS:
                vals = [r[k] for r in ok] or [float("nan")]
                s[k] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
                paired = run_ratios(ok, k) if c != "stock" else []
                if paired:
                    s[k].update(ratio=statistics.median(paired), ratio_min=min(paired), ratio_max=max(paired))
                    continue
                base = statistics.median([r[k] for r in stock]) if stock else 0
                s[k]["ratio"] = s[k]["median"] / base if base else None
            out[w][c] = s
    return out


def geomean(values):
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def geomeans(summary, cfgs, key):
    """Per configuration, the geometric mean over workloads of its median's ratio to stock's."""
    return {c: geomean([per[c][key]["ratio"] for per in summary.values()
                        if not per[c]["failed_runs"]]) for c in cfgs}


def geomean_interval(raw, cfg, n=2000, seed=1):
    """95% bootstrap interval of the geometric mean of wall-time ratios:
    each program's runs, stock's and cfg's, resampled with replacement."""
    rng = random.Random(seed)
    paired = [run_ratios([r for r in runs[cfg] if not r.get("failed")], "wall_s") for runs in raw.values()]
    if all(paired):  # each run's ratio to the stock run beside it, resampled
        means = sorted(geomean([statistics.median(rng.choices(p, k=len(p))) for p in paired])
                       for _ in range(n))
        return means[int(0.025 * n)], means[int(0.975 * n) - 1]
    per = [([r["wall_s"] for r in runs["stock"] if not r.get("failed")],
            [r["wall_s"] for r in runs[cfg] if not r.get("failed")]) for runs in raw.values()]
    per = [(a, b) for a, b in per if a and b]
    if not per:
        return float("nan"), float("nan")
    means = sorted(geomean([statistics.median(rng.choices(b, k=len(b))) /
                            statistics.median(rng.choices(a, k=len(a))) for a, b in per]) for _ in range(n))
    return means[int(0.025 * n)], means[int(0.975 * n) - 1]


def markdown(py, summary, cfgs):
    paired = any("ratio_min" in per[c]["wall_s"] for per in summary.values() for c in cfgs if c != "stock")
    lines = ["### %s" % py, "",
             "Wall time, median ratio to stock%s (lower is better); in brackets: system time ratio." % (
                 " (of each run to the stock run beside it)" if paired else ""), "",
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


def apps_markdown(py, summary, cfgs, raw):
    """The real-program suite: per program and configuration, the median
    wall time's ratio to stock with the range of its runs; the geometric
    means; faults and peak memory."""
    others = [c for c in cfgs if c != "stock"]
    head = lambda first: ["| %s | %s |" % (first, " | ".join(others)), "|---|" + "---|" * len(others)]

    def ratio_cell(s, base):
        if s["failed_runs"]:
            return "failed x%d" % s["failed_runs"]
        w = s["wall_s"]
        if "ratio_min" in w:
            return "%.3f (%.2f-%.2f)" % (w["ratio"], w["ratio_min"], w["ratio_max"])
        return "%.3f (%.2f-%.2f)" % (w["ratio"], w["min"] / base, w["max"] / base)
    paired = any("ratio_min" in per[c]["wall_s"] for per in summary.values() for c in others)
    how = ("Wall time: each run beside a stock run started with it on the other CPU; the median of "
           "the runs' ratios to the stock run beside them (lower is better), in brackets the lowest "
           "and highest." if paired else
           "Wall time, median ratio to stock's median (lower is better); in brackets the fastest and "
           "slowest run over stock's median.")
    lines = ["### %s" % py, "",
             how + " `stock-2` is stock again: its column is the noise.", "",
             "| program | stock wall (s) [range] | %s |" % " | ".join(others), "|---|---|" + "---|" * len(others)]
    for w, per in summary.items():
        st = per["stock"]["wall_s"]
        lines.append("| %s | %.2f [%.2f-%.2f] | %s |" % (w, st["median"], st["min"], st["max"], " | ".join(
            ratio_cell(per[c], st["median"]) for c in others)))
    g = {k: geomeans(summary, cfgs, k) for k in ("wall_s", "user_s", "sys_s", "minor_faults", "peak_mem_mib")}
    lines.append("| **geometric mean** | | %s |" % " | ".join("**%.3f**" % g["wall_s"][c] for c in others))
    lines += ["", "Geometric means over the programs, ratio to stock:", "",
              "| configuration | wall | wall, 95% interval | user | system | minor faults | peak memory | "
              "programs slower than 1.02 |", "|---|---|---|---|---|---|---|---|"]
    for c in others:
        slow = ["%s %.2f" % (w, per[c]["wall_s"]["ratio"]) for w, per in summary.items()
                if not per[c]["failed_runs"] and per[c]["wall_s"]["ratio"] > 1.02]
        lines.append("| %s | %.3f | %.3f-%.3f | %.3f | %.3f | %.3f | %.3f | %s |" % (
            c, g["wall_s"][c], *geomean_interval(raw, c), g["user_s"][c], g["sys_s"][c], g["minor_faults"][c], g["peak_mem_mib"][c],
            ", ".join(slow) or "none"))
    lines += ["", "Minor page faults (median):", ""] + head("program")
    lines[-2] = "| program | stock | %s |" % " | ".join(others)
    lines[-1] = "|---|---|" + "---|" * len(others)
    for w, per in summary.items():
        lines.append("| %s | %s |" % (w, " | ".join("%d" % per[c]["minor_faults"]["median"] for c in cfgs)))
    lines += ["", "Peak memory, RSS + hugetlb (MiB, median), and its difference from stock:", "",
              "| program | stock | %s |" % " | ".join(others), "|---|---|" + "---|" * len(others)]
    for w, per in summary.items():
        base = per["stock"]["peak_mem_mib"]["median"]
        lines.append("| %s | %.1f | %s |" % (w, base, " | ".join(
            "%.1f (%+.1f)" % (per[c]["peak_mem_mib"]["median"], per[c]["peak_mem_mib"]["median"] - base)
            for c in others)))
    return "\n".join(lines) + "\n"


def apps_goals(py, summary, cfgs):
    """Issue 13's goals for the shim's defaults, held against this run."""
    if "pyhuge" not in cfgs:
        return ""
    g = geomeans(summary, cfgs, "wall_s")
    slow = [w for w, per in summary.items() if per["pyhuge"]["wall_s"]["ratio"] > 1.02]
    over = []
    for w, per in summary.items():
        base, mine = per["stock"]["peak_mem_mib"]["median"], per["pyhuge"]["peak_mem_mib"]["median"]
        if mine - base > max(4.0, 0.03 * base):
            over.append("%s %+.1f MiB" % (w, mine - base))
    yes = lambda ok: "yes" if ok else "**no**"
    lines = ["Goals for the shim's defaults (%s):" % py, "",
             "| goal | measured | met |", "|---|---|---|",
             "| geometric mean of wall time at most 0.95 of stock | %.3f (A/A control: %s) | %s |" % (
                 g["pyhuge"], "%.3f" % g["stock-2"] if "stock-2" in g else "not run", yes(g["pyhuge"] <= 0.95)),
             "| no program above 1.02 | %s | %s |" % (", ".join(
                 "%s %.3f" % (w, summary[w]["pyhuge"]["wall_s"]["ratio"]) for w in slow) or "none", yes(not slow)),
             "| peak memory within 3%% or 4 MiB of stock | %s | %s |" % (", ".join(over) or "all within",
                                                                         yes(not over))]
    if "stock-2" in g:
        lines.append("| (the run itself) A/A control within 0.98-1.02, else too noisy to judge 0.95 | %.3f | %s |" % (
            g["stock-2"], yes(0.98 <= g["stock-2"] <= 1.02)))
    if "mimalloc" in g:
        lines.append("| ahead of mimalloc with large pages | pyhuge %.3f, mimalloc %.3f | %s |" % (
            g["pyhuge"], g["mimalloc"], yes(g["pyhuge"] < g["mimalloc"])))
    return "\n".join(lines) + "\n"


def seed_goals(py, summary, cfgs):
    """Issue 21's goal against the seed's own build: the shim on stock 3.14.7
    at least as fast as the seed on every workload, with less memory."""
    if "seed" not in cfgs or "pyhuge" not in cfgs:
        return ""
    fmt = lambda v: "-" if v is None else "%.3f" % v
    aa = "stock-2" in cfgs
    lines = ["Against the seed's build (%s): wall time ratio to stock%s; peak memory RSS + hugetlb "
             "(MiB, median)." % (py, ", stock-2 is stock again (the noise)" if aa else ""), "",
             "| workload | %spyhuge | seed | pyhuge / seed | as fast | memory pyhuge / seed (MiB) | less memory |"
             % ("stock-2 | " if aa else ""), "|---|" + "---|" * (6 + aa)]
    for w, per in summary.items():
        ok = lambda c: not per[c]["failed_runs"]
        mine = per["pyhuge"]["wall_s"]["ratio"] if ok("pyhuge") else None
        seed = per["seed"]["wall_s"]["ratio"] if ok("seed") else None
        rel = mine / seed if mine and seed else None
        mem_mine, mem_seed = per["pyhuge"]["peak_mem_mib"]["median"], per["seed"]["peak_mem_mib"]["median"]
        lines.append("| %s | %s%s | %s | %s | %s | %.0f / %.0f | %s |" % (
            w, (fmt(per["stock-2"]["wall_s"]["ratio"]) + " | ") if aa else "", fmt(mine), fmt(seed),
            fmt(rel), "yes" if rel is not None and rel <= 1.0 else "**no**", mem_mine, mem_seed,
            "yes" if mem_mine <= mem_seed else "**no**"))
    return "\n".join(lines) + "\n"


def render(results, out, name):
    md = ""
    for py, r in results.items():
        if r.get("suite") == "apps":
            md += apps_markdown(py, r["summary"], r["configs"], r["raw"]) + "\n" + apps_goals(py, r["summary"], r["configs"])
        else:
            md += markdown(py, r["summary"], r["configs"]) + "\n" + goals(py, r["summary"], r["configs"])
            md += "\n" + seed_goals(py, r["summary"], r["configs"])
        md += "\n"
    first = next(iter(results.values()), {})
    with open(os.path.join(out, name + ".md"), "w") as f:
        f.write("Measured %s with `%s` (%s rounds, %.0f min); kernel %s\n\n" % (
            first.get("date", "?"), first.get("command", "bench/bench.py"), first.get("runs", "?"),
            sum(r.get("seconds", 0) for r in results.values()) / 60, first.get("kernel", "?")) + md)
    chart(results, os.path.join(out, name + ".png"))
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
    bars = max(len(r["summary"]) * len(r["configs"]) for r in results.values()) if results else 0
    fig, axes = plt.subplots(n, 1, figsize=(max(12, 0.09 * bars), 4.2 * n), squeeze=False)
    for ax, (py, res) in zip(axes[:, 0], results.items()):
        summary = res["summary"]
        workloads = list(summary)
        cfgs = [c for c in res["configs"] if c != "stock"]
        width = 0.8 / len(cfgs)
        g = geomeans(summary, res["configs"], "wall_s")
        apps = res.get("suite") == "apps"
        labels = workloads + (["geometric mean"] if apps else [])
        for i, c in enumerate(cfgs):
            vals = [summary[w][c]["wall_s"]["ratio"] or 0 for w in workloads] + ([g[c]] if apps else [])
            ax.bar([x + i * width for x in range(len(labels))], vals, width, label=c)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(labels))])
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("wall time / stock")
        ax.set_title(py, fontsize=10)
        ax.legend(fontsize=8, ncol=min(len(cfgs), 6))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=("micro", "apps"), default="micro")
    ap.add_argument("--python", action="append")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", help="comma-separated workloads")
    ap.add_argument("--configs", help="comma-separated configurations (default: the suite's)")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=VAR=VALUE,...",
                    help="one more configuration: its variables, {lib} standing for the library")
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--name", help="output file names (default: bench, or bench-apps for --suite apps)")
    ap.add_argument("--pool", type=int, default=1024, help="free pool pages each round needs (default 1024)")
    ap.add_argument("--lock", default="/tmp/pyhuge-pool.lock",
                    help="flock held for each round, while the pool is resized and used ('' for none)")
    ap.add_argument("--lib", default=None)
    ap.add_argument("--paired", action="store_true",
                    help="run each configuration at once beside a stock run, one on each CPU: "
                         "ratios that the host's changing speed does not move (needs 2 CPUs)")
    ap.add_argument("--warm-memory", action="store_true",
                    help="touch all free memory once first (VMs with free page reporting)")
    ap.add_argument("--report", metavar="JSON", help="only redraw NAME.md and NAME.png from a NAME.json")
    a = ap.parse_args()
    name = a.name or ("bench-apps" if a.suite == "apps" else "bench")
    os.makedirs(a.out, exist_ok=True)
    if a.report:
        with open(a.report) as f:
            results = json.load(f)
        print(render(results, a.out, a.name or os.path.basename(a.report).rsplit(".", 1)[0]))
        return 0
    if a.paired and len(os.sched_getaffinity(0)) < 2:
        ap.error("--paired needs two CPUs, one for each run of a pair")
    lib, _ = pyhuge_common.find_lib(a.lib)
    if not lib:
        ap.error("no libpyhuge.so: build first")
    lib = os.path.abspath(lib)
    if a.suite == "apps":
        pys = a.python or ["/usr/bin/python3"]
        names = a.only.split(",") if a.only else bench_apps.APPS
    else:
        pys = a.python or ["/root/.pyenv/versions/3.11.7/bin/python3.11", "/usr/bin/python3.11"]
        names = a.only.split(",") if a.only else W.MICRO + W.REAL
    wanted = (a.configs.split(",") if a.configs else DEFAULT_CONFIGS[a.suite]) + [
        c.partition("=")[0] for c in a.config]
    if a.warm_memory:
        warm_memory()
    results = {}
    for py in pys:
        if not os.path.exists(py):
            print("skipping %s: not installed" % py, file=sys.stderr)
            continue
        available = configs(lib, a.config, py)
        cfgs = {k: available[k] for k in ["stock"] + [c for c in wanted if c != "stock"] if k in available}
        t0 = time.time()

        def record(raw, rounds):
            # Written after every round: a run stopped part way keeps what it measured.
            results[py] = {"suite": a.suite, "configs": list(cfgs), "runs": rounds, "summary": summarize(raw),
                           "raw": raw, "seconds": time.time() - t0, "date": time.strftime("%Y-%m-%d"),
                           "kernel": os.uname()[2], "lib": lib,
                           "command": " ".join(["bench/bench.py"] + sys.argv[1:]), "paired": a.paired,
                           "env": {c: {k: v for k, v in e.items() if k in ENV_KEYS or k.startswith("PYHUGE")}
                                   for c, e in cfgs.items()}}
            with open(os.path.join(a.out, name + ".json"), "w") as f:
                json.dump(results, f, indent=1)
        run_suite(py, names, cfgs, a.runs, a.pool, a.lock, a.paired, record)
    print(render(results, a.out, name))
    print("wrote %s/%s.md, %s.json, %s.png" % (a.out, name, name, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
