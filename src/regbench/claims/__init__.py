"""Verdicts per claim ID, computed from the result tables by the rule written
next to each claim. Nothing here is typed in by hand but the claims' wording
and the thresholds, each with its reason.

A rule is a function tables -> dict(statistic, value, lo, hi, verdict, note);
`claim` registers it with its ID, wording, the experiments it reads and the
figure or table behind it.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

VERDICTS = ("supported", "refuted", "conditional", "inconclusive", "not run")


@dataclass
class Claim:
    id: str
    text: str
    needs: tuple[str, ...]
    evidence: str
    rule: Callable[[dict], dict]


REGISTRY: dict[str, Claim] = {}


def claim(id: str, text: str, needs, evidence: str):
    """Register a verdict rule for a claim ID."""
    def wrap(rule):
        REGISTRY[id] = Claim(id, text, tuple(needs), evidence, rule)
        return rule
    return wrap


def row(statistic: str, value, lo, hi, verdict: str, note: str = "") -> dict:
    """What a rule returns: the statistic, its value and 95% interval, the verdict, a note."""
    return dict(statistic=statistic, value=value, lo=lo, hi=hi, verdict=verdict, note=note)


def evaluate(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per registered claim; claims whose experiments were not run say so."""
    rows = []
    for c in sorted(REGISTRY.values(), key=lambda c: _order(c.id)):
        missing = [e for e in c.needs if e not in tables]
        if missing:
            out = dict(statistic="", value=np.nan, lo=np.nan, hi=np.nan, verdict="not run",
                       note=f"experiment(s) not in this config: {', '.join(missing)}")
        else:
            out = c.rule(tables)
        assert out["verdict"] in VERDICTS, out
        rows.append(dict(id=c.id, claim=c.text, **out, evidence=c.evidence))
    return pd.DataFrame(rows)


def _order(claim_id: str):
    """L1 < L2 < ... < L7a < L7b < ... < N1 < N2 < ... < N17."""
    digits = "".join(ch for ch in claim_id[1:] if ch.isdigit())
    return claim_id[0], int(digits), claim_id[1 + len(digits):]


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    x = float(x)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e4):
        return f"{x:.2e}"
    return f"{x:.3g}"


def to_markdown(df: pd.DataFrame, header: str = "") -> str:
    """The claims ledger as a markdown table, one row per claim ID."""
    lines = [header, "", "| ID | Claim | Statistic | Value | Interval (95% over seeds unless the statistic says otherwise) | Verdict | Evidence | Note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        interval = f"[{_fmt(r.lo)}, {_fmt(r.hi)}]" if not np.isnan(r.lo) else ""
        cells = [r.id, r.claim, r.statistic, _fmt(r.value), interval, f"**{r.verdict}**", r.evidence, r.note]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    counts = df.verdict.value_counts()
    lines += ["", "Verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS if counts.get(v, 0))]
    return "\n".join(lines) + "\n"


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


# Importing a study's rules module registers its claims (in ledger order).
import importlib  # noqa: E402

RULE_MODULES = ["linear", "dropout", "batchnorm", "training", "implicit", "augmentation"]
for _module in RULE_MODULES:
    importlib.import_module(f"regbench.claims.{_module}")
