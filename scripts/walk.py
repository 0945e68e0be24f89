# Walks one interposed call through the rooms: follows it step by step in gdb
# from the hook (src/hooks.c) until it returns, and prints every function of
# src/*.c that runs, indented by depth, then
#   stays    functions of src/*.c entered (static helpers too; header inlines not)
#   rooms    the .c files among them
#   returns  returns from one file back into another (the hook's own included)
# For a build without optimisation (each function a frame of its own):
#   meson setup /tmp/o0 -Doptimization=0 -Ddebug=true && meson compile -C /tmp/o0
#   TRACE_LIB=/tmp/o0/libpyhuge.so TRACE_CALL=munmap \
#     gdb -q -batch -x scripts/walk.py --args /tmp/o0/test/arenas \
#     alloc 1048576 alloc 1048576 alloc 1048576 free 1
#   TRACE_LIB=/tmp/o0/libpyhuge.so TRACE_CALL=mmap64 TRACE_SKIP=1 \
#     gdb -q -batch -x scripts/walk.py --args /tmp/o0/test/arenas alloc 1048576 alloc 1048576
# TRACE_CALL names the hook; the (TRACE_SKIP+1)th call of it with len 1 MiB is
# walked. Needs the huge page pool or THP for the arena to be the shim's.
import gdb, os
LIB = os.environ["TRACE_LIB"]
WHICH = os.environ["TRACE_CALL"]
SKIP = int(os.environ.get("TRACE_SKIP", "0"))
for c in ("set pagination off", "set confirm off", "set environment LD_PRELOAD=" + LIB,
          "set breakpoint pending on"):
    gdb.execute(c)
bp = gdb.Breakpoint("hooks.c:" + WHICH)
gdb.execute("run", to_string=True)
hits = 0
while True:
    if int(gdb.parse_and_eval("len")) == 1 << 20:
        if hits == SKIP:
            break
        hits += 1
    gdb.execute("continue", to_string=True)
bp.delete()

def where():
    f = gdb.selected_frame()
    d, g = 0, f
    while g is not None:
        d += 1
        g = g.older()
    sal = f.find_sal()
    path = sal.symtab.filename if sal.symtab else ""
    ours = "/src/" in path.replace("-src/", "-SRC/") and path.endswith(".c")
    name = f.function().name if f.function() else "?"
    o = f.older()
    osal = o.find_sal() if o is not None else None
    caller = os.path.basename(osal.symtab.filename) if osal is not None and osal.symtab else ""
    return name, os.path.basename(path), d, ours, caller

name, fl, base, _, caller = where()
trace = [(name, fl, base, caller)]
while True:
    gdb.execute("step", to_string=True)
    name, fl, d, ours, caller = where()
    if d < base:
        break
    if ours and (name, fl, d) != trace[-1][:3]:
        trace.append((name, fl, d, caller))
stays, returns, rooms, prev = 0, 0, set(), None
for name, fl, d, caller in trace:
    rooms.add(fl)
    if prev is None or d > prev[2]:
        stays += 1
        print("%s%s (%s)" % ("  " * (d - base), name, fl))
    elif d == prev[2]:
        # returned from prev into the caller, then called this one
        stays += 1
        returns += prev[1] != caller
        print("%s%s (%s)" % ("  " * (d - base), name, fl))
    elif fl != prev[1]:
        returns += 1
    prev = (name, fl, d)
returns += 1  # the hook back to its caller
print("stays=%d rooms=%d returns=%d: %s" % (stays, len(rooms), returns, " ".join(sorted(rooms))))
gdb.execute("kill")
