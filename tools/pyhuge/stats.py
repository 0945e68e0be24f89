"""`pyhuge stats PID`: what a running process holds, from the kernel's
accounts and from the shim's stats page, whose layout (struct
pyhuge_stats_page) and fields (struct pyhuge_stats) come from fields.py,
checked against include/pyhuge.h."""
import json
import os
import re
import struct

from pyhuge import fields
from pyhuge.common import (EXIT_DEGRADED, EXIT_OK, EXIT_REFUSED, Failure, UsageError, human,
                           kv_kb, read)

# The stats page before PYHUGE_ARM (pyhuge 0.1.0 of 2026-12-02 and earlier):
# magic, pid, stats; no arm label.
OLD_MAGIC_V1 = b"pyhuge-stats-v1"
PAGE_SIZE = 4096


class NoStats(Exception):
    """Why a process's counters cannot be shown: a sentence and an exit code."""

    def __init__(self, message, code=EXIT_DEGRADED):
        super().__init__(message)
        self.code = code


def comm(pid):
    return (read("/proc/%d/comm" % pid, "?") or "?").strip()


def read_maps(pid):
    """/proc/PID/maps, or NoStats saying exactly why not."""
    path = "/proc/%d/maps" % pid
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise NoStats("there is no process %d" % pid, EXIT_DEGRADED)
    except PermissionError:
        owner = kv_kb(read("/proc/%d/status" % pid, ""), ("Uid",)).get("Uid")
        if os.geteuid() == 0:
            raise NoStats("the kernel refuses even root the memory map of process %d (%s) (%s: "
                          "permission denied; a security module or a process shielded from "
                          "ptrace): whether it runs under the shim cannot be told from here"
                          % (pid, comm(pid), path), EXIT_REFUSED)
        raise NoStats("process %d (%s) belongs to uid %s, and reading its memory map needs root or "
                      "that user (you are uid %d)" % (pid, comm(pid), owner, os.geteuid()),
                      EXIT_REFUSED)
    except OSError as e:
        raise NoStats("cannot read %s: %s" % (path, e.strerror), EXIT_REFUSED)


def page_layout(magic):
    """(offset of struct pyhuge_stats, offset of the arm label or None) for a
    page magic, or NoStats for a page this pyhuge cannot read."""
    if magic == fields.PAGE_MAGIC:
        offset, arm = 0, None
        for name, ctype, count in fields.PAGE:
            if name == "stats":
                return offset, arm
            if name == "arm":
                arm = offset
            offset += count * (1 if ctype == "char" else 8)
        raise AssertionError("fields.PAGE has no stats member")
    if magic == OLD_MAGIC_V1:
        return 16 + 8, None
    if magic.startswith(b"pyhuge-stats-"):
        raise NoStats("its stats page is format %r, newer than the %r this pyhuge reads: use the "
                      "pyhuge command that came with its libpyhuge"
                      % (magic.decode(errors="replace"), fields.PAGE_MAGIC.decode()))
    raise NoStats("its stats mapping does not start with a pyhuge magic (%r)" % magic[:16])


def decode_page(data):
    """{'page': magic, 'arm', 'pid', 'fields': {name: value}, 'unknown': n}."""
    magic = data[:16].rstrip(b"\0")
    stats_at, arm_at = page_layout(magic)
    (pid,) = struct.unpack_from("<Q", data, 16)
    arm = None
    if arm_at is not None:
        arm = data[arm_at:arm_at + fields.ARM_MAX].split(b"\0", 1)[0].decode(errors="replace")
    (version,) = struct.unpack_from("<Q", data, stats_at)
    known = [name for name, added in fields.FIELDS if added <= version]
    if version < 2:
        # enum pyhuge_fallback gained PYHUGE_FALLBACK_THP in version 2: a
        # version 1 struct has five fallback counters (the header's enum
        # does not say when each member came).
        known.remove("fallback_thp")
    values = struct.unpack_from("<%dQ" % len(known), data, stats_at)
    out = {name: 0 for name, _ in fields.FIELDS}
    out.update(zip(known, values))
    return {"page": magic.decode(errors="replace"), "pid": pid, "arm": arm, "fields": out,
            "newer_fields": version > fields.STATS_VERSION}


def shim_stats(pid):
    """The decoded stats page of a process, or NoStats."""
    maps = read_maps(pid)
    if "libpyhuge" not in maps:
        raise NoStats("process %d (%s) has no libpyhuge mapped: it is not running under the shim"
                      % (pid, comm(pid)))
    m = re.search(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s+/memfd:pyhuge-stats", maps, re.M)
    if not m:
        raise NoStats("process %d (%s) has libpyhuge mapped but no stats page: it has not started "
                      "(a process that is not CPython, or PYHUGE=off)" % (pid, comm(pid)))
    lo, hi = int(m.group(1), 16), int(m.group(2), 16)
    try:
        with open("/proc/%d/map_files/%x-%x" % (pid, lo, hi), "rb") as f:
            data = f.read(PAGE_SIZE)
    except OSError:
        try:
            with open("/proc/%d/mem" % pid, "rb") as f:
                f.seek(lo)
                data = f.read(PAGE_SIZE)
        except OSError as e:
            raise NoStats("cannot read the stats page in process %d's memory (%s): run as root or "
                          "as its user" % (pid, e.strerror), EXIT_REFUSED)
    if len(data) < PAGE_SIZE:
        raise NoStats("process %d's stats page is short (%d bytes)" % (pid, len(data)))
    return decode_page(data)


def kernel_view(pid):
    status = kv_kb(read("/proc/%d/status" % pid, ""), ("VmRSS", "HugetlbPages"))
    rollup = kv_kb(read("/proc/%d/smaps_rollup" % pid, ""), ("Private_Hugetlb", "AnonHugePages"))
    maps = read("/proc/%d/maps" % pid, "") or ""
    return {"name": comm(pid), "rss_kb": status.get("VmRSS", 0),
            "hugetlb_kb": status.get("HugetlbPages", 0),
            "hugetlb_mappings": maps.count("/anon_hugepage"), "thp_kb": rollup.get("AnonHugePages", 0)}


def print_counters(p):
    s = p["fields"]
    print("shim            arm %s; %s; stats page %s, stats version %d"
          % ('"%s"' % p["arm"] if p["arm"] else "(none: PYHUGE_ARM unset)" if p["arm"] is not None
             else "(an older library: its page has no arm label)",
             "enabled" if s["enabled"] else "DISABLED (PYHUGE=off)", p["page"], s["version"]))
    print("                arenas: %d on huge pages now, %d served huge, %d on ordinary pages (%s each), "
          "%d passed through unrecognised"
          % (s["arenas_live"], s["arenas_huge"], s["arenas_fallback"], human(s["arena_size"]),
             s["arenas_unseen"]))
    print("                huge pages: %d now, %d at peak, %d cached, %d moved to ordinary pages, "
          "%d moved before a fork"
          % (s["pages_now"], s["pages_peak"], s["pages_cached"], s["pages_demoted"], s["pages_forked"]))
    print("                THP tier: %d arenas served, %d pages now, %d at peak"
          % (s["arenas_thp"], s["pages_thp"], s["pages_thp_peak"]))
    print("                fallbacks: %s" % ", ".join(
        "%s %d" % (name[len("fallback_"):], s[name]) for name, _ in fields.FIELDS
        if name.startswith("fallback_")))
    print("counters        (struct pyhuge_stats, include/pyhuge.h)")
    for name, _ in fields.FIELDS:
        print("  %-20s %d" % (name, s[name]))
    if p["newer_fields"]:
        print("                (its library is newer: stats version %d has fields this pyhuge does "
              "not know; the first %d are shown)" % (s["version"], len(fields.FIELDS)))


def cmd_stats(a):
    if a.pid <= 0:
        raise UsageError("PID must be a process id, 1 or more, not %d" % a.pid)
    if not os.path.exists("/proc/%d" % a.pid):
        raise Failure("there is no process %d" % a.pid, EXIT_DEGRADED)
    k = kernel_view(a.pid)
    print("process         %d (%s)" % (a.pid, k["name"]))
    print("kernel          RSS %s + hugetlb %s in %d huge page mappings"
          % (human(k["rss_kb"] * 1024), human(k["hugetlb_kb"] * 1024), k["hugetlb_mappings"]))
    try:
        p = shim_stats(a.pid)
    except NoStats as e:
        print("shim            %s" % e)
        if a.json:
            print(json.dumps({"pid": a.pid, "kernel": k, "shim": None, "why": str(e)}))
        return e.code
    print_counters(p)
    if a.json:
        print(json.dumps({"pid": a.pid, "kernel": k, "arm": p["arm"], "page": p["page"],
                          "shim": p["fields"]}))
    return EXIT_OK
