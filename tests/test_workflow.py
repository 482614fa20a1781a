"""The real Snakefile on the tiny config: runs, is deterministic, reruns only
what is downstream, resumes without redoing finished work, rejects bad configs."""
import copy
import re

import pandas as pd
import pytest
import yaml

from tests.conftest import TINY, make_workdir, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def tiny_raw():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def run_a(tmp_path_factory, tiny_raw):
    wd = make_workdir(tmp_path_factory.mktemp("a"), tiny_raw)
    # first only one experiment's table, then everything: the second call must
    # reuse the finished chunk (what a resumed run after a kill relies on)
    snakemake(wd, "--cores", "2", "results/tables/paths.parquet")
    chunk = wd / "results/linear/paths/chunk0.parquet"
    before = chunk.stat().st_mtime_ns
    snakemake(wd, "--cores", "2")
    assert chunk.stat().st_mtime_ns == before, "finished work was redone"
    return wd


def test_full_run_produces_ledger_and_figures(run_a):
    ledger = pd.read_csv(run_a / "results/claims.csv")
    assert {"L1", "L2", "L3", "L4", "L5", "L6", "L7a", "L7e", "L8"} <= set(ledger.id)
    assert (ledger.verdict != "not run").all()
    figures = sorted(p.name for p in (run_a / "results/figures/linear").glob("*.png"))
    assert {"paths.png", "kkt.png", "geometry.png", "problem1_sweep.png", "failure_modes.png"} <= set(figures)
    assert (run_a / "results/figures/data/problem1.png").stat().st_size > 10_000
    for log in (run_a / "results/logs/linear").rglob("*.log"):
        assert "rows in" in log.read_text()
    assert list((run_a / "results/benchmarks/linear").rglob("*.tsv"))


def test_same_config_same_numbers(run_a, tmp_path, tiny_raw):
    """A second checkout gives the same tables, ledger and figures, byte for byte."""
    wd = make_workdir(tmp_path, tiny_raw)
    snakemake(wd, "--cores", "2")
    tables = sorted((run_a / "results/tables").glob("*.parquet"))
    assert len(tables) >= 20
    differ = []
    for table in tables:
        try:
            pd.testing.assert_frame_equal(pd.read_parquet(table), pd.read_parquet(wd / "results/tables" / table.name))
        except AssertionError:
            differ.append(table.stem)
    assert not differ, f"tables that differ between two runs of the same config: {differ}"
    assert (run_a / "results/claims.csv").read_text() == (wd / "results/claims.csv").read_text()
    assert (run_a / "results/claims.md").read_text() == (wd / "results/claims.md").read_text()
    pngs = sorted(p.relative_to(run_a) for p in (run_a / "results/figures").rglob("*.png"))
    assert len(pngs) >= 25
    assert [p for p in pngs if (run_a / p).read_bytes() != (wd / p).read_bytes()] == []


def test_results_copied_to_another_checkout_plan_nothing(run_a, tmp_path, tiny_raw):
    """No absolute path decides a rerun: a finished results folder moved elsewhere is complete there."""
    import shutil
    wd = make_workdir(tmp_path, tiny_raw)
    shutil.copytree(run_a / "results", wd / "results")  # copy2 keeps the modification times
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2")) == {}


def jobs_planned(proc) -> dict:
    """Rule -> job count from a dry run's job-stats table."""
    out = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) not in ("total", "job", "count"):
            out[m.group(1)] = int(m.group(2))
    return out


def test_rerun_one_rule_reruns_only_downstream(run_a):
    assert jobs_planned(snakemake(run_a, "-n", "--cores", "2")) == {}
    planned = jobs_planned(snakemake(run_a, "-n", "--cores", "2", "-R", "aggregate"))
    assert set(planned) == {"aggregate", "figure", "provenance", "claims", "all"}
    planned = jobs_planned(snakemake(run_a, "-n", "--cores", "2", "-R", "figure"))
    assert set(planned) == {"figure", "all"}


def test_bad_config_fails_before_any_job(tmp_path, tiny_raw):
    bad = copy.deepcopy(tiny_raw)
    bad["experiments"]["paths"]["seeds"] = -1
    bad["experiments"]["no_such_study"] = {}
    wd = make_workdir(tmp_path, bad)
    proc = snakemake(wd, "--cores", "1", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "experiments.paths.seeds: -1 is less than the minimum of 1" in text
    assert "unknown key(s) ['no_such_study']" in text
    assert not (wd / "results").exists()
