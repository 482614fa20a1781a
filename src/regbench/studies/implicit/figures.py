"""Figures of the implicit / optimizer-level regularization study (N9, N10, N11, N15, N16). No torch here."""
import textwrap

import numpy as np

from regbench.studies.implicit.claims import (ADAM_SLOPE_TOL, NOT_JUDGED, RATIO_FACTOR, ROUNDING_TOL, bias_variance_table,
                                              gap_slopes, gd_boundary, gd_rows, noise_outcomes)
from regbench.figures import COLORS, SEQ, Figure, finish, new
from regbench.stats import mean_ci
from regbench.tables import select

OPT_COLORS = {"adam_l2": COLORS["ridge"], "adamw": COLORS["lasso"]}
OPT_LABELS = {"adam_l2": "Adam + L2 (weight_decay in the gradient)", "adamw": "AdamW (decoupled decay)"}


# ---------------------------------------------------------------- N9
def gd_vs_ridge(t, footer):
    df = t["gd_vs_ridge"]
    etas = sorted(df.eta_fraction.dropna().unique())
    fig, axes = new(ncols=3, width=4.4, height=4.0)
    lam = select(df, "lambda_closest")
    ax = axes[0, 0]
    for k, eta in enumerate(etas):
        g = lam[lam.eta_fraction == eta]
        ax.scatter(g.inv_eta_T, g.value, s=5, alpha=0.5, color=SEQ[k % len(SEQ)], label=f"eta = {eta:g} / s_max (max over seeds)")
    x = np.geomspace(lam.inv_eta_T.min(), lam.inv_eta_T.max(), 50)
    ax.plot(x, x, "k--", lw=0.9, label="lambda = 1/(eta T)")
    ax.fill_between(x, x / RATIO_FACTOR, x * RATIO_FACTOR, color="#999999", alpha=0.2, label=f"within a factor {RATIO_FACTOR:g}")
    s_min, s_max = select(df, "s_min").value.median(), select(df, "s_max").value.median()
    y_text = lam.value[lam.value > 0].min()
    for v_, lab in ((s_min, "s_min (median)"), (s_max, "s_max (median)")):
        ax.axvline(v_, color="k", ls=":", lw=0.8)
        ax.text(v_, y_text, f" {lab}", fontsize=7, rotation=90, va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("1/(eta T)  (eigenvalue units of X'X/n)")
    ax.set_ylabel("ridge lambda closest to the GD iterate w_T")
    ax.set_title("closest ridge lambda (dots: seeds x stopping times)")
    ax.legend(fontsize=6.5, loc="upper left")
    ax = axes[0, 1]
    r = gd_rows(df, "ratio")
    for k, eta in enumerate(etas):
        g = r[r.eta_fraction == eta]
        ax.scatter(g.u, g.value, s=5, alpha=0.35, color=SEQ[k % len(SEQ)])
        med = g.groupby(np.round(np.log10(g.u), 1)).value.median()
        ax.plot(10 ** med.index, med, color=SEQ[k % len(SEQ)], lw=1.5, label=f"eta = {eta:g} / s_max, median")
    ax.axhspan(1 / RATIO_FACTOR, RATIO_FACTOR, color="#999999", alpha=0.2)
    ax.axhline(1, color="k", ls="--", lw=0.9)
    b = gd_boundary(df)
    u_star = b.groupby("seed").u_star.max().replace(np.inf, np.nan).mean()
    ax.axvline(1, color="k", ls=":", lw=0.8)
    ax.axvline(u_star, color=COLORS["ridge"], ls="-.", lw=1, label=f"u* = {u_star:.2f} (factor {RATIO_FACTOR:g} holds above)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(max(r.value.min(), 1e-4), 3)
    ax.set_xlabel("u = 1/(eta T s_min)   (u < 1: GD has converged along the smallest direction)")
    ax.set_ylabel("lambda_closest x eta x T   (claim: ~1)")
    ax.set_title("the constant of lambda ~ c / (eta T)")
    ax.legend(fontsize=6.5, loc="lower right")
    ax = axes[0, 2]
    eta0 = etas[0]
    keep = lambda m: select(df, m, seed=df.seed.min(), eta_fraction=eta0).sort_values("T")  # noqa: E731
    gd, rc, rb = keep("gd_risk"), keep("ridge_risk_claimed"), keep("ridge_risk_closest")
    ax.plot(gd.inv_eta_T, gd.value, color=COLORS["lasso"], lw=1.6, label="GD stopped at T")
    ax.plot(rc.inv_eta_T, rc.value, color=COLORS["ridge"], lw=1.2, ls="--", label="ridge at lambda = 1/(eta T)")
    ax.plot(rb.inv_eta_T, rb.value, color=COLORS["enet"], lw=1.0, ls=":", label="ridge at the closest lambda")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("1/(eta T)  (T grows to the right)")
    ax.set_ylabel("excess risk (w - beta)' Sigma (w - beta)")
    ax.set_title(f"seed 0, eta = {eta0:g} / s_max")
    ax.legend(fontsize=6.5)
    sl = select(df, "slope", regime="early+within").groupby("seed").value.mean()
    m, lo, hi = mean_ci(sl)
    ew = b[b.min_ratio.notna()]
    best = select(df, "best_risk_ratio").value.mean()
    return finish(fig, f"Early-stopped GD matches ridge with lambda = c/(eta T): log-log slope {m:.2f} [{lo:.2f}, {hi:.2f}], "
                       f"c from {ew.min_ratio.min():.2f} to {ew.max_ratio.max():.2f} before convergence, within a factor "
                       f"{RATIO_FACTOR:g} while 1/(eta T) >= {u_star:.1f} s_min; then the matched lambda collapses. Best risks "
                       f"GD/ridge {best:.2f}", footer)


# ---------------------------------------------------------------- N10
SGD_PAIRS = [("l2_vs_weight_decay_rel", "L2 in loss vs\nweight_decay"), ("l2_vs_decoupled_rel", "L2 vs decay\nbefore step"),
             ("weight_decay_vs_decoupled_rel", "weight_decay vs\ndecay before step"),
             ("l2_vs_decoupled_after_rel", "L2 vs decay\nafter step"),
             ("l2_no_half_vs_weight_decay_rel", "lambda||w||^2 vs\nweight_decay=lambda")]
FLOOR = 1e-18


def sgd_l2_decay(t, footer):
    df = t["sgd_l2_decay"]
    fig, axes = new(width=7.5, height=4.2)
    ax = axes[0, 0]
    lrs = sorted(df.lr.unique())
    for i, (metric, label) in enumerate(SGD_PAIRS):
        g = select(df, metric)
        for k, lr in enumerate(lrs):
            v = g[g.lr == lr].value.to_numpy()
            x = np.full(v.size, i) + (k - (len(lrs) - 1) / 2) * 0.12
            ax.scatter(x, np.maximum(v, FLOOR), s=18, color=SEQ[k % len(SEQ)], label=f"lr = {lr:g}" if i == 0 else None,
                       zorder=3)
        n0 = int((g.value == 0).sum())
        if n0:
            ax.text(i, FLOOR * 3, f"{n0} exactly 0", ha="center", fontsize=7)
    ax.axhline(ROUNDING_TOL, color="k", ls="--", lw=0.8, label=f"rounding threshold {ROUNDING_TOL:g}")
    ax.axhspan(FLOOR / 2, np.finfo(float).eps * 10, color="#dddddd", alpha=0.5, label="float64 rounding (10 eps)")
    ax.set_yscale("log")
    ax.set_ylim(FLOOR / 2, 1)
    ax.set_xticks(range(len(SGD_PAIRS)), [lab for _, lab in SGD_PAIRS], fontsize=7.5)
    ax.set_ylabel("max |w_a - w_b| / max |w|\n(over steps and weights)")
    ax.set_title("SGD trajectories on the same minibatches (dots: seeds)")
    ax.legend(fontsize=7, loc="center left")
    same = df[df.metric.isin([m for m, _ in SGD_PAIRS[:3]])].value.max()
    half = select(df, "l2_no_half_vs_weight_decay_rel").value
    return finish(fig, f"For SGD, (lambda/2)||w||^2 in the loss and weight_decay = lambda give the same trajectory to "
                       f"{same:.0e} of max|w| (rounding); the lambda vs lambda/2 slip moves it by {half.min():.0%}-{half.max():.0%}",
                  footer)


# ---------------------------------------------------------------- N11
def adam_shrinkage(t, footer):
    df = t["adam_l2_decay"]
    fig, axes = new(ncols=2, width=5.0, height=4.2)
    ax = axes[0, 0]
    sv, sh = select(df, "sqrt_v"), select(df, "shrinkage")
    keys = ["seed", "coef", "optimizer", "feature"]
    pts = sv.merge(sh[keys + ["value"]], on=keys, suffixes=("_v", "_s"))
    for o in ("adam_l2", "adamw"):
        g = pts[pts.optimizer == o]
        ax.scatter(g.value_v, np.abs(g.value_s), s=8, alpha=0.6, color=OPT_COLORS[o], label=OPT_LABELS[o])
    pred = select(df, "predicted")
    lrlam = pred[pred.optimizer == "adamw"].value.median()
    x = np.geomspace(pts.value_v.min(), pts.value_v.max(), 50)
    ax.plot(x, lrlam / x, "k--", lw=0.8, label="lr lambda / sqrt(v)  (slope -1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sqrt(v_hat)  (Adam's second-moment estimate, per weight)")
    ax.set_ylabel("|decay part of the last step / w|  (per-step pull)")
    ax.set_title("per-weight decay pull (dots: weights x seeds x truths)")
    ax.legend(fontsize=6.5)
    ax = axes[0, 1]
    w = select(df, "w")
    pw = sv.merge(w[keys + ["value"]], on=keys, suffixes=("_v", "_w"))
    markers = {"equal_contribution": "o", "random": "^"}
    for o in ("adam_l2", "adamw"):
        for c, mk in markers.items():
            g = pw[(pw.optimizer == o) & (pw.coef == c)]
            if len(g):
                ax.scatter(np.abs(g.value_w), g.value_v, s=9, marker=mk, alpha=0.55, color=OPT_COLORS[o],
                           label=f"{o}, truth {c.replace('_', ' ')}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("|w|  (weight size)")
    ax.set_ylabel("sqrt(v_hat)")
    ax.set_title("v follows the gradient, not the weight")
    ax.legend(fontsize=6.5)
    slope = select(df, "slope")
    m, lo, hi = mean_ci(slope[slope.optimizer == "adam_l2"].groupby("seed").value.mean())
    mw = slope[slope.optimizer == "adamw"].value.abs().max()
    return finish(fig, f"Adam+L2's decay pull on a weight falls as 1/sqrt(v): slope {m:.3f} [{lo:.3f}, {hi:.3f}] (claim -1, "
                       f"tolerance {ADAM_SLOPE_TOL}); AdamW's is lr x lambda for every weight (|slope| <= {mw:.0e})", footer)


# ---------------------------------------------------------------- N15
def noise_vs_ridge(t, footer):
    df = t["noise_vs_ridge"]
    ns = sorted(df.n_train.unique())
    fig, axes = new(ncols=2, width=5.0, height=4.2)
    ax = axes[0, 0]
    rg = select(df, "rel_gap", method="noise")
    g0 = rg[rg.n_train == ns[0]]
    sds = sorted(g0.noise_sd.unique())
    for k, sd in enumerate(sds):
        s = g0[g0.noise_sd == sd].groupby("copies").value
        ax.errorbar(s.mean().index, s.mean(), yerr=[s.mean() - s.min(), s.max() - s.mean()], marker="o", ms=3, capsize=2,
                    color=SEQ[k % len(SEQ)], label=f"sd = {sd:g} (lambda = {sd ** 2:.3g})")
    K = np.array(sorted(g0.copies.unique()), dtype=float)
    ref = g0[g0.copies == K.min()].value.mean()
    ax.plot(K, ref * np.sqrt(K.min() / K), "k--", lw=0.8, label="~ 1/sqrt(copies)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("noisy copies of the training set")
    ax.set_ylabel("||w_noise - w_ridge|| / ||w_ridge||  (bars: seed range)")
    ax.set_title(f"noise injection -> ridge at lambda = sd^2 (n = {ns[0]})")
    ax.legend(fontsize=6.5)
    ax = axes[0, 1]
    er = select(df, "excess_risk")
    Kmax = int(K.max())
    for k, n in enumerate(ns):
        c = SEQ[k % len(SEQ)]
        g = er[er.n_train == n]
        ols = g[g.method == "ols"].value.mean()
        ridge = g[g.method == "ridge"].groupby("noise_sd").value.mean()
        noise = g[(g.method == "noise") & (g.copies == Kmax)].groupby("noise_sd").value.mean()
        one = g[(g.method == "noise") & (g.copies == K.min())].groupby("noise_sd").value.mean()
        # ridge as a wide pale band underneath: the noisy fit lies on it, and a thin line drawn on top of
        # another of the same path would hide it
        ax.plot(ridge.index, ridge / ols, lw=7, alpha=0.3, color=c, solid_capstyle="round", zorder=1,
                label=f"n={n}: ridge, lambda = sd^2 (band)")
        ax.plot(noise.index, noise / ols, marker="o", ms=3, lw=1, color=c, zorder=3, label=f"n={n}: {Kmax} noisy copies")
        ax.plot(one.index, one / ols, ls=":", color=c, zorder=2, label=f"n={n}: {int(K.min())} noisy copy")
    ax.axhline(1, color=COLORS["ols"], lw=1, label="OLS")
    ax.set_xlabel("input-noise sd on standardized features")
    ax.set_ylabel("excess risk / OLS excess risk (mean over seeds)")
    ax.set_title("regularization effect vs strength")
    ax.legend(fontsize=6)
    cells = noise_outcomes(df)
    gs = mean_ci(gap_slopes(df))
    txt = ", ".join(f"{r.vs_ols:+.0%} at n={int(r.n_train)}" for r in cells.itertuples())
    return finish(fig, f"Input-noise injection regularizes like ridge at lambda = sd^2: tuned, it changes excess risk vs OLS by "
                       f"{txt}; it converges to ridge as copies^{gs[0]:.2f}", footer)


# ---------------------------------------------------------------- N16
BV_ORDER = ["ols", "ridge", "lasso", "enet", "early_stopping_early", "early_stopping", "early_stopping_late",
            "noise_injection", "dropout"]
BV_LABELS = {"ols": "OLS", "ridge": "L2", "lasso": "L1", "enet": "elastic\nnet", "early_stopping_early": "GD\nT*/f",
             "early_stopping": "GD\nT* (tuned)", "early_stopping_late": "GD\nT* x f", "noise_injection": "input\nnoise",
             "dropout": "input\ndropout"}


def bias_variance(t, footer):
    df = t["bias_variance"]
    techs = [x for x in BV_ORDER if x in set(df.technique)]
    fig, axes = new(width=9.0, height=4.6)
    ax = axes[0, 0]
    xs = np.arange(len(techs))
    for k, (metric, color, label) in enumerate((("bias2", COLORS["ridge"], "bias^2"), ("variance", COLORS["lasso"], "variance"))):
        stats = [mean_ci(select(df, metric, technique=x).value) for x in techs]
        m = np.array([s[0] for s in stats])
        err = np.array([[s[0] - s[1], s[2] - s[0]] for s in stats]).T
        ax.bar(xs + (k - 0.5) * 0.38, m, width=0.38, color=color, label=label, yerr=err, capsize=2)
    tab = bias_variance_table(df).set_index("technique")
    top = ax.get_ylim()[1]
    for i, x in enumerate(techs):
        if x in tab.index:
            r = tab.loc[x]
            words = "\n".join(textwrap.wrap(f"bias: {r.doc_bias}", 13) + textwrap.wrap(f"var: {r.doc_variance}", 13))
            ax.text(i, top * 0.98, f"document\n{words}\n-> {r.outcome}", ha="center", va="top", fontsize=6.2,
                    color="k" if r.outcome == "supported" else COLORS["ridge"])
        elif x in NOT_JUDGED:
            ax.text(i, top * 0.98, "not judged\n(= ridge,\nN15)", ha="center", va="top", fontsize=6.2, color="#777777")
    ax.set_xticks(xs, [BV_LABELS.get(x, x) for x in techs], fontsize=8)
    ax.set_ylabel("mean over test points (95% CI over replicates)")
    ax.set_ylim(0, top * 1.25)
    ax.set_title("bias^2 and variance of the predictions; each technique tuned on validation per training set")
    ax.legend(fontsize=7, loc="center", bbox_to_anchor=(0.5, 0.72))  # above the GD T*/f bars, which carry no note
    n_held = int((tab.outcome == "supported").sum())
    failed = [(f"{BV_LABELS.get(x, x).replace(chr(10), ' ')} {'bias' if r.bias_cell == 'refuted' else 'variance'} "
               f"(document: {r.doc_bias if r.bias_cell == 'refuted' else r.doc_variance})") if ">" not in x else
              f"bias ranking {x.replace('>', ' > ')} (measured {r.d_bias2:+.2f} R0)" for x, r in tab.iterrows() if r.outcome == "refuted"]
    return finish(fig, f"{n_held} of {len(tab)} checks of the Part 10 table hold in the measurement; fail: "
                       f"{'; '.join(failed) or 'none'}", footer)


FIGURES = {
    "gd_vs_ridge": Figure(["gd_vs_ridge"], gd_vs_ridge,
                          "Early-stopped gradient descent on least squares against ridge: the ridge lambda closest to each GD "
                          "iterate against 1/(eta T), the constant lambda * eta * T against the stopping time in units of the "
                          "smallest eigenvalue, and the excess risk of both paths for one seed (claim N9)."),
    "sgd_l2_decay": Figure(["sgd_l2_decay"], sgd_l2_decay,
                           "SGD with (lambda/2)||w||^2 in the loss, with weight_decay = lambda, and with the decay applied by "
                           "hand before or after the step, on the same minibatches: the largest trajectory difference relative "
                           "to the weights' scale, and the lambda vs lambda/2 slip for comparison (claim N10)."),
    "adam_shrinkage": Figure(["adam_l2_decay"], adam_shrinkage,
                             "Per-weight pull of the decay term toward zero in one step against Adam's sqrt(v), for Adam with "
                             "L2 (weight_decay in the gradient) and AdamW, on features whose scales span the configured ratio; "
                             "and sqrt(v) against the weight's size (claim N11)."),
    "noise_vs_ridge": Figure(["noise_vs_ridge"], noise_vs_ridge,
                             "Least squares on noisy copies of standardized inputs against ridge at lambda = noise sd^2: the "
                             "gap as copies grow, and excess risk relative to OLS against the noise sd, for each training-set "
                             "size (claim N15)."),
    "bias_variance": Figure(["bias_variance"], bias_variance,
                            "Bias^2 and variance of the predictions of each technique over many training sets drawn from a "
                            "known truth, each tuned on its validation split, beside the effects stated in the document's "
                            "Part 10 table (claim N16)."),
}
