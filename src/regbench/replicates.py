"""Verdict stability: the ledger judged again under other root seeds.

With config `replicates: R` (e.g. `snakemake --cores 8 --config replicates=3`) the
workflow also runs itself under root seeds seed+1 ... seed+R-1, each into
<results>/replicates/seed-<S>/ (rule `replicate`), and the ledger gains a column: the
share of the R root seeds whose verdict equals this run's. A verdict that changes with
the root seed is a statement about one draw of data, not about the claim.
"""
import pandas as pd


def agreement(main: pd.DataFrame, others: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per claim ID of the main ledger: the verdict under every root seed (main first) and
    `agreement`, the share of root seeds whose verdict equals the main run's. A claim
    missing from a replicate's ledger counts as a different verdict."""
    wide = pd.concat({"main": main.set_index("id").verdict,
                      **{name: df.set_index("id").verdict for name, df in others.items()}}, axis=1)
    wide = wide.reindex(main.id)
    share = wide.eq(wide["main"], axis=0).mean(axis=1)
    return wide.assign(agreement=share).reset_index()


def to_markdown(table: pd.DataFrame, main_name: str) -> str:
    """The per-seed verdicts, one row per claim, and which claims agree under every root seed."""
    reps = [c for c in table.columns if c not in ("id", "agreement")]
    names = [main_name if c == "main" else c for c in reps]
    lines = ["| ID | " + " | ".join(names) + " | agreement |", "|---|" + "---|" * (len(reps) + 1)]
    lines += [f"| {r['id']} | " + " | ".join(str(r[c]) for c in reps) + f" | {r['agreement']:.0%} |" for _, r in table.iterrows()]
    stable = table[table.agreement == 1].id.tolist()
    return ("\n".join(lines) + f"\n\nSame verdict under all {len(reps)} root seeds: {len(stable)} of {len(table)} claims "
            f"({', '.join(stable) or 'none'}).\n")
