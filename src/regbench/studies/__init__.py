"""The studies, and the one registry derived from them.

A study is a package ``regbench/studies/<study>/`` holding everything that
belongs to it, behind a small fixed interface:

    __init__.py   docstring: what the study tests. Optional plain data/functions:
                  STORED_DESIGN  experiments that read their design's stored datasets
                                 (results/data/<design>.npz) instead of drawing their own
                  problems(cfg)  -> list[str]: the study's own cross-key checks, run
                                 before any job; each problem names its key
                  stream(exp)    -> stream-key prefix of its jobs' seeds, if not (exp,)
                  details(tables) -> str: extra markdown for the ledger
                  NONFINITE      experiment -> metrics that may be NaN for some seeds
                                 (regbench.checks refuses any other non-finite value)
    schema.yaml   experiment name -> JSON schema of its params: the study's experiments
    runners.py    RUNNERS: experiment name -> fn(job) -> tidy DataFrame. May import
                  torch: only a job imports it.
    claims.py     verdict rules, registered with regbench.verdicts.claim
    figures.py    FIGURES: figure name -> regbench.figures.Figure. No torch.

Everything else (the workflow's rules, the job runner, the ledger, the figure
list, config validation) reads this registry; no module outside studies/ names
a study or an experiment. A new study is one new folder.
"""
import functools
import importlib
import pkgutil
from pathlib import Path

import yaml

HERE = Path(__file__).parent


@functools.cache
def names() -> tuple[str, ...]:
    """Every study, in ledger order (linear first, then the neural studies as listed here)."""
    found = [m.name for m in pkgutil.iter_modules([str(HERE)]) if m.ispkg]
    return tuple(sorted(found, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s)))


# The order studies appear in the report; a study not listed comes after these, by name.
ORDER = ["linear", "dropout", "batchnorm", "training", "implicit", "augmentation", "finetune"]


def package(study: str):
    """The study's package (light: no torch)."""
    return importlib.import_module(f"regbench.studies.{study}")


@functools.cache
def schema(study: str) -> dict:
    """The study's experiments: name -> JSON schema of its params."""
    return yaml.safe_load((HERE / study / "schema.yaml").read_text()) or {}


@functools.cache
def study_of() -> dict[str, str]:
    """Experiment -> its study (also the results/<study>/ folder)."""
    out = {}
    for s in names():
        for exp in schema(s):
            if exp in out:
                raise ValueError(f"experiment {exp!r} is defined by two studies: {out[exp]} and {s}")
            out[exp] = s
    return out


def stored_design(experiment: str, params: dict) -> str | None:
    """The design whose stored datasets an experiment reads, or None (it draws its own data)."""
    reads = experiment in getattr(package(study_of()[experiment]), "STORED_DESIGN", ())
    return params.get("design") if reads else None


def stream(experiment: str) -> tuple:
    """The stream-key prefix of an experiment's seeds (regbench.jobs.Job.rng)."""
    custom = getattr(package(study_of()[experiment]), "stream", None)
    return tuple(custom(experiment)) if custom else (experiment,)


def problems(cfg: dict) -> list[str]:
    """Every study's own cross-key checks on a schema-valid config."""
    out = []
    for s in names():
        check = getattr(package(s), "problems", None)
        if check and any(e in cfg["experiments"] for e in schema(s)):
            out += check(cfg)
    return out


def runner(experiment: str):
    """The function that runs one job of an experiment (imports the study's runners, and torch if it uses it)."""
    module = importlib.import_module(f"regbench.studies.{study_of()[experiment]}.runners")
    return module.RUNNERS[experiment]


@functools.cache
def figures() -> dict:
    """Figure name -> Figure, with its study filled in, over every study."""
    out = {}
    for s in names():
        for name, fig in importlib.import_module(f"regbench.studies.{s}.figures").FIGURES.items():
            if name in out:
                raise ValueError(f"figure {name!r} is defined by two studies: {out[name].study} and {s}")
            out[name] = fig.placed(s)
    return out


@functools.cache
def claims() -> dict:
    """Claim ID -> Claim, over every study (importing a claims module registers its rules)."""
    from regbench import verdicts
    for s in names():
        importlib.import_module(f"regbench.studies.{s}.claims")
    return dict(verdicts.REGISTRY)


def details(tables: dict) -> str:
    """Each study's extra ledger sections (markdown), for the studies whose tables are present."""
    parts = []
    for s in names():
        extra = getattr(package(s), "details", None)
        if extra and any(e in tables for e in schema(s)):
            parts.append(extra(tables))
    return "".join(parts)
