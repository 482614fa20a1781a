"""Experiment runners: each turns (params, data, root seed) into a tidy table.

Tidy schema: one row per measured number, with columns
    experiment, seed, metric, value
plus whatever identifies the row inside the experiment (method, lam, l1_ratio,
feature, sweep keys, p, ...). Everything downstream is pandas over this shape.
"""




def _linear():
    from regbench.experiments import linear
    return {
        "paths": lambda p, c, d, k: linear.paths(p, d, c["seed"]),
        "orthonormal": lambda p, c, d, k: linear.orthonormal(p, c["seed"]),
        "conditioning": lambda p, c, d, k: linear.conditioning(p, d, c["seed"]),
        "bayes_map": lambda p, c, d, k: linear.bayes_map(p, d, c["seed"]),
        "geometry": lambda p, c, d, k: linear.geometry(p, c["seed"]),
        "problem1": lambda p, c, d, k: linear.problem1(p, d, c["seed"]),
        "problem1_sweep": lambda p, c, d, k: linear.problem1_sweep(
            p, c["designs"][p["design"]], p["design"], _chunk(p, k), c["seed"]),
        "failure_modes": lambda p, c, d, k: linear.failure_modes(p, c["seed"]),
    }


def _chunk(params, k):
    from regbench.config import chunk_points
    return chunk_points(params, k)


# Which study each experiment belongs to (the results/<study>/ folder).
STUDIES = {"linear": ["paths", "orthonormal", "conditioning", "bayes_map", "geometry", "problem1", "problem1_sweep", "failure_modes"]}
STUDY_OF = {e: s for s, names in STUDIES.items() for e in names}


def needs_data(name: str, params: dict) -> str | None:
    """The design whose stored datasets an experiment reads (sweeps draw their own variants)."""
    return None if "sweep" in params else params.get("design")


def run(name: str, cfg: dict, chunk: int = 0, data: dict | None = None):
    """Run one chunk of one experiment; returns its tidy table."""
    params = cfg["experiments"][name]
    if data is not None:  # the stored design may hold more seeds than this experiment uses
        data = {k: (v[: params["seeds"]] if k.startswith(("X_", "y_")) else v) for k, v in data.items()}
    table = {**_linear()}[name](params, cfg, data, chunk)
    table.insert(0, "experiment", table.pop("experiment")) if "experiment" in table else None
    return table.reset_index(drop=True)


def seeds_needed(cfg: dict) -> dict:
    """Per design: the most seeds any experiment reads from its stored datasets."""
    out = {}
    for name, params in cfg["experiments"].items():
        design = needs_data(name, params)
        if design:
            out[design] = max(out.get(design, 0), params["seeds"])
    return out


__all__ = ["run", "needs_data", "seeds_needed", "STUDIES", "STUDY_OF"]
