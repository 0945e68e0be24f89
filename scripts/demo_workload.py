"""The demo's Python program: builds a heap of small objects the way a
service does (tuples, dicts, strings, instances), then shows from its own
/proc/self/smaps where its pymalloc arenas live. Runs on CPython 3.6+."""
import sys
import time


class Row:
    __slots__ = ("key", "name", "tags")

    def __init__(self, key, name, tags):
        self.key, self.name, self.tags = key, name, tags


def build():
    rows = [Row(i, "user%d" % i, {"id": i, "even": i % 2 == 0}) for i in range(400000)]
    index = {r.name: (r.key, r.tags["even"]) for r in rows}
    return rows, index


def smaps_summary():
    huge_vmas, huge_kb, rss_kb = 0, 0, 0
    current_huge = False
    with open("/proc/self/smaps") as f:
        for line in f:
            if line.startswith("KernelPageSize:"):
                current_huge = line.split()[1] == "2048"
            elif line.startswith("Private_Hugetlb:"):
                kb = int(line.split()[1])
                huge_kb += kb
                huge_vmas += current_huge and kb > 0
            elif line.startswith("Rss:"):
                rss_kb += int(line.split()[1])
    return huge_vmas, huge_kb, rss_kb


t0 = time.perf_counter()
rows, index = build()
total = sum(k for k, even in index.values() if even)
elapsed = time.perf_counter() - t0
vmas, huge_kb, rss_kb = smaps_summary()
print("python %s: %d objects built in %.2f s, checksum %d"
      % (sys.version.split()[0], len(rows) * 4, elapsed, total))
print("  /proc/self/smaps: %d MiB on 2 MiB huge pages (%d hugetlb mappings), %d MiB in ordinary RSS"
      % (huge_kb // 1024, vmas, rss_kb // 1024))
