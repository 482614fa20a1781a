"""The real Snakefile on the tiny config: runs, is deterministic, reruns only
what is downstream (and, after a changed setting, only what it changes), resumes
without redoing finished work, keeps two configs' results apart, rejects bad
configs, and its claims step refuses a table changed behind its back."""
import copy
import os
import re
import shutil

import pandas as pd
import pytest
import yaml

from tests.conftest import TINY, make_workdir, snakemake

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def tiny_raw():
    return yaml.safe_load(TINY.read_text())


@pytest.fixture(scope="module")
def run_a(tiny_run):
    return tiny_run


def test_full_run_produces_ledger_and_figures(run_a):
    ledger = pd.read_csv(run_a / "results/claims.csv")
    assert {"L1", "L2", "L3", "L4", "L5", "L6", "L7a", "L7e", "L8"} <= set(ledger.id)
    assert (ledger.verdict != "not run").all()
    figures = sorted(p.name for p in (run_a / "results/figures/linear").glob("*.png"))
    assert {"paths.png", "kkt.png", "geometry.png", "problem1_sweep.png", "failure_modes.png"} <= set(figures)
    assert (run_a / "results/figures/data/problem1.png").stat().st_size > 10_000
    for log in (run_a / "results/logs/linear").rglob("*.log"):
        assert "rows in" in log.read_text()
    # long jobs say where they are, with the time since they started
    assert re.search(r"\[\s+\d+\.\d s\] dropout_mc chunk 0: training \d+ models", (run_a / "results/logs/dropout/dropout_mc/chunk0.log").read_text())
    footer = (run_a / "results/claims.md").read_text().splitlines()[2]
    assert footer.startswith("config config/config.yaml | root seed 7 |") and "geometry: 6 seeds" in footer  # counted in the table
    assert list((run_a / "results/benchmarks/linear").rglob("*.tsv"))


def test_every_ledger_row_states_its_smallest_effect_and_no_claim_lacks_a_rule(run_a):
    """A verdict needs a yardstick: every decided row carries its smallest effect of interest
    (or, for identity checks and range claims, the tolerance it is read against)."""
    ledger = pd.read_csv(run_a / "results/claims.csv")
    assert "not implemented" not in set(ledger.verdict)
    decided = ledger[~ledger.verdict.isin(["not run", "not implemented"])]
    missing = decided[~(decided.sesoi > 0)].id.tolist()
    assert not missing, f"rows without a smallest effect of interest: {missing}"


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


def copy_run(src, dst):
    """A finished run in another folder, with Snakemake's records (the params each
    output was made with), so reruns are judged there as they would be in src."""
    def runtime_state(folder, names):  # Snakemake's locks, logs and script copies: not records
        return [n for n in names if n in ("locks", "incomplete", "shadow", "scripts", "log")] if folder.endswith(".snakemake") else []

    shutil.copytree(src, dst, symlinks=True, ignore=runtime_state)  # copy2: modification times kept
    return dst


def write_config(wd, cfg):
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def test_a_run_writes_only_under_results(run_a):
    made = {p.relative_to(run_a).parts[0] for p in run_a.rglob("*") if p.is_file()}
    assert made <= {"results", ".snakemake", "Snakefile", "workflow", "profiles", "CLAIMS.md", "config"}


def test_a_changed_setting_reruns_exactly_what_it_changes(run_a, tmp_path, tiny_raw, tiny):
    from regbench import studies
    wd = copy_run(run_a, tmp_path / "wd")
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2")) == {}

    def figures_reading(experiments):
        return sum(1 for f in studies.figures().values()
                   if set(f.tables) & set(experiments) and set(f.tables) <= set(tiny["experiments"]))

    cfg = copy.deepcopy(tiny_raw)
    cfg["experiments"]["geometry"]["seeds"] += 1
    write_config(wd, cfg)
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2")) == {
        "experiment": 1, "aggregate": 1, "figure": figures_reading(["geometry"]), "provenance": 1, "claims": 1, "all": 1}

    cfg = copy.deepcopy(tiny_raw)
    cfg["designs"]["collinear"]["noise"]["sigma"] = 2.0  # a design: its data and the experiments that read it
    write_config(wd, cfg)
    users = [e for e, p in tiny["experiments"].items() if p.get("design") == "collinear"]
    assert users
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2")) == {
        "data": 1, "experiment": len(users), "aggregate": len(users), "figure": figures_reading(users),
        "provenance": 1, "claims": 1, "all": 1}


def snapshot(folder, skip):
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file() and skip not in p.parents}


def test_two_configs_keep_their_results_apart(run_a, tmp_path):
    wd = copy_run(run_a, tmp_path / "wd")
    other = wd / "results" / "other"
    before = snapshot(wd / "results", other)
    (wd / "other.yaml").write_text("experiments:\n  geometry: {dims: [2, 4], seeds: 3}\n")
    planned = jobs_planned(snakemake(wd, "-n", "--cores", "2", "--configfile", "other.yaml"))
    assert planned["experiment"] == 1 and "data" not in planned  # exactly the experiments the file lists
    snakemake(wd, "--cores", "2", "--configfile", "other.yaml")
    assert "geometry: 3 seeds" in (other / "claims.md").read_text()
    assert (other / ".regbench-config").read_text().strip() == "config/config.yaml, other.yaml"
    assert list((other / "tables").glob("*.parquet")) == [other / "tables" / "geometry.parquet"]
    assert snapshot(wd / "results", other) == before  # the default run's results: not one file touched
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2")) == {}
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2", "--configfile", "other.yaml")) == {}
    # into the default run's folder: refused before any job
    proc = snakemake(wd, "-n", "--cores", "2", "--configfile", "other.yaml", "--config", "results=results", check=False)
    assert proc.returncode != 0
    assert "results/ holds the results of config 'config/config.yaml'" in proc.stdout + proc.stderr


def test_replicates_rerun_the_workflow_under_other_root_seeds_and_the_ledger_counts_agreement(tmp_path, tiny_raw):
    (tmp_path / "wd").mkdir()
    wd = make_workdir(tmp_path / "wd", tiny_raw)
    (wd / "one.yaml").write_text(yaml.safe_dump({"experiments": {"geometry": tiny_raw["experiments"]["geometry"]}}))
    snakemake(wd, "--cores", "2", "--configfile", "one.yaml", "--config", "replicates=3")
    out = wd / "results" / "one"
    ledger = pd.read_csv(out / "claims.csv")
    assert (ledger.root_seeds == 3).all() and ledger.agreement.between(1 / 3, 1).all()
    root = tiny_raw["seed"]
    for k in (1, 2):  # each replicate: the same config under root seed seed+k, in its own folder
        rep = out / "replicates" / f"seed-{root + k}"
        assert yaml.safe_load((rep / "tables" / "metadata.json").read_text())["root_seed"] == root + k
        assert (rep / ".regbench-config").read_text().strip() == "config/config.yaml, one.yaml"
        assert set(pd.read_csv(rep / "claims.csv").id) == set(ledger.id)
    geometry = pd.read_parquet(out / "tables" / "geometry.parquet")
    other = pd.read_parquet(out / "replicates" / f"seed-{root + 1}" / "tables" / "geometry.parquet")
    assert not geometry.value.equals(other.value)  # another root seed: other data
    md = (out / "claims.md").read_text()
    assert "Same verdict across root seeds" in md and "## Verdicts across root seeds" in md
    # finished replicates are kept: nothing to do on a rerun
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2", "--configfile", "one.yaml", "--config", "replicates=3")) == {}


def test_a_name_cannot_write_outside_results(tmp_path, tiny_raw):
    bad = copy.deepcopy(tiny_raw)
    bad["designs"]["../../outside/x"] = bad["designs"].pop("problem1")
    for params in bad["experiments"].values():
        if params.get("design") == "problem1":
            params["design"] = "../../outside/x"
    (tmp_path / "wd").mkdir()
    wd = make_workdir(tmp_path / "wd", bad)
    proc = snakemake(wd, "--cores", "1", check=False)
    assert proc.returncode != 0
    assert "designs: name '../../outside/x' is not allowed; allowed: letters, digits and underscore" in proc.stdout + proc.stderr
    assert not (wd / "results").exists() and not (tmp_path / "outside").exists()


def test_claims_step_refuses_a_table_changed_behind_its_back(run_a, tmp_path):
    wd = copy_run(run_a, tmp_path / "wd")
    path = wd / "results/tables/geometry.parquet"
    stat = path.stat()
    table = pd.read_parquet(path)
    table[table.seed != table.seed.max()].to_parquet(path)  # a seed lost...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ...with the old time: invisible to Snakemake
    assert jobs_planned(snakemake(wd, "-n", "--cores", "2")) == {}
    proc = snakemake(wd, "--cores", "1", "-R", "claims", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr  # the job's error reaches the console, not only its log
    assert "table geometry: results/tables/geometry.parquet differs from the checksum recorded" in text
    assert "snakemake --cores 8 --forcerun results/tables/geometry.parquet" in text


def test_a_job_error_reaches_the_console_even_when_its_log_cannot_be_written(tmp_path):
    """jobs.log_to: output to the log; an uncaught error to the console too (here the log
    is /dev/full, as on a full disk: every write to it fails)."""
    import subprocess
    import sys
    for log, expected in ((tmp_path / "job.log", "ValueError: boom"), ("/dev/full", "No space left on device")):
        code = f"from regbench import jobs; jobs.log_to({str(log)!r}); print('working'); raise ValueError('boom')"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and expected in proc.stderr, proc.stderr
        assert "working" not in proc.stdout + proc.stderr  # progress goes to the log only
    assert "working" in (tmp_path / "job.log").read_text() and "ValueError: boom" in (tmp_path / "job.log").read_text()


def test_job_progress_names_the_job_and_the_time_since_it_started(capsys, tiny):
    from regbench import jobs
    job = jobs.make("geometry", tiny)
    job.progress("seed 1 of 6")
    assert re.fullmatch(r"\[\s+\d+\.\d s\] geometry chunk 0: seed 1 of 6\n", capsys.readouterr().out)
