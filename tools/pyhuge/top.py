"""`pyhuge top`: every process with libpyhuge.so mapped, refreshed."""
import glob
import sys
import time

from pyhuge.common import EXIT_OK, UsageError, human, meminfo, read
from pyhuge.stats import NoStats, kernel_view, shim_stats


def shimmed_pids():
    pids = []
    for maps in glob.glob("/proc/[0-9]*/maps"):
        text = read(maps, "")
        if text and "libpyhuge" in text:
            pids.append(int(maps.split("/")[2]))
    return sorted(pids)


def cmd_top(a):
    if not a.interval > 0:
        raise UsageError("--interval is in seconds, more than 0, not %g" % a.interval)
    while True:
        rows = []
        for pid in shimmed_pids():
            k = kernel_view(pid)
            try:
                rows.append((pid, k, shim_stats(pid), None))
            except NoStats as e:
                rows.append((pid, k, None, str(e)))
        if not a.once and sys.stdout.isatty():
            sys.stdout.write("\x1b[H\x1b[2J")
        m = meminfo()
        print("pool: %d of %d huge pages free    %s" % (m.get("HugePages_Free", 0), m.get("HugePages_Total", 0),
                                                       time.strftime("%H:%M:%S")))
        print("%7s %-16s %-12s %10s %10s %8s %8s %8s %9s" % ("PID", "COMMAND", "ARM", "RSS", "HUGETLB",
                                                            "ARENAS", "FALLBK", "PAGES", "PEAK"))
        for pid, k, p, why in rows:
            if p:
                s = p["fields"]
                print("%7d %-16s %-12s %10s %10s %8d %8d %8d %9d"
                      % (pid, k["name"][:16], (p["arm"] or "-")[:12], human(k["rss_kb"] * 1024),
                         human(k["hugetlb_kb"] * 1024), s["arenas_live"], s["arenas_fallback"],
                         s["pages_now"], s["pages_peak"]))
            else:
                print("%7d %-16s %-12s %10s %10s   (%s)" % (pid, k["name"][:16], "?", human(k["rss_kb"] * 1024),
                                                           human(k["hugetlb_kb"] * 1024), why))
        if not rows:
            print("(no process is running under libpyhuge.so)")
        if a.once:
            return EXIT_OK
        try:
            time.sleep(a.interval)
        except KeyboardInterrupt:
            return EXIT_OK
