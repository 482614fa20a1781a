import numpy as np
import pytest

from regbench import stats


def test_mean_ci_is_deterministic_and_brackets_the_mean():
    x = np.random.default_rng(1).normal(3.0, 1.0, 40)
    m, lo, hi = stats.mean_ci(x)
    assert (m, lo, hi) == stats.mean_ci(x)
    assert lo < m < hi and m == x.mean()
    # the Student-t interval, exactly
    half = 2.0227 * x.std(ddof=1) / np.sqrt(x.size)  # t quantile 0.975 at 39 df
    assert abs((hi - lo) / 2 - half) < 1e-3 * half


def test_mean_ci_degenerate_cases():
    m, lo, hi = stats.mean_ci([2.0])  # one seed: no interval (never a zero-width one)
    assert m == 2.0 and np.isnan(lo) and np.isnan(hi)
    assert stats.mean_ci([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)
    assert all(np.isnan(stats.mean_ci([np.nan])))


def test_verdict_rule():
    assert stats.verdict(0.1, 0.5) == "supported"
    assert stats.verdict(-0.5, -0.1) == "refuted"
    assert stats.verdict(-0.1, 0.1) == "inconclusive"
    assert stats.verdict(-0.5, -0.1, claimed="<") == "supported"
    assert stats.verdict(0.8, 0.95, threshold=0.9) == "inconclusive"


def test_nogueira_stability_known_values():
    same = np.tile([1, 1, 0, 0, 0], (10, 1))
    assert stats.nogueira_stability(same) == 1.0
    # independent random selections of the same expected size: stability near 0
    rng = np.random.default_rng(0)
    rand = rng.random((2000, 50)) < 0.2
    assert abs(stats.nogueira_stability(rand)) < 0.02
    # hand-computed: two resamples, p = 4, selections {0,1} and {0,2}
    z = np.array([[1, 1, 0, 0], [1, 0, 1, 0]])
    # freq = (1, .5, .5, 0); s2 = 2 * f(1-f) = (0, .5, .5, 0), mean .25; k/p = .5 -> 1 - .25/.25 = 0
    assert abs(stats.nogueira_stability(z)) < 1e-12
    assert np.isnan(stats.nogueira_stability(np.ones((5, 3))))


def test_boot_ci_and_diff_ci():
    x = np.random.default_rng(2).normal(1.0, 1.0, 60)
    m, lo, hi = stats.boot_ci(lambda i: x[i].mean(), x.size)
    assert m == x.mean() and lo < m < hi
    assert (m, lo, hi) == stats.boot_ci(lambda i: x[i].mean(), x.size)
    # BCa on the mean agrees with the t interval to a few percent at 60 seeds
    _, lo2, hi2 = stats.mean_ci(x)
    assert abs((hi - lo) - (hi2 - lo2)) < 0.1 * (hi2 - lo2)
    a, b = x + 2.0, np.random.default_rng(3).normal(1.0, 1.0, 40)
    d, dlo, dhi = stats.diff_ci(a, b)
    assert d == a.mean() - b.mean() and dlo < d < dhi and dlo > 1.0
    assert np.isnan(stats.boot_ci(lambda i: np.nan, 5)[1])


# ---------------------------------------------------------------- re-split seeds: the corrected resampled t
def _equicorrelated(rho: float, J: int, reps: int, mu: float = 0.3, seed: int = 0) -> np.ndarray:
    """reps planted sets of J per-seed values that share a fraction rho of their variance
    (seeds re-split from one data set: the data set's own draw is common to all of them)."""
    r = np.random.default_rng(seed)
    return mu + np.sqrt(rho) * r.standard_normal((reps, 1)) + np.sqrt(1 - rho) * r.standard_normal((reps, J))


def test_overlap_zero_is_the_plain_t_bit_for_bit():
    x = np.random.default_rng(4).normal(0.2, 1.0, 7)
    m, lo, hi = stats.mean_ci(x)
    q = stats.st.t.ppf(0.975, 6)
    assert (m, lo, hi) == (x.mean(), x.mean() - float(q * x.std(ddof=1) / np.sqrt(7)), x.mean() + float(q * x.std(ddof=1) / np.sqrt(7)))
    assert stats.mean_ci(x, overlap=0.0) == (m, lo, hi)
    assert stats.t_pvalue(x, 0.0, ">", overlap=0.0) == stats.t_pvalue(x, 0.0, ">")


def test_overlap_widens_by_the_nadeau_bengio_factor():
    x = np.random.default_rng(5).normal(0.2, 1.0, 5)
    m, lo, hi = stats.mean_ci(x)
    m2, lo2, hi2 = stats.mean_ci(x, overlap=0.25)  # variance s^2 (1/5 + 0.25) instead of s^2 / 5
    assert m2 == m
    assert (hi2 - lo2) / (hi - lo) == pytest.approx(np.sqrt((0.2 + 0.25) / 0.2), rel=1e-12)
    # the p-value is the t test on the corrected standard error, J - 1 df
    t = (x.mean() - 0.0) / (x.std(ddof=1) * np.sqrt(0.2 + 0.25))
    assert stats.t_pvalue(x, 0.0, ">", overlap=0.25) == pytest.approx(stats.st.t.sf(t, 4), rel=1e-12)
    assert stats.t_pvalue(x, 0.0, ">", overlap=0.25) > stats.t_pvalue(x, 0.0, ">")
    with pytest.raises(ValueError):
        stats.mean_ci(x, overlap=-0.1)


def test_naive_t_undercovers_resplits_and_the_corrected_t_does_not(rho=0.3):
    """Planted: 2,000 sets of 5 seeds sharing a fraction rho of their variance. The plain t
    interval assumes independent seeds and covers the true mean far less than 95% of the
    time; the corrected resampled t with overlap = rho / (1 - rho) covers 95%, and its
    one-sided test rejects a true null at most 5% of the time (the plain one more)."""
    J, reps, mu = 5, 2000, 0.3
    x = _equicorrelated(rho, J, reps, mu, seed=int(100 * rho))
    ov = rho / (1 - rho)
    naive = np.mean([lo <= mu <= hi for _, lo, hi in (stats.mean_ci(v) for v in x)])
    fixed = np.mean([lo <= mu <= hi for _, lo, hi in (stats.mean_ci(v, overlap=ov) for v in x)])
    assert naive < 0.90, f"plain t covers {naive:.3f}"
    assert 0.93 <= fixed <= 0.97, f"corrected t covers {fixed:.3f}"
    false_naive = np.mean([stats.t_pvalue(v, mu, ">") < 0.05 for v in x])
    false_fixed = np.mean([stats.t_pvalue(v, mu, ">", overlap=ov) < 0.05 for v in x])
    assert false_fixed <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / reps) < false_naive
