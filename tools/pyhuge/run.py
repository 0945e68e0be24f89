"""`pyhuge run [--stats] -- CMD`: CMD with libpyhuge.so first in
LD_PRELOAD; with --stats, the shim's exit line of every process."""
import os
import re
import signal
import subprocess
import sys
import tempfile

from pyhuge.common import command_after_dashes, die, need_lib, preload_env, read


def stats_lines(path):
    return [l for l in (read(path, "") or "").splitlines() if "stats: arenas" in l]


def summarize_stats(lines):
    tot = {"procs": 0, "huge": 0, "fallback": 0, "thp": 0, "peak": 0}
    for l in lines:
        m = re.search(r"arenas huge=(\d+) fallback=(\d+)(?: thp=(\d+))?.*? peak=(\d+)", l)
        if m:
            tot["procs"] += 1
            tot["huge"] += int(m.group(1))
            tot["fallback"] += int(m.group(2))
            tot["thp"] += int(m.group(3) or 0)
            tot["peak"] += int(m.group(4))
    return tot


def cmd_run(a):
    cmd = command_after_dashes(a.cmd)
    lib = need_lib(a.lib)
    env = preload_env(lib)
    if not a.stats:
        try:
            os.execvpe(cmd[0], cmd, env)
        except OSError as e:
            die("cannot run %s: %s" % (cmd[0], e.strerror), 127 if e.errno == 2 else 126)
    fd, path = tempfile.mkstemp(prefix="pyhuge-run-")
    os.close(fd)
    env["PYHUGE_STATS"] = path
    try:
        proc = subprocess.Popen(cmd, env=env)
    except OSError as e:
        os.unlink(path)
        die("cannot run %s: %s" % (cmd[0], e.strerror), 127 if e.errno == 2 else 126)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets ^C; we wait for it
    rc = proc.wait()
    signal.signal(signal.SIGINT, old)
    lines = stats_lines(path)
    os.unlink(path)
    for l in lines:
        print(l, file=sys.stderr)
    t = summarize_stats(lines)
    print("pyhuge: %d process(es) under the shim: %d arenas on huge pages, %d on transparent "
          "huge pages, %d on ordinary pages" % (t["procs"], t["huge"], t["thp"], t["fallback"]),
          file=sys.stderr)
    return 128 - rc if rc < 0 else rc

