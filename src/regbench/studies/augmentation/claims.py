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

from regbench.verdicts import claim, claim_parts, pts as _pts, regimes, row, worst
from regbench.stats import mean_ci, verdict

# The split each dataset's claim is read on: digits' held-out test set; for
# shapes the test set with WIDE nuisances (the training set has NARROW ones),
# where an augmentation that encodes the nuisance is expected to help.
PRIMARY = {"digits": "test", "shapes": "test"}
# "Regularize strongly" read as: the test-accuracy gain over no augmentation
# is at least one point (0.01) with its interval above that. A reader who
# wants another bar can change it here; the note prints the gains themselves.
STRONG_GAIN = 0.01
# Smallest effect of interest of an accuracy gain: 1 point.
ACC_SESOI = 0.01
# ... and of its trend: half a point per doubling of the training set.
SLOPE_SESOI = 0.005
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


def judged(g: pd.DataFrame, threshold: float = 0.0, claimed: str = ">", sesoi: float = ACC_SESOI) -> tuple[dict, pd.DataFrame]:
    """One part of N14 judged over its cells (dataset, arm, n_train) with Holm over the
    cells (regbench.verdicts.regimes): the part's summary and the per-cell table."""
    keyed = {key: s.set_index("seed").gain for key, s in g.groupby(["dataset", "arm", "n_train"], sort=True)}
    if not keyed:
        return dict(verdict="inconclusive"), cells(g, threshold, claimed)
    summary, table = regimes(keyed, claimed, threshold, sesoi)
    table[["dataset", "arm", "n_train"]] = pd.DataFrame(table.cell.tolist(), index=table.index)
    table["kind"] = table.arm.map(g.drop_duplicates("arm").set_index("arm").kind)
    return summary, table[["dataset", "arm", "kind", "n_train", "mean", "lo", "hi", "verdict"]]


def slopes(g: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, arm, seed): least-squares slope of the gain against log2(n_train)."""
    rows = []
    for (ds, arm, seed), s in g.groupby(["dataset", "arm", "seed"], sort=True):
        x = np.log2(s.n_train.to_numpy(float))
        if len(np.unique(x)) < 2:
            continue
        rows.append(dict(dataset=ds, arm=arm, seed=seed, slope=float(np.polyfit(x, s.gain.to_numpy(), 1)[0])))
    return pd.DataFrame(rows, columns=["dataset", "arm", "seed", "slope"])


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
    sa, a = judged(_select(g, LABEL_PRESERVING), 0.0, ">")
    fit = _train_fit(df, LABEL_PRESERVING)
    out["A"] = dict(verdict=sa["verdict"], cells=a, summary=sa,
                    text=f"A label-preserving transforms help (gain > 0): {_describe(a)}"
                         + (f"; clean training accuracy at the largest n (underfitting shows here): {fit}" if fit else ""))
    sl = slopes(_select(g, LABEL_PRESERVING))
    sb, b = regimes({key: q.set_index("seed").slope for key, q in sl.groupby(["dataset", "arm"], sort=True)}, "<", 0.0,
                    SLOPE_SESOI) if len(sl) else (dict(verdict="inconclusive"), pd.DataFrame(columns=["cell", "mean", "lo", "hi", "verdict"]))
    b[["dataset", "arm"]] = pd.DataFrame(b.cell.tolist(), index=b.index, columns=["dataset", "arm"]) if len(b) else None
    out["B"] = dict(verdict=sb["verdict"], cells=b, summary=sb,
                    text="B more so with less data (slope of the gain per doubling of n < 0): " + "; ".join(
                        f"{r.dataset}/{r.arm} {_pts(r.mean)} [{_pts(r.lo)}, {_pts(r.hi)}] pts per doubling ({r.verdict})"
                        for r in b.itertuples()))
    mix = g[((g.kind == "mixup") & g.alpha.between(*MIX_ALPHA)) | (g.kind == "cutmix")]
    # "strongly" is the bar itself: no band of indifference around it
    sc, c = judged(mix, STRONG_GAIN, ">", sesoi=None)
    other = cells(g[(g.kind == "mixup") & ~g.alpha.between(*MIX_ALPHA)], STRONG_GAIN, ">")
    nll = cells(gains(df, "nll")[lambda x: x.kind.isin(["mixup", "cutmix"])], 0.0, "<")
    gap = _gap_change(df)
    nll_text = "; ".join(f"{ds}/{arm} {s['mean'].min():+.2f}..{s['mean'].max():+.2f}"
                         for (ds, arm), s in nll.groupby(["dataset", "arm"], sort=False))
    out["C"] = dict(verdict=sc["verdict"], cells=c, summary=sc,
                    text=(f"C mixup (alpha {MIX_ALPHA[0]}-{MIX_ALPHA[1]}) and CutMix regularize strongly (gain > "
                          f"{100 * STRONG_GAIN:g} pt): {_describe(c)}"
                          + (f"; for reference, not judged: {_describe(other)}" if len(other) else "")
                          + (f"; test NLL change vs none (range over n): {nll_text}" if nll_text else "")
                          + (f"; train-test accuracy gap change vs none (range over n, points): {gap}" if gap else "")))
    sd, d = judged(_select(g, LABEL_CHANGING), 0.0, "<")
    out["D"] = dict(verdict=sd["verdict"], cells=d, summary=sd,
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


# N14's four parts as ledger rows of their own: ID, wording, deciding statistic.
N14_PARTS = {"A": ("N14a", "Label-preserving augmentation helps (test accuracy above no augmentation)",
                   "test-accuracy gain of the label-preserving transforms over none, pooled over datasets, arms, sizes"),
             "B": ("N14b", "Augmentation helps more with less data",
                   "slope of the label-preserving gain per doubling of the training set, pooled over datasets and arms"),
             "C": ("N14c", "Mixup (alpha 0.2-0.4) and CutMix regularize strongly (gain above 1 accuracy point)",
                   "test-accuracy gain of mixup / CutMix over none, pooled over datasets, arms, sizes (bar 0.01)"),
             "D": ("N14d", "A label-changing transform hurts (negative control)",
                   "test-accuracy change of the label-changing flip on digits, pooled over sizes")}


def _n14_judge(t, key):
    q = parts(t["augmentation"])[key]
    return (q["summary"], q["text"]) if len(q["cells"]) else (None, "no arm of this part in the config")


claim_parts(N14_PARTS, ["augmentation"], "augmentation_accuracy", _n14_judge)


@claim("N14", "Data augmentation regularizes: label-preserving transforms help, more so with less data; "
       "mixup (alpha 0.2-0.4) and CutMix regularize strongly; a label-changing transform hurts",
       ["augmentation"], figure="augmentation_accuracy")
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
             "Verdict per part: the mean gain over its cells (dataset x arm x size, paired over seeds) against the bar, "
             "conditional when one cell holds and another fails after Holm's correction over the part's cells; smallest "
             f"effect of interest {100 * ACC_SESOI:g} accuracy point; overall: the weakest part decides.")
    if first is None:
        return row("no label-preserving arm in the config", np.nan, np.nan, np.nan, "inconclusive", note)
    return row("the weakest of N14a-N14d; shown: N14a's pooled gain of the label-preserving transforms",
               **dict(p["A"]["summary"], verdict=v), note=note)
