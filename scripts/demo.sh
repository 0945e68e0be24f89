#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: install what the build needs,
# build libpyhuge.so, reserve a huge page pool, run a Python program under
# the shim and show from the kernel's own accounts where its arenas went,
# next to the same program without the shim. Restores the pool afterwards.
#
#   scripts/demo.sh [PYTHON]       (default: /usr/bin/python3)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${1:-/usr/bin/python3}
pool_pages=${PYHUGE_DEMO_PAGES:-512}

scripts/install-deps.sh build
if [ ! -f build/build.ninja ]; then
    meson setup build --buildtype=release >/dev/null
fi
meson compile -C build >/dev/null
lib="$root/build/libpyhuge.so"
echo "built $lib"

command -v "$python" >/dev/null || { echo "demo: no Python at $python" >&2; exit 1; }

# A pool to draw from. Root can size it; others get what is there.
nr=/proc/sys/vm/nr_hugepages
old=$(cat "$nr")
if [ "$(id -u)" = 0 ] && [ "$old" -lt "$pool_pages" ]; then
    trap 'echo "$old" > "$nr"; echo "pool restored to $old pages"' EXIT
    echo "$pool_pages" > "$nr"
    echo "reserved a pool of $(cat "$nr") huge pages of 2 MiB (was $old)"
else
    echo "pool: $(cat "$nr") huge pages of 2 MiB (not changed)"
fi
grep -E '^HugePages_(Total|Free)' /proc/meminfo | sed 's/^/  /'

echo
echo "== $python without the shim"
"$python" scripts/demo_workload.py
echo
echo "== $python with LD_PRELOAD=$lib"
LD_PRELOAD="$lib" PYHUGE_STATS=1 "$python" scripts/demo_workload.py
echo
echo "== the same, measured from outside: tools/pyhuge.py ab (5 interleaved runs each)"
tools/pyhuge.py ab -n 5 --lib "$lib" -- "$python" scripts/demo_workload.py
