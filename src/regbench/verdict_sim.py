"""The verdict engine, calibrated by simulation: feed it planted data and count how
often it is wrong.

Two questions, both answered with the engine's own functions (regbench.stats and
regbench.verdicts), never a re-implementation of them:

- Coverage: how often an interval over n seeds contains the true mean, for the
  percentile bootstrap, BCa and Student t, on normal and heavy-tailed per-seed
  values (`coverage_table`). It chose the t interval (README).
- Verdict error and power per rule family, at a claim's own seed count, cell count
  and noise (`family_rates`): under a planted null (no effect) any verdict but
  `inconclusive` / `equivalent` is false; under a planted effect of twice the
  smallest effect of interest, power is the share of `supported`.
"""
import zlib

import numpy as np
import pandas as pd
import scipy.stats as st

from regbench import stats, verdicts

DISTRIBUTIONS = {
    "normal": lambda r, size: r.standard_normal(size),
    # heavy tails (Student t, 5 df), scaled to unit variance
    "t5": lambda r, size: r.standard_t(5, size) / np.sqrt(5 / 3),
    # right skew (lognormal, sigma 0.5), centred and scaled to unit variance
    "skewed": lambda r, size: (r.lognormal(0, 0.5, size) - np.exp(0.125)) / np.sqrt((np.exp(0.25) - 1) * np.exp(0.25)),
}


def _percentile_ci(x, level=stats.LEVEL, n_boot=2000, seed=0):
    # the interval regbench used before: kept here only as the comparison it lost
    r = np.random.default_rng(seed)
    means = x[r.integers(0, x.size, (n_boot, x.size))].mean(axis=1)
    return x.mean(), *np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])


INTERVALS = {
    "percentile bootstrap": _percentile_ci,
    "BCa bootstrap": lambda x: stats.boot_ci(lambda i: x[i].mean(), x.size, n_boot=1000),
    "Student t": stats.mean_ci,
}


def coverage(interval: str, n: int, dist: str, reps: int = 2000, seed: int = 0) -> float:
    """Share of `reps` planted samples of n per-seed values (true mean 0) whose interval contains 0."""
    r = np.random.default_rng(seed)
    draws = DISTRIBUTIONS[dist](r, (reps, n))
    hits = [lo <= 0 <= hi for _, lo, hi in (INTERVALS[interval](x) for x in draws)]
    return float(np.mean(hits))


def coverage_table(ns=(5, 10, 20, 30), dists=tuple(DISTRIBUTIONS), intervals=tuple(INTERVALS), reps=2000) -> pd.DataFrame:
    rows = [dict(interval=i, distribution=d, seeds=n, coverage=coverage(i, n, d, reps, seed=n))
            for i in intervals for d in dists for n in ns]
    return pd.DataFrame(rows)


def task_coverage(n: int, seeds_per_task: int, task_sd: float, seed_sd: float = 1.0, reps: int = 2000,
                  seed: int = 0) -> float:
    """Coverage of the t interval over n per-seed values for the mean over tasks, when seeds
    come in tasks of `seeds_per_task` (a task shared by its seeds adds task_sd to all of
    them). One task per seed (regbench's neural studies) keeps seeds independent; all
    seeds in one task (one teacher per root seed) covers that task's effect, not the
    population's."""
    r = np.random.default_rng(seed)
    tasks = -(-n // seeds_per_task)
    task_effect = np.repeat(task_sd * r.standard_normal((reps, tasks)), seeds_per_task, axis=1)[:, :n]
    draws = task_effect + seed_sd * r.standard_normal((reps, n))
    return float(np.mean([lo <= 0 <= hi for _, lo, hi in map(stats.mean_ci, draws)]))


def _seeds(r, shape, sd: float, overlap: float) -> np.ndarray:
    """Per-seed noise whose spread across seeds is sd: independent (overlap 0), or sharing a
    common term as re-splits of one data set do, sized so that the mean's variance is
    sd^2 (1/n + overlap), what the corrected resampled t assumes (stats.mean_ci)."""
    noise = sd * r.standard_normal(shape)
    return noise if overlap == 0 else noise + sd * np.sqrt(overlap) * r.standard_normal((*shape[:-1], 1))


def _planted_cells(r, n: int, cells: int, effect: float, sd: float, overlap: float = 0.0) -> dict:
    """Per-seed values of `cells` regimes sharing n seeds: a seed effect common to the cells plus cell noise."""
    shared = _seeds(r, (n,), sd / np.sqrt(2), overlap)
    return {f"c{k}": pd.Series(effect + shared + _seeds(r, (n,), sd / np.sqrt(2), overlap)) for k in range(cells)}


def family_verdict(family: str, r, n: int, cells: int, effect: float, sd: float, sesoi: float | None,
                   overlap: float = 0.0) -> str:
    """The verdict the engine gives one planted data set of a rule family (claimed side: '>');
    overlap: seeds that are re-splits, planted correlated and judged with the corrected t."""
    if family == "paired":
        x = effect + _seeds(r, (n,), sd, overlap)
        _, lo, hi = stats.mean_ci(x, overlap=overlap)
        return verdicts.decide(lo, hi, ">", 0.0, sesoi)
    if family == "regimes":
        return verdicts.regimes(_planted_cells(r, n, cells, effect, sd, overlap), ">", 0.0, sesoi, overlap=overlap)[0]["verdict"]
    raise ValueError(f"unknown rule family {family!r}; known: paired, regimes")


WRONG_UNDER_NULL = ("supported", "refuted", "conditional")


def _planted(family: str, r, reps: int, n: int, cells: int, effect: float, sd: float, overlap: float) -> np.ndarray:
    """reps planted data sets at once, as _planted_cells / family_verdict draw one:
    [reps, n] (paired) or [reps, cells, n] (regimes)."""
    if family == "paired":
        return effect + _seeds(r, (reps, n), sd, overlap)
    shared = _seeds(r, (reps, 1, n), sd / np.sqrt(2), overlap)
    return effect + shared + _seeds(r, (reps, cells, n), sd / np.sqrt(2), overlap)


def _t(x: np.ndarray, overlap: float):
    """mean_ci's interval (and t statistic) over the last axis, for many data sets at once."""
    n = x.shape[-1]
    m, sd = x.mean(axis=-1), x.std(axis=-1, ddof=1)
    se = sd / np.sqrt(n) if overlap == 0 else sd * np.sqrt(1.0 / n + overlap)
    half = st.t.ppf(0.5 + stats.LEVEL / 2, n - 1) * se
    return m, m - half, m + half, m / se


def _decide(lo, hi, sesoi):
    """verdicts.decide(lo, hi, '>', 0, sesoi), elementwise."""
    out = np.where(lo > 0, "supported", np.where(hi < 0, "refuted", "inconclusive")).astype(object)
    return np.where((-sesoi < lo) & (hi < sesoi), "equivalent", out)


def family_verdicts(family: str, x: np.ndarray, sesoi: float, overlap: float = 0.0) -> np.ndarray:
    """family_verdict for many planted data sets at once (x from _planted), the same
    arithmetic vectorized: the engine's calibration runs ~1,000 of them per claim, and
    one call of the engine per data set made the ledger step minutes long.
    tests/test_verdict_engine.py checks it against the engine, data set by data set."""
    if family == "paired":
        _, lo, hi, _ = _t(x, overlap)
        return _decide(lo, hi, sesoi)
    if family != "regimes":
        raise ValueError(f"unknown rule family {family!r}; known: paired, regimes")
    n, k = x.shape[-1], x.shape[1]
    _, lo, hi, tstat = _t(x, overlap)
    p = np.concatenate([st.t.sf(tstat, n - 1), st.t.cdf(tstat, n - 1)], axis=1)  # claimed side, then the other
    order = np.argsort(p, axis=1, kind="stable")  # Holm over the 2k tests of each data set (stats.holm)
    steps = np.minimum(1.0, (2 * k - np.arange(2 * k)) * np.take_along_axis(p, order, axis=1))
    adj = np.empty_like(p)
    np.put_along_axis(adj, order, np.maximum.accumulate(steps, axis=1), axis=1)
    holds = adj[:, :k] < 1 - stats.LEVEL
    fails = ~holds & (adj[:, k:] < 1 - stats.LEVEL)
    _, plo, phi, _ = _t(x.mean(axis=1), overlap)  # each seed's mean over the cells
    return np.where(holds.any(axis=1) & fails.any(axis=1), "conditional", _decide(plo, phi, sesoi))


def family_rates(family: str, n: int, cells: int = 1, sd: float = 1.0, sesoi: float = 0.5, reps: int = 1000,
                 seed: int = 0, overlap: float = 0.0) -> dict:
    """False-verdict rate under a planted null and power at twice the smallest effect of interest."""
    r = np.random.default_rng(seed)
    null = family_verdicts(family, _planted(family, r, reps, n, cells, 0.0, sd, overlap), sesoi, overlap)
    alt = family_verdicts(family, _planted(family, r, reps, n, cells, 2 * sesoi, sd, overlap), sesoi, overlap)
    return dict(family=family, seeds=n, cells=cells, sd=sd, sesoi=sesoi, reps=reps,
                false_rate=float(np.mean(np.isin(null, WRONG_UNDER_NULL))),
                false_supported=float(np.mean(null == "supported")),
                power=float(np.mean(alt == "supported")))


def claim_calibration(ledger: pd.DataFrame, reps: int = 1000) -> pd.DataFrame:
    """The engine's error rates at each claim's own operating point: its rule family,
    seed count, cell count, smallest effect of interest and the per-seed sd it measured.
    Rules the simulation does not cover (exactness checks, ranges, bootstrap statistics)
    are listed with no rates."""
    rows = []
    for r in ledger.itertuples():
        covered = r.family in ("paired", "regimes") and all(np.isfinite([r.n, r.sd, r.sesoi])) and r.n >= 2 and r.sesoi > 0
        out = dict(id=r.id, family=r.family or "not simulated", seeds=r.n, cells=r.cells, sd=r.sd, sesoi=r.sesoi)
        if covered:
            seed = zlib.crc32(r.id.encode())  # its own planted data per claim, the same every run
            overlap = float(getattr(r, "overlap", 0.0)) if np.isfinite(getattr(r, "overlap", 0.0)) else 0.0
            rates = family_rates(r.family, int(r.n), int(r.cells), float(r.sd) or 1e-12, float(r.sesoi), reps, seed,
                                 overlap)
            # Monte Carlo error of the rate: a rate counts as above its 5% goal only beyond 2 of these
            out |= dict(false_rate=rates["false_rate"], false_rate_se=np.sqrt(0.05 * 0.95 / reps), power=rates["power"])
        rows.append(out)
    return pd.DataFrame(rows)


def to_markdown(cal: pd.DataFrame) -> str:
    fmt = lambda v, f: "" if pd.isna(v) else format(v, f)  # noqa: E731
    lines = ["| ID | rule family | seeds | cells | per-seed sd | smallest effect | false-verdict rate | power at 2x |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r.id} | {r.family} | {fmt(r.seeds, '.0f')} | {fmt(r.cells, '.0f')} | {fmt(r.sd, '.3g')} | {fmt(r.sesoi, '.3g')} | "
              f"{fmt(getattr(r, 'false_rate', np.nan), '.1%')} | {fmt(getattr(r, 'power', np.nan), '.0%')} |" for r in cal.itertuples()]
    return "\n".join(lines) + "\n"
