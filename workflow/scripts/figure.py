"""Thin: draw one figure from the aggregated tables."""
import os
from pathlib import Path

from regbench import jobs

jobs.log_to(snakemake.log[0])  # noqa: F821

import pandas as pd  # noqa: E402

from regbench import checks, studies  # noqa: E402
from regbench.figures import save  # noqa: E402

sm = snakemake  # noqa: F821
tables = {Path(f).stem: pd.read_parquet(f) for f in sm.input}
# the footer's seed counts are what the tables hold, not what the config asks for
footer = sm.params.footer.replace("{config}", os.environ.get("REGBENCH_CONFIG", "?")).replace(
    "{seeds}", checks.seeds_text(tables, sm.config))
save(studies.figures()[sm.wildcards.name].draw(tables, footer), sm.output[0])
