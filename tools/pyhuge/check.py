"""`pyhuge check [PYTHON]`: is this machine, and this Python, ready for
huge-page arenas? Each problem comes with its fix and a verdict."""
import glob
import json
import os
import re
import shutil
import subprocess

from pyhuge.common import (EXIT_DEGRADED, EXIT_OK, EXIT_REFUSED, HUGE, find_lib, human,
                           pool_sizes, read)
from pyhuge.elf import elf_info, libpython_of


PROBE = ("import sys, sysconfig, json; v = sys.version_info; print(json.dumps({"
         "'version': '%d.%d.%d' % v[:3], 'major': v[0], 'minor': v[1], 'executable': sys.executable,"
         "'impl': sys.implementation.name,"
         "'gil_disabled': bool(sysconfig.get_config_var('Py_GIL_DISABLED')),"
         "'pymalloc': bool(sysconfig.get_config_var('WITH_PYMALLOC'))}))")


def probe_python(exe, d):
    """Runs PROBE with exe and fills d from its answer; returns None, or a
    sentence saying why exe is no Python we can judge."""
    try:
        out = subprocess.run([exe, "-S", "-c", PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=30, env=dict(os.environ, LD_PRELOAD=""))
    except subprocess.TimeoutExpired:
        return "%s did not answer within 30 s when run as `%s -S -c ...`" % (exe, exe)
    except OSError as e:
        return "cannot run %s: %s" % (exe, e.strerror)
    try:
        answer = json.loads(out.stdout.strip().splitlines()[-1])
        if not isinstance(answer, dict) or "version" not in answer:
            raise ValueError
    except (ValueError, IndexError):
        said = (out.stderr.strip().splitlines() or [""])[-1][:120]
        return ("%s is not a Python interpreter: run as `%s -S -c CODE` it exited with status %d "
                "and printed %s" % (exe, exe, out.returncode,
                                    "nothing" if not out.stdout.strip() and not said
                                    else "no answer a Python would give%s" %
                                    (" (stderr: %s)" % said if said else "")))
    d.update(answer)
    return None


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
    problem = probe_python(exe, d)
    if problem:
        d["problems"].append(("impossible", problem, None))
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
        problems.append(("impossible", ("%s: no such file" % py) if os.sep in py else
                         "no Python called %s on PATH" % py, None))
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
    return shutil.which(name)

