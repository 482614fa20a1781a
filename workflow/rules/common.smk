# The config (loaded, merged and validated before any job runs) and the helpers the
# rules share. Everything study-specific comes from regbench.studies (the one registry).
import os
import re
import sys
from pathlib import Path

import regbench.config as rbconfig
from regbench import figures as rbfigures
from regbench import jobs as rbjobs
from regbench import ledger as rbledger
from regbench import resources as rbresources
from regbench import studies as rbstudies

# config/config.yaml, then each --configfile, then --config, merged by
# regbench.config.overlay rather than Snakemake's deep merge: a file's `experiments`
# is exactly the set that runs, and a setting it gives replaces the default's whole
# (README, "Everyday use"). Files are read again here, strictly: a duplicate key or
# a YAML error in config/config.yaml is reported with its line.
_DEFAULT = Path(workflow.basedir) / "config" / "config.yaml"
_EXTRA = [Path(f) for f in workflow.config_settings.configfiles
          if Path(f).resolve() != _DEFAULT.resolve()]
_SCHEMA = rbconfig.load_schema(Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml")
# A cluster executor plans on a login node that may have no GPU: `device: cuda` is then
# checked where the jobs run, not here.
_LOCAL = workflow.executor_plugin is None or workflow.executor_plugin.common_settings.local_exec
_validated = rbconfig.validate(rbconfig.load(_DEFAULT, _EXTRA, dict(workflow.config_settings.config)), _SCHEMA,
                               local=_LOCAL)
# Scripts see snakemake.config: the same values the DAG was built from.
config.clear()
config.update(_validated)

EXPERIMENTS = list(config["experiments"])
STUDY_OF = rbstudies.study_of()
FIGURES = rbstudies.figures()
R = config["results"]  # this config's results folder: every output lies under it
# Every rule's mem_mb / runtime (minutes) / gpu, from measured costs scaled to this config (README, "GPU and resources").
RESOURCES = rbresources.Declared(Path(workflow.basedir) / "workflow" / "resources.yaml", config)


def _config_name(path) -> str:
    # Relative to the workflow when inside it, else the file name: never an absolute
    # path, so a results folder copied to another checkout is still this config's.
    path = os.path.abspath(path)
    rel = os.path.relpath(path, workflow.basedir)
    return os.path.basename(path) if rel.startswith("..") else rel


CONFIG_NAME = ", ".join(_config_name(f) for f in ([_DEFAULT] if _DEFAULT.exists() else []) + _EXTRA) or "(none)"
CLAIM_IDS = rbledger.document_ids(Path(workflow.basedir) / "CLAIMS.md")
# Footers name the config through the environment, not a rule param: the name is
# provenance, and a param would rerun jobs whose settings did not change.
os.environ["REGBENCH_CONFIG"] = CONFIG_NAME

# One results folder holds one config's results: a run of another config into a
# folder stamped by a different one is refused before any job.
_STAMP = Path(R) / ".regbench-config"
if _STAMP.exists() and _STAMP.read_text().strip() != CONFIG_NAME:
    raise rbconfig.ConfigError(
        f"{R}/ holds the results of config {_STAMP.read_text().strip()!r}; this run's config is {CONFIG_NAME!r}. "
        f"Give it its own folder (`results: results/<name>` in the file, or --config results=results/<name>), "
        f"or remove {R}/ first.")


onstart:
    Path(R).mkdir(parents=True, exist_ok=True)
    _STAMP.write_text(CONFIG_NAME + "\n")


def _one_of(names) -> str:
    return "|".join(re.escape(n) for n in names) or "__none__"


wildcard_constraints:
    experiment=_one_of(EXPERIMENTS),
    design=_one_of(config["designs"]),
    chunk=r"\d+",
    study=_one_of(rbstudies.names()),


# The experiment rule's rerun trigger: a hash of exactly what its jobs read (params,
# root seed, the design and teacher they name), so a changed setting reruns that
# experiment and what depends on it, and nothing else.
SETTINGS = {exp: rbconfig.digest(rbconfig.experiment_settings(config, exp)) for exp in EXPERIMENTS}


def used_designs():
    return sorted(rbjobs.seeds_needed(config))


def design_settings(wildcards) -> str:
    return rbconfig.digest({"design": config["designs"][wildcards.design], "seed": config["seed"]})


def experiment_chunks(wildcards):
    params = config["experiments"][wildcards.experiment]
    n = rbconfig.n_chunks(wildcards.experiment, params)
    return [f"{R}/{STUDY_OF[wildcards.experiment]}/{wildcards.experiment}/chunk{k}.parquet" for k in range(n)]


def experiment_data(wildcards):
    design = rbstudies.stored_design(wildcards.experiment, config["experiments"][wildcards.experiment])
    return {"data": f"{R}/data/{design}.npz"} if design else {}


def figure_tables(wildcards):
    return [f"{R}/tables/{t}.parquet" for t in FIGURES[wildcards.name].tables]


def figure_caption(wildcards):
    return (f"{FIGURES[wildcards.name].text} Root seed {config['seed']}; the config, and the seed count of each "
            "table (read from the table), are in the figure's footer.")


def footer_template(extra: str) -> str:
    # {config} and {seeds} are filled in by the script: the config's name from the
    # environment, the seed counts from the tables it read.
    return rbfigures.footer(config, "{config}", extra)


PYTHON = sys.executable  # the nested replicate runs use this run's snakemake, activated or not
# Root seeds of the replicate runs (config `replicates`): seed+1 ... seed+R-1.
REPLICATE_SEEDS = [config["seed"] + k for k in range(1, config["replicates"])]


def _here(path) -> str:
    # relative to the working directory when inside it, so the command (a param) is the
    # same in every checkout and a copied results folder does not rerun its replicates
    rel = os.path.relpath(os.path.abspath(path))
    return str(path) if rel.startswith("..") else rel


def replicate_command(w) -> str:
    """This run's Snakefile, config files and --config settings under root seed w.root,
    into its own folder; --nolock because the outer run holds the lock of this
    directory (the folders do not overlap)."""
    keep = {k: v for k, v in workflow.config_settings.config.items() if k not in ("seed", "results", "replicates")}
    if any(isinstance(v, (dict, list)) for v in keep.values()):
        raise rbconfig.ConfigError("replicates: --config settings passed on to the replicate runs must be plain values "
                                   f"(got {', '.join(k for k, v in keep.items() if isinstance(v, (dict, list)))}); "
                                   "put nested settings in a --configfile")
    return " ".join(["--snakefile", _here(workflow.main_snakefile), "--nolock",
                     *[f"--configfile {_here(f)}" for f in _EXTRA],
                     "--config", f"seed={w.root}", f"results={R}/replicates/seed-{w.root}", "replicates=1",
                     *[f"{k}={v}" for k, v in keep.items()]])


def all_targets():
    figures = [f"{R}/{fig.path(name)}" for name, fig in FIGURES.items()
               if all(t in config["experiments"] for t in fig.tables)]
    data_figs = [f"{R}/figures/data/{d}.png" for d in used_designs()]
    return [f"{R}/claims.md", f"{R}/claims.csv", f"{R}/tables/metadata.json"] + figures + data_figs
