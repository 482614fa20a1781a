"""Verdict rule for the fine-tuning claim N17 (see CLAIMS.md): the full recipe against the
baseline (all parts off), and each part by the loss from removing it from the full recipe,
paired over seeds per training-set size. No torch here: figures import it."""
import pandas as pd

from regbench.verdicts import claim, pts as _pts, regimes, row, worst
from regbench.stats import mean_ci, verdict

# ---------------------------------------------------------------- N17
# Problem 3's recipe parts, as named in the finetune experiment's arms (no_<part>, only_<part>).
RECIPE = ("warmup", "adamw", "label_smoothing", "early_stopping", "clipping", "layer_decay")
# Smallest effect of interest of a test-accuracy gain: 1 point.
ACC_SESOI = 0.01


def ft_gains(df: pd.DataFrame, a: str, b: str, metric: str = "acc", split: str = "test") -> pd.DataFrame:
    """Per (n_train, seed): metric of arm a minus arm b on a split (paired: same data, init, order)."""
    d = df[(df.metric == metric) & (df.split == split) & df.arm.isin([a, b])]
    w = d.pivot_table(index=["n_train", "seed"], columns="arm", values="value")
    if a not in w or b not in w:
        return pd.DataFrame(columns=["n_train", "seed", "gain"])
    return (w[a] - w[b]).rename("gain").reset_index()


def ft_cells(df: pd.DataFrame, a: str, b: str, metric: str = "acc", claimed: str = ">") -> pd.DataFrame:
    """Per n_train: mean of a - b with its interval and verdict against 0."""
    rows = []
    for n, s in ft_gains(df, a, b, metric).groupby("n_train"):
        m, lo, hi = mean_ci(s.gain.to_numpy())
        rows.append(dict(n_train=n, mean=m, lo=lo, hi=hi, verdict=verdict(lo, hi, 0.0, claimed)))
    return pd.DataFrame(rows, columns=["n_train", "mean", "lo", "hi", "verdict"])


def ft_judged(df: pd.DataFrame, a: str, b: str) -> dict:
    """Arm a minus arm b in test accuracy, judged over the training-set sizes (Holm over sizes, pooled effect)."""
    g = ft_gains(df, a, b)
    return regimes({f"n={int(n)}": s.set_index("seed").gain for n, s in g.groupby("n_train")}, ">", 0.0, ACC_SESOI)[0]


def ft_parts(df: pd.DataFrame) -> dict:
    """N17's parts: the full recipe vs the baseline, and each part's contribution inside the recipe
    (full minus full-without-it), each per training-set size."""
    out = {"recipe": ft_cells(df, "full", "baseline")}
    for c in RECIPE:
        if (df.arm == f"no_{c}").any():
            out[c] = ft_cells(df, "full", f"no_{c}")
    return out


def _ft_line(c: pd.DataFrame) -> str:
    return ", ".join(f"{_pts(r['mean'])} [{_pts(r.lo)}, {_pts(r.hi)}] at n={int(r.n_train)}" for _, r in c.iterrows())


@claim("N17", "Problem 3's fine-tuning recipe (AdamW, warmup, label smoothing, early stopping, gradient clipping, "
       "layer-wise lr decay) improves a fine-tuned pretrained model, each part contributing",
       ["finetune"], figure="finetune_ablation")
def n17(t):
    df = t["finetune"]
    p = ft_parts(df)
    rec = p["recipe"]
    judged = {k: ft_judged(df, "full", "baseline" if k == "recipe" else f"no_{k}") for k in p}
    parts_v = {k: j["verdict"] for k, j in judged.items()}
    v = worst(*parts_v.values())  # the recipe and each of its parts are separate sub-claims
    contrib = {c: p[c]["mean"].mean() for c in RECIPE if c in p}
    ranked = sorted(contrib, key=contrib.get, reverse=True)
    alone = {c: ft_cells(df, f"only_{c}", "baseline")["mean"].mean() for c in RECIPE if (df.arm == f"only_{c}").any()}
    extra = []
    for ref, label in (("scratch", "the full recipe from a random init"), ("head_only", "the full recipe with the conv layers frozen")):
        if (df.arm == ref).any():
            extra.append(f"full minus {ref} ({label}): {_ft_line(ft_cells(df, 'full', ref))} pts")
    nll = ft_cells(df, "full", "baseline", "nll", "<")
    ece = ft_cells(df, "full", "baseline", "ece", "<")
    ls_ece = ft_cells(df, "full", "no_label_smoothing", "ece", "<") if (df.arm == "no_label_smoothing").any() else None
    ep = df[(df.metric == "epochs_used") & (df.arm == "full")].groupby("n_train").value.mean()
    clip = df[(df.metric == "clipped_frac") & (df.arm == "full")].value.mean()
    fit = df[(df.metric == "acc") & (df.split == "train") & (df.arm == "baseline")].groupby("n_train").value.mean()
    note = (f"[recipe: {parts_v['recipe']}] full minus baseline test accuracy {_ft_line(rec)} pts; "
            + "; ".join(f"[{c}: {parts_v[c]}] full minus no_{c} {_ft_line(p[c])}" for c in RECIPE if c in p)
            + f". Parts ranked by contribution: {', '.join(f'{c} {_pts(contrib[c])}' for c in ranked)} pts"
            + (f"; each alone on the baseline: {', '.join(f'{c} {_pts(g)}' for c, g in alone.items())} pts" if alone else "")
            + ("; " + "; ".join(extra) if extra else "")
            + f". Full vs baseline: test NLL {', '.join(f'{r.mean:+.3f}' for r in nll.itertuples())}, ECE "
            + ", ".join(f"{r.mean:+.3f}" for r in ece.itertuples())
            + ("; label smoothing's own effect on ECE (full minus no_label_smoothing; positive = worse calibrated): "
               + ", ".join(f"{r.mean:+.3f}" for r in ls_ece.itertuples()) if ls_ece is not None else "")
            + f". Early stopping (patience 3) stopped the full recipe after {', '.join(f'{e:.1f}' for e in ep)} of "
            + f"{int(df[df.metric == 'epochs_used'].value.max())} epochs on average; the clipping threshold was exceeded in "
            + f"{100 * clip:.0f}% of its steps. Baseline training accuracy {', '.join(f'{a:.3f}' for a in fit)} (the premise: "
            + "it fits its training set). Sizes n = " + ", ".join(str(int(n)) for n in rec.n_train)
            + "; test on held-out digits 5-9 after pretraining on digits 0-4; a small CNN has no dropout (the recipe's 0.1 "
            "is not tested) and the lr is held fixed")
    note += (f". Each part: the gain pooled over sizes against 0, Holm over sizes for conditional; smallest effect of "
             f"interest {100 * ACC_SESOI:g} accuracy point")
    return row("test-accuracy gain of the full recipe over the baseline (all parts off), pooled over fine-tuning set sizes "
               "(paired over seeds)", **dict(judged["recipe"], verdict=v), note=note)
