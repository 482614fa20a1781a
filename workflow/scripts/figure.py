"""Thin: draw one figure from the aggregated tables."""
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402

from regbench import studies  # noqa: E402
from regbench.figures import save  # noqa: E402

sm = snakemake  # noqa: F821
tables = {Path(f).stem: pd.read_parquet(f) for f in sm.input}
save(studies.figures()[sm.wildcards.name].draw(tables, sm.params.footer), sm.output[0])
