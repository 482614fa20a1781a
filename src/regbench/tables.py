"""Summaries of tidy result tables."""
import pandas as pd

from regbench.stats import mean_ci

# Per-feature rows (coefficients, selection frequencies) stay in the parquet
# table; the CSV summary is for the numbers a reader looks up.
PER_FEATURE = "feature"


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% bootstrap interval over seeds of every metric, per setting."""
    rows = table[table[PER_FEATURE].isna()] if PER_FEATURE in table else table
    rows = rows.drop(columns=[PER_FEATURE], errors="ignore")
    keys = [c for c in rows.columns if c not in ("seed", "value")]
    out = []
    for key, g in rows.groupby(keys, dropna=False, sort=True):
        mean, lo, hi = mean_ci(g.value.to_numpy())
        out.append(dict(zip(keys, key), n_seeds=g.seed.nunique(), mean=mean, ci_low=lo, ci_high=hi))
    return pd.DataFrame(out)
