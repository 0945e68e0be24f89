#!/usr/bin/env bash
# The real-program suite with one command, from a fresh Debian 12 machine:
# installs the programs (bench_apps.py --packages), then runs bench.sh
# --suite apps (the allocators compared against, the build unless --lib
# names a library, Debian's python3). Other arguments go to bench.py; by
# default it writes bench-results/bench-apps.md, .json and .png. Each round
# takes /tmp/pyhuge-pool.lock while it resizes and uses the pool.
#
#   bench/bench_apps.sh                                    every program, the default configurations, 5 rounds
#   bench/bench_apps.sh --lib /abs/libpyhuge.so --runs 3 --only pylint,sphinx
#   BUILD_DIR=/tmp/b bench/bench_apps.sh                   build there instead of ./build-release
#   bench/bench_apps.sh --report bench-results/bench-apps.json    redraw the tables and chart only
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for p in $(/usr/bin/python3 bench/bench_apps.py --packages); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# networkx and sqlalchemy read apt's package index: it must be there.
ls /var/lib/apt/lists/*_dists_bookworm_main_binary-amd64_Packages* >/dev/null 2>&1 || apt-get update -qq
exec bench/bench.sh --suite apps "$@"
