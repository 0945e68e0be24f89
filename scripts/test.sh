#!/usr/bin/env bash
# Runs every test suite against the real kernel and real Pythons; then the
# suites that use the huge page pool once more beside another user of the
# pool (a process of ours holding 20 huge pages, as a database or a JVM
# would); then the unit, preload and concurrency suites under ASan+UBSan,
# and the concurrency suite under ThreadSanitizer. Needs root for the pool
# (tests that need one skip, saying why, without it); puts the pool back.
# Builds CPython 3.14.7 and 3.14.7t from ../shared/cpython once per machine
# first (scripts/build-cpython.sh, cached outside the clone; about 6 minutes
# each on 2 cores the first time, nothing after): the e2e, fork and regrtest
# suites run on them beside 3.6-3.13. Without the source that is a TAP SKIP
# saying why, and the cases that need 3.14 skip too.
# Ends with "N passed, N failed, N skipped", counted from the TAP output of
# every test case (scripts/count-tap.py); exits non-zero when any failed.
#
#   scripts/test.sh                        everything
#   scripts/test.sh --quick                without the sanitizer builds
#   scripts/test.sh --counted-logs=FILE    also write the paths of the logs
#                                          counted to FILE (.ci/run adds its
#                                          own cases to the same count)
# (Not an environment variable: the shim warns about every PYHUGE_* name it
# does not know, in every process the tests start.)
set -uo pipefail
quick=""
counted_logs=""
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --counted-logs=*) counted_logs=$(realpath -m "${arg#*=}") ;;
        *) echo "scripts/test.sh: unknown argument $arg (--quick, --counted-logs=FILE)" >&2; exit 64 ;;
    esac
done
cd "$(dirname "$0")/.."
scripts/install-deps.sh test || exit 1

nr=/proc/sys/vm/nr_hugepages
overcommit=/proc/sys/vm/nr_overcommit_hugepages
meminfo() { awk -v key="$1:" '$1 == key { print $2 }' /proc/meminfo; }
# Pages processes hold: faulted in, or reserved (counted as free until
# faulted in); surplus pages included.
held() { echo $(($(meminfo HugePages_Total) - $(meminfo HugePages_Free) + $(meminfo HugePages_Rsvd))); }
pool_state() {
    echo "nr_hugepages=$(cat $nr) $(grep -E '^HugePages_(Total|Free|Rsvd|Surp):' /proc/meminfo | tr -s ' ' | paste -sd' ')"
}

pool_before=$(cat $nr)
overcommit_before=$(cat $overcommit)
surplus_before=$(meminfo HugePages_Surp)
holder=""
put_back() {
    if [ -n "$holder" ]; then
        kill "$holder" 2>/dev/null
        wait "$holder" 2>/dev/null
        holder=""
    fi
    [ "$(id -u)" = 0 ] || return 0
    echo "$overcommit_before" > $overcommit 2>/dev/null
    # As it was, but never below what others hold now (the kernel would
    # make their pages surplus, gone from the pool when they let go).
    local floor=$(($(held) - surplus_before))
    echo $((pool_before > floor ? pool_before : floor)) > $nr 2>/dev/null || true
}
trap put_back EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

status=0
logs=()

# Runs a command with its output kept aside; shows it, and says what
# failed, only when it fails.
quiet() {
    local out rc=0
    out=$(mktemp /tmp/pyhuge-test-step-XXXXXX)
    "$@" > "$out" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        echo "scripts/test.sh: FAILED (exit $rc): $*" >&2
        cat "$out" >&2
    fi
    rm -f "$out"
    return $rc
}

run_suites() { # build dir, meson setup options..., -- meson test options...
    local dir=$1; shift
    local setup=(); while [ $# -gt 0 ] && [ "$1" != -- ]; do setup+=("$1"); shift; done
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        quiet meson setup "$dir" "${setup[@]}" || { status=1; return; }
    fi
    quiet meson compile -C "$dir" || { status=1; return; }
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --no-rebuild --print-errorlogs "$@" || status=1
    logs+=("$dir/meson-logs/testlog.json")
}

# The pool suites once more, beside a process of ours holding huge pages:
# 20 pages, 4 of them surplus pages (made by overcommit, as a service's can
# be). Every test must run (no skip for want of pages), take nothing from
# it, and leave the pool as it found it. Its own checks go to beside.tap.
hold_pages=20
hold_surplus=4
# Pages faulted in; the rest stay reserved only (HugePages_Rsvd), which the
# tests must count as held (test/fork's programs drain Free - Rsvd).
hold_touched=14
beside_another_user() {
    local dir=$1
    local tap="$dir/meson-logs/beside.tap" out="$dir/meson-logs/holder.out"
    mkdir -p "$dir/meson-logs"
    logs+=("$tap")
    if [ "$(id -u)" != 0 ]; then
        printf 'TAP version 13\n1..1\nok 1 - pool suites beside another pool user # SKIP needs root to size the pool\n' > "$tap"
        return
    fi
    # Room for the holder: free pages, then surplus ones from overcommit.
    echo $(($(held) + hold_pages - hold_surplus)) > $nr
    echo $((overcommit_before + hold_surplus)) > $overcommit
    /usr/bin/python3 scripts/hold-huge-pages.py $hold_pages $hold_touched > "$out" 2>&1 &
    holder=$!
    local i
    for i in $(seq 300); do
        grep -q '^holding' "$out" && break
        kill -0 $holder 2>/dev/null || break
        sleep 0.1
    done
    echo "$overcommit_before" > $overcommit
    if ! grep -q '^holding' "$out"; then
        printf 'TAP version 13\n1..1\nnot ok 1 - a process holding %d huge pages: %s\n' \
            $hold_pages "$(tr '\n' ' ' < "$out")" > "$tap"
        status=1
        return
    fi
    local before after kb want_kb
    before=$(pool_state)
    echo
    echo "== the pool suites again, beside another process $(cat "$out"); $before"
    rm -f "$dir/meson-logs/testlog-beside.json"
    meson test -C "$dir" --no-rebuild --print-errorlogs --logbase testlog-beside \
        --suite preload --suite e2e --suite cli --suite concurrency || status=1
    logs+=("$dir/meson-logs/testlog-beside.json")
    after=$(pool_state)
    kb=$(awk '$1 == "HugetlbPages:" { print $2 }' /proc/$holder/status 2>/dev/null)
    want_kb=$((hold_touched * $(meminfo Hugepagesize)))
    {
        echo "TAP version 13"
        echo "1..2"
        if kill -0 $holder 2>/dev/null && [ "${kb:-0}" = "$want_kb" ]; then
            echo "ok 1 - the other process kept its pages through the run: HugetlbPages $kb kB"
        else
            echo "not ok 1 - the other process lost pages: HugetlbPages ${kb:-none} kB, had $want_kb kB"
        fi
        if [ "$before" = "$after" ]; then
            echo "ok 2 - the suites left the pool as they found it: $after"
        else
            echo "not ok 2 - the suites changed the pool: before $before; after $after"
        fi
    } > "$tap"
    cat "$tap"
    kill $holder
    wait $holder 2>/dev/null
    holder=""
}

# CPython 3.14.7 and its free-threaded build, once per machine: one TAP case
# each (a SKIP with the reason when the source is absent; exit 77).
# Where the builds are cached; the test suites are told at setup (meson's
# cpython_cache option). Not left in the environment: the shim warns about
# PYHUGE_* names it does not know in every process the tests start.
cpython_cache=${PYHUGE_CPYTHON_CACHE:-/var/cache/pyhuge/cpython}
unset PYHUGE_CPYTHON_CACHE
build_cpythons() {
    local tap=$1 i=0 lines=() flag name out rc
    for flag in "" --ft; do
        i=$((i + 1))
        name="CPython 3.14.7${flag:+t}"
        out=$(mktemp /tmp/pyhuge-test-cpython-XXXXXX)
        rc=0
        PYHUGE_CPYTHON_CACHE=$cpython_cache scripts/build-cpython.sh $flag > "$out" 2>&1 || rc=$?
        case $rc in
            0) lines+=("ok $i - $name for the e2e, fork and regrtest suites: $(tail -1 "$out")") ;;
            77) lines+=("ok $i - $name for the e2e, fork and regrtest suites # SKIP $(tail -1 "$out")") ;;
            *) lines+=("not ok $i - $name did not build (scripts/build-cpython.sh $flag exited $rc)")
               tail -40 "$out" >&2
               status=1 ;;
        esac
        rm -f "$out"
    done
    mkdir -p "$(dirname "$tap")"
    { echo "TAP version 13"; echo "1..$i"; printf '%s\n' "${lines[@]}"; } > "$tap"
    cat "$tap"
    logs+=("$tap")
}
build_cpythons build-test/meson-logs/cpython.tap

run_suites build-test --werror --buildtype=debugoptimized -Dcpython_cache="$cpython_cache" --
beside_another_user build-test
if [ -z "$quick" ]; then
    run_suites build-sanitize --werror --buildtype=debug -Db_sanitize=address,undefined \
        -Db_lundef=false -- --suite unit --suite preload --suite concurrency
    run_suites build-tsan --werror --buildtype=debug -Db_sanitize=thread -Db_lundef=false \
        -- --suite concurrency
fi

[ -n "$counted_logs" ] && printf '%s\n' "${logs[@]/#/$PWD/}" > "$counted_logs"
/usr/bin/python3 scripts/count-tap.py "${logs[@]}" || status=1
exit $status
