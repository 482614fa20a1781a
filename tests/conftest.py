import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Runners called directly (not through experiments.run) get the workflow's one thread per job."""
    import torch
    torch.set_num_threads(1)
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
TINY = ROOT / "tests" / "tiny_config.yaml"


@pytest.fixture(scope="session")
def schema():
    from regbench import config
    return config.load_schema(SCHEMA)


@pytest.fixture(scope="session")
def tiny(schema):
    """The tiny config, validated (defaults filled)."""
    from regbench import config
    return config.validate(yaml.safe_load(TINY.read_text()), schema)


def make_workdir(path: Path, cfg: dict) -> Path:
    """A copy of the workflow whose config/config.yaml is `cfg`: the real Snakefile, run elsewhere."""
    for name in ("Snakefile", "workflow", "profiles", "CLAIMS.md"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, path / name)
    (path / "config").mkdir()
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))
    return path


def snakemake(workdir: Path, *args, check=True):
    """Run the snakemake of this interpreter's environment in workdir."""
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(exe), *args], cwd=workdir, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_tables(tiny):
    """Every experiment of the tiny config run through the job runner, as the workflow
    would aggregate them (experiment -> tidy table). Tests copy before they perturb."""
    import pandas as pd

    from regbench import config, data, jobs, studies
    out = {}
    for name, params in tiny["experiments"].items():
        design = studies.stored_design(name, params)
        d = data.generate(tiny["designs"][design], design, params["seeds"], tiny["seed"]) if design else None
        out[name] = pd.concat([jobs.run(name, tiny, k, d) for k in range(config.n_chunks(name, params))], ignore_index=True)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The real Snakefile run on the tiny config, once per session (the workflow tests and
    the SLURM comparison read it; tests that change things work on a copy)."""
    wd = make_workdir(tmp_path_factory.mktemp("a"), yaml.safe_load(TINY.read_text()))
    # first only one experiment's table, then everything: the second call must
    # reuse the finished chunk (what a resumed run after a kill relies on)
    snakemake(wd, "--cores", "2", "results/tables/paths.parquet")
    chunk = wd / "results/linear/paths/chunk0.parquet"
    before = chunk.stat().st_mtime_ns
    snakemake(wd, "--cores", "2")
    assert chunk.stat().st_mtime_ns == before, "finished work was redone"
    return wd
