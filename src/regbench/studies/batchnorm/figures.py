"""Figures of the batch-normalization study (claims N5-N7). No torch here."""
import numpy as np

from regbench.studies.batchnorm.claims import (FIX_LABELS, FIXES, LOSS_SESOI, N6_PARTS, _arms, _series, n6_judged,
                                               n6_rel, n7_judged)
from regbench.verdicts import paired, regimes
from regbench.figures import SEQ, Figure, finish, new
from regbench.stats import mean_ci

N5_ORDER = ("dropout_bn", "dropout_bn_recal", "bn_dropout", "layer_norm", "no_dropout")
N5_COLORS = dict(zip(N5_ORDER, (SEQ[3], SEQ[0], SEQ[2], SEQ[4], "#999999")))
NORM_COLORS = {"none": "#999999", "batch": SEQ[0], "ghost": SEQ[1], "layer": SEQ[4]}
NORM_LABELS = {"none": "no norm", "batch": "BN", "ghost": "ghost BN", "layer": "LayerNorm"}


def _dots(ax, x, values, color, label=None):
    """One dot per seed and the mean with its 95% bootstrap interval beside it."""
    values = np.asarray(values, dtype=float)
    jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
    ax.scatter(x + jitter, values, s=11, color=color, alpha=0.75, zorder=2, label=label)
    m, lo, hi = mean_ci(values)
    ax.errorbar([x + 0.25], [m], yerr=[[m - lo], [hi - m]], fmt="o", color="k", ms=4, capsize=3, zorder=3)
    return m


# ---------------------------------------------------------------- N5
def bn_dropout(t, footer):
    df = t["bn_dropout"]
    arms = [a for a in N5_ORDER if (df.arm == a).any() and not _series(df, arm=a, layer=np.nan, split="test", metric="loss").empty]
    test = {a: _series(df, arm=a, layer=np.nan, split="test", metric="loss") for a in arms}
    fig, axes = new(ncols=3, width=4.4, height=4.4)
    ax = axes[0, 0]
    for i, a in enumerate(arms):
        _dots(ax, i, test[a], N5_COLORS[a])
    ax.set_xticks(range(len(arms)), [FIX_LABELS[a].replace(" ", "\n", 1) for a in arms], fontsize=7)
    ax.set_ylabel("test cross-entropy (nats); dot = seed")
    ax.set_title("test loss per arm (black: mean, 95% interval)")

    ax = axes[0, 1]
    fail = test["dropout_bn"]
    fixes = [f for f in FIXES if f in test]
    _, table = regimes({f: (fail - test[f]) / fail for f in fixes}, ">", 0.0, LOSS_SESOI)
    for i, r in enumerate(table.itertuples()):
        ax.errorbar([i], [r.mean], yerr=[[r.mean - r.lo], [r.hi - r.mean]], fmt="o", color=N5_COLORS[r.cell], capsize=4, ms=6)
        ax.text(i, r.hi, f" {r.verdict}", fontsize=7, ha="center", va="bottom")
    ax.axhline(0, color="k", lw=0.8, ls=":")
    ax.axhspan(-LOSS_SESOI, LOSS_SESOI, color="#dddddd", zorder=0, label=f"smallest effect of interest ({LOSS_SESOI:.0%})")
    ax.set_xticks(range(len(fixes)), [FIX_LABELS[f].replace(" ", "\n", 1) for f in fixes], fontsize=7)
    ax.set_ylabel("test loss drop of the fix (share of the failing arm's)")
    ax.set_title("paired by seed (Holm over fixes); > 0: the fix helps")
    ax.legend(fontsize=7, loc="lower right")

    ax = axes[0, 2]
    mom = df[(df.arm == "dropout_bn") & df.layer.notna()]
    metrics = [("mean_ratio", "mean"), ("m2_ratio", "second moment"), ("var_ratio", "variance"),
               ("running_var_ratio", "running var / eval var")]
    layers = sorted(mom.layer.unique())
    width = 0.8 / max(len(layers), 1)
    for j, layer in enumerate(layers):
        vals = [mom[(mom.layer == layer) & (mom.metric == m)].value for m, _ in metrics]
        means = [v.mean() for v in vals]
        cis = [mean_ci(v.to_numpy()) for v in vals]
        xs = np.arange(len(metrics)) + (j - (len(layers) - 1) / 2) * width
        ax.bar(xs, means, width=width * 0.9, color=SEQ[j % len(SEQ)], label=f"BN layer {int(layer) + 1} input")
        ax.errorbar(xs, means, yerr=[[m - c[1] for m, c in zip(means, cis)], [c[2] - m for m, c in zip(means, cis)]],
                    fmt="none", color="k", capsize=2)
    p = _series(df, arm="dropout_bn", metric="p_hidden").mean()
    ax.axhline(1, color="k", lw=0.8)
    ax.axhline(1 / (1 - p), color=SEQ[3], lw=1, ls="--", label=f"1/(1-p) = {1 / (1 - p):.2f}")
    ax.axhline(1 - p, color="#777777", lw=1, ls=":", label=f"document: '~{1 / (1 - p):.0f}x larger at inference'")
    ax.set_xticks(range(len(metrics)), [m[1].replace(" / ", "\n/ ") for m in metrics], fontsize=7)
    ax.set_ylim(0, max(ax.get_ylim()[1], 1 / (1 - p)) * 1.35)
    ax.set_ylabel("train mode / eval mode (ratio, test rows)")
    ax.set_title(f"dropout before BN (p = {p:g}): the BN input")
    ax.legend(fontsize=7, loc="upper left", ncol=2)

    mr = _series(df, arm="dropout_bn", layer=0.0, metric="mean_ratio").mean()
    vr = _series(df, arm="dropout_bn", layer=0.0, metric="var_ratio").mean()
    if "dropout_bn_recal" in test:
        m = ((fail - test["dropout_bn_recal"]) / fail).mean()
        lead = f"Dropout before BN: re-estimating the BN statistics of the same nets lowers test loss by {m:.0%}"
    else:
        lead = "Dropout before BN"
    hurts = [FIX_LABELS[r.cell] for r in table.itertuples() if r.verdict == "refuted"]
    if hurts:
        lead += f" ({', '.join(hurts)}: worse)"
    return finish(fig, f"{lead}; in training its BN input keeps its mean (x{mr:.2f}) but has {vr:.2f}x the variance "
                       "it meets at inference", footer)


# ---------------------------------------------------------------- N6
def _batch_axis(ax, sizes):
    ax.set_xscale("log", base=2)
    ax.set_xticks([int(b) for b in sizes], [str(int(b)) for b in sizes])
    ax.minorticks_off()


def bn_batchsize(t, footer):
    df = t["bn_batchsize"]
    fixed = df[df.lr_scaling == "fixed"] if "lr_scaling" in df else df
    gap = fixed[fixed.metric == "gap_loss"]
    fig, axes = new(ncols=2, width=5.0, height=4.4)
    ax = axes[0, 0]
    for norm in ("none", "batch", "ghost"):
        g = gap[gap.norm == norm]
        if g.empty:
            continue
        bs = sorted(g.batch_size.unique())
        cis = np.array([mean_ci(g[g.batch_size == b].value.to_numpy()) for b in bs])
        ax.errorbar(bs, cis[:, 0], yerr=[cis[:, 0] - cis[:, 1], cis[:, 2] - cis[:, 0]], marker="o", capsize=3,
                    color=NORM_COLORS[norm], label=NORM_LABELS[norm])
    _batch_axis(ax, sorted(gap.batch_size.unique()))
    ax.set_xlabel("batch size (rows; updates fixed, epochs grow with it)")
    ax.set_ylabel("gap: held-out minus train loss (nats)")
    ax.legend(fontsize=7)
    ax.set_title("gap per normalization, fixed lr (mean, 95% interval)")

    ax = axes[0, 1]
    bs_all = sorted(int(b) for b in df.batch_size.unique())
    curves = [(f"BN minus no norm, lr {arm}", "batch", "none", arm, SEQ[0] if arm == "fixed" else SEQ[2], "-" if arm == "fixed" else "--")
              for arm in _arms(df)] + [("ghost BN minus BN, lr fixed", "ghost", "batch", "fixed", NORM_COLORS["ghost"], "-")]
    for k, (label, a, b, arm, color, ls) in enumerate(curves):
        pts = [(bb, paired(n6_rel(df, bb, a, b, arm=arm), "<", LOSS_SESOI)) for bb in bs_all]
        pts = [(bb, s_) for bb, s_ in pts if np.isfinite(s_["value"])]
        if not pts:
            continue
        x = np.array([bb for bb, _ in pts]) * (1 + 0.04 * (k - 1))  # side by side, not on top of each other
        m = np.array([s_["value"] for _, s_ in pts])
        lo, hi = np.array([s_["lo"] for _, s_ in pts]), np.array([s_["hi"] for _, s_ in pts])
        ax.errorbar(x, m, yerr=[m - lo, hi - m], marker="o", capsize=3, color=color, ls=ls, label=label)
    ax.axhline(0, color="k", lw=0.8, ls=":")
    ax.axhspan(-LOSS_SESOI, LOSS_SESOI, color="#dddddd", zorder=0)
    _batch_axis(ax, bs_all)
    ax.set_xlabel("batch size (rows)")
    ax.set_ylabel("gap difference / no-norm held-out loss; < 0: narrower")
    ax.legend(fontsize=7)
    ax.set_title("paired by seed (grey: smallest effect of interest)")

    parts = n6_judged(df)
    verdicts = ", ".join(f"{N6_PARTS[k][0]} {p['verdict'] if p else 'not run'}" for k, p in parts.items())
    n0 = parts["narrows"]
    lead = (f"BN changes the gap at batch {bs_all[0]} by {n0['value']:+.0%} of the held-out loss" if n0 else "BN was not run")
    fades = parts["fades"]
    if fades:
        lead += f"; batch {bs_all[-1]} minus {bs_all[0]}: {fades['value']:+.0%}"
    return finish(fig, f"{lead} ({verdicts})", footer)


# ---------------------------------------------------------------- N7
def bn_stats(t, footer):
    df = t["bn_stats"]
    fig, axes = new(ncols=2, width=5.2, height=4.4)
    ax = axes[0, 0]
    arms = [a for a in ("fresh", "stale", "missing", "recalibrated", "batch_stats") if (df.arm == a).any()]
    ep, total = df[df.metric == "stale_epoch"].value, df[(df.arm == "stale") & (df.metric == "epochs")].value
    stale = f"stale\n(epoch {int(ep.iloc[0])}\nof {int(total.iloc[0])})" if len(ep) and len(total) else "stale\n(early epoch)"
    labels = {"fresh": "fresh", "stale": stale, "missing": "missing\n(init 0/1)",
              "recalibrated": "recalibrated", "batch_stats": "batch stats\n(train mode)"}
    eb = df[df.metric == "eval_batch"].value
    if len(eb):
        labels["batch_stats"] = f"batch stats\n(train mode,\n{int(eb.iloc[0])} rows)"
    for i, a in enumerate(arms):
        _dots(ax, i, _series(df, arm=a, split="test", metric="loss"), SEQ[i % len(SEQ)])
    if (df.arm == "layer_norm").any():
        _dots(ax, len(arms), _series(df, arm="layer_norm", split="test", metric="loss"), NORM_COLORS["layer"])
        labels["layer_norm"] = "LayerNorm\n(no statistics)"
        arms = arms + ["layer_norm"]
    ax.set_xticks(range(len(arms)), [labels[a] for a in arms], fontsize=7)
    ax.set_ylabel("test cross-entropy (nats); dot = seed")
    ax.set_title("one BN net per seed, evaluated with each set of statistics")

    ax = axes[0, 1]
    runs = [("fresh", "batch", "BN"), ("layer_norm", "layer", "LayerNorm"),
            ("batch1", "layer", "LayerNorm\nbatch 1"), ("batch1", "batch", "BN\nbatch 1")]
    chance = _series(df, arm="chance", metric="chance_accuracy")
    ticks = []
    for i, (arm, norm, label) in enumerate(runs):
        acc = _series(df, arm=arm, norm=norm, split="test", metric="accuracy")
        raised = df[(df.arm == arm) & (df.norm == norm) & (df.metric == "raised")].value
        if len(raised) and raised.max() > 0:
            ax.text(i, chance.mean() + 0.02, "training\nraises", ha="center", va="bottom", fontsize=8, color=SEQ[3])
        elif not acc.empty:
            _dots(ax, i, acc, NORM_COLORS[norm])
        ticks.append(label)
    ax.axhline(chance.mean(), color="k", ls=":", lw=0.8, label=f"majority class ({chance.mean():.2f})")
    ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
    ax.set_ylabel("test accuracy")
    ax.set_title("training with batch size 1 (others: the configured batch)")
    ax.legend(fontsize=7, loc="lower left")

    parts = n7_judged(df)
    fresh = _series(df, arm="fresh", split="test", metric="loss")
    cost = [f"{a} {((_series(df, arm=a, split='test', metric='loss') - fresh) / fresh).mean():+.1%}"
            for a in ("stale", "missing", "recalibrated") if (df.arm == a).any()]
    bits = ["Test loss vs fresh running statistics: " + ", ".join(cost)] if cost else []
    b1 = parts["ln_batch1"]
    if b1 is not None and not b1.get("raised"):
        bits.append(f"LayerNorm trains at batch size 1 ({b1['value']:+.2f} accuracy over the majority class)")
    bn1 = parts["bn_batch1"]
    if bn1 is not None:
        bits.append("BN " + ("cannot (torch raises)" if bn1.get("raised") else f"reaches {bn1['value']:+.2f}"))
    return finish(fig, "; ".join(bits[:1]) + ("; " + ", ".join(bits[1:]) if bits[1:] else ""), footer)


FIGURES = {
    "bn_dropout": Figure(["bn_dropout"], bn_dropout,
                         "Problem 2c: test loss of dropout before BN against each fix (dropout after BN, the same nets with "
                         "BN statistics re-estimated with dropout off, LayerNorm, no dropout), paired differences by seed, and "
                         "the mean, second moment and variance of every BN input in train mode over eval mode, with the "
                         "running variance BN divides by at inference (claim N5)."),
    "bn_batchsize": Figure(["bn_batchsize"], bn_batchsize,
                           "Generalization gap (held-out minus training cross-entropy) against batch size for no "
                           "normalization, BN and ghost BN at a fixed learning rate, the number of updates held fixed; and "
                           "the paired gap differences BN minus no norm (at a fixed lr and with the lr scaled with the "
                           "batch) and ghost BN minus BN, relative to the no-norm held-out loss (claims N6, N6a-N6d)."),
    "bn_stats": Figure(["bn_stats"], bn_stats,
                       "One BN net evaluated with fresh, stale (early-epoch), missing (init) and recalibrated running "
                       "statistics and with batch statistics of small test batches, next to LayerNorm; and test accuracy "
                       "of training with batch size 1, LayerNorm vs BN (claim N7)."),
}
