"""Thin: compute every claim's verdict from the tables and write the ledger."""
import json
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402

from regbench import ledger, provenance, studies  # noqa: E402

sm = snakemake  # noqa: F821
tables = {Path(f).stem: pd.read_parquet(f) for f in sm.input.tables}
table = ledger.evaluate(tables, sm.params.ids)
table.to_csv(sm.output.csv, index=False)
meta = json.loads(Path(sm.input.metadata).read_text())
text = ledger.to_markdown(table, "# regbench claims ledger\n\n" + sm.params.header + "\n\n" + provenance.to_markdown(meta))
Path(sm.output.md).write_text(text + studies.details(tables))
print(table[["id", "verdict"]].to_string())
