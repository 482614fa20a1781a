# Config validation (before any job runs) and the helpers the rules share.
# Everything study-specific comes from regbench.studies (the one registry).
import os
from pathlib import Path

import regbench.config as rbconfig
from regbench import figures as rbfigures
from regbench import jobs as rbjobs
from regbench import ledger as rbledger
from regbench import studies as rbstudies

# Replace the raw config in place with the validated one (defaults filled):
# scripts see snakemake.config, so they get the same values the DAG was built from.
_validated = rbconfig.validate(config, rbconfig.load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"))
config.clear()
config.update(_validated)

EXPERIMENTS = list(config["experiments"])
STUDY_OF = rbstudies.study_of()
FIGURES = rbstudies.figures()


def _config_name(path) -> str:
    # Relative to the workflow when inside it, else the file name: never an absolute
    # path, so a results folder copied to another checkout plans no job.
    path = os.path.abspath(path)
    rel = os.path.relpath(path, workflow.basedir)
    return os.path.basename(path) if rel.startswith("..") else rel


CONFIG_NAME = ", ".join(_config_name(f) for f in workflow.configfiles) or "(none)"
CLAIM_IDS = rbledger.document_ids(Path(workflow.basedir) / "CLAIMS.md")


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    design="|".join(config["designs"]) or "__none__",
    chunk=r"\d+",
    study="|".join(rbstudies.names()),


def used_designs():
    return sorted(rbjobs.seeds_needed(config))


def experiment_chunks(wildcards):
    params = config["experiments"][wildcards.experiment]
    n = rbconfig.n_chunks(wildcards.experiment, params)
    return [f"results/{STUDY_OF[wildcards.experiment]}/{wildcards.experiment}/chunk{k}.parquet" for k in range(n)]


def experiment_data(wildcards):
    design = rbstudies.stored_design(wildcards.experiment, config["experiments"][wildcards.experiment])
    return {"data": f"results/data/{design}.npz"} if design else {}


def figure_tables(wildcards):
    return [f"results/tables/{t}.parquet" for t in FIGURES[wildcards.name].tables]


def figure_caption(wildcards):
    return rbfigures.caption(FIGURES[wildcards.name], config, CONFIG_NAME)


def figure_footer(wildcards):
    return rbfigures.footer(config, CONFIG_NAME, rbfigures.seeds_text(FIGURES[wildcards.name], config))


def all_targets():
    figures = [f"results/{fig.path(name)}" for name, fig in FIGURES.items()
               if all(t in config["experiments"] for t in fig.tables)]
    data_figs = [f"results/figures/data/{d}.png" for d in used_designs()]
    return ["results/claims.md", "results/claims.csv", "results/tables/metadata.json"] + figures + data_figs
