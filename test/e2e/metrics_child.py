"""A CPython process for test_metrics.py, run under the shim: it makes arenas
and answers commands read from stdin, one a line, each answered with a line:

  more      makes more arenas, waits past PYHUGE_METRICS_INTERVAL, makes more
            (a refresh is due on the next arena), then says "done"
  fork      forks a child that makes arenas, says "child PID", waits 3 s and
            exits cleanly; the parent says "child-exited STATUS" once it ends
  (EOF)     exits cleanly
"""
import os
import sys
import time

keep = []


def arenas(n=300000):
    keep.append([str(i) for i in range(n)])


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


arenas()
say("ready %d" % os.getpid())
interval = float(os.environ.get("PYHUGE_METRICS_INTERVAL", "5"))
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "more":
        arenas()
        time.sleep(interval + 0.3)
        arenas()
        say("done")
    elif cmd == "fork":
        pid = os.fork()
        if pid == 0:
            del keep[:]
            arenas()  # the child's first arenas: its own file
            say("child %d" % os.getpid())
            time.sleep(3)
            sys.exit(0)  # a clean exit: the child's file goes
        _, status = os.waitpid(pid, 0)
        say("child-exited %d" % status)
