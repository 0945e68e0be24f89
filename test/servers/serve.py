#!/usr/bin/env python3
"""Runs a real prefork server (Debian's gunicorn or uWSGI) with one of the
demo apps of examples/servers/ on a free 127.0.0.1 port, sends it requests,
checks every answer, measures the master and its workers from the kernel's
accounts, stops it, and prints what it saw as `key=value` lines (for
test/e2e/test_servers.c) or returns it as a dict (bench/bench_servers.py).

    serve.py gunicorn|uwsgi [--requests N] [--workers N] [--heap-mb N]
             [--max-requests N] [--keep-log]

The environment (LD_PRELOAD, PYHUGE_*) is passed on to the server as it is.
Lines printed:
  ready_ms=T            from start to the first right answer
  answers=N wrong=N failed=N
  worker pid=P hugetlb_kb=H pss_kb=S private_kb=D answered=0/1   each live worker, under load (answered: it served some of the first half of the requests)
  master pid=P hugetlb_kb=H pss_kb=S
  pids_answering=N      distinct worker pids that answered (recycling adds some)
  deaths=N              workers the server's log says died of a signal
  log: ...              log lines of interest (signals, pyhuge messages)
  exit=N                the server's exit status after SIGTERM"""
import argparse
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples", "servers")
sys.path.insert(0, EXAMPLES)

SERVERS = ("gunicorn", "uwsgi")
# A worker killed by a signal, as each server logs it.
# SIGTERM (15) is how a master stops its workers at shutdown; not a death.
DEATH = re.compile(r"terminated due to signal (?!15\b)|was sent SIG(?!TERM|QUIT|HUP|INT)|"
                   r"killed by signal (?!15\b)|SIGBUS|Bus error|core dumped|Aborted")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(server, port, workers, max_requests):
    if server == "gunicorn":
        return ["/usr/bin/gunicorn", "-c", os.path.join(EXAMPLES, "gunicorn.conf.py"),
                "--bind", "127.0.0.1:%d" % port, "--workers", str(workers),
                "--max-requests", str(max_requests), "django_app:application"]
    return ["/usr/bin/uwsgi", "--ini", os.path.join(EXAMPLES, "uwsgi.ini")]


def start(server, env_extra=None, workers=2, heap_mb=64, max_requests=2000, log=None):
    """Starts the server; returns (process, port, log path)."""
    port = free_port()
    env = dict(os.environ)
    env.update(env_extra or {})
    env.update({"PORT": str(port), "WEB_CONCURRENCY": str(workers),
                "MAX_REQUESTS": str(max_requests), "DEMO_HEAP_MB": str(heap_mb),
                "PYTHONPATH": EXAMPLES, "PYTHONUNBUFFERED": "1"})
    if log is None:
        fd, log = tempfile.mkstemp(prefix="pyhuge-%s-" % server, suffix=".log")
        os.close(fd)
    out = open(log, "w")
    proc = subprocess.Popen(command(server, port, workers, max_requests), env=env, cwd=EXAMPLES,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    return proc, port, log


def get(conn, n):
    conn.request("GET", "/work?n=%d" % n)
    resp = conn.getresponse()
    body = resp.read().decode()
    return resp.status, body


def wait_ready(proc, port, timeout=60.0):
    """Milliseconds from now to the first right answer, or None."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout and proc.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status, body = get(conn, 1)
            conn.close()
            if status == 200 and '"checksum"' in body:
                return (time.perf_counter() - t0) * 1000
        except OSError:
            pass
        time.sleep(0.02)
    return None


def children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(d))
    return sorted(kids)


def memory(pid):
    """Pss, private (dirty + hugetlb) and hugetlb memory of a process, in KiB."""
    m = {"pss_kb": 0, "private_kb": 0, "hugetlb_kb": 0, "anon_huge_kb": 0}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 3:
                    continue
                k, v = parts[0].rstrip(":"), int(parts[1])
                if k == "Pss":
                    m["pss_kb"] = v
                elif k in ("Private_Dirty", "Private_Hugetlb"):
                    m["private_kb"] += v
                if k in ("Private_Hugetlb", "Shared_Hugetlb"):
                    m["hugetlb_kb"] += v
                if k == "AnonHugePages":
                    m["anon_huge_kb"] = v
    except OSError:
        pass
    return m


def workers_of(server, master):
    """The worker processes: the master's children (uWSGI's master may also
    start helper threads, never processes, with this config)."""
    return children(master)


def check_answers(port, count, first=0):
    """Sends count requests on keep-alive connections; returns (answers,
    wrong, failed, pids)."""
    import demo_heap
    answers = wrong = failed = 0
    pids = set()
    conn = None
    for n in range(first, first + count):
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                status, body = get(conn, n)
            except (ConnectionError, http.client.RemoteDisconnected):
                # The server closed a kept-alive connection (uWSGI's
                # http-socket does after each answer): once more on a new one.
                conn.close()
                status, body = get(conn, n)
            m = re.search(r'"checksum": (\d+), "pid": (\d+)', body)
            if status != 200 or not m:
                failed += 1
                continue
            answers += 1
            pids.add(int(m.group(2)))
            if int(m.group(1)) != demo_heap.expected(n):
                wrong += 1
            if n % 10 == 9:
                # uWSGI counts a kept-alive connection as one request for
                # max-requests: new connections let recycling happen.
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            failed += 1
            if conn:
                conn.close()
            conn = None
    if conn:
        conn.close()
    return answers, wrong, failed, pids


def stop(proc, timeout=45.0):
    """SIGTERM, then SIGKILL after `timeout` s: longer than gunicorn's own
    graceful_timeout (30 s), after which its master kills a worker that is
    still busy (one that was booting when the signal came) and exits 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def interesting(log):
    with open(log, errors="replace") as f:
        lines = f.read().splitlines()
    deaths = [l for l in lines if DEATH.search(l)]
    shim = [l for l in lines if l.startswith("pyhuge [")]
    return deaths, shim


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("server", choices=SERVERS)
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--heap-mb", type=int, default=64)
    p.add_argument("--max-requests", type=int, default=2000)
    p.add_argument("--keep-log", action="store_true")
    a = p.parse_args()
    proc, port, log = start(a.server, workers=a.workers, heap_mb=a.heap_mb,
                            max_requests=a.max_requests)
    try:
        ready = wait_ready(proc, port)
        print("ready_ms=%d" % (ready if ready is not None else -1))
        if ready is None:
            print("exit=%d" % stop(proc))
            with open(log, errors="replace") as f:
                sys.stdout.write("log: " + "log: ".join(f.readlines()[-40:]))
            return 1
        half = a.requests // 2
        ans, wrong, failed, pids = check_answers(port, half)
        # Under load: each worker measured while it is up. With recycling, a
        # worker may be between its exit and its successor's start, or gone
        # by the time its smaps is read: measure again (bounded) until the
        # master's full count is alive. answered=1: the worker served some
        # of the requests above (a successor just forked may not have made
        # an arena of its own yet).
        deadline = time.monotonic() + 15
        while True:
            live = [(w, memory(w)) for w in workers_of(a.server, proc.pid)]
            live = [(w, m) for w, m in live if m["pss_kb"] > 0]
            if len(live) >= a.workers or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for w, m in live:
            print("worker pid=%d hugetlb_kb=%d pss_kb=%d private_kb=%d answered=%d" % (
                w, m["hugetlb_kb"], m["pss_kb"], m["private_kb"], int(w in pids)))
        m = memory(proc.pid)
        print("master pid=%d hugetlb_kb=%d pss_kb=%d" % (proc.pid, m["hugetlb_kb"], m["pss_kb"]))
        a2, w2, f2, p2 = check_answers(port, a.requests - half, half)
        ans, wrong, failed, pids = ans + a2, wrong + w2, failed + f2, pids | p2
        print("answers=%d wrong=%d failed=%d" % (ans, wrong, failed))
        print("pids_answering=%d" % len(pids))
    finally:
        code = stop(proc)
    deaths, shim = interesting(log)
    print("deaths=%d" % len(deaths))
    for line in deaths + shim:
        print("log: " + line)
    print("exit=%d" % code)
    if not a.keep_log:
        os.unlink(log)
    else:
        print("logfile=" + log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
