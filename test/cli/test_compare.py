"""`pyhuge compare`: its Mann-Whitney U and p-value against
scipy.stats.mannwhitneyu, its Hodges-Lehmann shift and interval against a
brute-force computation (every pairwise difference; the interval by
inverting scipy's test shift by shift), the verdicts, and every input
format with bad input (a sentence, exit 64)."""
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import unittest

from pyhuge import compare, ranktest

try:
    import numpy
    from scipy.stats import mannwhitneyu
except ImportError:  # Debian: apt-get install python3-scipy
    mannwhitneyu = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "tools", "pyhuge.py")


def normal(rng, n, mu, sd=1.0):
    return [rng.gauss(mu, sd) for _ in range(n)]


def expo(rng, n, scale, shift=0.0):
    return [shift + rng.expovariate(1.0 / scale) for _ in range(n)]


# (name, control, treatment): known distributions
def cases():
    rng = random.Random(20261203)
    return [
        ("normal shifted, n=30/30", normal(rng, 30, 10), normal(rng, 30, 10.8)),
        ("normal shifted, n=70/90", normal(rng, 70, 100, 5), normal(rng, 90, 97, 5)),
        ("normal, no shift, n=40/40", normal(rng, 40, 5), normal(rng, 40, 5)),
        ("exponential, n=25/25", expo(rng, 25, 2.0), expo(rng, 25, 2.0, 0.7)),
        ("exponential, n=200/150", expo(rng, 200, 1.0), expo(rng, 150, 1.3)),
        ("ties: rounded to 0.5, n=40/35", [round(v * 2) / 2 for v in normal(rng, 40, 3)],
         [round(v * 2) / 2 for v in normal(rng, 35, 3.4)]),
        ("ties: small integers, n=12/9", [rng.randint(1, 5) for _ in range(12)],
         [rng.randint(2, 6) for _ in range(9)]),
        ("small n=5/6", normal(rng, 5, 1), normal(rng, 6, 2.5)),
        ("small n=3/4", normal(rng, 3, 1), normal(rng, 4, 1.5)),
        ("unequal n=8/45", normal(rng, 8, 0), normal(rng, 45, 0.9)),
        ("unequal n=120/15", expo(rng, 120, 1.0), expo(rng, 15, 1.0, 0.4)),
    ]


def scipy_method(r):
    return "exact" if r["method"] == "exact" else "asymptotic"


@unittest.skipIf(mannwhitneyu is None, "no scipy (apt-get install python3-scipy)")
class AgainstScipy(unittest.TestCase):
    def test_u_and_p_agree_with_scipy(self):
        for name, x, y in cases():
            with self.subTest(name):
                mine = ranktest.mann_whitney(x, y)
                ref = mannwhitneyu(x, y, alternative="two-sided", method=scipy_method(mine),
                                   use_continuity=True)
                self.assertEqual(mine["u"], ref.statistic, name)
                self.assertTrue(math.isclose(mine["p"], ref.pvalue, rel_tol=1e-9, abs_tol=1e-15),
                                "%s: p %r, scipy %r" % (name, mine["p"], ref.pvalue))

    def test_exact_and_normal_both_agree_without_ties(self):
        rng = random.Random(7)
        x, y = normal(rng, 12, 0), normal(rng, 14, 0.7)
        for method in ("exact", "normal"):
            mine = ranktest.mann_whitney(x, y, method=method)
            ref = mannwhitneyu(x, y, alternative="two-sided",
                               method="exact" if method == "exact" else "asymptotic")
            self.assertTrue(math.isclose(mine["p"], ref.pvalue, rel_tol=1e-9), method)

    def test_exact_is_chosen_as_r_does(self):
        rng = random.Random(8)
        self.assertEqual(ranktest.mann_whitney(normal(rng, 49, 0), normal(rng, 10, 0))["method"], "exact")
        self.assertEqual(ranktest.mann_whitney(normal(rng, 50, 0), normal(rng, 10, 0))["method"], "normal")
        self.assertEqual(ranktest.mann_whitney([1, 2, 2], [3, 4])["method"], "normal", "ties")


class HodgesLehmann(unittest.TestCase):
    def brute(self, x, y, alpha, method):
        """The median of all differences; the interval by inverting the
        test: the shifts d at which control + d against treatment is not
        rejected, tried between every two neighbouring differences."""
        diffs = sorted(b - a for a in x for b in y)
        m = len(diffs)
        med = diffs[m // 2] if m % 2 else (diffs[m // 2 - 1] + diffs[m // 2]) / 2
        distinct = sorted(set(diffs))
        accepted = []
        for lo, hi in zip(distinct, distinct[1:]):
            mid = (lo + hi) / 2
            p = mannwhitneyu([a + mid for a in x], y, alternative="two-sided",
                             method="exact" if method == "exact" else "asymptotic").pvalue
            if p > alpha:
                accepted.append((lo, hi))
        if not accepted:
            return med, None, None
        return med, accepted[0][0], accepted[-1][1]

    def test_estimate_is_the_median_of_all_differences(self):
        for name, x, y in cases():
            with self.subTest(name):
                diffs = sorted(b - a for a in x for b in y)
                m = len(diffs)
                med = diffs[m // 2] if m % 2 else (diffs[m // 2 - 1] + diffs[m // 2]) / 2
                self.assertEqual(ranktest.hodges_lehmann(x, y)["shift"], med)

    @unittest.skipIf(mannwhitneyu is None, "no scipy (apt-get install python3-scipy)")
    def test_interval_is_the_inverted_test(self):
        for name, x, y in cases():
            if len(x) * len(y) > 2000:
                continue  # the brute force tries every difference
            for alpha in (0.05, 0.1):
                with self.subTest(name, alpha=alpha):
                    hl = ranktest.hodges_lehmann(x, y, alpha=alpha)
                    med, lo, hi = self.brute(x, y, alpha, hl["method"])
                    if lo is None:
                        self.assertLess(hl["confidence"], 1 - alpha, "too small: said so")
                        continue
                    self.assertEqual((hl["low"], hl["high"]), (lo, hi), name)
                    self.assertGreaterEqual(hl["confidence"], 1 - alpha - 0.01)

    def test_kth_difference_with_many_ties(self):
        rng = random.Random(5)
        for _ in range(30):
            x = sorted(rng.randint(0, 4) for _ in range(rng.randint(1, 40)))
            y = sorted(rng.randint(0, 4) + 0.5 * rng.randint(0, 1) for _ in range(rng.randint(1, 40)))
            diffs = sorted(b - a for a in x for b in y)
            for k in (1, len(diffs), (len(diffs) + 1) // 2, max(1, len(diffs) // 7)):
                self.assertEqual(ranktest.kth_difference(x, y, k, window=3), diffs[k - 1])

    def test_kth_difference_past_the_window(self):
        # more differences than the window: found by bisection on the value
        rng = random.Random(6)
        for window in (20000, 5):
            x = sorted(rng.random() for _ in range(300))
            y = sorted(rng.random() + 0.1 for _ in range(250))
            diffs = sorted(b - a for a in x for b in y)
            for k in (1, len(diffs) // 3, len(diffs) // 2, len(diffs)):
                self.assertEqual(ranktest.kth_difference(x, y, k, window=window), diffs[k - 1],
                                 (window, k))

    def test_large_samples_without_every_pair_in_memory(self):
        rng = random.Random(9)
        x, y = expo(rng, 3000, 1.0), expo(rng, 3000, 1.0, 0.25)
        hl = ranktest.hodges_lehmann(x, y)
        self.assertLess(hl["low"], hl["shift"])
        self.assertLess(hl["shift"], hl["high"])
        self.assertLess(abs(hl["shift"] - 0.25), 0.1)

    def test_exact_null_distribution(self):
        # C(4,2) = 6 arrangements of two and two: U = 0,1,2,2,3,4
        self.assertEqual(ranktest.u_distribution(2, 2), [1, 1, 2, 1, 1])
        for m, n in ((3, 5), (6, 4), (7, 7)):
            c = ranktest.u_distribution(m, n)
            self.assertEqual(sum(c), math.comb(m + n, m))
            self.assertEqual(c, c[::-1], "symmetric")


class Verdicts(unittest.TestCase):
    def setUp(self):
        rng = random.Random(11)
        self.base = normal(rng, 60, 100, 4)
        self.faster = [v - 10 for v in normal(rng, 60, 100, 4)]
        self.same = normal(rng, 60, 100, 4)
        self.slightly = [v * 0.99 for v in self.base]  # every value 1% lower: significant

    def test_lower_is_better(self):
        self.assertEqual(compare.judge(self.base, self.faster, False, 0.05, 0)["verdict"], "BETTER")
        self.assertEqual(compare.judge(self.faster, self.base, False, 0.05, 0)["verdict"], "WORSE")

    def test_higher_is_better(self):
        self.assertEqual(compare.judge(self.base, self.faster, True, 0.05, 0)["verdict"], "WORSE")
        self.assertEqual(compare.judge(self.faster, self.base, True, 0.05, 0)["verdict"], "BETTER")

    def test_no_difference(self):
        r = compare.judge(self.base, self.same, False, 0.05, 0)
        self.assertEqual(r["verdict"], "NO DIFFERENCE", r)
        self.assertGreaterEqual(r["p"], 0.05)

    def test_min_effect(self):
        base = [100 + i * 0.01 for i in range(200)]
        lower = [v * 0.99 for v in base]
        r = compare.judge(base, lower, False, 0.05, 0)
        self.assertEqual(r["verdict"], "BETTER", r)
        self.assertAlmostEqual(r["shift_pct"], -1.0, delta=0.05)
        r = compare.judge(base, lower, False, 0.05, 5.0)
        self.assertEqual(r["verdict"], "NO DIFFERENCE", r)
        self.assertIn("--min-effect", r["why"])

    def test_relative_shift_and_interval(self):
        r = compare.judge(self.base, self.faster, False, 0.05, 0)
        med = r["median_control"]
        self.assertAlmostEqual(r["shift_pct"], 100 * r["shift"] / med)
        self.assertAlmostEqual(r["shift_pct_low"], 100 * r["shift_low"] / med)
        self.assertLess(r["shift_pct_low"], r["shift_pct"])
        self.assertLess(r["shift_pct"], r["shift_pct_high"])

    def test_small_samples_warn(self):
        r = compare.judge(self.base[:10], self.faster[:30], False, 0.05, 0)
        self.assertTrue(any("only 10 control samples" in w for w in r["warnings"]), r["warnings"])
        r = compare.judge(self.base[:20], self.faster[:20], False, 0.05, 0)
        self.assertFalse(any("samples:" in w for w in r["warnings"]), r["warnings"])

    def test_alpha(self):
        rng = random.Random(3)
        x, y = normal(rng, 40, 0), normal(rng, 40, 0.45)
        p = compare.judge(x, y, False, 0.05, 0)["p"]
        self.assertTrue(0.01 < p < 0.2, p)  # the seed gives a p between the two alphas below
        self.assertEqual(compare.judge(x, y, False, 0.01, 0)["verdict"], "NO DIFFERENCE")
        self.assertNotEqual(compare.judge(x, y, False, 0.2, 0)["verdict"], "NO DIFFERENCE")


def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def prom(series):
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": labels, "values": [[1700000000 + 15 * i, str(v)] for i, v in enumerate(vals)]}
        for labels, vals in series]}})


class Inputs(unittest.TestCase):
    """The command end to end, as an operator runs it."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        rng = random.Random(4)
        self.c = [round(v, 4) for v in normal(rng, 40, 50, 3)]
        self.t = [round(v, 4) for v in normal(rng, 40, 45, 3)]

    def tearDown(self):
        self.tmp.cleanup()

    def run_cli(self, *args):
        p = subprocess.run([sys.executable, CLI, "compare"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True)
        return p.returncode, p.stdout, p.stderr

    def json_of(self, *args):
        code, out, err = self.run_cli(*(list(args) + ["--json"]))
        self.assertIn(code, (0, 1), err)
        return code, json.loads(out)

    def test_one_number_a_line(self):
        c = write(self.d, "c.txt", "# latency, s\n" + "\n".join(map(str, self.c)) + "\n\n")
        t = write(self.d, "t.txt", "\n".join(map(str, self.t)))
        code, out, err = self.run_cli(c, t)
        self.assertEqual(code, 0, err)
        self.assertIn("verdict         BETTER", out)
        code, j = self.json_of(c, t, "--name", "latency_s")
        m = j["metrics"][0]
        self.assertEqual((m["metric"], m["n_control"], m["n_treatment"]), ("latency_s", 40, 40))
        self.assertEqual(m["u"], mannwhitneyu(self.c, self.t).statistic if mannwhitneyu else m["u"])

    def test_worse_exits_1(self):
        c = write(self.d, "c.txt", "\n".join(map(str, self.t)))
        t = write(self.d, "t.txt", "\n".join(map(str, self.c)))
        code, out, _ = self.run_cli(c, t)
        self.assertEqual(code, 1)
        self.assertIn("verdict         WORSE", out)
        code, _, _ = self.run_cli(c, t, "--higher-is-better")
        self.assertEqual(code, 0)

    def test_csv_columns_with_directions(self):
        def table(lat, rps):
            return "time,latency_ms,rps\n" + "".join(
                "%d,%s,%s\n" % (i, a, b) for i, (a, b) in enumerate(zip(lat, rps)))
        c = write(self.d, "c.csv", table(self.c, [1000 - v for v in self.c]))
        t = write(self.d, "t.csv", table(self.t, [1000 - v for v in self.t]))
        code, j = self.json_of(c, t, "--column", "latency_ms", "--column", "rps:higher")
        self.assertEqual(code, 0)
        by = {m["metric"]: m for m in j["metrics"]}
        self.assertEqual(by["latency_ms"]["verdict"], "BETTER")
        self.assertEqual(by["rps"]["direction"], "higher is better")
        self.assertEqual(by["rps"]["verdict"], "BETTER")  # rps rose
        self.assertEqual(by["latency_ms"]["n_control"], 40)

    def test_prometheus_matrix_pooled_and_selected(self):
        c = write(self.d, "c.json", prom([({"__name__": "lat", "instance": "a"}, self.c[:20]),
                                          ({"__name__": "lat", "instance": "b"}, self.c[20:])]))
        t = write(self.d, "t.json", prom([({"__name__": "lat", "instance": "c"}, self.t),
                                          ({"__name__": "lat", "instance": "d"}, ["NaN", 1e9])]))
        code, j = self.json_of(c, t, "--series", "__name__=lat")
        m = j["metrics"][0]
        self.assertEqual(m["metric"], "lat")
        self.assertEqual(m["n_control"], 40, "two series pooled")
        self.assertEqual(m["n_treatment"], 41, "NaN left out, said in the notes")
        self.assertTrue(any("pooled 2 series" in n for n in j["notes"]), j["notes"])
        self.assertTrue(any("NaN" in n for n in j["notes"]), j["notes"])
        c1 = write(self.d, "c1.json", prom([({"instance": "a"}, self.c[:20]),
                                            ({"instance": "b"}, self.c[20:])]))
        t1 = write(self.d, "t1.json", prom([({"instance": "a"}, self.t[:25]),
                                            ({"instance": "b"}, self.t[25:])]))
        code, j = self.json_of(c1, t1, "--series", "instance=a", "--name", "latency")
        self.assertEqual(j["metrics"][0]["n_treatment"], 25)
        self.assertEqual(j["metrics"][0]["n_control"], 20)

    def test_prometheus_instant_vector(self):
        doc = {"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {"i": str(i)}, "value": [1700000000, str(v)]} for i, v in enumerate(self.c)]}}
        c = write(self.d, "c.json", json.dumps(doc))
        t = write(self.d, "t.txt", "\n".join(map(str, self.t)))
        code, j = self.json_of(c, t)
        self.assertEqual(j["metrics"][0]["n_control"], 40)

    def test_bad_input_is_a_sentence_and_exit_64(self):
        good = write(self.d, "good.txt", "\n".join(map(str, self.c)))
        bad = [
            ([write(self.d, "nan.txt", "1\n2\nfast\n"), good], "nan.txt line 3: 'fast' is not a number"),
            ([os.path.join(self.d, "missing.txt"), good], "missing.txt: no such file"),
            ([write(self.d, "empty.txt", "\n\n"), good], "empty.txt: empty: no samples"),
            ([write(self.d, "x.csv", "a,b\n1,2\n"), good], "several fields: for CSV name the column"),
            ([write(self.d, "y.csv", "a,b\n1,2\n"), write(self.d, "z.csv", "a,b\n1,2\n"),
              "--column", "c"], "no column 'c'; its columns are: a, b"),
            ([write(self.d, "y2.csv", "a,b\n1,x\n"), write(self.d, "z2.csv", "a,b\n1,2\n"),
              "--column", "b"], "y2.csv line 2, column b: 'x' is not a number"),
            ([write(self.d, "b.json", "{\"status\": \"success\", "), good], "b.json: not valid JSON"),
            ([write(self.d, "e.json", json.dumps({"status": "error", "errorType": "bad_data",
                                                   "error": "parse error"})), good],
             "Prometheus answered an error: bad_data: parse error"),
            ([write(self.d, "s.json", json.dumps({"status": "success", "data": {
                "resultType": "scalar", "result": [1, "2"]}})), good], "resultType 'scalar'"),
            ([write(self.d, "o.json", json.dumps({"foo": 1})), good], "no data.result"),
            ([write(self.d, "m.json", prom([({"instance": "a"}, [1, 2])])), good,
              "--series", "instance=zz"], "no series matches --series instance=zz"),
            ([write(self.d, "p.json", prom([({"instance": "a"}, [[1, 2]])])), good],
             "is not a number"),
            ([good, good, "--alpha", "1.5"], "--alpha must be between 0 and 1"),
            ([good, good, "--min-effect", "-1"], "--min-effect is a percentage"),
            ([self.d, good], "is a directory"),
        ]
        for args, words in bad:
            with self.subTest(words):
                code, out, err = self.run_cli(*args)
                self.assertEqual(code, 64, err)
                self.assertIn(words, err)
                self.assertNotIn("Traceback", err)

