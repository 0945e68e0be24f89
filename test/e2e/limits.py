"""A program that lowers its own limits after start-up, as sandboxes, test
harnesses and online judges do, then builds a heap: it must get exactly
what it would get without the shim.

  limits.py as MIB LIMIT_MIB      RLIMIT_AS set to LIMIT_MIB, then MIB of
                                   small objects (about 1.2 MiB a step)
  limits.py data MIB LIMIT_MIB    the same with RLIMIT_DATA
  limits.py asblob MIB LIMIT_MIB  RLIMIT_AS set to LIMIT_MIB, MIB of small
                                   objects, then the largest bytes object
                                   that can still be had
  limits.py asfreed MIB LIMIT_MIB the same with the small objects freed first

Prints 'built mib=N' or 'memoryerror after mib=N', then (asblob)
'largest mib=N', then 'done'."""
import gc
import resource
import sys


def largest_blob_mib():
    lo, hi = 0, 1 << 16  # MiB: lo can be had, hi cannot
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            blob = bytes(mid << 20)
            del blob
            lo = mid
        except MemoryError:
            hi = mid
    return lo


def main():
    which, mib, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    what = resource.RLIMIT_DATA if which == "data" else resource.RLIMIT_AS
    resource.setrlimit(what, (limit << 20, resource.RLIM_INFINITY))
    heap = []
    try:
        for step in range(mib):
            heap.append([(i, "x%d" % i) for i in range(10000)])  # about 1 MiB
        print("built mib=%d" % mib)
    except MemoryError:
        n = len(heap)
        heap = None
        print("memoryerror after mib=%d" % n)
    if which == "asfreed":
        heap = None
        gc.collect()
    if which in ("asblob", "asfreed"):
        print("largest mib=%d" % largest_blob_mib(), flush=True)
    print("done")


if __name__ == "__main__":
    main()
