"""Verdict rules for the fine-tuning claim N17 (see CLAIMS.md): the full recipe against the
baseline (all parts off), and each part by the loss from removing it from the full recipe,
paired over seeds per training-set size; each a ledger row (N17a-N17g), N17 the weakest.
Label smoothing is judged on what it is for, calibration (ECE); clipping against the best of
no_clipping and the lr / warmup controls chosen per seed on validation loss, so that a gain
from clipping is not a smaller step size in disguise. Seeds re-split the digits 5-9
(disjoint test folds, shared training images): every interval and test uses the corrected
resampled t with the overlap the runner records. No torch here: figures import it."""
import numpy as np
import pandas as pd

from regbench.verdicts import claim, claim_parts, pts as _pts, regimes, row, worst
from regbench.stats import mean_ci, verdict

# ---------------------------------------------------------------- N17
# Problem 3's recipe parts, as named in the finetune experiment's arms (no_<part>, only_<part>).
RECIPE = ("warmup", "adamw", "label_smoothing", "early_stopping", "clipping", "layer_decay")
# Smallest effect of interest of a test-accuracy gain: 1 point.
ACC_SESOI = 0.01
# ... and of an ECE change: 0.01, as for N13 (a 1-point calibration gap per confidence bin).
ECE_SESOI = 0.01
# The clipping part's reference: the best of these arms per seed on validation loss.
CLIP_REF = "best_no_clipping"


def overlaps(df: pd.DataFrame) -> dict:
    """n_train -> the corrected resampled t's overlap term the runner recorded (0 if none)."""
    d = df[df.metric == "resample_overlap"]
    return {n: float(v) for n, v in zip(d.n_train, d.value)}


def _with_best_no_clipping(df: pd.DataFrame) -> pd.DataFrame:
    """Add arm CLIP_REF: per (n_train, seed), the no_clipping arm (plain or a control at another
    lr / warmup) with the lowest validation NLL (early stopping's own criterion)."""
    ctrl = df[df.arm.astype(str).str.startswith("no_clipping")]
    if ctrl.empty:
        return df
    val = ctrl[(ctrl.metric == "nll") & (ctrl.split == "val")]
    best = val.loc[val.groupby(["n_train", "seed"]).value.idxmin(), ["n_train", "seed", "arm"]]
    picked = ctrl.merge(best, on=["n_train", "seed", "arm"])
    return pd.concat([df, picked.assign(arm=CLIP_REF)], ignore_index=True)


def ft_gains(df: pd.DataFrame, a: str, b: str, metric: str = "acc", split: str = "test") -> pd.DataFrame:
    """Per (n_train, seed): metric of arm a minus arm b on a split (paired: same data, init, order)."""
    if CLIP_REF in (a, b) and not (df.arm == CLIP_REF).any():
        df = _with_best_no_clipping(df)
    d = df[(df.metric == metric) & (df.split == split) & df.arm.isin([a, b])]
    w = d.pivot_table(index=["n_train", "seed"], columns="arm", values="value")
    if a not in w or b not in w:
        return pd.DataFrame(columns=["n_train", "seed", "gain"])
    return (w[a] - w[b]).rename("gain").reset_index()


def ft_cells(df: pd.DataFrame, a: str, b: str, metric: str = "acc", claimed: str = ">") -> pd.DataFrame:
    """Per n_train: mean of a - b with its (corrected) interval and verdict against 0."""
    ov = overlaps(df)
    rows = []
    for n, s in ft_gains(df, a, b, metric).groupby("n_train"):
        m, lo, hi = mean_ci(s.gain.to_numpy(), overlap=ov.get(n, 0.0))
        rows.append(dict(n_train=n, mean=m, lo=lo, hi=hi, verdict=verdict(lo, hi, 0.0, claimed)))
    return pd.DataFrame(rows, columns=["n_train", "mean", "lo", "hi", "verdict"])


def ft_judged(df: pd.DataFrame, a: str, b: str, metric: str = "acc", claimed: str = ">", sesoi: float = ACC_SESOI) -> dict:
    """Arm a minus arm b, judged over the training-set sizes (Holm over sizes, pooled effect,
    corrected resampled t)."""
    g = ft_gains(df, a, b, metric)
    ov = overlaps(df)
    cells = {f"n={int(n)}": s.set_index("seed").gain for n, s in g.groupby("n_train")}
    if not cells:
        return dict(value=np.nan, lo=np.nan, hi=np.nan, verdict="inconclusive")
    return regimes(cells, claimed, 0.0, sesoi, overlap={f"n={int(n)}": ov.get(n, 0.0) for n in g.n_train.unique()})[0]


# Each part: key -> (ID, wording, statistic, arm a, arm b, metric, claimed side, sesoi)
N17_PARTS = {
    "recipe": ("N17a", "The full recipe beats the baseline (every part off)",
               "test-accuracy gain, full recipe minus baseline, pooled over sizes", "full", "baseline", "acc", ">", ACC_SESOI),
    "warmup": ("N17b", "Warmup contributes to the recipe", "test-accuracy loss from removing warmup (full minus no_warmup)",
               "full", "no_warmup", "acc", ">", ACC_SESOI),
    "adamw": ("N17c", "AdamW (decoupled decay) contributes to the recipe",
              "test-accuracy loss from replacing AdamW by Adam + L2 (full minus no_adamw)", "full", "no_adamw", "acc", ">",
              ACC_SESOI),
    "label_smoothing": ("N17d", "Label smoothing contributes to the recipe: it fixes confident-but-wrong predictions",
                        "test ECE change from adding label smoothing (full minus no_label_smoothing; below 0 = better "
                        "calibrated)", "full", "no_label_smoothing", "ece", "<", ECE_SESOI),
    "early_stopping": ("N17e", "Early stopping contributes to the recipe",
                       "test-accuracy loss from removing early stopping (full minus no_early_stopping)", "full",
                       "no_early_stopping", "acc", ">", ACC_SESOI),
    "clipping": ("N17f", "Gradient clipping contributes to the recipe (beyond a smaller step size)",
                 "test-accuracy gain, full minus the best (on validation) of no_clipping and its lr / warmup controls",
                 "full", CLIP_REF, "acc", ">", ACC_SESOI),
    "layer_decay": ("N17g", "Layer-wise lr decay contributes to the recipe",
                    "test-accuracy loss from removing layer-wise decay (full minus no_layer_decay)", "full",
                    "no_layer_decay", "acc", ">", ACC_SESOI),
}
_NOTE = ("Paired over seeds per fine-tuning size, Holm over sizes for conditional, pooled effect otherwise; seeds "
         "re-split the digits 5-9 (disjoint test folds, shared training images), so intervals and tests use Nadeau "
         "and Bengio's corrected resampled t")


def part_verdicts(df: pd.DataFrame) -> dict:
    """key -> the judged summary of each N17 part present in the table."""
    out = {}
    for key, (_, _, _, a, b, metric, side, sesoi) in N17_PARTS.items():
        needs = b if b != CLIP_REF else "no_clipping"
        if (df.arm == a).any() and (df.arm == needs).any():
            out[key] = ft_judged(df, a, b, metric, side, sesoi)
    return out


def _n17_judge(t, key):
    df = t["finetune"]
    _, _, _, a, b, metric, side, sesoi = N17_PARTS[key]
    judged = part_verdicts(df)
    if key not in judged:
        return None, f"arm {b} not in the config"
    c = ft_cells(df, a, b, metric, side)
    scale = 100 if metric == "acc" else 1
    cells = ", ".join(f"{scale * r.mean:+.{1 if metric == 'acc' else 3}f} [{scale * r.lo:+.{1 if metric == 'acc' else 3}f}, "
                      f"{scale * r.hi:+.{1 if metric == 'acc' else 3}f}] at n={int(r.n_train)}" for r in c.itertuples())
    unit = "pts" if metric == "acc" else "ECE"
    note = f"{a} minus {b}, test {metric}: {cells} {unit}"
    if key == "clipping":
        note += "; " + _clip_note(df)
    if key == "label_smoothing":
        acc = ft_cells(df, "full", "no_label_smoothing", "acc")
        note += "; for reference, its accuracy effect: " + _ft_line(acc) + " pts"
    return judged[key], f"{note}. {_NOTE}; smallest effect of interest {sesoi:g} ({unit if metric != 'acc' else 'accuracy'})"


def _clip_note(df: pd.DataFrame) -> str:
    ctrl = _with_best_no_clipping(df)
    picked = ctrl[(ctrl.arm == CLIP_REF) & (ctrl.metric == "acc") & (ctrl.split == "test")]
    arms = df[df.arm.astype(str).str.startswith("no_clipping")]
    chosen = (df[df.arm.isin(arms.arm.unique()) & (df.metric == "nll") & (df.split == "val")]
              .sort_values("value").groupby(["n_train", "seed"]).arm.first().value_counts())
    plain = ft_cells(df, "full", "no_clipping")
    clip = df[(df.metric == "clipped_frac") & (df.arm == "full")].value.mean()
    return (f"chosen on validation: {', '.join(f'{a} {k}x' for a, k in chosen.items())} of {len(picked)} seeds x sizes; "
            f"against plain no_clipping (same lr): {_ft_line(plain)} pts; the threshold was exceeded in {100 * clip:.0f}% "
            "of the full recipe's steps")


claim_parts({k: v[:3] for k, v in N17_PARTS.items()}, ["finetune"], "finetune_ablation", _n17_judge)


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
    judged = part_verdicts(df)
    parts_v = {k: j["verdict"] for k, j in judged.items()}
    v = worst(*parts_v.values())  # the recipe and each of its parts are separate sub-claims (N17a-N17g)
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
            + "; ".join(f"[{c}: {parts_v[c]}] full minus no_{c} {_ft_line(p[c])}" for c in RECIPE if c in p and c in parts_v)
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
            "is not tested); label smoothing is judged on ECE (N17d) and clipping against lr / warmup controls (N17f)")
    note += f". The weakest of N17a-N17g. {_NOTE}"
    return row("test-accuracy gain of the full recipe over the baseline (all parts off), pooled over fine-tuning set sizes "
               "(paired over seeds)", **dict(judged["recipe"], verdict=v), note=note)
