"""A prefork server's memory, as gunicorn, uWSGI and Celery prefork run:
the master builds a heap of small objects, then forks WORKERS workers; each
worker reads part of the master's heap (as requests would: every read of an
object writes its reference count) and builds a heap of its own. With all
workers up, the master measures every process from the kernel's accounts
and prints one JSON object:

  heap_mib, workers, worker_mib       what was asked
  fork_ms                             how long each os.fork() took in the master
  total_mib                           sum over all processes of Pss + hugetlb
                                      (hugetlb memory is not in Pss)
  master, workers_mem                 per process: pss, private (Private_Dirty
                                      + Private_Hugetlb: memory no other process
                                      shares), hugetlb, anon_huge (MiB)

Usage: prefork.py HEAP_MIB WORKERS WORKER_MIB [READ_PERCENT] [thread]
(READ_PERCENT of the master's heap each worker reads, default 10; `thread`:
a second thread is alive in the master while it forks, as in a master with
a metrics or heartbeat thread)."""
import json
import os
import sys
import threading
import time


def build(mib, tag):
    # About 80 bytes per (int, str) pair kept in lists: sized by count.
    n = mib * 1024 * 1024 // 800000
    return [[(i, "%s%d" % (tag, i)) for i in range(10000)] for _ in range(n)]


def rollup(pid):
    fields = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    hugetlb = fields.get("Private_Hugetlb", 0) + fields.get("Shared_Hugetlb", 0)
    return {
        "pss": fields.get("Pss", 0) / 1024,
        "private": (fields.get("Private_Dirty", 0) + fields.get("Private_Hugetlb", 0)) / 1024,
        "hugetlb": hugetlb / 1024,
        "anon_huge": fields.get("AnonHugePages", 0) / 1024,
    }


def worker(heap, worker_mib, read_percent, ready_w, go_r):
    step = max(1, 100 // max(1, read_percent))
    total = 0
    for chunk in heap[::step]:
        for t in chunk:
            total += t[0]
    own = build(worker_mib, "w")
    os.write(ready_w, b"r")
    os.read(go_r, 1)
    os._exit(0 if total >= 0 and own else 3)


def main():
    heap_mib, workers, worker_mib = (int(a) for a in sys.argv[1:4])
    read_percent = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    heap = build(heap_mib, "m")
    stop = threading.Event()
    if "thread" in sys.argv[5:]:
        threading.Thread(target=stop.wait, daemon=True).start()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pids, fork_ms = [], []
    for _ in range(workers):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            worker(heap, worker_mib, read_percent, ready_w, go_r)
        fork_ms.append((time.perf_counter() - t0) * 1000)
        pids.append(pid)
    for _ in pids:
        os.read(ready_r, 1)
    master = rollup(os.getpid())
    mem = [rollup(p) for p in pids]
    os.write(go_w, b"g" * len(pids))
    stop.set()
    statuses = [os.waitpid(p, 0)[1] for p in pids]
    total = master["pss"] + master["hugetlb"] + sum(m["pss"] + m["hugetlb"] for m in mem)
    print(json.dumps({
        "heap_mib": heap_mib, "workers": workers, "worker_mib": worker_mib,
        "fork_ms": [round(x, 2) for x in fork_ms],
        "total_mib": round(total, 1),
        "master": master, "workers_mem": mem,
        "workers_ok": sum(1 for s in statuses if os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0),
    }))


if __name__ == "__main__":
    main()
