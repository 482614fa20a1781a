"""Verdict rules for the linear-penalty claims L1-L9 (see CLAIMS.md).

Every rule names its smallest effect of interest (SESOI) in the statistic's own
units, with the reason; an interval inside +-SESOI reads `equivalent`."""
import numpy as np
import pandas as pd

from regbench.verdicts import claim, decide, exact, paired, regimes, row, within, worst
from regbench.stats import LEVEL, boot_ci, diff_ci, holm, mean_ci, t_pvalue, verdict
from regbench.tables import select

# Numerical thresholds: a float64 solution is "exact" when it agrees to these.
CLOSED_FORM_TOL = 1e-8
MAP_TOL = 1e-4        # a generic quasi-Newton optimizer, not an exact solver
# The dead zone read off an independent solver (LARS homotopy, exact up to rounding in
# its knots, ~1e-12): a zero may sit past the zone's edge by rounding only.
DEAD_ZONE_TOL = 1e-6
MISMATCH_TOL = 1e-12  # zero/non-zero status vs LARS: a share; any disagreement at all fails the identity
# A mismatch this large in every seed is no rounding or stopping effect: the claim fails.
GROSS = 1e-3
# "Correctly set to zero" (Problem 1a/c) read generously: at least 90% of the
# noise features zeroed. Stated here so a reader can disagree with it.
NOISE_ZEROED = 0.9
# "Roughly 1/3 of the weight each" read as: a twin's weight within 25% of its source's,
# the band a reader would still call even (a factor 2 would call 1/3 vs 2/3 even).
EVEN_BAND = 0.25
EVEN_LOW, EVEN_HIGH = 1 - EVEN_BAND, 1 + EVEN_BAND
ALPHA = 1 - LEVEL
# Smallest effects of interest, in each statistic's units:
ZEROS_SESOI = 1.0        # exact zeros per solution: fewer than one zero coefficient is no sparsity
SPREAD_SESOI = 0.1       # OLS/ridge coefficient-sd ratio: under 10% less spread is no cure
SHARE_SESOI = 0.05       # shares of solutions / features: 5 points
STABILITY_SESOI = 0.05   # Nogueira stability (0 = random, 1 = identical selections)
GROUPING_SESOI = 0.05    # normalized twin gap |w_s - w_t| / (|w_s| + |w_t|) (0-1): 5 points, as for shares
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
    r = select(df, "oracle_ratio")
    w = select(df, "coef")[["seed", "method", "lam", "feature", "value"]].rename(columns={"value": "w"})
    m = r.merge(w, on=["seed", "method", "lam", "feature"])
    zero = m.w == 0
    # per seed: the widest gradient found at a zero of coordinate descent, in units of the dead zone's half-width
    widest = m[zero].groupby("seed").value.max().reindex(m.seed.unique(), fill_value=0.0)
    checked = m.groupby("seed").size()
    mismatch = select(df, "zero_mismatch").groupby("seed").value.sum() / checked
    parts = [exact((widest - 1).clip(lower=0), DEAD_ZONE_TOL, GROSS), exact(mismatch, MISMATCH_TOL, GROSS)]
    v = "refuted" if "refuted" in parts else "identity check" if set(parts) == {"identity check"} else "inconclusive"
    on_edge = np.abs(m[~zero].value - 1)
    note = (f"gradient at the independent LARS solution; over coordinate descent's {int(zero.sum())} exact zeros the largest "
            f"|dg/dw_j|/(lambda a) is {widest.max():.6f} (<= 1 claimed), over its {int((~zero).sum())} non-zeros |ratio - 1| <= "
            f"{on_edge.max():.1e}; zero/non-zero status differs from LARS's in {int(select(df, 'zero_mismatch').value.sum())} of "
            f"{int(checked.sum())} coefficients; largest |w_CD - w_LARS| / max|w_LARS| {select(df, 'oracle_diff').value.max():.1e}; "
            f"coordinate descent's own KKT residual (not the decider) <= {select(df, 'kkt').value.max():.1e} of lambda_max")
    return row("largest |dg/dw_j| / (lambda a) over exactly-zero coefficients (lasso, enet 0.5), gradient at an independent "
               "LARS solution; 1 = the dead zone's edge; interval: range over seeds",
               widest.max(), widest.min(), widest.max(), v, note, sesoi=DEAD_ZONE_TOL)


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
    ps = sorted(df.p.unique())

    def rise(metric):  # per-solution values at the largest p minus the smallest (independent solutions: Welch)
        v = select(df, metric, method="lasso")
        return diff_ci(v[v.p == ps[-1]].value, v[v.p == ps[0]].value)

    axes, corners = rise("frac_zero"), rise("corner")
    ridge_any = select(df, "frac_zero", method="ridge").value.max()
    parts = {"ridge never zero": "supported" if ridge_any == 0 else "refuted",
             "zero coordinates rise": decide(axes[1], axes[2], ">", 0, SHARE_SESOI),
             "corners rise": decide(corners[1], corners[2], ">", 0, SHARE_SESOI)}
    share = lambda metric: select(df, metric, method="lasso").groupby("p").value.mean()  # noqa: E731
    fz, cn = share("frac_zero"), share("corner")
    note = ("; ".join(f"[{k}: {v}]" for k, v in parts.items())
            + f". Share of zero coordinates by p: " + ", ".join(f"p={p}: {fz[p]:.2f}" for p in ps)
            + f" (rise {axes[0]:+.3f} [{axes[1]:+.3f}, {axes[2]:+.3f}]); share of 1-sparse (corner) solutions: "
            + ", ".join(f"p={p}: {cn[p]:.2f}" for p in ps) + f" (rise {corners[0]:+.3f} [{corners[1]:+.3f}, {corners[2]:+.3f}]); "
            f"largest share of zero coordinates in a ridge solution: {ridge_any:.0f}. Rows grow with p (p/n fixed); the truth has "
            "no zeros, so zeros come from the ball; the weakest part decides. The L1 ball has 2p vertices, not 2^p as the document "
            "says: in more dimensions the solutions land on low-dimensional faces (some coordinates zero), not on vertices")
    n = select(df, "frac_zero", method="lasso").groupby("p").size().min()
    return row(f"share of zero coordinates of lasso solutions, p = {ps[-1]} minus p = {ps[0]} (matched constraint size, n = "
               f"rows_per_feature x p; Welch)", *axes, worst(*parts.values()), note, sesoi=SHARE_SESOI, n=n)


def _noise_zeroed(coef, method):
    c = coef[(coef.method == method) & (coef.group == "noise")]
    return c.groupby("seed").value.apply(lambda v: float((v == 0).mean()))


@claim("L7a", "Problem 1: L1 zeroes the noise features (31-100)", ["problem1"], figure="problem1_selection")
def l7a(t):
    z = _noise_zeroed(select(t["problem1"], "coef"), "lasso")
    return row("share of noise features zeroed by the lasso at the validation-chosen lambda",
               **paired(z, ">", SHARE_SESOI, NOISE_ZEROED), note=f"threshold {NOISE_ZEROED}: 'correctly set to zero' read as at least 90% of them; a prediction-tuned lambda is small and keeps noise")


# ---------------------------------------------------------------- L7b-e, per design
# Keys of the sweep that say which design a cell is (the rest, n and noise, are regimes of it).
DESIGN_KEYS = ("coef.placement", "covariance.r")
NOT_CELL = {"experiment", "seed", "method", "metric", "value", "setting", "group", "feature", "block", "role"}


def _label(keys, cell) -> str:
    """'spread r=0.8 | n_train=200, noise.sigma=3' for a sweep cell: the design, then the rest."""
    named = dict(zip(keys, cell if isinstance(cell, tuple) else (cell,)))
    fmt = lambda k, v: f"{v:g}" if isinstance(v, (int, float)) else str(v)  # noqa: E731
    design = " ".join(fmt(k, v) if k == "coef.placement" else f"r={fmt(k, v)}" for k, v in named.items() if k in DESIGN_KEYS)
    rest = ", ".join(f"{k}={fmt(k, v)}" for k, v in named.items() if k not in DESIGN_KEYS)
    return f"{design or 'sweep'} | {rest}" if rest else design


def _per_seed_cells(df, metric, a, b=None, setting_a=None, setting_b=None, label=None) -> dict:
    """Per cell of df's sweep keys (one cell 'base design' without them): per-seed value of
    `metric` for method a (at setting_a), minus method b's (at setting_b) when b is given."""
    keys = [c for c in df.columns if c not in NOT_CELL and df[c].notna().any()]
    sub = df[df.metric == metric]

    def pick(method, setting):
        m = sub[sub.method == method]
        return m[m.setting == setting] if setting is not None else m

    def series(g_a, g_b):
        x = g_a.set_index("seed").value
        return (x - g_b.set_index("seed").value) if g_b is not None else x

    if not keys:
        return {label or "base design": series(pick(a, setting_a), pick(b, setting_b) if b else None)}
    ga = dict(list(pick(a, setting_a).groupby(keys)))
    gb = dict(list(pick(b, setting_b).groupby(keys))) if b else {}
    return {_label(keys, c): series(ga[c], gb.get(c) if b else None) for c in ga}


def design_cells(t, metric, a, b=None, setting_a=None, setting_b=None) -> dict:
    """The base design (problem1) and every sweep cell (problem1_sweep, when run) as regimes."""
    cells = _per_seed_cells(t["problem1"], metric, a, b, setting_a, setting_b, label="base design")
    if "problem1_sweep" in t and (t["problem1_sweep"].metric == metric).any():
        cells |= _per_seed_cells(t["problem1_sweep"], metric, a, b, setting_a, setting_b)
    return {k: v.dropna() for k, v in cells.items()}


def by_design(table: pd.DataFrame) -> str:
    """Per design (placement, r): how many of its cells hold, fail or are unclear, and the
    mean effect; the base design first. Reads a regimes() table."""
    words = {"supported": "holds", "refuted": "fails", "equivalent": "negligible", "inconclusive": "unclear"}
    design = table.cell.str.split(" | ", regex=False).str[0]
    parts = []
    for d, g in table.groupby(design, sort=False):
        counts = ", ".join(f"{words[v]} {int((g.verdict == v).sum())}" for v in words if (g.verdict == v).any())
        parts.append(f"{d}: {counts} of {len(g)} (mean {g['mean'].mean():+.3g})")
    return "; ".join(parts)


@claim("L7b", "L1 picks arbitrarily and unstably inside correlated groups; elastic net is stable", ["problem1"], figure="problem1_selection")
def l7b(t):
    res = {"at own tuned lambda": regimes(design_cells(t, "stability_signal", "enet", "lasso", "tuned", "tuned"), ">", 0.0, STABILITY_SESOI),
           "at matched selection size": regimes(design_cells(t, "stability_signal", "enet", "lasso", "matched", "tuned"), ">", 0.0,
                                                STABILITY_SESOI)}
    v = worst(*(r[0]["verdict"] for r in res.values()))
    size = select(t["problem1"], "sel_size").groupby(["method", "setting"]).value.mean()
    note = "; ".join(f"[{k}: {r[0]['verdict']}] pooled {r[0]['value']:+.3f} [{r[0]['lo']:+.3f}, {r[0]['hi']:+.3f}]; per design (Holm over "
                     f"{r[0]['cells']} regimes): {by_design(r[1])}" for k, r in res.items())
    note += (f". Base design, mean features selected per bootstrap: lasso {size.get(('lasso', 'tuned'), np.nan):.1f}, elastic net "
             f"{size.get(('enet', 'tuned'), np.nan):.1f} tuned, {size.get(('enet', 'matched'), np.nan):.1f} at the lambda matching the "
             "lasso's selection size. Nogueira stability on the correlated groups (1 = identical selections, 0 = random); the weaker "
             "comparison decides")
    return row("Nogueira stability over bootstrap resamples on the correlated groups, elastic net minus lasso, each at its "
               "tuned lambda (pooled over the base design and the sweep's designs)", **dict(res["at own tuned lambda"][0], verdict=v), note=note)


def range_regimes(cells: dict, low: float, high: float) -> tuple[dict, pd.DataFrame]:
    """A claimed range [low, high] over regimes: per cell four one-sided t tests (above
    low, below high; below low, above high), Holm over all of them. A cell holds when it
    is inside on both sides, fails when it is outside on either; conditional when both
    kinds survive, else the pooled per-seed mean's interval against the range (within)."""
    names = list(cells)
    k = len(names)
    p = [t_pvalue(cells[c], low, ">") for c in names] + [t_pvalue(cells[c], high, "<") for c in names] + \
        [t_pvalue(cells[c], low, "<") for c in names] + [t_pvalue(cells[c], high, ">") for c in names]
    adj = holm(p)
    rows = []
    for i, c in enumerate(names):
        m, lo, hi = mean_ci(cells[c])
        v = ("supported" if adj[i] < ALPHA and adj[k + i] < ALPHA else
             "refuted" if adj[2 * k + i] < ALPHA or adj[3 * k + i] < ALPHA else "inconclusive")
        rows.append(dict(cell=c, n=len(cells[c]), mean=m, lo=lo, hi=hi, verdict=v))
    table = pd.DataFrame(rows)
    per_seed = pd.concat({c: pd.Series(cells[c], dtype=float) for c in names}, axis=1).mean(axis=1).dropna()
    m, lo, hi = mean_ci(per_seed)
    v = "conditional" if {"supported", "refuted"} <= set(table.verdict) else within(lo, hi, low, high)
    return dict(value=m, lo=lo, hi=hi, verdict=v, n=per_seed.size, cells=k), table


def twin_weights(df: pd.DataFrame) -> pd.DataFrame:
    """Per ridge fit (seed x sweep cell) of a table with coefficient rows: metric
    'twin_weight', the mean |weight| of the twins over the mean |weight| of the sources,
    over every correlated group of the fit (1 = even; k twins per group, so it is summed
    |twin| weight over k x summed |source| weight). A ratio of sums over the groups, not
    a mean of per-group ratios: a source that ridge happens to shrink near zero does not
    blow it up (the mean of per-group ratios read 2.4-2.7 on even designs at r = 0.5)."""
    c = df[(df.metric == "coef") & (df.method == "ridge")]
    if c.empty or "block" not in c or not (c.block >= 0).any():
        return df.iloc[:0]
    c = c[c.block >= 0]
    keys = sweep_keys(c) + ["seed"]
    c = c.assign(twin=c.feature != c.block, value=c.value.abs())
    w = c.groupby(keys + ["twin"]).value.mean().unstack("twin")
    out = (w[True] / w[False]).rename("value").reset_index()
    return out.assign(experiment=df.experiment.iloc[0], method="ridge", metric="twin_weight")


def source_share(ratio, twins: int):
    """The share of a group's |weight| its source holds, for a twin-to-source ratio and
    `twins` twins per group: 1 / (1 + twins x ratio); 1/3 for an even split with two twins."""
    return 1 / (1 + twins * ratio)


def even_cells(t) -> tuple[dict, list]:
    """L7c's regimes: the base design and every sweep cell whose table holds ridge
    coefficients; and the names of the tables that hold none (left out, and said so)."""
    derived = {k: twin_weights(t[k]) for k in ("problem1", "problem1_sweep") if k in t}
    missing = [k for k, v in derived.items() if v.empty]
    if "problem1" in missing:
        return {}, missing
    return design_cells({k: v for k, v in derived.items() if not v.empty}, "twin_weight", "ridge"), missing


@claim("L7c", "L2 keeps every feature and spreads weight evenly across correlated ones", ["problem1"], figure="problem1_selection")
def l7c(t):
    tables = [t["problem1"]] + ([t["problem1_sweep"]] if "problem1_sweep" in t else [])
    nz = pd.concat([select(x, "n_nonzero", method="ridge") for x in tables])
    p = int(select(t["problem1"], "coef").feature.max() + 1)  # the sweep's cells keep the base design's p
    ridge_zeros = int((p - nz.value).max())
    cells, missing = even_cells(t)
    if not cells:
        return row("ridge: mean |twin weight| / mean |source weight| over the correlated groups", np.nan, np.nan, np.nan,
                   "inconclusive", "no table holds ridge coefficients with their groups (column block)", sesoi=EVEN_BAND)
    summary, table = range_regimes(cells, EVEN_LOW, EVEN_HIGH)
    v = worst("supported" if ridge_zeros == 0 else "refuted", summary["verdict"])
    coef = select(t["problem1"], "coef", method="ridge")
    twins = int((coef.block >= 0).sum() / max((coef.block == coef.feature).sum(), 1)) - 1
    design = table.cell.str.split(" | ", regex=False).str[0]
    per_design = source_share(table.groupby(design, sort=False)["mean"].mean(), twins)
    shares = ", ".join(f"{d}: {s:.2f}" for d, s in per_design.items()) if twins > 0 else ""
    note = (f"most ridge exact zeros in one fit: {ridge_zeros} (of p = {p}); per fit, the twins' mean |weight| over the "
            f"sources' mean |weight| across the groups (a ratio of sums, so a small source weight cannot inflate it); "
            f"'even' read as within {EVEN_BAND:.0%}, [{EVEN_LOW}, {EVEN_HIGH}]; per design (Holm over {summary['cells']} "
            f"regimes): {by_design(table)}"
            + (f". The source's share of its group's |weight| ({twins} twins; even = {source_share(1, twins):.2f}, the "
               f"band {source_share(EVEN_HIGH, twins):.2f}-{source_share(EVEN_LOW, twins):.2f}): {shares}" if shares else "")
            + (f". Not judged (no ridge coefficients stored): {', '.join(missing)}" if missing else "")
            + ". Where only the source carries signal a twin is a noisy copy and ridge gives it less; where the "
            "signal is spread over the group, even is the truth")
    return row("ridge: mean |twin weight| / mean |source weight| over the correlated groups of a fit (1 = even), pooled "
               "over the base design and the sweep's designs", **dict(summary, verdict=v), note=note, sesoi=EVEN_BAND)


@claim("L7d", "Elastic net zeroes noise yet keeps correlated features as a group", ["problem1"], figure="problem1_selection")
def l7d(t):
    zn = regimes(design_cells(t, "noise_zeroed", "enet"), ">", NOISE_ZEROED, SHARE_SESOI)
    gap = regimes(design_cells(t, "grouping", "enet", "lasso"), "<", 0.0, GROUPING_SESOI)
    v = worst(zn[0]["verdict"], gap[0]["verdict"])
    note = (f"[groups kept: {gap[0]['verdict']}] normalized gap |w_s - w_t| / (|w_s| + |w_t|) over source-twin pairs (0 = equal "
            f"weights, 1 = one of them zero; pairs with both zero left out), elastic net minus lasso, pooled {gap[0]['value']:+.3f} "
            f"[{gap[0]['lo']:+.3f}, {gap[0]['hi']:+.3f}]; per design: {by_design(gap[1])}. [noise zeroed: {zn[0]['verdict']}] share of "
            f"noise features elastic net zeroes, pooled {zn[0]['value']:.2f} [{zn[0]['lo']:.2f}, {zn[0]['hi']:.2f}] (threshold "
            f"{NOISE_ZEROED}); per design: {by_design(zn[1])}. Holm over each part's regimes; the weaker part decides")
    return row("grouping: normalized source-twin weight gap, elastic net minus lasso (pooled over the base design and the "
               "sweep's designs)", **dict(gap[0], verdict=v), note=note)


@claim("L7e", "Elastic net has the best out-of-sample error on the Problem 1 design", ["problem1"], figure="problem1_sweep")
def l7e(t):
    sesoi = MSE_SESOI * select(t["problem1"], "test_mse", method="lasso").value.mean()
    res = {o: regimes(design_cells(t, "test_mse", "enet", o), "<", 0.0, sesoi) for o in ("lasso", "ridge")}
    # "best" needs both comparisons (intersection-union): the weaker decides
    out = dict(res["lasso"][0], verdict=worst(res["lasso"][0]["verdict"], res["ridge"][0]["verdict"]))
    note = "; ".join(f"[vs {o}: {summary['verdict']}] enet minus {o}, pooled over {summary['cells']} regime(s) "
                     f"{summary['value']:+.3g} [{summary['lo']:+.3g}, {summary['hi']:+.3g}]; per design (Holm over regimes; "
                     f"holds = elastic net better): {by_design(table)}" for o, (summary, table) in res.items())
    if "problem1_sweep" in t:
        cells = sweep_outcomes(t["problem1_sweep"])
        note += ". Where elastic net beats both (each paired interval below 0): " + _outcome_summary(cells)
    note += (f". Smallest effect of interest {sesoi:.3g} = {MSE_SESOI:.0%} of the lasso's test MSE; negative = elastic net "
             "better")
    return row("test MSE, elastic net minus lasso (paired over seeds), pooled over the base design and the sweep's cells",
               **out, note=note)


def sweep_keys(df: pd.DataFrame) -> list:
    return [c for c in df.columns if c not in NOT_CELL and df[c].notna().any()]


def sweep_outcomes(df: pd.DataFrame) -> pd.DataFrame:
    """Per sweep cell: enet wins (both paired intervals below 0), loses (one above 0) or
    ties; with each paired mean difference and its interval."""
    keys = sweep_keys(df)
    rows = []
    for cell, g in df[df.metric == "test_mse"].groupby(keys):
        w = g.pivot_table(index="seed", columns="method", values="value")
        res = {o: mean_ci(w["enet"] - w[o]) for o in ("lasso", "ridge") if o in w}
        outcome = ("wins" if all(r[2] < 0 for r in res.values()) else
                   "loses" if any(r[1] > 0 for r in res.values()) else "ties")
        rows.append(dict(zip(keys, cell if isinstance(cell, tuple) else (cell,)), outcome=outcome,
                         **{f"vs_{o}{end}": r[i] for o, r in res.items() for i, end in enumerate(("", "_lo", "_hi"))}))
    return pd.DataFrame(rows)


def _outcome_summary(cells: pd.DataFrame) -> str:
    """'spread: wins 10, ties 2 of 12; ...' per placement (or overall) of a sweep_outcomes table."""
    key = "coef.placement" if "coef.placement" in cells else None
    groups = cells.groupby(key, sort=False) if key else [("every cell", cells)]
    return "; ".join(f"{d}: " + ", ".join(f"{o} {int((g.outcome == o).sum())}" for o in ("wins", "ties", "loses")
                                          if (g.outcome == o).any()) + f" of {len(g)}" for d, g in groups)


# A strong independent linear control that the tuned lasso zeroes in more than 5% of
# seeds means the lasso zeroes what it should keep: its zeros prove nothing either way.
CONTROL_ZEROED_MAX = SHARE_SESOI
# "Use stability selection" read as: it keeps most of the true linear support (its
# recall above one half), with q at least the support's size so nothing caps it.
RECALL_MIN = 0.5


def basis_gain(mse) -> dict:
    """L8's first part from per-seed test MSE (columns or arrays tuned, expanded): the tuned linear
    lasso minus the lasso re-tuned in the expanded basis, above 0 when what the linear
    lasso zeroed predicts; smallest effect 1% of the linear lasso's test MSE."""
    return paired(mse["tuned"] - mse["expanded"], ">", MSE_SESOI * mse["tuned"].mean())


@claim("L8", "A zero L1 weight does not prove a feature useless (Problem 4)", ["failure_modes"], figure="failure_modes")
def l8(t):
    df = t["failure_modes"]
    z = select(df, "zeroed")
    mse = select(df, "test_mse").pivot_table(index="seed", columns="setting", values="value")
    gain = basis_gain(mse)
    sesoi = gain["sesoi"]
    control = z[(z.setting == "tuned") & (z.role == "control")].groupby("seed").value.mean()
    c_m, c_lo, c_hi = mean_ci(control)
    control_ok = "supported" if c_hi < CONTROL_ZEROED_MAX or control.max() == 0 else "inconclusive"
    recall = select(df, "recall", setting="stability").groupby("seed").value.mean()
    r = paired(recall, ">", SHARE_SESOI, RECALL_MIN)
    parts = {"zeroed features are useful": gain["verdict"], "control kept": control_ok, "stability selection recall": r["verdict"]}
    share = lambda s, roles: z[(z.setting == s) & z.role.isin(roles)].value.mean()  # noqa: E731
    kept = select(df, "kept").groupby("role").value.mean()
    fp = {s: select(df, "false_pos", setting=s).value.mean() for s in ("tuned", "stability")}
    note = ("; ".join(f"[{k}: {v}]" for k, v in parts.items())
            + f". Test MSE of the tuned linear lasso minus the lasso re-tuned in an expanded basis (squares and pairwise "
            f"products) {gain['value']:+.3g} [{gain['lo']:+.3g}, {gain['hi']:+.3g}] (smallest effect {sesoi:.3g}, 1% of the linear "
            f"lasso's; above 0: what the linear lasso zeroed predicts). Zeroed at the tuned lambda: a twin "
            f"{share('tuned', ['twin_a', 'twin_b']):.2f}, quadratic x2 {share('tuned', ['quadratic']):.2f}, interaction x3,x4 "
            f"{share('tuned', ['interaction_a', 'interaction_b']):.2f}, weak signals {share('tuned', ['weak']):.2f} (at 5x lambda "
            f"{share('lambda_x5', ['weak']):.2f}), the control {c_m:.2f} [{c_lo:.2f}, {c_hi:.2f}] (must stay below "
            f"{CONTROL_ZEROED_MAX:.0%}); in the expanded basis the lasso keeps x2^2 {kept.get('quadratic', np.nan):.2f} and x3*x4 "
            f"{kept.get('interaction', np.nan):.2f} of the time. Stability selection (q = "
            f"{select(df, 'q').value.max():.0f}, at least the 8 true linear features): recall {r['value']:.2f} [{r['lo']:.2f}, "
            f"{r['hi']:.2f}] (above {RECALL_MIN} claimed), {fp['stability']:.2f} false selections (Meinshausen-Buhlmann bound "
            f"{select(df, 'mb_bound').value.mean():.2f}) vs {fp['tuned']:.1f} for one tuned lasso. The weakest part decides")
    return row("test MSE, tuned linear lasso minus the lasso in an expanded basis that can use what it zeroed (paired over "
               "seeds)", **dict(gain, verdict=worst(*parts.values())), note=note)


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
    sizes = np.unique(df.n_group.dropna()).astype(int)
    note = (f"[trend: {parts['trend']}] slope of log oracle lambda on log group size {slope[0]:.2f} "
            f"[{slope[1]:.2f}, {slope[2]:.2f}] (groups of {sizes.min()}-{sizes.max()} rows); "
            + "; ".join(f"[beats {o}: {parts['beats ' + o]}] shrink minus {o} on the smallest third of groups {m:+.3f} "
                        f"[{lo:+.3f}, {hi:+.3f}], on the larger groups {big[o]:+.3f}" for o, (m, lo, hi) in vs.items())
            + ". Excess risk is exact (X ~ N(0, I)): ||w - beta_g||^2; the shrinkage strength, the global lambda and "
            "each separate lambda are tuned on validation splits the size of the training splits")
    return row("excess risk of ridge toward the pooled fit minus separate per-group ridge, smallest third of groups "
               "(paired over seeds)", **dict(gains["separate"], verdict=worst(*parts.values())), note=note
               + f"; smallest effect of interest {sesoi:.3g} = {RISK_SESOI:.0%} of the separate fits' excess risk there")
