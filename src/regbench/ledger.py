"""The claims ledger: one row per claim ID of CLAIMS.md, each computed by its
study's rule (regbench.studies.<study>.claims) from the result tables."""
import re
from pathlib import Path

import numpy as np
import pandas as pd

from regbench import studies
from regbench.verdicts import VERDICTS, row


def document_ids(path) -> list[str]:
    """The claim IDs of a claims document: the first cell of every table row that is an ID (L1, L7a, N17, ...)."""
    return re.findall(r"^\| *([LN]\d+[a-z]?) *\|", Path(path).read_text(), re.M)


def evidence(c) -> str:
    """Where the evidence behind a claim's verdict is, relative to results/."""
    if c.figure:
        return studies.figures()[c.figure].path(c.figure)
    return f"tables/{c.table}.csv"


def evaluate(tables: dict[str, pd.DataFrame], ids=None) -> pd.DataFrame:
    """One row per claim: every registered rule, plus a `not implemented` row for each
    ID of `ids` (the claims document's) without one; claims whose experiments were not
    run say so."""
    registry = studies.claims()
    rows = []
    for cid in sorted(set(registry) | set(ids or ()), key=_order):
        c = registry.get(cid)
        if c is None:
            rows.append(dict(id=cid, claim="", **row("", np.nan, np.nan, np.nan, "not implemented", "in CLAIMS.md, no rule yet"),
                             evidence=""))
            continue
        missing = [e for e in c.needs if e not in tables]
        if missing:
            out = row("", np.nan, np.nan, np.nan, "not run", f"experiment(s) not in this config: {', '.join(missing)}")
        else:
            out = c.rule(tables)
        assert out["verdict"] in VERDICTS, out
        rows.append(dict(id=c.id, claim=c.text, **out, evidence=evidence(c)))
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


def _interval(r) -> str:
    return f"{_fmt(r.value)} [{_fmt(r.lo)}, {_fmt(r.hi)}]" if not np.isnan(r.lo) else _fmt(r.value)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, header: str = "") -> str:
    """The ledger for a reader: one short line per claim (what decides it, its value and
    95% interval, the smallest effect of interest, the verdict), then a section per
    claim with its wording, the evidence and the details."""
    reps = "agreement" in df  # replicate runs: the share of root seeds giving this verdict
    lines = [header, "", "| ID | Verdict | Value [95% interval] | Smallest effect of interest (or tolerance) | Deciding statistic |"
             + (" Same verdict across root seeds |" if reps else ""), "|---|---|---|---|---|" + ("---|" if reps else "")]
    for r in df.itertuples():
        sesoi = _fmt(r.sesoi) if "sesoi" in df and not pd.isna(r.sesoi) else ""
        cells = [r.id, f"**{r.verdict}**", _interval(r), sesoi, r.statistic]
        if reps:
            cells.append(f"{round(r.agreement * r.root_seeds)}/{r.root_seeds}")
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    counts = df.verdict.value_counts()
    lines += ["", "Verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS if counts.get(v, 0)), "",
              "## Details", ""]
    for r in df.itertuples():
        lines += [f"### {r.id}: {r.verdict}", "", f"*{r.claim}*" if r.claim else "", ""]
        if r.evidence:
            lines += [f"Evidence: `{r.evidence}`.", ""]
        if r.note:
            lines += [str(r.note), ""]
    return "\n".join(lines) + "\n"
