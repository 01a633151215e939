import math

import numpy as np
import pytest
from scipy import stats as st

from traitbench.stats import (
    Rate, bootstrap_ci, cluster_bootstrap_rate, diff_ci_bootstrap, mean_ci, min_detectable_effect,
    permutation_test, two_proportion_test, welch_t, wilson_ci,
)


def test_wilson_known_values():
    assert wilson_ci(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    lo, hi = wilson_ci(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson_ci(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_ci(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_ci(3, 2)


def test_rate():
    r = Rate.from_hits([True, False, True, False, True, False, True, False, True, False])
    assert (r.k, r.n, r.rate, r.method) == (5, 10, 0.5, "wilson")
    assert r.ci95 == wilson_ci(5, 10)
    d = r.to_dict()
    assert d["k"] == 5 and d["n"] == 10 and d["rate"] == 0.5 and d["ci95"] == list(wilson_ci(5, 10))
    empty = Rate(0, 0)
    assert math.isnan(empty.rate) and empty.to_dict()["rate"] is None and empty.ci95 == (0.0, 1.0)


def test_bootstrap_ci_flat_and_clustered():
    assert bootstrap_ci([2.0] * 7) == (2.0, 2.0)
    lo, hi = bootstrap_ci([1, 2, 3, 4, 5, 6, 7, 8], seed=1)
    assert 1 < lo < 4.5 < hi < 8
    assert bootstrap_ci([1, 2, 3, 4], seed=3) == bootstrap_ci([1, 2, 3, 4], seed=3)
    # clusters are resampled whole: pooled means of {A,A}=1, {A,B}=2/3, {B,B}=0
    assert bootstrap_ci([[1, 1], [0]], n_boot=500) == (0.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_cluster_bootstrap_rate_is_wider_than_wilson_for_clustered_hits():
    clusters = [[True] * 10] * 10 + [[False] * 10] * 10
    r = cluster_bootstrap_rate(clusters, seed=0)
    assert (r.k, r.n, r.rate, r.method) == (100, 200, 0.5, "cluster-bootstrap")
    wlo, whi = wilson_ci(100, 200)
    assert r.ci95[0] < wlo and r.ci95[1] > whi
    assert cluster_bootstrap_rate([[True, False]] * 5).ci95 == (0.5, 0.5)
    assert cluster_bootstrap_rate([]).ci95 == (0.0, 1.0)


def test_two_proportion_newcombe_and_fisher():
    # Newcombe (1998) method 10 example: 56/70 vs 48/80 -> 0.2 (0.0524, 0.3339)
    c = two_proportion_test(56, 70, 48, 80)
    assert c.diff == pytest.approx(0.2)
    assert c.ci95 == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert c.p_value == pytest.approx(st.fisher_exact([[56, 14], [48, 32]]).pvalue)
    # Fisher's tea-tasting table
    assert two_proportion_test(3, 4, 1, 4).p_value == pytest.approx(0.4857, abs=1e-4)
    diff, ci, p = two_proportion_test(0, 100, 0, 100)
    assert diff == 0 and p == 1.0 and ci[0] < 0 < ci[1]
    assert math.isnan(two_proportion_test(0, 0, 1, 2).p_value)


def test_welch_t_hand_computed():
    # means 2 and 5, variances 1 and 1, n=3 each: t = -3/sqrt(2/3), df = 4
    assert welch_t([1, 2, 3], [4, 5, 6]) == pytest.approx(2 * st.t.sf(3 / math.sqrt(2 / 3), 4))
    assert math.isnan(welch_t([1], [2, 3]))


def test_permutation_test_exact():
    # 20 splits of 6 values into 3+3; only the two extreme splits reach |diff| = 3
    assert permutation_test([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert permutation_test([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(permutation_test([], [1.0]))


def test_mean_ci_hand_computed():
    m, lo, hi = mean_ci([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)  # t_{0.975,4} * sd / sqrt(n)
    assert m == 3 and lo == pytest.approx(3 - half, abs=1e-5) and hi == pytest.approx(3 + half, abs=1e-5)
    one = mean_ci([4.0])
    assert one.mean == 4.0 and math.isnan(one.lo) and math.isnan(one.hi)
    assert all(math.isnan(x) for x in mean_ci([]))


def test_diff_ci_bootstrap():
    a = np.array([0.3, -1.2, 2.0, 0.7])
    r = diff_ci_bootstrap(a + 0.5, a)
    assert r.mean == pytest.approx(0.5) and r.lo == pytest.approx(0.5) and r.hi == pytest.approx(0.5)
    r = diff_ci_bootstrap([1, 2, 3, 4, 5, 6], [0, 0, 0], paired=False, seed=2)
    assert r.mean == pytest.approx(3.5) and r.lo < 3.5 < r.hi
    with pytest.raises(ValueError):
        diff_ci_bootstrap([1, 2], [1])
    assert math.isnan(diff_ci_bootstrap([], []).mean)


def test_min_detectable_effect_hand_computed():
    # z_.975 + z_.8 = 1.959964 + 0.841621; h = 2.801585 * sqrt(2/100) = 0.396203
    # p1 = sin(asin(sqrt(0.1)) + h/2)^2 = sin(0.321751 + 0.198102)^2 = 0.246763
    assert min_detectable_effect(0.1, 100, 100) == pytest.approx(0.146763, abs=1e-5)
    assert min_detectable_effect(0.1, 5000, 5000) < min_detectable_effect(0.1, 500, 500)
    assert min_detectable_effect(0.99, 5, 5) == math.inf
    with pytest.raises(ValueError):
        min_detectable_effect(0.1, 0, 10)
