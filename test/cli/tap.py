#!/usr/bin/env python3
"""Runs unittest modules and prints TAP, one line per test case and one per
subTest (a skip is `ok N - name # SKIP why`), with the plan at the end, so
that meson counts every case.

    tap.py TOOLS_DIR test_module.py ...
TOOLS_DIR goes first on sys.path: the tests import the pyhuge package there."""
import importlib.util
import os
import sys
import traceback
import unittest


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.failed = 0
        self.with_subtests = set()

    def _line(self, ok, test, extra=""):
        self.n += 1
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n, test.id(), extra), flush=True)

    def addSuccess(self, test):
        if test.id() not in self.with_subtests:  # else its subtests said it
            self._line(True, test)

    def addSubTest(self, test, subtest, err):
        self.with_subtests.add(test.id())
        if err is None:
            self._line(True, subtest)
        else:
            self._bad(subtest, err)

    def addSkip(self, test, reason):
        self._line(True, test, " # SKIP %s" % reason)

    def _bad(self, test, err):
        self.failed += 1
        self._line(False, test)
        for line in "".join(traceback.format_exception(*err)).splitlines():
            print("# " + line)

    def addFailure(self, test, err):
        self._bad(test, err)

    def addError(self, test, err):
        self._bad(test, err)

    def addExpectedFailure(self, test, err):
        self._line(True, test, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        self.failed += 1
        self._line(False, test, " # unexpected success")


def main(argv):
    if len(argv) < 3:
        print("usage: tap.py TOOLS_DIR test_module.py ...", file=sys.stderr)
        return 64
    sys.path.insert(0, os.path.abspath(argv[1]))
    sys.dont_write_bytecode = True
    suite = unittest.TestSuite()
    loader = unittest.TestLoader()
    for path in argv[2:]:
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        suite.addTests(loader.loadTestsFromModule(module))
    print("TAP version 13", flush=True)
    result = TapResult()
    suite.run(result)
    print("1..%d" % result.n)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
