"""What every subcommand shares: exit codes and errors, where the launcher
and the library are, and small readers of the kernel's accounts."""
import glob
import os
import re
import sys

HUGE = 2 * 1024 * 1024
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"

EXIT_OK, EXIT_DEGRADED, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2, 64

# Set by the launcher (tools/pyhuge.py, or the copy meson configures and
# installs as `pyhuge`): the directory it sits in, and what meson wrote in.
# Left as below for `python3 -m pyhuge` from a checkout's tools/.
LAUNCHER_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
CONFIGURED_VERSION = None
INSTALLED_LIBDIR = None


def configure(launcher_dir, version, libdir):
    """Called once by the launcher; '@...@' values mean 'not configured'
    (run from a checkout)."""
    global LAUNCHER_DIR, CONFIGURED_VERSION, INSTALLED_LIBDIR
    LAUNCHER_DIR = launcher_dir
    CONFIGURED_VERSION = None if not version or version.startswith("@") else version
    INSTALLED_LIBDIR = None if not libdir or libdir.startswith("@") else libdir


def in_checkout():
    return INSTALLED_LIBDIR is None


class UsageError(Exception):
    """Bad arguments or input: the message is a sentence, the exit 64."""


class Failure(Exception):
    """An operation that cannot go on: a sentence and an exit code."""

    def __init__(self, message, code=EXIT_REFUSED):
        super().__init__(message)
        self.code = code


def die(msg, code=EXIT_REFUSED):
    raise Failure(msg, code)


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

        def get(name):
            return int((read(os.path.join(d, name), "0") or "0").strip() or 0)
        sizes.append({"kb": kb, "total": get("nr_hugepages"), "free": get("free_hugepages"),
                      "reserved": get("resv_hugepages"), "surplus": get("surplus_hugepages")})
    return sizes


def human(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return ("%d %s" % (v, unit)) if v == int(v) else ("%.1f %s" % (v, unit))
    return "%d B" % n


def version():
    """meson.build's project version: written in at configure time, read
    from the checkout's meson.build when run from a source tree."""
    if CONFIGURED_VERSION:
        return CONFIGURED_VERSION
    text = read(os.path.join(os.path.dirname(LAUNCHER_DIR), "meson.build"), "") or ""
    m = re.search(r"\bproject\([^)]*?\bversion\s*:\s*'([^']+)'", text)
    return m.group(1) if m else "unknown"


def lib_candidates(explicit=None):
    """Where libpyhuge.so may be, in the order looked: [(where, path)].
    --lib overrides everything; then beside the launcher (the configured
    command sits next to the library in a build directory), the install
    libdir, $PYHUGE_LIB, and in a checkout its build* directories."""
    if explicit:
        return [("--lib", explicit)]
    found = [("beside the command", os.path.join(LAUNCHER_DIR, "libpyhuge.so"))]
    if not in_checkout():
        found += [("install libdir", os.path.join(INSTALLED_LIBDIR, "libpyhuge.so.0")),
                  ("install libdir", os.path.join(INSTALLED_LIBDIR, "libpyhuge.so"))]
    found.append(("PYHUGE_LIB", os.environ.get("PYHUGE_LIB") or None))
    if in_checkout():
        pattern = os.path.join(os.path.dirname(LAUNCHER_DIR), "build*", "libpyhuge.so")
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


def command_after_dashes(cmd):
    cmd = cmd[1:] if cmd[:1] == ["--"] else cmd
    if not cmd:
        raise UsageError("give the command to run after --")
    return cmd


def progress(text):
    """A progress line, only when stderr is a terminal: a log gets none of
    these carriage-return lines."""
    if sys.stderr.isatty():
        sys.stderr.write("\r%-70s" % text)
        sys.stderr.flush()


def progress_done():
    if sys.stderr.isatty():
        sys.stderr.write("\r%-70s\r" % "")
        sys.stderr.flush()
