"""A program that lowers its own limits after start-up, as sandboxes, test
harnesses and online judges do, then builds a heap: it must get exactly
what it would get without the shim.

  limits.py as MIB LIMIT_MIB      RLIMIT_AS set to LIMIT_MIB, then MIB of
                                   small objects (about 1.2 MiB a step)
  limits.py data MIB LIMIT_MIB    the same with RLIMIT_DATA

Prints 'built mib=N' or 'memoryerror after mib=N', then 'done'."""
import resource
import sys


def main():
    which, mib, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    what = resource.RLIMIT_AS if which == "as" else resource.RLIMIT_DATA
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
    print("done")


if __name__ == "__main__":
    main()
