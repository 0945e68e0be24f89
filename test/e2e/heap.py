"""glibc malloc's heap under the shim's settings (src/heap.h).

  heap.py churn     builds and frees lists, dicts and strings over 512 bytes
                    (glibc's, not pymalloc's) twenty times; prints 'faults=N'
                    (minor page faults of the whole run)
  heap.py retain    builds about 300 MiB of dicts with byte strings of 1 KiB
                    to 512 KiB, frees it all, and prints 'peak=MiB after=MiB'
                    (RSS + hugetlb at the peak and after the free)"""
import gc
import random
import resource
import sys


def memory_mib():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "HugetlbPages"):
                fields[k] = int(v.split()[0])
    return (fields.get("VmRSS", 0) + fields.get("HugetlbPages", 0)) / 1024


def churn():
    rnd = random.Random(1)
    for _ in range(20):
        data = [{i: "x" * rnd.randrange(600, 3000) for i in range(200)} for _ in range(100)]
        lists = [list(range(rnd.randrange(1000, 20000))) for _ in range(100)]
        del data, lists
    print("faults=%d" % resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def retain():
    rnd = random.Random(1)
    data = []
    while memory_mib() < 300:
        d = {i: [i, str(i)] for i in range(rnd.randrange(500, 5000))}
        d["blob"] = bytes(rnd.randrange(1024, 512 * 1024))
        data.append(d)
    peak = memory_mib()
    del data, d
    gc.collect()
    print("peak=%d after=%d" % (peak, memory_mib()))


if __name__ == "__main__":
    {"churn": churn, "retain": retain}[sys.argv[1]]()
