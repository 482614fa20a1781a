"""Every rule declares memory and run time from the measured cost model (regbench.resources,
workflow/resources.yaml), scaled by the config; the declared memory covers the measured
peak of the tiny config's jobs; neural jobs ask for a GPU exactly when the device is CUDA."""
import copy
import re
import shutil

import pytest
import yaml

from regbench import config, resources, studies

from .conftest import ROOT, make_workdir, snakemake

COEF_PATH = ROOT / "workflow" / "resources.yaml"


@pytest.fixture(scope="module")
def coef():
    return resources.load(str(COEF_PATH))


def test_every_default_experiment_and_rule_is_measured(coef):
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    missing = set(default["experiments"]) - set(coef["experiments"])
    assert not missing, f"run benchmarks/measure_resources.py fit for {sorted(missing)} (README, GPU and resources)"
    assert {"data", "aggregate", "figure", "provenance", "claims"} <= set(coef["rules"])
    for exp, c in coef["experiments"].items():
        assert c["rss_mb"] > 50 and c["cpu_s"] > 0, f"{exp}: a job is at least a Python process"
        assert c["cpu_s_per_unit"] >= 0 and c["mb_per_unit"] >= 0


def test_cost_scales_with_seeds_points_and_work_keys(coef, tiny):
    params = tiny["experiments"]["bn_batchsize"]
    u = resources.units(params)
    assert u["time"] == u["memory"] * params["steps"]  # seeds x points x steps
    more = {**params, "seeds": 2 * params["seeds"], "steps": 3 * params["steps"]}
    assert resources.units(more)["time"] == 6 * u["time"]
    assert resources.units(more)["memory"] == 2 * u["memory"]
    # chunks: the last chunk of a sweep holds what is left
    sweep = {"seeds": 1, "sweep": {"a": [1, 2, 3], "b": [0, 1]}, "chunk_size": 4}
    assert [resources.points(sweep, k) for k in range(config.n_chunks("x", sweep))] == [4, 2]
    # a bigger job never declares less
    small = resources.experiment_job(coef, tiny, "bn_batchsize", 0)
    big_cfg = copy.deepcopy(tiny)
    big_cfg["experiments"]["bn_batchsize"].update(seeds=100, steps=5000)
    big = resources.experiment_job(coef, big_cfg, "bn_batchsize", 0)
    assert big["mem_mb"] >= small["mem_mb"] and big["runtime"] > small["runtime"]


def test_an_unmeasured_experiment_is_sized_as_the_largest_measured_job(coef):
    got = resources.estimate(coef, "not_measured_yet", {"seeds": 1})
    for c in coef["experiments"].values():
        assert got["cpu_s"] >= c["cpu_s"] + c["cpu_s_per_unit"] * c["units"][1]
    assert got == resources.estimate(coef, "not_measured_yet", {"seeds": 100, "epochs": 100})


def test_gpu_requested_for_neural_jobs_only_when_the_device_is_cuda(coef, tiny, monkeypatch):
    measured = [e for e in tiny["experiments"] if e in coef["experiments"]]
    neural = next(e for e in measured if coef["experiments"][e]["uses_device"])
    linear = next(e for e in measured if not coef["experiments"][e]["uses_device"])
    for device, nvidia, want in (("cuda", False, 1), ("cpu", True, 0), ("auto", True, 1), ("auto", False, 0)):
        monkeypatch.setattr(resources, "_nvidia_here", lambda: nvidia)
        cfg = {**tiny, "device": device}
        assert resources.experiment_job(coef, cfg, neural, 0)["gpu"] == want, (device, nvidia)
        assert resources.experiment_job(coef, cfg, linear, 0)["gpu"] == 0
    # CUDA's host memory comes on top of the job's own
    monkeypatch.setattr(resources, "_nvidia_here", lambda: False)
    on_cpu = resources.experiment_job(coef, {**tiny, "device": "cpu"}, neural, 0)["mem_mb"]
    on_gpu = resources.experiment_job(coef, {**tiny, "device": "cuda"}, neural, 0)["mem_mb"]
    assert on_gpu - on_cpu >= resources.CUDA_HOST_MB - 64


def test_uses_device_flags_match_the_runners(coef):
    import importlib
    import inspect
    for exp, c in coef["experiments"].items():
        if exp not in studies.study_of():
            continue
        runners = importlib.import_module(f"regbench.studies.{studies.study_of()[exp]}.runners")
        assert c["uses_device"] == ("job.device" in inspect.getsource(runners)), exp


def _dry_run_jobs(proc) -> list[dict]:
    """(rule, resources) of every job a dry run lists."""
    jobs, rule = [], None
    for line in proc.stdout.splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line.strip())
        if m:
            rule = m.group(1)
        elif line.strip().startswith("resources:") and rule:
            res = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].replace(" ", "").split(","))
            jobs.append({"rule": rule, **res})
    return jobs


@pytest.mark.workflow
def test_gpu_config_dry_run_lists_memory_runtime_and_gpu_for_every_job(tmp_path):
    wd = make_workdir(tmp_path, yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    shutil.copy(ROOT / "config" / "gpu.yaml", wd / "config" / "gpu.yaml")
    jobs = [j for j in _dry_run_jobs(snakemake(wd, "-n", "--cores", "16", "--configfile", "config/gpu.yaml"))
            if j["rule"] != "all"]  # the target rule runs nothing
    rules = {j["rule"] for j in jobs}
    assert {"data", "experiment", "aggregate", "figure", "provenance", "claims"} <= rules
    for j in jobs:
        assert int(j["mem_mb"]) >= 256 and int(j["runtime"]) >= resources.MIN_RUNTIME_MIN, j
    assert all("gpu" in j for j in jobs if j["rule"] == "experiment")


@pytest.mark.workflow
def test_declared_memory_and_runtime_cover_the_tiny_jobs(tiny_run, tiny, coef, monkeypatch):
    jobs = resources.compare(coef, tiny, tiny_run / "results" / "benchmarks")
    n_jobs = sum(config.n_chunks(e, p) for e, p in tiny["experiments"].items())
    assert len(jobs) == n_jobs
    over = [j for j in jobs if j["rss_mb"] > j["mem_mb"]]
    assert not over, f"peak RSS above the declared mem_mb: {over}"
    slow = [j for j in jobs if j["cpu_s"] > 60 * j["runtime"]]
    assert not slow, f"CPU time above the declared runtime: {slow}"
    # the comparison can fail: coefficients that leave out the Python process under-declare
    starved = {**coef, "experiments": {e: {**c, "rss_mb": 0.0, "mb_per_unit": 0.0} for e, c in coef["experiments"].items()}}
    monkeypatch.setattr(resources, "MEM_MARGIN_MB", 0)
    assert any(j["rss_mb"] > j["mem_mb"] for j in resources.compare(starved, tiny, tiny_run / "results" / "benchmarks"))
