"""Training-time regularization with the batched MLP engine: early stopping with
patience and best-weight restore (N8), AdamW vs Adam with L2 over an lr x decay
grid (N12), and label smoothing's effect on calibration (N13)."""

# Metrics that may be non-finite for some seeds (regbench.checks): a reliability
# bin that holds no prediction in a seed has no accuracy or mean confidence.
NONFINITE = {"label_smoothing": ("bin_accuracy", "bin_confidence")}


def problems(cfg: dict) -> list[str]:
    """AdamW multiplies w by (1 - lr * decay) each step: at >= 1 it flips or zeroes every weight."""
    out = []
    for exp, params in cfg["experiments"].items():
        grid = params.get("grids", {}).get("adamw") if exp == "adamw_vs_l2" else None
        if grid and max(grid["lrs"]) * max(grid["decays"]) >= 1:
            out.append(f"experiments.{exp}.grids.adamw: lr * decay reaches {max(grid['lrs']) * max(grid['decays']):g}; "
                       "allowed: below 1 (each step multiplies the weights by 1 - lr * decay)")
    return out
