"""`pyhuge compare CONTROL TREATMENT`: a verdict per metric from samples of
two arms exported from a fleet's metrics (samples.py reads them): a
two-sided Mann-Whitney test, the Hodges-Lehmann shift with its
distribution-free interval, absolute and relative to the control's median,
and BETTER / WORSE / NO DIFFERENCE in the metric's direction, where a
significant shift smaller than --min-effect percent is NO DIFFERENCE."""
import json
import statistics

from pyhuge.common import EXIT_DEGRADED, EXIT_OK, UsageError
from pyhuge import ranktest, samples

SANE_N = 20  # below this per arm the test has little power: say so


def add_parser(sub):
    c = sub.add_parser(
        "compare", help="a verdict from exported samples of two arms",
        description="Compare samples of a control arm and a treatment arm (one number a line; "
        "CSV with --column NAME; a Prometheus /api/v1/query_range JSON answer) with a two-sided "
        "Mann-Whitney U test and the Hodges-Lehmann shift (treatment - control) with its "
        "confidence interval. Per metric: BETTER, WORSE or NO DIFFERENCE in its direction "
        "(lower is better unless --higher-is-better or NAME:higher). Exit 0 when no metric is "
        "WORSE, 1 when one is, 64 for bad arguments or input.")
    c.add_argument("control", help="the control arm's samples (a file, or - for stdin)")
    c.add_argument("treatment", help="the treatment arm's samples")
    c.add_argument("--format", choices=["auto", "lines", "csv", "prometheus"], default="auto",
                   help="input format (default: auto: JSON is Prometheus, --column means CSV, "
                   "else one number a line)")
    c.add_argument("--column", action="append", metavar="NAME[:higher|:lower]",
                   help="a CSV column to compare (repeat for several); ':higher' or ':lower' "
                   "sets that column's direction")
    c.add_argument("--series", action="append", metavar="LABEL=VALUE",
                   help="Prometheus: only the series with this label (repeat: all must match); "
                   "default: every series pooled")
    c.add_argument("--name", help="the metric's name in the report (one-number-a-line and "
                   "Prometheus input)")
    d = c.add_mutually_exclusive_group()
    d.add_argument("--lower-is-better", dest="higher", action="store_false",
                   help="smaller values are better: latency, time, memory (the default)")
    d.add_argument("--higher-is-better", dest="higher", action="store_true",
                   help="larger values are better: throughput")
    c.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the test; the interval is 1 - alpha (default 0.05)")
    c.add_argument("--min-effect", type=float, default=0.0, metavar="PCT",
                   help="a significant shift smaller than PCT%% of the control's median is NO "
                   "DIFFERENCE (default 0)")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(fn=cmd_compare, higher=False)
    return c


def metric_specs(a):
    """[(column or None, higher is better)]."""
    if not a.column:
        return [(None, a.higher)]
    out = []
    for spec in a.column:
        name, higher = spec, a.higher
        for suffix, value in ((":higher", True), (":lower", False)):
            if spec.endswith(suffix):
                name, higher = spec[:-len(suffix)], value
        if not name:
            raise UsageError("--column needs a name: %r" % spec)
        out.append((name, higher))
    return out


def judge(control, treatment, higher, alpha, min_effect):
    """Everything said about one metric, as a dict."""
    mw = ranktest.mann_whitney(control, treatment)
    hl = ranktest.hodges_lehmann(control, treatment, alpha=alpha)
    base = statistics.median(control)

    def pct(v):
        return None if base == 0 else 100.0 * v / abs(base)
    rel, rel_lo, rel_hi = pct(hl["shift"]), pct(hl["low"]), pct(hl["high"])
    significant = mw["p"] < alpha
    if not significant:
        verdict, why = "NO DIFFERENCE", "p = %.3g >= alpha %.3g" % (mw["p"], alpha)
    elif min_effect > 0 and (rel is None or abs(rel) < min_effect):
        verdict, why = "NO DIFFERENCE", ("significant (p = %.3g), but the shift %s is under "
                                         "--min-effect %g%%" % (mw["p"], "n/a" if rel is None
                                                                else "%+.2f%%" % rel, min_effect))
    else:
        better = (hl["shift"] > 0) == higher
        if hl["shift"] == 0:
            verdict, why = "NO DIFFERENCE", "significant (p = %.3g), but the median shift is 0" % mw["p"]
        else:
            verdict = "BETTER" if better else "WORSE"
            why = "p = %.3g < alpha %.3g" % (mw["p"], alpha)
    warnings = []
    for arm, v in (("control", control), ("treatment", treatment)):
        if len(v) < SANE_N:
            warnings.append("only %d %s samples: under %d per arm the test misses all but large "
                            "shifts" % (len(v), arm, SANE_N))
    if hl["confidence"] < 1 - alpha - 1e-9:
        warnings.append("samples too small for a %g%% interval: the interval shown covers %.1f%%"
                        % (100 * (1 - alpha), 100 * hl["confidence"]))
    return {"direction": "higher is better" if higher else "lower is better",
            "n_control": len(control), "n_treatment": len(treatment),
            "median_control": base, "median_treatment": statistics.median(treatment),
            "u": mw["u"], "p": mw["p"], "test": mw["method"], "ties": mw["ties"],
            "shift": hl["shift"], "shift_low": hl["low"], "shift_high": hl["high"],
            "confidence": hl["confidence"], "shift_pct": rel, "shift_pct_low": rel_lo,
            "shift_pct_high": rel_hi, "verdict": verdict, "why": why, "warnings": warnings}


def fmt_pct(v):
    return "n/a" if v is None else "%+.2f%%" % v


def cmd_compare(a):
    if not 0 < a.alpha < 1:
        raise UsageError("--alpha must be between 0 and 1, not %g" % a.alpha)
    if a.min_effect < 0:
        raise UsageError("--min-effect is a percentage, 0 or more, not %g" % a.min_effect)
    if a.control == "-" and a.treatment == "-":
        raise UsageError("only one of CONTROL and TREATMENT can be stdin (-)")
    specs = metric_specs(a)
    if a.format == "csv" and not a.column:
        raise UsageError("--format csv needs --column NAME")
    if a.column and a.format not in ("auto", "csv"):
        raise UsageError("--column is for CSV input, not --format %s" % a.format)
    notes = []
    columns = [name for name, _ in specs if name] or None
    ctl = samples.load(a.control, a.format, columns, a.series, notes)
    trt = samples.load(a.treatment, a.format, columns, a.series, notes)
    results = []
    for name, higher in specs:
        if name is None:
            # one metric a file: pair them whatever each file calls it
            (cname, c), = ctl.items()
            (_, t), = trt.items()
            name = a.name or cname
        else:
            c, t = ctl[name], trt[name]
        r = judge(c, t, higher, a.alpha, a.min_effect)
        r["metric"] = name
        results.append(r)
    worse = any(r["verdict"] == "WORSE" for r in results)
    if a.json:
        print(json.dumps({"control": a.control, "treatment": a.treatment, "alpha": a.alpha,
                          "min_effect_pct": a.min_effect, "notes": notes, "metrics": results},
                         indent=2))
        return EXIT_DEGRADED if worse else EXIT_OK
    print("control:   %s\ntreatment: %s" % (a.control, a.treatment))
    for note in notes:
        print("note: %s" % note)
    for r in results:
        print("\n%s (%s)" % (r["metric"], r["direction"]))
        print("  samples         control %d, treatment %d" % (r["n_control"], r["n_treatment"]))
        print("  medians         control %.6g, treatment %.6g" % (r["median_control"], r["median_treatment"]))
        print("  Mann-Whitney    U = %g, p = %.4g (two-sided, %s%s)"
              % (r["u"], r["p"], "exact" if r["test"] == "exact" else "normal approximation",
                 ", tie-corrected" if r["ties"] else ""))
        print("  shift           %+.6g (%s), %.0f%% interval %+.6g to %+.6g (%s to %s)"
              % (r["shift"], fmt_pct(r["shift_pct"]), 100 * (1 - a.alpha), r["shift_low"],
                 r["shift_high"], fmt_pct(r["shift_pct_low"]), fmt_pct(r["shift_pct_high"])))
        for w in r["warnings"]:
            print("  warning         %s" % w)
        print("  verdict         %s (%s)" % (r["verdict"], r["why"]))
    return EXIT_DEGRADED if worse else EXIT_OK
