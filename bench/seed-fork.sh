#!/usr/bin/env bash
# fork with a drained pool: the seed's build of 3.14.7 (bench/seed-patch.sh)
# against stock 3.14.7 under the shim, then the seed's build under the shim
# (which serves its MAP_HUGETLB arena requests where it recognises them).
# Each builds a heap until the pool has
# no free page left (test/fork/drained_fork.py), forks 3 children that write
# to every object, and prints how each child ended: 'exit=0', or
# 'signal=7' (SIGBUS: copy-on-write of a private hugetlb page found no free
# page). Needs root (sizes the pool: PAGES free pages beside what others
# hold, default 40; put back after) and scripts/build-cpython.sh --seed.
#
#   bench/seed-fork.sh [--lib build/libpyhuge.so] [PAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
lib=build/libpyhuge.so
if [ "${1:-}" = --lib ]; then lib=$2; shift 2; fi
pages=${1:-40}
cache=${PYHUGE_CPYTHON_CACHE:-/var/cache/pyhuge/cpython}
stock=$cache/3.14.7/bin/python3.14
seed=$cache/3.14.7-seed/bin/python3.14
for p in "$stock" "$seed"; do
    [ -x "$p" ] || { echo "no $p: scripts/build-cpython.sh (and --seed) build it" >&2; exit 77; }
done
[ -f "$lib" ] || { echo "no $lib: build first (or --lib PATH)" >&2; exit 64; }
lib=$(realpath "$lib")
meminfo() { awk -v key="$1:" '$1 == key { print $2 }' /proc/meminfo; }
held() { echo $(($(meminfo HugePages_Total) - $(meminfo HugePages_Free) + $(meminfo HugePages_Rsvd))); }
nr=/proc/sys/vm/nr_hugepages
overcommit=/proc/sys/vm/nr_overcommit_hugepages
# The lock everyone who resizes the pool here takes (bench/bench.py --lock).
exec 9> /tmp/pyhuge-pool.lock
flock 9
before=$(cat $nr) over_before=$(cat $overcommit) surplus=$(meminfo HugePages_Surp)
put_back() {
    echo "$over_before" > $overcommit
    local floor=$(($(held) - surplus))
    echo $((before > floor ? before : floor)) > $nr
}
trap put_back EXIT
run() { # label, env...
    local label=$1; shift
    echo 0 > $overcommit
    echo $(($(held) + pages)) > $nr
    echo "== $label"
    env -i PATH=/usr/bin:/bin "$@" test/fork/drained_fork.py 3 os.fork 2>&1 | sed 's/^/   /'
    put_back
}
run "seed's build (2 MiB arenas, MAP_HUGETLB first), pool of $pages free pages" "$seed"
run "stock 3.14.7 under the shim (PYHUGE_FORK default), pool of $pages free pages" \
    LD_PRELOAD="$lib" PYHUGE_STATS=1 "$stock"
# The seed's own requests (2 MiB, MAP_HUGETLB, from the arena function), served
# as the shim's where the shim recognises them (issue 21, item 3).
run "seed's build under the shim, pool of $pages free pages" LD_PRELOAD="$lib" PYHUGE_STATS=1 "$seed"
