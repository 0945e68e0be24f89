#!/usr/bin/env bash
# The shim's cost on calls that are not arenas: bench/passthrough (an
# mmap/munmap pair of 64 KiB) alternately without and with the shim, 9
# times each; prints both medians and the difference in ns per pair.
#   bench/bench_passthrough.sh [BUILD_DIR]
set -euo pipefail
build=$(cd "${1:-$(dirname "$0")/../build}" && pwd)
prog="$build/bench/passthrough"
lib="$build/libpyhuge.so"
[ -x "$prog" ] || { echo "no $prog: meson compile -C $build" >&2; exit 1; }
plain=() shim=()
for i in $(seq 9); do
    plain+=("$("$prog" | sed 's/.*=//')")
    shim+=("$(LD_PRELOAD="$lib" "$prog" | sed 's/.*=//')")
done
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
p=$(median "${plain[@]}") s=$(median "${shim[@]}")
echo "mmap+munmap pair, 64 KiB: without the shim ${p} ns, with it ${s} ns, difference $(awk -v a="$s" -v b="$p" 'BEGIN { printf "%.1f", a - b }') ns"
