"""Verdict rule for the augmentation claim N14 (see CLAIMS.md). No torch here: plots import it.

N14 is four parts, each decided per grid cell (dataset x training-set size)
from paired differences against the "none" arm (same seed = same training
set, initial weights and batch order), then combined:

  A  label-preserving transforms help: test-accuracy gain > 0. Label-preserving
     arms: the MILD affine arms (slight transforms, about the data's own
     variation: the document's "slight rotation of a digit") on both datasets;
     kind flip on shapes (every shape class is symmetric under both flips), not
     on digits. The WIDE affine arm (shapes' shifted-test nuisances) is reported
     on the in-distribution test for reference, not judged there.
  B  ... more so with less data: per seed, the least-squares slope of that gain
     against log2(n_train); the claim says the slope is < 0.
  C  mixup (alpha in the document's 0.2-0.4) and CutMix regularize strongly:
     test-accuracy gain above STRONG_GAIN.
  D  negative control: a label-changing transform (flip on digits: 2/5, 6/9
     and others change class) hurts: gain < 0.

The test metric is accuracy on the in-distribution split in PRIMARY: held-out
digits, and for shapes a test set with the training (narrow) nuisances. The
shapes test set with WIDE nuisances measures robustness to a shift that the
wide affine arm encodes; it is its own row, N14e (part E: the wide affine arm
and flip), beside N14 and not inside it: the document claims regularization,
not robustness.

Whether each arm fit: its mean accuracy on its own training set (one draw of
its augmentation for affine and flip, split train_aug; the clean set for none,
mixup and CutMix, whose mixed soft targets have no single right answer),
against FIT_ACC, per size; the notes say where an arm did not fit.

Digits seeds re-split one set of 1797 images (test sets are disjoint folds, but
training sets share images): every digits interval and test uses the corrected
resampled t with the overlap the runner records (metric resample_overlap).
"""
import numpy as np
import pandas as pd

from regbench.verdicts import claim, claim_parts, pts as _pts, regimes, row, worst
from regbench.stats import mean_ci, verdict

# The split each dataset's claim is read on: the in-distribution test sets (digits'
# held-out fold; shapes drawn with the training nuisances).
PRIMARY = {"digits": "test", "shapes": "test_iid"}
# The distribution-shift split, judged apart (N14e): shapes with wide nuisances.
SHIFTED = {"shapes": "test"}
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
# Arm types (kind, with the affine arms' range set: affine_mild / affine_wide) that preserve the
# label, per dataset, for the in-distribution question (flip turns a 6 into a 9 on digits).
LABEL_PRESERVING = {"digits": ("affine_mild",), "shapes": ("affine_mild", "flip")}
LABEL_CHANGING = {"digits": ("flip",), "shapes": ()}
# ... and those judged on the shifted test (N14e): the affine arm that encodes its nuisance, and flip.
SHIFT_ENCODING = {"shapes": ("affine_wide", "flip")}
# An arm "fit" at a size when its mean accuracy on its own training set is at least this: the
# none arm reaches 0.99 or more; below 0.95 a gain or loss may be underfitting, not regularization.
FIT_ACC = 0.95


def arm_type(kind: str, ranges) -> str:
    """kind, with an affine arm's range set: affine_mild, affine_wide; other kinds as they are."""
    return f"affine_{ranges or 'mild'}" if kind == "affine" else kind


def _typed(d: pd.DataFrame) -> pd.DataFrame:
    ranges = d["ranges"] if "ranges" in d else pd.Series("", index=d.index)
    return d.assign(type=[arm_type(k, r) for k, r in zip(d.kind, ranges.fillna(""))])
def overlaps(df: pd.DataFrame) -> dict:
    """(dataset, n_train) -> the corrected resampled t's overlap term the runner recorded
    (0 where none was recorded: independent seeds, as for shapes)."""
    d = df[df.metric == "resample_overlap"]
    return {(ds, n): float(v) for ds, n, v in zip(d.dataset, d.n_train, d.value)}


def gains(df: pd.DataFrame, metric: str = "acc", split: str | None = None, splits: dict | None = None) -> pd.DataFrame:
    """Paired per-seed differences arm - none: columns dataset, n_train, arm, kind, alpha, seed, gain;
    on `split`, or on each dataset's split in `splits` (default PRIMARY; a dataset not in it is left out)."""
    d = df[(df.metric == metric) & (df.arm != "all")]
    d = d[d.split == split] if split else d[d.split == d.dataset.map(splits or PRIMARY)]
    keys = ["dataset", "n_train", "seed"]
    base = d[d.arm == "none"].set_index(keys).value.rename("base")
    out = d[d.arm != "none"].join(base, on=keys)
    out = _typed(out.assign(gain=out.value - out.base))
    return out[["dataset", "n_train", "arm", "kind", "type", "alpha", "seed", "gain"]].reset_index(drop=True)


def cells(g: pd.DataFrame, threshold: float = 0.0, claimed: str = ">", overlap: dict | None = None) -> pd.DataFrame:
    """Per (dataset, arm, n_train): mean gain, 95% interval over seeds (corrected by
    overlap[(dataset, n_train)] where seeds re-split one data set), verdict against threshold."""
    rows = []
    for (ds, arm, n), s in g.groupby(["dataset", "arm", "n_train"], sort=True):
        m, lo, hi = mean_ci(s.gain.to_numpy(), overlap=(overlap or {}).get((ds, n), 0.0))
        rows.append(dict(dataset=ds, arm=arm, kind=s.kind.iloc[0], type=s.type.iloc[0], n_train=n, mean=m, lo=lo, hi=hi,
                         verdict=verdict(lo, hi, threshold, claimed)))
    return pd.DataFrame(rows, columns=["dataset", "arm", "kind", "type", "n_train", "mean", "lo", "hi", "verdict"])


def judged(g: pd.DataFrame, threshold: float = 0.0, claimed: str = ">", sesoi: float = ACC_SESOI,
           overlap: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """One part of N14 judged over its cells (dataset, arm, n_train) with Holm over the
    cells (regbench.verdicts.regimes), digits cells with the corrected resampled t:
    the part's summary and the per-cell table."""
    keyed = {key: s.set_index("seed").gain for key, s in g.groupby(["dataset", "arm", "n_train"], sort=True)}
    if not keyed:
        return dict(verdict="inconclusive"), cells(g, threshold, claimed, overlap)
    ov = {key: (overlap or {}).get((key[0], key[2]), 0.0) for key in keyed}
    summary, table = regimes(keyed, claimed, threshold, sesoi, overlap=ov)
    table[["dataset", "arm", "n_train"]] = pd.DataFrame(table.cell.tolist(), index=table.index)
    arms = g.drop_duplicates("arm").set_index("arm")
    table["kind"], table["type"] = table.arm.map(arms.kind), table.arm.map(arms.type)
    return summary, table[["dataset", "arm", "kind", "type", "n_train", "mean", "lo", "hi", "verdict"]]


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


def fit(df: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, arm, n_train): mean accuracy on the arm's own training set (train_aug for affine
    and flip, the clean set otherwise; see the module docstring), the steps it trained, and whether it fit."""
    d = _typed(df[(df.metric == "acc") & df.split.isin(["train", "train_aug"]) & (df.arm != "all")])
    own = d[(d.split == "train_aug") == d.kind.isin(["affine", "flip"])]
    out = own.groupby(["dataset", "arm", "kind", "type", "n_train"], sort=False).value.mean().rename("acc").reset_index()
    steps = df[df.metric == "steps"].groupby(["dataset", "arm", "n_train"]).value.first().rename("steps")
    out = out.join(steps, on=["dataset", "arm", "n_train"])
    return out.assign(fit=out.acc >= FIT_ACC)


def _fit_text(df: pd.DataFrame) -> str:
    """'digits/affine 0.93, 0.97, ... at n=50,...' per arm, and where it did not fit."""
    f = fit(df)
    out = []
    for (ds, arm), s in f.groupby(["dataset", "arm"], sort=False):
        s = s.sort_values("n_train")
        miss = s[~s.fit].n_train.tolist()
        out.append(f"{ds}/{arm} {', '.join(f'{a:.2f}' for a in s.acc)}"
                   + (f" (did not fit at n={','.join(str(int(n)) for n in miss)})" if miss else " (fit)"))
    if not out:
        return ""
    steps = f.groupby("n_train").steps.min()
    return (f"training accuracy on each arm's own training set (augmented for affine and flip), by n, fit = at least "
            f"{FIT_ACC:g}: " + "; ".join(out) + (f"; fewest steps per size: {', '.join(f'{int(v)} at n={int(n)}' for n, v in steps.items() if v == v)}"
                                                 if steps.notna().any() else ""))


def _select(g: pd.DataFrame, types: dict) -> pd.DataFrame:
    keep = np.zeros(len(g), bool)
    for ds, ts in types.items():
        keep |= (g.dataset == ds).to_numpy() & g.type.isin(ts).to_numpy()
    return g[keep]


def parts(df: pd.DataFrame) -> dict:
    """The parts of N14 (A-D) and the shifted-test row E: name -> dict(verdict, cells or slopes, text)."""
    g = gains(df)
    ov = overlaps(df)
    out = {}
    sa, a = judged(_select(g, LABEL_PRESERVING), 0.0, ">", overlap=ov)
    wide = cells(_select(g, {ds: ("affine_wide",) for ds in PRIMARY}), 0.0, ">", ov)
    fits = _fit_text(df)
    out["A"] = dict(verdict=sa["verdict"], cells=a, summary=sa,
                    text=f"A label-preserving transforms (mild affine; flip on shapes) help (gain > 0): {_describe(a)}"
                         + (f"; for reference, not judged: the wide affine arm in distribution {_describe(wide)}"
                            if len(wide) else "")
                         + (f"; {fits}" if fits else ""))
    sl = slopes(_select(g, LABEL_PRESERVING))
    # a slope combines a dataset's sizes: the correction of its most correlated size
    sl_ov = {(ds, arm): max([v for (d_, _), v in ov.items() if d_ == ds], default=0.0) for ds, arm in zip(sl.dataset, sl.arm)}
    sb, b = regimes({key: q.set_index("seed").slope for key, q in sl.groupby(["dataset", "arm"], sort=True)}, "<", 0.0,
                    SLOPE_SESOI, overlap=sl_ov) if len(sl) else (dict(verdict="inconclusive"), pd.DataFrame(columns=["cell", "mean", "lo", "hi", "verdict"]))
    b[["dataset", "arm"]] = pd.DataFrame(b.cell.tolist(), index=b.index, columns=["dataset", "arm"]) if len(b) else None
    out["B"] = dict(verdict=sb["verdict"], cells=b, summary=sb,
                    text="B more so with less data (slope of the gain per doubling of n < 0): " + "; ".join(
                        f"{r.dataset}/{r.arm} {_pts(r.mean)} [{_pts(r.lo)}, {_pts(r.hi)}] pts per doubling ({r.verdict})"
                        for r in b.itertuples()))
    mix = g[((g.kind == "mixup") & g.alpha.between(*MIX_ALPHA)) | (g.kind == "cutmix")]
    # "strongly" is the bar itself: no band of indifference around it
    sc, c = judged(mix, STRONG_GAIN, ">", sesoi=None, overlap=ov)
    # the ledger's yardstick is the bar itself; the calibration (planted effects around 0)
    # does not describe a claim judged against a bar, so this part is not simulated
    sc = dict(sc, sesoi=STRONG_GAIN, family="")
    other = cells(g[(g.kind == "mixup") & ~g.alpha.between(*MIX_ALPHA)], STRONG_GAIN, ">", ov)
    nll = cells(gains(df, "nll")[lambda x: x.kind.isin(["mixup", "cutmix"])], 0.0, "<", ov)
    gap = _gap_change(df)
    nll_text = "; ".join(f"{ds}/{arm} {s['mean'].min():+.2f}..{s['mean'].max():+.2f}"
                         for (ds, arm), s in nll.groupby(["dataset", "arm"], sort=False))
    out["C"] = dict(verdict=sc["verdict"], cells=c, summary=sc,
                    text=(f"C mixup (alpha {MIX_ALPHA[0]}-{MIX_ALPHA[1]}) and CutMix regularize strongly (gain > "
                          f"{100 * STRONG_GAIN:g} pt): {_describe(c)}"
                          + (f"; for reference, not judged: {_describe(other)}" if len(other) else "")
                          + (f"; test NLL change vs none (range over n): {nll_text}" if nll_text else "")
                          + (f"; train-test accuracy gap change vs none (range over n, points): {gap}" if gap else "")))
    sd, d = judged(_select(g, LABEL_CHANGING), 0.0, "<", overlap=ov)
    out["D"] = dict(verdict=sd["verdict"], cells=d, summary=sd,
                    text=f"D negative control, a label-changing transform hurts (gain < 0): {_describe(d)}")
    se, e = judged(_select(gains(df, splits=SHIFTED), SHIFT_ENCODING), 0.0, ">", overlap=ov)
    out["E"] = dict(verdict=se["verdict"], cells=e, summary=se,
                    text=f"E robustness: the wide affine arm and flip help on shapes with wide nuisances (trained on "
                         f"narrow ones; gain > 0): {_describe(e)}" + (f"; {fits}" if fits else ""))
    return out


def _gap_change(df: pd.DataFrame) -> str:
    """Per mix arm: change of the clean-train minus in-distribution test accuracy gap vs none, range over n (points)."""
    d = df[(df.metric == "acc") & (df.arm != "all")]
    d = d[(d.split == "train") | (d.split == d.dataset.map(PRIMARY))]
    d = d.assign(split=d.split.where(d.split == "train", "test"))  # each dataset's in-distribution test
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


# N14's four parts, and the shifted-test row, as ledger rows of their own: ID, wording, deciding statistic.
N14_PARTS = {"A": ("N14a", "Label-preserving augmentation helps (test accuracy above no augmentation)",
                   "in-distribution test-accuracy gain of the slight label-preserving transforms (mild affine: +-15 deg, "
                   "shifts up to 0.1 of the side, zoom 0.9-1.1; flip on shapes) over none, pooled over datasets, arms, sizes"),
             "B": ("N14b", "Augmentation helps more with less data",
                   "slope of that in-distribution gain (mild affine; flip on shapes) per doubling of the training set, "
                   "pooled over datasets and arms"),
             "C": ("N14c", "Mixup (alpha 0.2-0.4) and CutMix regularize strongly (gain above 1 accuracy point)",
                   "in-distribution test-accuracy gain of mixup / CutMix over none, pooled over datasets, arms, sizes "
                   "(bar 0.01)"),
             "D": ("N14d", "A label-changing transform hurts (negative control)",
                   "test-accuracy change of the label-changing flip on digits, pooled over sizes"),
             "E": ("N14e", "Augmentation that encodes a nuisance makes the model robust to it (shapes trained on narrow "
                   "nuisances, tested on wide ones; reported beside N14, not part of it)",
                   "test-accuracy gain of the wide affine arm (the test's nuisance ranges) and flip over none on the "
                   "wide-nuisance shapes test, pooled over arms and sizes")}
# The parts the document claims; E measures robustness, a different question, and stands apart.
N14_CLAIMED = ("A", "B", "C", "D")
_NOTE = ("Verdict: the mean gain over the part's cells (dataset x arm x size, paired over seeds) against the bar, "
         "conditional when one cell holds and another fails after Holm's correction over the cells; digits seeds "
         "re-split one set of images (disjoint test folds, shared training images), so their intervals and tests "
         "use Nadeau and Bengio's corrected resampled t; smallest effect of interest "
         f"{100 * ACC_SESOI:g} accuracy point.")


def _n14_judge(t, key):
    q = parts(t["augmentation"])[key]
    return (q["summary"], f"{q['text']}. {_NOTE}") if len(q["cells"]) else (None, "no arm of this part in the config")


claim_parts(N14_PARTS, ["augmentation"], "augmentation_accuracy", _n14_judge)


@claim("N14", "Data augmentation regularizes: label-preserving transforms help, more so with less data; "
       "mixup (alpha 0.2-0.4) and CutMix regularize strongly; a label-changing transform hurts",
       ["augmentation"], figure="augmentation_accuracy")
def n14(t):
    df = t["augmentation"]
    p = {k: q for k, q in parts(df).items() if k in N14_CLAIMED}
    a = p["A"]["cells"]
    v = worst(*(q["verdict"] for q in p.values() if len(q["cells"])))  # parts are different sub-claims
    note = " | ".join(f"[{k}: {q['verdict']}] {q['text']}" for k, q in p.items() if len(q["cells"]))
    note += (". Accuracy on the in-distribution test sets: digits' held-out fold, shapes with the training nuisances "
             "(the wide-nuisance shapes test is N14e). " + _NOTE + " Overall: the weakest of N14a-N14d.")
    if not len(a):
        return row("no label-preserving arm in the config", np.nan, np.nan, np.nan, "inconclusive", note)
    return row("the weakest of N14a-N14d; shown: N14a's pooled gain of the label-preserving transforms",
               **dict(p["A"]["summary"], verdict=v), note=note)
