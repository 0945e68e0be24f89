#!/usr/bin/env python3
"""Holds huge pages until it is killed, as another user of the pool does
(a database, a JVM, a second test run): maps N pages of 2 MiB with
MAP_HUGETLB (reserved at mmap time, as without MAP_NORESERVE), writes to the
first M of them so that they are faulted in, leaving N - M reserved only,
prints one line saying so, and sleeps until killed, or until the process
that started it is gone (so that a runner killed with SIGKILL does not leave
pages held for good).

    hold-huge-pages.py N [M]      M defaults to N

Exits 1, saying why, when the kernel refuses the mapping (pool too small)."""
import mmap
import os
import signal
import sys
import time

MAP_HUGETLB = 0x40000  # <linux/mman.h>; the mmap module has no name for it before 3.10
HUGE = 2 << 20


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    n = int(sys.argv[1])
    m = int(sys.argv[2]) if len(sys.argv) == 3 else n
    try:
        # fileno -1: the module adds MAP_ANONYMOUS itself.
        buf = mmap.mmap(-1, n * HUGE, flags=mmap.MAP_PRIVATE | MAP_HUGETLB)
    except OSError as e:
        print("hold-huge-pages: cannot map %d huge pages: %s" % (n, e.strerror), file=sys.stderr)
        return 1
    for i in range(min(m, n)):
        buf[i * HUGE] = 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("holding %d huge pages: %d faulted in, %d reserved only" % (n, min(m, n), n - min(m, n)),
          flush=True)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
