"""Thin: generate one design's datasets (all seeds) and draw its correlation matrix."""
import os

from regbench import jobs

jobs.log_to(snakemake.log[0])  # noqa: F821

from regbench import data  # noqa: E402
from regbench.figures import correlation, save  # noqa: E402

sm = snakemake  # noqa: F821
design = sm.config["designs"][sm.wildcards.design]
d = data.generate(design, sm.wildcards.design, sm.params.seeds, sm.config["seed"])
data.save(sm.output.data, d)
print(f"{sm.wildcards.design}: {sm.params.seeds} seeds, X_train {d['X_train'].shape}, noise sd {float(d['sigma']):.3g}")
footer = sm.params.footer.replace("{config}", os.environ.get("REGBENCH_CONFIG", "?"))
save(correlation(d["X_train"][0], sm.wildcards.design, footer), sm.output.figure)
