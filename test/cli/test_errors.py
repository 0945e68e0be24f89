"""Arguments the subcommands refuse: a sentence on stderr and exit 64, never
a traceback."""
import os
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "tools", "pyhuge.py")


class CommandErrors(unittest.TestCase):
    """Arguments the other subcommands refuse with a sentence and exit 64."""

    def run_cli(self, *args):
        p = subprocess.run([sys.executable, CLI] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        return p.returncode, p.stderr

    def test_usage_errors(self):
        for args, words in ((["stats", "0"], "PID must be a process id"),
                            (["stats", "-5"], "PID must be a process id"),
                            (["top", "--interval", "0"], "--interval is in seconds"),
                            (["ab", "--arm-labels", "one", "--", "true"], "--arm-labels takes two"),
                            (["ab", "--arm-labels", "a b,c", "--", "true"], "--arm-labels takes two"),
                            (["ab", "--arm-labels", "a," + "b" * 64, "--", "true"], "each 1 to 63"),
                            (["ab", "--json", "/nonexistent/dir/x.json", "--", "true"],
                             "--json /nonexistent/dir/x.json: no such directory")):
            with self.subTest(args=args):
                code, err = self.run_cli(*args)
                self.assertEqual(code, 64, err)
                self.assertIn(words, err)
                self.assertNotIn("Traceback", err)
