#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install what the build needs,
# build libpyhuge.so, reserve a huge page pool, run a Python program under
# the shim and show from the kernel's own accounts where its arenas went,
# next to the same program without the shim. Restores the pool afterwards.
# Needs only the build packages (no Criterion: the tests are then not built).
# Quiet while a step works; a step that fails shows its output and stops.
#
#   scripts/demo.sh [PYTHON]       (default: /usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${1:-/usr/bin/python3}
pool_pages=${PYHUGE_DEMO_PAGES:-512}
# Not for the shim, which warns about every PYHUGE_* name it does not know.
unset PYHUGE_DEMO_PAGES

# step WHAT COMMAND...: runs COMMAND with its output kept aside; when it
# fails, prints that output and what failed, and stops the demo.
step() {
    local what=$1 out rc=0
    shift
    out=$(mktemp /tmp/pyhuge-demo-step-XXXXXX)
    "$@" > "$out" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        sed 's/^/  | /' "$out" >&2
        rm -f "$out"
        echo "demo: $what failed (exit $rc): $*" >&2
        exit $rc
    fi
    rm -f "$out"
}

step "installing the build dependencies" scripts/install-deps.sh build
if [ ! -f build/build.ninja ]; then
    step "configuring the build (meson setup)" meson setup build --buildtype=release
fi
step "building (meson compile)" meson compile -C build
lib="$root/build/libpyhuge.so"
echo "built $lib"

command -v "$python" > /dev/null || { echo "demo: no Python at $python" >&2; exit 1; }

# A pool to draw from: pool_pages free beside whatever other processes hold
# (in use or reserved). Root can size it; others get what is there.
nr=/proc/sys/vm/nr_hugepages
meminfo() { awk -v key="$1:" '$1 == key { print $2 }' /proc/meminfo; }
held() { echo $(($(meminfo HugePages_Total) - $(meminfo HugePages_Free) + $(meminfo HugePages_Rsvd))); }
free_pages() { echo $(($(meminfo HugePages_Free) - $(meminfo HugePages_Rsvd))); }
old=$(cat "$nr")
old_surplus=$(meminfo HugePages_Surp)
if [ "$(id -u)" = 0 ] && [ "$(free_pages)" -lt "$pool_pages" ]; then
    # Back as it was, never below what others hold by then.
    restore() {
        local floor=$(($(held) - old_surplus))
        echo $((old > floor ? old : floor)) > "$nr"
        echo "pool restored to $(cat "$nr") pages"
    }
    trap restore EXIT
    echo $(($(held) + pool_pages)) > "$nr"
    echo "reserved a pool of $(cat "$nr") huge pages of 2 MiB (was $old), $(free_pages) free"
else
    echo "pool: $(cat "$nr") huge pages of 2 MiB, $(free_pages) free (not changed)"
fi
grep -E '^HugePages_(Total|Free)' /proc/meminfo | sed 's/^/  /'

echo
echo "== $python without the shim"
"$python" scripts/demo_workload.py
echo
echo "== $python with LD_PRELOAD=$lib"
LD_PRELOAD="$lib" PYHUGE_STATS=1 "$python" scripts/demo_workload.py
echo
# The A/A arm first: stock against stock, 5 runs each, shows how far this
# machine's noise moves the same figures; the A/B after it is read beside it.
echo "== this machine's noise: tools/pyhuge.py ab --aa, stock against stock (5 interleaved runs each)"
/usr/bin/python3 tools/pyhuge.py ab -n 5 --aa --lib "$lib" -- "$python" scripts/demo_workload.py
echo
echo "== the same, measured from outside: tools/pyhuge.py ab (5 interleaved runs each)"
/usr/bin/python3 tools/pyhuge.py ab -n 5 --lib "$lib" -- "$python" scripts/demo_workload.py
