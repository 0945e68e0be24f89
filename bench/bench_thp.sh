#!/usr/bin/env bash
# The THP tier's worst case: how long an arena can take when its first fault
# has to compact memory. Runs bench/thp_fault (2048 arenas of 1 MiB, each
# written through) without the shim and with PYHUGE_BACKEND=thp, under every
# THP defrag setting, on memory as it is (compacted first) and on memory
# that bench/fragment has left in 4 KiB pieces; prints one Markdown row each:
# median, 99th percentile and worst time per arena, total, and the arena
# memory the kernel put on transparent huge pages. The shim runs with
# PYHUGE_THP_STALL_US=0 (never pause the tier): the point is the kernel's
# own fault times. THP is set to madvise
# for the run, the distro default, and proactive compaction off (it would
# mend the fragmentation in the background). Needs root to change the THP settings
# (without it: the current setting only); restores them.
#
#   bench/bench_thp.sh [BUILD_DIR]
#   FRAG_MIB=8192 bench/bench_thp.sh    fragment that much (default: all but 1 GiB of MemAvailable)
set -euo pipefail
build=$(cd "${1:-$(dirname "$0")/../build}" && pwd)
lib="$build/libpyhuge.so" prog="$build/bench/thp_fault" frag="$build/bench/fragment"
[ -x "$prog" ] && [ -x "$frag" ] || { echo "no $prog: meson compile -C $build" >&2; exit 1; }
thp=/sys/kernel/mm/transparent_hugepage
arenas=${ARENAS:-2048}

settings=("$(sed 's/.*\[\(.*\)\].*/\1/' "$thp/defrag")")
if [ "$(id -u)" = 0 ]; then
    old_enabled=$(sed 's/.*\[\(.*\)\].*/\1/' "$thp/enabled")
    old_defrag=${settings[0]}
    # Proactive compaction would mend the fragmentation in the background
    # before the faults come; off for the run, to see the worst case.
    proactive=/proc/sys/vm/compaction_proactiveness
    old_proactive=$(cat "$proactive" 2>/dev/null || echo "")
    trap 'echo "$old_enabled" > $thp/enabled; echo "$old_defrag" > $thp/defrag
          [ -z "$old_proactive" ] || echo "$old_proactive" > $proactive' EXIT
    echo madvise > "$thp/enabled"
    [ -z "$old_proactive" ] || echo 0 > "$proactive"
    settings=(always defer defer+madvise madvise never)
else
    echo "not root: measuring the current defrag setting only (${settings[0]})" >&2
fi

run() { # defrag, memory, config, command...
    local defrag=$1 memory=$2 config=$3; shift 3
    local fpid="" out
    if [ "$memory" = fragmented ]; then
        local avail mib
        avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
        mib=${FRAG_MIB:-$((avail - 1024))}
        coproc FRAG { "$frag" "$mib"; }
        fpid=$FRAG_PID
        read -r _ <&"${FRAG[0]}"
    else
        echo 1 > /proc/sys/vm/compact_memory 2>/dev/null || true
    fi
    out=$("$@")
    if [ -n "$fpid" ]; then
        exec {FRAG[1]}>&-
        wait "$fpid" || true
    fi
    eval "local $out"
    printf '| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %s |\n' "$defrag" "$memory" "$config" \
        "$median_us" "$p99_us" "$max_us" "$total_ms" "$anon_huge_mib"
}

echo "$arenas arenas of 1 MiB, each requested and written through; times per arena in microseconds"
echo
echo "| defrag | free memory | run | median (us) | p99 (us) | worst (us) | total (ms) | AnonHugePages (MiB) |"
echo "|---|---|---|---|---|---|---|---|"
for d in "${settings[@]}"; do
    [ "$(id -u)" = 0 ] && echo "$d" > "$thp/defrag"
    for memory in compacted fragmented; do
        run "$d" "$memory" stock "$prog" "$arenas"
        run "$d" "$memory" "pyhuge thp" env LD_PRELOAD="$lib" PYHUGE_BACKEND=thp PYHUGE_THP_STALL_US=0 "$prog" "$arenas"
    done
done
