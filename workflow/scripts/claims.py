"""Thin: compute every claim's verdict from the tables and write the ledger."""
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402

from regbench import claims, tables as rbtables  # noqa: E402

sm = snakemake  # noqa: F821
tables = {Path(f).stem: pd.read_parquet(f) for f in sm.input}
ledger = claims.evaluate(tables)
ledger.to_csv(sm.output.csv, index=False)
text = claims.to_markdown(ledger, "# regbench claims ledger\n\n" + sm.params.header)
if "problem1" in tables:  # the issue asks for the chosen hyper-parameters to be reported
    text += ("\n## Tuned hyper-parameters (problem1; mean, min, max over seeds)\n\n"
             + rbtables.to_markdown(rbtables.chosen_hyperparameters(tables["problem1"])))
Path(sm.output.md).write_text(text)
print(ledger[["id", "verdict"]].to_string())
