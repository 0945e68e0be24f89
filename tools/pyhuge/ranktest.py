"""Rank statistics for two independent samples, in the standard library
only: the two-sided Mann-Whitney U test (exact without ties for samples
under 50, as R's wilcox.test does; else the normal approximation with the
tie correction and a continuity correction, as scipy.stats.mannwhitneyu and
R do), the Hodges-Lehmann estimate of the shift and its distribution-free
confidence interval (the order statistics of the pairwise differences that
the Mann-Whitney null distribution picks, as R's wilcox.test conf.int and
Kayenta do).

The shift is treatment minus control: positive when the treatment's
values are larger. The pairwise differences are never all held in memory:
the k-th smallest is found by bisection on its value, counting with two
pointers over the sorted samples."""
import math

EXACT_BELOW = 50  # R: exact when both samples are under 50 and nothing ties


def normal_cdf(z):
    """P(Z <= z) for a standard normal Z (statistics.NormalDist is 3.8+)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def normal_quantile(p):
    """The z with normal_cdf(z) = p, 0 < p < 1, by bisection to the last bit."""
    lo, hi = -40.0, 40.0
    while True:
        mid = (lo + hi) / 2.0
        if mid in (lo, hi):
            return mid
        if normal_cdf(mid) < p:
            lo = mid
        else:
            hi = mid


def ranks(values):
    """Average ranks (1-based) and the tie groups' sizes."""
    order = sorted(range(len(values)), key=values.__getitem__)
    r = [0.0] * len(values)
    ties = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        if j > i:
            ties.append(j - i + 1)
        i = j + 1
    return r, ties


def u_distribution(m, n):
    """Counts of each U = 0..m*n over the C(m+n, m) equally likely
    arrangements: the coefficients of the Gaussian binomial [m+n, m]_q,
    prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)."""
    c = [0] * (m * n + 1)
    c[0] = 1
    deg = 0
    for i in range(1, m + 1):
        # times (1 - q^(n+i)), highest first so each term is read unchanged
        for k in range(min(deg + n + i, m * n), n + i - 1, -1):
            c[k] -= c[k - n - i]
        deg += n + i
        # divided by (1 - q^i): a running sum with step i (exact: the
        # quotient is a polynomial)
        for k in range(i, m * n + 1):
            c[k] += c[k - i]
        deg -= i
    return c


def exact_cdf(m, n):
    """P(U <= u) for u = 0..m*n under the null, as exact fractions' floats."""
    counts = u_distribution(m, n)
    total = sum(counts)  # C(m + n, m)
    out, run = [], 0
    for c in counts:
        run += c
        out.append(run / total)
    return out


def _normal_sd(m, n, ties):
    N = m + n
    t = sum(g ** 3 - g for g in ties)
    var = m * n / 12.0 * ((N + 1) - t / (N * (N - 1))) if N > 1 else 0.0
    return math.sqrt(max(var, 0.0))


def mann_whitney(control, treatment, method="auto"):
    """{'u': U of the control sample (scipy's U1), 'p': two-sided p-value,
    'method': 'exact' or 'normal', 'ties': bool}."""
    m, n = len(control), len(treatment)
    if m == 0 or n == 0:
        raise ValueError("both samples need values")
    r, ties = ranks(list(control) + list(treatment))
    u1 = sum(r[:m]) - m * (m + 1) / 2.0
    if method == "auto":
        method = "exact" if not ties and m < EXACT_BELOW and n < EXACT_BELOW else "normal"
    big = max(u1, m * n - u1)
    if method == "exact":
        if ties:
            raise ValueError("the exact distribution holds only without ties")
        cdf = exact_cdf(m, n)
        # P(U >= big) = P(U <= m*n - big) by symmetry
        p = 2.0 * cdf[int(round(m * n - big))]
    else:
        sd = _normal_sd(m, n, ties)
        if sd == 0:
            p = 1.0
        else:
            z = (big - m * n / 2.0 - 0.5) / sd
            p = 2.0 * normal_cdf(-z)
    return {"u": u1, "p": min(1.0, p), "method": method, "ties": bool(ties)}


# ---- the pairwise differences treatment - control, in order ----------------

def count_at_most(xs, ys, t):
    """#{(i, j): ys[j] - xs[i] <= t}, xs and ys sorted ascending."""
    total, j = 0, 0
    for x in xs:  # y - x <= t holds for a prefix of ys that grows with x
        while j < len(ys) and ys[j] - x <= t:
            j += 1
        total += j
    return total


def _window(xs, ys, lo, hi):
    """Every difference d with lo < d <= hi."""
    out = []
    jlo = jhi = 0
    for x in xs:
        while jlo < len(ys) and ys[jlo] - x <= lo:
            jlo += 1
        while jhi < len(ys) and ys[jhi] - x <= hi:
            jhi += 1
        out.extend(ys[j] - x for j in range(jlo, jhi))
    return out


def kth_difference(xs, ys, k, window=20000):
    """The k-th smallest (1-based) of ys[j] - xs[i], both sorted ascending."""
    mn = len(xs) * len(ys)
    if not 1 <= k <= mn:
        raise ValueError("k out of range")
    lo = ys[0] - xs[-1] - 1.0  # fewer than k at or below lo (none)
    hi = ys[-1] - xs[0]        # all at or below hi
    c_lo, c_hi = 0, mn
    while c_hi - c_lo > window:
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            break  # no float between: the rest are equal values
        c = count_at_most(xs, ys, mid)
        if c >= k:
            hi, c_hi = mid, c
        else:
            lo, c_lo = mid, c
    # lo < answer <= hi, and (lo, hi] holds c_hi - c_lo differences
    if c_hi - c_lo > window:
        # the bisection ran out of floats: every difference in (lo, hi] is
        # the one value hi (it can only be a single float)
        return hi
    found = sorted(_window(xs, ys, lo, hi))
    return found[k - c_lo - 1]


def hodges_lehmann(control, treatment, alpha=0.05, method="auto"):
    """{'shift': median of the pairwise differences treatment - control,
    'low', 'high': the 1 - alpha interval, 'confidence': what the interval
    achieves (less than 1 - alpha when the samples are too small)}."""
    xs, ys = sorted(control), sorted(treatment)
    m, n = len(xs), len(ys)
    mn = m * n
    if mn % 2:
        shift = kth_difference(xs, ys, (mn + 1) // 2)
    else:
        shift = (kth_difference(xs, ys, mn // 2) + kth_difference(xs, ys, mn // 2 + 1)) / 2.0
    _, ties = ranks(xs + ys)
    if method == "auto":
        method = "exact" if not ties and m < EXACT_BELOW and n < EXACT_BELOW else "normal"
    # A shift d is inside the interval when the test of control + d against
    # treatment does not reject; between the k-th and (k+1)-th differences
    # that test sees U = k. So the bounds are the k-th and (mn+1-k)-th
    # differences for the smallest k the test accepts.
    if method == "exact":
        cdf = exact_cdf(m, n)
        k = next((u for u in range(mn + 1) if 2 * cdf[u] > alpha), mn)
    else:
        # ties within each sample stay at any shift; ties across go
        _, own = ranks(xs)
        _, own_y = ranks(ys)
        sd = _normal_sd(m, n, own + own_y)
        z = normal_quantile(1 - alpha / 2)
        k = math.floor(mn / 2.0 - z * sd - 0.5) + 1
    # k = 1 takes the extreme differences: samples too small for 1 - alpha
    # (R clamps the same way and warns)
    k = max(1, min(k, (mn + 1) // 2))
    if method == "exact":
        confidence = 1 - 2 * cdf[k - 1]
    elif sd:
        # what the normal approximation says U = k - 1 (just outside) rejects at
        confidence = 1 - 2 * normal_cdf(-((mn / 2.0 - (k - 1)) - 0.5) / sd)
    else:
        confidence = 0.0
    low = kth_difference(xs, ys, k)
    high = kth_difference(xs, ys, mn + 1 - k)
    return {"shift": shift, "low": low, "high": high, "confidence": max(0.0, confidence),
            "method": method}
