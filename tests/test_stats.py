import numpy as np

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
