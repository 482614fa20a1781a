"""Verdict rules for the linear-penalty claims L1-L9 (see CLAIMS.md).

Every rule names its smallest effect of interest (SESOI) in the statistic's own
units, with the reason; an interval inside +-SESOI reads `equivalent`."""
import numpy as np
import pandas as pd

from regbench.verdicts import claim, decide, exact, paired, regimes, row, where, worst
from regbench.stats import boot_ci, diff_ci, mean_ci, verdict
from regbench.tables import select

# Numerical thresholds: a float64 solution is "exact" when it agrees to these.
KKT_TOL = 1e-6        # max KKT violation / lambda_max (solver stops at 1e-10)
CLOSED_FORM_TOL = 1e-8
MAP_TOL = 1e-4        # a generic quasi-Newton optimizer, not an exact solver
# A mismatch this large in every seed is no rounding or stopping effect: the claim fails.
GROSS = 1e-3
# "Correctly set to zero" (Problem 1a/c) read generously: at least 90% of the
# noise features zeroed. Stated here so a reader can disagree with it.
NOISE_ZEROED = 0.9
# "Roughly 1/3 of the weight each" read as: twin weight within 2x of the source's.
EVEN_LOW, EVEN_HIGH = 0.5, 2.0
# Smallest effects of interest, in each statistic's units:
ZEROS_SESOI = 1.0        # exact zeros per solution: fewer than one zero coefficient is no sparsity
SPREAD_SESOI = 0.1       # OLS/ridge coefficient-sd ratio: under 10% less spread is no cure
SHARE_SESOI = 0.05       # shares of solutions / features: 5 points
STABILITY_SESOI = 0.05   # Nogueira stability (0 = random, 1 = identical selections)
GROUPING_SESOI = 0.02    # mean |w_source - w_twin| (true coefficients are 1): 2% of a coefficient
MSE_SESOI = 0.01         # test MSE differences: 1% of the lasso's test MSE, below what anyone would act on
RISK_SESOI = 0.05        # L9 excess risk differences: 5% of the separate fits' excess risk on small groups


def _per_seed(df, metric, **eq):
    return select(df, metric, **eq).groupby("seed").value


@claim("L1", "L1 gives exact zeros, L2 never does; lambda_max = max|X'y|/n zeroes everything", ["paths"], figure="paths")
def l1(t):
    df = t["paths"]
    nz = select(df, "n_zero")
    p = int(select(df, "coef").feature.max() + 1)
    lasso_below = nz[(nz.method == "lasso") & (nz.lam < 1)].groupby("seed").value.mean()
    ridge = nz[nz.method == "ridge"].groupby("seed").value.mean()
    all_zero_at_max = bool((nz[(nz.method == "lasso") & (nz.lam >= 1)].value == p).all())
    below = nz[(nz.method == "lasso") & (nz.lam < 1)]
    first_below = below[below.lam == below.lam.max()].value.max()
    out = paired(lasso_below - ridge, ">", ZEROS_SESOI)
    if ridge.max() > 0 or not all_zero_at_max:
        out["verdict"] = "refuted"
    note = (f"ridge exact zeros anywhere on the path: {int(nz[nz.method == 'ridge'].value.max())}; "
            f"lasso all {p} zero for every lambda >= lambda_max: {all_zero_at_max}; just below lambda_max at most "
            f"{int(first_below)} of {p} zero")
    return row("exact zeros per solution below lambda_max, lasso minus ridge (mean over the path)", **out, note=note)


@claim("L2", "Dead zone: w_j = 0 exactly when |dg/dw_j| <= lambda (KKT of the lasso / elastic net)", ["paths"], figure="kkt")
def l2(t):
    df = t["paths"]
    k = _per_seed(df, "kkt").max()
    g = select(df, "grad_ratio")
    g = g[g.method != "ridge"]
    c = select(df, "coef")
    c = c[c.method != "ridge"]
    zero = c.value.to_numpy() == 0
    ratio = g.value.to_numpy()
    v = exact(k, KKT_TOL, GROSS)
    note = (f"max |dg/dw_j|/(lambda a) over zero coefficients {ratio[zero].max():.6f} (<= 1 claimed); over non-zero "
            f"ones |ratio - 1| <= {np.abs(ratio[~zero] - 1).max():.1e}; {zero.sum()} zero and {(~zero).sum()} non-zero "
            f"coefficients checked; threshold {KKT_TOL:g} of lambda_max")
    return row("max KKT violation / lambda_max over every coefficient on every path (lasso, enet 0.5); interval: range over seeds",
               k.max(), k.min(), k.max(), v, note, sesoi=KKT_TOL)


@claim("L3", "Soft thresholding is the lasso solution for an orthonormal design", ["orthonormal"], table="orthonormal")
def l3(t):
    d = _per_seed(t["orthonormal"], "max_abs_diff").max()
    v = exact(d, CLOSED_FORM_TOL, GROSS)
    return row("max |solver - soft_threshold(X'y/n, lambda)| (lasso; enet with its 1/(1+lambda(1-a)) factor); interval: range over seeds", d.max(), d.min(), d.max(), v,
               f"threshold {CLOSED_FORM_TOL:g}", sesoi=CLOSED_FORM_TOL)


@claim("L4", "Ridge adds lambda to every eigenvalue of X'X and cures ill-conditioning", ["conditioning"], figure="conditioning")
def l4(t):
    df = t["conditioning"]
    meas, form = select(df, "cond_measured"), select(df, "cond_formula")
    rel = np.abs(meas.value.to_numpy() - form.value.to_numpy()) / form.value.to_numpy()
    shift = select(df, "eig_shift_error").value.max()
    coef = select(df, "coef")
    wide = lambda q: q.pivot_table(index="seed", columns="feature", values="value").to_numpy()  # noqa: E731
    ols = wide(coef[coef.method == "ols"])
    lam = coef[coef.method == "ridge"].lam.min()
    ridge = wide(coef[(coef.method == "ridge") & (coef.lam == lam)])
    # mean over features of the sd across resamples, OLS over ridge, bootstrapped over resamples
    r, lo, hi = boot_ci(lambda i: ols[i].std(axis=0).mean() / ridge[i].std(axis=0).mean(), ols.shape[0])
    parts = ["supported" if rel.max() < 1e-6 and shift < 1e-8 else "refuted", decide(lo, hi, ">", 1.0, SPREAD_SESOI)]
    cond_ols = select(df, "cond_measured", method="ols").value.median()
    note = (f"cond(X'X/n + lambda I) matches (s_max+lambda)/(s_min+lambda) to {rel.max():.1e} (relative); every eigenvalue "
            f"moves by lambda to {shift:.1e}; median cond of X'X/n {cond_ols:.3g}; ratio at the weakest ridge lambda = {lam:g}")
    return row("coefficient sd across resamples, OLS / ridge (near-collinear twins r = 0.99; BCa over resamples)", r, lo, hi,
               worst(*parts), note, sesoi=SPREAD_SESOI, n=ols.shape[0])


@claim("L5", "L2 = Gaussian-prior MAP, L1 = Laplace-prior MAP", ["bayes_map"], table="bayes_map")
def l5(t):
    d = _per_seed(t["bayes_map"], "max_rel_diff").max()
    v = exact(d, MAP_TOL, GROSS)
    return row("max relative |MAP (L-BFGS-B on the log posterior) - penalized fit| over priors and seeds; interval: range over seeds", d.max(), d.min(), d.max(), v,
                "matching strength with the 1/(2n) loss: lambda = sigma^2/(n tau^2) (Gaussian sd tau), sigma^2/(n b) (Laplace scale b); "
               "the document's N(0, 1/lambda) holds for the unscaled loss ||r||^2/(2 sigma^2)", sesoi=MAP_TOL)


@claim("L6", "L1 solutions sit on the axes (diamond corners), more so as dimension grows", ["geometry"], figure="geometry")
def l6(t):
    df = t["geometry"]
    hz = select(df, "has_zero")
    lasso = hz[hz.method == "lasso"]
    ps = sorted(lasso.p.unique())
    lo_p, hi_p = lasso[lasso.p == ps[0]].value.to_numpy(), lasso[lasso.p == ps[-1]].value.to_numpy()
    diff, lo, hi = diff_ci(hi_p, lo_p)
    ridge_any = hz[hz.method == "ridge"].value.max()
    on_axis = verdict(*mean_ci(lasso.value)[1:], 0, ">")
    v = worst("supported" if ridge_any == 0 else "refuted", on_axis, decide(lo, hi, ">", 0, SHARE_SESOI))
    frac = select(df, "frac_zero", method="lasso").groupby("p").value.mean()
    note = ("share of lasso solutions with a zero by p: " + ", ".join(f"p={p}: {lasso[lasso.p == p].value.mean():.2f}" for p in ps)
            + f"; share of zero coordinates: {frac.iloc[0]:.2f} -> {frac.iloc[-1]:.2f}; ridge solutions with a zero: {ridge_any:.0f}. "
            "Truth has no zeros: the zeros come from the ball. The L1 ball has 2p vertices, not 2^p as the document says")
    return row(f"share of lasso solutions with an exact zero, p = {ps[-1]} minus p = {ps[0]} (matched constraint size; Welch)",
               diff, lo, hi, v, note, sesoi=SHARE_SESOI, n=min(lo_p.size, hi_p.size))


def _noise_zeroed(coef, method):
    c = coef[(coef.method == method) & (coef.group == "noise")]
    return c.groupby("seed").value.apply(lambda v: float((v == 0).mean()))


@claim("L7a", "Problem 1: L1 zeroes the noise features (31-100)", ["problem1"], figure="problem1_selection")
def l7a(t):
    z = _noise_zeroed(select(t["problem1"], "coef"), "lasso")
    return row("share of noise features zeroed by the lasso at the validation-chosen lambda",
               **paired(z, ">", SHARE_SESOI, NOISE_ZEROED), note=f"threshold {NOISE_ZEROED}: 'correctly set to zero' read as at least 90% of them; a prediction-tuned lambda is small and keeps noise")


@claim("L7b", "L1 picks arbitrarily and unstably inside correlated groups; elastic net is stable", ["problem1"], figure="problem1_selection")
def l7b(t):
    st = select(t["problem1"], "stability_signal").pivot_table(index="seed", columns="method", values="value")
    return row("Nogueira stability over bootstrap resamples on features 1-30, elastic net minus lasso",
               **paired(st["enet"] - st["lasso"], ">", STABILITY_SESOI), note=f"lasso {st['lasso'].mean():.2f}, elastic net {st['enet'].mean():.2f} (1 = identical selections, 0 = random)")


def _twin_ratio(coef, method):
    """Per seed: mean over blocks of mean |twin weight| / |source weight|."""
    c = coef[(coef.method == method) & (coef.block >= 0)]
    def per_seed(s):
        src = s[s.feature == s.block].set_index("block").value.abs()
        twins = s[s.feature != s.block].groupby("block").value.apply(lambda v: v.abs().mean())
        return float((twins / src.reindex(twins.index)).replace([np.inf], np.nan).mean())
    return c.groupby("seed")[["feature", "block", "value"]].apply(per_seed)


@claim("L7c", "L2 keeps every feature and spreads weight evenly across correlated ones", ["problem1"], figure="problem1_selection")
def l7c(t):
    coef = select(t["problem1"], "coef")
    ridge_zeros = int((coef[coef.method == "ridge"].value == 0).sum())
    m, lo, hi = mean_ci(_twin_ratio(coef, "ridge"))
    even = "supported" if EVEN_LOW < lo and hi < EVEN_HIGH else ("refuted" if hi < EVEN_LOW or lo > EVEN_HIGH else "inconclusive")
    v = worst("supported" if ridge_zeros == 0 else "refuted", even)
    return row("ridge: mean |twin weight| / |source weight| within a correlated group (1 = even)", m, lo, hi, v,
                f"ridge exact zeros: {ridge_zeros}; 'even' read as a ratio within [{EVEN_LOW}, {EVEN_HIGH}]. Here only the source "
               "carries signal; a twin is a noisy copy, so ridge gives it less", sesoi=EVEN_LOW)


@claim("L7d", "Elastic net zeroes noise yet keeps correlated features as a group", ["problem1"], figure="problem1_selection")
def l7d(t):
    coef = select(t["problem1"], "coef")
    zn = _noise_zeroed(coef, "enet")
    zn_m, zn_lo, zn_hi = mean_ci(zn)

    def gap(method):  # mean |w_source - w_twin| over twin pairs, per seed
        c = coef[(coef.method == method) & (coef.block >= 0)]
        src = c[c.feature == c.block][["seed", "block", "value"]].rename(columns={"value": "src"})
        tw = c[c.feature != c.block].merge(src, on=["seed", "block"])
        return (tw.value - tw.src).abs().groupby(tw.seed).mean()

    out = paired(gap("enet") - gap("lasso"), "<", GROUPING_SESOI)
    out["verdict"] = worst(decide(zn_lo, zn_hi, ">", NOISE_ZEROED, SHARE_SESOI), out["verdict"])
    return row("grouping: mean |w_source - w_twin|, elastic net minus lasso", **out, note=
               f"noise features zeroed by elastic net {zn_m:.2f} [{zn_lo:.2f}, {zn_hi:.2f}] (threshold {NOISE_ZEROED})")


def _diffs(df, a, b, keys=()):
    """Per cell of `keys` (the base design when empty): per-seed test MSE of method a minus method b."""
    w = select(df, "test_mse").pivot_table(index=[*keys, "seed"], columns="method", values="value")
    d = (w[a] - w[b]).rename("d").reset_index()
    if not keys:
        return {"base design": d.set_index("seed").d}
    return {",".join(f"{k}={v:g}" for k, v in zip(keys, cell if isinstance(cell, tuple) else (cell,))): g.set_index("seed").d
            for cell, g in d.groupby(list(keys))}


@claim("L7e", "Elastic net has the best out-of-sample error on the Problem 1 design", ["problem1"], figure="problem1_sweep")
def l7e(t):
    base = t["problem1"]
    sesoi = MSE_SESOI * select(base, "test_mse", method="lasso").value.mean()
    sweep = t.get("problem1_sweep")
    keys = [c for c in sweep.columns if c not in ("experiment", "seed", "method", "metric", "value")] if sweep is not None else []
    res = {}
    for other in ("lasso", "ridge"):
        cells = _diffs(base, "enet", other)
        if sweep is not None:  # the base design is one more regime beside the sweep's cells
            cells |= _diffs(sweep, "enet", other, keys)
        res[other] = regimes(cells, "<", 0.0, sesoi)
    # "best" needs both comparisons (intersection-union): the weaker decides
    out = dict(res["lasso"][0], verdict=worst(res["lasso"][0]["verdict"], res["ridge"][0]["verdict"]))
    note = "; ".join(f"[vs {o}: {summary['verdict']}] enet minus {o}, pooled over {summary['cells']} regime(s) "
                     f"{summary['value']:+.3g} [{summary['lo']:+.3g}, {summary['hi']:+.3g}]; per regime (Holm over regimes): "
                     f"{where(table)}" for o, (summary, table) in res.items())
    note += (f". Smallest effect of interest {sesoi:.3g} = {MSE_SESOI:.0%} of the lasso's test MSE; negative = elastic net "
             "better")
    return row("test MSE, elastic net minus lasso (paired over seeds), pooled over the base design and the sweep's cells",
               **out, note=note)


def sweep_outcomes(df: pd.DataFrame) -> pd.DataFrame:
    """Per sweep cell: enet wins (both paired intervals below 0), loses (one above 0) or ties."""
    keys = [c for c in df.columns if c not in ("experiment", "seed", "method", "metric", "value")]
    rows = []
    for cell, g in df[df.metric == "test_mse"].groupby(keys):
        w = g.pivot_table(index="seed", columns="method", values="value")
        res = {o: mean_ci(w["enet"] - w[o]) for o in ("lasso", "ridge") if o in w}
        outcome = ("wins" if all(r[2] < 0 for r in res.values()) else
                   "loses" if any(r[1] > 0 for r in res.values()) else "ties")
        rows.append(dict(zip(keys, cell if isinstance(cell, tuple) else (cell,)), outcome=outcome,
                         **{f"vs_{o}": r[0] for o, r in res.items()}))
    return pd.DataFrame(rows)


@claim("L8", "A zero L1 weight does not prove a feature useless (Problem 4)", ["failure_modes"], figure="failure_modes")
def l8(t):
    df = t["failure_modes"]
    z = select(df, "zeroed")
    informative = ["twin_a", "twin_b", "quadratic", "interaction_a", "interaction_b"]
    tuned = z[(z.setting == "tuned") & z.role.isin(informative)].groupby("seed").value.mean()
    share = lambda s, roles: z[(z.setting == s) & z.role.isin(roles)].value.mean()  # noqa: E731
    kept = select(df, "kept").groupby("role").value.mean()
    fp_single = select(df, "false_pos", setting="tuned").value.mean()
    fp_stab = select(df, "false_pos", setting="stability").value.mean()
    tp_stab = select(df, "true_pos", setting="stability").value.mean()
    bound = select(df, "mb_bound").value.mean()
    note = (f"zeroed at the tuned lambda: a twin {share('tuned', ['twin_a', 'twin_b']):.2f}, quadratic x2 {share('tuned', ['quadratic']):.2f}, "
            f"interaction x3,x4 {share('tuned', ['interaction_a', 'interaction_b']):.2f}; weak signals zeroed {share('tuned', ['weak']):.2f} "
            f"at the tuned lambda vs {share('lambda_x5', ['weak']):.2f} at 5x it. In an expanded basis the lasso keeps x2^2 "
            f"{kept.get('quadratic', np.nan):.2f} and x3*x4 {kept.get('interaction', np.nan):.2f} of the time. Stability selection: "
            f"{tp_stab:.1f}/7 true linear features, {fp_stab:.2f} false selections (Meinshausen-Buhlmann bound {bound:.2f}) vs "
            f"{fp_single:.1f} for one tuned lasso")
    return row("share of informative features (twins, x2, x3, x4) that the tuned lasso sets to zero",
               **paired(tuned, ">", SHARE_SESOI), note=note)


# ---------------------------------------------------------------- L9
SMALL_SHARE = 1 / 3  # "small groups": the smallest third of the group sizes


def group_trend(df: pd.DataFrame) -> pd.Series:
    """Per seed: least-squares slope of log(oracle lambda of a separate ridge fit) on log(group size)."""
    o = select(df, "oracle_lam")
    return o.groupby("seed").apply(lambda g: np.polyfit(np.log(g.n_group), np.log(g.value), 1)[0], include_groups=False)


def group_gains(df: pd.DataFrame, other: str, small: bool = True) -> pd.Series:
    """Per seed: mean excess risk of shrink-to-pooled minus `other` over the small (or the other) groups."""
    r = select(df, "excess_risk").pivot_table(index=["seed", "n_group"], columns="method", values="value").reset_index()
    cut = np.quantile(np.unique(r.n_group), SMALL_SHARE)
    r = r[(r.n_group <= cut) if small else (r.n_group > cut)]
    return (r["shrink"] - r[other]).groupby(r.seed).mean()


@claim("L9", "Heterogeneous groups need heterogeneous regularization: the best lambda moves with group size, and "
       "shrinking toward a shared model beats one global lambda and separate fits where groups are small",
       ["groups"], figure="groups")
def l9(t):
    df = t["groups"]
    slope = mean_ci(group_trend(df))
    r = select(df, "excess_risk", method="separate")
    sesoi = RISK_SESOI * r[r.n_group <= np.quantile(np.unique(r.n_group), SMALL_SHARE)].value.mean()
    gains = {o: paired(group_gains(df, o), "<", sesoi) for o in ("separate", "global")}
    vs = {o: (g["value"], g["lo"], g["hi"]) for o, g in gains.items()}
    big = {o: group_gains(df, o, small=False).mean() for o in ("separate", "global")}
    # the trend's SESOI: a slope of 0.1 (lambda changing 1.26x per 10x group size) is no real dependence
    parts = {"trend": decide(slope[1], slope[2], "<", 0, 0.1), **{f"beats {o}": g["verdict"] for o, g in gains.items()}}
    sizes = np.unique(df.n_group)
    note = (f"[trend: {parts['trend']}] slope of log oracle lambda on log group size {slope[0]:.2f} "
            f"[{slope[1]:.2f}, {slope[2]:.2f}] (groups of {sizes.min()}-{sizes.max()} rows); "
            + "; ".join(f"[beats {o}: {parts['beats ' + o]}] shrink minus {o} on the smallest third of groups {m:+.3f} "
                        f"[{lo:+.3f}, {hi:+.3f}], on the larger groups {big[o]:+.3f}" for o, (m, lo, hi) in vs.items())
            + ". Excess risk is exact (X ~ N(0, I)): ||w - beta_g||^2; the shrinkage strength, the global lambda and "
            "each separate lambda are tuned on validation splits the size of the training splits")
    return row("excess risk of ridge toward the pooled fit minus separate per-group ridge, smallest third of groups "
               "(paired over seeds)", **dict(gains["separate"], verdict=worst(*parts.values())), note=note
               + f"; smallest effect of interest {sesoi:.3g} = {RISK_SESOI:.0%} of the separate fits' excess risk there")
