"""Measure the per-job cost model's coefficients (regbench.resources) and write them to
workflow/resources.yaml.

    # experiment jobs: the benchmark files of one or more finished runs, each with its config
    python benchmarks/measure_resources.py fit --run DIR [CONFIGFILE] [--run DIR2 CONFIGFILE2 ...]
    # the other rules (data, aggregate, figure, provenance, claims): rerun each once in DIR
    python benchmarks/measure_resources.py rules --run DIR [CONFIGFILE]

DIR is the Snakemake working directory of a run (its results folder is DIR/<results>),
CONFIGFILE the --configfile it was run with (none: config/config.yaml alone).

fit: per experiment, every chunk's job is a point (units, CPU-seconds, peak RSS) with units
as regbench.resources counts them; the line through the smallest- and largest-unit points
gives the fixed part (intercept) and the cost per unit (slope), both clamped at zero. An
experiment measured at one scale only gets the line from the cheapest job of its kind
(a bare process) through its point for time, a flat line for memory. CPU time, not wall time: on a shared machine wall
time measures the load, CPU time the job. Peak RSS is the largest at each scale.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from regbench import config as rbconfig
from regbench import jobs, resources, studies

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "workflow" / "resources.yaml"
HEADER = ("# Measured cost coefficients of every job (regbench.resources reads them; the rules declare\n"
          "# mem_mb, runtime and gpu from them). Written by benchmarks/measure_resources.py; rerun it\n"
          "# rather than editing by hand. cpu_s: CPU-seconds of one thread; rss_mb: peak resident MB.\n")


def load_config(run_dir: Path, configfile) -> dict:
    """The run's validated config; its results folder is the config's own, or `results`
    when the run was made with --config results=results and only that one exists."""
    extra = [Path(configfile)] if configfile else []
    schema = rbconfig.load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    cfg = rbconfig.validate(rbconfig.load(ROOT / "config" / "config.yaml", extra, {}), schema)
    if not (run_dir / cfg["results"]).exists() and (run_dir / "results").exists():
        cfg["results"] = "results"
    return cfg


def job_points(run_dir: Path, configfile) -> pd.DataFrame:
    """One row per experiment chunk: units, CPU-seconds and peak RSS from its benchmark file."""
    cfg = load_config(run_dir, configfile)
    bench = run_dir / cfg["results"] / "benchmarks"
    rows = []
    for exp, params in cfg["experiments"].items():
        study = studies.study_of()[exp]
        for chunk in range(rbconfig.n_chunks(exp, params)):
            f = bench / study / exp / f"chunk{chunk}.tsv"
            if not f.exists():
                continue
            t = pd.read_csv(f, sep="\t")
            u = resources.units(params, chunk)
            rows.append({"experiment": exp, "time_units": u["time"], "memory_units": u["memory"],
                         "cpu_s": float(t["cpu_time"].max()), "rss_mb": float(t["max_rss"].max())})
    return pd.DataFrame(rows)


def line(points: pd.DataFrame, floor: float) -> tuple[float, float]:
    """CPU time: (intercept, slope) through the peak at the smallest and at the largest units.
    Where that slope is not positive (one scale measured, or the larger job no dearer: both
    points are start-up within the noise of a loaded machine) or its intercept falls below
    `floor`, the cheapest job of its kind (a bare process): the line from `floor` through the
    largest point, everything above start-up taken as proportional to the units."""
    peak = points.groupby("time_units")["cpu_s"].max()
    lo, hi = peak.index.min(), peak.index.max()
    floor = min(floor, peak[hi])
    if hi > lo and peak[hi] > peak[lo]:
        slope = (peak[hi] - peak[lo]) / (hi - lo)
        if peak[lo] - slope * lo >= floor:
            return float(peak[lo] - slope * lo), float(slope)
    return float(floor), float((peak[hi] - floor) / hi)


def uses_device(experiment: str) -> bool:
    """Do its study's runners put tensors on job.device? (read from the runners module's source:
    a runner often hands the job to a helper that reads the device)"""
    import importlib
    import inspect
    runners = importlib.import_module(f"regbench.studies.{studies.study_of()[experiment]}.runners")
    return "job.device" in inspect.getsource(runners)


def fit(runs) -> dict:
    points = pd.concat([job_points(Path(d), c) for d, c in runs], ignore_index=True)
    points["uses_device"] = points.experiment.map(uses_device)
    # a bare job of each kind (torch on the device or not): the cheapest job measured
    floor = points.groupby("uses_device")[["cpu_s"]].min()
    out = {}
    for exp, p in points.groupby("experiment"):
        cpu0, cpu1 = line(p, floor.loc[p.uses_device.iloc[0]].cpu_s)
        # memory: flat at the largest peak. Measured peaks (120-1200 MB) are set by what a job
        # imports, not by its seeds: between the tiny and the 2-seed default-size runs they
        # move less than their scatter, so no per-unit slope could be fitted.
        rss0, rss1 = float(p.rss_mb.max()), 0.0
        out[exp] = {"cpu_s": round(float(cpu0), 3), "cpu_s_per_unit": float(f"{cpu1:.4g}"),
                    "rss_mb": round(float(rss0), 1), "mb_per_unit": float(f"{rss1:.4g}"),
                    "uses_device": uses_device(exp), "jobs": int(len(p)),
                    "units": [float(p.time_units.min()), float(p.time_units.max())],
                    "memory_units": [float(p.memory_units.min()), float(p.memory_units.max())]}
    return dict(sorted(out.items()))


def measured(cmd, cwd) -> dict:
    """CPU-seconds and peak RSS (MB) of cmd's largest process, in a fresh interpreter (ru_maxrss
    of children is a running maximum, so each measurement gets its own parent)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
             "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
             "print(u.ru_utime + u.ru_stime, u.ru_maxrss / 1024); sys.exit(r.returncode)")
    proc = subprocess.run([sys.executable, "-c", probe, *cmd], cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    cpu, rss = proc.stdout.split()[-2:]
    return {"cpu_s": round(float(cpu), 2), "rss_mb": round(float(rss), 1)}


def rules(run_dir: Path, configfile, only=None) -> dict:
    """Rerun one job of each non-experiment rule of a finished run and measure it. The CPU time
    includes Snakemake's own start-up (a few seconds): an upper bound for the rule's job."""
    cfg = load_config(run_dir, configfile)
    R = cfg["results"]
    exp = next(iter(cfg["experiments"]))
    design = next(iter(sorted(jobs.seeds_needed(cfg))))  # a design some experiment stores
    fig = next(n for n, f in studies.figures().items() if set(f.tables) <= set(cfg["experiments"]))
    targets = {"data": f"{R}/data/{design}.npz", "aggregate": f"{R}/tables/{exp}.parquet",
               "figure": f"{R}/{studies.figures()[fig].path(fig)}", "provenance": f"{R}/tables/metadata.json",
               "claims": f"{R}/claims.md"}
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    base = [snakemake, "-s", str(ROOT / "Snakefile"), "-d", str(run_dir), "--cores", "1", "--quiet"]
    if configfile:
        base += ["--configfile", str(Path(configfile).resolve())]
    base += ["--config", f"results={R}"]
    out = yaml.safe_load(OUT.read_text()).get("rules", {}) if OUT.exists() else {}
    for rule, target in targets.items():
        if only and rule not in only:
            continue
        try:
            out[rule] = measured(base + ["--forcerun", target, "--allowed-rules", rule, "--", target], run_dir)
        except RuntimeError as e:  # keep the rule's previous value; say so
            print(f"{rule}: not measured, previous value kept\n{e}", file=sys.stderr)
            continue
    return out


def write(section: str, values: dict, note: str) -> None:
    data = yaml.safe_load(OUT.read_text()) if OUT.exists() else {}
    data[section] = values
    data.setdefault("notes", {})[section] = note
    OUT.write_text(HEADER + yaml.safe_dump(data, sort_keys=False, width=110))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["fit", "rules"])
    ap.add_argument("--run", nargs="+", action="append", required=True, metavar=("DIR", "CONFIGFILE"),
                    help="a run's working directory and the --configfile it used")
    ap.add_argument("--note", default="", help="how and where the runs were made (stored with the numbers)")
    ap.add_argument("--only", nargs="+", help="rules: measure only these rules (the others keep their values)")
    args = ap.parse_args(argv)
    runs = [(r[0], r[1] if len(r) > 1 else None) for r in args.run]
    if args.what == "fit":
        write("experiments", fit(runs), args.note)
    else:
        write("rules", rules(Path(runs[0][0]), runs[0][1], args.only), args.note)
    print(OUT.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
