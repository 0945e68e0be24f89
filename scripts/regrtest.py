#!/usr/bin/env python3
"""CPython's own regression tests under the shim, on every Python we can reach.

    scripts/regrtest.py [--slice fast|full] [--python PATH]... [--tap] [--markdown FILE]

For each Python (default: every pyenv 3.6-3.13, /usr/bin/python3.11 and
CPython 3.14.7 as scripts/build-cpython.sh caches it, --cpython-cache) it
runs a slice of `python -m test` three ways: stock (no shim), under the shim
with a roomy pool, and under the shim with a pool so small it runs dry
during the run. Subprocesses the tests start inherit LD_PRELOAD: part of the
test. A configuration passes when it fails no test that stock passes
(failures are re-run once in verbose mode, -w, as CI would). The shim's
PYHUGE_STATS lines from every process are summed, so the table shows how
many arenas each run put on huge pages. Needs root for the pool; restores it.

--slice fast is what `meson test --suite regrtest` runs (a few minutes);
--slice full (the default) is 40+ test files per version.
"""
import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NR = "/proc/sys/vm/nr_hugepages"
OVERCOMMIT = "/proc/sys/vm/nr_overcommit_hugepages"

# Memory-heavy, fork, threads, subprocess, mmap, gc, weakref, pickle, ctypes
# and the object types that live in arenas. Names that a version lacks are
# skipped for that version.
FULL = """test_gc test_weakref test_pickle test_pickletools test_copy test_mmap test_ctypes
test_fork1 test_wait4 test_os test_posix test_signal test_threading test_threading_local
test_thread test_queue test_subprocess test_multiprocessing_fork test_concurrent_futures
test_list test_tuple test_dict test_set test_deque test_defaultdict test_ordered_dict
test_bytes test_bigmem test_memoryview test_array test_struct test_str test_unicode
test_string test_long test_float test_int test_math test_sort test_bisect test_heapq
test_itertools test_functools test_collections test_descr test_class test_exceptions
test_generators test_coroutines test_json test_re test_ast test_compile test_marshal
test_enum test_dataclasses test_io test_file test_tempfile test_sys test_resource
test_weakset test_finalization test_raise test_scope test_iter""".split()
FAST = "test_gc test_weakref test_mmap test_fork1".split()

CONFIGS = (("stock", None), ("roomy", 1536), ("drained", 12))


def pythons(cache):
    """The interpreters on the machine, and (version, reason) for those
    expected but absent: 3.14.7 is built once per machine by
    scripts/build-cpython.sh (scripts/test.sh calls it)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found, missing = [], []
    for minor in range(6, 14):
        hits = sorted(glob.glob("%s/versions/3.%d.*/bin/python3.%d" % (root, minor, minor)))
        if hits:
            found.append(hits[-1])
    if os.access("/usr/bin/python3.11", os.X_OK):
        found.append("/usr/bin/python3.11")
    py314 = os.path.join(cache, "3.14.7", "bin", "python3.14")
    if os.access(py314, os.X_OK) and os.path.exists(os.path.join(cache, "3.14.7", ".built")):
        found.append(py314)
    else:
        missing.append(("3.14.7", "no CPython 3.14.7 at %s: scripts/build-cpython.sh builds it "
                        "(scripts/test.sh does, when ../shared/cpython has the source)" % py314))
    return found, missing


def describe(py):
    out = subprocess.run([py, "-c", "import sys, sysconfig; print(sys.version.split()[0]);"
                          "print(sysconfig.get_config_var('Py_ENABLE_SHARED'));"
                          "print(sysconfig.get_path('stdlib'))"],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.split("\n")
    version, stdlib = out[0], out[2]
    ldd = subprocess.run(["ldd", py], stdout=subprocess.PIPE, universal_newlines=True).stdout
    shared = "libpython" in ldd
    major, minor = (int(x) for x in version.split(".")[:2])
    arena = "1 MiB" if (major, minor) >= (3, 10) else "256 KiB"
    return version, "shared libpython" if shared else "libpython in executable", arena, stdlib


def available(stdlib, names):
    tdir = os.path.join(stdlib, "test")
    return [n for n in names if os.path.exists(os.path.join(tdir, n + ".py")) or
            os.path.isdir(os.path.join(tdir, n))]


def meminfo(key):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def held():
    """Pages other processes hold: faulted in (Total - Free) or reserved
    (Rsvd, counted in Free until faulted in), surplus pages included."""
    return meminfo("HugePages_Total") - meminfo("HugePages_Free") + meminfo("HugePages_Rsvd")


def write_pool(n):
    with open(NR, "w") as f:
        f.write("%d\n" % n)


def set_pool(n):
    """n free pages for the run beside what other processes hold: never
    below their pages, which the kernel would make surplus pages, freed
    from under the pool when they let go."""
    write_pool(held() + n)


def restore_pool(before, surplus_before, overcommit_before):
    write_pool(max(before, held() - surplus_before))
    if overcommit_before:
        with open(OVERCOMMIT, "w") as f:
            f.write("%d\n" % overcommit_before)


def failed_tests(output):
    """Tests that failed in the end (after the -w re-run), from regrtest's
    summary: the last 'N tests failed[ again]:' / 'crashed:' block, unless
    the run ended 'FAILURE then SUCCESS' (3.9+: every re-run passed)."""
    if re.search(r"Tests result: \w+ then SUCCESS", output):
        return set()
    final = set()
    lines = output.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\d+) tests? (failed|failed again|crashed):$", line.strip())
        if not m:
            continue
        names = []
        for follow in lines[i + 1:]:
            if not follow.startswith("    "):
                break
            names += follow.split()
        final = set(names)
    return final


def sum_stats(path):
    huge = fallback = thp = procs = 0
    try:
        with open(path) as f:
            for line in f:
                m = re.search(r"arenas huge=(\d+) fallback=(\d+)(?: thp=(\d+))?", line)
                if m:
                    huge += int(m.group(1))
                    fallback += int(m.group(2))
                    thp += int(m.group(3) or 0)
                    procs += 1
    except OSError:
        pass
    return huge, fallback, thp, procs


def run_config(py, tests, name, pages, lib, jobs, timeout):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    stats = None
    if pages is not None:
        set_pool(pages)
        fd, stats = tempfile.mkstemp(prefix="pyhuge-regrtest-")
        os.close(fd)
        env["LD_PRELOAD"] = lib
        env["PYHUGE_STATS"] = stats
    cmd = [py, "-m", "test", "-j%d" % jobs, "-w", "--timeout", str(timeout)] + tests
    t0 = time.time()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, errors="replace")
    result = {
        "config": name, "exit": proc.returncode, "seconds": time.time() - t0,
        "failed": failed_tests(proc.stdout), "output": proc.stdout,
        "huge": 0, "fallback": 0, "thp": 0, "procs": 0,
    }
    if stats:
        result["huge"], result["fallback"], result["thp"], result["procs"] = sum_stats(stats)
        os.unlink(stats)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slice", choices=("fast", "full"), default="full")
    ap.add_argument("--python", action="append", help="interpreter(s) to test (default: all found)")
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "libpyhuge.so"))
    ap.add_argument("--cpython-cache", default="/var/cache/pyhuge/cpython",
                    help="where scripts/build-cpython.sh keeps CPython 3.14.7 (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=900, help="per test file, seconds")
    ap.add_argument("--tap", action="store_true", help="TAP output, one case per Python and pool")
    ap.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    ap.add_argument("--logs", metavar="DIR", help="keep every run's output in DIR")
    a = ap.parse_args()
    # A job started in the background by a non-interactive shell inherits
    # SIGINT ignored, and so would every test process: CPython's own
    # interrupt_main tests then fail, or spin until their timeout (3.12).
    # A handler here makes exec give the children the default again.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # kill (SIGTERM) unwinds like ^C, so the pool is put back.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lib = os.path.abspath(a.lib)
    if not os.path.exists(lib):
        ap.error("no %s: build first" % lib)
    if os.geteuid() != 0:
        ap.error("needs root to size the huge page pool")
    pys, missing = (a.python, []) if a.python else pythons(a.cpython_cache)
    names = FAST if a.slice == "fast" else FULL

    with open(NR) as f:
        pool_before = int(f.read())
    surplus_before = meminfo("HugePages_Surp")
    with open(OVERCOMMIT) as f:
        overcommit_before = int(f.read())
    if overcommit_before:
        # Surplus pages made on demand would keep the small pool from running dry.
        with open(OVERCOMMIT, "w") as f:
            f.write("0\n")
    rows, cases = [], []
    for version, why in missing:
        cases.append((None, "%s: %s" % (version, why), ""))
    try:
        for py in pys:
            version, linkage, arena, stdlib = describe(py)
            tests = available(stdlib, names)
            if not tests:
                # With no names, `python -m test` would run the whole suite.
                cases.append((None, "%s (%s): no test suite installed (Debian: apt-get install "
                              "libpython3.X-testsuite)" % (version, py), ""))
                continue
            runs = {}
            for name, pages in CONFIGS:
                print("# %s %s: %d test files, %s ..." % (version, name, len(tests), name),
                      file=sys.stderr, flush=True)
                r = run_config(py, tests, name, pages, lib, a.jobs, a.timeout)
                runs[name] = r
                if a.logs:
                    os.makedirs(a.logs, exist_ok=True)
                    with open(os.path.join(a.logs, "%s-%s.log" % (version, name)), "w") as f:
                        f.write(r["output"])
            stock_failed = runs["stock"]["failed"]
            row = {"version": version, "python": py, "linkage": linkage, "arena": arena,
                   "files": len(tests), "stock_failed": sorted(stock_failed)}
            for name in ("roomy", "drained"):
                r = runs[name]
                new = sorted(r["failed"] - stock_failed)
                ok = not new and r["huge"] > 0
                row[name] = {"ok": ok, "new_failures": new, "huge": r["huge"], "thp": r["thp"],
                             "fallback": r["fallback"], "procs": r["procs"],
                             "seconds": round(r["seconds"])}
                why = ("new failures: %s" % " ".join(new)) if new else (
                    "no arena on huge pages" if r["huge"] == 0 else "")
                # What failed, from the end of regrtest's own output.
                tail = "" if ok else "\n".join(r["output"].splitlines()[-60:])
                cases.append((ok, "%s (%s) %s pool: %d files, arenas %d huge, %d THP, %d ordinary in "
                              "%d processes%s" % (version, py, name, len(tests), r["huge"], r["thp"],
                                                  r["fallback"], r["procs"], ("; " + why) if why else ""),
                              tail))
            rows.append(row)
    finally:
        restore_pool(pool_before, surplus_before, overcommit_before)

    table = ["| Python | linkage | arena | test files | stock | shim, roomy pool | shim, pool runs dry |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        stock = "pass" if not row["stock_failed"] else "fails %s" % " ".join(row["stock_failed"])
        cells = []
        for name in ("roomy", "drained"):
            c = row[name]
            verdict = "same as stock" if c["ok"] else ("NEW FAILURES: %s" % " ".join(c["new_failures"])
                                                      if c["new_failures"] else "no huge pages")
            cells.append("%s; arenas: %d huge, %d THP, %d ordinary" % (verdict, c["huge"], c["thp"],
                                                                      c["fallback"]))
        table.append("| %s | %s | %s | %d | %s | %s | %s |" % (
            row["version"], row["linkage"], row["arena"], row["files"], stock, cells[0], cells[1]))
    if a.tap:
        print("TAP version 13")
        print("1..%d" % len(cases))
        for i, (ok, text, tail) in enumerate(cases, 1):
            if ok is None:
                print("ok %d - %s # SKIP" % (i, text))
            else:
                print("%s %d - %s" % ("ok" if ok else "not ok", i, text))
            for line in tail.splitlines():
                print("#   " + line)
        for line in table:
            print("# " + line)
    else:
        for ok, text, tail in cases:
            if tail:
                print("%s\n%s\n" % (text, tail), file=sys.stderr)
        print("\n".join(table))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(table) + "\n")
    return 0 if all(ok is not False for ok, _, _ in cases) else 1


if __name__ == "__main__":
    sys.exit(main())
