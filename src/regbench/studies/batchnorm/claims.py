"""Verdict rules for the batch-normalization claims N5-N7 (see CLAIMS.md).

Every comparison is paired by seed: seed i's nets share their teacher, data and
streams across arms, and each seed draws its own teacher, so seeds are
independent tasks and an interval over seeds speaks for the family of teachers.
Losses are compared relative to a reference arm's loss of the same seed, so a
smallest effect of interest of 1% means the same on every task. Every rule uses
regbench.verdicts (paired / regimes / exact / worst), so it reaches each verdict it
can give and the engine's calibration (regbench.verdict_sim) covers it.
"""
import numpy as np
import pandas as pd

from regbench.verdicts import claim, claim_parts, exact, paired, regimes, row, where, worst
from regbench.stats import mean_ci

# Smallest effect of interest of a relative test-loss (or gap) difference: 1% of the
# reference arm's loss, the README's convention for a test loss; below that no one
# would pick a normalization or a fix for its loss.
LOSS_SESOI = 0.01
# Smallest effect of interest of an accuracy difference: 1 accuracy point.
ACC_SESOI = 0.01

# N5: the fixes of Problem 2c, each compared with the failing arm (dropout before BN).
FIXES = ("dropout_bn_recal", "bn_dropout", "layer_norm", "no_dropout")
FIX_LABELS = {"dropout_bn_recal": "recalibrated BN", "bn_dropout": "dropout after BN",
              "layer_norm": "LayerNorm", "no_dropout": "no dropout", "dropout_bn": "dropout before BN"}
# N7: the eval variants of one trained BN net, each compared with its fresh statistics;
# stale and missing are the document's bug, the other two are reported only.
STALE_ARMS = ("stale", "missing", "recalibrated", "batch_stats")
BUG_ARMS = ("stale", "missing")
# N7: a net trained with BN at batch size 1 "does not learn" when its test accuracy is
# less than this above the majority class: a net whose output ignores its input predicts
# one class, at best the majority one. Used only where the engine lets BN train on one
# row at all (torch refuses).
CHANCE_MARGIN = 0.02
# N7: BN on a batch of one row returns its shift whatever the row (x - mean(x) = 0): an
# identity, checked on the kernel. float64 rounding of a normalization is ~1e-16 per
# entry; an output that still carries the row differs by O(1).
SINGLE_ROW_TOL = 1e-10
SINGLE_ROW_GROSS = 1e-3


def _series(df: pd.DataFrame, **eq) -> pd.Series:
    """Values indexed by seed for the rows matching every column == value (nan matches nan)."""
    sel = df
    for k, v in eq.items():
        sel = sel[sel[k].isna()] if (isinstance(v, float) and np.isnan(v)) else sel[sel[k] == v]
    return sel.set_index("seed").value.sort_index()


def _fmt_ci(m, lo, hi, digits=3):
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _pct(d: dict) -> str:
    """'+1.2% [+0.3%, +2.1%]' from a summary dict of a relative statistic."""
    return f"{d['value']:+.1%} [{d['lo']:+.1%}, {d['hi']:+.1%}]"


def _nan_row(statistic: str, note: str) -> dict:
    return row(statistic, np.nan, np.nan, np.nan, "inconclusive", note)


# ---------------------------------------------------------------- N5
def n5_cells(df: pd.DataFrame) -> dict:
    """Per fix present: per-seed (failing-arm test loss - the fix's) / failing-arm test loss."""
    test = lambda arm: _series(df, arm=arm, layer=np.nan, split="test", metric="loss")  # noqa: E731
    fail = test("dropout_bn")
    return {FIX_LABELS[f]: (fail - test(f)) / fail for f in FIXES if (df.arm == f).any()}


@claim("N5", "Dropout before BN breaks at inference; fixes: dropout after BN, LayerNorm, no dropout, recalibrated BN statistics (Problem 2c)",
       ["bn_dropout"], figure="bn_dropout")
def n5(t):
    df = t["bn_dropout"]
    statistic = "relative test-loss drop of each fix vs dropout before BN, pooled over the fixes (paired by seed)"
    if not (df.arm == "dropout_bn").any():
        return _nan_row(statistic, "the failing arm dropout_bn was not run")
    cells = n5_cells(df)
    if not cells:
        return _nan_row(statistic, "no fix arm was run")
    # each fix a regime: every fix lowers the loss (supported), some lower it and some raise
    # it (conditional, Holm over fixes), or the pooled drop decides
    summary, table = regimes(cells, ">", 0.0, LOSS_SESOI)
    test = lambda arm, metric: _series(df, arm=arm, layer=np.nan, split="test", metric=metric).mean()  # noqa: E731
    arms = ["dropout_bn", *[f for f in FIXES if (df.arm == f).any()]]
    train = _series(df, arm="dropout_bn", layer=np.nan, split="train", metric="loss").mean()
    bits = [f"per fix, relative test-loss drop (Holm over fixes): {where(table, lambda v: f'{v:+.1%}')}",
            f"the document's symptom (train loss low, test loss high): dropout before BN train {train:.3f} vs test "
            f"{test('dropout_bn', 'loss'):.3f} (eval mode; training labels carry the teacher's label noise, test labels are clean)",
            "test loss / accuracy: " + "; ".join(f"{FIX_LABELS[a]} {test(a, 'loss'):.3f} / {test(a, 'accuracy'):.3f}" for a in arms)]
    if (df.arm == "dropout_bn_recal").any():
        acc = mean_ci(_series(df, arm="dropout_bn_recal", layer=np.nan, split="test", metric="accuracy")
                      - _series(df, arm="dropout_bn", layer=np.nan, split="test", metric="accuracy"))
        bits.append(f"the same nets after minus before recalibrating their BN statistics: test accuracy {_fmt_ci(*acc)}")
    bits += _n5_moments(df)
    bits.append(f"smallest effect of interest {LOSS_SESOI:.0%} of the failing arm's test loss")
    return row(statistic, **summary, note="; ".join(bits))


def _n5_moments(df: pd.DataFrame) -> list:
    """The note's account of the variance shift at the BN inputs (the document's '~2x larger')."""
    if not (df.metric == "var_ratio").any():
        return []
    mom = lambda arm, layer, metric: _series(df, arm=arm, layer=float(layer), metric=metric)  # noqa: E731
    mr, vr = mean_ci(mom("dropout_bn", 0, "mean_ratio")), mean_ci(mom("dropout_bn", 0, "var_ratio"))
    m2, pr = mean_ci(mom("dropout_bn", 0, "m2_ratio")), mom("dropout_bn", 0, "var_ratio_predicted").mean()
    rv = mean_ci(mom("dropout_bn", 0, "running_var_ratio"))
    bits = [f"first BN input, train mode / eval mode: mean x{_fmt_ci(*mr)}, second moment x{_fmt_ci(*m2)}, "
            f"variance x{_fmt_ci(*vr)} (inverted dropout alone predicts x{pr:.3f}); at inference BN divides by a "
            f"running variance x{_fmt_ci(*rv)} the variance it meets. The document's 'activations ~2x larger at "
            "inference' does not describe inverted dropout: the mean does not move; the spread is smaller at "
            "inference than in training"]
    layers = sorted(df[df.arm == "dropout_bn"].layer.dropna().unique())
    if len(layers) > 1:
        bits.append("deeper BN inputs (shift compounds): " + ", ".join(
            f"layer {int(j) + 1} variance x{mom('dropout_bn', j, 'var_ratio').mean():.2f}" for j in layers[1:]))
    if (df.arm == "bn_dropout").any():
        lay = sorted(df[df.arm == "bn_dropout"].layer.dropna().unique())
        bits.append("dropout after BN still shifts the next BN's input: " + ", ".join(
            f"layer {int(j) + 1} variance x{mom('bn_dropout', j, 'var_ratio').mean():.2f}" for j in lay))
    if (df.arm == "dropout_bn_recal").any():
        bits.append(f"after recalibration the running variance is x{mom('dropout_bn_recal', 0, 'running_var_ratio').mean():.3f} "
                    "the eval-mode variance (first BN)")
    return bits


# ---------------------------------------------------------------- N6
def _arms(df: pd.DataFrame) -> list:
    """The lr-scaling arms of a bn_batchsize table, fixed first (a table without the column: fixed only)."""
    if "lr_scaling" not in df:
        return ["fixed"]
    return ["fixed", *sorted(a for a in df.lr_scaling.dropna().unique() if a != "fixed")]


def n6_rel(df: pd.DataFrame, batch: int, a: str, b: str, what: str = "gap", arm: str = "fixed") -> pd.Series:
    """Per seed, norm a minus norm b at one batch size and lr arm, relative to the no-norm net's loss
    there: what = "gap" (held-out minus train loss, over the no-norm held-out loss) or "test" (test
    loss, over the no-norm test loss). Empty where a norm was not run."""
    d = df[df.batch_size == batch]
    if "lr_scaling" in d:
        d = d[d.lr_scaling == arm]
    metric, split, ref_split = ("gap_loss", None, "val") if what == "gap" else ("loss", "test", "test")
    pick = lambda norm, m, s: _series(d[(d.metric == m) & ((d.split == s) if s else d.split.isna())], norm=norm)  # noqa: E731
    ref = pick("none", "loss", ref_split)
    return ((pick(a, metric, split) - pick(b, metric, split)) / ref).dropna()


def n6_judged(df: pd.DataFrame) -> dict:
    """N6's parts, each a regbench.verdicts summary (value, lo, hi, verdict, calibration fields) with a note:
      narrows  BN minus no-norm gap at the smallest batch, < 0
      test     BN minus no-norm test loss at the smallest batch, < 0
      fades    (BN minus no norm at the largest batch) minus (at the smallest), > 0, in every lr arm
               (regimes: Holm over the arms; conditional if it fades in one and reverses in another)
      noise    ghost BN minus BN gap at the largest batch, < 0 (small normalization batches kept at a
               large batch keep BN's effect: the batch noise is the mechanism)
    A part whose arms were not run is None."""
    bs = sorted(int(b) for b in df.batch_size.dropna().unique())
    b0, b1 = bs[0], bs[-1]
    out = {"narrows": None, "test": None, "fades": None, "noise": None}
    gap0 = n6_rel(df, b0, "batch", "none")
    if len(gap0):
        out["narrows"] = dict(paired(gap0, "<", LOSS_SESOI), note=f"at batch {b0}")
        out["test"] = dict(paired(n6_rel(df, b0, "batch", "none", "test"), "<", LOSS_SESOI), note=f"at batch {b0}")
    if len(bs) > 1 and len(gap0):
        # the smallest batch's value is the fixed arm's: a scaled arm's lr equals it there (lr_ref_batch) or
        # the arm has its own runs at b0
        fades = {f"lr {arm}": n6_rel(df, b1, "batch", "none", arm=arm)
                 - (n6_rel(df, b0, "batch", "none", arm=arm) if len(n6_rel(df, b0, "batch", "none", arm=arm)) else gap0)
                 for arm in _arms(df)}
        fades = {k: v.dropna() for k, v in fades.items() if len(v.dropna())}
        if fades:
            summary, table = regimes(fades, ">", 0.0, LOSS_SESOI)
            out["fades"] = dict(summary, note=f"batch {b1} minus batch {b0}, per lr arm (Holm): {where(table, lambda v: f'{v:+.1%}')}")
    ghost = n6_rel(df, b1, "ghost", "batch")
    if len(ghost):
        out["noise"] = dict(paired(ghost, "<", LOSS_SESOI), note=f"at batch {b1}, ghost batch {_ghost_batch(df)}")
    return out


N6_PARTS = {
    "narrows": ("N6a", "BN narrows the generalization gap at a small batch (Part 6: BN regularizes)",
                "generalization gap (held-out minus train loss), BN minus no norm, at the smallest batch, relative to the "
                "no-norm held-out loss (paired by seed; < 0: BN narrows it)"),
    "test": ("N6b", "BN lowers the test loss at a small batch (Part 6: BN regularizes)",
             "test loss, BN minus no norm, at the smallest batch, relative to the no-norm test loss (paired by seed; < 0: BN helps)"),
    "fades": ("N6c", "BN's regularizing effect decreases as the batch grows (Part 6)",
              "BN minus no-norm gap at the largest batch minus at the smallest, relative, pooled over the lr arms (fixed lr, "
              "lr scaled with the batch); > 0: the narrowing fades"),
    "noise": ("N6d", "BN regularizes through batch noise (Part 6)",
              "generalization gap, ghost BN (small normalization batches) minus BN, at the largest batch, relative to the "
              "no-norm held-out loss (paired by seed; < 0: the batch noise narrows it)"),
}


def _n6_judge(t, key):
    part = n6_judged(t["bn_batchsize"])[key]
    if part is None:
        return None, "the arms this part compares were not run"
    fields = {k: v for k, v in part.items() if k != "note"}
    return fields, f"{part['note']}; smallest effect of interest {LOSS_SESOI:.0%} of the reference loss"


claim_parts(N6_PARTS, ["bn_batchsize"], "bn_batchsize", _n6_judge)


@claim("N6", "BN regularizes through batch noise, and the effect fades as batches grow (Part 6)",
       ["bn_batchsize"], figure="bn_batchsize")
def n6(t):
    df = t["bn_batchsize"]
    parts = n6_judged(df)
    statistic = "the weakest of N6a-N6d; shown: N6a's relative gap difference, BN minus no norm, at the smallest batch"
    if parts["narrows"] is None:
        return _nan_row(statistic, "needs norms none and batch")
    v = worst(*(p["verdict"] if p else "inconclusive" for p in parts.values()))
    bs = sorted(int(b) for b in df.batch_size.unique())
    bits = [", ".join(f"{N6_PARTS[k][0]} {p['verdict'] if p else 'not run'}" + (f" ({_pct(p)}, {p['note']})" if p else "")
                      for k, p in parts.items())]
    for arm in _arms(df):
        bits.append(f"BN minus no-norm gap, lr {arm}, by batch: " + "; ".join(
            f"{b}: {_pct(paired(n6_rel(df, b, 'batch', 'none', arm=arm), '<', LOSS_SESOI))}"
            for b in bs if len(n6_rel(df, b, "batch", "none", arm=arm))))
    bits.append("BN minus no-norm test loss, lr fixed, by batch: " + "; ".join(
        f"{b}: {_pct(paired(n6_rel(df, b, 'batch', 'none', 'test'), '<', LOSS_SESOI))}" for b in bs))
    for split, label in (("train", "train"), ("val", "held-out")):
        loss = df[(df.metric == "loss") & (df.split == split)]
        if "lr_scaling" in loss:
            loss = loss[loss.lr_scaling == "fixed"]
        bits.append(f"{label} loss no BN / BN (lr fixed): " + "; ".join(
            f"{b}: {_series(loss, batch_size=b, norm='none').mean():.3f} / {_series(loss, batch_size=b, norm='batch').mean():.3f}"
            for b in bs))
    upd = df[df.metric == "updates"].value.unique()
    bits.append(f"updates per run: {', '.join(str(int(u)) for u in upd)}; each seed its own teacher; the weakest part decides")
    shown = {k: x for k, x in parts["narrows"].items() if k != "note"}
    return row(statistic, **dict(shown, verdict=v), note="; ".join(bits))


def _ghost_batch(df):
    gh = df[df.metric == "ghost_batch"]
    return str(int(gh.value.iloc[0])) if len(gh) else "?"


# ---------------------------------------------------------------- N7
def n7_judged(df: pd.DataFrame) -> dict:
    """N7's parts, each a summary dict (value, lo, hi, verdict, calibration fields) or None if not run:
      bug        stale and missing running statistics raise the test loss, relative to fresh ones (regimes over
                 the two, > 0)
      ln_batch1  LayerNorm trained at batch size 1 beats the majority class (test accuracy, > 0)
      bn_batch1  BN at batch size 1 does not learn: torch refuses, and the kernel on one row returns its
                 shift whatever the row (an identity check); or, where it trains, accuracy stays within
                 CHANCE_MARGIN of the majority class (< CHANCE_MARGIN)"""
    test = lambda arm, metric="loss", **eq: _series(df, arm=arm, split="test", metric=metric, **eq)  # noqa: E731
    out = {"bug": None, "ln_batch1": None, "bn_batch1": None}
    fresh = test("fresh")
    cells = {a: (test(a) - fresh) / fresh for a in BUG_ARMS if (df.arm == a).any()}
    if cells:
        out["bug"] = regimes(cells, ">", 0.0, LOSS_SESOI)[0]
    chance = test("chance", "chance_accuracy")
    raised = df[(df.arm == "batch1") & (df.metric == "raised")].groupby("norm").value.max()
    if "layer" in raised:
        out["ln_batch1"] = (dict(value=np.nan, lo=np.nan, hi=np.nan, verdict="refuted", raised=True) if raised["layer"] > 0
                            else paired(test("batch1", "accuracy", norm="layer") - chance, ">", ACC_SESOI))
    if "batch" in raised:
        if raised["batch"] > 0:
            spread = df[df.metric == "single_row_bn_spread"].value
            out["bn_batch1"] = dict(value=spread.max(), lo=spread.min(), hi=spread.max(), raised=True,
                                    verdict=exact(spread, SINGLE_ROW_TOL, SINGLE_ROW_GROSS), sesoi=SINGLE_ROW_TOL)
        else:
            out["bn_batch1"] = paired(test("batch1", "accuracy", norm="batch") - chance, "<", ACC_SESOI, CHANCE_MARGIN)
    return out


@claim("N7", "BN uses running statistics at inference; stale or missing statistics are a production bug; LayerNorm needs no batch (Part 6 table)",
       ["bn_stats"], figure="bn_stats")
def n7(t):
    df = t["bn_stats"]
    parts = n7_judged(df)
    statistic = "relative test-loss increase of stale and missing running statistics over fresh ones, pooled (paired by seed)"
    if parts["bug"] is None:
        return _nan_row(statistic, "no stale or missing arm")
    v = worst(*(p["verdict"] for p in parts.values() if p is not None))
    test = lambda arm, metric, **eq: _series(df, arm=arm, split="test", metric=metric, **eq).mean()  # noqa: E731
    fresh = _series(df, arm="fresh", split="test", metric="loss")
    names = {"stale": "stale", "missing": "missing (init 0/1)", "recalibrated": "recalibrated", "batch_stats": "batch statistics"}
    bits = [f"parts: bug {parts['bug']['verdict']}, LayerNorm at batch 1 "
            f"{parts['ln_batch1']['verdict'] if parts['ln_batch1'] else 'not run'}, BN at batch 1 "
            f"{parts['bn_batch1']['verdict'] if parts['bn_batch1'] else 'not run'}; the weakest decides",
            "minus fresh statistics, relative test loss (paired): " + "; ".join(
                f"{names[a]} {_pct(paired((_series(df, arm=a, split='test', metric='loss') - fresh) / fresh, '>', LOSS_SESOI))}"
                for a in STALE_ARMS if (df.arm == a).any())]
    bits.append("test accuracy: " + "; ".join(f"{a} {test(a, 'accuracy'):.3f}" for a in ("fresh", *STALE_ARMS) if (df.arm == a).any()))
    drift = df[df.metric == "stale_var_drift"].value.mean()
    bits.append(f"stale running variance differs from the fresh one by {drift:.0%} (relative norm)")
    if (df.arm == "layer_norm").any():
        bits.append(f"LayerNorm trained alike: test accuracy {test('layer_norm', 'accuracy'):.3f}")
    chance = test("chance", "chance_accuracy")
    for key, norm, label in (("ln_batch1", "layer", "LayerNorm"), ("bn_batch1", "batch", "BN")):
        p = parts[key]
        if p is None:
            continue
        if p.get("raised"):
            bits.append(f"{label} at batch size 1: training raises (torch: 'Expected more than 1 value per channel when "
                        f"training')" + (f"; the kernel run on one row returns its shift whatever the row (outputs differ "
                                         f"by at most {p['value']:.1e}; identity to {SINGLE_ROW_TOL:g})" if norm == "batch" else ""))
        else:
            bits.append(f"{label} at batch size 1: test accuracy {test('batch1', 'accuracy', norm=norm):.3f} vs majority "
                        f"class {chance:.3f} (difference {_fmt_ci(p['value'], p['lo'], p['hi'])})")
    bits.append(f"smallest effects of interest: {LOSS_SESOI:.0%} of the fresh test loss, {100 * ACC_SESOI:g} accuracy point; "
                f"BN 'does not learn' at batch 1: within {100 * CHANCE_MARGIN:g} points of the majority class")
    return row(statistic, **dict(parts["bug"], verdict=v), note="; ".join(bits))
