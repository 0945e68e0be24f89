#!/usr/bin/env python3
"""Draws the house: the #include "..." edges between the files of src/.

    scripts/house.py [SRC_DIR]          prints every edge, then any cycle
    scripts/house.py --check [--known A.c:B.h]... [SRC_DIR]
                                        TAP: fails on a cycle; a cycle that
                                        needs a --known edge is a TODO case

An edge a -> b means a includes b. A file's header and its .c are one
room, so x.c -> x.h is left out. Only quoted includes count: <...> are
the system's. A cycle is a circle of rooms: x.c -> y.h and y.c -> x.h is
one, even though no header includes itself.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def room(name):
    return os.path.splitext(name)[0]


def edges(src):
    out = []
    for f in sorted(os.listdir(src)):
        if not f.endswith((".c", ".h")):
            continue
        with open(os.path.join(src, f)) as fh:
            for inc in INCLUDE.findall(fh.read()):
                if os.path.exists(os.path.join(src, inc)) and room(inc) != room(f):
                    out.append((f, inc))
    return out


def cycles(es):
    """Circles between rooms (a file and its header are one room)."""
    graph = {}
    for a, b in es:
        graph.setdefault(room(a), set()).add(room(b))
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif not state.get(m):
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if not state.get(n):
            visit(n)
    return found


def main(argv):
    check, known, args = False, set(), []
    it = iter(argv)
    for a in it:
        if a == "--check":
            check = True
        elif a == "--known":
            known.add(tuple(next(it).split(":")))
        else:
            args.append(a)
    src = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    es = edges(src)
    cs = cycles(es)
    if check:
        print("TAP version 13\n1..2")
        hard = cycles([e for e in es if e not in known])
        for c in hard:
            print("# circle: " + " -> ".join(c))
        print("%s 1 - the rooms of src/ include each other in no circle but through a known "
              "edge (%d edges)" % ("not ok" if hard else "ok", len(es)))
        for c in cs:
            print("# circle: " + " -> ".join(c))
        todo = " # TODO known edges to remove: " + ", ".join(a + " -> " + b for a, b in sorted(known))
        print("%s 2 - no circle at all%s" % ("not ok" if cs else "ok", todo if cs and known else ""))
        return 1 if hard or (cs and not known) else 0
    for a, b in es:
        print("%s -> %s" % (a, b))
    for c in cs:
        print("circle: " + " -> ".join(c))
    print("%d edges, %d circles" % (len(es), len(cs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
