"""`pyhuge ab -- CMD`: interleaved runs of CMD in two arms (no shim, or the
shim loaded and switched off, against the shim on; or an A/A pair), each
measured from outside: times, faults, memory with hugetlb, pool pages."""
import json
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time

from pyhuge import fields, ranktest
from pyhuge.common import (EXIT_OK, UsageError, command_after_dashes, die, kv_kb, meminfo,
                           need_lib, preload_env, progress, progress_done, read)


METRICS = [
    ("wall_s", "wall time (s)", "%.3f"),
    ("user_s", "user time (s)", "%.3f"),
    ("sys_s", "system time (s)", "%.3f"),
    ("minor_faults", "minor page faults", "%.0f"),
    ("peak_mem_mib", "peak RSS + hugetlb (MiB)", "%.1f"),
    ("peak_hugetlb_mib", "peak hugetlb (MiB)", "%.1f"),
    ("peak_thp_mib", "peak AnonHugePages (MiB)", "%.1f"),
    ("pool_pages", "huge pages taken from pool", "%.0f"),
]


def measure(cmd, env, interval=0.01):
    """One run: wall/user/sys time and minor faults (wait4's rusage; the
    wait blocks, so wall time is exact), peak memory counted as RSS plus
    hugetlb (sampled every 10 ms from /proc/PID/status: hugetlb is not in
    RSS), peak transparent huge page memory (AnonHugePages in
    /proc/PID/smaps_rollup, every 50 ms: it walks page tables), and the pool
    pages it took (/proc/meminfo)."""
    def pool_in_use():
        m = meminfo()
        return m.get("HugePages_Total", 0) - m.get("HugePages_Free", 0)
    pool0 = pool_in_use()
    peak = {"mem": 0, "huge": 0, "thp": 0, "pool": 0}
    done = threading.Event()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    status, rollup = "/proc/%d/status" % proc.pid, "/proc/%d/smaps_rollup" % proc.pid

    def sample():
        n = 0
        while not done.is_set():
            s = kv_kb(read(status, ""), ("VmRSS", "HugetlbPages"))
            if s:
                peak["mem"] = max(peak["mem"], s.get("VmRSS", 0) + s.get("HugetlbPages", 0))
                peak["huge"] = max(peak["huge"], s.get("HugetlbPages", 0))
            if n % 5 == 0:
                r = kv_kb(read(rollup, ""), ("AnonHugePages",))
                peak["thp"] = max(peak["thp"], r.get("AnonHugePages", 0))
            peak["pool"] = max(peak["pool"], pool_in_use() - pool0)
            n += 1
            done.wait(interval)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # The sampler reads /proc/PID/* of a child that is not yet reaped, so the
    # PID cannot be reused under it; waitid(WNOWAIT) waits without reaping.
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    wall = time.monotonic() - t0
    done.set()
    sampler.join()
    pid, st, ru = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped here: keep Popen from waiting again
    code = (st >> 8) & 0xff if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
    return {"exit": code, "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "minor_faults": ru.ru_minflt, "peak_mem_mib": max(peak["mem"], ru.ru_maxrss) / 1024,
            "peak_hugetlb_mib": peak["huge"] / 1024, "peak_thp_mib": peak["thp"] / 1024,
            "pool_pages": peak["pool"]}


def bootstrap_ratio(a, b, n=4000, seed=1):
    """95% interval of median(b) / median(a), resampling both."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(n):
        ma = statistics.median(rng.choice(a) for _ in a)
        mb = statistics.median(rng.choice(b) for _ in b)
        if ma > 0:
            ratios.append(mb / ma)
    ratios.sort()
    if not ratios:
        return float("nan"), float("nan")
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


# The arms: what the control runs, against the shim switched on.
CONTROLS = {
    "stock": "no LD_PRELOAD",
    "off": "libpyhuge.so loaded with PYHUGE=off",
}


def arms(a, lib):
    """[(arm label, column heading, environment)] for control and treatment.
    Each arm's processes get PYHUGE_ARM=<label>, so the shim's stats page,
    exit line and metrics say which arm they ran in."""
    base = dict(os.environ)
    base.pop("LD_PRELOAD", None)
    base.pop("PYHUGE", None)
    if a.control == "off":
        control = dict(preload_env(lib, base), PYHUGE="off")
    else:
        control = dict(base)
    treatment = preload_env(lib, base)
    heading = {"stock": "stock", "off": "PYHUGE=off"}[a.control]
    if a.aa:
        # A/A: the treatment arm runs exactly what the control runs; what
        # differs between them is the noise of this machine and command.
        return [(a.labels[0], "A: " + heading, dict(control, PYHUGE_ARM=a.labels[0])),
                (a.labels[1], "A': " + heading, dict(control, PYHUGE_ARM=a.labels[1]))]
    return [(a.labels[0], heading, dict(control, PYHUGE_ARM=a.labels[0])),
            (a.labels[1], "pyhuge", dict(treatment, PYHUGE_ARM=a.labels[1]))]


def cmd_ab(a):
    cmd = command_after_dashes(a.cmd)
    if a.runs < 3:
        raise UsageError("-n must be at least 3 to say anything")
    if a.warmup < 0:
        raise UsageError("--warmup cannot be negative")
    labels = [x.strip() for x in a.arm_labels.split(",")]
    # what the library takes as PYHUGE_ARM (include/pyhuge.h: PYHUGE_ARM_MAX)
    label = re.compile(r"[A-Za-z0-9._:+-]{1,%d}\Z" % (fields.ARM_MAX - 1))
    if len(labels) != 2 or labels[0] == labels[1] or not all(label.match(x) for x in labels):
        raise UsageError("--arm-labels takes two different labels, CONTROL,TREATMENT, each 1 to %d "
                         "of A-Z a-z 0-9 . _ - : +; not %r" % (fields.ARM_MAX - 1, a.arm_labels))
    a.labels = labels
    for opt, path in (("--json", a.json), ("--png", a.png)):
        # said before the runs, not after minutes of them
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise UsageError("%s %s: no such directory" % (opt, path))
    lib = need_lib(a.lib)
    config = arms(a, lib)
    (c_label, c_head, _), (t_label, t_head, _) = config
    runs = {c_label: [], t_label: []}
    total = (a.runs + a.warmup) * 2
    done = 0
    for i in range(a.warmup + a.runs):
        for label, head, env in (config if i % 2 == 0 else config[::-1]):  # ABBA: neither arm always first
            done += 1
            progress("pyhuge ab: run %d/%d (%s)" % (done, total, label))
            r = measure(cmd, env)
            if r["exit"] != 0:
                progress_done()
                die("the %s run of %s exited with status %d" % (label, " ".join(cmd), r["exit"]), 1)
            if i >= a.warmup:
                runs[label].append(r)
    progress_done()
    summary = {}
    for key, label, fmt in METRICS:
        c = [r[key] for r in runs[c_label]]
        t = [r[key] for r in runs[t_label]]
        mc, mt = statistics.median(c), statistics.median(t)
        lo, hi = bootstrap_ratio(c, t)
        summary[key] = {"control_median": mc, "treatment_median": mt,
                        "control_min": min(c), "control_max": max(c),
                        "treatment_min": min(t), "treatment_max": max(t),
                        "ratio": (mt / mc) if mc else None, "ratio_ci95": [lo, hi]}
    w = summary["wall_s"]
    lo, hi = w["ratio_ci95"]
    verdict = "faster" if hi < 1 else ("slower" if lo > 1 else "no difference")
    print("command: %s" % " ".join(shlex.quote(c) for c in cmd))
    if a.aa:
        print("A/A: both arms run %s (PYHUGE_ARM=%s and %s); any difference is noise"
              % (CONTROLS[a.control], c_label, t_label))
    else:
        print("arms: %s = %s, %s = libpyhuge.so on (PYHUGE_ARM says which)"
              % (c_label, CONTROLS[a.control], t_label))
    print("%d runs each, interleaved; medians, [min-max]; ratio %s/%s with a 95%% bootstrap interval\n"
          % (a.runs, t_label, c_label))
    print("| %-26s | %-22s | %-22s | %-20s |" % ("", c_head, t_head, "ratio"))
    print("|%s|%s|%s|%s|" % ("-" * 28, "-" * 24, "-" * 24, "-" * 22))
    for key, label, fmt in METRICS:
        m = summary[key]

        def cell(med, mn, mx):
            return "%s [%s-%s]" % (fmt % med, fmt % mn, fmt % mx)
        ratio = "-" if m["ratio"] is None else "%.2f (%.2f-%.2f)" % (m["ratio"], m["ratio_ci95"][0], m["ratio_ci95"][1])
        print("| %-26s | %-22s | %-22s | %-20s |" % (label, cell(m["control_median"], m["control_min"], m["control_max"]),
                                                    cell(m["treatment_median"], m["treatment_min"], m["treatment_max"]), ratio))
    print("\nverdict: %s (wall time %.2fx, 95%% interval %.2f-%.2f)" % (verdict.upper(), w["ratio"], lo, hi))
    # The same wall times as `pyhuge compare` would judge them.
    cw = [r["wall_s"] for r in runs[c_label]]
    tw = [r["wall_s"] for r in runs[t_label]]
    mw, hl = ranktest.mann_whitney(cw, tw), ranktest.hodges_lehmann(cw, tw)
    print("rank test: wall time shift %+.3f s (%.0f%% interval %+.3f to %+.3f), Mann-Whitney p = %.3g"
          % (hl["shift"], 100 * hl["confidence"], hl["low"], hl["high"], mw["p"]))
    result = {"command": cmd, "runs": a.runs, "aa": a.aa, "control": a.control,
              "arms": {"control": {"label": c_label, "heading": c_head},
                       "treatment": {"label": t_label, "heading": t_head}},
              "verdict": verdict, "summary": summary,
              "wall_rank_test": {"p": mw["p"], "u": mw["u"], "test": mw["method"], "shift_s": hl["shift"],
                                 "shift_low_s": hl["low"], "shift_high_s": hl["high"],
                                 "confidence": hl["confidence"]},
              "raw": {"control": runs[c_label], "treatment": runs[t_label]}}
    if a.json:
        try:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=2)
        except OSError as e:
            die("cannot write --json %s: %s" % (a.json, e.strerror))
        print("json: %s" % a.json)
    if a.png:
        chart(result, a.png)
    return EXIT_OK


def chart(result, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("pyhuge: no chart: matplotlib is not installed (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return
    keys = ["wall_s", "user_s", "sys_s", "minor_faults", "peak_mem_mib"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 3.6))
    for ax, key in zip(axes, keys):
        label = dict((k, l) for k, l, _ in METRICS)[key]
        data = [[r[key] for r in result["raw"][n]] for n in ("control", "treatment")]
        ax.boxplot(data, labels=[result["arms"][n]["heading"] for n in ("control", "treatment")],
                   widths=0.6)
        for i, d in enumerate(data, 1):
            ax.scatter([i] * len(d), d, s=10, alpha=0.6)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(bottom=0)
    w = result["summary"]["wall_s"]
    fig.suptitle("%s: %s, wall %.2fx (%.2f-%.2f)" % (" ".join(result["command"])[:60], result["verdict"],
                                                    w["ratio"], w["ratio_ci95"][0], w["ratio_ci95"][1]),
                 fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        die("cannot write --png %s: %s" % (path, e.strerror))
    print("chart: %s" % path)

