#!/usr/bin/env python3
"""Counts test cases, not test programs, from meson's testlog.json files:
every TAP line 'ok', 'not ok' and '# SKIP' in each test's output. A test
program that crashed or printed no plan counts as one failure. Prints
'N passed, N failed, N skipped' and exits 1 when anything failed."""
import json
import re
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        print("no test log at %s" % path, file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        out = t.get("stdout") or ""
        cases = 0
        for l in out.splitlines():
            if re.match(r"^not ok\b", l):
                failed += 1
                cases += 1
            elif re.match(r"^ok\b", l):
                cases += 1
                if re.search(r"#\s*SKIP", l, re.I):
                    skipped += 1
                else:
                    passed += 1
        if cases == 0 or t.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL"):
            if cases == 0 or t.get("result") in ("TIMEOUT", "ERROR", "FAIL"):
                if not any(re.match(r"^not ok\b", l) for l in out.splitlines()):
                    print("%s: %s with no failing case reported" % (t.get("name"), t.get("result")),
                          file=sys.stderr)
                    failed += 1
print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
sys.exit(1 if failed else 0)
