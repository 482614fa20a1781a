"""Implicit and optimizer-level regularization on least squares: early-stopped
gradient descent vs ridge (N9), SGD's L2 = weight decay (N10), Adam+L2's decay
divided by sqrt(v) vs AdamW (N11), input-noise injection vs ridge (N15), and the
measured bias and variance of each technique against the document's table (N16)."""


def stream(experiment: str) -> tuple:
    """This study's seeds were keyed (study, experiment) before Job.rng existed;
    keeping the key keeps every number of earlier runs."""
    return ("implicit", experiment)


def problems(cfg: dict) -> list[str]:
    """Cross-key checks a schema cannot express, each naming its key."""
    out, exps, designs = [], cfg["experiments"], cfg["designs"]
    gd = exps.get("gd_vs_ridge")
    if gd and gd["design"] in designs and designs[gd["design"]]["p"] < 2:  # the slope over eigenvalues needs two
        out.append(f"experiments.gd_vs_ridge.design: {gd['design']!r} has p = 1; allowed: a design with p >= 2")
    return out
