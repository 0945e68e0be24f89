"""Samples the way operators export them, as lists of floats per metric:
one number a line, CSV with a header (--column NAME), or the JSON a
Prometheus range query returns (/api/v1/query_range: a matrix of series,
each with [timestamp, "value"] pairs; several series pooled, or the ones
matching --series LABEL=VALUE). Bad input is a UsageError naming the file
and the line or field."""
import csv
import io
import json
import math

from pyhuge.common import UsageError


def _number(text, where):
    try:
        v = float(text)
    except ValueError:
        raise UsageError("%s: %r is not a number" % (where, text[:40]))
    return v


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _finite(values, where, notes):
    kept = [v for v in values if math.isfinite(v)]
    if len(kept) < len(values):
        notes.append("%s: left out %d NaN/Inf value(s)" % (where, len(values) - len(kept)))
    return kept


def read_text(path):
    try:
        if path == "-":
            import sys
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise UsageError("%s: no such file" % path)
    except IsADirectoryError:
        raise UsageError("%s: is a directory, not a file of samples" % path)
    except UnicodeDecodeError:
        raise UsageError("%s: not text (a binary file?)" % path)
    except OSError as e:
        raise UsageError("%s: cannot read: %s" % (path, e.strerror))


def detect(text, columns):
    s = text.lstrip()
    if s.startswith("{") or s.startswith("["):
        return "prometheus"
    if columns:
        return "csv"
    return "lines"


def parse_lines(text, path, notes):
    """One number a line; blank lines and '#' comments skipped."""
    values = []
    for no, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "," in line or "\t" in line:
            raise UsageError("%s line %d: %r has several fields: for CSV name the column "
                             "with --column NAME" % (path, no, line[:60]))
        values.append(_number(line, "%s line %d" % (path, no)))
    return {"value": _finite(values, path, notes)}


def parse_csv(text, path, columns, notes):
    """{column: values} for each named column; empty cells skipped."""
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t ")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise UsageError("%s: empty: a CSV file needs a header line naming its columns" % path)
    if all(_is_number(h) for h in header if h):
        raise UsageError("%s: its first line is numbers, not a header naming the columns (%s); "
                         "one number a line needs no --column" % (path, ",".join(header)[:40]))
    out = {}
    index = {}
    for c in columns:
        if c not in header:
            raise UsageError("%s: no column %r; its columns are: %s"
                             % (path, c, ", ".join(h for h in header if h) or "(none)"))
        index[c] = header.index(c)
        out[c] = []
    for no, row in enumerate(rows, 2):
        if not row or all(not cell.strip() for cell in row):
            continue
        for c, i in index.items():
            cell = row[i].strip() if i < len(row) else ""
            if cell:
                out[c].append(_number(cell, "%s line %d, column %s" % (path, no, c)))
    return {c: _finite(v, "%s column %s" % (path, c), notes) for c, v in out.items()}


def _labels(metric):
    return "{%s}" % ", ".join('%s="%s"' % kv for kv in sorted(metric.items()))


def parse_prometheus(text, path, series, notes):
    """One metric: the values of every selected series, pooled."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise UsageError("%s: not valid JSON (%s)" % (path, e))
    if isinstance(doc, dict) and doc.get("status") == "error":
        raise UsageError("%s: Prometheus answered an error: %s: %s"
                         % (path, doc.get("errorType", "?"), doc.get("error", "?")))
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or "result" not in data:
        raise UsageError("%s: not a Prometheus query answer (no data.result); export it with "
                         "curl '.../api/v1/query_range?query=...&start=...&end=...&step=...'" % path)
    kind = data.get("resultType")
    if kind not in ("matrix", "vector"):
        raise UsageError("%s: resultType %r: only a range query's matrix (or an instant vector) "
                         "holds samples" % (path, kind))
    result = data["result"]
    if not isinstance(result, list):
        raise UsageError("%s: data.result is not a list" % path)
    wanted = []
    for sel in series or []:
        k, sep, v = sel.partition("=")
        if not sep or not k:
            raise UsageError("--series takes LABEL=VALUE, not %r" % sel)
        wanted.append((k, v))
    chosen, values, name = 0, [], None
    for i, s in enumerate(result):
        if not isinstance(s, dict):
            raise UsageError("%s: data.result[%d] is not a series" % (path, i))
        metric = s.get("metric") or {}
        if any(metric.get(k) != v for k, v in wanted):
            continue
        chosen += 1
        name = name or metric.get("__name__")
        pairs = s.get("values") if kind == "matrix" else [s.get("value")]
        if not isinstance(pairs, list):
            raise UsageError("%s: series %s has no values" % (path, _labels(metric)))
        for j, pair in enumerate(pairs):
            if not (isinstance(pair, list) and len(pair) == 2):
                raise UsageError("%s: series %s, sample %d: not a [timestamp, \"value\"] pair"
                                 % (path, _labels(metric), j))
            values.append(_number(str(pair[1]), "%s: series %s, sample %d"
                                  % (path, _labels(metric), j)))
    if not result:
        raise UsageError("%s: the query returned no series" % path)
    if not chosen:
        raise UsageError("%s: no series matches --series %s (it has %s)"
                         % (path, " ".join(series), "; ".join(_labels(s.get("metric") or {})
                                                              for s in result[:5])))
    if chosen > 1:
        notes.append("%s: pooled %d series (choose with --series LABEL=VALUE)" % (path, chosen))
    return {name or "value": _finite(values, path, notes)}


def load(path, fmt="auto", columns=None, series=None, notes=None):
    """{metric: [floats]} from one file."""
    notes = [] if notes is None else notes
    text = read_text(path)
    if not text.strip():
        raise UsageError("%s: empty: no samples" % path)
    fmt = detect(text, columns) if fmt == "auto" else fmt
    if fmt == "csv":
        if not columns:
            raise UsageError("CSV input needs --column NAME")
        out = parse_csv(text, path, columns, notes)
    elif fmt == "prometheus":
        out = parse_prometheus(text, path, series, notes)
    else:
        out = parse_lines(text, path, notes)
    for metric, values in out.items():
        if not values:
            raise UsageError("%s: no samples for %s" % (path, metric))
    return out
