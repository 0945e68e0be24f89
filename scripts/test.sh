#!/usr/bin/env bash
# Runs every test suite against the real kernel and real Pythons, then the
# unit, preload and concurrency suites again under ASan+UBSan, and the
# concurrency suite under ThreadSanitizer. Needs root for the huge
# page pool (tests that need one skip, saying why, without it); restores the
# pool. Ends with "N passed, N failed, N skipped", counted from the TAP
# output of every test case; exits non-zero when any test failed.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    without the sanitizer build
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test || exit 1

pool_before=$(cat /proc/sys/vm/nr_hugepages)
restore_pool() { echo "$pool_before" > /proc/sys/vm/nr_hugepages 2>/dev/null || true; }
trap restore_pool EXIT

status=0
logs=()

run_suites() { # build dir, meson setup options..., -- meson test options...
    local dir=$1; shift
    local setup=() ; while [ $# -gt 0 ] && [ "$1" != -- ]; do setup+=("$1"); shift; done
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "${setup[@]}" >/dev/null || { status=1; return; }
    fi
    meson compile -C "$dir" >/dev/null || { echo "build failed in $dir" >&2; status=1; return; }
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --no-rebuild --print-errorlogs "$@" || status=1
    logs+=("$dir/meson-logs/testlog.json")
}

run_suites build-test --werror --buildtype=debugoptimized --
if [ "${1:-}" != --quick ]; then
    run_suites build-sanitize --werror --buildtype=debug -Db_sanitize=address,undefined \
        -Db_lundef=false -- --suite unit --suite preload --suite concurrency
    run_suites build-tsan --werror --buildtype=debug -Db_sanitize=thread -Db_lundef=false \
        -- --suite concurrency
fi

python3 scripts/count-tap.py "${logs[@]}" || status=1
exit $status
