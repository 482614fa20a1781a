"""Summaries of tidy result tables."""
import pandas as pd

from regbench.stats import mean_ci

# Per-feature rows (coefficients, selection frequencies) stay in the parquet
# table; the CSV summary is for the numbers a reader looks up.
PER_FEATURE = "feature"


def select(table: pd.DataFrame, metric: str, **equal) -> pd.DataFrame:
    """Rows of one metric, optionally with columns equal to given values."""
    rows = table[table.metric == metric]
    for column, value in equal.items():
        rows = rows[rows[column] == value]
    return rows


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


def chosen_hyperparameters(table: pd.DataFrame) -> pd.DataFrame:
    """Per method (and sweep cell): the tuned lambda and l1_ratio, mean and range over seeds."""
    rows = table[table.metric.isin(["lam", "l1_ratio"])]
    keys = [c for c in rows.columns if c not in ("experiment", "seed", "value", "metric", PER_FEATURE, "group", "block")]
    keys = [k for k in keys if rows[k].notna().any()]
    out = rows.groupby(keys + ["metric"], dropna=False).value.agg(["mean", "min", "max"]).unstack("metric")
    out = out[[(stat, m) for m in ("lam", "l1_ratio") for stat in ("mean", "min", "max")]]
    out.columns = [f"{m}_{stat}" for stat, m in out.columns]
    return out.reset_index()


def to_markdown(df: pd.DataFrame) -> str:
    """A small DataFrame as a markdown table (3 significant digits)."""
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"
