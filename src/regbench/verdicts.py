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
  inconclusive  the interval straddles the threshold or a range edge
  not run       the experiment is not in this config
  not implemented  the claim is in CLAIMS.md but has no rule yet

An interval against a threshold is regbench.stats.verdict; a range, `within`; an
exactness check, `exact`; regimes of one part, `across`; parts of a claim, `worst`.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

VERDICTS = ("supported", "refuted", "conditional", "inconclusive", "not run", "not implemented")


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


def row(statistic: str, value, lo, hi, verdict: str, note: str = "") -> dict:
    """What a rule returns: the statistic, its value and 95% interval, the verdict, a note."""
    return dict(statistic=statistic, value=value, lo=lo, hi=hi, verdict=verdict, note=note)


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
    """An exactness check over many cases: supported if every error is below tol,
    refuted if every error exceeds gross (clearly wrong, not rounding), else inconclusive."""
    e = np.asarray(errors, dtype=float)
    if e.max() < tol:
        return "supported"
    if e.min() > gross:
        return "refuted"
    return "inconclusive"


def pts(x) -> str:
    """A share as signed percentage points, one decimal."""
    return f"{100 * x:+.1f}"


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
    """Combine the verdicts of a claim's parts: any refuted part refutes it."""
    for v in ("refuted", "inconclusive", "conditional"):
        if v in verdicts:
            return v
    return "supported"
