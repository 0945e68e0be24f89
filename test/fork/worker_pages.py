"""Where a forked worker's memory ends up, as a prefork server's worker
(one-thread master, so the shim moves its huge pages before the fork).

The master builds a heap, then frees every other list of it, so that the
pages it holds have free slots when it forks. The child (the worker):
  new      makes new objects (arenas of its own) and says where they went;
  write N  writes the reference count of every object in N% of the
           master's heap (as a worker that reads it does), makes a few new
           arenas (the shim's arena path), and says how much of its memory
           is now on transparent huge pages (AnonHugePages).
One line from the child:
  child huge=H thp=T fallback=F hugetlb_kb=K anon_huge_kb=A private_kb=P exit=0
and 'parent ok' when the master's heap is intact afterwards.

Usage: worker_pages.py new|write [PERCENT] [HEAP_MIB]"""
import ctypes
import os
import sys


def stats():
    s = (ctypes.c_uint64 * 32)()
    lib = ctypes.CDLL(None)
    if not hasattr(lib, "pyhuge_get_stats") or lib.pyhuge_get_stats(s, ctypes.sizeof(s)) != 0:
        return {"huge": -1, "thp": -1, "fallback": -1, "live": 1}
    return {"huge": s[3], "fallback": s[4], "live": s[5], "thp": s[16]}


def status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rollup_kb(keys):
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0].rstrip(":") in keys:
                total += int(parts[1])
    return total


def main():
    mode = sys.argv[1]
    percent = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    mib = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    rows = mib * 1024 * 1024 // (2000 * 180)
    heap = [[(r, "m%d" % i) for i in range(2000)] for r in range(rows)]
    if mode == "new":
        # An odd number of 1 MiB arenas, packed two to a page: the last
        # page the master holds has a free slot when it forks.
        while stats()["live"] % 2 == 0:
            heap.append([(len(heap), "m%d" % i) for i in range(200)])
    expected = sum(row[0][0] for row in heap)
    pid = os.fork()
    if pid == 0:
        own = []
        if mode == "write":
            upto = len(heap) * percent // 100
            for row in heap[:upto]:
                for t in row:
                    t[1]  # a read of the tuple writes its reference count
                    own.append(t)  # and so does keeping a reference
                own.clear()
            # Arena path: new arenas, spaced out past the shim's rate limit.
            keep = []
            for _ in range(20):
                keep.append([(i, "w%d" % i) for i in range(20000)])
                import time
                time.sleep(0.012)
        else:
            keep = [[(i, "w%d" % i) for i in range(20000)] for _ in range(20)]
        st = stats()
        print("child huge=%d thp=%d fallback=%d hugetlb_kb=%d anon_huge_kb=%d private_kb=%d exit=0"
              % (st["huge"], st["thp"], st["fallback"], status_kb("HugetlbPages"),
                 rollup_kb(("AnonHugePages",)), rollup_kb(("Private_Dirty", "Private_Hugetlb"))),
              flush=True)
        os._exit(0 if keep else 3)
    _, status = os.waitpid(pid, 0)
    ok = sum(row[0][0] for row in heap) == expected
    print("parent %s status=%d" % ("ok" if ok else "changed", status), flush=True)


if __name__ == "__main__":
    main()
