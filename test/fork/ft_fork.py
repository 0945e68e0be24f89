"""A free-threaded CPython's heap and fork: builds MIB MiB of small objects
(mimalloc's memory in a free-threaded build), prints where they live, then
forks CHILDREN children that each write to every object while the parent
writes too. Prints 'heap chunks=N thp_kb=K hugetlb_kb=H minflt=F
pool_free=P', one line per child ('child K exit=0' or 'child K signal=7',
SIGBUS) and 'parent ok'. Usage: ft_fork.py [MIB] [CHILDREN]."""
import os
import resource
import sys


def kib(path, key):
    """The number after "key:" in a /proc file of key: value lines; 0 if absent."""
    with open(path) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    heap = []
    # A chunk of 20000 (int, str) tuples is about 2.5 MiB of objects.
    for _ in range(max(1, mib * 2 // 5)):
        heap.append([(i, "s%d" % i) for i in range(20000)])
    expected = sum(t[0] for chunk in heap for t in chunk)
    print("heap chunks=%d thp_kb=%d hugetlb_kb=%d minflt=%d pool_free=%d" % (
        len(heap), kib("/proc/self/smaps_rollup", "AnonHugePages"),
        kib("/proc/self/status", "HugetlbPages"),
        resource.getrusage(resource.RUSAGE_SELF).ru_minflt,
        kib("/proc/meminfo", "HugePages_Free") - kib("/proc/meminfo", "HugePages_Rsvd")),
        flush=True)
    pids = []
    for k in range(n):
        pid = os.fork()
        if pid == 0:
            total = 0
            for chunk in heap:
                for t in chunk:
                    total += t[0]
                chunk.append(len(chunk))
            os._exit(0 if total == expected else 3)
        pids.append(pid)
    for chunk in heap:
        chunk.append(0)
    for k, pid in enumerate(pids):
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            print("child %d signal=%d" % (k, os.WTERMSIG(status)))
        else:
            print("child %d exit=%d" % (k, os.WEXITSTATUS(status)))
    print("parent ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
