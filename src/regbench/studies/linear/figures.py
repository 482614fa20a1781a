"""Figures of the linear-penalty study."""
import numpy as np
import pandas as pd

from regbench.data import PLACEMENTS
from regbench.studies.linear.claims import (EVEN_HIGH, EVEN_LOW, GROUPING_SESOI, NOISE_ZEROED, STABILITY_SESOI, design_cells,
                                            even_cells, group_gains, group_trend, sweep_outcomes)
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
    r = select(df, "oracle_ratio")
    w = select(df, "coef")[["seed", "method", "lam", "feature", "value"]].rename(columns={"value": "w"})
    m = r.merge(w, on=["seed", "method", "lam", "feature"])
    ratio, zero = m.value.to_numpy(), (m.w == 0).to_numpy()
    fig, axes = new(ncols=2, width=5.2, height=3.8)
    bins = np.linspace(0, 1.05, 64)
    ax = axes[0, 0]
    ax.hist(np.clip(ratio[zero], 0, 1.05), bins=bins, color=COLORS["lasso"], label=f"w_j = 0 ({zero.sum()})")
    ax.hist(np.clip(ratio[~zero], 0, 1.05), bins=bins, color=COLORS["ridge"], alpha=0.8, label=f"w_j != 0 ({(~zero).sum()})")
    ax.axvline(1, color="k", ls=":")
    ax.set_yscale("log")
    ax.set_xlabel("|dg/dw_j| / (lambda * a) at the LARS solution")
    ax.set_ylabel("coefficients (lambdas x seeds;\nlasso and elastic net)")
    ax.legend(fontsize=7)
    ax.set_title("coordinate descent's zeros sit inside the dead zone")
    ax = axes[0, 1]
    diff = select(df, "oracle_diff")
    floor = 10.0 ** np.floor(np.log10(max(diff.value[diff.value > 0].min(), 1e-300))) / 10 if (diff.value > 0).any() else 1e-16
    for method in ("lasso", "enet"):
        s = diff[diff.method == method].groupby("lam").value.max()
        ax.plot(s.index[s > 0], s[s > 0], marker=".", color=COLORS[method], label=LABELS[method])
        exact = s.index[s == 0]
        if exact.size:  # identical solutions have no logarithm: drawn on a labelled line, not as a measurement
            ax.plot(exact, np.full(exact.size, floor), "x", color=COLORS[method], label=f"{LABELS[method]}: identical (0)")
    if (diff.value == 0).any():
        ax.axhline(floor, color="#999999", lw=0.6, ls="--")
        ax.annotate("exactly 0", (ax.get_xlim()[1], floor), fontsize=7, va="bottom", ha="left", color="#555555")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("lambda / lambda_max (lasso)")
    ax.set_ylabel("max |w_CD - w_LARS| / max |w_LARS|\n(worst seed)")
    ax.set_title("coordinate descent vs LARS homotopy")
    ax.legend(fontsize=7)
    mism = int(select(df, "zero_mismatch").value.sum())
    return finish(fig, f"Dead zone confirmed by an independent solver: every exact zero has |dg/dw_j| <= lambda (max ratio "
                       f"{ratio[zero].max():.4f}); zero patterns differ from LARS in {mism} of {len(m)} coefficients", footer)


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
    # below the panel, not on it: inside, it hides the contours and the OLS point
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.set_title("one real 2-D fit: loss contours and both balls")
    ax = axes[0, 1]
    styles = {("lasso", "frac_zero"): ("o-", "lasso: share of zero coordinates"),
              ("lasso", "corner"): ("s--", "lasso: share of 1-sparse (corner) solutions"),
              ("ridge", "frac_zero"): ("^:", "ridge: share of zero coordinates")}
    dims = sorted(df.p.unique())
    for (method, metric), (fmt, label) in styles.items():
        rows = [(p, *mean_ci(g.value)) for p, g in select(df, metric, method=method).groupby("p")]
        p, m, lo, hi = map(np.array, zip(*rows))
        ax.errorbar(p, m, yerr=[m - lo, hi - m], fmt=fmt, capsize=3, color=COLORS[method], label=label)
    ax.set_xscale("log")
    ax.set_xticks(dims, [str(v) for v in dims])
    ax.minorticks_off()
    ax.set_xlabel("number of features p (n = rows_per_feature x p; truth has no zeros)")
    ax.set_ylabel("share (mean over solutions, 95% CI)")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7)
    ax.set_title("at matched constraint size (fraction of the OLS norm)")
    fz = select(df, "frac_zero", method="lasso").groupby("p").value.mean()
    cn = select(df, "corner", method="lasso").groupby("p").value.mean()
    return finish(fig, f"With p/n fixed, lasso zero coordinates go from {fz.iloc[0]:.0%} to {fz.iloc[-1]:.0%} as p grows "
                       f"{fz.index[0]} to {fz.index[-1]}, while corner (1-sparse) solutions go from {cn.iloc[0]:.0%} to "
                       f"{cn.iloc[-1]:.0%}; ridge never zeroes a coordinate", footer)


def _design_order(label: str):
    """Base design first, then by placement (as data.PLACEMENTS) and r."""
    if label == "base design":
        return (-1, 0.0)
    placement, _, r = label.partition(" r=")
    return (PLACEMENTS.index(placement) if placement in PLACEMENTS else len(PLACEMENTS), float(r or 0))


def per_design(cells: dict) -> dict:
    """Per design (placement, r): mean and 95% interval over seeds of each seed's mean over
    the design's sweep cells (n, noise); cells as design_cells returns them."""
    groups = {}
    for label, series in cells.items():
        groups.setdefault(label.split(" | ")[0], []).append(series)
    return {d: mean_ci(pd.concat(groups[d], axis=1).mean(axis=1).dropna()) for d in sorted(groups, key=_design_order)}


def _forest(ax, series: dict, designs: list, reference, title: str, xlabel: str):
    """One row per design, one marker per series (label -> per_design dict), 95% intervals;
    reference: ('line', x, half-width of the negligible band) or ('band', lo, hi)."""
    kind, a, b = reference
    if kind == "band":
        ax.axvspan(a, b, color="#dddddd", zorder=0, label=f"even: [{a}, {b}]")
    else:
        ax.axvline(a, color="k", lw=0.8, ls="--", zorder=0)
        if b:
            ax.axvspan(a - b, a + b, color="#eeeeee", zorder=0, label=f"negligible (+-{b:g})")
    offsets = np.linspace(-0.15, 0.15, len(series)) if len(series) > 1 else [0.0]
    for (label, (color, marker, values)), dy in zip(series.items(), offsets):
        y = [i + dy for i, d in enumerate(designs) if d in values]
        m, lo, hi = (np.array([values[d][k] for d in designs if d in values]) for k in range(3))
        ax.errorbar(m, y, xerr=[m - lo, hi - m], fmt=marker, color=color, capsize=2, ms=5, label=label)
    ax.set_ylim(len(designs) - 0.5, -0.5)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=1, frameon=False)


def problem1_selection(t, footer):
    """L7a-d per design: the base design and every (placement, r) of the sweep, each
    statistic pooled over the design's n x noise cells, with 95% intervals over seeds."""
    noise = {m: per_design(design_cells(t, "noise_zeroed", m)) for m in ("lasso", "enet")}
    stab = {s: per_design(design_cells(t, "stability_signal", "enet", "lasso", s, "tuned")) for s in ("tuned", "matched")}
    cells, _ = even_cells(t)
    even = per_design(cells) if cells else {}
    gap = per_design(design_cells(t, "grouping", "enet", "lasso"))
    designs = sorted(set(noise["lasso"]) | set(stab["tuned"]) | set(even) | set(gap), key=_design_order)
    fig, axes = new(ncols=4, width=3.3, height=0.42 * len(designs) + 2.6, sharey=True)
    _forest(axes[0, 0], {f"{LABELS[m]}": (COLORS[m], "o", noise[m]) for m in noise}, designs, ("line", NOISE_ZEROED, 0),
            f"noise zeroed (L7a lasso, L7d enet)\nclaimed above {NOISE_ZEROED}", "share of noise features zeroed")
    _forest(axes[0, 1], {"at each tuned lambda": (COLORS["enet"], "o", stab["tuned"]),
                         "at matched selection size": ("#555555", "s", stab["matched"])}, designs, ("line", 0.0, STABILITY_SESOI),
            "selection stability (L7b)\nclaimed above 0", "Nogueira stability, elastic net - lasso")
    _forest(axes[0, 2], {"ridge": (COLORS["ridge"], "o", even)}, designs, ("band", EVEN_LOW, EVEN_HIGH),
            "even split in a group (L7c)\nclaimed inside the band", "mean |twin w| / mean |source w|")
    _forest(axes[0, 3], {"elastic net - lasso": (COLORS["enet"], "o", gap)}, designs, ("line", 0.0, GROUPING_SESOI),
            "groups kept together (L7d)\nclaimed below 0", "|w_s - w_t| / (|w_s| + |w_t|) gap")
    axes[0, 0].set_yticks(range(len(designs)), designs)
    axes[0, 0].set_ylabel("design (signal placement, twin correlation r)")
    above = lambda d: sum(lo > 0 for _, lo, _ in d.values())  # noqa: E731
    below = lambda d: sum(hi < 0 for _, _, hi in d.values())  # noqa: E731
    inside = sum(EVEN_LOW <= lo and hi <= EVEN_HIGH for _, lo, hi in even.values())
    return finish(fig, f"Per design, elastic net's selection is more stable than the lasso's in {above(stab['tuned'])} of "
                       f"{len(stab['tuned'])} at tuned lambda (less in {below(stab['tuned'])}) and {above(stab['matched'])} at "
                       f"matched size (less in {below(stab['matched'])}); ridge splits a group evenly in {inside} of {len(even)}; "
                       f"elastic net keeps groups tighter than the lasso in {below(gap)} of {len(gap)} and zeroes at least "
                       f"{NOISE_ZEROED:.0%} of the noise in {sum(lo > NOISE_ZEROED for _, lo, _ in noise['enet'].values())} of "
                       f"{len(noise['enet'])} (95% intervals over seeds; each design pooled over its n x noise cells)", footer)


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
    """The L7 map: one panel per signal placement, rows the twin correlation r, columns the
    other sweep keys (n, noise); each cell coloured by whether elastic net wins, ties or
    loses, with both paired differences and their 95% half-widths."""
    from matplotlib.colors import ListedColormap
    cells = sweep_outcomes(t["problem1_sweep"])
    keys = [k for k in cells.columns if k != "outcome" and not k.startswith("vs_")]
    panel_key = "coef.placement" if "coef.placement" in keys else None
    row_key = "covariance.r" if "covariance.r" in keys else None
    col_keys = [k for k in keys if k not in (panel_key, row_key)]
    cells["col"] = cells[col_keys].apply(lambda r: "\n".join(f"{k.split('.')[-1]}={v:g}" for k, v in r.items()), axis=1) \
        if col_keys else "all"
    panels = list(dict.fromkeys(cells[panel_key])) if panel_key else ["every design"]
    rlab = sorted(cells[row_key].unique()) if row_key else ["-"]
    clab = list(dict.fromkeys(cells.sort_values(col_keys or keys)["col"]))
    code = {"wins": 0, "ties": 1, "loses": 2}
    fig, axes = new(ncols=len(panels), width=max(2.4, 1.25 * len(clab)), height=0.9 * len(rlab) + 1.9)
    for ax, panel in zip(axes[0], panels):
        sub = cells[cells[panel_key] == panel] if panel_key else cells
        grid = np.full((len(rlab), len(clab)), np.nan)
        for _, r in sub.iterrows():
            i, j = (rlab.index(r[row_key]) if row_key else 0), clab.index(r["col"])
            grid[i, j] = code[r.outcome]
            text = [r.outcome] + [f"{o[0].upper()} {r[f'vs_{o}']:+.2f}+-{(r[f'vs_{o}_hi'] - r[f'vs_{o}_lo']) / 2:.2f}"
                                  for o in ("lasso", "ridge") if f"vs_{o}" in r]
            ax.text(j, i, "\n".join(text), ha="center", va="center", fontsize=6.5)
        ax.imshow(grid, cmap=ListedColormap([COLORS["enet"], "#eeeeee", COLORS["ridge"]]), vmin=0, vmax=2, aspect="auto")
        ax.set_xticks(range(len(clab)), clab, fontsize=7)
        ax.set_yticks(range(len(rlab)), [f"{v:g}" if row_key else v for v in rlab])
        ax.set_xlabel(", ".join(col_keys))
        ax.set_ylabel("twin correlation r" if row_key else "")
        ax.set_title(f"signal: {panel}" if panel_key else panel)
    n_win, n_lose = (cells.outcome == "wins").sum(), (cells.outcome == "loses").sum()
    return finish(fig, f"Elastic net beats both lasso and ridge in {n_win} of {len(cells)} designs and loses to one in {n_lose} "
                       "(green: both paired 95% intervals below 0; orange: one above 0; grey: tie. Cell text: elastic net minus "
                       "L(asso) / R(idge) test MSE, mean +- 95% half-width)", footer)


def failure_modes(t, footer):
    df = t["failure_modes"]
    z = select(df, "zeroed")
    roles = ["twin_a", "twin_b", "quadratic", "interaction_a", "interaction_b", "weak", "control", "noise"]
    fig, axes = new(ncols=2, width=5.2, height=4.0, gridspec_kw={"width_ratios": [1.6, 1]})
    ax = axes[0, 0]
    xs = np.arange(len(roles))
    for k, (setting, label) in enumerate((("tuned", "validation-tuned lambda"), ("lambda_x5", "5 x tuned lambda"))):
        # per seed first (a role may hold several features), then the mean and interval over seeds
        per_seed = z[z.setting == setting].groupby(["role", "seed"]).value.mean()
        ci = np.array([mean_ci(per_seed[r].to_numpy()) if r in per_seed else (np.nan,) * 3 for r in roles])
        ax.bar(xs + (k - 0.5) * 0.38, ci[:, 0], width=0.38, color=SEQ[k], label=label,
               yerr=[ci[:, 0] - ci[:, 1], ci[:, 2] - ci[:, 0]], capsize=2, error_kw=dict(lw=0.8))
    ax.set_xticks(xs, ["twin x0", "twin x1", "x2 (quadratic)", "x3 (interact.)", "x4 (interact.)", "x5-x9 weak", "x10 control", "noise"],
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
    tp, q = select(df, "true_pos").value.mean(), select(df, "q").value.max()
    ax.set_title(f"stability selection (q = {q:.0f}) keeps\n{tp:.1f} of 8 true linear features")
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
                  "The subgradient dead zone, read off an independent solver: for every coefficient of the lasso and elastic-net "
                  "paths, the data-loss gradient at the LARS homotopy solution divided by lambda times the L1 weight, split by "
                  "whether coordinate descent set it exactly to zero; and the largest difference between the two solvers per "
                  "lambda (claim L2)."),
    "conditioning": Figure(["conditioning"], conditioning,
                           "Measured condition number of X'X/n + lambda I against (s_max+lambda)/(s_min+lambda), and the spread "
                           "of coefficients across resampled datasets of near-collinear twins, OLS vs ridge (claim L4)."),
    "geometry": Figure(["geometry"], geometry,
                       "Left: a real 2-D least-squares problem, its loss contours, the L1 and L2 balls of the constrained fits "
                       "and their solutions. Right: share of zero coordinates and of 1-sparse (corner) solutions of the "
                       "constrained lasso (and ridge's zero coordinates) as the number of features grows with n = "
                       "rows_per_feature x p, on random dense truths (claim L6)."),
    "problem1_selection": Figure(["problem1", "problem1_sweep"], problem1_selection,
                                 "Claims L7a-d per design: the base design and each signal placement x twin correlation r of "
                                 "the sweep (pooled over its n x noise cells). Share of noise features zeroed by the tuned lasso "
                                 "and elastic net; Nogueira selection stability on the correlated groups, elastic net minus "
                                 "lasso, at each tuned lambda and at matched selection size; ridge's mean twin over mean source "
                                 "|weight| in a group against the even band; the normalized source-twin weight gap, elastic net "
                                 "minus lasso. Mean and 95% Student-t interval over seeds."),
    "problem1_error": Figure(["problem1"], problem1_error,
                             "Test MSE of each tuned method on the Problem 1 design, one dot per seed, mean with 95% "
                             "bootstrap interval (claim L7e)."),
    "problem1_sweep": Figure(["problem1_sweep"], problem1_sweep,
                             "Where elastic net wins (the L7 map): per signal placement (sources only, spread over each "
                             "correlated group, a latent factor per group), twin correlation r, training size and noise, the "
                             "paired test-MSE differences of elastic net against lasso and ridge with 95% half-widths; a cell "
                             "is a win when both intervals are below zero (claims L7b-e)."),
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
