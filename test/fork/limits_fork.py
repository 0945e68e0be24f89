"""fork() in a process at one of its limits, the parent and its children
writing the same heap: every child must see the heap as it was at fork and
never the parent's later writes, and the parent must never see a child's.

  limits_fork.py nofile CHILDREN     no file descriptor left (RLIMIT_NOFILE)
  limits_fork.py as CHILDREN         RLIMIT_AS a few MiB above what is mapped,
                                     with a second thread alive (so that a
                                     copy of the heap cannot be had at fork)
  limits_fork.py as1 CHILDREN        RLIMIT_AS 1 MiB above what is mapped, one
                                     thread
  limits_fork.py data1 CHILDREN      RLIMIT_DATA 1 MiB above what is counted,
                                     one thread
  limits_fork.py asfull CHILDREN     as1, with every page of the shim's range
                                     holding arenas first (no free page to
                                     move the others through)

Prints 'heap chunks=N', one 'child K exit=E' or 'child K signal=S' line per
child (exit 0: its heap was right; 3: it was not), then 'parent changed=N'
(objects of the parent's a child wrote; 0 is right) and 'parent ok'."""
import os
import resource
import sys
import threading


def build_heap(mib):
    return [[[i, "s%d" % i] for i in range(10000)] for _ in range(mib * 1024 * 1024 // 1000000)]


def status_bytes(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def free_range_pages():
    """2 MiB pages of the shim's range that are address space only: private
    anonymous PROT_NONE mappings on 2 MiB boundaries (nothing else in a
    one-thread Python looks so), or None with no huge page in use."""
    pages, huge = 0, False
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            path = fields[5].strip() if len(fields) > 5 else ""
            huge = huge or path.startswith("/anon_hugepage")
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if fields[1] == "---p" and path in ("", "[anon:pyhuge]") and not (lo | hi) & ((2 << 20) - 1):
                pages += (hi - lo) >> 21
    return pages if huge else None


def fill_range(keep):
    """Small objects until no page of the range is free, or None."""
    for _ in range(20000):
        free = free_range_pages()
        if free is None:
            return None
        if free == 0:
            return True
        keep.append([(i, "f%d" % i) for i in range(1000)])
    return False


def main():
    mode = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    heap = build_heap(120)
    expected = sum(item[0] for chunk in heap for item in chunk)
    print("heap chunks=%d" % len(heap), flush=True)
    r, w = os.pipe()
    stop = threading.Event()
    held_objects = []
    if mode == "nofile":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        held = []
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass  # every descriptor below the limit is taken
    elif mode == "as":
        t = threading.Thread(target=stop.wait)
        t.start()
        limit = status_bytes("VmSize") + (24 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    elif mode == "as1":
        resource.setrlimit(resource.RLIMIT_AS, (status_bytes("VmSize") + (1 << 20), resource.RLIM_INFINITY))
    elif mode == "asfull":
        filled = fill_range(held_objects)
        print("range full=%s" % {None: "no-huge-pages", True: "yes", False: "no"}[filled], flush=True)
        resource.setrlimit(resource.RLIMIT_AS, (status_bytes("VmSize") + (1 << 20), resource.RLIM_INFINITY))
    elif mode == "data1":
        resource.setrlimit(resource.RLIMIT_DATA, (status_bytes("VmData") + (1 << 20), resource.RLIM_INFINITY))
    pids = []
    for k in range(n):
        pid = os.fork()
        if pid == 0:
            total = sum(item[0] for chunk in heap for item in chunk)
            for chunk in heap:  # the child writes every object of its own
                for item in chunk:
                    item[0] = -1
            os._exit(0 if total == expected else 3)
        pids.append(pid)
        for chunk in heap:  # the parent writes while children run
            chunk[0][0] += 0
    results = [os.waitpid(pid, 0)[1] for pid in pids]
    stop.set()
    if mode == "nofile":
        for fd in held:
            os.close(fd)
    changed = sum(1 for chunk in heap for item in chunk if item[0] == -1)
    for k, status in enumerate(results):
        if os.WIFSIGNALED(status):
            print("child %d signal=%d" % (k, os.WTERMSIG(status)))
        else:
            print("child %d exit=%d" % (k, os.WEXITSTATUS(status)))
    print("parent changed=%d" % changed)
    print("parent ok" if sum(item[0] for chunk in heap for item in chunk) == expected else "parent wrong")


if __name__ == "__main__":
    main()
