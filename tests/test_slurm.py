"""The tiny config through profiles/slurm, on a real SLURM, gives the results of a
local run byte for byte: the ledger, every table and every figure.

The cluster is a single node on localhost from Debian's packages
(`bash .ci/local_slurm.sh install && bash .ci/local_slurm.sh start`); without one
the test is skipped, saying so, except where REGBENCH_REQUIRE_SLURM is set (CI),
where a missing cluster is a failure rather than a silent skip."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, TINY, make_workdir, snakemake

pytestmark = pytest.mark.workflow

PARTITION = "regbench"  # the local cluster's partition (.ci/local_slurm.sh)
PROFILE = ROOT / "profiles" / "slurm" / "config.yaml"


def missing_slurm():
    """Why no SLURM run can happen here, or None when one can."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no SLURM client on PATH (bash .ci/local_slurm.sh install)"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return 'no SLURM executor plugin (pip install -e ".[slurm]")'
    state = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-o", "%T"],
                           capture_output=True, text=True, timeout=30)
    if state.returncode != 0 or state.stdout.strip() not in {"idle", "mixed", "allocated"}:
        return f"no local SLURM with partition {PARTITION} running (bash .ci/local_slurm.sh start)"
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = missing_slurm()
    if reason and os.environ.get("REGBENCH_REQUIRE_SLURM"):
        pytest.fail(f"REGBENCH_REQUIRE_SLURM is set but {reason}")
    if reason:
        pytest.skip(reason)


def slurm_args():
    """The profile as a user runs it, plus what only this local cluster needs: its
    partition named (the profile leaves partition and account to the user; the account
    stays unset, as a cluster without an accounting database cannot check one), and job
    states read from squeue, polled after 1 s instead of the plugin's 40 s."""
    defaults = yaml.safe_load(PROFILE.read_text())["default-resources"]
    # --default-resources on the command line replaces the profile's list whole
    resources = [f"{k}={v}" for k, v in defaults.items()] + [f"slurm_partition={PARTITION}"]
    return ["--profile", "profiles/slurm", "--default-resources", *resources,
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"]


@pytest.fixture(scope="module")
def runs(slurm, tiny_run, tmp_path_factory):
    """The session's local tiny run (tests/conftest.py) and the same config through SLURM."""
    local = tiny_run
    cluster = make_workdir(tmp_path_factory.mktemp("slurm"), yaml.safe_load(TINY.read_text()))
    proc = snakemake(cluster, *slurm_args())
    return local / "results", cluster / "results", proc.stdout + proc.stderr


def outputs(results: Path, pattern: str) -> list:
    return sorted(p.relative_to(results) for p in results.glob(pattern))


def differing(a: Path, b: Path, files) -> list:
    return [str(f) for f in files if not (b / f).is_file() or (a / f).read_bytes() != (b / f).read_bytes()]


def test_jobs_ran_on_slurm(runs):
    """Not a local run in disguise: every experiment chunk was an sbatch job."""
    local, _, log = runs
    submitted = log.count("has been submitted with SLURM jobid")
    chunks = len(outputs(local, "*/*/chunk*.parquet"))
    assert chunks >= 25 and submitted >= chunks, (submitted, chunks, log[-3000:])


def test_ledger_and_tables_byte_identical(runs):
    local, cluster, _ = runs
    files = [Path("claims.csv"), Path("claims.md")] + outputs(local, "tables/*")
    assert len(files) >= 2 + 2 * 20  # parquet + csv of every experiment, metadata, calibration
    assert outputs(local, "tables/*") == outputs(cluster, "tables/*")
    assert differing(local, cluster, files) == []


def test_figures_byte_identical(runs):
    """A PNG from matplotlib embeds no date or host (only its version), so figures too
    are compared byte for byte."""
    local, cluster, _ = runs
    pngs = outputs(local, "figures/**/*.png")
    assert len(pngs) >= 25
    assert pngs == outputs(cluster, "figures/**/*.png")
    assert differing(local, cluster, pngs) == []
