#!/usr/bin/env bash
# scripts/count-tap.py, which prints the closing "N passed, N failed,
# N skipped" line of scripts/test.sh and .ci/run, on made-up test logs: every
# kind of case and every way a test program can fail to finish. Prints TAP.
#   test_count_tap.sh SOURCE_ROOT
set -u
src=${1:?source root}
python=/usr/bin/python3
[ -x "$python" ] || python=python3
work=$(mktemp -d /tmp/pyhuge-count-tap-XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0
fails=0

# log NAME RESULT RETURNCODE TAP: one test program's line of a testlog.json.
log() {
    "$python" -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "result": sys.argv[2],
        "returncode": int(sys.argv[3]), "stdout": sys.argv[4]}))' "$@"
}
# counts WHAT WANT LINES FILE...: one case, passing when the last LINES
# lines count-tap.py prints are WANT.
counts() {
    local what=$1 want=$2 lines=$3; shift 3
    local got
    got=$("$python" "$src/scripts/count-tap.py" "$@" 2>/dev/null | tail -"$lines")
    n=$((n + 1))
    if [ "$got" = "$want" ]; then
        echo "ok $n - $what"
    else
        fails=$((fails + 1))
        echo "not ok $n - $what: got"
        printf '%s\n' "$got" | sed 's/^/  # /'
        echo "  # want"
        printf '%s\n' "$want" | sed 's/^/  # /'
    fi
}

echo "TAP version 13"
echo "1..11"
log plain FAIL 1 $'TAP version 13\n1..4\nok 1 - a\nok 2 - b # SKIP no pool\nnot ok 3 - c\nok 4 - d' > "$work/plain.json"
counts "passes, a skip and a failure" "2 passed, 1 failed, 1 skipped" 1 "$work/plain.json"
log criterion OK 0 $'1..2\nok - s::a  (0.01s)\nok - s::b  # SKIP cannot size the huge page pool' > "$work/criterion.json"
counts "Criterion's skip lines" "1 passed, 0 failed, 1 skipped" 1 "$work/criterion.json"
log crashed ERROR -11 $'1..5\nok - s::a\nok - s::b' > "$work/crashed.json"
counts "a program killed by a signal midway is a failure" "2 passed, 1 failed, 0 skipped" 1 "$work/crashed.json"
log short ERROR 1 $'1..5\nok - s::a\nok - s::b\nok - s::c' > "$work/short.json"
counts "fewer cases than planned is a failure" "3 passed, 1 failed, 0 skipped" 1 "$work/short.json"
log sanitizer ERROR 23 $'1..1\nok 1 - a' > "$work/sanitizer.json"
counts "a non-zero exit with every case passing is a failure" "1 passed, 1 failed, 0 skipped" 1 "$work/sanitizer.json"
log timeout TIMEOUT -15 $'1..3\nok 1 - a\nnot ok 2 - b' > "$work/timeout.json"
counts "a timeout is a failure beside the failing case" "1 passed, 2 failed, 0 skipped" 1 "$work/timeout.json"
log silent ERROR 127 '' > "$work/silent.json"
counts "a program that printed no TAP is a failure" "0 passed, 1 failed, 0 skipped" 1 "$work/silent.json"
log whole SKIP 77 $'1..0 # SKIP no Criterion here' > "$work/whole.json"
counts "a program skipped as a whole is one skip" "0 passed, 0 failed, 1 skipped" 1 "$work/whole.json"
printf 'TAP version 13\n1..2\nok 1 - holder kept its pages\nnot ok 2 - pool restored\n' > "$work/extra.tap"
counts "plain TAP files add their cases" "3 passed, 2 failed, 1 skipped" 1 "$work/plain.json" "$work/extra.tap"
counts "a missing log is a failure" "0 passed, 1 failed, 0 skipped" 1 "$work/nonexistent.json"
# The tail of a CI log is all one may see: the failures, each with its
# diagnostics, come just above the count, named by program and case.
log listed FAIL 1 $'1..3\nok - s::a\nnot ok - s::b  (0.02s)\n  # test/x.c:12: demoted=1, want 0\nok - s::c' > "$work/listed.json"
counts "the failing case and its diagnostics come just above the count" \
    $'  listed: not ok - s::b  (0.02s)\n        # test/x.c:12: demoted=1, want 0\n2 passed, 1 failed, 0 skipped' \
    3 "$work/listed.json"
exit $((fails > 0))
