#!/usr/bin/env python3
"""What each Python gets from the shim, measured: the demo workload
(scripts/demo_workload.py) on every CPython on the machine, stock and
under the shim, interleaved, RUNS times each; medians.

    bench/pythons_matrix.py [--lib build/libpyhuge.so] [--runs 3] [--pool 256] [--markdown FILE]

Pythons: pyenv's 3.6-3.13, Debian's /usr/bin/python3.11, and from the cache
of scripts/build-cpython.sh 3.14.7, the seed's 3.14.7 (bench/seed-patch.sh,
run stock: its huge pages are its own) and the free-threaded 3.14.7t (also
with MIMALLOC_ALLOW_LARGE_OS_PAGES=1, mimalloc's own huge pages, and with
MIMALLOC_PURGE_DELAY=-1, alone and under the shim). Per row:
wall time, minor page faults, peak memory (RSS + hugetlb), peak
AnonHugePages and hugetlb, and the shim's stats line (arenas on huge pages).
Needs root for the pool (--pool free pages each round, beside what others
hold; put back after; the lock of bench/bench.py)."""
import argparse
import glob
import os
import re
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from pyhuge import ab as pyhuge_ab  # noqa: E402
import bench  # noqa: E402  (Pool)

DEMO = os.path.join(ROOT, "scripts", "demo_workload.py")


def pythons(cache):
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    out = []
    for minor in range(6, 14):
        hits = sorted(glob.glob("%s/versions/3.%d.*/bin/python3.%d" % (root, minor, minor)))
        if hits:
            out.append((os.path.basename(os.path.dirname(os.path.dirname(hits[-1]))), hits[-1]))
    out.append(("3.11 Debian", "/usr/bin/python3.11"))
    for name, exe in (("3.14.7", "python3.14"), ("3.14.7-seed", "python3.14"), ("3.14.7t", "python3.14t")):
        path = os.path.join(cache, name, "bin", exe)
        if os.path.exists(os.path.join(cache, name, ".built")):
            out.append((name, path))
    return [(n, p) for n, p in out if os.access(p, os.X_OK)]


def arms(name, lib):
    base = {"PATH": "/usr/bin:/bin"}
    out = [("stock", base)]
    if name != "3.14.7-seed":
        out.append(("shim", dict(base, LD_PRELOAD=lib, PYHUGE_STATS="1")))
    if name == "3.14.7t":
        # mimalloc's own huge pages (hugetlb: the fork hazard), its purge
        # turned off alone, and the shim with it (doc/pythons-matrix.md).
        out += [("MIMALLOC_ALLOW_LARGE_OS_PAGES=1", dict(base, MIMALLOC_ALLOW_LARGE_OS_PAGES="1")),
                ("MIMALLOC_PURGE_DELAY=-1", dict(base, MIMALLOC_PURGE_DELAY="-1")),
                ("shim + MIMALLOC_PURGE_DELAY=-1", dict(base, LD_PRELOAD=lib, PYHUGE_STATS="1",
                                                        MIMALLOC_PURGE_DELAY="-1"))]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "libpyhuge.so"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pool", type=int, default=256)
    ap.add_argument("--cache", default="/var/cache/pyhuge/cpython")
    ap.add_argument("--lock", default="/tmp/pyhuge-pool.lock")
    ap.add_argument("--only", help="comma-separated row names")
    ap.add_argument("--markdown", metavar="FILE")
    a = ap.parse_args()
    lib = os.path.abspath(a.lib)
    rows = pythons(a.cache)
    if a.only:
        rows = [r for r in rows if r[0] in a.only.split(",")]
    got = {}
    for r in range(a.runs):
        with bench.Pool(a.pool, a.lock):
            for name, py in rows:
                for arm, env in arms(name, lib):
                    fd, stats = tempfile.mkstemp(prefix="pyhuge-matrix-")
                    os.close(fd)
                    if "PYHUGE_STATS" in env:
                        env = dict(env, PYHUGE_STATS=stats)
                    m = pyhuge_ab.measure([py, DEMO], env)
                    with open(stats) as f:
                        m["stats"] = f.read().strip()
                    os.unlink(stats)
                    got.setdefault((name, arm), []).append(m)
                    print("# %s %s run %d: exit %d, %.2f s, %d faults" % (
                        name, arm, r + 1, m["exit"], m["wall_s"], m["minor_faults"]), file=sys.stderr)
    lines = ["| Python | arm | wall (s) | minor faults | peak RSS + hugetlb (MiB) | AnonHugePages (MiB) | "
             "hugetlb (MiB) | the shim's stats | exit |", "|---|---|---|---|---|---|---|---|---|"]
    for name, py in rows:
        for arm, _ in arms(name, lib):
            ms = got[(name, arm)]
            med = lambda k: statistics.median(m[k] for m in ms)
            st = re.search(r"arenas huge=(\d+) fallback=(\d+) thp=(\d+).*?peak=(\d+)", ms[-1]["stats"])
            counted = st and any(int(st.group(i)) for i in (1, 2, 3))
            stats = ("arenas: %s huge on %s pages, %s THP, %s plain" % (st.group(1), st.group(4), st.group(3),
                                                                       st.group(2)) if counted else
                     ("no arena request" if arm == "shim" else "-"))
            lines.append("| %s | %s | %.2f | %d | %.0f | %.0f | %.0f | %s | %s |" % (
                name, arm, med("wall_s"), med("minor_faults"), med("peak_mem_mib"), med("peak_thp_mib"),
                med("peak_hugetlb_mib"), stats, ",".join(sorted({str(m["exit"]) for m in ms}))))
    table = "\n".join(lines) + "\n"
    print(table)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
