#!/usr/bin/env python3
"""Run a command with and without libpyhuge.so and print what the kernel saw.

    scripts/evidence.py [--runs N] [--lib PATH] [--json FILE] -- python3 app.py

Runs alternate (stock, pyhuge, stock, pyhuge, ...) and the table shows
medians. Every figure comes from the kernel's own accounts:
  - /proc/PID/status, sampled every 10 ms: VmRSS and HugetlbPages (hugetlb
    memory is not part of RSS, so memory = RSS + hugetlb);
  - /proc/meminfo: HugePages_Total - HugePages_Free, the pool pages in use;
  - wait4's rusage: user and system time, minor page faults;
and the shim's own one-line summary (PYHUGE_STATS) for arenas served.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LIB = os.path.join(os.path.dirname(HERE), "build", "libpyhuge.so")


def read_kb(path, keys):
    out = dict.fromkeys(keys, 0)
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in out:
                    out[k] = int(v.split()[0])
    except OSError:
        return None
    return out


def pool_in_use():
    m = read_kb("/proc/meminfo", ("HugePages_Total", "HugePages_Free"))
    return m["HugePages_Total"] - m["HugePages_Free"]


def parse_stats_line(text):
    """key=value pairs of the shim's 'stats:' line (last one if several)."""
    stats = {}
    for line in text.splitlines():
        if "stats: arenas" not in line:
            continue
        words = line.replace(";", " ").split()
        section = ""
        for w in words:
            if "=" not in w:
                section = w if w in ("arenas", "pages", "fallbacks") else section
                continue
            k, v = w.split("=", 1)
            try:
                stats[(section + "_" + k) if section else k] = int(v.rstrip("K"))
            except ValueError:
                pass
    return stats


def run_once(cmd, env, interval=0.01):
    pool0 = pool_in_use()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    peak_mem = peak_huge = peak_pool = 0
    status = "/proc/%d/status" % proc.pid
    while True:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        s = read_kb(status, ("VmRSS", "HugetlbPages"))
        if s:
            peak_mem = max(peak_mem, s["VmRSS"] + s["HugetlbPages"])
            peak_huge = max(peak_huge, s["HugetlbPages"])
        peak_pool = max(peak_pool, pool_in_use() - pool0)
        time.sleep(interval)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(st) if hasattr(os, "waitstatus_to_exitcode") else st >> 8
    return {
        "exit": code,
        "wall_s": wall,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "minor_faults": ru.ru_minflt,
        "peak_rss_plus_hugetlb_mib": max(peak_mem, ru.ru_maxrss) / 1024,
        "peak_hugetlb_mib": peak_huge / 1024,
        "pool_pages_used": peak_pool,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (default 3)")
    ap.add_argument("--lib", default=DEFAULT_LIB, help="libpyhuge.so (default: build/libpyhuge.so)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("give a command after --")
    lib = os.path.abspath(a.lib)
    if not os.path.exists(lib):
        ap.error("%s does not exist: build first (meson setup build && meson compile -C build)" % lib)

    results = {"stock": [], "pyhuge": []}
    shim_stats = {}
    for i in range(a.runs):
        for mode in ("stock", "pyhuge"):
            env = dict(os.environ)
            env.pop("LD_PRELOAD", None)
            stats_file = None
            if mode == "pyhuge":
                fd, stats_file = tempfile.mkstemp(prefix="pyhuge-stats-")
                os.close(fd)
                env["LD_PRELOAD"] = lib
                env["PYHUGE_STATS"] = stats_file
            print("run %d/%d: %s ..." % (i + 1, a.runs, mode), file=sys.stderr, end="\r", flush=True)
            r = run_once(cmd, env)
            if stats_file:
                with open(stats_file) as f:
                    r["shim"] = parse_stats_line(f.read())
                os.unlink(stats_file)
                shim_stats = r["shim"]
            if r["exit"] != 0:
                print("\n%s run exited %d: stopping" % (mode, r["exit"]), file=sys.stderr)
                return 1
            results[mode].append(r)
    print(" " * 40, file=sys.stderr, end="\r")

    rows = [
        ("wall time (s)", "wall_s", "%.3f"),
        ("user time (s)", "user_s", "%.3f"),
        ("system time (s)", "sys_s", "%.3f"),
        ("minor page faults", "minor_faults", "%.0f"),
        ("peak RSS + hugetlb (MiB)", "peak_rss_plus_hugetlb_mib", "%.1f"),
        ("peak hugetlb memory (MiB)", "peak_hugetlb_mib", "%.1f"),
        ("huge pages taken from the pool", "pool_pages_used", "%.0f"),
    ]
    med = {m: {k: statistics.median(r[k] for r in results[m]) for _, k, _ in rows} for m in results}
    print("command: %s" % " ".join(cmd))
    print("medians of %d interleaved runs each; kernel accounts (status, meminfo, rusage)\n" % a.runs)
    print("| %-32s | %12s | %12s | %7s |" % ("", "stock", "pyhuge", "ratio"))
    print("|%s|%s|%s|%s|" % ("-" * 34, "-" * 14, "-" * 14, "-" * 9))
    for label, k, f in rows:
        s, p = med["stock"][k], med["pyhuge"][k]
        ratio = ("%.2f" % (p / s)) if s else "-"
        print("| %-32s | %12s | %12s | %7s |" % (label, f % s, f % p, ratio))
    if shim_stats:
        print("\nshim (last run): %d arenas on huge pages, %d on ordinary pages, "
              "%d huge pages at peak (%d KiB arenas)"
              % (shim_stats.get("arenas_huge", 0), shim_stats.get("arenas_fallback", 0),
                 shim_stats.get("pages_peak", 0), shim_stats.get("arenas_size", 0)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": cmd, "runs": results, "median": med}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
