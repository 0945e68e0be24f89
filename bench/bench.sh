#!/usr/bin/env bash
# The whole micro benchmark suite with one command, from a fresh Debian 12
# machine: installs the allocators it compares against and matplotlib,
# builds libpyhuge.so (release) unless --lib names one, and runs
# bench/bench.py with Debian's python3 (which has matplotlib for the chart).
# Arguments go to bench.py; by default it writes bench-results/bench.md,
# bench.json and bench.png. bench/bench_apps.sh runs the real-program suite.
#
#   bench/bench.sh                    everything: both Pythons, every configuration
#   bench/bench.sh --only tuples --runs 3
#   BUILD_DIR=/tmp/b bench/bench.sh   build there instead of ./build-release
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh bench
lib=()
case " $* " in
    *" --lib "*|*" --report "*) ;;
    *)
        build=${BUILD_DIR:-build-release}
        [ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release >/dev/null
        meson compile -C "$build" >/dev/null
        lib=(--lib "$(cd "$build" && pwd)/libpyhuge.so") ;;
esac
exec /usr/bin/python3 bench/bench.py "${lib[@]}" "$@"
