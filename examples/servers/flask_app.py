"""A tiny Flask app for uWSGI (uwsgi.ini) or gunicorn: a preloaded heap
(demo_heap.py) and /work?n=N answering a checksum. Frozen at the end of
the import, in the master, before uWSGI forks its workers."""
from flask import Flask, Response, request

import demo_heap

app = Flask(__name__)


@app.route("/work")
def work():
    return Response(demo_heap.answer(int(request.args.get("n", "0"))), mimetype="application/json")


@app.route("/")
def index():
    return Response("ok\n", mimetype="text/plain")


demo_heap.freeze()
