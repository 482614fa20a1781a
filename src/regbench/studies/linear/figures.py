"""Figures of the linear-penalty study."""
import numpy as np

from regbench.studies.linear.claims import group_gains, group_trend, sweep_outcomes
from regbench.figures import COLORS, LABELS, SEQ, Figure, finish, new
from regbench.stats import mean_ci
from regbench.tables import select


def paths(t, footer):
    df = t["paths"]
    c = select(df, "coef")
    c0 = c[c.seed == 0]
    fig, axes = new(ncols=4, width=3.6, height=3.6)
    for ax, method in zip(axes[0], ("lasso", "enet", "ridge")):
        sub = c0[c0.method == method]
        for group, lw, z in (("noise", 0.6, 1), ("correlated", 1.0, 2), ("true", 1.4, 3)):
            g = sub[sub.group == group].pivot_table(index="lam", columns="feature", values="value")
            ax.plot(g.index, g.to_numpy(), color=COLORS[group], lw=lw, zorder=z)
            ax.plot([], [], color=COLORS[group], lw=2, label=f"{group} features")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.axvline(1.0, color="k", ls=":", lw=0.8)
        ax.set_xlabel("lambda / lambda_max (lasso), decreasing")
        ax.set_ylabel("coefficient (original scale)")
        ax.set_title(f"{LABELS[method]} path, seed 0")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    ax = axes[0, 3]
    nz = select(df, "n_zero")
    p = int(c.feature.max() + 1)
    for method in ("lasso", "enet", "ridge"):
        g = nz[nz.method == method].groupby("lam").value
        ax.plot(g.mean().index, g.mean(), color=COLORS[method], label=LABELS[method], marker=".", ms=3)
        ax.fill_between(g.mean().index, g.min(), g.max(), color=COLORS[method], alpha=0.2)
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("lambda / lambda_max (lasso), decreasing")
    ax.set_ylabel(f"exactly-zero coefficients (of {p})")
    ax.set_title("exact zeros (line: mean;\nband: range over seeds)")
    ax.legend(fontsize=7)
    lasso_mid = nz[(nz.method == "lasso") & (nz.lam < 1)].value.mean()
    ridge_max = int(nz[nz.method == "ridge"].value.max())
    return finish(fig, f"Lasso and elastic net set coefficients exactly to zero (lasso: {lasso_mid:.0f} of {p} on average below "
                       f"lambda_max); ridge sets {ridge_max} to zero anywhere on the path", footer)


def kkt(t, footer):
    df = t["paths"]
    g, c = select(df, "grad_ratio"), select(df, "coef")
    keep = (g.method != "ridge").to_numpy()
    ratio, zero = g.value.to_numpy()[keep], c.value.to_numpy()[keep] == 0
    fig, axes = new(ncols=2, width=5.2, height=3.8)
    bins = np.linspace(0, 1.05, 64)
    ax = axes[0, 0]
    ax.hist(np.clip(ratio[zero], 0, 1.05), bins=bins, color=COLORS["lasso"], label=f"w_j = 0 ({zero.sum()})")
    ax.hist(np.clip(ratio[~zero], 0, 1.05), bins=bins, color=COLORS["ridge"], alpha=0.8, label=f"w_j != 0 ({(~zero).sum()})")
    ax.axvline(1, color="k", ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("|dg/dw_j| / (lambda * a)   (data-loss gradient over the L1 weight)")
    ax.set_ylabel("coefficient (every lambda and seed;\nlasso and elastic net)")
    ax.legend(fontsize=7)
    ax.set_title("zeros sit inside the dead zone, non-zeros on its edge")
    ax = axes[0, 1]
    k = select(df, "kkt")
    for method in ("lasso", "enet"):
        s = k[k.method == method].groupby("lam").value.max()
        ax.plot(s.index, np.maximum(s, 1e-17), marker=".", color=COLORS[method], label=LABELS[method])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("lambda / lambda_max (lasso)")
    ax.set_ylabel("max KKT violation / lambda_max (worst seed)")
    ax.set_title("optimality of every solution on the path")
    ax.legend(fontsize=7)
    return finish(fig, f"Dead zone confirmed: every zero coefficient has |dg/dw_j| <= lambda (max ratio {ratio[zero].max():.4f}); "
                       f"every non-zero one has |dg/dw_j| = lambda (off by <= {np.abs(ratio[~zero] - 1).max():.0e})", footer)


def conditioning(t, footer):
    df = t["conditioning"]
    fig, axes = new(ncols=2, width=5.0, height=4.0)
    ax = axes[0, 0]
    m, f = select(df, "cond_measured"), select(df, "cond_formula")
    for i, (lam, g) in enumerate(m.groupby("lam")):
        ax.scatter(f[f.lam == lam].value, g.value, s=10, color=SEQ[i % len(SEQ)], label=f"lambda = {lam:g}")
    lim = [m.value.min() * 0.8, m.value.max() * 1.2]
    ax.plot(lim, lim, "k:", lw=0.8, label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("(s_max + lambda) / (s_min + lambda)  (formula)")
    ax.set_ylabel("measured cond(X'X/n + lambda I)")
    ax.legend(fontsize=7)
    ax.set_title("each point: one resample")
    ax = axes[0, 1]
    c = select(df, "coef")
    sds = c.groupby(["method", "lam", "feature"]).value.std().reset_index()
    labels, data = [], []
    for (method, lam), g in sds.groupby(["method", "lam"]):
        labels.append("OLS" if method == "ols" else f"ridge\n{lam:g}")
        data.append(g.value.to_numpy())
    ax.boxplot(data, tick_labels=labels)
    ax.set_yscale("log")
    ax.set_ylabel("sd of a coefficient across resamples")
    ax.set_xlabel("fit (ridge lambda)")
    ax.set_title("spread of the coefficients of near-collinear twins")
    weak, strong = np.median(data[0]) / np.median(data[1]), np.median(data[0]) / np.median(data[-1])
    cond0 = select(df, "cond_measured")
    c_ols = cond0[cond0.method == "ols"].value.median()
    lams = sorted(cond0[cond0.method == "ridge"].lam.unique())
    c_r = [cond0[cond0.lam == lam].value.median() for lam in (lams[0], lams[-1])]
    return finish(fig, f"Ridge cures ill-conditioning exactly as (s_max+lambda)/(s_min+lambda) predicts: median cond {c_ols:.3g} "
                       f"(OLS) -> {c_r[0]:.3g} (lambda={lams[0]:g}) -> {c_r[1]:.3g} (lambda={lams[-1]:g}); coefficient sd "
                       f"falls {weak:.2g}x to {strong:.2g}x", footer)


def geometry(t, footer):
    df = t["geometry"]
    fig, axes = new(ncols=2, width=5.0, height=4.4)
    ax = axes[0, 0]
    e = df[df.method == "example"].set_index("metric").value
    G = np.array([[e.g00, e.g01], [e.g01, e.g11]])
    c = np.array([e.c0, e.c1])
    ols, lasso, ridge = np.array([e.ols0, e.ols1]), np.array([e.lasso0, e.lasso1]), np.array([e.ridge0, e.ridge1])
    span = 1.3 * np.abs(ols).max()
    xs = np.linspace(-span, span, 200)
    W0, W1 = np.meshgrid(xs, xs)
    W = np.stack([W0, W1], -1)
    loss = 0.5 * np.einsum("...i,ij,...j->...", W, G, W) - W @ c
    ax.contour(W0, W1, loss - loss.min(), levels=np.quantile(loss - loss.min(), [0.005, 0.02, 0.05, 0.1, 0.2, 0.35]),
               colors="#777777", linewidths=0.7)
    r1, r2 = np.abs(lasso).sum(), np.linalg.norm(ridge)
    ax.plot([r1, 0, -r1, 0, r1], [0, r1, 0, -r1, 0], color=COLORS["lasso"], label="L1 ball (diamond)")
    th = np.linspace(0, 2 * np.pi, 200)
    ax.plot(r2 * np.cos(th), r2 * np.sin(th), color=COLORS["ridge"], label="L2 ball (circle)")
    ax.plot(*ols, "k*", ms=10, label="OLS (unconstrained)")
    ax.plot(*lasso, "o", color=COLORS["lasso"], ms=8, label=f"lasso ({lasso[0]:.2f}, {lasso[1]:.2f})")
    ax.plot(*ridge, "s", color=COLORS["ridge"], ms=7, label=f"ridge ({ridge[0]:.2f}, {ridge[1]:.2f})")
    ax.axhline(0, color="k", lw=0.4)
    ax.axvline(0, color="k", lw=0.4)
    ax.set_aspect("equal")
    ax.set_xlabel("w_1")
    ax.set_ylabel("w_2")
    ax.legend(fontsize=6.5, loc="lower left")
    ax.set_title("one real 2-D fit: loss contours and both balls")
    ax = axes[0, 1]
    hz = select(df, "has_zero")
    for method in ("lasso", "ridge"):
        rows = [(p, *mean_ci(g.value)) for p, g in hz[hz.method == method].groupby("p")]
        p, m, lo, hi = map(np.array, zip(*rows))
        ax.errorbar(p, m, yerr=[m - lo, hi - m], marker="o", capsize=3, color=COLORS[method], label=LABELS[method])
    ax.set_xscale("log")
    ax.set_xticks(sorted(hz.p.unique()), [str(v) for v in sorted(hz.p.unique())])
    ax.minorticks_off()
    ax.set_xlabel("number of features p (truth has no zeros)")
    ax.set_ylabel("share of solutions with an exact zero (95% CI)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7)
    ax.set_title("at matched constraint size (fraction of the OLS norm)")
    lasso_share = hz[hz.method == "lasso"].groupby("p").value.mean()
    return finish(fig, f"L1 solutions land on axes more often as p grows ({lasso_share.iloc[0]:.0%} at p={lasso_share.index[0]} to "
                       f"{lasso_share.iloc[-1]:.0%} at p={lasso_share.index[-1]}); L2 solutions never do", footer)


def problem1_selection(t, footer):
    df = t["problem1"]
    sel = select(df, "sel_freq")
    fig, axes = new(ncols=2, width=5.4, height=4.0, gridspec_kw={"width_ratios": [2.2, 1]})
    ax = axes[0, 0]
    methods = [m for m in ("lasso", "enet") if m in set(sel.method)]
    mat = np.vstack([sel[sel.method == m].groupby("feature").value.mean().to_numpy() for m in methods])
    im = ax.imshow(mat, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    groups = sel[(sel.method == methods[0]) & (sel.seed == 0)].sort_values("feature").group.to_numpy()
    for j in np.flatnonzero(groups[1:] != groups[:-1]):
        ax.axvline(j + 0.5, color="w", lw=1.5)
    for j, g in enumerate(groups):
        if j == 0 or groups[j - 1] != g:
            ax.text(j + 0.5, -0.62, g, color="k", fontsize=7, va="bottom")
    ax.set_yticks(range(len(methods)), [LABELS[m] for m in methods])
    ax.set_xlabel("feature index (true | correlated twins | noise)")
    fig.colorbar(im, ax=ax, label="bootstrap selection frequency (mean over seeds)")
    ax = axes[0, 1]
    st = select(df, "stability_signal")
    for i, m in enumerate(methods):
        v = st[st.method == m].value
        mean, lo, hi = mean_ci(v)
        ax.scatter(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, s=10, color=COLORS[m], alpha=0.6)
        ax.errorbar([i + 0.25], [mean], yerr=[[mean - lo], [hi - mean]], fmt="o", color="k", capsize=3)
    ax.set_xticks(range(len(methods)), [LABELS[m] for m in methods])
    ax.set_ylabel("Nogueira stability, features 1-30 (dots: seeds)")
    ax.set_title("selection stability (1 = identical)")
    coef = select(df, "coef")
    noise = coef[(coef.group == "noise") & (coef.method == "lasso")]
    kept = (noise.value != 0).mean()
    s = st.groupby("method").value.mean()
    return finish(fig, f"Tuned lasso keeps {kept:.0%} of the noise features; stability on features 1-30: lasso {s.get('lasso', np.nan):.2f}, "
                       f"elastic net {s.get('enet', np.nan):.2f}", footer)


def problem1_error(t, footer):
    df = t["problem1"]
    e = select(df, "test_mse")
    methods = [m for m in ("ols", "ridge", "lasso", "enet") if m in set(e.method)]
    fig, axes = new(ncols=1, width=6.0, height=4.0)
    ax = axes[0, 0]
    wide = e.pivot_table(index="seed", columns="method", values="value")[methods]
    for s in wide.index:
        ax.plot(range(len(methods)), wide.loc[s], color="#cccccc", lw=0.7, zorder=1)
    for i, m in enumerate(methods):
        mean, lo, hi = mean_ci(wide[m])
        ax.scatter(np.full(len(wide), i), wide[m], s=12, color=COLORS[m], zorder=2)
        ax.errorbar([i + 0.15], [mean], yerr=[[mean - lo], [hi - mean]], fmt="o", color="k", capsize=3, zorder=3)
    ax.set_xticks(range(len(methods)), [LABELS[m] for m in methods])
    ax.set_ylabel("test MSE (grey lines join the same seed)")
    best = wide.mean().idxmin()
    return finish(fig, f"Problem 1 design: lowest mean test MSE for {LABELS[best]} ({wide[best].mean():.3g}); "
                       f"elastic net {wide['enet'].mean():.3g}, lasso {wide['lasso'].mean():.3g}, ridge {wide['ridge'].mean():.3g}", footer)


def problem1_sweep(t, footer):
    cells = sweep_outcomes(t["problem1_sweep"])
    keys = [k for k in cells.columns if k not in ("outcome", "vs_lasso", "vs_ridge")]
    rows_key, col_keys = keys[0], keys[1:]
    cells["col"] = cells[col_keys].astype(str).agg(", ".join, axis=1) if col_keys else "all"
    rlab, clab = sorted(cells[rows_key].unique()), list(dict.fromkeys(cells.sort_values(col_keys or rows_key)["col"]))
    code = {"wins": 0, "ties": 1, "loses": 2}
    grid = np.full((len(rlab), len(clab)), np.nan)
    fig, axes = new(width=6.4, height=4.4)
    ax = axes[0, 0]
    from matplotlib.colors import ListedColormap
    for _, r in cells.iterrows():
        i, j = rlab.index(r[rows_key]), clab.index(r["col"])
        grid[i, j] = code[r.outcome]
        ax.text(j, i, f"{r.outcome}\nvs lasso {r.get('vs_lasso', np.nan):+.2f}\nvs ridge {r.get('vs_ridge', np.nan):+.2f}",
                ha="center", va="center", fontsize=7)
    ax.imshow(grid, cmap=ListedColormap([COLORS["enet"], "#eeeeee", COLORS["ridge"]]), vmin=0, vmax=2, aspect="auto")
    ax.set_xticks(range(len(clab)), clab)
    ax.set_yticks(range(len(rlab)), rlab)
    ax.set_xlabel(", ".join(col_keys) or "")
    ax.set_ylabel(rows_key)
    ax.set_title("elastic net minus other method, test MSE (mean of paired seeds)")
    n_win = (cells.outcome == "wins").sum()
    return finish(fig, f"Elastic net beats both lasso and ridge in {n_win} of {len(cells)} regimes "
                       f"(green: both paired 95% intervals below 0; orange: worse than one; grey: tie)", footer)


def failure_modes(t, footer):
    df = t["failure_modes"]
    z = select(df, "zeroed")
    roles = ["twin_a", "twin_b", "quadratic", "interaction_a", "interaction_b", "weak", "noise"]
    fig, axes = new(ncols=2, width=5.2, height=4.0, gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0, 0]
    xs = np.arange(len(roles))
    for k, (setting, label) in enumerate((("tuned", "validation-tuned lambda"), ("lambda_x5", "5 x tuned lambda"))):
        # per seed first (a role may hold several features), then the mean and interval over seeds
        per_seed = z[z.setting == setting].groupby(["role", "seed"]).value.mean()
        ci = np.array([mean_ci(per_seed[r].to_numpy()) if r in per_seed else (np.nan,) * 3 for r in roles])
        ax.bar(xs + (k - 0.5) * 0.38, ci[:, 0], width=0.38, color=SEQ[k], label=label,
               yerr=[ci[:, 0] - ci[:, 1], ci[:, 2] - ci[:, 0]], capsize=2, error_kw=dict(lw=0.8))
    ax.set_xticks(xs, ["twin x0", "twin x1", "x2 (quadratic)", "x3 (interact.)", "x4 (interact.)", "x5-x9 weak", "noise"],
                  rotation=30, ha="right")
    ax.set_ylabel("share of seeds where the lasso zeroes it\n(mean, 95% interval over seeds)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("informative features zeroed by a linear lasso")
    ax = axes[0, 1]
    fp1 = select(df, "false_pos")
    ci = np.array([mean_ci(fp1[fp1.setting == "tuned"].groupby("seed").value.mean().to_numpy()),
                   mean_ci(fp1[fp1.setting == "stability"].groupby("seed").value.mean().to_numpy()),
                   mean_ci(select(df, "mb_bound").groupby("seed").value.mean().to_numpy())])
    ax.bar(range(3), ci[:, 0], color=[COLORS["lasso"], COLORS["enet"], "#999999"],
           yerr=[ci[:, 0] - ci[:, 1], ci[:, 2] - ci[:, 0]], capsize=3, error_kw=dict(lw=0.8))
    ax.set_xticks(range(3), ["one tuned\nlasso", "stability\nselection", "M-B bound"])
    ax.set_ylabel("false selections per seed (mean)")
    tp = select(df, "true_pos").value.mean()
    ax.set_title(f"stability selection keeps {tp:.1f} of 7 true linear features")
    tuned = z[(z.setting == "tuned") & z.role.isin(roles[:5])].value.mean()
    return finish(fig, f"A zero lasso weight is no proof of uselessness: {tuned:.0%} of informative features (twin, quadratic, "
                       f"interaction) are zeroed at the tuned lambda", footer)


GROUP_LABELS = {"separate": "separate fits (own lambda)", "global": "one global lambda", "pooled": "pooled (no groups)",
                "shrink": "ridge toward pooled fit"}
GROUP_COLORS = {"separate": SEQ[3], "global": SEQ[1], "pooled": "#999999", "shrink": SEQ[0]}


def _by_group_size(rows, transform=lambda v: v):
    """Group sizes and the mean of transform(value) over seeds with its interval, per size (arrays)."""
    out = [(n, *mean_ci(transform(g.value.to_numpy()))) for n, g in rows.groupby("n_group")]
    return map(np.array, zip(*out))


def groups(t, footer):
    df = t["groups"]
    fig, axes = new(ncols=2, width=5.0, height=4.2)
    ax = axes[0, 0]
    n, m, lo, hi = _by_group_size(select(df, "oracle_lam"), np.log10)
    ax.errorbar(n, 10 ** m, yerr=[10 ** m - 10 ** lo, 10 ** hi - 10 ** m], fmt="o-", color=SEQ[3], capsize=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training rows in the group")
    ax.set_ylabel("best lambda of a separate fit")
    slope = mean_ci(group_trend(df))
    ax.set_title(f"best lambda vs group size: slope {slope[0]:.2f} [{slope[1]:.2f}, {slope[2]:.2f}]")
    ax = axes[0, 1]
    r = select(df, "excess_risk")
    for method, label in GROUP_LABELS.items():
        n, m, lo, hi = _by_group_size(r[r.method == method])
        ax.errorbar(n, m, yerr=[m - lo, hi - m], fmt="o-", ms=3, color=GROUP_COLORS[method], label=label, capsize=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training rows in the group")
    ax.set_ylabel("excess risk ||w - beta_g||^2")
    ax.legend(fontsize=7)
    ax.set_title("excess risk of each way to regularize the groups")
    gain = {o: group_gains(df, o).mean() for o in ("separate", "global")}
    return finish(fig, f"Heterogeneous groups: the best lambda falls with group size (log-log slope {slope[0]:.2f}); on the "
                       f"smallest third of groups, shrinking toward the pooled fit changes excess risk by {gain['separate']:+.3f} "
                       f"vs separate fits and {gain['global']:+.3f} vs one global lambda", footer)


FIGURES = {
    "paths": Figure(["paths"], paths,
                    "Coefficient paths of the lasso, elastic net (mixing 0.5) and ridge on the Problem 1 design, coloured by "
                    "feature group, and the number of exactly-zero coefficients along the path (claim L1)."),
    "kkt": Figure(["paths"], kkt,
                  "The subgradient dead zone: for every coefficient of every path solution, the data-loss gradient divided by "
                  "lambda times the L1 weight, split by zero / non-zero; and the worst KKT violation per lambda (claim L2)."),
    "conditioning": Figure(["conditioning"], conditioning,
                           "Measured condition number of X'X/n + lambda I against (s_max+lambda)/(s_min+lambda), and the spread "
                           "of coefficients across resampled datasets of near-collinear twins, OLS vs ridge (claim L4)."),
    "geometry": Figure(["geometry"], geometry,
                       "Left: a real 2-D least-squares problem, its loss contours, the L1 and L2 balls of the constrained fits "
                       "and their solutions. Right: share of constrained lasso / ridge solutions with an exact zero as the "
                       "number of features grows, on random dense truths (claim L6)."),
    "problem1_selection": Figure(["problem1"], problem1_selection,
                                 "Bootstrap selection frequency of every feature for the validation-tuned lasso and elastic "
                                 "net, and the Nogueira stability index on features 1-30 (claims L7a-d)."),
    "problem1_error": Figure(["problem1"], problem1_error,
                             "Test MSE of each tuned method on the Problem 1 design, one dot per seed, mean with 95% "
                             "bootstrap interval (claim L7e)."),
    "problem1_sweep": Figure(["problem1_sweep"], problem1_sweep,
                             "Where elastic net wins: for each swept design, paired test-MSE differences of elastic net "
                             "against lasso and ridge; a cell is a win when both 95% intervals are below zero (claim L7e)."),
    "failure_modes": Figure(["failure_modes"], failure_modes,
                            "Why a zero lasso weight is no proof: informative features zeroed (correlated twin, quadratic, "
                            "interaction, weak signals under a large lambda) and stability selection's false selections "
                            "against the Meinshausen-Buhlmann bound (claim L8)."),
    "groups": Figure(["groups"], groups,
                     "L9: groups whose sizes span two orders of magnitude, each with coefficients drawn around a shared model. "
                     "Left: the ridge lambda that minimizes a separate fit's excess risk, against group size. Right: excess "
                     "risk per group of separate fits (each tuned on its own validation split), one global lambda, one pooled "
                     "fit, and ridge toward the pooled fit; means with 95% intervals over seeds (claim L9)."),
}
