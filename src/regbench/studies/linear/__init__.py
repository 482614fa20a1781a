"""Penalties on linear models (claims L1-L9), float64, exact solvers: lasso, ridge
and elastic-net paths, KKT dead zone, soft thresholding, conditioning, MAP
equivalences, L1-ball geometry, the document's Problem 1 design and its sweep,
the failure modes of reading a zero L1 weight as "useless", and groups of very
different sizes that need different regularization (L9)."""

# Experiments that read their design's stored datasets (results/data/<design>.npz);
# problem1_sweep redraws its design at every sweep cell instead.
STORED_DESIGN = ("paths", "conditioning", "bayes_map", "problem1")

# Metrics that may be non-finite for some seeds (regbench.checks): Nogueira stability
# is undefined when every bootstrap keeps all features or none (an enet tuned to ridge);
# the grouping gap when a fit zeroes every source-twin pair. Those seeds are left out.
NONFINITE = {"problem1": ("stability", "stability_signal"),
             "problem1_sweep": ("stability", "stability_signal", "grouping")}


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
    if sweep and "coef.placement" in sweep["sweep"] and sweep["design"] in designs:
        out += placement_problems(designs[sweep["design"]], sweep)
    p1 = exps.get("problem1")
    if p1 and p1["design"] in designs and designs[p1["design"]]["p"] < 2:  # selection stability needs two features
        out.append(f"experiments.problem1.design: {p1['design']!r} has p = 1; allowed: a design with p >= 2")
    grp = exps.get("groups")
    if grp and grp["min_lambda"] >= grp["max_lambda"]:
        out.append(f"experiments.groups.min_lambda: {grp['min_lambda']} is not below max_lambda = {grp['max_lambda']}")
    return out


def placement_problems(design: dict, sweep: dict) -> list[str]:
    """What the sweep's coef.placement values cannot build on its design, once per message."""
    from regbench import data
    from regbench.config import apply_overrides, sweep_points
    seen = []
    for point in sweep_points(sweep):
        for msg in data.placement_problems(apply_overrides(design, point)):
            where = "experiments.problem1_sweep.sweep." if msg.startswith(("coef.placement", "covariance.r")) else \
                f"designs.{sweep['design']}."
            if where + msg not in seen:
                seen.append(where + msg)
    return seen


# A tuned value on an open edge of its grid in more than 5% of seeds means the
# grid, not the method, may decide the comparison: the ledger says so.
EDGE_SHARE_MAX = 0.05
# Columns of the tuned tables that are not a regime (sweep cell, group size).
NOT_CELLS = {"experiment", "seed", "method", "metric", "value", "setting", "group", "feature", "block", "role"}
PARAMETER = {"lam_on_edge": "lambda", "l1_ratio_on_edge": "l1_ratio"}


def details(tables: dict) -> str:
    """Below the ledger: the hyper-parameters tuning chose on Problem 1, and how often
    each tuned value sits on an open edge of its grid, per experiment and claim."""
    from regbench import tables as rbtables
    out = ""
    if "problem1" in tables:
        out += ("\n## Tuned hyper-parameters (problem1; mean, min, max over seeds)\n\n"
                + rbtables.to_markdown(rbtables.chosen_hyperparameters(tables["problem1"])))
    shares = edge_shares(tables)
    if not shares.empty:
        out += ("\n## Tuned values on a grid edge (linear study)\n\n"
                "Share of the seeds' picks (seed x sweep cell or group) on an open end of the grid, where a better "
                "value may lie beyond it; ends that are limits of the parameter (lambda_max of a lasso or elastic-net "
                "path, lambda = 0 where a grid includes least squares, l1_ratio 0 and 1) are not edges. Worst cell: "
                "the regime (sweep cell, group size) with the largest share.\n\n"
                + rbtables.to_markdown(shares) + edge_sentences(shares) + limit_picks(tables))
    return out


def _claims_reading(experiment: str) -> str:
    """IDs of the claims whose rule or figure reads an experiment's table."""
    from regbench import studies
    figures = studies.figures()
    ids = [c.id for c in studies.claims().values()
           if experiment in c.needs or (c.figure in figures and experiment in figures[c.figure].tables)]
    return ", ".join(ids) or "-"


def edge_shares(tables: dict):
    """DataFrame, per experiment, tuned method (and setting) and parameter: the
    claims reading it, picks, share of picks on an edge, the worst cell."""
    import pandas as pd
    rows = []
    for exp, t in tables.items():
        if exp not in _schema_names() or "metric" not in t or not t.metric.isin(list(PARAMETER)).any():
            continue
        e = t[t.metric.isin(list(PARAMETER))]
        keys = [k for k in ("method", "setting") if k in e and e[k].notna().any()]
        for key, g in e.groupby(keys + ["metric"], dropna=False):
            label = " ".join(k for k in key[:-1] if isinstance(k, str))
            rows.append(dict(experiment=exp, claims=_claims_reading(exp), method=label, tuned=PARAMETER[key[-1]],
                             picks=len(g), on_edge=float(g.value.mean()), worst_cell=_worst_cell(g)))
    return pd.DataFrame(rows)


def _worst_cell(g) -> str:
    """'key=value, ...: share' of the regime with the largest edge share, or '-' without regimes."""
    cells = [c for c in g.columns if c not in NOT_CELLS and g[c].notna().any()]
    if not cells:
        return "-"
    shares = g.groupby(cells).value.mean()
    if not shares.max() > 0:
        return "-"
    k = shares.idxmax()
    k = k if isinstance(k, tuple) else (k,)
    return ", ".join(f"{n}={v:g}" if isinstance(v, (int, float)) else f"{n}={v}" for n, v in zip(cells, k)) + f": {shares.max():.0%}"


def _schema_names() -> set:
    from regbench import studies
    return set(studies.schema("linear"))


def edge_sentences(shares) -> str:
    """A plain sentence per claim whose tuned values sit on an edge in more than 5% of picks."""
    high = shares[shares.on_edge > EDGE_SHARE_MAX]
    worst = lambda r: f" (worst cell {r.worst_cell})" if r.worst_cell != "-" else ""  # noqa: E731
    lines = [f"- **{r.claims}** ({r.experiment}): the tuned {r.tuned} of {r.method} is on an open edge of its grid in "
             f"{r.on_edge:.0%} of {r.picks} picks{worst(r)}, above {EDGE_SHARE_MAX:.0%}: its best value may lie outside "
             "the grid, so the comparison may handicap it." for r in high.itertuples()]
    return ("\n" + "\n".join(lines) + "\n") if lines else f"\nEvery share is at most {EDGE_SHARE_MAX:.0%}.\n"


def limit_picks(tables: dict) -> str:
    """How often the tuned elastic net chose an end of the family (the lasso, ridge)
    and a tuned lambda was 0 (least squares): picks at a limit, which no wider grid changes."""
    lines = []
    for exp, t in tables.items():
        if exp not in _schema_names() or "metric" not in t or "method" not in t:
            continue
        if not (t.metric == "l1_ratio").any():  # not tuned by fit_tuned: its grids hold no limit
            continue
        a = t[(t.metric == "l1_ratio") & (t.method == "enet")].value
        if a.size:
            lines.append(f"- {exp}: the tuned elastic net is the lasso (l1_ratio 1) in {(a == 1).mean():.0%} and ridge "
                         f"(l1_ratio 0) in {(a == 0).mean():.0%} of {a.size} picks")
        lam = t[(t.metric == "lam") & (t.method != "ols")].groupby("method").value
        ols = ", ".join(f"{m} {share:.0%}" for m, share in lam.apply(lambda v: (v == 0).mean()).items())
        if ols:
            lines.append(f"- {exp}: tuned lambda 0 (least squares): {ols} of picks")
    return ("\nPicks at a limit of the parameter:\n\n" + "\n".join(lines) + "\n") if lines else ""
