#!/usr/bin/env bash
# Patches a copy of CPython 3.14.7's source the way the seed proposes, and
# as CPython 3.15's --with-pymalloc-hugepages does (there behind a configure
# flag and PYTHON_PYMALLOC_HUGEPAGES=1; here always on): the anchor the
# shim is measured against (bench/bench.py --config seed).
#
#   bench/seed-patch.sh SRC      SRC: an unpacked Python-3.14.7 tree
#
# - Include/internal/pycore_obmalloc.h: ARENA_BITS 20 -> 21 (2 MiB arenas,
#   128 pools of 16 KiB each);
# - Objects/obmalloc.c, _PyMem_ArenaAlloc: when the size is a whole number
#   of 2 MiB huge pages, mmap with MAP_HUGETLB first; if the kernel says no
#   (pool empty, no pool), the plain anonymous mmap as before. munmap frees
#   either. No stats, and a private hugetlb mapping: a forked child that
#   writes to a page while the pool is drained dies of SIGBUS (the hazard
#   3.15's docs warn of; doc/pythons-matrix.md shows it).
# scripts/build-cpython.sh --seed calls this on its own copy of the source.
set -euo pipefail
src=${1:?usage: bench/seed-patch.sh PYTHON-3.14.7-SOURCE-DIR}
h=$src/Include/internal/pycore_obmalloc.h
c=$src/Objects/obmalloc.c
if grep -q PYHUGE_SEED "$c"; then
    echo "seed-patch: $src is patched already"
    exit 0
fi
grep -q '^#define ARENA_BITS              20 ' "$h" || { echo "seed-patch: no ARENA_BITS 20 in $h" >&2; exit 1; }
grep -q '^    ptr = mmap(NULL, size, PROT_READ|PROT_WRITE,$' "$c" || { echo "seed-patch: no arena mmap in $c" >&2; exit 1; }
sed -i 's|^#define ARENA_BITS              20 .*|#define ARENA_BITS              21  /* 2 MiB: PYHUGE_SEED, bench/seed-patch.sh */|' "$h"
# The hugetlb attempt goes in front of the plain mmap, inside the
# ARENAS_USE_MMAP branch of _PyMem_ArenaAlloc.
awk '
/^    ptr = mmap\(NULL, size, PROT_READ\|PROT_WRITE,$/ && !done {
    print "    /* PYHUGE_SEED (bench/seed-patch.sh): whole 2 MiB huge pages first. */"
    print "#ifdef MAP_HUGETLB"
    print "    if (size % ((size_t)2 << 20) == 0) {"
    print "        ptr = mmap(NULL, size, PROT_READ|PROT_WRITE,"
    print "                   MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB, -1, 0);"
    print "        if (ptr != MAP_FAILED)"
    print "            return ptr;"
    print "    }"
    print "#endif"
    done = 1
}
{ print }
' "$c" > "$c.seed" && mv "$c.seed" "$c"
grep -q 'MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB' "$c"
grep -q '^#define ARENA_BITS              21 ' "$h"
echo "seed-patch: $src patched: ARENA_BITS 21, MAP_HUGETLB first in _PyMem_ArenaAlloc"
