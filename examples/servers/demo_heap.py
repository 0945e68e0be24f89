"""The demo apps' shared part: a heap the master builds before it forks (the
preloaded part of a real app: modules, caches, lookup tables) and the work
one request does.

DEMO_HEAP_MB sizes the heap (default 64 MiB of small objects); the
answer to /work?n=N is a checksum anyone can compute with expected(N), so a
test knows each answer is right."""
import gc
import os

ROW = 1000  # (int, str) pairs per list: about 180 KiB


# DEMO_TRACKED=1: pairs as small lists, which the collector tracks (and a
# full collection writes), as most of a real app's heap is; tuples of an
# int and a str are untracked after their first collection.
TRACKED = os.environ.get("DEMO_TRACKED") == "1"


def build(mib):
    rows = max(1, mib * 1024 * 1024 // (ROW * 180))
    pair = list if TRACKED else tuple
    return [[pair((r * ROW + i, "k%d" % (r * ROW + i))) for i in range(ROW)] for r in range(rows)]


HEAP_MB = int(os.environ.get("DEMO_HEAP_MB", "64"))
HEAP = build(HEAP_MB)


def heap_part(n):
    """Reads one row of the preloaded heap (as a request reads a cache)."""
    row = HEAP[n % len(HEAP)]
    return sum(t[0] for t in row) + sum(len(t[1]) for t in row)


def work(n):
    """A request's own objects: a list of small dicts, sorted and summed."""
    items = [{"id": i, "name": "item%d" % i, "score": (i * 7919 + n) % 1000} for i in range(2000)]
    items.sort(key=lambda d: d["score"])
    return sum(d["score"] * (k + 1) for k, d in enumerate(items[:100])) + heap_part(n)


def expected(n, heap_mb=None):
    """The checksum /work?n=N must answer, computed without the heap."""
    rows = max(1, (heap_mb or HEAP_MB) * 1024 * 1024 // (ROW * 180))
    r = n % rows
    part = sum(range(r * ROW, r * ROW + ROW)) + sum(len("k%d" % (r * ROW + i)) for i in range(ROW))
    items = sorted(((i * 7919 + n) % 1000 for i in range(2000)))
    # sort is stable, so the first 100 scores are the 100 smallest in order
    return sum(s * (k + 1) for k, s in enumerate(items[:100])) + part


GC_EVERY = int(os.environ.get("DEMO_GC_EVERY", "0"))
_served = [0]


def answer(n):
    """DEMO_GC_EVERY=N: a full collection every N requests, as a long-lived
    worker's collector eventually does: it writes every tracked object of
    the master's heap that gc.freeze() did not put aside, copying its page."""
    _served[0] += 1
    if GC_EVERY and _served[0] % GC_EVERY == 0:
        gc.collect()
    return '{"n": %d, "checksum": %d, "pid": %d}\n' % (n, work(n), os.getpid())


def freeze():
    """What a careful prefork master does before it forks: the collector
    leaves the preloaded objects alone, so workers do not write (and so
    copy) every one of them (docs.python.org, gc.freeze)."""
    if os.environ.get("DEMO_FREEZE", "1") != "0":
        gc.collect()
        gc.freeze()


def _time_forks():
    """DEMO_FORK_LOG=/path: the master appends how long each fork
    took there (ms, from just before to just after, in the parent: the
    shim's move of the heap included)."""
    path = os.environ.get("DEMO_FORK_LOG")
    if not path:
        return
    import time
    started = []

    def before():
        started.append(time.perf_counter())

    def after_in_parent():
        if started:
            with open(path, "a") as f:
                f.write("%.3f\n" % ((time.perf_counter() - started.pop()) * 1000))

    def after_in_child():
        started.clear()

    os.register_at_fork(before=before, after_in_parent=after_in_parent,
                        after_in_child=after_in_child)


_time_forks()
