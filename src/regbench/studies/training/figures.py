"""Figures of the training-time regularization study (claims N8, N12, N13). No torch here."""
import numpy as np

from regbench.studies.training.claims import (ADAM_L2, ADAMW, BASELINE, CALIBRATION_SPLIT, DOC_PATIENCE, SGD, SMOOTHING,
                                      best_decay_per_lr, best_of_grid, early_stopping_table, grid_mean, smoothing_table)
from regbench.figures import SEQ, Figure, finish, new
from regbench.stats import mean_ci

OPT_LABELS = {ADAM_L2: "Adam + L2", ADAMW: "AdamW (decoupled)", SGD: "SGD + momentum, L2"}
OPT_COLORS = {ADAM_L2: SEQ[3], ADAMW: SEQ[0], SGD: SEQ[1]}
SPLIT_COLORS = {"train": SEQ[2], "val": SEQ[1], "test": SEQ[0]}


def _ci_line(ax, x, cols, color, label, marker="o"):
    """Mean with 95% interval over seeds for each column of a seeds x settings frame."""
    stats = np.array([mean_ci(cols[c]) for c in cols.columns])
    ax.errorbar(x, stats[:, 0], yerr=[stats[:, 0] - stats[:, 1], stats[:, 2] - stats[:, 0]], marker=marker, ms=4,
                capsize=3, color=color, label=label)
    return stats


# ---------------------------------------------------------------- N8
def early_stopping(t, footer):
    df = t["early_stopping"]
    w = early_stopping_table(df)
    loss, stops, chosen = w["test_loss"], w["stop_epoch"], w["chosen_epoch"]
    pats = sorted(loss.columns.get_level_values(0).unique())
    labels = ["none" if np.isinf(p) else f"{p:g}" for p in pats]
    x = np.arange(len(pats))
    fig, axes = new(ncols=3, width=4.3, height=3.9)

    ax = axes[0, 0]
    c = df[(df.metric == "curve_loss") & (df.epoch >= 1)]
    for split in ("train", "val", "test"):
        g = c[c.split == split].groupby("epoch").value
        ax.plot(g.mean().index, g.mean(), color=SPLIT_COLORS[split], label=f"{split} loss")
        ax.fill_between(g.mean().index, g.quantile(0.1), g.quantile(0.9), color=SPLIT_COLORS[split], alpha=0.2, lw=0)
    best = chosen[(np.inf, "best")].mean()
    ax.axvline(best, color="k", ls=":", lw=0.9, label=f"best validation epoch (mean {best:.1f})")
    for k, p in enumerate(p for p in DOC_PATIENCE if p in pats):
        ax.axvline(stops[(p, "best")].mean(), color="#777777", ls="--", lw=0.7)
        ax.text(stops[(p, "best")].mean(), 0.04 + 0.07 * k, f" stop p={p:g}", fontsize=6.5, color="#555555",
                transform=ax.get_xaxis_transform())
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (band: 10-90% of seeds)")
    ax.set_title("one run per seed (mean over seeds)")
    ax.set_ylim(0, 1.35 * c.groupby(["split", "epoch"]).value.mean().max())
    ax.legend(fontsize=6.5, loc="upper left")

    ax = axes[0, 1]
    doc = [i for i, p in enumerate(pats) if p in DOC_PATIENCE]
    if doc:
        ax.axvspan(min(doc) - 0.4, max(doc) + 0.4, color="#eeeeee", zorder=0, label="document's 5-20")
    b = _ci_line(ax, x, loss.xs("best", level=1, axis=1)[pats], SEQ[0], "restore best-validation weights")
    _ci_line(ax, x, loss.xs("last", level=1, axis=1)[pats], SEQ[3], "keep weights at the stop", marker="s")
    oracle = df[df.metric == "oracle_test_loss"].value.mean()
    ax.axhline(oracle, color="k", ls=":", lw=0.8, label=f"best test loss on the curve ({oracle:.3f})")
    ax.set_xticks(x, labels)
    ax.set_xlabel("patience (epochs without a new best validation loss)")
    ax.set_ylabel("test cross-entropy (95% CI over seeds)")
    ax.set_title("test loss of the returned model")
    ax.legend(fontsize=6.5)

    ax = axes[0, 2]
    if doc:
        ax.axvspan(min(doc) - 0.4, max(doc) + 0.4, color="#eeeeee", zorder=0)
    _ci_line(ax, x, stops.xs("best", level=1, axis=1)[pats], SEQ[2], "epochs trained (stop epoch)")
    _ci_line(ax, x, chosen.xs("best", level=1, axis=1)[pats], SEQ[0], "epoch of the restored weights", marker="s")
    ax.set_xticks(x, labels)
    ax.set_xlabel("patience (epochs)")
    ax.set_ylabel("epoch (95% CI over seeds)")
    ax.set_title("cost: epochs trained")
    ax.legend(fontsize=6.5)

    end = loss[(np.inf, "last")].mean()
    in_doc = [p for p in DOC_PATIENCE if p in pats]
    if in_doc:
        rec = np.mean([loss[(p, "best")].mean() for p in in_doc])
        ep = np.mean([stops[(p, "best")].mean() for p in in_doc])
        p_hi = max(in_doc)
        span = f"{min(in_doc):g}-{p_hi:g}" if len(in_doc) > 1 else f"{p_hi:g}"
        title = (f"Early stopping with patience {span} and restore: test loss {rec:.3f} after ~{ep:.0f} epochs vs "
                 f"{end:.3f} training all {int(stops.max().max())}; without restore, patience {p_hi:g} returns "
                 f"{loss[(p_hi, 'last')].mean():.3f}")
    else:
        title = f"Test loss by patience: training to the end gives {end:.3f}, best restored model {b[:, 0].min():.3f}"
    return finish(fig, title, footer)


# ---------------------------------------------------------------- N12
def _column_position(columns, decay: float) -> float:
    """Where a decay lies on the grid's column axis: its column, or (for a best decay
    refined between grid points) interpolated in log decay between its neighbours."""
    cols = np.asarray(columns, dtype=float)
    if decay in cols:
        return float(np.flatnonzero(cols == decay)[0])
    pos = np.flatnonzero(cols > 0)
    return float(np.interp(np.log(decay), np.log(cols[pos]), pos)) if decay > 0 else 0.0


def adamw_grid(t, footer):
    df = t["adamw_vs_l2"]
    opts = [o for o in (ADAM_L2, ADAMW, SGD) if o in set(df.optimizer)]
    fig, axes = new(ncols=len(opts) + 1, width=3.9, height=3.9)
    tables = {o: grid_mean(df, "test_loss", o) for o in opts}
    finite = np.concatenate([g.to_numpy().ravel() for g in tables.values()])
    finite = finite[np.isfinite(finite)]
    vmin, vmax = finite.min(), np.quantile(finite, 0.9)
    best = best_of_grid(df)
    for ax, o in zip(axes[0], opts):
        g = tables[o]
        im = ax.imshow(np.clip(g.to_numpy(), vmin, vmax), cmap="viridis_r", vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                v = g.iat[i, j]
                ax.text(j, i, "div." if not np.isfinite(v) else f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="k" if np.isfinite(v) and v < vmin + 0.6 * (vmax - vmin) else "w")
        bd = best_decay_per_lr(df, o)
        ax.plot([_column_position(g.columns, d) for d in bd], range(len(bd)), "s", mfc="none", mec="#D55E00", ms=15, mew=1.5)
        ax.set_xticks(range(g.shape[1]), [f"{d:g}" for d in g.columns], rotation=45)
        ax.set_yticks(range(g.shape[0]), [f"{lr:g}" for lr in g.index])
        ax.set_xlabel("decay lambda" + (" (shrink lr*lambda per step)" if o == ADAMW else " (lambda*w added to the gradient)"))
        ax.set_ylabel("learning rate")
        ax.set_title(f"{OPT_LABELS[o]}: mean test loss\n(boxes: best decay per lr on validation)")
    fig.colorbar(im, ax=axes[0, len(opts) - 1], label="test cross-entropy (mean over seeds)")

    ax = axes[0, -1]
    per = best.pivot_table(index="seed", columns="optimizer", values="test_loss")[opts]
    for s in per.index:
        ax.plot(range(len(opts)), per.loc[s], color="#cccccc", lw=0.7, zorder=1)
    for i, o in enumerate(opts):
        m, lo, hi = mean_ci(per[o])
        ax.scatter(np.full(len(per), i), per[o], s=12, color=OPT_COLORS[o], zorder=2)
        ax.errorbar([i + 0.18], [m], yerr=[[m - lo], [hi - m]], fmt="o", color="k", capsize=3, zorder=3)
    ax.set_xticks(range(len(opts)), [OPT_LABELS[o].replace(" (decoupled)", "").replace(", L2", "") for o in opts])
    ax.set_ylabel("test loss of the validation-chosen (lr, decay)")
    ax.set_title("best of grid per seed (grey: same seed)")
    if {ADAMW, ADAM_L2} <= set(opts):
        d, lo, hi = mean_ci(per[ADAMW] - per[ADAM_L2])
        word = "lower than" if hi < 0 else ("higher than" if lo > 0 else "not different from")
        title = (f"Best of grid, AdamW's test loss is {word} Adam+L2's: {per[ADAMW].mean():.3f} vs {per[ADAM_L2].mean():.3f} "
                 f"(paired difference {d:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}])")
    else:
        title = "Best-of-grid test loss per optimizer: " + ", ".join(f"{OPT_LABELS[o]} {per[o].mean():.3f}" for o in opts)
    return finish(fig, title, footer)


# ---------------------------------------------------------------- N13
def label_smoothing(t, footer):
    df = t["label_smoothing"]
    w = smoothing_table(df)
    smooth = sorted(w["ece"].columns)
    fig, axes = new(ncols=3, width=4.3, height=4.0)

    ax = axes[0, 0]
    bins = df[(df.split == CALIBRATION_SPLIT) & df["bin"].notna()]
    ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="calibrated")
    for k, s in enumerate(smooth):
        b = bins[bins.smoothing == s].pivot_table(index=["seed", "bin"], columns="metric", values="value").reset_index()
        b = b[b.bin_count > 0]
        n = b.groupby("bin").bin_count.sum()
        conf = (b.bin_confidence * b.bin_count).groupby(b.bin).sum() / n
        acc = (b.bin_accuracy * b.bin_count).groupby(b.bin).sum() / n
        keep = n >= 10  # bins with too few predictions are noise
        ax.plot(conf[keep], acc[keep], marker="o", ms=3, color=SEQ[k % len(SEQ)], label=f"smoothing {s:g}")
    ax.set_xlabel("confidence (mean in bin, bins pooled over seeds)")
    ax.set_ylabel("accuracy in bin")
    ax.set_xlim(0.2, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_title(f"reliability, held-out data with label noise ({CALIBRATION_SPLIT})")
    ax.legend(fontsize=6.5)

    ax = axes[0, 1]
    x = np.arange(len(smooth))
    _ci_line(ax, x, w["ece"][smooth], SEQ[0], "ECE (15 equal-width bins)")
    _ci_line(ax, x, w["confident_wrong_rate"][smooth], SEQ[3], "share confident (>= 0.9) and wrong", marker="s")
    _ci_line(ax, x, w["overconfidence"][smooth], SEQ[4], "mean confidence - accuracy", marker="^")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(x, [f"{s:g}" for s in smooth])
    ax.set_xlabel("label smoothing epsilon")
    ax.set_ylabel("probability / share of predictions (95% CI)")
    ax.set_title("over-confidence")
    ax.legend(fontsize=6.5)

    ax = axes[0, 2]
    test = smoothing_table(df, "test")
    _ci_line(ax, x, w["accuracy"][smooth], SEQ[1], f"accuracy, {CALIBRATION_SPLIT} (noisy labels)")
    _ci_line(ax, x, test["accuracy"][smooth], SEQ[2], "accuracy, test (clean labels)", marker="s")
    ax.set_xticks(x, [f"{s:g}" for s in smooth])
    ax.set_xlabel("label smoothing epsilon")
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title("what it costs")
    ax.legend(fontsize=6.5)

    if SMOOTHING in smooth and BASELINE in smooth:
        e0, e1 = w["ece"][BASELINE].mean(), w["ece"][SMOOTHING].mean()
        c0, c1 = w["confident_wrong_rate"][BASELINE].mean(), w["confident_wrong_rate"][SMOOTHING].mean()
        da = (w["accuracy"][SMOOTHING] - w["accuracy"][BASELINE]).mean()
        title = (f"Label smoothing {SMOOTHING:g} cuts ECE from {e0:.3f} to {e1:.3f} and confident-but-wrong predictions from "
                 f"{c0:.1%} to {c1:.1%}; accuracy changes by {100 * da:+.1f} points")
    else:
        title = "Calibration by label smoothing: " + ", ".join(f"{s:g}: ECE {w['ece'][s].mean():.3f}" for s in smooth)
    return finish(fig, title, footer)


FIGURES = {
    "early_stopping": Figure(["early_stopping"], early_stopping,
                             "Early stopping read off one long Adam run per seed on a small noisy training set: mean train, "
                             "validation and test loss by epoch; test loss of the returned model by patience with and without "
                             "restoring the best-validation weights; epochs trained (claim N8)."),
    "adamw_grid": Figure(["adamw_vs_l2"], adamw_grid,
                         "Mean test loss over the learning-rate x decay grid for Adam with L2 in the gradient, AdamW and SGD "
                         "with momentum (boxes: best decay per learning rate on validation), and the test loss of each seed's "
                         "validation-chosen configuration per optimizer (claim N12)."),
    "label_smoothing": Figure(["label_smoothing"], label_smoothing,
                              "Reliability diagram, ECE (15 equal-width bins), share of confident-but-wrong predictions, mean "
                              "confidence minus accuracy, and accuracy for each label-smoothing value (claim N13)."),
}
