"""Figures of the dropout study (claims N1-N4). No torch here: the Snakefile imports this."""
import math

import numpy as np

from regbench.studies.dropout.claims import (CORRECT, HIDDEN_RANGE, INPUT_RANGE, RATIO_MAX, SHARE_TOL, Z_NOMINAL,
                                     N3_PARTS, N4_PARTS, benefit, best_rates, ensemble_ratios, expectation_shares,
                                     n3_judge, n4_parts, per_model)
from regbench.figures import SEQ, Figure, finish, new
from regbench.stats import mean_ci
from regbench.verdicts import worst

VARIANT_LABELS = {"standard": "standard (x(1-p) at inference)", "inverted": "inverted (/(1-p) in training)",
                  "problem2a": "Problem 2a code (p=0.5)", "problem2b": "Problem 2b code (p=0.5)",
                  "engine": "engine (net output)", "control": "wrong control"}
VARIANT_COLORS = dict(zip(VARIANT_LABELS, SEQ))


def _ci_rows(groups):
    """[(key, mean, lo, hi)] for an iterable of (key, values)."""
    return [(k, *mean_ci(v)) for k, v in groups]


def _errorbar(ax, rows, **kw):
    if not rows:
        return
    x, m, lo, hi = map(np.array, zip(*rows))
    ax.errorbar(x, m, yerr=[m - lo, hi - m], capsize=3, marker="o", ms=4, **kw)


def expectation(t, footer):
    df = t["dropout_expectation"]
    fig, axes = new(ncols=2, width=5.2, height=4.4)
    ax = axes[0, 0]
    z = df[(df.metric == "z") & df.variant.isin(CORRECT)].value.to_numpy()
    bins = np.linspace(-5, 5, 61)
    ax.hist(np.clip(z, -5, 5), bins=bins, density=True, color=SEQ[0], alpha=0.6, label=f"correct variants ({z.size} unit-checks)")
    zc = df[(df.metric == "z") & (df.variant == "control")].value.to_numpy()
    ax.plot([], [], " ", label=f"wrong control: median z {np.median(zc):.0f} (off the axis)")
    xs = np.linspace(-5, 5, 200)
    ax.plot(xs, np.exp(-xs**2 / 2) / math.sqrt(2 * math.pi), "k", lw=1, label="N(0, 1)")
    ax.set_xlabel("z = (MC mean of train output - inference output) / its standard error")
    ax.set_ylabel("density (seed 0, all rates)")
    ax.legend(fontsize=7)
    ax.set_title("per-unit z-scores")
    ax = axes[0, 1]
    s = df[df.feature.isna()] if "feature" in df else df
    sh = s[s.metric == "share_exceed"]
    for i, (variant, g) in enumerate(sh.groupby("variant", sort=False)):
        rows = _ci_rows(g.groupby("rate").value)
        _errorbar(ax, [(r + 0.006 * (i - 2), *rest) for r, *rest in rows], color=VARIANT_COLORS.get(variant, "k"),
                  label=VARIANT_LABELS.get(variant, variant), ls="none" if len(rows) == 1 else "-")
    ax.axhline(Z_NOMINAL, color="k", ls=":", lw=0.8, label="0.27% (N(0,1) tails)")
    ax.axhline(SHARE_TOL, color="k", ls="--", lw=0.8, label=f"threshold {SHARE_TOL:.0%}")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_ylim(-1e-4, 1.5)
    ax.set_xlabel("dropout rate p")
    ax.set_ylabel("share of units with |z| > 3 (95% CI, seeds)")
    ax.legend(fontsize=6, loc="center", bbox_to_anchor=(0.5, 0.7), ncol=2, framealpha=0.9)
    ax.set_title("each variant and rate")
    g = expectation_shares(df)
    ok = g[g.variant.isin(CORRECT)]
    share = ok.exceed.sum() / ok.n_units.sum()
    ctrl = g[g.variant == "control"]
    ctrl_share = ctrl.exceed.sum() / max(ctrl.n_units.sum(), 1)
    return finish(fig, f"Standard, inverted, the Problem 2 code and the engine keep E[train output] = inference output: "
                       f"{share:.2%} of units beyond 3 standard errors (0.27% expected); the wrong control is caught in "
                       f"{ctrl_share:.0%}", footer)


def ensemble(t, footer):
    df = t["dropout_mc"]
    fig, axes = new(ncols=2, width=5.0, height=4.0)
    ax = axes[0, 0]
    for i, split in enumerate(("test", "ood")):
        w = ensemble_ratios(df, split)
        _errorbar(ax, _ci_rows(w.groupby("rate").ratio), color=SEQ[i], label="test inputs" if split == "test" else "out-of-distribution inputs")
    ax.axhline(RATIO_MAX, color="k", ls="--", lw=0.8, label=f"as close as a 10-mask average ({RATIO_MAX:.2f})")
    ax.set_xlabel("hidden dropout rate p")
    ax.set_ylabel("gap / spread of class probabilities")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title("|p_det - p_ens| / rms |p_mask - p_ens|")
    ax = axes[0, 1]
    for i, split in enumerate(("test", "ood")):
        g = df[(df.metric == "agree") & (df.split == split)]
        _errorbar(ax, _ci_rows((r, 100 * (1 - v)) for r, v in g.groupby("rate").value),
                  color=SEQ[i], label="test inputs" if split == "test" else "out-of-distribution inputs")
    ax.set_xlabel("hidden dropout rate p")
    ax.set_ylabel("inputs whose predicted class differs (%)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.set_title("deterministic vs MC-average arg-max")
    eq = {split: 1 / np.maximum(ensemble_ratios(df, split).groupby("rate").ratio.mean(), 1e-9) ** 2 for split in ("test", "ood")}
    lo, hi = eq["test"].index[0], eq["test"].index[-1]
    return finish(fig, f"Weight scaling is as close to the sub-network average as averaging ~{eq['test'][lo]:.0f} sampled masks at "
                       f"p = {lo:g} and ~{eq['test'][hi]:.0f} at p = {hi:g} on test inputs (~{eq['ood'][lo]:.0f} and "
                       f"~{eq['ood'][hi]:.0f} off the data)", footer)


def rates(t, footer):
    df = t["dropout_rates"]
    sizes = sorted(df.n_train.unique())
    fig, axes = new(ncols=2, nrows=2, width=5.0, height=3.7)
    for row, when in enumerate(("best_val", "final")):
        for col, (layer, rng) in enumerate((("hidden", HIDDEN_RANGE), ("input", INPUT_RANGE))):
            ax = axes[row, col]
            s = df[(df.when == when) & (df.metric == "test_loss") & (df.layer == layer)]
            for i, n in enumerate(sizes):
                w = s[s.n_train == n].pivot_table(index="seed", columns="rate", values="value")
                diff = w.sub(w[0.0], axis=0)
                _errorbar(ax, _ci_rows((r, diff[r]) for r in diff.columns), color=SEQ[i], label=f"n_train = {n}")
            ax.axvspan(*rng, color="#DDDDDD", zorder=0, label="document's range")
            ax.axhline(0, color="k", lw=0.6)
            ax.set_xlabel(f"{layer} dropout rate")
            ax.set_ylabel("test loss minus no-dropout loss (nats)")
            ax.set_title(f"{layer} dropout, {'at the best-validation epoch' if when == 'best_val' else 'after the fixed budget'}")
            ax.legend(fontsize=6.5)
    b = best_rates(df, "best_val")
    say = lambda layer: ", ".join(f"{r.best:g}" for r in b[b.layer == layer].sort_values("n_train").itertuples())  # noqa: E731
    gain = [benefit(df, "best_val", n) for n in sizes]
    rows = {N3_PARTS[w][0]: n3_judge(df, w)[0]["verdict"] for w in N3_PARTS}
    return finish(fig, f"N3 {worst(*rows.values())} ({', '.join(f'{k} {v}' for k, v in rows.items())}). With early stopping, n_train = "
                       f"{', '.join(map(str, sizes))}: hidden rate chosen on validation {say('hidden')}, input {say('input')} "
                       f"(document: 0.3-0.5, 0.1-0.2); the chosen hidden rate gains {', '.join(f'{g:.3f}' for g in gain)} "
                       "nats of test loss over none", footer)


def uncertainty(t, footer):
    df = t["dropout_mc"]
    rates_ = sorted(df.rate.unique())
    mid = min(rates_, key=lambda r: abs(r - 0.5))
    fig, axes = new(ncols=3, width=4.3, height=3.9)
    ax = axes[0, 0]
    rows = df[(df.metric == "row_mi") & (df.rate == mid)]
    hi = np.quantile(rows.value, 0.99)
    bins = np.linspace(0, hi, 50)
    for i, (split, label) in enumerate((("test", "test inputs"), ("ood", "out-of-distribution"))):
        ax.hist(np.clip(rows[rows.split == split].value, 0, hi), bins=bins, density=True, alpha=0.6, color=SEQ[i], label=label)
    ax.set_xlabel("mutual information across masks (nats)")
    ax.set_ylabel("density (all seeds)")
    ax.set_title(f"MC-dropout spread, hidden rate {mid:g}")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    names = {"auroc_mi": "MC mutual information", "auroc_var": "MC variance of probabilities",
             "auroc_entropy_mc": "MC predictive entropy", "auroc_entropy_det": "deterministic entropy"}
    for i, (metric, label) in enumerate(names.items()):
        w = per_model(df, "test_vs_ood", metric)
        _errorbar(ax, [(r + 0.006 * (i - 1.5), *mean_ci(w[r])[0:3]) for r in w.columns], color=SEQ[i], label=label)
    ax.axhline(0.5, color="k", ls=":", lw=0.8)
    ax.set_ylim(0, 1)
    ax.set_xlabel("hidden dropout rate p")
    ax.set_ylabel("AUROC, far vs near inputs\n(0.5 = chance)")
    ax.legend(fontsize=6.5)
    ax.set_title("which score flags inputs far from the data")
    ax = axes[0, 2]
    for i, (metric, labels, label) in enumerate((("nll", "noisy", "NLL"), ("ece", "noisy", "ECE (15 bins)"),
                                                 ("ece", "clean", "ECE vs clean labels"))):
        s = df[(df.split == "test") & (df.labels == labels)]
        d = []
        for r, g in s.groupby("rate"):
            w = g.pivot_table(index="seed", columns="metric", values="value")
            d.append((r + 0.008 * (i - 1), *mean_ci(w[f"{metric}_det"] - w[f"{metric}_mc"])))
        _errorbar(ax, d, color=SEQ[4 + i] if i < 3 else "k", label=label)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("hidden dropout rate p")
    ax.set_ylabel("deterministic minus MC average (> 0: MC better)")
    ax.legend(fontsize=7)
    ax.set_title("test NLL and calibration")
    # the title states what decides N4: each part's pooled statistic and verdict, and the weakest of them
    judged = {k: summary for k, (summary, _) in n4_parts(df).items()}
    parts = [f"{N4_PARTS[k][0]} {s['verdict']}" for k, s in judged.items()]
    return finish(fig, f"MC dropout, N4 {worst(*(s['verdict'] for s in judged.values()))} (the weakest of {', '.join(parts)}): "
                       f"AUROC of its spread off vs on the data {judged['spread']['value']:.2f}; deterministic minus MC "
                       f"NLL {judged['nll']['value']:+.4f}, ECE {judged['ece']['value']:+.4f} (pooled over rates)", footer)


FIGURES = {
    "dropout_expectation": Figure(["dropout_expectation"], expectation,
                                  "Per-unit z-scores of the Monte Carlo mean of train-mode dropout outputs against the "
                                  "inference output, for standard and inverted dropout, the document's Problem 2 code, the "
                                  "engine's dropout and a deliberately wrong control; share of units beyond 3 standard errors "
                                  "per rate (claim N1)."),
    "dropout_ensemble": Figure(["dropout_mc"], ensemble,
                               "Distance of the weight-scaled deterministic prediction from the mean over sampled dropout masks, "
                               "in units of a single mask's spread around that mean, by hidden dropout rate; test NLL of both "
                               "predictors (claim N2)."),
    "dropout_rates": Figure(["dropout_rates"], rates,
                            "Test loss minus the no-dropout loss (paired over seeds) against the hidden and the input dropout "
                            "rate, per training-set size, read at each model's best-validation epoch and after the fixed "
                            "step budget; grey: the document's recommended range (claim N3)."),
    "dropout_uncertainty": Figure(["dropout_mc"], uncertainty,
                                  "MC dropout: distribution of the mutual information across masks on test and "
                                  "out-of-distribution inputs; AUROC of four uncertainty scores at telling them apart; NLL and "
                                  "ECE of the MC average against one deterministic pass (claim N4)."),
}
