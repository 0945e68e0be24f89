"""`pyhuge reserve SIZE`: make SIZE of 2 MiB pages free in the pool, never
shrinking it under the processes that hold pages."""
import math
import os
import re
import sys

from pyhuge.common import (EXIT_DEGRADED, EXIT_OK, EXIT_REFUSED, HUGE, NR_HUGEPAGES, UsageError,
                           die, human, meminfo, read)


def parse_size(text):
    """Pages of 2 MiB for '512M', '4G', '1.5GiB', '300' (pages)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*", text or "")
    if not m:
        raise UsageError("SIZE must be a page count or a size like 512M or 4G, not %r" % text)
    value, unit = float(m.group(1)), m.group(2).upper()
    if not unit and not m.group(3):
        if value != int(value):
            raise UsageError("a page count must be whole: %r" % text)
        pages = int(value)
    else:
        mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
        pages = int(math.ceil(value * mult / HUGE))
    if pages <= 0:
        raise UsageError("SIZE must be more than zero")
    if pages > 1 << 24:
        raise UsageError("%r is more huge pages than any machine has" % text)
    return pages


def pool_counts():
    """(persistent pool size, pages a new mapping can have, pages held by
    processes). HugePages_Free counts reserved pages too (promised to a
    mapping, not faulted in yet), and Total counts surplus pages."""
    m = meminfo()
    total, free, rsvd = m.get("HugePages_Total", 0), m.get("HugePages_Free", 0), m.get("HugePages_Rsvd", 0)
    try:
        nr = int((read(NR_HUGEPAGES, "0") or "0").strip())
    except ValueError:
        nr = total
    return nr, free - rsvd, total - free + rsvd


def cmd_reserve(a):
    pages = parse_size(a.size)
    nr, avail, held = pool_counts()
    # Never below what processes hold: the kernel would turn their pages
    # into surplus pages, gone from the pool once they let go.
    target = max(nr, held + pages)
    print("asked: %d free pages of 2 MiB (%s); pool now %d pages, %d free, %d held by processes"
          % (pages, human(pages * HUGE), nr, avail, held))
    if avail >= pages:
        print("already enough: nothing to change")
    elif os.geteuid() != 0:
        print("pyhuge: sizing the pool needs root. Run:\n  sudo %s reserve %s\n"
              "Without root you can still use: pyhuge check, run, ab, stats (your own processes)."
              % (sys.argv[0], a.size), file=sys.stderr)
        return EXIT_REFUSED
    else:
        try:
            with open(NR_HUGEPAGES, "w") as f:
                f.write("%d\n" % target)
        except OSError as e:
            die("cannot write %s: %s" % (NR_HUGEPAGES, e.strerror))
        nr, avail, held = pool_counts()
        print("granted: pool %d pages (%s), %d free" % (nr, human(nr * HUGE), avail))
        if avail < pages:
            print("the kernel granted fewer pages than asked (memory is fragmented or short): "
                  "%d of %d free. Try again after `echo 1 > /proc/sys/vm/compact_memory`, or reserve "
                  "at boot (hugepages=%d on the kernel command line)." % (avail, pages, target))
    print("\nto keep it across reboots:\n"
          "  echo 'vm.nr_hugepages = %d' | sudo tee /etc/sysctl.d/90-pyhuge.conf && sudo sysctl --system\n"
          "\nto give it to a container (Kubernetes; the node needs the pool):\n"
          "  resources:\n    limits:\n      hugepages-2Mi: %s\n      memory: <as before>\n"
          "  env:\n    - {name: LD_PRELOAD, value: /usr/lib/x86_64-linux-gnu/libpyhuge.so.0}"
          % (max(target, nr), "%dMi" % (pages * 2)))
    return EXIT_OK if pool_counts()[1] >= pages else EXIT_DEGRADED

