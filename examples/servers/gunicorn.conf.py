# gunicorn under pyhuge: gunicorn -c gunicorn.conf.py django_app:application
# (LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpyhuge.so.0 in the environment,
# as the systemd drop-in pyhuge.conf sets it).
import gc
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# The app is imported once, in the master, and shared with the workers
# copy-on-write. Under pyhuge the master's arenas leave the huge page pool
# at its first fork (no worker can then lose a page to a drained pool), and
# each worker's own arenas go on huge pages of its own.
preload_app = True
# Workers are recycled after about this many requests: a new worker starts
# from the master's memory again (and under pyhuge on fresh huge pages).
max_requests = int(os.environ.get("MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10
chdir = os.path.dirname(os.path.abspath(__file__))
accesslog = None


def pre_fork(server, worker):
    # Objects the master made so far are left alone by the collector in
    # every worker: fewer of the master's pages copied per worker.
    # (DEMO_FREEZE=0 turns it off: bench/bench_servers.py --no-freeze.)
    if os.environ.get("DEMO_FREEZE", "1") != "0":
        gc.collect()
        gc.freeze()
