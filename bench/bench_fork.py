#!/usr/bin/env python3
"""Cost of fork() under the shim: time from fork() to the child's first
line of Python, and to its exit, for a parent with a given heap.

    LD_PRELOAD=... PYHUGE_FORK=copy python3 bench/bench_fork.py [HEAP_MIB] [FORKS]

Prints 'heap_mib=... fork_ms_median=... fork_ms_max=... parent_blocked_ms_median=...'.
Run it with and without the shim, with a roomy and a drained pool, to see
the price of fork safety (doc/fork-and-limits.md)."""
import os
import statistics
import sys
import time

heap_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
forks = int(sys.argv[2]) if len(sys.argv) > 2 else 10
# About 80 bytes per (int, str) pair kept in lists: size the heap by count.
heap = [[(i, "x%d" % i) for i in range(10000)] for _ in range(heap_mib * 1024 * 1024 // 800000)]

child_ready, parent_blocked = [], []
for _ in range(forks):
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"x")
        os._exit(0)
    t1 = time.perf_counter()  # fork() returned in the parent
    os.read(r, 1)
    t2 = time.perf_counter()  # the child is running Python
    os.waitpid(pid, 0)
    os.close(r)
    os.close(w)
    parent_blocked.append((t1 - t0) * 1000)
    child_ready.append((t2 - t0) * 1000)

print("heap_mib=%d forks=%d fork_ms_median=%.2f fork_ms_max=%.2f parent_blocked_ms_median=%.2f"
      % (heap_mib, forks, statistics.median(child_ready), max(child_ready),
         statistics.median(parent_blocked)))
