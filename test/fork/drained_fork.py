"""A prefork pattern against a drained huge page pool: the parent builds its
heap until the pool has no free page left, forks N children that each write
to every inherited object, and writes to them itself. Prints one line per
process: 'child K exit=0' or 'child K signal=7' (SIGBUS), then 'parent ok'.
Usage: drained_fork.py [CHILDREN] [MODE]; MODE is os.fork (default) or
multiprocessing (a fork-context Pool)."""
import os
import sys


def pool_free():
    """Huge pages this process can still take: free, less those other
    processes have reserved and not yet faulted in."""
    fields = {}
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_"):
                key, value = line.split(":")
                fields[key] = int(value.split()[0])
    return fields.get("HugePages_Free", 0) - fields.get("HugePages_Rsvd", 0)


def build_heap():
    heap = []
    # Grow until the pool is dry, then a little more (those arenas fall back).
    for _ in range(100000):
        heap.append([(i, "s%d" % i) for i in range(20000)])
        if pool_free() == 0 and len(heap) > 8:
            break
    for _ in range(4):
        heap.append([(i, "s%d" % i) for i in range(20000)])
    return heap


def touch_all(heap):
    total = 0
    for chunk in heap:
        for t in chunk:
            total += t[0]
        chunk.append(len(chunk))  # a write into every list object
    return total


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    mode = sys.argv[2] if len(sys.argv) > 2 else "os.fork"
    heap = build_heap()
    expected = sum(t[0] for chunk in heap for t in chunk)
    print("heap chunks=%d pool_free=%d" % (len(heap), pool_free()), flush=True)
    if mode == "multiprocessing":
        import multiprocessing as mp
        global HEAP
        HEAP = heap
        with mp.get_context("fork").Pool(n) as pool:
            results = pool.map(child_task, range(n))
        for k, ok in enumerate(results):
            print("child %d exit=%d" % (k, 0 if ok == expected else 3))
    else:
        pids = []
        for k in range(n):
            pid = os.fork()
            if pid == 0:
                os._exit(0 if touch_all(heap) == expected else 3)
            pids.append(pid)
        parent_total = touch_all(heap)
        for k, pid in enumerate(pids):
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                print("child %d signal=%d" % (k, os.WTERMSIG(status)))
            else:
                print("child %d exit=%d" % (k, os.WEXITSTATUS(status)))
        if parent_total != expected:
            print("parent wrong")
            return 1
    print("parent ok")
    return 0


HEAP = None


def child_task(_):
    return touch_all(HEAP)


if __name__ == "__main__":
    sys.exit(main())
