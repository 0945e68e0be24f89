#!/usr/bin/env bash
# Builds CPython from the source tarball in ../shared/cpython once per
# machine, and prints the path of the interpreter it built. The installed
# tree is cached outside the clone (PYHUGE_CPYTHON_CACHE, default
# /var/cache/pyhuge/cpython), so every clone and every CI run on the machine
# shares one build: the first takes 3 to 10 minutes on 2 cores, later calls
# return at once.
#
#   scripts/build-cpython.sh            3.14.7, the default build (pymalloc)
#   scripts/build-cpython.sh --ft       3.14.7t, free-threaded (--disable-gil: mimalloc)
#   scripts/build-cpython.sh --seed     3.14.7 patched as CPython 3.15's
#                                       --with-pymalloc-hugepages proposes
#                                       (bench/seed-patch.sh): 2 MiB arenas,
#                                       MAP_HUGETLB first, then the plain call
#
# Exit 0 with the interpreter's path on stdout; exit 77 (the "skip" of
# meson and automake) with the reason on stderr when the tarball is absent;
# any other status when the build failed, with its log's tail.
set -euo pipefail
kind=default
case ${1:-} in
    "") ;;
    --ft) kind=ft ;;
    --seed) kind=seed ;;
    *) echo "scripts/build-cpython.sh: unknown argument $1 (--ft, --seed)" >&2; exit 64 ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
version=3.14.7
tarball=${PYHUGE_CPYTHON_TARBALL:-$here/../shared/cpython/Python-$version.tar.xz}
cache=${PYHUGE_CPYTHON_CACHE:-/var/cache/pyhuge/cpython}
case $kind in
    default) name=$version; exe=python3.14 ;;
    ft) name=${version}t; exe=python3.14t ;;
    seed) name=$version-seed; exe=python3.14 ;;
esac
prefix=$cache/$name
if [ -x "$prefix/bin/$exe" ] && [ -f "$prefix/.built" ]; then
    echo "$prefix/bin/$exe"
    exit 0
fi
if [ ! -f "$tarball" ]; then
    echo "scripts/build-cpython.sh: no CPython $version source at $tarball: not built" >&2
    exit 77
fi
"$here/scripts/install-deps.sh" cpython
mkdir -p "$cache"
# One build at a time per tree: two clones asking at once wait for the first.
exec 9> "$cache/.lock-$name"
flock 9
if [ -x "$prefix/bin/$exe" ] && [ -f "$prefix/.built" ]; then
    echo "$prefix/bin/$exe"
    exit 0
fi
work=$(mktemp -d "$cache/.build-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/build.log
tar -xJf "$tarball" -C "$work"
src=$work/Python-$version
[ "$kind" = seed ] && "$here/bench/seed-patch.sh" "$src" >> "$log" 2>&1
# pip is not needed by any test or benchmark: --without-ensurepip saves its
# install on a fresh machine.
conf=(--enable-shared --without-ensurepip --prefix="$prefix" "LDFLAGS=-Wl,-rpath,$prefix/lib")
[ "$kind" = ft ] && conf+=(--disable-gil)
echo "building CPython $name into $prefix (3 to 10 minutes; log: $log)" >&2
if ! (cd "$src" && ./configure "${conf[@]}" && make -j"$(nproc)" && make install) >> "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "scripts/build-cpython.sh: the build of CPython $name failed" >&2
    exit 1
fi
# The test suite stays (the regrtest slice runs it); compiled bytecode of
# the tests is not needed to run them.
touch "$prefix/.built"
echo "$prefix/bin/$exe"
