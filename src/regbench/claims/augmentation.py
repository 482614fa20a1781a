"""Verdict rule for the augmentation claim N14 (see CLAIMS.md). No torch here: plots import it.

N14 is four parts, each decided per grid cell (dataset x training-set size)
from paired differences against the "none" arm (same seed = same training
set, initial weights and batch order), then combined:

  A  label-preserving transforms help: test-accuracy gain > 0. Label-preserving
     arms: kind affine on both datasets; kind flip on shapes (every shape class
     is symmetric under both flips), not on digits.
  B  ... more so with less data: per seed, the least-squares slope of that gain
     against log2(n_train); the claim says the slope is < 0.
  C  mixup (alpha in the document's 0.2-0.4) and CutMix regularize strongly:
     test-accuracy gain above STRONG_GAIN.
  D  negative control: a label-changing transform (flip on digits: 2/5, 6/9
     and others change class) hurts: gain < 0.

The test metric is accuracy on the split in PRIMARY: held-out digits, and
for shapes the wide-nuisance test set (training used narrow nuisances).
"""
import numpy as np
import pandas as pd

from regbench.claims import across, claim, row, worst
from regbench.stats import mean_ci, verdict

# The split each dataset's claim is read on: digits' held-out test set; for
# shapes the test set with WIDE nuisances (the training set has NARROW ones),
# where an augmentation that encodes the nuisance is expected to help.
PRIMARY = {"digits": "test", "shapes": "test"}
# "Regularize strongly" read as: the test-accuracy gain over no augmentation
# is at least one point (0.01) with its interval above that. A reader who
# wants another bar can change it here; the note prints the gains themselves.
STRONG_GAIN = 0.01
# The document's mixup range ("alpha typically 0.2-0.4"); other alphas are reported, not judged.
MIX_ALPHA = (0.2, 0.4)
# Transform kinds that preserve the label, per dataset (flip turns a 6 into a 9 on digits).
LABEL_PRESERVING = {"digits": ("affine",), "shapes": ("affine", "flip")}
LABEL_CHANGING = {"digits": ("flip",), "shapes": ()}


def gains(df: pd.DataFrame, metric: str = "acc", split: str | None = None) -> pd.DataFrame:
    """Paired per-seed differences arm - none: columns dataset, n_train, arm, kind, alpha, seed, gain."""
    d = df[(df.metric == metric) & (df.arm != "all")]
    d = d[d.split == split] if split else d[d.split == d.dataset.map(PRIMARY)]
    keys = ["dataset", "n_train", "seed"]
    base = d[d.arm == "none"].set_index(keys).value.rename("base")
    out = d[d.arm != "none"].join(base, on=keys)
    out = out.assign(gain=out.value - out.base)
    return out[["dataset", "n_train", "arm", "kind", "alpha", "seed", "gain"]].reset_index(drop=True)


def cells(g: pd.DataFrame, threshold: float = 0.0, claimed: str = ">") -> pd.DataFrame:
    """Per (dataset, arm, n_train): mean gain, 95% interval over seeds, verdict against threshold."""
    rows = []
    for (ds, arm, n), s in g.groupby(["dataset", "arm", "n_train"], sort=True):
        m, lo, hi = mean_ci(s.gain.to_numpy())
        rows.append(dict(dataset=ds, arm=arm, kind=s.kind.iloc[0], n_train=n, mean=m, lo=lo, hi=hi,
                         verdict=verdict(lo, hi, threshold, claimed)))
    return pd.DataFrame(rows, columns=["dataset", "arm", "kind", "n_train", "mean", "lo", "hi", "verdict"])


def slopes(g: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, arm, seed): least-squares slope of the gain against log2(n_train)."""
    rows = []
    for (ds, arm, seed), s in g.groupby(["dataset", "arm", "seed"], sort=True):
        x = np.log2(s.n_train.to_numpy(float))
        if len(np.unique(x)) < 2:
            continue
        rows.append(dict(dataset=ds, arm=arm, seed=seed, slope=float(np.polyfit(x, s.gain.to_numpy(), 1)[0])))
    return pd.DataFrame(rows, columns=["dataset", "arm", "seed", "slope"])


def _pts(x) -> str:
    return f"{100 * x:+.1f}"


def _where(c: pd.DataFrame) -> str:
    """'helps at n=50,100; hurts at n=800; unclear at n=200,400' for one (dataset, arm) row of cells."""
    parts = []
    for v, word in (("supported", "yes"), ("refuted", "no"), ("inconclusive", "unclear")):
        ns = c[c.verdict == v].n_train.tolist()
        if ns:
            parts.append(f"{word} at n={','.join(str(int(n)) for n in ns)}")
    return "; ".join(parts)


def _describe(c: pd.DataFrame) -> str:
    """Mean gains per (dataset, arm) across n and where the interval clears the bar (intervals: figure and CSV)."""
    out = []
    for (ds, arm), s in c.groupby(["dataset", "arm"], sort=False):
        gains_ = ", ".join(_pts(m) for m in s["mean"])
        out.append(f"{ds}/{arm} {gains_} pts at n={','.join(str(int(n)) for n in s.n_train)} ({_where(s)})")
    return "; ".join(out)


def _train_fit(df: pd.DataFrame, kinds: dict) -> str:
    """Clean training accuracy at the largest n: does an arm still fit its training set?"""
    d = df[(df.metric == "acc") & (df.split == "train")]
    out = []
    for ds, ks in kinds.items():
        s = d[d.dataset == ds]
        if s.empty:
            continue
        s = s[s.n_train == s.n_train.max()]
        means = s.groupby("arm").value.mean()
        arms = [a for a in pd.unique(s[s.kind.isin(ks)].arm)]
        if "none" in means and arms:
            out.append(f"{ds} n={int(s.n_train.max())}: none {means['none']:.3f}, "
                       + ", ".join(f"{a} {means[a]:.3f}" for a in arms))
    return "; ".join(out)


def _select(g: pd.DataFrame, kinds: dict) -> pd.DataFrame:
    keep = np.zeros(len(g), bool)
    for ds, ks in kinds.items():
        keep |= (g.dataset == ds).to_numpy() & g.kind.isin(ks).to_numpy()
    return g[keep]


def parts(df: pd.DataFrame) -> dict:
    """The four parts of N14: name -> dict(verdict, cells or slopes, text)."""
    g = gains(df)
    out = {}
    a = cells(_select(g, LABEL_PRESERVING), 0.0, ">")
    fit = _train_fit(df, LABEL_PRESERVING)
    out["A"] = dict(verdict=across(a.verdict), cells=a,
                    text=f"A label-preserving transforms help (gain > 0): {_describe(a)}"
                         + (f"; clean training accuracy at the largest n (underfitting shows here): {fit}" if fit else ""))
    sl = slopes(_select(g, LABEL_PRESERVING))
    rows = []
    for (ds, arm), s in sl.groupby(["dataset", "arm"], sort=True):
        m, lo, hi = mean_ci(s.slope.to_numpy())
        rows.append(dict(dataset=ds, arm=arm, mean=m, lo=lo, hi=hi, verdict=verdict(lo, hi, 0.0, "<")))
    b = pd.DataFrame(rows, columns=["dataset", "arm", "mean", "lo", "hi", "verdict"])
    out["B"] = dict(verdict=across(b.verdict), cells=b,
                    text="B more so with less data (slope of the gain per doubling of n < 0): " + "; ".join(
                        f"{r.dataset}/{r.arm} {_pts(r.mean)} [{_pts(r.lo)}, {_pts(r.hi)}] pts per doubling ({r.verdict})"
                        for r in b.itertuples()))
    mix = g[((g.kind == "mixup") & g.alpha.between(*MIX_ALPHA)) | (g.kind == "cutmix")]
    c = cells(mix, STRONG_GAIN, ">")
    other = cells(g[(g.kind == "mixup") & ~g.alpha.between(*MIX_ALPHA)], STRONG_GAIN, ">")
    nll = cells(gains(df, "nll")[lambda x: x.kind.isin(["mixup", "cutmix"])], 0.0, "<")
    gap = _gap_change(df)
    nll_text = "; ".join(f"{ds}/{arm} {s['mean'].min():+.2f}..{s['mean'].max():+.2f}"
                         for (ds, arm), s in nll.groupby(["dataset", "arm"], sort=False))
    out["C"] = dict(verdict=across(c.verdict), cells=c,
                    text=(f"C mixup (alpha {MIX_ALPHA[0]}-{MIX_ALPHA[1]}) and CutMix regularize strongly (gain > "
                          f"{100 * STRONG_GAIN:g} pt): {_describe(c)}"
                          + (f"; for reference, not judged: {_describe(other)}" if len(other) else "")
                          + (f"; test NLL change vs none (range over n): {nll_text}" if nll_text else "")
                          + (f"; train-test accuracy gap change vs none (range over n, points): {gap}" if gap else "")))
    d = cells(_select(g, LABEL_CHANGING), 0.0, "<")
    out["D"] = dict(verdict=across(d.verdict), cells=d,
                    text=f"D negative control, a label-changing transform hurts (gain < 0): {_describe(d)}")
    return out


def _gap_change(df: pd.DataFrame) -> str:
    """Per mix arm: change of the clean-train minus test accuracy gap vs none, range over n (points)."""
    d = df[(df.metric == "acc") & (df.arm != "all") & df.split.isin(["train", "test"])]
    if d.empty or "train" not in set(d.split):
        return ""
    w = d.pivot_table(index=["dataset", "n_train", "arm", "seed"], columns="split", values="value")
    if "test" not in w:
        return ""
    gap = (w["train"] - w["test"]).rename("gap").reset_index()
    base = gap[gap.arm == "none"].set_index(["dataset", "n_train", "seed"]).gap
    kinds = d.drop_duplicates("arm").set_index("arm").kind
    out = []
    for (ds, arm), s in gap[gap.arm.map(kinds).isin(["mixup", "cutmix"])].groupby(["dataset", "arm"]):
        ch = (s.set_index(["dataset", "n_train", "seed"]).gap - base).groupby("n_train").mean()
        out.append(f"{ds}/{arm} {100 * ch.min():+.1f}..{100 * ch.max():+.1f}")
    return "; ".join(out)


@claim("N14", "Data augmentation regularizes: label-preserving transforms help, more so with less data; "
       "mixup (alpha 0.2-0.4) and CutMix regularize strongly; a label-changing transform hurts",
       ["augmentation"], "figures/augmentation/augmentation_accuracy.png")
def n14(t):
    df = t["augmentation"]
    p = parts(df)
    a = p["A"]["cells"]
    digits = a[(a.dataset == "digits") & (a.kind == "affine")]
    head = digits if len(digits) else a
    first = head.sort_values(["dataset", "n_train"]).iloc[0] if len(head) else None
    v = worst(*(q["verdict"] for q in p.values() if len(q["cells"])))  # parts are different sub-claims
    note = " | ".join(f"[{k}: {q['verdict']}] {q['text']}" for k, q in p.items() if len(q["cells"]))
    note += (". Accuracy on: digits held-out test; shapes test with wide nuisances (trained on narrow ones). "
             "Verdict per part: all cells supported -> supported, some -> conditional; overall: the weakest part decides.")
    if first is None:
        return row("no label-preserving arm in the config", np.nan, np.nan, np.nan, "inconclusive", note)
    return row(f"test-accuracy gain of {first.arm} over no augmentation, {first.dataset}, smallest n = "
               f"{int(first.n_train)} (paired over seeds)", first["mean"], first.lo, first.hi, v, note)


# ---------------------------------------------------------------- N17
# Problem 3's recipe parts, as named in the finetune experiment's arms (no_<part>, only_<part>).
RECIPE = ("warmup", "adamw", "label_smoothing", "early_stopping", "clipping", "layer_decay")


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
       ["finetune"], "figures/augmentation/finetune_ablation.png")
def n17(t):
    df = t["finetune"]
    p = ft_parts(df)
    rec = p["recipe"]
    first = rec.sort_values("n_train").iloc[0]
    parts_v = {k: across(c.verdict) for k, c in p.items()}
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
    return row(f"test-accuracy gain of the full recipe over the baseline (all parts off), n = {int(first.n_train)} "
               "fine-tuning images (paired over seeds)", first["mean"], first.lo, first.hi, v, note)
