"""What each job asks the scheduler for: memory, run time and a GPU, from measurement.

A job's cost is a fixed part (one Python process: imports, data, start-up) plus a part
proportional to its work units, both per experiment:

    units = seeds x grid points in the chunk x the work keys it has (epochs, steps, ...)

Per experiment, the fixed part and the cost per unit (CPU-seconds, peak MB) were fitted to
the benchmark files of measured runs (benchmarks/measure_resources.py reads their
results/benchmarks/*.tsv) and are stored as data in workflow/resources.yaml with the units
they were measured at; this module scales them to any config. Run time is estimated in
CPU-seconds of one thread (every job runs on `threads` = 1 by default), which on an idle
core is its wall time. The work keys multiply even where the work adds (epochs of training
plus MC samples at evaluation), so extrapolating far beyond the measured units
overestimates; and it misses what it does not count (image size, cv folds, a busy node):
declared values carry safety factors.

GPU: a job whose runner puts tensors on the config's device (`uses_device` in the data)
asks for one GPU when that device is CUDA: `device: cuda`, or `auto` on a machine with an
NVIDIA driver. The resource is `gpu`, which snakemake-executor-plugin-slurm turns into
`--gpus=1`; other executors ignore it unless `--resources gpu=N` limits it.
"""
import functools
import math
import shutil
from pathlib import Path

import yaml

from regbench.config import n_chunks, sweep_points

# Params that multiply a job's work linearly where present: iterations and repetitions.
WORK_KEYS = ("epochs", "steps", "n_steps", "bootstrap", "datasets", "n_masks", "mc_samples", "n_lambdas")
# List params whose size sets the work per iteration: conv layer widths (the second conv,
# w0 x w1 channels, dominates the FLOPs) and the dimensions a geometry sweep visits.
SIZE_KEYS = {"widths": math.prod, "dims": sum}

TIME_SAFETY = 3.0      # declared run time / estimate: measured CPU time scatters ~1.5x under load
MEM_SAFETY = 1.3       # declared memory / estimate, plus MEM_MARGIN_MB
MEM_MARGIN_MB = 256    # allocator slack and page cache a job's RSS does not show
MIN_RUNTIME_MIN = 2    # shortest request: one job's start-up on a busy node
# Host memory a process gains when it initializes CUDA (driver, context, kernels): an
# assumption until the device check measures it (benchmarks/device_check.sh prints the
# tiny workflow's peak RSS on CUDA next to what was declared).
CUDA_HOST_MB = 2048
# Drawing and writing a design's datasets, per MB of float64 arrays: assumed 20 MB/s on one
# core (numpy's normal draws alone run at ~100 MB/s); the tiny config's data are too small
# (< 1 MB) to measure it.
DATA_S_PER_MB = 0.05


@functools.cache
def load(path) -> dict:
    """The measured coefficients (workflow/resources.yaml)."""
    return yaml.safe_load(Path(path).read_text())


def _factor(params: dict) -> float:
    f = 1.0
    for key in WORK_KEYS:
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            f *= value
    for key, size in SIZE_KEYS.items():
        if isinstance(params.get(key), list) and params[key]:
            f *= size(params[key])
    return f


def points(params: dict, chunk: int) -> int:
    """Grid points in one chunk (1 without a sweep)."""
    if "sweep" not in params:
        return 1
    n = len(sweep_points(params))
    return min(params["chunk_size"], n - chunk * params["chunk_size"])


def units(params: dict, chunk: int = 0) -> dict:
    """Work units of one job: 'time' (seeds x points x work keys) and 'memory' (seeds x points)."""
    models = params["seeds"] * points(params, chunk)
    return {"time": models * _factor(params), "memory": models}


def _coefficients(coef: dict, experiment: str) -> dict:
    # An experiment not measured yet is sized as the largest job measured, flat (units of
    # different experiments do not compare): until benchmarks/measure_resources.py is run again.
    per = coef["experiments"]
    if experiment in per:
        return per[experiment]
    return {"cpu_s": max(e["cpu_s"] + e["cpu_s_per_unit"] * e["units"][1] for e in per.values()), "cpu_s_per_unit": 0.0,
            "rss_mb": max(e["rss_mb"] + e["mb_per_unit"] * e["memory_units"][1] for e in per.values()),
            "mb_per_unit": 0.0, "uses_device": True}


def estimate(coef: dict, experiment: str, params: dict, chunk: int = 0) -> dict:
    """Expected CPU-seconds and peak RSS (MB) of one chunk's job, before safety factors:
    the experiment's fixed part plus its cost per unit times the job's units."""
    c, u = _coefficients(coef, experiment), units(params, chunk)
    return {"cpu_s": c["cpu_s"] + c["cpu_s_per_unit"] * u["time"],
            "rss_mb": c["rss_mb"] + c["mb_per_unit"] * u["memory"]}


@functools.cache
def _nvidia_here() -> bool:
    # Without importing torch (seconds, at every DAG build): a driver is what `auto` would use.
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()


def wants_gpu(device: str) -> bool:
    """Does a config's `device` put neural jobs on CUDA here?"""
    return device == "cuda" or (device == "auto" and _nvidia_here())


def _round_up(x: float, step: int) -> int:
    return int(math.ceil(x / step) * step)


def declare_mem_mb(estimate_mb: float, gpu: bool = False) -> int:
    return _round_up(estimate_mb * MEM_SAFETY + MEM_MARGIN_MB + (CUDA_HOST_MB if gpu else 0), 64)


def declare_runtime_min(cpu_s: float) -> int:
    return max(MIN_RUNTIME_MIN, math.ceil(cpu_s * TIME_SAFETY / 60))


def experiment_job(coef: dict, cfg: dict, experiment: str, chunk: int) -> dict:
    """mem_mb, runtime (minutes) and gpu of one experiment chunk under a validated config."""
    params = cfg["experiments"][experiment]
    est = estimate(coef, experiment, params, chunk)
    gpu = bool(_coefficients(coef, experiment).get("uses_device")) and wants_gpu(cfg.get("device", "auto"))
    return {"mem_mb": declare_mem_mb(est["rss_mb"], gpu), "runtime": declare_runtime_min(est["cpu_s"]),
            "gpu": int(gpu)}


def data_job(coef: dict, design: dict, seeds: int) -> dict:
    """The data rule: every seed's dataset of a design (float64), built and written once."""
    rows = design["n_train"] + design["n_val"] + design["n_test"]
    arrays_mb = 8 * (4 * design["p"] ** 2 + 2 * seeds * rows * design["p"]) / 2**20  # as regbench.config sizes it
    base = coef["rules"]["data"]
    return {"mem_mb": declare_mem_mb(base["rss_mb"] + arrays_mb),
            "runtime": declare_runtime_min(base["cpu_s"] + DATA_S_PER_MB * arrays_mb)}


def rule_job(coef: dict, rule: str) -> dict:
    """A rule whose cost does not grow with the config's scale in any way that matters here."""
    r = coef["rules"][rule]
    return {"mem_mb": declare_mem_mb(r["rss_mb"]), "runtime": declare_runtime_min(r["cpu_s"])}


def plan(coef: dict, cfg: dict) -> list[dict]:
    """Every experiment job of a config with its estimate and declaration (for sizing a config)."""
    out = []
    for exp, params in cfg["experiments"].items():
        for chunk in range(n_chunks(exp, params)):
            est = estimate(coef, exp, params, chunk)
            out.append({"experiment": exp, "chunk": chunk, **est, **experiment_job(coef, cfg, exp, chunk),
                        "uses_device": bool(_coefficients(coef, exp).get("uses_device"))})
    return out


class Declared:
    """The rules' `resources:` values, as Snakemake callables of the job's wildcards."""

    def __init__(self, path, cfg: dict):
        self.coef, self.cfg = load(str(path)), cfg

    def experiment(self, key: str):
        """mem_mb, runtime or gpu of an experiment chunk's job."""
        return lambda wildcards: experiment_job(self.coef, self.cfg, wildcards.experiment, int(wildcards.chunk))[key]

    def data(self, key: str):
        """mem_mb or runtime of a design's data job."""
        from regbench.jobs import seeds_needed
        return lambda wildcards: data_job(self.coef, self.cfg["designs"][wildcards.design],
                                          seeds_needed(self.cfg)[wildcards.design])[key]

    def whole_run(self, key: str, cores: int) -> int:
        """mem_mb or runtime of a nested run of this config's experiment jobs on `cores` cores
        (the replicate rule): the `cores` largest memory requests side by side; the run time
        of all jobs spread over the cores, plus the longest."""
        jobs = plan(self.coef, self.cfg)
        if not jobs:
            return declare_mem_mb(0) if key == "mem_mb" else MIN_RUNTIME_MIN
        cores = max(1, int(cores))
        if key == "mem_mb":
            return sum(sorted((j["mem_mb"] for j in jobs), reverse=True)[:cores])
        runtimes = [j["runtime"] for j in jobs]
        return math.ceil(sum(runtimes) / cores) + max(runtimes)

    def rule(self, name: str, key: str) -> int:
        """mem_mb or runtime of a rule measured once (aggregate, figure, provenance, claims)."""
        return rule_job(self.coef, name)[key]


def compare(coef: dict, cfg: dict, bench_dir) -> list[dict]:
    """Each finished experiment job of a run (its benchmark file under bench_dir) next to what
    its rule declares: peak RSS vs mem_mb, CPU time vs runtime."""
    import pandas as pd
    from regbench import studies
    out = []
    for exp, params in cfg["experiments"].items():
        for chunk in range(n_chunks(exp, params)):
            f = Path(bench_dir) / studies.study_of()[exp] / exp / f"chunk{chunk}.tsv"
            if f.exists():
                t = pd.read_csv(f, sep="\t")
                out.append({"experiment": exp, "chunk": chunk, "rss_mb": float(t["max_rss"].max()),
                            "cpu_s": float(t["cpu_time"].max()), "wall_s": float(t["s"].max()),
                            **experiment_job(coef, cfg, exp, chunk)})
    return out


# ---------------------------------------------------------------- sizing a config
# Assumed speed-up of the batched engine on one H200-class GPU over one CPU thread, for the
# per-unit part of a neural job: DESIGN.md measured 6.8x at K = 32 models and 25x at K = 128
# (MLP 100-128-128-10); gpu.yaml's jobs train 40-800 models at once. An assumption until
# benchmarks/device_check.sh measures bench_engine on the GPU; the README states it.
GPU_SPEEDUP = 10.0
CUDA_INIT_S = 10.0     # per neural job on CUDA: context creation and kernel loading (assumed)


def wall_estimate(jobs: list[dict], cores: int, speedup: float = GPU_SPEEDUP, gpu: bool = True) -> dict:
    """Seconds for a plan on one machine: CPU work spread over `cores`; on a GPU, the neural
    jobs' per-unit work runs on the one GPU one after another (processes share it)."""
    gpu_s = sum(j["cpu_s"] - j["fixed_s"] for j in jobs if gpu and j["uses_device"]) / speedup
    cpu_s = sum(j["fixed_s"] + (CUDA_INIT_S if gpu and j["uses_device"] else 0) for j in jobs)
    cpu_s += sum(j["cpu_s"] - j["fixed_s"] for j in jobs if not (gpu and j["uses_device"]))
    # the GPU and the cores work side by side: the busier of the two sets the wall time
    return {"gpu_s": gpu_s, "cpu_s": cpu_s, "wall_s": max(gpu_s, cpu_s / cores)}


def main(argv=None) -> int:
    """`python -m regbench.resources [CONFIGFILE ...]`: every experiment's jobs under a config
    (config/config.yaml with the files applied) with estimated CPU time and declared requests,
    and the wall time on one machine with and without a GPU."""
    import argparse

    from regbench import config as rbconfig
    root = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    ap.add_argument("configfiles", nargs="*")
    ap.add_argument("--cores", type=int, default=16)
    ap.add_argument("--speedup", type=float, default=GPU_SPEEDUP)
    args = ap.parse_args(argv)
    schema = rbconfig.load_schema(root / "workflow" / "schemas" / "config.schema.yaml")
    cfg = rbconfig.validate(rbconfig.load(root / "config" / "config.yaml", [Path(f) for f in args.configfiles], {}),
                            schema)
    coef = load(str(root / "workflow" / "resources.yaml"))
    jobs = plan(coef, cfg)
    for j in jobs:
        j["fixed_s"] = _coefficients(coef, j["experiment"])["cpu_s"]
    print("| experiment | jobs | CPU-s (estimate, all jobs) | declared mem_mb (largest) | declared runtime min (largest) | GPU job |")
    print("|---|---|---|---|---|---|")
    for exp in cfg["experiments"]:
        js = [j for j in jobs if j["experiment"] == exp]
        print(f"| {exp} | {len(js)} | {sum(j['cpu_s'] for j in js):,.0f} | {max(j['mem_mb'] for j in js)} "
              f"| {max(j['runtime'] for j in js)} | {'yes' if js[0]['uses_device'] else 'no'} |")
    total = sum(j["cpu_s"] for j in jobs)
    neural = sum(j["cpu_s"] for j in jobs if j["uses_device"])
    on_cpu = wall_estimate(jobs, args.cores, gpu=False)
    on_gpu = wall_estimate(jobs, args.cores, args.speedup)
    print(f"\n{len(jobs)} experiment jobs, {total:,.0f} CPU-s estimated ({neural:,.0f} in neural jobs).")
    print(f"One machine, {args.cores} cores, CPU only: about {on_cpu['wall_s'] / 60:,.0f} min.")
    print(f"Same machine with one GPU (neural per-unit work {args.speedup:g}x faster, "
          f"{on_gpu['gpu_s'] / 60:,.0f} GPU-min): about {on_gpu['wall_s'] / 60:,.0f} min "
          "(plus the aggregate, figure and claims jobs).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
