#!/usr/bin/env python3
"""PYHUGE_METRICS end to end, as TAP: real CPython processes under the shim
keep /dir/pyhuge-<pid>.prom; promtool accepts it; a real node_exporter
(textfile collector, on a free loopback port) serves its samples; a clean
exit removes it; a forked child has a file of its own; PYHUGE=off publishes
pyhuge_info{enabled="0"} alone; bad directories give one warning and no
file; processes that are not CPython write and say nothing.

  test_metrics.py --preload LD_PRELOAD_VALUE --child metrics_child.py [--python PY]

LD_PRELOAD_VALUE is the library's absolute path (after the ASan runtime's in a
sanitizer build).
"""
import argparse
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--preload", required=True)
ap.add_argument("--child", required=True)
ap.add_argument("--python", default="/usr/bin/python3.11")
args = ap.parse_args()

PROMTOOL = shutil.which("promtool")
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class Skip(Exception):
    pass


def env_for(extra):
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
           "LD_PRELOAD": args.preload, "ASAN_OPTIONS": "detect_leaks=0"}
    env.update(extra)
    return env


class Child:
    """metrics_child.py under the shim, driven line by line."""

    def __init__(self, extra):
        self.p = subprocess.Popen([args.python, args.child], env=env_for(extra),
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid = int(self.expect("ready").split()[1])

    def expect(self, word, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.p.stdout], [], [], deadline - time.monotonic())
            if not r:
                break
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError("child ended before %r: %s" % (word, self.p.stderr.read()))
            if line.startswith(word):
                return line.strip()
        raise AssertionError("no %r within %d s" % (word, timeout))

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()

    def finish(self):
        self.p.stdin.close()
        try:
            rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise AssertionError("child did not exit")
        return rc, self.p.stderr.read()


def samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text page."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **labels):
    want = set(labels.items())
    found = [v for (n, ls), v in s.items() if n == name and want <= set(ls)]
    assert len(found) == 1, "%s%s: %d samples" % (name, labels, len(found))
    return found[0]


def prom_file(d, pid):
    return os.path.join(d, "pyhuge-%d.prom" % pid)


def read(path):
    with open(path) as f:
        return f.read()


def wait_for(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@case
def a_running_cpython_keeps_its_file_with_pid_arm_and_version(d):
    c = Child({"PYHUGE_METRICS": d, "PYHUGE_ARM": "treat", "PYHUGE_METRICS_INTERVAL": "1"})
    try:
        s = samples(read(prom_file(d, c.pid)))
        assert value(s, "pyhuge_info", pid=str(c.pid), arm="treat", enabled="1") == 1
        assert all(dict(ls).get("pid") == str(c.pid) for (_, ls) in s), "pid on every sample"
        assert all(dict(ls).get("arm") == "treat" for (_, ls) in s), "arm on every sample"
        names = {n for (n, _) in s}
        for n in ["pyhuge_arenas_total", "pyhuge_arenas_live", "pyhuge_fallbacks_total",
                  "pyhuge_huge_pages", "pyhuge_huge_pages_forked_total",
                  "pyhuge_huge_pages_demoted_total", "pyhuge_hugetlb_bytes",
                  "pyhuge_arenas_unseen_total"]:
            assert n in names, "%s missing: %s" % (n, sorted(names))
    finally:
        rc, err = c.finish()
    assert rc == 0, err
    assert not os.path.exists(prom_file(d, c.pid)), "a clean exit removes the file"
    assert [f for f in os.listdir(d)] == [], "no temporary left: %s" % os.listdir(d)


@case
def the_file_is_refreshed_while_arenas_come_and_go(d):
    c = Child({"PYHUGE_METRICS": d, "PYHUGE_METRICS_INTERVAL": "1"})
    try:
        before = samples(read(prom_file(d, c.pid)))
        c.send("more")
        c.expect("done")
        after = samples(read(prom_file(d, c.pid)))
        served = lambda s: sum(v for (n, _), v in s.items() if n == "pyhuge_arenas_total")
        assert served(after) > served(before), "%s -> %s" % (served(before), served(after))
        assert value(after, "pyhuge_metrics_updated_timestamp_seconds") >= \
            value(before, "pyhuge_metrics_updated_timestamp_seconds")
    finally:
        c.finish()


@case
def promtool_accepts_the_file(d):
    if not PROMTOOL:
        raise Skip("no promtool (Debian package prometheus)")
    c = Child({"PYHUGE_METRICS": d, "PYHUGE_ARM": "a-1", "PYHUGE_METRICS_INTERVAL": "1"})
    try:
        c.send("more")
        c.expect("done")
        text = read(prom_file(d, c.pid))
    finally:
        c.finish()
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, text=True,
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        "promtool: rc=%d %s %s" % (r.returncode, r.stdout, r.stderr)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


@case
def node_exporter_serves_every_process_and_forgets_one_that_exited(d):
    if not NODE_EXPORTER:
        raise Skip("no prometheus-node-exporter")
    ne, port = None, None
    for _ in range(3):
        port = free_port()
        ne = subprocess.Popen([NODE_EXPORTER, "--collector.disable-defaults",
                               "--collector.textfile", "--collector.textfile.directory=" + d,
                               "--web.listen-address=127.0.0.1:%d" % port],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        up = False
        for _ in range(100):
            if ne.poll() is not None:
                break
            try:
                scrape(port)
                up = True
                break
            except OSError:
                time.sleep(0.1)
        if up:
            break
        ne.kill()
        ne.wait()
        ne = None
    assert ne, "node_exporter did not start"
    a = b = None
    try:
        a = Child({"PYHUGE_METRICS": d, "PYHUGE_ARM": "treat"})
        b = Child({"PYHUGE_METRICS": d, "PYHUGE_ARM": "control", "PYHUGE": "off"})
        page = samples(scrape(port))
        assert value(page, "node_textfile_scrape_error") == 0, "two files merge without error"
        assert value(page, "pyhuge_info", pid=str(a.pid), arm="treat", enabled="1") == 1
        assert value(page, "pyhuge_info", pid=str(b.pid), arm="control", enabled="0") == 1
        assert value(page, "pyhuge_arenas_total", pid=str(a.pid), backing="hugetlb") >= 0
        rc, err = b.finish()
        assert rc == 0, err
        b = None
        page = samples(scrape(port))
        assert not [k for k in page if dict(k[1]).get("arm") == "control"], \
            "the exited process is gone from the page"
        assert value(page, "pyhuge_info", pid=str(a.pid)) == 1
    finally:
        for c in (a, b):
            if c:
                c.finish()
        ne.terminate()
        try:
            ne.wait(timeout=10)
        except subprocess.TimeoutExpired:
            ne.kill()


@case
def pyhuge_off_publishes_only_its_info_with_enabled_0(d):
    c = Child({"PYHUGE_METRICS": d, "PYHUGE": "off", "PYHUGE_ARM": "control"})
    try:
        s = samples(read(prom_file(d, c.pid)))
    finally:
        rc, err = c.finish()
    assert list(s.values()) == [1], s
    assert value(s, "pyhuge_info", pid=str(c.pid), arm="control", enabled="0") == 1
    assert rc == 0 and err == "", err
    assert os.listdir(d) == []


@case
def a_forked_child_writes_its_own_file_and_leaves_its_parents(d):
    c = Child({"PYHUGE_METRICS": d, "PYHUGE_ARM": "forks", "PYHUGE_METRICS_INTERVAL": "1"})
    try:
        parent_text = read(prom_file(d, c.pid))
        c.send("fork")
        kid = int(c.expect("child").split()[1])
        assert wait_for(lambda: os.path.exists(prom_file(d, kid))), "child's file"
        s = samples(read(prom_file(d, kid)))
        assert value(s, "pyhuge_info", pid=str(kid), arm="forks") == 1
        assert all(dict(ls).get("pid") == str(kid) for (_, ls) in s)
        status = int(c.expect("child-exited").split()[1])
        assert status == 0, status
        assert not os.path.exists(prom_file(d, kid)), "the child's clean exit removes its own"
        assert os.path.exists(prom_file(d, c.pid)), "and never its parent's"
        assert 'pid="%d"' % c.pid in read(prom_file(d, c.pid))
        assert parent_text
    finally:
        rc, err = c.finish()
    assert rc == 0, err


@case
def an_interpreter_embedded_later_is_found_on_and_off(d):
    uwsgi = shutil.which("uwsgi")
    if not uwsgi or not os.path.exists("/usr/lib/uwsgi/plugins/python3_plugin.so"):
        raise Skip("no uwsgi with its python3 plugin (uwsgi-core, uwsgi-plugin-python3)")
    app = tempfile.mkdtemp(prefix="pyhuge-app-")
    try:
        with open(os.path.join(app, "app.py"), "w") as f:
            f.write("x = [str(i) for i in range(300000)]\n"
                    "def application(env, start):\n"
                    "    start('200 OK', [])\n"
                    "    return [b'']\n")
        for switch, enabled in (("on", "1"), ("off", "0")):
            p = subprocess.Popen([uwsgi, "--die-on-term", "--plugin", "python3", "--master",
                                  "--processes", "1",
                                  "--http-socket", "127.0.0.1:%d" % free_port(),
                                  "--wsgi-file", os.path.join(app, "app.py")],
                                 env=env_for({"PYHUGE": switch, "PYHUGE_METRICS": d,
                                              "PYHUGE_ARM": "u" + switch}),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                path = prom_file(d, p.pid)
                assert wait_for(lambda: os.path.exists(path), 20), \
                    "PYHUGE=%s: no file for the uWSGI master" % switch
                s = samples(read(path))
                assert value(s, "pyhuge_info", pid=str(p.pid), enabled=enabled) == 1, s
                time.sleep(3)  # the master's signal handlers set, its worker spawned
            finally:
                p.terminate()  # with --die-on-term: a clean stop, workers included
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            assert wait_for(lambda: not os.listdir(d), 10), \
                "every file gone after a clean stop: %s" % os.listdir(d)
    finally:
        shutil.rmtree(app, ignore_errors=True)


def run_quick(cmd, extra, timeout=30):
    return subprocess.run(cmd, env=env_for(extra), capture_output=True, text=True,
                          timeout=timeout)


@case
def a_bad_directory_gets_one_warning_and_no_file(d):
    afile = os.path.join(d, "afile")
    open(afile, "w").close()
    for bad, why in [(os.path.join(d, "missing"), "no such directory"),
                     (afile, "not a directory"),
                     ("/proc", "cannot create"),
                     ("relative/dir", "is not 0 or an absolute directory path")]:
        r = run_quick([args.python, "-c", "x = [str(i) for i in range(200000)]"],
                      {"PYHUGE_METRICS": bad})
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("WARNING") == 1 and why in r.stderr, "%s: %r" % (bad, r.stderr)
    assert os.listdir(d) == ["afile"], os.listdir(d)


@case
def a_full_disk_gets_one_warning_and_never_a_hang(d):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip("cannot mount a tmpfs (needs root): %s" % r.stderr.strip())
    try:
        fd = os.open(os.path.join(d, "fill"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        r = run_quick([args.python, "-c", "x = [str(i) for i in range(200000)]"],
                      {"PYHUGE_METRICS": d})
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("WARNING") == 1 and "cannot write" in r.stderr, r.stderr
        assert os.listdir(d) == ["fill"], "no file, no temporary: %s" % os.listdir(d)
    finally:
        subprocess.run(["umount", d])


@case
def processes_that_are_not_cpython_write_and_say_nothing(d):
    for cmd in (["/bin/true"], ["/bin/sh", "-c", "echo x | sed s/x/y/ | grep -q y"]):
        for extra in ({"PYHUGE_METRICS": d}, {"PYHUGE_METRICS": "relative"},
                      {"PYHUGE_METRICS": d, "PYHUGE": "off"}):
            r = run_quick(cmd, extra)
            assert r.returncode == 0 and r.stdout == "" and r.stderr == "", \
                "%s %s: %r" % (cmd, extra, r.stderr)
    assert os.listdir(d) == []


def main():
    print("TAP version 13")
    print("1..%d" % len(CASES))
    failed = 0
    for i, fn in enumerate(CASES, 1):
        d = tempfile.mkdtemp(prefix="pyhuge-metrics-")
        try:
            fn(d)
            print("ok %d - metrics::%s" % (i, fn.__name__))
        except Skip as e:
            print("ok %d - metrics::%s # SKIP %s" % (i, fn.__name__, e))
        except Exception as e:  # AssertionError, a timeout, an unexpected error
            failed += 1
            print("not ok %d - metrics::%s" % (i, fn.__name__))
            for line in ("%s: %s" % (type(e).__name__, e)).splitlines():
                print("  # " + line)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        sys.stdout.flush()
    return 1 if failed else 0


sys.exit(main())
