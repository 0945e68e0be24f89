"""Runs inside a real CPython (3.6+) under test: makes a pymalloc-heavy heap,
then reports what the kernel says about it, one key=value line per fact."""
import ctypes
import mmap
import sys

ARENA = 1 << 20 if sys.version_info >= (3, 10) else 256 << 10


def vma_of(addr):
    """(page size in kB, Private_Hugetlb in kB) of the mapping holding addr."""
    inside, size = False, 0
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and ":" not in head:
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and line.startswith("KernelPageSize:"):
                size = int(line.split()[1])
            elif inside and line.startswith("Private_Hugetlb:"):
                return size, int(line.split()[1])
    return 0, 0


def smaps_kb(key):
    total = 0
    with open("/proc/self/smaps") as f:
        for line in f:
            if line.startswith(key):
                total += int(line.split()[1])
    return total


def workload():
    # About 100 MiB of small objects: tuples, ints, dicts, strings.
    rows = [(i, str(i), {"k": i}) for i in range(300000)]
    checksum = sum(r[0] + len(r[1]) + r[2]["k"] for r in rows)
    del rows[::2]  # frees half, leaving partly used arenas
    more = [[j] * 3 for j in range(200000)]
    checksum += sum(len(x) for x in more)
    return checksum, rows, more


def deep_frame():
    """A function with 20000 locals: on 3.11+ its frame takes a 256 KiB
    frame stack chunk from the arena allocator, an arena-like request that
    must not pass for the arena size (--deep-frame)."""
    src = "def f():\n" + "".join("    a%d = %d\n" % (i, i) for i in range(20000))
    ns = {}
    exec(src + "    return a19999\n", ns)
    return ns["f"]()


def main():
    checksum, rows, more = workload()
    if "--deep-frame" in sys.argv:
        deep_frame()
    print("result checksum=%d hugetlb_kb=%d thp_kb=%d arena=%d"
          % (checksum, smaps_kb("Private_Hugetlb:"), smaps_kb("AnonHugePages:"), ARENA))

    # Same-shaped mappings that are not arenas must stay ordinary pages.
    m = mmap.mmap(-1, ARENA, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    m[:5] = b"hello"
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    print("mmap_module kernel_page_kb=%d" % vma_of(addr)[0])
    del addr
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    p = libc.mmap(None, ARENA, 3, 0x22, -1, 0)  # RW, MAP_PRIVATE|MAP_ANONYMOUS
    ctypes.memset(p, 1, ARENA)
    print("ctypes_mmap kernel_page_kb=%d" % vma_of(p)[0])

    # The shim's own counters, through its public API.
    try:
        get = libc.pyhuge_get_stats
    except AttributeError:
        print("stats loaded=0")
        return
    buf = (ctypes.c_uint64 * 32)()
    get(buf, ctypes.sizeof(buf))
    # Fields in the order of struct pyhuge_stats (include/pyhuge.h).
    print("stats loaded=1 huge=%d fallback=%d pages_peak=%d pages_now=%d arena_size=%d thp=%d"
          % (buf[3], buf[4], buf[7], buf[6], buf[2], buf[16]))


main()
