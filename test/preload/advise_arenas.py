"""CPython 3.15's madvise(MADV_HUGEPAGE) on live arenas of a real CPython
(3.14.7 here), through ctypes, under the shim (test_newest.c).

Live arenas are found from the objects themselves: an arena of the shim's
is a 1 MiB slot of a 2 MiB-aligned hugetlb page, so id() of a small object
rounded down to 1 MiB is its arena's start, kept when /proc/self/maps shows
a hugetlb mapping there. Prints one line:
advised arenas=N failed=N pages=N still_hugetlb=N demoted=N intact=0|1
"""
import ctypes
import sys

ARENA = 1 << 20
MADV_HUGEPAGE = 14

libc = ctypes.CDLL(None, use_errno=True)
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def hugetlb_mappings():
    found = []
    for line in open("/proc/self/maps"):
        if "anon_hugepage" in line:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            found.append((lo, hi))
    return found


def private_hugetlb_kb(pages):
    """Private_Hugetlb of the mapping holding each page, from smaps."""
    kb, current = {}, None
    for line in open("/proc/self/smaps"):
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            current = [p for p in pages if lo <= p < hi]
        elif line.startswith("Private_Hugetlb:") and current:
            for p in current:
                kb[p] = int(line.split()[1])
    return kb


objects = [(i, float(i), str(i)) for i in range(300000)]
maps = hugetlb_mappings()
arenas = set()
for o in objects[::97]:
    for part in o:
        a = id(part) & ~(ARENA - 1)
        if any(lo <= a < hi for lo, hi in maps):
            arenas.add(a)
failed = 0
for a in sorted(arenas):
    if libc.madvise(a, ARENA, MADV_HUGEPAGE) != 0:
        failed += 1
stats = (ctypes.c_uint64 * 32)()
libc.pyhuge_get_stats(stats, ctypes.sizeof(stats))
demoted = stats[9]
pages = sorted({a & ~((2 << 20) - 1) for a in arenas})
kb = private_hugetlb_kb(pages)
still = sum(1 for p in pages if kb.get(p, 0) >= 2048)
intact = all(o == (i, float(i), str(i)) for i, o in enumerate(objects))
print(f"advised arenas={len(arenas)} failed={failed} pages={len(pages)} still_hugetlb={still} "
      f"demoted={demoted} intact={int(intact)}")
sys.exit(0)
