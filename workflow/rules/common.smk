# Config validation (before any job runs) and the helpers the rules share.
from pathlib import Path

import regbench.config as rbconfig
from regbench import experiments as rbexp
from regbench.plots import registry as rbfigures

# Replace the raw config in place with the validated one (defaults filled):
# scripts see snakemake.config, so they get the same values the DAG was built from.
_validated = rbconfig.validate(config, rbconfig.load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"))
config.clear()
config.update(_validated)

EXPERIMENTS = list(config["experiments"])
CONFIG_FILES = ", ".join(str(f) for f in workflow.configfiles) or "(none)"


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    design="|".join(config["designs"]) or "__none__",
    chunk=r"\d+",
    study="|".join(rbexp.STUDIES),


def used_designs():
    return sorted(rbexp.seeds_needed(config))


def experiment_chunks(wildcards):
    params = config["experiments"][wildcards.experiment]
    study = rbexp.MODULE_OF[wildcards.experiment]
    n = rbconfig.n_chunks(wildcards.experiment, params)
    return [f"results/{study}/{wildcards.experiment}/chunk{k}.parquet" for k in range(n)]


def experiment_data(wildcards):
    design = rbexp.needs_data(wildcards.experiment, config["experiments"][wildcards.experiment])
    return {"data": f"results/data/{design}.npz"} if design else {}


def figure_tables(wildcards):
    return [f"results/tables/{t}.parquet" for t in rbfigures.FIGURES[wildcards.name].tables]


def figure_caption(wildcards):
    return rbfigures.caption(wildcards.name, config, CONFIG_FILES)


def all_targets():
    figures = [f"results/figures/{f.study}/{name}.png" for name, f in rbfigures.FIGURES.items()
               if all(t in config["experiments"] for t in f.tables)]
    data_figs = [f"results/figures/data/{d}.png" for d in used_designs()]
    return ["results/claims.md", "results/claims.csv"] + figures + data_figs
