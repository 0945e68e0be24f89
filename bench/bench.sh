#!/usr/bin/env bash
# The whole benchmark suite with one command, from a fresh Debian 12 machine:
# installs the allocators it compares against and matplotlib, builds
# libpyhuge.so (release), and runs bench/bench.py with Debian's python3
# (which has matplotlib for the chart). Arguments go to bench.py; by default
# it writes bench-results/bench.md, bench.json and bench.png.
#
#   bench/bench.sh                    everything: both Pythons, every configuration
#   bench/bench.sh --only tuples --runs 3
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
if [ ! -f build-release/build.ninja ]; then
    meson setup build-release --buildtype=release >/dev/null
fi
meson compile -C build-release >/dev/null
exec /usr/bin/python3 bench/bench.py --lib build-release/libpyhuge.so "$@"
