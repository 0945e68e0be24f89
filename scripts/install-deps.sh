#!/usr/bin/env bash
# Installs the Debian packages a job needs, only those missing.
#   scripts/install-deps.sh build    compiler, meson, ninja
#   scripts/install-deps.sh test     the above and Criterion
#   scripts/install-deps.sh ci       the above and clang (.ci/run builds with it too)
#   scripts/install-deps.sh bench    build, and the allocators the benchmarks compare
#   scripts/install-deps.sh cpython  what building CPython from source needs
#   scripts/install-deps.sh servers  the prefork servers, load generator and metrics tools
# Quiet when it works; apt's own output, and what failed, when it does not.
set -euo pipefail
job=${1:-build}
pkgs=(gcc meson ninja-build pkg-config python3)
# The test suite of Debian's own python3.11, for the regression-test slice.
# dpkg-dev and debhelper build the Debian package in its test; matplotlib
# draws `pyhuge ab --png` charts.
# Building CPython 3.14 from ../shared/cpython (scripts/build-cpython.sh).
cpython=(build-essential libssl-dev zlib1g-dev libbz2-dev libreadline-dev libsqlite3-dev
         libffi-dev liblzma-dev uuid-dev xz-utils)
# Real prefork servers and apps, the load generator, the metrics tools the
# fleet-metrics tests run for real, and scipy to check `pyhuge compare`.
servers=(gunicorn uwsgi-core uwsgi-plugin-python3 python3-django python3-flask wrk
         prometheus prometheus-node-exporter python3-scipy)
case $job in test | ci)
    pkgs+=(libcriterion-dev libpython3.11-testsuite dpkg-dev debhelper python3-matplotlib
           "${cpython[@]}" "${servers[@]}") ;;
    cpython) pkgs+=("${cpython[@]}") ;;
    servers) pkgs+=("${servers[@]}") ;;
esac
[ "$job" = ci ] && pkgs+=(clang)
# The alternatives a user would pick instead of pyhuge, and the chart.
[ "$job" = bench ] && pkgs+=(libmimalloc2.0 libjemalloc2 python3-matplotlib)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "installing ${missing[*]}" >&2
log=$(mktemp /tmp/pyhuge-apt-XXXXXX)
trap 'rm -f "$log"' EXIT
apt() {
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get "$@" > "$log" 2>&1; then
        cat "$log" >&2
        echo "install-deps.sh: apt-get $* failed (output above)" >&2
        exit 1
    fi
}
apt update -qq
apt install -y -qq "${missing[@]}"
