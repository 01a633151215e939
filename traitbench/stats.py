"""Confidence intervals, tests and power for trait rates and per-seed / per-question comparisons.

Conventions: intervals are two-sided at `conf` (default 95%); an undefined quantity is NaN, never an
exception, so a report with an empty cell still renders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np
from scipy import optimize
from scipy import stats as st

NAN = float("nan")


def _z(conf: float) -> float:
    return float(st.norm.ppf(0.5 + conf / 2))


def wilson_ci(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n == 0."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z, p = _z(conf), k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Rate:
    """k hits out of n with a 95% interval (Wilson unless another method supplied it)."""

    k: int
    n: int
    ci95: tuple[float, float] | None = None
    method: str = "wilson"

    def __post_init__(self) -> None:
        if self.ci95 is None:
            object.__setattr__(self, "ci95", wilson_ci(self.k, self.n))

    @classmethod
    def from_hits(cls, hits: Sequence[bool]) -> Rate:
        return cls(int(sum(bool(h) for h in hits)), len(hits))

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else NAN

    def to_dict(self) -> dict:
        return {"k": self.k, "n": self.n, "rate": None if self.n == 0 else self.rate,
                "ci95": list(self.ci95), "ci_method": self.method}


def _percentile_ci(samples: np.ndarray, conf: float) -> tuple[float, float]:
    lo, hi = np.nanpercentile(samples, [50 * (1 - conf), 50 * (1 + conf)])
    return float(lo), float(hi)


def bootstrap_ci(
    values: Sequence[float] | Sequence[Sequence[float]],
    stat: Callable[[np.ndarray], float] = np.mean,
    n_boot: int = 2000,
    conf: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat`.

    Flat `values` resample single values. A sequence of sequences is treated as clusters (e.g. the
    answers to one question): whole clusters are resampled and `stat` is applied to their pooled values.
    No data gives (nan, nan).
    """
    if len(values) == 0:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    clustered = isinstance(values[0], (list, tuple, np.ndarray))
    groups = [np.asarray(v, dtype=float) for v in values] if clustered else None
    flat = None if clustered else np.asarray(values, dtype=float)
    m = len(values)
    out = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, m, m)
        out[b] = stat(np.concatenate([groups[i] for i in idx]) if clustered else flat[idx])
    return _percentile_ci(out, conf)


def cluster_bootstrap_rate(hits_by_cluster: Sequence[Sequence[bool]], n_boot: int = 2000, seed: int = 0) -> Rate:
    """Pooled hit rate with a 95% bootstrap interval that resamples clusters (questions), not answers.

    Use it when answers to the same question are correlated: the interval is then wider than Wilson's.
    """
    k = np.array([sum(bool(h) for h in c) for c in hits_by_cluster], dtype=float)
    n = np.array([len(c) for c in hits_by_cluster], dtype=float)
    total_k, total_n = int(k.sum()), int(n.sum())
    if total_n == 0:
        return Rate(0, 0, (0.0, 1.0), "cluster-bootstrap")
    idx = np.random.default_rng(seed).integers(0, len(k), (n_boot, len(k)))
    kb, nb = k[idx].sum(axis=1), n[idx].sum(axis=1)
    rates = np.divide(kb, nb, out=np.full(n_boot, np.nan), where=nb > 0)
    return Rate(total_k, total_n, _percentile_ci(rates, 0.95), "cluster-bootstrap")


class Comparison(NamedTuple):
    """Difference of two proportions (first minus second), its 95% interval and a two-sided p-value."""

    diff: float
    ci95: tuple[float, float]
    p_value: float


def two_proportion_test(k1: int, n1: int, k2: int, n2: int) -> Comparison:
    """p1 - p2 with Newcombe's hybrid-score interval (from two Wilson intervals) and Fisher's exact p.

    Fisher's exact test is used at every sample size (it is fast at 10^4 answers and valid when counts
    are small). Either n == 0 gives NaNs.
    """
    if n1 == 0 or n2 == 0:
        return Comparison(NAN, (NAN, NAN), NAN)
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson_ci(k1, n1), wilson_ci(k2, n2)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    p = st.fisher_exact([[k1, n1 - k1], [k2, n2 - k2]], alternative="two-sided").pvalue
    return Comparison(d, (lo, hi), float(p))


def welch_t(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p of Welch's unequal-variance t-test on mean(a) - mean(b); NaN with < 2 values a side."""
    if len(a) < 2 or len(b) < 2:
        return NAN
    return float(st.ttest_ind(a, b, equal_var=False).pvalue)


def permutation_test(a: Sequence[float], b: Sequence[float], n_resamples: int = 20000, seed: int = 0) -> float:
    """Two-sided p of the difference in means under relabelling of a and b.

    Exact (all splits enumerated) when there are at most `n_resamples` splits, e.g. 8 vs 8 seeds
    (12,870); Monte Carlo otherwise. NaN when either side is empty.
    """
    if len(a) == 0 or len(b) == 0:
        return NAN
    res = st.permutation_test(
        (np.asarray(a, float), np.asarray(b, float)),
        lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
        permutation_type="independent", alternative="two-sided", vectorized=True,
        n_resamples=n_resamples, rng=np.random.default_rng(seed),
    )
    return float(res.pvalue)


class MeanCI(NamedTuple):
    mean: float
    lo: float
    hi: float


def mean_ci(values: Sequence[float], conf: float = 0.95) -> MeanCI:
    """Mean with Student-t interval mean ± t_{n-1} * sd / sqrt(n); n == 1 gives NaN bounds, n == 0 all NaN."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return MeanCI(NAN, NAN, NAN)
    m = float(x.mean())
    if x.size == 1:
        return MeanCI(m, NAN, NAN)
    half = float(st.t.ppf(0.5 + conf / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return MeanCI(m, m - half, m + half)


def diff_ci_bootstrap(
    a: Sequence[float], b: Sequence[float], paired: bool = True, n_boot: int = 2000, conf: float = 0.95,
    seed: int = 0,
) -> MeanCI:
    """mean(a) - mean(b) with a percentile bootstrap interval (e.g. Δlog P of the trait token).

    paired=True resamples items (questions) and needs len(a) == len(b); otherwise a and b are resampled
    independently. For a t interval on paired data use mean_ci(a - b).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size == 0 or y.size == 0:
        return MeanCI(NAN, NAN, NAN)
    rng = np.random.default_rng(seed)
    if paired:
        if x.size != y.size:
            raise ValueError(f"paired samples differ in length: {x.size} vs {y.size}")
        d = x - y
        boot = d[rng.integers(0, d.size, (n_boot, d.size))].mean(axis=1)
    else:
        boot = (x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
                - y[rng.integers(0, y.size, (n_boot, y.size))].mean(axis=1))
    return MeanCI(float(x.mean() - y.mean()), *_percentile_ci(boot, conf))


class PairedDelta(NamedTuple):
    """Mean per-item difference a − b, its 95% paired bootstrap interval, the number of pairs and a t-test p."""

    delta: float
    lo: float
    hi: float
    n: int
    p_value: float


def paired_delta(a: Sequence[float], b: Sequence[float], seed: int = 0) -> PairedDelta:
    """Mean per-item difference a − b (e.g. per-question Δlog P of the trait word) with a paired bootstrap
    95% interval (diff_ci_bootstrap) and a two-sided paired t-test p (NaN with < 2 pairs or no variation)."""
    ci = diff_ci_bootstrap(a, b, paired=True, seed=seed)
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    p = float(st.ttest_1samp(d, 0.0).pvalue) if len(d) > 1 and d.std() > 0 else NAN
    return PairedDelta(float(d.mean()) if d.size else NAN, ci.lo, ci.hi, int(d.size), p)


def min_detectable_effect(p0: float, n1: int, n2: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest rise p1 - p0 that a two-sided two-proportion test detects with the given power.

    Arcsine (Cohen's h) approximation: h = (z_{1-alpha/2} + z_power) * sqrt(1/n1 + 1/n2) and
    p1 = sin(asin(sqrt(p0)) + h/2)^2. Returns inf when even p1 = 1 would not reach that power.
    """
    if not 0 <= p0 <= 1 or n1 <= 0 or n2 <= 0:
        raise ValueError("need 0 <= p0 <= 1 and positive sample sizes")
    h = (_z(1 - alpha) + float(st.norm.ppf(power))) * math.sqrt(1 / n1 + 1 / n2)
    phi1 = math.asin(math.sqrt(p0)) + h / 2
    if phi1 > math.pi / 2:
        return math.inf
    return math.sin(phi1) ** 2 - p0


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1); None/NaN stay None and do
    not count towards the number of tests."""
    idx = [i for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (len(idx) - rank) * p_values[i]))
        out[i] = running
    return out


def paired_t_mde(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference a two-sided paired t-test over n pairs detects with `power` when the
    differences have standard deviation `sd` (exact, by the noncentral t). NaN when n < 2 or sd undefined."""
    if n < 2 or not math.isfinite(sd):
        return NAN
    if sd == 0:
        return 0.0
    df, crit = n - 1, float(st.t.ppf(1 - alpha / 2, n - 1))

    def pw(delta: float) -> float:
        ncp = delta * math.sqrt(n) / sd
        v = float(st.nct.sf(crit, df, ncp) + st.nct.cdf(-crit, df, ncp))
        return v if math.isfinite(v) else 1.0  # scipy's noncentral t gives NaN far in the tail, where power is 1

    hi = sd
    while pw(hi) < power:
        hi *= 2
    return float(optimize.brentq(lambda d: pw(d) - power, 0.0, hi, xtol=1e-9 * sd))


def seed_level_test(trait: Sequence[float], control: Sequence[float], alpha: float = 0.05,
                    power: float = 0.8) -> dict:
    """The effect of training on trait data, over training seeds: per seed, the trait student's value
    minus its paired control student's (same seed); their mean with a t interval, a two-sided paired
    t-test p (NaN with < 2 seeds or no variation) and the minimum detectable effect at `alpha`/`power`."""
    if len(trait) != len(control):
        raise ValueError(f"paired seeds differ in number: {len(trait)} vs {len(control)}")
    d = np.asarray(trait, dtype=float) - np.asarray(control, dtype=float)
    m = mean_ci(d)
    sd = float(d.std(ddof=1)) if d.size > 1 else NAN
    p = float(st.ttest_1samp(d, 0.0).pvalue) if d.size > 1 and sd > 0 else NAN
    return {"mean": m.mean, "ci95": [m.lo, m.hi], "p_value": p, "test": "paired t-test over training seeds",
            "n_seeds": int(d.size), "per_seed": d.tolist(), "sd": sd, "mde": paired_t_mde(sd, d.size, alpha, power)}


def mean_ci95(values: Sequence[float]) -> dict:
    """{"mean", "ci95", "n"} for JSON: Student-t interval over the values; undefined parts are None."""
    m = mean_ci(values)
    return {
        "mean": None if math.isnan(m.mean) else m.mean,
        "ci95": None if math.isnan(m.lo) else [m.lo, m.hi],
        "n": len(values),
    }


def seed_fit_test(x: Sequence[float], per_seed: np.ndarray, degree: int, test: str) -> dict:
    """Per seed (rows of `per_seed`, one value per x) the least-squares polynomial of `degree`; its leading
    coefficient (the slope, the curvature) tested over seeds (one-sample t), with `test` naming it."""
    coef = [float(np.polyfit(np.asarray(x, dtype=float), row, degree)[0]) for row in per_seed]
    return dict(seed_level_test(coef, [0.0] * len(coef)), per_seed=coef, test=test)
