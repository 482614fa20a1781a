"""Thin: concatenate an experiment's chunks; summarize each metric over seeds."""
from regbench import jobs

jobs.log_to(snakemake.log[0])  # noqa: F821

import pandas as pd  # noqa: E402

from regbench.tables import summarize  # noqa: E402

sm = snakemake  # noqa: F821
table = pd.concat([pd.read_parquet(f) for f in sm.input], ignore_index=True)
table.to_parquet(sm.output.table)
summarize(table).to_csv(sm.output.summary, index=False)
print(f"{len(table)} rows from {len(sm.input)} chunk(s)")
