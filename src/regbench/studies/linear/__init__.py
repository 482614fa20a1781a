"""Penalties on linear models (claims L1-L9), float64, exact solvers: lasso, ridge
and elastic-net paths, KKT dead zone, soft thresholding, conditioning, MAP
equivalences, L1-ball geometry, the document's Problem 1 design and its sweep,
the failure modes of reading a zero L1 weight as "useless", and groups of very
different sizes that need different regularization (L9)."""

# Experiments that read their design's stored datasets (results/data/<design>.npz);
# problem1_sweep redraws its design at every sweep cell instead.
STORED_DESIGN = ("paths", "conditioning", "bayes_map", "problem1")


def problems(cfg: dict) -> list[str]:
    """Cross-key checks a schema cannot express, each naming its key."""
    out = []
    exps, designs = cfg["experiments"], cfg.get("designs", {})
    ortho = exps.get("orthonormal")
    if ortho and ortho["p"] > ortho["n"]:
        out.append(f"experiments.orthonormal.p: {ortho['p']} exceeds n = {ortho['n']} (an orthonormal design needs p <= n)")
    sweep = exps.get("problem1_sweep")
    if sweep and "covariance.r" in sweep["sweep"] and sweep["design"] in designs:
        family = designs[sweep["design"]]["covariance"]["family"]
        if family != "twins":
            out.append(f"experiments.problem1_sweep.sweep.covariance.r: design {sweep['design']!r} has family {family!r}; "
                       "covariance.r needs family twins")
    return out


def details(tables: dict) -> str:
    """The hyper-parameters tuning chose on Problem 1, below the ledger."""
    if "problem1" not in tables:
        return ""
    from regbench import tables as rbtables
    return ("\n## Tuned hyper-parameters (problem1; mean, min, max over seeds)\n\n"
            + rbtables.to_markdown(rbtables.chosen_hyperparameters(tables["problem1"])))
