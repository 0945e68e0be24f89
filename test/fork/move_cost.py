"""The first fork of a one-thread master under the shim, beside touching
the same amount of fresh memory, in the same process, back to back (so a
busy machine slows both alike). The master builds HEAP_MIB of small
objects; then, in ORDER:
  touch      maps as much fresh anonymous memory as the shim holds in
             hugetlb pages (stats: pages_now x 2 MiB) and writes a byte in
             every 4 KiB (faulting it in, as the move's copy does);
  touch-thp  the same, marked MADV_HUGEPAGE (as the move's destination is);
  fork       os.fork() (the child exits at once); under the shim its
             hugetlb pages move to ordinary memory first.
Prints one JSON line: heap_mib, moved_mib (hugetlb MiB before the fork),
touch_ms, touch_thp_ms, fork_ms, forked (pages the shim moved).

Usage: move_cost.py HEAP_MIB"""
import ctypes
import json
import mmap
import os
import sys
import time


def stats():
    s = (ctypes.c_uint64 * 32)()
    lib = ctypes.CDLL(None)
    if not hasattr(lib, "pyhuge_get_stats") or lib.pyhuge_get_stats(s, ctypes.sizeof(s)) != 0:
        return {"pages_now": 0, "forked": 0}
    return {"pages_now": s[6], "forked": s[19]}


def touch(mib, thp):
    m = mmap.mmap(-1, max(mib, 2) << 20)
    if thp:
        m.madvise(mmap.MADV_HUGEPAGE)
    t0 = time.perf_counter()
    for off in range(0, len(m), 4096):
        m[off] = 1
    ms = (time.perf_counter() - t0) * 1000
    m.close()
    return ms


def main():
    heap_mib = int(sys.argv[1])
    rows = heap_mib * 1024 * 1024 // (2000 * 180)
    heap = [[(r, "m%d" % i) for i in range(2000)] for r in range(rows)]
    moved = stats()["pages_now"] * 2
    size = moved or heap_mib
    out = {"heap_mib": heap_mib, "moved_mib": moved,
           "touch_ms": touch(size, False), "touch_thp_ms": touch(size, True)}
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    out["fork_ms"] = (time.perf_counter() - t0) * 1000
    os.waitpid(pid, 0)
    out["forked"] = stats()["forked"]
    print(json.dumps(out), flush=True)
    return 0 if heap else 1


if __name__ == "__main__":
    sys.exit(main())
