"""The benchmark workloads, one per run: `python bench_workloads.py NAME`.

Micro workloads follow CPython's own huge-page proposal; real ones are what
Python services do with the standard library. The garbage collector is off
while a workload runs, as in that proposal. Prints the workload's own time
in seconds (`section=...`), so that start-up is separable from the work.
Runs on CPython 3.6+.
"""
import gc
import json
import os
import pickle
import random
import re
import sys
import time


def tuples():
    x = [(i, i + 1, i + 2) for i in range(1000000)]
    return len(x)


def fragmentation():
    x = [bytearray(128) for _ in range(500000)]
    for i in range(0, len(x), 2):
        x[i] = None
    for i in range(0, len(x), 2):
        x[i] = bytearray(128)
    return len(x)


def mixed_sizes():
    sizes = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
    x = [bytearray(sizes[i % 12]) for i in range(500000)]
    return len(x)


def bulk_small_alloc():
    x = [bytearray(48) for _ in range(1000000)]
    for b in x:
        b[0] = 1
    return len(x)


class Slots:
    __slots__ = ("a", "b", "c")

    def __init__(self, a, b, c):
        self.a, self.b, self.c = a, b, c


def slots_instances():
    x = [Slots(i, i, i) for i in range(500000)]
    return len(x)


def arena_pressure():
    layers = []
    for _ in range(10):
        layers.append([bytearray(256) for _ in range(200000)])
    return sum(len(l) for l in layers)


def random_walk():
    x = [bytearray(64) for _ in range(1000000)]
    order = list(range(len(x)))
    random.Random(1).shuffle(order)
    for i in order:
        x[i][0] = 1
    return len(x)


def list_churn():
    x = []
    for i in range(200000):
        x.append((i, i))
        x.insert(0, (i,)) if i % 1000 == 0 else None
    for _ in range(200000):
        x.pop()
    return len(x)


def small_dicts():
    n = 0
    for i in range(500000):
        d = {"a": i, "b": i + 1}
        n += len(d)
    return n


def ast_stdlib():
    import ast
    root = os.path.dirname(os.__file__)
    n = 0
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("test", "site-packages", "idlelib", "lib2to3")]
        for f in files:
            if f.endswith(".py"):
                try:
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        ast.parse(fh.read())
                    n += 1
                except (SyntaxError, ValueError, UnicodeDecodeError):
                    pass
    return n


def _document():
    rnd = random.Random(2)
    return [{"id": i, "name": "user%d" % i, "tags": ["t%d" % (i % 7), "x"], "score": rnd.random(),
             "address": {"city": "c%d" % (i % 100), "zip": "%05d" % i}} for i in range(60000)]


def json_roundtrip():
    doc = _document()
    for _ in range(3):
        doc = json.loads(json.dumps(doc))
    return len(doc)


def pickle_graph():
    doc = _document()
    for _ in range(5):
        doc = pickle.loads(pickle.dumps(doc, protocol=4))
    return len(doc)


def regex_logs():
    rnd = random.Random(3)
    lines = ["2026-11-26 10:%02d:%02d host%d GET /api/v1/items/%d 200 %dms"
             % (i % 60, i % 60, i % 9, rnd.randrange(100000), rnd.randrange(500)) for i in range(300000)]
    pat = re.compile(r"(\S+) (\S+) (\S+) (GET|POST) (/\S+) (\d{3}) (\d+)ms")
    by_host = {}
    for line in lines:
        m = pat.match(line)
        if m:
            by_host.setdefault(m.group(3), []).append(int(m.group(7)))
    return sum(len(v) for v in by_host.values())


def dict_join():
    users = {i: ("user%d" % i, i % 50) for i in range(300000)}
    orders = [(i, i % 300000, i * 3) for i in range(600000)]
    groups = {}
    for oid, uid, amount in orders:
        name, team = users[uid]
        groups.setdefault(team, set()).add(name)
    return sum(len(s) for s in groups.values())


def startup():
    return 0


MICRO = ["tuples", "fragmentation", "mixed_sizes", "bulk_small_alloc", "slots_instances",
         "arena_pressure", "random_walk", "list_churn", "small_dicts"]
REAL = ["ast_stdlib", "json_roundtrip", "pickle_graph", "regex_logs", "dict_join", "startup"]


def main():
    name = sys.argv[1]
    fn = globals()[name]
    gc.disable()
    t0 = time.perf_counter()
    fn()
    print("section=%.6f" % (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
