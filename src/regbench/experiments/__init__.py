"""Experiment runners: each turns (params, config, stored data, chunk) into a tidy table.

Tidy schema: one row per measured number, with columns
    experiment, seed, metric, value
plus whatever identifies the row inside the experiment (method, lam, l1_ratio,
feature, sweep keys, p, epoch, ...). Everything downstream is pandas over this shape.

A study is a module of this package with a dict RUNNERS: experiment name ->
fn(params, cfg, data, chunk) -> DataFrame. MODULE_OF maps every experiment to
its module without importing it, so the Snakefile can plan jobs without
paying for torch; a job imports only its own study.
"""
import importlib
import sys

# experiment -> study module (also the results/<study>/ folder)
MODULE_OF = {
    **dict.fromkeys(["paths", "orthonormal", "conditioning", "bayes_map", "geometry", "problem1",
                     "problem1_sweep", "failure_modes"], "linear"),
    **dict.fromkeys(["dropout_expectation", "dropout_mc", "dropout_rates"], "dropout"),
    **dict.fromkeys(["bn_dropout", "bn_batchsize", "bn_stats"], "batchnorm"),
    **dict.fromkeys(["early_stopping", "adamw_vs_l2", "label_smoothing"], "training"),
    **dict.fromkeys(["augmentation", "finetune"], "augmentation"),
    **dict.fromkeys(["gd_vs_ridge", "sgd_l2_decay", "adam_l2_decay", "noise_vs_ridge", "bias_variance"], "implicit"),
}
STUDIES = sorted(set(MODULE_OF.values()))


def needs_data(name: str, params: dict) -> str | None:
    """The design whose stored datasets an experiment reads (sweeps and neural
    studies draw their own data in the job)."""
    if MODULE_OF.get(name) != "linear" or "sweep" in params:
        return None
    return params.get("design")


def run(name: str, cfg: dict, chunk: int = 0, data: dict | None = None):
    """Run one chunk of one experiment; returns its tidy table."""
    params = cfg["experiments"][name]
    if data is not None:  # the stored design may hold more seeds than this experiment uses
        data = {k: (v[: params["seeds"]] if k.startswith(("X_", "y_")) else v) for k, v in data.items()}
    module = importlib.import_module(f"regbench.experiments.{MODULE_OF[name]}")
    if "torch" in sys.modules:  # the study uses torch: one thread per job unless configured
        sys.modules["torch"].set_num_threads(cfg["threads"])
    table = module.RUNNERS[name](params, cfg, data, chunk)
    if "experiment" not in table:
        table.insert(0, "experiment", name)
    return table.reset_index(drop=True)


def seeds_needed(cfg: dict) -> dict:
    """Per design: the most seeds any experiment reads from its stored datasets."""
    out = {}
    for name, params in cfg["experiments"].items():
        design = needs_data(name, params)
        if design:
            out[design] = max(out.get(design, 0), params["seeds"])
    return out
