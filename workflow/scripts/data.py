"""Thin: generate one design's datasets (all seeds) and draw its correlation matrix."""
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from regbench import data  # noqa: E402
from regbench.figures import correlation, save  # noqa: E402

sm = snakemake  # noqa: F821
design = sm.config["designs"][sm.wildcards.design]
d = data.generate(design, sm.wildcards.design, sm.params.seeds, sm.config["seed"])
data.save(sm.output.data, d)
print(f"{sm.wildcards.design}: {sm.params.seeds} seeds, X_train {d['X_train'].shape}, noise sd {float(d['sigma']):.3g}")
save(correlation(d["X_train"][0], sm.wildcards.design, sm.params.footer), sm.output.figure)
