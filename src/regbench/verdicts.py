"""The verdict vocabulary, in one place: how a rule registers, what it returns,
and the few ways an interval is turned into a verdict, each with one edge
convention. Study packages (regbench.studies.<study>.claims) write their rules
with these; regbench.ledger runs them.

A rule is a function tables -> dict(statistic, value, lo, hi, verdict, note);
`claim` registers it with its ID, wording, the experiments it reads and the
figure or table behind it.

Verdicts:
  supported     the effect has the claimed sign / lies in the claimed range, and
                its interval excludes the threshold / lies inside the range
  refuted       the interval lies on the other side / wholly outside the range
  conditional   supported in some regimes of a sweep and not in others
  equivalent    the interval lies inside the smallest effect of interest around the
                threshold: the effect, whatever its sign, is too small to matter
  inconclusive  the interval straddles the threshold or a range edge
  identity check  a mathematical identity, checked numerically to a tolerance
  not run       the experiment is not in this config
  not implemented  the claim is in CLAIMS.md but has no rule yet

An interval against a threshold is regbench.stats.verdict; a range, `within`; an
exactness check, `exact`; regimes of one part, `across`; parts of a claim, `worst`.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from regbench.stats import LEVEL, holm, mean_ci, t_pvalue, verdict

VERDICTS = ("supported", "refuted", "conditional", "equivalent", "inconclusive", "identity check", "not run",
            "not implemented")


@dataclass
class Claim:
    id: str
    text: str
    needs: tuple[str, ...]
    figure: str | None  # name of the figure behind the verdict (a key of some study's FIGURES)
    table: str | None   # or the experiment whose summary table is the evidence
    rule: Callable[[dict], dict]


REGISTRY: dict[str, Claim] = {}


def claim(id: str, text: str, needs, figure: str | None = None, table: str | None = None):
    """Register a verdict rule for a claim ID, with the figure (or table) behind it."""
    if (figure is None) == (table is None):
        raise ValueError(f"claim {id}: name exactly one of figure= or table= as its evidence")

    def wrap(rule):
        REGISTRY[id] = Claim(id, text, tuple(needs), figure, table, rule)
        return rule
    return wrap


def claim_parts(parts: dict, needs, figure: str, judge):
    """Register each part of a multi-part claim as a ledger row of its own.

    parts: key -> (ID, wording, deciding statistic); judge(tables, key) -> (fields, note),
    where fields holds value, lo, hi, verdict (and the calibration fields of row()), or
    None when the part was not run in this config."""
    def register(key):
        cid, text, statistic = parts[key]

        @claim(cid, text, needs, figure=figure)
        def rule(t):
            fields, note = judge(t, key)
            if fields is None:
                return row(statistic, np.nan, np.nan, np.nan, "inconclusive", note)
            return row(statistic, **fields, note=note)
        return rule

    for key in parts:
        register(key)


def row(statistic: str, value, lo, hi, verdict: str, note: str = "", sesoi: float | None = None,
        family: str = "", n: int | None = None, sd: float | None = None, cells: int = 1, overlap: float = 0.0) -> dict:
    """What a rule returns: the statistic, its value and 95% interval, the verdict, a note;
    and for the engine's calibration (regbench.verdict_sim): the smallest effect of
    interest in the statistic's units, the rule family ('paired', 'regimes', or '' for
    rules the simulation does not cover), the seed count, the per-seed sd of what
    decides, the number of cells (regimes) judged together, and the resampling overlap of
    the corrected t (0: independent seeds)."""
    return dict(statistic=statistic, value=value, lo=lo, hi=hi, verdict=verdict, note=note,
                sesoi=np.nan if sesoi is None else float(sesoi), family=family,
                n=np.nan if n is None else int(n), sd=np.nan if sd is None else float(sd), cells=int(cells),
                overlap=float(overlap))


def paired(x, claimed: str, sesoi: float, threshold: float = 0.0, overlap: float = 0.0) -> dict:
    """The interval and calibration fields of a rule decided by one set of per-seed values:
    pass as row(statistic, **paired(x, "<", SESOI), note=...). overlap: seeds that are
    re-splits of one data set get the corrected resampled t (regbench.stats.mean_ci);
    0, the default, treats them as independent."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    m, lo, hi = mean_ci(x, overlap=overlap)
    return dict(value=m, lo=lo, hi=hi, verdict=decide(lo, hi, claimed, threshold, sesoi), sesoi=sesoi, family="paired",
                n=x.size, sd=float(x.std(ddof=1)) if x.size > 1 else None, overlap=overlap)


def within(lo: float, hi: float, a: float, b: float) -> str:
    """An interval against a claimed range [a, b] (closed): supported if [lo, hi] lies
    inside it, refuted if it lies wholly outside, else inconclusive (also for NaN)."""
    if np.isnan(lo) or np.isnan(hi):
        return "inconclusive"
    if a <= lo and hi <= b:
        return "supported"
    if hi < a or lo > b:
        return "refuted"
    return "inconclusive"


def exact(errors, tol: float, gross: float) -> str:
    """An exactness check of a mathematical identity over many cases: `identity check`
    (not `supported`: an identity cannot fail, only its implementation can) if every
    error is below tol, refuted if every error exceeds gross (clearly wrong, not
    rounding), else inconclusive."""
    e = np.asarray(errors, dtype=float)
    if e.max() < tol:
        return "identity check"
    if e.min() > gross:
        return "refuted"
    return "inconclusive"


def pts(x) -> str:
    """A share as signed percentage points, one decimal."""
    return f"{100 * x:+.1f}"


def decide(lo: float, hi: float, claimed: str = ">", threshold: float = 0.0, sesoi: float | None = None) -> str:
    """One interval against the claim. `equivalent` when it lies strictly inside
    threshold +- sesoi: whatever its sign, the effect is smaller than the smallest
    effect of interest (two one-sided tests at the interval's level). Otherwise
    supported / refuted when it excludes the threshold on the claimed / the other
    side, else inconclusive (also for a missing interval)."""
    if np.isnan(lo) or np.isnan(hi):
        return "inconclusive"
    if sesoi is not None and threshold - sesoi < lo and hi < threshold + sesoi:
        return "equivalent"
    return verdict(lo, hi, threshold, claimed)


def regimes(cells: dict, claimed: str = ">", threshold: float = 0.0, sesoi: float | None = None,
            alpha: float = 1 - LEVEL, overlap: float | dict = 0.0) -> tuple[dict, pd.DataFrame]:
    """A claim measured in several regimes (sizes, rates, designs): each cell a
    pd.Series of per-seed values indexed by seed.

    Per cell, one-sided t tests on each side of the threshold; Holm's procedure
    over all 2k of them keeps the family-wise error at alpha, so a cell counts as
    holding (`supported`) or failing (`refuted`) only if it survives the
    correction. The claim's verdict:
      conditional  a holding cell and a failing cell both survive: positive
                   evidence that the effect differs between regimes
      otherwise    the pooled effect decides (decide() on each seed's mean over
                   the cells it has: paired cells average within a seed, cells
                   without shared seeds pool their values)
    Returns (summary, per-cell table); summary holds value, lo, hi, verdict and the
    calibration fields of row(), so a rule can return row(statistic, **summary, note=...).

    overlap: for seeds that are re-splits of one data set, the corrected resampled t
    (regbench.stats.mean_ci) in every test and interval: one number for every cell,
    or a dict cell -> number (a missing cell gets 0); the pooled effect takes the
    largest over the cells, the correction of its most correlated cell. 0, the
    default, treats seeds as independent.
    """
    names = list(cells)
    other = "<" if claimed == ">" else ">"
    k = len(names)
    ov = {c: float(overlap.get(c, 0.0)) if isinstance(overlap, dict) else float(overlap) for c in names}
    adj = holm([t_pvalue(cells[c], threshold, claimed, ov[c]) for c in names]
               + [t_pvalue(cells[c], threshold, other, ov[c]) for c in names])
    rows = []
    for i, c in enumerate(names):
        m, lo, hi = mean_ci(cells[c], overlap=ov[c])
        v = ("supported" if adj[i] < alpha else "refuted" if adj[k + i] < alpha
             else "equivalent" if decide(lo, hi, claimed, threshold, sesoi) == "equivalent" else "inconclusive")
        rows.append(dict(cell=c, n=int(np.isfinite(np.asarray(cells[c], dtype=float)).sum()), mean=m, lo=lo, hi=hi,
                         p_holm=adj[i], verdict=v))
    table = pd.DataFrame(rows, columns=["cell", "n", "mean", "lo", "hi", "p_holm", "verdict"])
    per_seed = pd.concat({c: pd.Series(cells[c], dtype=float) for c in names}, axis=1).mean(axis=1).dropna().to_numpy()
    pooled_overlap = max(ov.values(), default=0.0)
    m, lo, hi = mean_ci(per_seed, overlap=pooled_overlap)
    v = "conditional" if {"supported", "refuted"} <= set(table.verdict) else decide(lo, hi, claimed, threshold, sesoi)
    summary = dict(value=m, lo=lo, hi=hi, verdict=v, sesoi=sesoi, family="regimes", n=per_seed.size,
                   sd=float(per_seed.std(ddof=1)) if per_seed.size > 1 else None, cells=k, overlap=pooled_overlap)
    return summary, table


def where(table: pd.DataFrame, fmt=lambda v: f"{v:.3g}") -> str:
    """'holds at a, b; fails at c; unclear at d' for a regimes() table."""
    words = {"supported": "holds", "refuted": "fails", "equivalent": "negligible", "inconclusive": "unclear"}
    parts = []
    for v, word in words.items():
        sub = table[table.verdict == v]
        if len(sub):
            parts.append(f"{word} at " + ", ".join(f"{c} ({fmt(m)})" for c, m in zip(sub.cell, sub["mean"])))
    return "; ".join(parts)


def across(verdicts) -> str:
    """One verdict for a claim measured in several regimes (sizes, rates, cells):
    all supported -> supported; supported in some regimes (or conditional in one)
    and not in others -> conditional, the note names where; none supported but
    some refuted -> refuted; else inconclusive."""
    v = list(verdicts)
    if v and all(x == "supported" for x in v):
        return "supported"
    if "supported" in v or "conditional" in v:
        return "conditional"
    if "refuted" in v:
        return "refuted"
    return "inconclusive"


def worst(*verdicts: str) -> str:
    """Combine the verdicts of a claim's parts: the weakest decides, in the order refuted,
    equivalent (a part too small to matter), inconclusive, conditional, supported
    (an identity check counts as supported here)."""
    for v in ("refuted", "equivalent", "inconclusive", "conditional"):
        if v in verdicts:
            return v
    return "supported"
