"""Intervals over seeds, verdict rules and selection stability."""
import numpy as np

LEVEL = 0.95


def mean_ci(x, level: float = LEVEL, n_boot: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-seed values with a percentile-bootstrap interval over seeds.

    The resampling stream is fixed (seed 0) so the same results always give the
    same interval. With one value the interval is that value.
    """
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (np.nan, np.nan, np.nan)
    if x.size == 1 or np.all(x == x[0]):
        return (float(x.mean()), float(x.min()), float(x.max()))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
    a = (1 - level) / 2
    return (float(x.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def boot_ci(stat, n: int, level: float = LEVEL, n_boot: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """A statistic of n seeds with a percentile-bootstrap interval over seeds.

    stat(idx) computes the statistic on the seeds idx (an index array, with
    repeats); replicates that come out nan are dropped. Fixed stream, like mean_ci.
    """
    rng = np.random.default_rng(seed)
    boots = np.array([stat(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=float)
    boots = boots[~np.isnan(boots)]
    value = float(stat(np.arange(n)))
    if boots.size == 0:
        return (value, np.nan, np.nan)
    a = (1 - level) / 2
    return (value, float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a)))


def diff_ci(a, b, level: float = LEVEL, n_boot: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """mean(a) - mean(b) for two independent groups of seeds, each resampled on its own."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    boots = (a[rng.integers(0, a.size, (n_boot, a.size))].mean(axis=1)
             - b[rng.integers(0, b.size, (n_boot, b.size))].mean(axis=1))
    q = (1 - level) / 2
    return (float(a.mean() - b.mean()), float(np.quantile(boots, q)), float(np.quantile(boots, 1 - q)))


def verdict(lo: float, hi: float, threshold: float = 0.0, claimed: str = ">") -> str:
    """supported / refuted / inconclusive from an interval and the claimed side.

    claimed ">" means the claim says the statistic exceeds the threshold.
    """
    if np.isnan(lo) or np.isnan(hi):
        return "inconclusive"
    above, below = lo > threshold, hi < threshold
    if claimed == "<":
        above, below = below, above
    if above:
        return "supported"
    if below:
        return "refuted"
    return "inconclusive"


def nogueira_stability(selected) -> float:
    """Nogueira, Sechidis & Brown (2018) stability of a feature selector.

    `selected` is a [resamples, features] 0/1 matrix. 1 = identical selections,
    ~0 = as stable as random selections of the same size. Undefined (nan) when
    every resample keeps all features or none.
    """
    z = np.asarray(selected, dtype=float)
    m, p = z.shape
    freq = z.mean(axis=0)
    k_bar = z.sum(axis=1).mean()
    denom = (k_bar / p) * (1 - k_bar / p)
    if m < 2 or denom <= 0:
        return float("nan")
    s2 = m / (m - 1) * freq * (1 - freq)
    return float(1 - s2.mean() / denom)
