"""Figures of the augmentation study (claim N14). No torch: the Snakefile imports this."""
import numpy as np
import pandas as pd

from regbench.studies.augmentation.claims import FIT_ACC, LABEL_CHANGING, PRIMARY, cells, fit, gains, overlaps, parts
from regbench.figures import SEQ, Figure, finish, new
from regbench.stats import mean_ci

# Mirrors regbench.images.SHAPE_CLASSES (this module must not import torch); the tests check they agree.
SHAPE_CLASSES = ("disk", "ring", "square", "cross", "triangle", "bar")

PANELS = [("digits", "test", "digits: held-out test"),
          ("shapes", "test_iid", "shapes: narrow-nuisance test (as train)"),
          ("shapes", "test", "shapes: wide-nuisance test (shifted; N14e)")]


def _arms(df):
    """Arms in config order with 'none' first, and a colour each (Okabe-Ito; none in black)."""
    arms = [a for a in pd.unique(df.arm) if a not in ("none", "all")]
    colors = {"none": "#000000", **{a: SEQ[i % (len(SEQ) - 1)] for i, a in enumerate(arms)}}
    return ["none"] + arms, colors


def _label(df, arm):
    r = df[df.arm == arm].iloc[0]
    if r.kind == "affine":
        return f"{arm} ({r.get('ranges') or 'mild'} ranges)"
    if r.kind in ("mixup", "cutmix") and not np.isnan(r.alpha):
        return f"{arm} ({r.kind}, alpha {r.alpha:g})"
    return arm if arm == r.kind else f"{arm} ({r.kind})"


def _panels(df):
    return [p for p in PANELS if ((df.dataset == p[0]) & (df.split == p[1])).any()]


def accuracy(t, footer):
    """Test accuracy vs training-set size per arm (top) and the paired gain over no augmentation (bottom)."""
    df = t["augmentation"]
    arms, colors = _arms(df)
    panels = _panels(df)
    fig, axes = new(ncols=len(panels), nrows=2, width=4.3, height=3.5)
    ov = overlaps(df)  # digits seeds re-split one data set: corrected intervals, as the verdicts use
    fitted = fit(df).set_index(["dataset", "arm", "n_train"]).fit
    for j, (ds, split, title) in enumerate(panels):
        acc = df[(df.metric == "acc") & (df.dataset == ds) & (df.split == split)]
        g = gains(df, "acc", split)
        g = g[g.dataset == ds]
        c = cells(g, overlap=ov)
        ax, bx = axes[0, j], axes[1, j]
        for i, arm in enumerate(arms):
            s = acc[acc.arm == arm]
            if s.empty:
                continue
            st = s.groupby("n_train").value.apply(lambda v: pd.Series(mean_ci(v.to_numpy(), overlap=ov.get((ds, v.name), 0.0)),
                                                                      index=["m", "lo", "hi"])).unstack()
            style = dict(color=colors[arm], marker="o", ms=3.5, lw=2.2 if arm == "none" else 1.3,
                         ls="--" if arm in [a for a in arms if df[df.arm == a].kind.iloc[0] in LABEL_CHANGING.get(ds, ())] else "-")
            x = st.index * (1 + 0.02 * (i - len(arms) / 2))
            ax.errorbar(x, st.m, yerr=[st.m - st.lo, st.hi - st.m], capsize=2, label=_label(df, arm), **style)
            # open markers: sizes where the arm did not fit its own training set (underfitting, not regularization)
            miss = np.array([not fitted.get((ds, arm, n), True) for n in st.index], bool)
            ax.plot(x[miss], st.m.to_numpy()[miss], "o", ms=6, mew=1.5, mfc="white", mec=colors[arm], ls="none", zorder=5)
            if arm != "none":
                cc = c[c.arm == arm]
                bx.errorbar(cc.n_train * (1 + 0.02 * (i - len(arms) / 2)), 100 * cc["mean"],
                            yerr=[100 * (cc["mean"] - cc.lo), 100 * (cc.hi - cc["mean"])], capsize=2, **style)
        for a_ in (ax, bx):
            a_.set_xscale("log")
            a_.set_xlabel("training-set size n (images, log scale)")
        bx.axhline(0, color="k", lw=0.8)
        ax.set_ylabel("test accuracy (mean, 95% CI over seeds)")
        bx.set_ylabel("accuracy gain vs none (points, paired)")
        ax.set_title(title)
        bx.set_title(f"{title.split(':')[0]}, {title.split(': ')[1].split(' (')[0]}: gain over none")
        ns = sorted(acc.n_train.unique())
        for a_ in (ax, bx):
            a_.set_xticks(ns)
            a_.set_xticklabels([str(int(n)) for n in ns])
            a_.minorticks_off()
    # one legend beside the panels: inside an axes it hid points (the flip at n=200)
    legend = {}  # every arm once, from whichever panel has it (the wide affine arm is not on digits)
    for ax in axes[0]:
        legend.update({lab: h for h, lab in zip(*ax.get_legend_handles_labels()) if lab not in legend})
    handles, labels = list(legend.values()), list(legend)
    axes[0, -1].legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return finish(fig, _accuracy_title(df), footer)


def _accuracy_title(df):
    p = parts(df)
    a, d = p["A"]["cells"], p["D"]["cells"]
    bits = []
    for ds in ("digits", "shapes"):
        aff = a[(a.dataset == ds) & (a.type == "affine_mild")].sort_values("n_train")
        if len(aff):
            lo_n, hi_n = aff.iloc[0], aff.iloc[-1]
            bits.append(f"{ds}: mild affine {100 * lo_n['mean']:+.1f} pts at n={int(lo_n.n_train)}, "
                        f"{100 * hi_n['mean']:+.1f} at n={int(hi_n.n_train)}")
    e = p["E"]["cells"]
    e = e[e.type == "affine_wide"].sort_values("n_train")
    if len(e):
        bits.append(f"shapes shifted test: wide affine {100 * e['mean'].min():+.1f} to {100 * e['mean'].max():+.1f} pts")
    if len(d):
        bits.append(f"label-changing flip on digits {100 * d['mean'].max():+.1f} to {100 * d['mean'].min():+.1f} pts")
    f = fit(df)
    if len(f):
        miss = f[~f.fit]
        bits.append("every arm fit its training set" if miss.empty else
                    "open markers: did not fit (" + ", ".join(f"{r.dataset}/{r.arm} n={int(r.n_train)}"
                                                              for r in miss.head(4).itertuples())
                    + (f" and {len(miss) - 4} more" if len(miss) > 4 else "") + ")")
    return ("Augmentation vs none, in-distribution test (paired over seeds): " + "; ".join(bits) if bits
            else "Augmentation vs none")


def regularization(t, footer):
    """Mixup / CutMix as regularizers: train-test accuracy gap and test NLL vs n, against none."""
    df = t["augmentation"]
    arms, colors = _arms(df)
    show = ["none"] + [a for a in arms if df[df.arm == a].kind.iloc[0] in ("mixup", "cutmix", "affine")]
    datasets = [d for d in ("digits", "shapes") if (df.dataset == d).any()]
    fig, axes = new(ncols=len(datasets), nrows=2, width=4.6, height=3.5)
    for j, ds in enumerate(datasets):
        split = PRIMARY[ds]
        acc = df[(df.metric == "acc") & (df.dataset == ds)]
        w = acc.pivot_table(index=["arm", "n_train", "seed"], columns="split", values="value")
        gap = (w["train"] - w[split]).rename("gap").reset_index()
        nll = df[(df.metric == "nll") & (df.dataset == ds) & (df.split == split)]
        for i, arm in enumerate(show):
            style = dict(color=colors[arm], marker="o", ms=3.5, lw=2.2 if arm == "none" else 1.3, capsize=2)
            for ax, s, col in ((axes[0, j], gap[gap.arm == arm], "gap"), (axes[1, j], nll[nll.arm == arm], "value")):
                if s.empty:  # an arm that does not run on this dataset (the wide affine on digits)
                    continue
                st = s.groupby("n_train")[col].apply(lambda v: pd.Series(mean_ci(v.to_numpy()), index=["m", "lo", "hi"])).unstack()
                ax.errorbar(st.index * (1 + 0.02 * (i - len(show) / 2)), st.m, yerr=[st.m - st.lo, st.hi - st.m],
                            label=_label(df, arm), **style)
        axes[0, j].set_ylabel("train - test accuracy\n(train images un-augmented)")
        axes[1, j].set_ylabel("test NLL (nats per image)")
        axes[0, j].set_title(f"{ds}: generalization gap" + (" (narrow-nuisance test)" if ds == "shapes" else ""))
        axes[1, j].set_title(f"{ds}: test negative log-likelihood")
        for ax in axes[:, j]:
            ax.set_xscale("log")
            ax.set_xlabel("training-set size n (images, log scale)")
            ns = sorted(acc.n_train.unique())
            ax.set_xticks(ns)
            ax.set_xticklabels([str(int(n)) for n in ns])
            ax.minorticks_off()
    legend = {}  # every arm once, from whichever panel has it (the wide affine arm is not on digits)
    for ax in axes[0]:
        legend.update({lab: h for h, lab in zip(*ax.get_legend_handles_labels()) if lab not in legend})
    axes[0, 0].legend(list(legend.values()), list(legend), fontsize=7)
    # the title reports what the panels show: each mix arm's change of the gap and of the test NLL vs none
    acc = df[(df.metric == "acc") & df.split.isin(["train", "test", "test_iid"])]
    w = acc.pivot_table(index=["dataset", "n_train", "seed", "arm"], columns="split", values="value")
    test = pd.Series([w.loc[k, PRIMARY[k[0]]] for k in w.index], index=w.index)  # each dataset's in-distribution test
    gap = (w["train"] - test).unstack("arm")
    nll = df[(df.metric == "nll") & (df.split == df.dataset.map(PRIMARY))].pivot_table(
        index=["dataset", "n_train", "seed"], columns="arm", values="value")
    mix = [a for a in show if df[df.arm == a].kind.iloc[0] in ("mixup", "cutmix")]
    d_gap = [100 * (gap[a] - gap["none"]).mean() for a in mix]
    d_nll = [(nll[a] - nll["none"]).mean() for a in mix]
    title = (f"Mixup and CutMix against no augmentation, mean over datasets and sizes: train-test accuracy gap "
             f"{min(d_gap):+.1f} to {max(d_gap):+.1f} points, test NLL {min(d_nll):+.2f} to {max(d_nll):+.2f} nats "
             f"({len(mix)} arms)" if mix else "No mixup or CutMix arm in this config")
    return finish(fig, title, footer)


def examples(t, footer):
    """A few training images under every arm (rows: arms; columns: images), per dataset."""
    df = t["augmentation"]
    ex = df[df.split == "example"]
    datasets = [d for d in ("digits", "shapes") if (ex.dataset == d).any()]
    arms = list(pd.unique(ex.arm))
    m = int(ex.example.max() + 1) if len(ex) else 0
    fig, axes = new(ncols=len(datasets) * m, nrows=len(arms), width=0.95, height=1.05)
    for j, ds in enumerate(datasets):
        for r, arm in enumerate(arms):
            for e in range(m):
                ax = axes[r, j * m + e]
                s = ex[(ex.dataset == ds) & (ex.arm == arm) & (ex.example == e)]
                pix = s[s.metric == "pixel"].sort_values("feature").value.to_numpy()
                if len(pix):  # else an arm that does not run on this dataset (the wide affine on digits): blank
                    side = int(round(np.sqrt(len(pix))))
                    ax.imshow(pix.reshape(side, side), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
                    lab = s[s.metric == "label"].sort_values("value", ascending=False)
                    txt = " ".join(f"{int(f)}" if v > 0.999 else f"{int(f)}:{v:.2f}" for f, v in zip(lab.feature, lab.value))
                    ax.set_title(txt, fontsize=6, pad=2)
                ax.set_xticks([])
                ax.set_yticks([])
                for sp in ax.spines.values():
                    sp.set_visible(False)
                if e == 0 and j == 0:  # arm names once, at the left: between the blocks they squeezed the images
                    ax.set_ylabel(arm, fontsize=7, rotation=0, ha="right", va="center")
    names = ", ".join(f"{i} {c}" for i, c in enumerate(SHAPE_CLASSES))
    return finish(fig, "Training images under each augmentation, label or soft-label weights above each image "
                       f"({', '.join(datasets)}; seed 0" + (f"; shapes classes: {names})" if "shapes" in datasets else ")"),
                  footer)


FIGURES = {
    "augmentation_accuracy": Figure(["augmentation"], accuracy,
                                    "Test accuracy of a small CNN against training-set size with and without each "
                                    "augmentation (top) and the paired gain over no augmentation with its 95% interval "
                                    "over seeds (bottom; digits: the corrected resampled t, seeds re-split one data set); "
                                    "digits (held-out test), shapes trained on narrow nuisances and tested on narrow ones "
                                    "(in distribution, claim N14) and on wide ones (shifted, claim N14e); dashed: the "
                                    "label-changing flip on digits, the negative control (claim N14); open markers: "
                                    f"sizes where the arm's accuracy on its own (augmented) training set is below {FIT_ACC:g}, "
                                    "i.e. it did not fit."),
    "augmentation_regularization": Figure(["augmentation"], regularization,
                                          "Mixup and CutMix as regularizers: the gap between clean training accuracy and "
                                          "test accuracy, and the test negative log-likelihood, against training-set size, "
                                          "beside no augmentation and the affine arm (claim N14)."),
    "augmentation_examples": Figure(["augmentation"], examples,
                                    "The first training images of seed 0 under every augmentation arm, as the network "
                                    "saw them, with their (soft) labels (claim N14)."),
}
