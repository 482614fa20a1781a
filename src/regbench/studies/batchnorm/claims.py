"""Verdict rules for the batch-normalization claims N5-N7 (see CLAIMS.md).

Every comparison is paired by seed: seed i's nets share their data and
their streams across arms, so a difference is taken per seed and its mean
gets a bootstrap interval over seeds (stats.mean_ci). Every threshold is the
sign of an effect (0): the document claims directions, not sizes; sizes are
given in the notes.
"""
import numpy as np
import pandas as pd

from regbench.verdicts import claim, row
from regbench.stats import mean_ci, verdict

# N5: the fixes of Problem 2c, each compared with the failing arm (dropout before BN).
FIXES = ("dropout_bn_recal", "bn_dropout", "layer_norm", "no_dropout")
FIX_LABELS = {"dropout_bn_recal": "recalibrated BN", "bn_dropout": "dropout after BN",
              "layer_norm": "LayerNorm", "no_dropout": "no dropout", "dropout_bn": "dropout before BN"}
# N7: the eval variants of one trained BN net, each compared with its fresh statistics.
STALE_ARMS = ("stale", "missing", "recalibrated", "batch_stats")
# N7: a net trained with BN at batch size 1 "does not learn" when its test accuracy is at
# most this far above the majority class (interval's upper end): a net whose output
# ignores its input predicts one class, at best the majority one. Used only where the
# engine lets BN train on one row at all (torch refuses).
CHANCE_MARGIN = 0.02


def _series(df: pd.DataFrame, **eq) -> pd.Series:
    """Values indexed by seed for the rows matching every column == value (nan matches nan)."""
    sel = df
    for k, v in eq.items():
        sel = sel[sel[k].isna()] if (isinstance(v, float) and np.isnan(v)) else sel[sel[k] == v]
    return sel.set_index("seed").value.sort_index()


def _ci(x: pd.Series):
    return mean_ci(x.to_numpy())


def _fmt_ci(m, lo, hi, digits=3):
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


# ---------------------------------------------------------------- N5
def n5_parts(df: pd.DataFrame) -> dict:
    """Per fix present: (mean, lo, hi, verdict) of failing-arm test loss minus the fix's, per seed."""
    test = lambda arm, metric="loss": _series(df, arm=arm, layer=np.nan, split="test", metric=metric)  # noqa: E731
    fail = test("dropout_bn")
    out = {}
    for fix in FIXES:
        if (df.arm == fix).any():
            m, lo, hi = _ci(fail - test(fix))
            out[fix] = (m, lo, hi, verdict(lo, hi, 0.0, ">"))
    return out


def n5_verdict(parts: dict) -> str:
    """supported: every fix beats dropout-before-BN; refuted: re-estimating the statistics
    of the very same nets makes them worse (the mismatch costs nothing), or no fix helps
    and one hurts; conditional: some fixes help, others do not; else inconclusive."""
    vs = {k: p[3] for k, p in parts.items()}
    if not vs:
        return "inconclusive"
    if vs.get("dropout_bn_recal") == "refuted":
        return "refuted"
    if all(v == "supported" for v in vs.values()):
        return "supported"
    if any(v == "supported" for v in vs.values()):
        return "conditional"
    return "refuted" if any(v == "refuted" for v in vs.values()) else "inconclusive"


@claim("N5", "Dropout before BN breaks at inference; fixes: dropout after BN, LayerNorm, no dropout, recalibrated BN statistics (Problem 2c)",
       ["bn_dropout"], figure="bn_dropout")
def n5(t):
    df = t["bn_dropout"]
    if not (df.arm == "dropout_bn").any():
        return row("", np.nan, np.nan, np.nan, "inconclusive", "the failing arm dropout_bn was not run")
    parts = n5_parts(df)
    v = n5_verdict(parts)
    key = "dropout_bn_recal" if "dropout_bn_recal" in parts else next(iter(parts), None)
    if key is None:
        return row("", np.nan, np.nan, np.nan, "inconclusive", "no fix arm was run")
    m, lo, hi, _ = parts[key]
    test = lambda arm, metric: _series(df, arm=arm, layer=np.nan, split="test", metric=metric).mean()  # noqa: E731
    arms = ["dropout_bn", *parts]
    train = _series(df, arm="dropout_bn", layer=np.nan, split="train", metric="loss").mean()
    bits = [f"the document's symptom (train loss low, test loss high): dropout before BN train {train:.3f} vs test "
            f"{test('dropout_bn', 'loss'):.3f} (eval mode; training labels carry the teacher's label noise, test labels are clean)"]
    bits += ["test loss / accuracy: " + "; ".join(f"{FIX_LABELS[a]} {test(a, 'loss'):.3f} / {test(a, 'accuracy'):.3f}" for a in arms)]
    if "dropout_bn_recal" in parts:
        acc = _ci(_series(df, arm="dropout_bn", layer=np.nan, split="test", metric="accuracy")
                  - _series(df, arm="dropout_bn_recal", layer=np.nan, split="test", metric="accuracy"))
        bits.append(f"the same nets before minus after recalibration: test loss {m / test('dropout_bn_recal', 'loss'):+.0%} "
                    f"(relative), test accuracy {_fmt_ci(*acc)}")
    bits.append("failing minus fix (test loss, paired): " + "; ".join(
        f"{FIX_LABELS[k]} {_fmt_ci(*p[:3])} {p[3]}" for k, p in parts.items()))
    mom = lambda arm, layer, metric: _series(df, arm=arm, layer=float(layer), metric=metric)  # noqa: E731
    if (df.metric == "var_ratio").any():
        mr, vr = _ci(mom("dropout_bn", 0, "mean_ratio")), _ci(mom("dropout_bn", 0, "var_ratio"))
        m2, pr = _ci(mom("dropout_bn", 0, "m2_ratio")), mom("dropout_bn", 0, "var_ratio_predicted").mean()
        rv = _ci(mom("dropout_bn", 0, "running_var_ratio"))
        bits.append(f"first BN input, train mode / eval mode: mean x{_fmt_ci(*mr)}, second moment x{_fmt_ci(*m2)}, "
                    f"variance x{_fmt_ci(*vr)} (inverted dropout alone predicts x{pr:.3f}); at inference BN divides by a "
                    f"running variance x{_fmt_ci(*rv)} the variance it meets. The document's 'activations ~2x larger at "
                    "inference' does not describe inverted dropout: the mean does not move; the spread is smaller at "
                    "inference than in training")
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
    return row(f"test loss, dropout before BN minus {FIX_LABELS[key]} (paired by seed)", m, lo, hi, v, "; ".join(bits))


# ---------------------------------------------------------------- N6
def n6_tables(df: pd.DataFrame) -> dict:
    """Per batch size: the per-seed gap differences BN - none and ghost - BN (held-out minus train loss)."""
    gap = df[df.metric == "gap_loss"]
    out = {}
    for b in sorted(gap.batch_size.unique()):
        g = {n: _series(gap, batch_size=b, norm=n) for n in gap[gap.batch_size == b].norm.unique()}
        out[int(b)] = {"bn_minus_none": g["batch"] - g["none"] if {"batch", "none"} <= set(g) else None,
                       "ghost_minus_bn": g["ghost"] - g["batch"] if {"ghost", "batch"} <= set(g) else None}
    return out


def n6_verdict(tab: dict) -> tuple[str, dict]:
    """The rule, from the per-batch gap differences.

    narrows(b): BN - none gap < 0 (interval). fades: (BN - none at the largest batch)
    minus (at the smallest) > 0. noise: ghost - BN gap at the largest batch < 0 (small
    normalization batches kept at a large batch keep a smaller gap).
      main supported  : narrows at the smallest batch, fades, and widens it at no batch
                        size (a gap BN widens at large batches is a reversal, not a fade)
      main refuted    : the narrowing grows with the batch (fades refuted), or BN never
                        narrows the gap and widens it somewhere
      main conditional: BN narrows it at some batch sizes only (the note says which)
    Final: main supported -> supported unless noise is refuted (conditional);
    main refuted or inconclusive with noise supported -> conditional (batch noise
    regularizes, BN as a whole does not here); else main.
    """
    bs = sorted(b for b in tab if tab[b]["bn_minus_none"] is not None)
    info = {"per_batch": {b: (*_ci(tab[b]["bn_minus_none"]),) for b in bs}}
    narrows = {b: verdict(*info["per_batch"][b][1:], 0.0, "<") for b in bs}
    info["narrows"] = narrows
    if len(bs) < 2:
        return "inconclusive", info
    b0, b1 = bs[0], bs[-1]
    info["trend"] = _ci(tab[b1]["bn_minus_none"] - tab[b0]["bn_minus_none"])
    fades = verdict(*info["trend"][1:], 0.0, ">")
    gh = [b for b in tab if tab[b]["ghost_minus_bn"] is not None]
    noise = "not run"
    if gh:
        info["ghost"] = {b: _ci(tab[b]["ghost_minus_bn"]) for b in sorted(gh)}
        noise = verdict(*info["ghost"][max(gh)][1:], 0.0, "<")
    info["fades"], info["noise"] = fades, noise
    if narrows[b0] == "supported" and fades == "supported" and "refuted" not in narrows.values():
        main = "supported"
    elif fades == "refuted" and narrows[b1] == "supported":
        main = "refuted"
    elif any(v == "supported" for v in narrows.values()):
        main = "conditional"
    elif any(v == "refuted" for v in narrows.values()):
        main = "refuted"
    else:
        main = "inconclusive"
    info["main"] = main
    if main == "supported":
        return ("conditional" if noise == "refuted" else "supported"), info
    if main in ("refuted", "inconclusive") and noise == "supported":
        return "conditional", info
    return main, info


@claim("N6", "BN regularizes through batch noise, and the effect fades as batches grow (Part 6)",
       ["bn_batchsize"], figure="bn_batchsize")
def n6(t):
    df = t["bn_batchsize"]
    tab = n6_tables(df)
    v, info = n6_verdict(tab)
    if not info["per_batch"]:
        return row("", np.nan, np.nan, np.nan, "inconclusive", "needs norms none and batch")
    b0 = min(info["per_batch"])
    m, lo, hi = info["per_batch"][b0]
    upd = df[df.metric == "updates"].groupby("batch_size").value.first()
    bits = ["BN minus no-BN gap (held-out minus train loss) by batch: " + "; ".join(
        f"{b}: {_fmt_ci(*info['per_batch'][b])} ({'narrows' if info['narrows'][b] == 'supported' else 'widens' if info['narrows'][b] == 'refuted' else 'no clear effect'})"
        for b in sorted(info["per_batch"]))]
    if "trend" in info:
        bits.append(f"that difference at the largest minus at the smallest batch: {_fmt_ci(*info['trend'])} "
                    f"(> 0 claimed: {info['fades']})")
    if "ghost" in info:
        bits.append(f"ghost BN minus BN gap (ghost batch {_ghost_batch(df)} kept at larger batches; negative = batch noise "
                    "narrows the gap): " + "; ".join(f"{b}: {_fmt_ci(*c)}" for b, c in info["ghost"].items()))
    if len(info.get("ghost", {})) > 1:
        g = sorted(info["ghost"])
        tr = _ci(tab[g[-1]]["ghost_minus_bn"] - tab[g[0]]["ghost_minus_bn"])
        bits.append(f"ghost minus BN at batch {g[-1]} minus at {g[0]}: {_fmt_ci(*tr)} (< 0: BN loses more of the "
                    "small-batch noise's effect as its batch grows)")
    acc = df[df.metric == "gap_accuracy"]
    diff_acc = {b: _ci(_series(acc, batch_size=b, norm="batch") - _series(acc, batch_size=b, norm="none"))
                for b in sorted(info["per_batch"])}
    wider = [b for b, c in diff_acc.items() if c[1] > 0]
    bits.append("accuracy gap (train minus held-out accuracy), BN minus no BN: " + "; ".join(
        f"{b}: {_fmt_ci(*c)}" for b, c in diff_acc.items()) + f" (BN's accuracy gap wider at {len(wider)} of {len(diff_acc)} batch sizes)")
    for split, label in (("train", "train"), ("val", "held-out")):
        loss = df[(df.metric == "loss") & (df.split == split)]
        bits.append(f"{label} loss no BN / BN: " + "; ".join(
            f"{b}: {_series(loss, batch_size=b, norm='none').mean():.3f} / {_series(loss, batch_size=b, norm='batch').mean():.3f}"
            for b in sorted(info["per_batch"])))
    bits.append(f"updates per run: {', '.join(str(int(u)) for u in upd.unique())}; BN-level verdict {info.get('main', v)}, "
                f"batch-noise (ghost) check {info.get('noise', 'not run')}")
    return row(f"generalization gap, BN minus no BN, at batch {b0} (paired; negative = BN narrows it)", m, lo, hi, v, "; ".join(bits))


def _ghost_batch(df):
    gh = df[df.metric == "ghost_batch"]
    return str(int(gh.value.iloc[0])) if len(gh) else "?"


# ---------------------------------------------------------------- N7
def n7_parts(df: pd.DataFrame) -> dict:
    """The parts of N7, each (mean, lo, hi, verdict)."""
    test = lambda arm, metric="loss", **eq: _series(df, arm=arm, split="test", metric=metric, **eq)  # noqa: E731
    fresh = test("fresh")
    out = {}
    for arm in STALE_ARMS:
        if (df.arm == arm).any():
            m, lo, hi = _ci(test(arm) - fresh)
            # stale / missing / batch statistics: the claim is that they cost; recalibrated: reported only
            out[arm] = (m, lo, hi, verdict(lo, hi, 0.0, ">"))
    chance = test("chance", "chance_accuracy")
    raised = df[(df.arm == "batch1") & (df.metric == "raised")].groupby("norm").value.max()
    for norm in ("layer", "batch"):
        if norm not in raised:
            continue
        if raised[norm] > 0:
            out[f"batch1_{norm}"] = (np.nan, np.nan, np.nan, "raised")
            continue
        m, lo, hi = _ci(test("batch1", "accuracy", norm=norm) - chance)
        # LayerNorm: learns (above chance). BN: "at chance" reads as hi < CHANCE_MARGIN.
        out[f"batch1_{norm}"] = (m, lo, hi, verdict(lo, hi, 0.0 if norm == "layer" else CHANCE_MARGIN, ">"))
    return out


def n7_verdict(parts: dict) -> str:
    """supported when stale and missing statistics both raise the test loss, LayerNorm
    trains at batch size 1 (accuracy above the majority class) and BN does not (torch
    refuses, or its accuracy stays within CHANCE_MARGIN of the majority class); any
    part on the other side refutes, any part undecided leaves it inconclusive."""
    need = [parts.get("stale"), parts.get("missing")]
    vs = [p[3] for p in need if p is not None]
    ln, bn = parts.get("batch1_layer"), parts.get("batch1_batch")
    if ln is not None:
        vs.append("refuted" if ln[3] == "raised" else ln[3])
    if bn is not None:  # BN at batch 1 should fail to learn: raised, or not above chance
        vs.append("supported" if bn[3] in ("raised", "refuted") else ("refuted" if bn[3] == "supported" else "inconclusive"))
    if not vs:
        return "inconclusive"
    for v in ("refuted", "inconclusive"):
        if v in vs:
            return v
    return "supported"


@claim("N7", "BN uses running statistics at inference; stale or missing statistics are a production bug; LayerNorm needs no batch (Part 6 table)",
       ["bn_stats"], figure="bn_stats")
def n7(t):
    df = t["bn_stats"]
    parts = n7_parts(df)
    v = n7_verdict(parts)
    if "stale" not in parts:
        return row("", np.nan, np.nan, np.nan, "inconclusive", "no stale arm")
    m, lo, hi, _ = parts["stale"]
    test = lambda arm, metric, **eq: _series(df, arm=arm, split="test", metric=metric, **eq).mean()  # noqa: E731
    names = {"stale": "stale", "missing": "missing (init 0/1)", "recalibrated": "recalibrated", "batch_stats": "batch statistics"}
    bits = ["minus fresh statistics (test loss, paired): " + "; ".join(
        f"{names[a]} {_fmt_ci(*parts[a][:3])}" for a in STALE_ARMS if a in parts)]
    bits.append("test accuracy: " + "; ".join(f"{a} {test(a, 'accuracy'):.3f}" for a in ("fresh", *STALE_ARMS) if (df.arm == a).any()))
    drift = df[df.metric == "stale_var_drift"].value.mean()
    bits.append(f"stale running variance differs from the fresh one by {drift:.0%} (relative norm)")
    if (df.arm == "layer_norm").any():
        bits.append(f"LayerNorm trained alike: test accuracy {test('layer_norm', 'accuracy'):.3f}")
    chance = test("chance", "chance_accuracy")
    for norm, label in (("layer", "LayerNorm"), ("batch", "BN")):
        p = parts.get(f"batch1_{norm}")
        if p is None:
            continue
        if p[3] == "raised":
            spread = df[df.metric == "single_row_bn_spread"].value.max()
            bits.append(f"{label} at batch size 1: training raises (torch: 'Expected more than 1 value per channel when "
                        f"training'); the kernel run on one row returns its shift whatever the row (outputs differ by "
                        f"{spread:.1e}), so nothing of the input would pass")
        else:
            bits.append(f"{label} at batch size 1: test accuracy {test('batch1', 'accuracy', norm=norm):.3f} vs majority "
                        f"class {chance:.3f} (difference {_fmt_ci(*p[:3])})")
    return row("test loss, stale (early-epoch) minus fresh running statistics (paired by seed)", m, lo, hi, v, "; ".join(bits))
