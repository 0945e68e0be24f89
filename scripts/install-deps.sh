#!/usr/bin/env bash
# Installs the Debian packages a job needs, only those missing.
#   scripts/install-deps.sh build    compiler, meson, ninja
#   scripts/install-deps.sh test     the above and Criterion
#   scripts/install-deps.sh bench    build, and the allocators the benchmarks compare
set -euo pipefail
pkgs=(gcc meson ninja-build pkg-config python3)
# The test suite of Debian's own python3.11, for the regression-test slice.
# dpkg-dev and debhelper build the Debian package in its test; matplotlib
# draws `pyhuge ab --png` charts.
[ "${1:-build}" = test ] && pkgs+=(libcriterion-dev libpython3.11-testsuite dpkg-dev debhelper
                                   python3-matplotlib)
# The alternatives a user would pick instead of pyhuge, and the chart.
[ "${1:-build}" = bench ] && pkgs+=(libmimalloc2.0 libjemalloc2 python3-matplotlib)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
