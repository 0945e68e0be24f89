"""The arguments: one parser, one subcommand per module, and the exit
codes every error path ends in."""
import argparse
import os
import sys

from pyhuge import ab, check, common, compare, reserve, run, stats, top
from pyhuge.common import EXIT_USAGE, Failure, UsageError

USAGE = """Run stock CPython with its pymalloc arenas on 2 MiB huge pages.

Commands:
  pyhuge check [PYTHON]        is this machine and this Python ready? what to fix
  pyhuge reserve SIZE          size the huge page pool for a heap (512M, 4G, or pages)
  pyhuge run [--stats] -- CMD  run CMD with libpyhuge.so preloaded
  pyhuge ab [-n RUNS] -- CMD   A/B test CMD: control (no shim, or --control off) against the shim
  pyhuge stats PID             what a process under the shim holds right now
  pyhuge top                   every process under the shim, refreshed
  pyhuge compare CONTROL TREATMENT
                               a verdict from exported samples of two arms (Mann-Whitney,
                               Hodges-Lehmann shift with its interval)

Exit codes: 0 success (check: ready; compare: no metric slower); 1 check: degraded,
reserve: granted in part, ab: a run failed, stats: not under the shim, compare: a metric
slower; 2 check: impossible, reserve: refused (not root), stats: not allowed to read the
process; 64 bad arguments or unreadable input. `pyhuge run` exits with the command's own status.
"""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print("pyhuge: error: %s" % message, file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser():
    p = Parser(prog="pyhuge", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version="pyhuge " + common.version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    c = sub.add_parser("check", help="readiness report with a verdict",
                       description="Is this machine, and this Python, ready for huge-page arenas? "
                       "Exit 0 ready, 1 degraded (runs, with fewer or no huge pages), 2 impossible.")
    c.add_argument("python", nargs="?", help="the interpreter to assess (default: python3 on PATH)")
    c.add_argument("--lib", help="libpyhuge.so to use")
    c.set_defaults(fn=check.cmd_check)
    r = sub.add_parser("reserve", help="size the huge page pool for a heap",
                       description="Make SIZE of 2 MiB huge pages free in the pool (needs root). SIZE: a "
                       "page count (300) or a size (512M, 4G, 1.5GiB). Exit 0 granted, 1 granted in part, "
                       "2 refused.")
    r.add_argument("size", metavar="SIZE")
    r.set_defaults(fn=reserve.cmd_reserve)
    u = sub.add_parser("run", help="run a command with the shim preloaded",
                       description="Run CMD with libpyhuge.so first in LD_PRELOAD (keeping what was "
                       "there). Exits with CMD's status.")
    u.add_argument("--stats", action="store_true", help="print the shim's summary of every process at the end")
    u.add_argument("--lib", help="libpyhuge.so to use")
    u.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    u.set_defaults(fn=run.cmd_run)
    b = sub.add_parser("ab", help="A/B test a command with and without the shim",
                       description="Alternate runs of CMD in a control arm and a treatment arm (the "
                       "shim on); print medians, spread, ratios with a 95% bootstrap interval and a "
                       "verdict. Each arm's processes get PYHUGE_ARM=<its label>. Progress goes to "
                       "stderr only when it is a terminal. Exit 0, or 1 when a run failed.")
    b.add_argument("-n", "--runs", type=int, default=5, help="runs per side (default 5)")
    b.add_argument("--warmup", type=int, default=1, help="unmeasured runs per side first (default 1)")
    b.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    b.add_argument("--png", metavar="FILE", help="write a chart (needs python3-matplotlib)")
    b.add_argument("--control", choices=sorted(ab.CONTROLS), default="stock",
                   help="the control arm: stock (no LD_PRELOAD, the default) or off (the library "
                   "loaded with PYHUGE=off, what a two-step rollout compares)")
    b.add_argument("--aa", action="store_true",
                   help="A/A: both arms run the control, to see the noise")
    b.add_argument("--arm-labels", default="control,treatment", metavar="CONTROL,TREATMENT",
                   help="PYHUGE_ARM of each arm (default control,treatment)")
    b.add_argument("--lib", help="libpyhuge.so to use")
    b.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    b.set_defaults(fn=ab.cmd_ab)
    s = sub.add_parser("stats", help="what a process under the shim holds now",
                       description="Huge pages, arenas and fallbacks of a running process, from the "
                       "kernel and from the shim's stats page (root, or the process's own user). "
                       "Exit 0, or 1 when the process is not under the shim.")
    s.add_argument("pid", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=stats.cmd_stats)
    t = sub.add_parser("top", help="every process under the shim, refreshed",
                       description="A table of every process with libpyhuge.so loaded.")
    t.add_argument("--once", action="store_true", help="print once and exit")
    t.add_argument("--interval", type=float, default=2.0)
    t.set_defaults(fn=top.cmd_top)
    compare.add_parser(sub)
    return p


def main(argv=None, launcher_dir=None, version=None, libdir=None):
    if launcher_dir:
        common.configure(launcher_dir, version, libdir)
    p = build_parser()
    a = p.parse_args(argv)
    if not getattr(a, "fn", None):
        p.print_help()
        return EXIT_USAGE
    try:
        return a.fn(a)
    except UsageError as e:
        print("pyhuge %s: error: %s" % (a.command, e), file=sys.stderr)
        return EXIT_USAGE
    except Failure as e:
        print("pyhuge %s: error: %s" % (a.command, e), file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print("pyhuge %s: interrupted" % a.command, file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `pyhuge top --once | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
