#!/usr/bin/env python3
"""pyhuge: run stock CPython with its pymalloc arenas on 2 MiB huge pages.

Commands:
  pyhuge check [PYTHON]        is this machine and this Python ready? what to fix
  pyhuge reserve SIZE          size the huge page pool for a heap (512M, 4G, or pages)
  pyhuge run [--stats] -- CMD  run CMD with libpyhuge.so preloaded
  pyhuge ab [-n RUNS] -- CMD   A/B test CMD with and without the shim
  pyhuge stats PID             what a process under the shim holds right now
  pyhuge top                   every process under the shim, refreshed

Exit codes: 0 success (check: ready); 1 check: degraded, or a run failed;
2 check: impossible, or an operation was refused (permission, no pool);
64 bad arguments. `pyhuge run` exits with the command's own status.
"""
import argparse
import glob
import json
import math
import os
import random
import re
import shlex
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

# Both written in by meson when it configures this file into the build
# directory (and so into the install); left as they are in a checkout.
CONFIGURED_VERSION = "@VERSION@"
INSTALLED_LIBDIR = "@PYHUGE_LIBDIR@"
HERE = os.path.dirname(os.path.realpath(__file__))
IN_CHECKOUT = INSTALLED_LIBDIR.startswith("@")
HUGE = 2 * 1024 * 1024
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"

EXIT_OK, EXIT_DEGRADED, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2, 64


class UsageError(Exception):
    pass


def die(msg, code=EXIT_REFUSED):
    print("pyhuge: error: %s" % msg, file=sys.stderr)
    sys.exit(code)


# ---- small readers of the kernel's accounts -------------------------------

def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def kv_kb(text, keys=None):
    """'Key:   123 kB' lines as {key: int}."""
    out = {}
    for line in (text or "").splitlines():
        k, sep, v = line.partition(":")
        if sep and (keys is None or k in keys):
            try:
                out[k] = int(v.split()[0])
            except (ValueError, IndexError):
                pass
    return out


def meminfo():
    return kv_kb(read("/proc/meminfo", ""))


def pool_sizes():
    """Per huge page size: total, free, reserved, surplus pages."""
    sizes = []
    for d in sorted(glob.glob("/sys/kernel/mm/hugepages/hugepages-*kB")):
        kb = int(re.search(r"(\d+)kB$", d).group(1))
        get = lambda n: int((read(os.path.join(d, n), "0") or "0").strip() or 0)
        sizes.append({"kb": kb, "total": get("nr_hugepages"), "free": get("free_hugepages"),
                      "reserved": get("resv_hugepages"), "surplus": get("surplus_hugepages")})
    return sizes


def version():
    """meson.build's project version: written in at configure time, read
    from the checkout's meson.build when run from a source tree."""
    if CONFIGURED_VERSION and not CONFIGURED_VERSION.startswith("@"):
        return CONFIGURED_VERSION
    text = read(os.path.join(os.path.dirname(HERE), "meson.build"), "") or ""
    m = re.search(r"\bproject\([^)]*?\bversion\s*:\s*'([^']+)'", text)
    return m.group(1) if m else "unknown"


def lib_candidates(explicit=None):
    """Where libpyhuge.so may be, in the order looked: [(where, path)].
    --lib overrides everything; then beside this command (the configured
    command sits next to the library in a build directory), the install
    libdir, $PYHUGE_LIB, and in a checkout its build* directories."""
    if explicit:
        return [("--lib", explicit)]
    found = [("beside the command", os.path.join(HERE, "libpyhuge.so"))]
    if not IN_CHECKOUT:
        found += [("install libdir", os.path.join(INSTALLED_LIBDIR, "libpyhuge.so.0")),
                  ("install libdir", os.path.join(INSTALLED_LIBDIR, "libpyhuge.so"))]
    found.append(("PYHUGE_LIB", os.environ.get("PYHUGE_LIB") or None))
    if IN_CHECKOUT:
        pattern = os.path.join(os.path.dirname(HERE), "build*", "libpyhuge.so")
        found += [("checkout build dir", p) for p in sorted(glob.glob(pattern))] or \
            [("checkout build dir", pattern)]
    return found


def find_lib(explicit=None):
    """(absolute path or None, [(where, path, what was there)]) for every
    place tried, up to the one that has it."""
    tried = []
    for where, path in lib_candidates(explicit):
        if not path:
            tried.append((where, "", "not set"))
            continue
        if os.path.isfile(path):
            tried.append((where, path, "found"))
            return os.path.abspath(path), tried
        tried.append((where, path, "no such file"))
    return None, tried


def need_lib(explicit):
    lib, tried = find_lib(explicit)
    if not lib:
        if explicit:
            die("--lib %s: no such file" % explicit, EXIT_USAGE)
        die("libpyhuge.so not found; looked in %s. Build it (meson setup build && meson compile "
            "-C build), install it (meson install -C build), or name it with --lib or PYHUGE_LIB"
            % "; ".join("%s %s" % (w, p or "(not set)") for w, p, _ in tried))
    return lib


def preload_env(lib, env=None):
    """The environment with our library first in LD_PRELOAD, keeping what was there."""
    env = dict(os.environ if env is None else env)
    old = [p for p in re.split(r"[: ]", env.get("LD_PRELOAD", "")) if p and p != lib]
    env["LD_PRELOAD"] = ":".join([lib] + old)
    return env


# ---- ELF: what a binary is, without binutils ------------------------------

def elf_info(path):
    """Interpreter, whether dynamic, and the undefined dynamic symbols."""
    info = {"elf": False, "interp": None, "dynamic": False, "undefined": set()}
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return info
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 64-bit only
        return info
    info["elf"] = True
    end = "<" if data[5] == 1 else ">"
    (e_phoff, e_shoff) = struct.unpack_from(end + "QQ", data, 0x20)
    (e_phentsize, e_phnum, e_shentsize, e_shnum) = struct.unpack_from(end + "HHHH", data, 0x36)
    for i in range(e_phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(end + "IIQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 3:  # PT_INTERP
            info["interp"] = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode(errors="replace")
        if p_type == 2:  # PT_DYNAMIC
            info["dynamic"] = True
    sections = []
    for i in range(e_shnum):
        sh = struct.unpack_from(end + "IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
        sections.append(sh)
    for sh in sections:
        if sh[1] != 11:  # SHT_DYNSYM
            continue
        strtab = sections[sh[6]]
        s_off, sym_off, sym_size, entsize = strtab[4], sh[4], sh[5], sh[9] or 24
        for j in range(sym_size // entsize):
            st_name, st_info, _, st_shndx = struct.unpack_from(end + "IBBH", data, sym_off + j * entsize)
            if st_shndx == 0 and st_name:
                n = data[s_off + st_name:data.index(b"\0", s_off + st_name)].decode(errors="replace")
                info["undefined"].add(n.split("@")[0])
    return info


def libpython_of(exe):
    """The libpython a Python loads, or None when it is linked into the executable."""
    try:
        out = subprocess.run(["ldd", exe], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        m = re.search(r"(libpython[^ ]*) => (\S+)", line)
        if m:
            return m.group(2)
    return None


PROBE = ("import sys, sysconfig, json; v = sys.version_info; print(json.dumps({"
         "'version': '%d.%d.%d' % v[:3], 'major': v[0], 'minor': v[1], 'executable': sys.executable,"
         "'impl': sys.implementation.name,"
         "'gil_disabled': bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
         "'pymalloc': bool(sysconfig.get_config_var('WITH_PYMALLOC'))}))")


def describe_python(exe):
    """Everything check needs to know about one interpreter."""
    d = {"path": exe, "problems": [], "fatal": False}
    real = os.path.realpath(exe)
    if not os.path.exists(real):
        d["problems"].append(("impossible", "%s does not exist" % exe, None))
        d["fatal"] = True
        return d
    elf = elf_info(real)
    if not elf["elf"]:
        # A wrapper (pyenv's shims are bash scripts): LD_PRELOAD passes
        # through it to the interpreter it runs, so judge that one.
        try:
            out = subprocess.run([exe, "-S", "-c", "import sys; print(sys.executable)"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 universal_newlines=True, timeout=30)
            target = out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            target = ""
        if target and os.path.realpath(target) != real and elf_info(os.path.realpath(target))["elf"]:
            d = describe_python(target)
            d["wrapper"] = exe
            return d
    st = os.stat(real)
    d["setuid"] = bool(st.st_mode & 0o6000)
    d["static"] = elf["elf"] and not elf["interp"]
    d["musl"] = bool(elf["interp"] and "musl" in elf["interp"])
    lib = libpython_of(real) if elf["elf"] and not d["static"] else None
    d["libpython"] = lib or "in the executable"
    allocator_obj = lib or real
    und = elf_info(allocator_obj)["undefined"] if elf["elf"] else set()
    d["imports_mmap64"] = "mmap64" in und
    d["imports_mmap"] = "mmap" in und
    if not elf["elf"]:
        d["problems"].append(("impossible", "%s is not a 64-bit ELF executable (a script or wrapper? "
                              "name the real interpreter, e.g. $(pyenv which python))" % exe, None))
        d["fatal"] = True
        return d
    if d["static"]:
        d["problems"].append(("impossible", "a static executable: the dynamic linker, and so "
                              "LD_PRELOAD, is never used", None))
    if d["musl"]:
        d["problems"].append(("impossible", "built against musl (%s); libpyhuge.so is built for glibc"
                              % elf["interp"], None))
    if d["setuid"]:
        d["problems"].append(("impossible", "setuid/setgid: the dynamic linker ignores LD_PRELOAD "
                              "for it", "run a copy without the setuid bit"))
    try:
        out = subprocess.run([exe, "-S", "-c", PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=30, env=dict(os.environ, LD_PRELOAD=""))
        d.update(json.loads(out.stdout))
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        d["problems"].append(("impossible", "could not run it: %s" % e, None))
        d["fatal"] = True
        return d
    if d.get("impl") != "cpython":
        d["problems"].append(("impossible", "not CPython (%s)" % d.get("impl"), None))
    elif (d["major"], d["minor"]) < (3, 4):
        d["problems"].append(("impossible", "CPython before 3.4 has no arena allocator API", None))
    if d.get("gil_disabled"):
        d["problems"].append(("impossible", "free-threaded build: it uses mimalloc, not pymalloc "
                              "arenas, so there is nothing to move", None))
    elif not d.get("pymalloc", True):
        d["problems"].append(("impossible", "built --without-pymalloc: no arenas", None))
    if not (d["imports_mmap64"] or d["imports_mmap"]):
        d["problems"].append(("degraded", "%s imports neither mmap64 nor mmap" % allocator_obj, None))
    if os.environ.get("PYTHONMALLOC", "").startswith("malloc"):
        d["problems"].append(("degraded", "PYTHONMALLOC=%s turns pymalloc off in this environment"
                              % os.environ["PYTHONMALLOC"], "unset PYTHONMALLOC"))
    if "major" in d:
        d["arena"] = "1 MiB" if (d["major"], d["minor"]) >= (3, 10) else "256 KiB"
    d["fatal"] = any(k == "impossible" for k, _, _ in d["problems"])
    return d


# ---- cgroups ---------------------------------------------------------------

def hugetlb_cgroup_limits(pid="self"):
    """The hugetlb limits that apply to a process: list of (file, bytes)."""
    limits = []
    mounts = read("/proc/self/mountinfo", "")
    for line in read("/proc/%s/cgroup" % pid, "").splitlines():
        hid, controllers, path = line.split(":", 2)
        v2 = hid == "0"
        if not v2 and "hugetlb" not in controllers.split(","):
            continue
        for m in mounts.splitlines():
            parts = m.split()
            fstype = parts[parts.index("-") + 1]
            opts = parts[-1]
            if (v2 and fstype == "cgroup2") or (not v2 and fstype == "cgroup" and "hugetlb" in opts):
                base = parts[4]
                # Every level from the process's group up to the root applies.
                p = path
                while True:
                    d = os.path.join(base, p.lstrip("/"))
                    for name in (["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max"] if v2 else
                                 ["hugetlb.2MB.limit_in_bytes", "hugetlb.2MB.rsvd.limit_in_bytes"]):
                        v = read(os.path.join(d, name))
                        if v is not None and v.strip() not in ("max", "") and int(v) < (1 << 62):
                            limits.append((os.path.join(d, name), int(v)))
                    if p in ("/", ""):
                        break
                    p = os.path.dirname(p)
    return limits


def pool_users():
    """Processes holding hugetlb memory: [(pid, name, kB)]."""
    users = []
    for status in glob.glob("/proc/[0-9]*/status"):
        text = read(status, "")
        m = re.search(r"^HugetlbPages:\s+(\d+)", text, re.M)
        if m and int(m.group(1)) > 0:
            name = re.search(r"^Name:\s+(.*)$", text, re.M)
            users.append((int(status.split("/")[2]), name.group(1) if name else "?", int(m.group(1))))
    return sorted(users, key=lambda u: -u[2])


# ---- check -----------------------------------------------------------------

def cmd_check(a):
    problems = []  # (severity, what, fix)
    uname = os.uname()
    print("kernel          %s %s" % (uname.release, uname.machine))
    kver = tuple(int(x) for x in re.findall(r"\d+", uname.release)[:2])
    sizes = pool_sizes()
    if not sizes:
        print("huge pages      none: this kernel has no hugetlb support")
    for s in sizes:
        print("huge pages      %7s: pool %d, free %d, reserved %d, surplus %d"
              % (human(s["kb"] * 1024), s["total"], s["free"], s["reserved"], s["surplus"]))
    two = next((s for s in sizes if s["kb"] == 2048), None)
    thp = (read("/sys/kernel/mm/transparent_hugepage/enabled", "") or "").strip()
    defrag = (read("/sys/kernel/mm/transparent_hugepage/defrag", "") or "").strip()
    thp_on = bool(thp) and "[never]" not in thp
    print("THP             enabled: %s; defrag: %s" % (thp or "unavailable", defrag or "-"))
    elsewhere = ("transparent huge pages (the THP tier)" if thp_on else "ordinary pages")
    if sizes and not two:
        problems.append(("degraded", "no 2 MiB hugetlb page size: arenas go to %s" % elsewhere, None))
    elif two and two["total"] == 0:
        problems.append(("degraded", "the 2 MiB pool is empty: arenas go to %s" % elsewhere,
                         "sudo pyhuge reserve 512M   (or the heap size of your service)"))
    elif two and two["free"] - two["reserved"] < 32:
        problems.append(("degraded", "only %d free 2 MiB pages in the pool (%d held by processes); "
                         "then %s" % (two["free"] - two["reserved"],
                                      two["total"] - two["free"] + two["reserved"], elsewhere),
                         "sudo pyhuge reserve 512M"))
    if not thp_on:
        print("                (no THP tier: with no pool, arenas stay on ordinary pages)")
        if not two:
            problems.append(("impossible", "neither 2 MiB hugetlb pages nor transparent huge pages "
                             "on this kernel", None))
    if kver < (5, 14):
        problems.append(("degraded", "kernel before 5.14: a hugetlb cgroup fault limit cannot be "
                         "detected at allocation time", "a 5.14+ kernel"))
    limits = hugetlb_cgroup_limits()
    if limits:
        for path, v in limits:
            print("cgroup limit    %s = %s" % (path, human(v)))
            if v < 64 * HUGE:
                problems.append(("degraded", "hugetlb cgroup limit of %s (%s)" % (human(v), path),
                                 "raise it, e.g. the pod's hugepages-2Mi resource"))
    else:
        print("cgroup limit    none on hugetlb for this process")
    users = pool_users()
    if users:
        held = sum(u[2] for u in users)
        print("pool users      %s held by %d processes: %s" % (
            human(held * 1024), len(users),
            ", ".join("%s[%d] %s" % (n, p, human(k * 1024)) for p, n, k in users[:5])))
    lib, tried = find_lib(a.lib)
    print("libpyhuge       %s; looked in, in order:" % (lib or "NOT FOUND"))
    for where, path, what in tried:
        print("                  %-19s %s" % (where, "%s: %s" % (path, what) if path else "(%s)" % what))
    if not lib:
        problems.append(("impossible", "libpyhuge.so not found",
                         "meson setup build && meson compile -C build  (or meson install -C build), "
                         "or name it: --lib PATH or PYHUGE_LIB=PATH"))
    py = a.python or "python3"
    exe = shutil_which(py)
    if not exe:
        problems.append(("impossible", "no Python called %s on PATH" % py, None))
    else:
        d = describe_python(exe)
        if "version" in d:
            print("python          %s: CPython %s, %s arenas, libpython %s, imports %s%s%s"
                  % (d["path"] + (" (run by %s)" % d["wrapper"] if d.get("wrapper") else ""), d["version"], d.get("arena", "?"), d["libpython"],
                     "mmap64" if d["imports_mmap64"] else ("mmap" if d["imports_mmap"] else "no mmap"),
                     ", free-threaded" if d.get("gil_disabled") else "",
                     ", setuid" if d.get("setuid") else ""))
        else:
            print("python          %s" % exe)
        problems += d["problems"]
    verdict = "ready"
    if any(k == "degraded" for k, _, _ in problems):
        verdict = "degraded"
    if any(k == "impossible" for k, _, _ in problems):
        verdict = "impossible"
    if problems:
        print("\nproblems:")
        for kind, what, fix in problems:
            print("  - [%s] %s" % (kind, what))
            if fix:
                print("      fix: %s" % fix)
    print("\nverdict: %s" % {"ready": "READY: arenas will go on 2 MiB huge pages",
                              "degraded": "DEGRADED: runs, with fewer or no huge pages (see above)",
                              "impossible": "IMPOSSIBLE: the shim cannot help here (see above)"}[verdict])
    return {"ready": EXIT_OK, "degraded": EXIT_DEGRADED, "impossible": EXIT_REFUSED}[verdict]


def shutil_which(name):
    if os.sep in name:
        return os.path.abspath(name) if os.path.exists(name) else None
    import shutil
    return shutil.which(name)


def human(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return ("%d %s" % (v, unit)) if v == int(v) else ("%.1f %s" % (v, unit))
    return "%d B" % n


# ---- reserve ---------------------------------------------------------------

def parse_size(text):
    """Pages of 2 MiB for '512M', '4G', '1.5GiB', '300' (pages)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*", text or "")
    if not m:
        raise UsageError("SIZE must be a page count or a size like 512M or 4G, not %r" % text)
    value, unit = float(m.group(1)), m.group(2).upper()
    if not unit and not m.group(3):
        if value != int(value):
            raise UsageError("a page count must be whole: %r" % text)
        pages = int(value)
    else:
        mult = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
        pages = int(math.ceil(value * mult / HUGE))
    if pages <= 0:
        raise UsageError("SIZE must be more than zero")
    if pages > 1 << 24:
        raise UsageError("%r is more huge pages than any machine has" % text)
    return pages


def pool_counts():
    """(persistent pool size, pages a new mapping can have, pages held by
    processes). HugePages_Free counts reserved pages too (promised to a
    mapping, not faulted in yet), and Total counts surplus pages."""
    m = meminfo()
    total, free, rsvd = m.get("HugePages_Total", 0), m.get("HugePages_Free", 0), m.get("HugePages_Rsvd", 0)
    try:
        nr = int((read(NR_HUGEPAGES, "0") or "0").strip())
    except ValueError:
        nr = total
    return nr, free - rsvd, total - free + rsvd


def cmd_reserve(a):
    pages = parse_size(a.size)
    nr, avail, held = pool_counts()
    # Never below what processes hold: the kernel would turn their pages
    # into surplus pages, gone from the pool once they let go.
    target = max(nr, held + pages)
    print("asked: %d free pages of 2 MiB (%s); pool now %d pages, %d free, %d held by processes"
          % (pages, human(pages * HUGE), nr, avail, held))
    if avail >= pages:
        print("already enough: nothing to change")
    elif os.geteuid() != 0:
        print("pyhuge: sizing the pool needs root. Run:\n  sudo %s reserve %s\n"
              "Without root you can still use: pyhuge check, run, ab, stats (your own processes)."
              % (sys.argv[0], a.size), file=sys.stderr)
        return EXIT_REFUSED
    else:
        try:
            with open(NR_HUGEPAGES, "w") as f:
                f.write("%d\n" % target)
        except OSError as e:
            die("cannot write %s: %s" % (NR_HUGEPAGES, e.strerror))
        nr, avail, held = pool_counts()
        print("granted: pool %d pages (%s), %d free" % (nr, human(nr * HUGE), avail))
        if avail < pages:
            print("the kernel granted fewer pages than asked (memory is fragmented or short): "
                  "%d of %d free. Try again after `echo 1 > /proc/sys/vm/compact_memory`, or reserve "
                  "at boot (hugepages=%d on the kernel command line)." % (avail, pages, target))
    print("\nto keep it across reboots:\n"
          "  echo 'vm.nr_hugepages = %d' | sudo tee /etc/sysctl.d/90-pyhuge.conf && sudo sysctl --system\n"
          "\nto give it to a container (Kubernetes; the node needs the pool):\n"
          "  resources:\n    limits:\n      hugepages-2Mi: %s\n      memory: <as before>\n"
          "  env:\n    - {name: LD_PRELOAD, value: /usr/lib/x86_64-linux-gnu/libpyhuge.so.0}"
          % (max(target, nr), "%dMi" % (pages * 2)))
    return EXIT_OK if pool_counts()[1] >= pages else EXIT_DEGRADED


# ---- run -------------------------------------------------------------------

def command_after_dashes(cmd):
    cmd = cmd[1:] if cmd[:1] == ["--"] else cmd
    if not cmd:
        raise UsageError("give the command to run after --")
    return cmd


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


# ---- ab ----------------------------------------------------------------------

METRICS = [
    ("wall_s", "wall time (s)", "%.3f"),
    ("user_s", "user time (s)", "%.3f"),
    ("sys_s", "system time (s)", "%.3f"),
    ("minor_faults", "minor page faults", "%.0f"),
    ("peak_mem_mib", "peak RSS + hugetlb (MiB)", "%.1f"),
    ("peak_hugetlb_mib", "peak hugetlb (MiB)", "%.1f"),
    ("peak_thp_mib", "peak AnonHugePages (MiB)", "%.1f"),
    ("pool_pages", "huge pages taken from pool", "%.0f"),
]


def measure(cmd, env, interval=0.01):
    """One run: wall/user/sys time and minor faults (wait4's rusage; the
    wait blocks, so wall time is exact), peak memory counted as RSS plus
    hugetlb (sampled every 10 ms from /proc/PID/status: hugetlb is not in
    RSS), peak transparent huge page memory (AnonHugePages in
    /proc/PID/smaps_rollup, every 50 ms: it walks page tables), and the pool
    pages it took (/proc/meminfo)."""
    import threading

    def pool_in_use():
        m = meminfo()
        return m.get("HugePages_Total", 0) - m.get("HugePages_Free", 0)
    pool0 = pool_in_use()
    peak = {"mem": 0, "huge": 0, "thp": 0, "pool": 0}
    done = threading.Event()
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    status, rollup = "/proc/%d/status" % proc.pid, "/proc/%d/smaps_rollup" % proc.pid

    def sample():
        n = 0
        while not done.is_set():
            s = kv_kb(read(status, ""), ("VmRSS", "HugetlbPages"))
            if s:
                peak["mem"] = max(peak["mem"], s.get("VmRSS", 0) + s.get("HugetlbPages", 0))
                peak["huge"] = max(peak["huge"], s.get("HugetlbPages", 0))
            if n % 5 == 0:
                r = kv_kb(read(rollup, ""), ("AnonHugePages",))
                peak["thp"] = max(peak["thp"], r.get("AnonHugePages", 0))
            peak["pool"] = max(peak["pool"], pool_in_use() - pool0)
            n += 1
            done.wait(interval)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # The sampler reads /proc/PID/* of a child that is not yet reaped, so the
    # PID cannot be reused under it; waitid(WNOWAIT) waits without reaping.
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    wall = time.monotonic() - t0
    done.set()
    sampler.join()
    pid, st, ru = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped here: keep Popen from waiting again
    code = (st >> 8) & 0xff if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)
    return {"exit": code, "wall_s": wall, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "minor_faults": ru.ru_minflt, "peak_mem_mib": max(peak["mem"], ru.ru_maxrss) / 1024,
            "peak_hugetlb_mib": peak["huge"] / 1024, "peak_thp_mib": peak["thp"] / 1024,
            "pool_pages": peak["pool"]}


def bootstrap_ratio(a, b, n=4000, seed=1):
    """95% interval of median(b) / median(a), resampling both."""
    rng = random.Random(seed)
    ratios = []
    for _ in range(n):
        ma = statistics.median(rng.choice(a) for _ in a)
        mb = statistics.median(rng.choice(b) for _ in b)
        if ma > 0:
            ratios.append(mb / ma)
    ratios.sort()
    if not ratios:
        return float("nan"), float("nan")
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def cmd_ab(a):
    cmd = command_after_dashes(a.cmd)
    if a.runs < 3:
        raise UsageError("-n must be at least 3 to say anything")
    lib = need_lib(a.lib)
    base = dict(os.environ)
    base.pop("LD_PRELOAD", None)
    configs = {"stock": base, "pyhuge": preload_env(lib, base)}
    runs = {"stock": [], "pyhuge": []}
    order = ["stock", "pyhuge"]
    total = a.runs * 2 + 2 * a.warmup
    done = 0
    for i in range(a.warmup + a.runs):
        for name in (order if i % 2 == 0 else order[::-1]):  # ABBA: neither side always goes first
            done += 1
            sys.stderr.write("\rpyhuge ab: run %d/%d (%s)%s" % (done, total, name, " " * 10))
            sys.stderr.flush()
            r = measure(cmd, configs[name])
            if r["exit"] != 0:
                sys.stderr.write("\n")
                die("the %s run of %s exited with status %d" % (name, " ".join(cmd), r["exit"]), 1)
            if i >= a.warmup:
                runs[name].append(r)
    sys.stderr.write("\r" + " " * 60 + "\r")
    summary = {}
    for key, label, fmt in METRICS:
        s = [r[key] for r in runs["stock"]]
        p = [r[key] for r in runs["pyhuge"]]
        ms, mp = statistics.median(s), statistics.median(p)
        lo, hi = bootstrap_ratio(s, p)
        summary[key] = {"stock_median": ms, "pyhuge_median": mp, "stock_min": min(s), "stock_max": max(s),
                        "pyhuge_min": min(p), "pyhuge_max": max(p),
                        "ratio": (mp / ms) if ms else None, "ratio_ci95": [lo, hi]}
    w = summary["wall_s"]
    lo, hi = w["ratio_ci95"]
    verdict = "faster" if hi < 1 else ("slower" if lo > 1 else "no difference")
    print("command: %s" % " ".join(shlex.quote(c) for c in cmd))
    print("%d runs each, interleaved; medians, [min-max]; ratio pyhuge/stock with a 95%% bootstrap interval\n" % a.runs)
    print("| %-26s | %-22s | %-22s | %-20s |" % ("", "stock", "pyhuge", "ratio"))
    print("|%s|%s|%s|%s|" % ("-" * 28, "-" * 24, "-" * 24, "-" * 22))
    for key, label, fmt in METRICS:
        m = summary[key]
        cell = lambda med, mn, mx: ("%s [%s-%s]" % (fmt % med, fmt % mn, fmt % mx))
        ratio = "-" if m["ratio"] is None else "%.2f (%.2f-%.2f)" % (m["ratio"], m["ratio_ci95"][0], m["ratio_ci95"][1])
        print("| %-26s | %-22s | %-22s | %-20s |" % (label, cell(m["stock_median"], m["stock_min"], m["stock_max"]),
                                                    cell(m["pyhuge_median"], m["pyhuge_min"], m["pyhuge_max"]), ratio))
    print("\nverdict: %s (wall time %.2fx, 95%% interval %.2f-%.2f)" % (verdict.upper(), w["ratio"], lo, hi))
    result = {"command": cmd, "runs": a.runs, "verdict": verdict, "summary": summary, "raw": runs}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
        print("json: %s" % a.json)
    if a.png:
        chart(result, a.png)
    return EXIT_OK


def chart(result, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("pyhuge: no chart: matplotlib is not installed (apt-get install python3-matplotlib)",
              file=sys.stderr)
        return
    keys = ["wall_s", "user_s", "sys_s", "minor_faults", "peak_mem_mib"]
    fig, axes = plt.subplots(1, len(keys), figsize=(3 * len(keys), 3.6))
    for ax, key in zip(axes, keys):
        label = dict((k, l) for k, l, _ in METRICS)[key]
        data = [[r[key] for r in result["raw"][n]] for n in ("stock", "pyhuge")]
        ax.boxplot(data, labels=["stock", "pyhuge"], widths=0.6)
        for i, d in enumerate(data, 1):
            ax.scatter([i] * len(d), d, s=10, alpha=0.6)
        ax.set_title(label, fontsize=9)
        ax.set_ylim(bottom=0)
    w = result["summary"]["wall_s"]
    fig.suptitle("%s: %s, wall %.2fx (%.2f-%.2f)" % (" ".join(result["command"])[:60], result["verdict"],
                                                    w["ratio"], w["ratio_ci95"][0], w["ratio_ci95"][1]),
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print("chart: %s" % path)


# ---- stats / top -----------------------------------------------------------

STATS_FIELDS = ["version", "enabled", "arena_size", "arenas_huge", "arenas_fallback", "arenas_live",
                "pages_now", "pages_peak", "pages_cached", "pages_demoted",
                "fallback_pool", "fallback_fault", "fallback_cap", "fallback_space", "fallback_backoff",
                "fallback_thp", "arenas_thp", "pages_thp", "pages_thp_peak", "pages_forked",
                "arenas_unseen"]
MAGIC = b"pyhuge-stats-v2"


def shim_stats(pid):
    """The shim's counters from its stats page, or (None, why)."""
    maps = read("/proc/%d/maps" % pid)
    if maps is None:
        return None, "no such process, or no permission to read its maps"
    if "libpyhuge" not in maps:
        return None, "not running under the shim"
    m = re.search(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s+/memfd:pyhuge-stats", maps, re.M)
    if not m:
        return None, "under the shim, but it has served no arena yet"
    lo, hi = int(m.group(1), 16), int(m.group(2), 16)
    data = None
    try:
        with open("/proc/%d/map_files/%x-%x" % (pid, lo, hi), "rb") as f:
            data = f.read(4096)
    except OSError:
        try:
            with open("/proc/%d/mem" % pid, "rb") as f:
                f.seek(lo)
                data = f.read(4096)
        except OSError as e:
            return None, "cannot read its memory (%s): run as root or as its user" % e.strerror
    if not data.startswith(MAGIC):
        return None, "its stats page is not readable"
    vals = struct.unpack_from("<16s Q 64s %dQ" % len(STATS_FIELDS), data)
    d = dict(zip(["magic", "pid", "arm"] + STATS_FIELDS, vals))
    if d["version"] < 2:  # a version 1 library has no THP fields
        for f in STATS_FIELDS[STATS_FIELDS.index("fallback_thp"):]:
            d[f] = 0
    return d, None


def kernel_view(pid):
    status = kv_kb(read("/proc/%d/status" % pid, ""), ("VmRSS", "HugetlbPages"))
    rollup = kv_kb(read("/proc/%d/smaps_rollup" % pid, ""), ("Private_Hugetlb", "AnonHugePages"))
    maps = read("/proc/%d/maps" % pid, "") or ""
    name = (read("/proc/%d/comm" % pid, "?") or "?").strip()
    return {"name": name, "rss_kb": status.get("VmRSS", 0), "hugetlb_kb": status.get("HugetlbPages", 0),
            "hugetlb_mappings": maps.count("/anon_hugepage"), "thp_kb": rollup.get("AnonHugePages", 0)}


def cmd_stats(a):
    if not os.path.exists("/proc/%d" % a.pid):
        die("no process %d" % a.pid, 1)
    k = kernel_view(a.pid)
    print("process         %d (%s)" % (a.pid, k["name"]))
    print("kernel          RSS %s + hugetlb %s in %d huge page mappings"
          % (human(k["rss_kb"] * 1024), human(k["hugetlb_kb"] * 1024), k["hugetlb_mappings"]))
    s, why = shim_stats(a.pid)
    if s is None:
        print("shim            %s" % why)
        return EXIT_DEGRADED
    print("shim            arenas: %d on huge pages now, %d served huge, %d on ordinary pages (%s each)"
          % (s["arenas_live"], s["arenas_huge"], s["arenas_fallback"], human(s["arena_size"])))
    print("                huge pages: %d now, %d at peak, %d cached, %d moved to ordinary pages"
          % (s["pages_now"], s["pages_peak"], s["pages_cached"], s["pages_demoted"]))
    print("                THP tier: %d arenas served, %d pages now, %d at peak"
          % (s["arenas_thp"], s["pages_thp"], s["pages_thp_peak"]))
    print("                fallbacks: pool %d, fault %d, cap %d, space %d, backoff %d, thp %d"
          % (s["fallback_pool"], s["fallback_fault"], s["fallback_cap"], s["fallback_space"],
             s["fallback_backoff"], s["fallback_thp"]))
    if a.json:
        print(json.dumps({"pid": a.pid, "kernel": k, "shim": {f: s[f] for f in STATS_FIELDS}}))
    return EXIT_OK


def shimmed_pids():
    pids = []
    for maps in glob.glob("/proc/[0-9]*/maps"):
        text = read(maps, "")
        if text and "libpyhuge" in text:
            pids.append(int(maps.split("/")[2]))
    return sorted(pids)


def cmd_top(a):
    while True:
        rows = []
        for pid in shimmed_pids():
            k = kernel_view(pid)
            s, why = shim_stats(pid)
            rows.append((pid, k, s, why))
        if not a.once:
            sys.stdout.write("\x1b[H\x1b[2J")
        m = meminfo()
        print("pool: %d of %d huge pages free    %s" % (m.get("HugePages_Free", 0), m.get("HugePages_Total", 0),
                                                       time.strftime("%H:%M:%S")))
        print("%7s %-16s %10s %10s %8s %8s %8s %9s" % ("PID", "COMMAND", "RSS", "HUGETLB", "ARENAS", "FALLBK",
                                                      "PAGES", "PEAK"))
        for pid, k, s, why in rows:
            if s:
                print("%7d %-16s %10s %10s %8d %8d %8d %9d" % (pid, k["name"][:16], human(k["rss_kb"] * 1024),
                                                            human(k["hugetlb_kb"] * 1024), s["arenas_live"],
                                                            s["arenas_fallback"], s["pages_now"], s["pages_peak"]))
            else:
                print("%7d %-16s %10s %10s   (%s)" % (pid, k["name"][:16], human(k["rss_kb"] * 1024),
                                                     human(k["hugetlb_kb"] * 1024), why))
        if not rows:
            print("(no process is running under libpyhuge.so)")
        if a.once:
            return EXIT_OK
        try:
            time.sleep(a.interval)
        except KeyboardInterrupt:
            return EXIT_OK


# ---- arguments ---------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print("pyhuge: error: %s" % message, file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser():
    p = Parser(prog="pyhuge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version="pyhuge " + version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    c = sub.add_parser("check", help="readiness report with a verdict",
                       description="Is this machine, and this Python, ready for huge-page arenas? "
                       "Exit 0 ready, 1 degraded (runs, with fewer or no huge pages), 2 impossible.")
    c.add_argument("python", nargs="?", help="the interpreter to assess (default: python3 on PATH)")
    c.add_argument("--lib", help="libpyhuge.so to use")
    c.set_defaults(fn=cmd_check)
    r = sub.add_parser("reserve", help="size the huge page pool for a heap",
                       description="Make SIZE of 2 MiB huge pages free in the pool (needs root). SIZE: a "
                       "page count (300) or a size (512M, 4G, 1.5GiB). Exit 0 granted, 1 granted in part, "
                       "2 refused.")
    r.add_argument("size", metavar="SIZE")
    r.set_defaults(fn=cmd_reserve)
    u = sub.add_parser("run", help="run a command with the shim preloaded",
                       description="Run CMD with libpyhuge.so first in LD_PRELOAD (keeping what was "
                       "there). Exits with CMD's status.")
    u.add_argument("--stats", action="store_true", help="print the shim's summary of every process at the end")
    u.add_argument("--lib", help="libpyhuge.so to use")
    u.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    u.set_defaults(fn=cmd_run)
    b = sub.add_parser("ab", help="A/B test a command with and without the shim",
                       description="Alternate runs of CMD with and without the shim; print medians, "
                       "spread, ratios with a 95% bootstrap interval and a verdict. Exit 0, or 1 when a "
                       "run failed.")
    b.add_argument("-n", "--runs", type=int, default=5, help="runs per side (default 5)")
    b.add_argument("--warmup", type=int, default=1, help="unmeasured runs per side first (default 1)")
    b.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    b.add_argument("--png", metavar="FILE", help="write a chart (needs python3-matplotlib)")
    b.add_argument("--lib", help="libpyhuge.so to use")
    b.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    b.set_defaults(fn=cmd_ab)
    s = sub.add_parser("stats", help="what a process under the shim holds now",
                       description="Huge pages, arenas and fallbacks of a running process, from the "
                       "kernel and from the shim's stats page (root, or the process's own user). "
                       "Exit 0, or 1 when the process is not under the shim.")
    s.add_argument("pid", type=int)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_stats)
    t = sub.add_parser("top", help="every process under the shim, refreshed",
                       description="A table of every process with libpyhuge.so loaded.")
    t.add_argument("--once", action="store_true", help="print once and exit")
    t.add_argument("--interval", type=float, default=2.0)
    t.set_defaults(fn=cmd_top)
    return p


def main(argv=None):
    p = build_parser()
    a = p.parse_args(argv)
    if not getattr(a, "fn", None):
        p.print_help()
        return EXIT_USAGE
    try:
        return a.fn(a)
    except UsageError as e:
        print("pyhuge %s: error: %s" % (a.command, e), file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
