#!/usr/bin/env python3
"""Counts test cases, not test programs, and prints
'N passed, N failed, N skipped'; exits 1 when anything failed.

    count-tap.py FILE...

Each FILE is a meson testlog.json (one JSON object per test program run) or
a plain TAP file (*.tap) that a script wrote for checks of its own.

Per test program: a TAP 'ok' line is a pass, or a skip when it carries a
'# SKIP' directive; a 'not ok' line is a failure ('# TODO': a skip). A
program skipped as a whole (TAP '1..0 # SKIP', exit status 77) is one skip.
A program that did not finish its run counts as one failure more, on top of
the failing cases it reported: killed by a signal or a timeout, 'Bail out!',
fewer cases than its plan announced, no TAP at all, or a non-zero exit
status with no failing case to explain it (a sanitizer's report at exit).

Before the count it lists every failure, each with the diagnostic lines
that follow it (at most DIAG_LINES), so that the tail of a long log (all a
CI page may show) names what failed and why."""
import json
import re
import sys

OK = re.compile(r"^ok\b")
NOT_OK = re.compile(r"^not ok\b")
SKIP = re.compile(r"#\s*SKIP\b", re.I)
TODO = re.compile(r"#\s*TODO\b", re.I)
PLAN = re.compile(r"^1\.\.(\d+)(.*)$")
DIAG_LINES = 12


def failures(out):
    """[(the 'not ok' line, [its diagnostic lines])] of a TAP output."""
    found = []
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if NOT_OK.match(line) and not TODO.search(line):
            diag = []
            for nxt in lines[i + 1:]:
                if OK.match(nxt) or NOT_OK.match(nxt) or PLAN.match(nxt):
                    break
                diag.append(nxt)
            found.append((line, diag))
    return found


def count_program(name, out, result=None, returncode=0):
    """(passed, failed, skipped, why it counts as crashed or None)."""
    passed = failed = skipped = cases = 0
    planned, plan_skip, bailed = None, False, False
    for line in out.splitlines():
        if NOT_OK.match(line):
            cases += 1
            if TODO.search(line):
                skipped += 1  # a known failure, announced: not a pass
            else:
                failed += 1
        elif OK.match(line):
            cases += 1
            if SKIP.search(line):
                skipped += 1
            else:
                passed += 1
        elif PLAN.match(line):
            m = PLAN.match(line)
            planned = int(m.group(1))
            plan_skip = planned == 0 and bool(SKIP.search(m.group(2)))
        elif line.startswith("Bail out!"):
            bailed = True
    if cases == 0 and (plan_skip or result == "SKIP" or returncode == 77):
        return 0, 0, 1, None
    why = None
    if result == "TIMEOUT":
        why = "timed out"
    elif returncode is not None and returncode < 0:
        why = "killed by signal %d" % -returncode
    elif bailed:
        why = "bailed out"
    elif cases == 0:
        why = "reported no test case (exit status %s)" % returncode
    elif planned is not None and cases < planned:
        why = "ran %d of the %d cases it planned" % (cases, planned)
    elif returncode and not failed:
        why = "exited with status %d and no failing case" % returncode
    return passed, failed, skipped, why


def programs(path):
    """(name, TAP output, meson result, exit status) of each program in path."""
    text = open(path).read()
    if path.endswith(".tap"):
        return [(path, text, None, 0)]
    runs = []
    for line in text.splitlines():
        if line.strip():
            t = json.loads(line)
            runs.append((t.get("name"), t.get("stdout") or "", t.get("result"), t.get("returncode")))
    return runs


def main(paths):
    totals = [0, 0, 0]
    failed = []  # lines telling what failed, printed above the count
    for path in paths:
        try:
            runs = programs(path)
        except (OSError, ValueError) as e:
            failed.append("no test log at %s (%s)" % (path, e))
            totals[1] += 1
            continue
        for name, out, result, returncode in runs:
            p, f, s, why = count_program(name, out, result, returncode)
            for line, diag in failures(out):
                failed.append("%s: %s" % (name, line))
                failed += ["    " + d for d in diag[:DIAG_LINES]]
                if len(diag) > DIAG_LINES:
                    failed.append("    ... %d more lines (%s)" % (len(diag) - DIAG_LINES, path))
            if why:
                failed.append("%s %s: counted as one more failure" % (name, why))
                f += 1
            totals[0] += p
            totals[1] += f
            totals[2] += s
    if failed:
        print("count-tap: what failed:")
        for line in failed:
            print("  " + line)
    print("%d passed, %d failed, %d skipped" % tuple(totals))
    return 1 if totals[1] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
