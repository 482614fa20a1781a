"""The linear-penalty study (claims L1-L8), float64, exact solvers."""
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.model_selection import KFold

from regbench import data, linear, seeds, stats
from regbench.config import apply_overrides

# The lasso, elastic-net and ridge of the path figures (l1_ratio of each).
PATH_METHODS = {"lasso": 1.0, "enet": 0.5, "ridge": 0.0}
# Fits that only feed errors and supports (tuning, bootstrap, sweeps) stop at a
# KKT violation of 1e-6 of lambda_max; the KKT claim (L2) checks the paths
# experiment, solved to the solver's default 1e-10.
LOOSE = dict(tol=1e-8, kkt_tol=1e-6)
# Stability selection (L8) reads only the head of the lasso path, where at most
# q features are in; on its design that head ends at 17-24% of lambda_max, so a
# path down to 1% of it always reaches the cut (not a tuned value: no edge check).
STABILITY_EPS = 1e-2
# Ends of a tuning grid where the parameter's own range ends: nothing lies beyond
# them, so a pick there is not on an edge. l1_ratio 0 and 1 are ridge and the
# lasso; lambda limits are in lambda_limits.
L1_RATIO_LIMITS = (0.0, 1.0)


# ---------------------------------------------------------------- helpers
def prepare(d: dict, i: int) -> dict:
    """Seed i's splits standardized on its training split, y centred likewise."""
    Xtr, Xva, Xte = linear.standardize(d["X_train"][i], d["X_val"][i], d["X_test"][i])
    ytr, yva, yte = linear.center(d["y_train"][i], d["y_val"][i], d["y_test"][i])
    scale = d["X_train"][i].std(axis=0)
    return dict(Xtr=Xtr, ytr=ytr, Xva=Xva, yva=yva, Xte=Xte, yte=yte, scale=np.where(scale > 0, scale, 1.0))


def mse(X, y, w) -> float:
    return float(np.mean((y - X @ w) ** 2))


def model_error(w_std, scale, beta, sigma_x) -> float:
    """(beta_hat - beta)' Sigma (beta_hat - beta), on the original feature scale."""
    diff = w_std / scale - beta
    return float(diff @ sigma_x @ diff)


def path(X, y, lambdas, l1_ratio, **solver):
    """W [L, p] on one objective: ridge (l1_ratio 0), enet or the lasso (1); lam = 0 is
    least squares (minimum-norm when p > n), where every path ends."""
    if l1_ratio == 0.0:
        return linear.ridge_path(X, y, lambdas)
    lam = np.atleast_1d(np.asarray(lambdas, dtype=float))
    W = np.empty((lam.size, X.shape[1]))
    zero = lam == 0  # coordinate descent at lam = 0 crawls; least squares is exact
    W[zero] = linear.ols(X, y)
    if (~zero).any():
        W[~zero] = linear.enet_path(X, y, lam[~zero], l1_ratio, **solver)
    return W


def on_edge(grid, pick, limits=()) -> float:
    """1.0 when `pick` is the smallest or largest value of its grid and that end is
    not one of `limits` (ends of the parameter's own range), 0.0 otherwise; nan
    for a one-value grid (nothing was tuned).

    A pick on an open end means the best value may lie outside the grid: the
    method was compared at a handicap, and the grid should be wider.
    """
    grid = np.asarray(grid, dtype=float)
    if grid.size < 2:
        return np.nan
    return float(pick in {grid.min(), grid.max()} - {float(v) for v in limits})


def tuning_lambdas(s: dict, a: float, params: dict) -> np.ndarray:
    """The lambdas tried at l1_ratio a, decreasing: ridge's own grid, scaled to the
    eigenvalues of X'X/n, ending at 0 (a = 0); or the lasso / enet path from
    lambda_max down to lambda_min_ratio * lambda_max (glmnet's default floor when
    the key is null), then 0 when n > p.

    With n > p (full column rank) every path ends at least squares, so lam = 0
    closes the grid: on a dense truth with little noise the validation error
    still falls below 1e-4 lambda_max (measured: the lasso sat on that floor in
    up to 60% of the seeds of n_train 20-50, p 8). With p >= n, lam = 0 would be
    an interpolating fit that is not unique for the lasso: the floor stays open.
    """
    X = s["Xtr"]
    if a == 0:
        return linear.ridge_grid(X, params["n_ridge_lambdas"], params["ridge_min_ratio"], params["ridge_max_ratio"])
    ratio = params["lambda_min_ratio"] or linear.lambda_min_ratio(*X.shape)
    grid = linear.lambda_grid(X, s["ytr"], a, params["n_lambdas"], eps=ratio)
    return np.append(grid, 0.0) if X.shape[0] > X.shape[1] else grid


def lambda_limits(a: float, lambdas: np.ndarray) -> tuple:
    """The ends of a lambda grid that are limits of lambda's range: lambda_max (the
    first) of a lasso / enet path, where w = 0 for it and every larger lambda, and
    0 (least squares). The top of ridge's grid only nears the all-zero fit, so it
    stays an open edge."""
    return (lambdas[0], 0.0) if a > 0 else (0.0,)


def _val_errors(method, Xtr, ytr, Xva, yva, lambdas, l1_ratio):
    if method == "ols":
        return np.array([mse(Xva, yva, linear.ols(Xtr, ytr))])
    W = path(Xtr, ytr, lambdas, l1_ratio, **LOOSE)
    return ((yva[None, :] - W @ Xva.T) ** 2).mean(axis=1)


def _tuning_curve(method, s, params, rng, lambdas, a) -> np.ndarray:
    """Validation (or mean k-fold CV) error per lambda at l1_ratio a."""
    if params["tuning"] != "cv":
        return _val_errors(method, s["Xtr"], s["ytr"], s["Xva"], s["yva"], lambdas, a)
    folds = KFold(params["cv_folds"], shuffle=True, random_state=int(rng.integers(2**31))).split(s["Xtr"])
    return np.mean([_val_errors(method, s["Xtr"][i], s["ytr"][i], s["Xtr"][j], s["ytr"][j], lambdas, a) for i, j in folds], axis=0)


def fit_tuned(method: str, s: dict, params: dict, rng) -> tuple[np.ndarray, dict]:
    """Fit one method, its lambda (and l1_ratio for enet) chosen on validation or k-fold CV.

    Returns the weights and the choice: lam, l1_ratio, and whether each tuned
    value sits on an open edge of its grid (lam_on_edge; l1_ratio_on_edge when
    more than one l1_ratio was tried).
    """
    if method == "ols":
        return linear.ols(s["Xtr"], s["ytr"]), {"lam": 0.0, "l1_ratio": np.nan}
    ratios = {"lasso": [1.0], "ridge": [0.0], "enet": params["l1_ratios"]}[method]
    curves = {}
    for a in ratios:
        lambdas = tuning_lambdas(s, a, params)
        curves[a] = (lambdas, _tuning_curve(method, s, params, rng, lambdas, a))
    a = min(curves, key=lambda r: curves[r][1].min())  # ties: the first ratio listed
    lambdas, err = curves[a]
    lam = lambdas[int(np.argmin(err))]
    chosen = {"lam": float(lam), "l1_ratio": float(a), "lam_on_edge": on_edge(lambdas, lam, lambda_limits(a, lambdas))}
    if len(curves) > 1:
        chosen["l1_ratio_on_edge"] = on_edge(list(curves), a, L1_RATIO_LIMITS)
    return path(s["Xtr"], s["ytr"], np.array([lam]), a, **LOOSE)[0], chosen


def _rows(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


# ---------------------------------------------------------------- L1, L2
# The elastic net's oracle (LARS on the ridge-augmented Gram) takes one homotopy path per
# lambda (~0.15 s at p = 100): every ORACLE_EVERY-th lambda of the path is checked.
ORACLE_EVERY = 5
# |gradient| / (lambda a) this close to 1 is the dead zone's edge itself (LARS knots are exact to ~1e-12).
EDGE = 1e-9


def paths(job) -> pd.DataFrame:
    """Lasso / elastic-net / ridge paths on one grid, in units of the lasso lambda_max.

    The grid starts at twice the lasso lambda_max (the enet-0.5 lambda_max), so
    the first lasso solutions must be all zero. The dead zone (L2) is read off an
    independent solver: LARS homotopy (`linear.lars_oracle`), whose zeros are where
    its exact path has not let a coefficient in. Per coefficient: the data-loss
    gradient at the oracle's solution over lambda * a (oracle_ratio; <= 1 inside the
    dead zone), beside coordinate descent's coefficients (coef).
    """
    params, d = job.params, job.data
    out = []
    p = d["beta"].size
    groups = data.group_labels_from(d["beta"], d["Sigma"])
    for i in range(d["X_train"].shape[0]):
        s = prepare(d, i)
        X, y = s["Xtr"], s["ytr"]
        lmax = linear.lambda_max(X, y, 1.0)
        rel = np.geomspace(2.0, 1e-3, params["n_lambdas"])
        for method, a in PATH_METHODS.items():
            W = path(X, y, rel * lmax, a)
            base = dict(experiment="paths", seed=i, method=method, l1_ratio=a)
            out.append(_rows(**base, lam=rel, metric="n_zero", value=(W == 0).sum(axis=1)))
            out.append(_rows(**base, lam=rel, metric="test_mse", value=((s["yte"][None] - W @ s["Xte"].T) ** 2).mean(axis=1)))
            feat, lam_f, grp = np.tile(np.arange(p), rel.size), np.repeat(rel, p), np.tile(groups, rel.size)
            out.append(_rows(**base, lam=lam_f, feature=feat, group=grp, metric="coef", value=W.ravel()))
            if a == 0:
                continue
            out.append(_rows(**base, lam=rel, metric="kkt", value=linear.kkt_violation(X, y, W, rel * lmax, a)))
            k = np.arange(0, rel.size, 1 if a == 1 else ORACLE_EVERY)
            lam = rel[k] * lmax
            O = linear.lars_oracle(X, y, lam, a)
            g = -X.T @ (y[:, None] - X @ O.T) / X.shape[0] + (lam * (1 - a))[None, :] * O.T  # [p, K] at the oracle
            ratio = np.abs(g) / (lam * a)[None, :]
            scale = np.maximum(np.abs(O).max(axis=1), np.finfo(float).tiny)
            # a disagreement counts where one solver has an exact zero and the other a coefficient
            # beyond rounding: one on the zone's edge (entering at this very lambda, as one does at an
            # elastic net's lambda_max) or at a knot of the interpolated path is zero or ~1e-17 either way
            edge = np.abs(ratio.T - 1) < EDGE
            real = lambda V: np.abs(V) > EDGE * scale[:, None]  # noqa: E731
            differ = ((W[k] == 0) & real(O)) | ((O == 0) & real(W[k]))
            out.append(_rows(**base, lam=rel[k], metric=["zero_mismatch"] * k.size, value=(differ & ~edge).sum(axis=1)))
            out.append(_rows(**base, lam=rel[k], metric=["oracle_diff"] * k.size, value=np.abs(W[k] - O).max(axis=1) / scale))
            out.append(_rows(**base, lam=np.repeat(rel[k], p), feature=np.tile(np.arange(p), k.size), metric="oracle_ratio",
                             value=ratio.T.ravel()))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- L3
def orthonormal(job) -> pd.DataFrame:
    """Solver vs closed form (soft thresholding) on X with X'X/n = I."""
    params = job.params
    n, p = params["n"], params["p"]
    out = []
    for i in range(params["seeds"]):
        rng = job.rng(i)
        Q, _ = np.linalg.qr(rng.standard_normal((n, p)))
        X = np.sqrt(n) * Q
        beta = rng.laplace(size=p)
        y = X @ beta + rng.standard_normal(n)
        z = X.T @ y / n
        lambdas = linear.lambda_grid(X, y, 1.0, params["n_lambdas"])
        for method, a in (("lasso", 1.0), ("enet", 0.5)):
            W = linear.enet_path(X, y, lambdas, a)
            closed = linear.soft_threshold(z[None, :], (lambdas * a)[:, None]) / (1 + lambdas * (1 - a))[:, None]
            out.append(_rows(experiment="orthonormal", seed=i, method=method, l1_ratio=a, lam=lambdas,
                             metric="max_abs_diff", value=np.abs(W - closed).max(axis=1)))
            out.append(_rows(experiment="orthonormal", seed=i, method=method, l1_ratio=a, lam=lambdas,
                             metric="n_zero", value=(W == 0).sum(axis=1)))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- L4
def conditioning(job) -> pd.DataFrame:
    """Condition number of X'X/n + lam I vs (s_max + lam)/(s_min + lam); coefficients per resample."""
    params, d = job.params, job.data
    out = []
    lambdas = np.asarray(params["lambdas"], dtype=float)
    for i in range(d["X_train"].shape[0]):
        s = prepare(d, i)
        n = s["Xtr"].shape[0]
        G = s["Xtr"].T @ s["Xtr"] / n
        ev = np.linalg.eigvalsh(G)
        base = dict(experiment="conditioning", seed=i)
        for lam in np.concatenate([[0.0], lambdas]):
            shifted = np.linalg.eigvalsh(G + lam * np.eye(G.shape[0]))
            w = linear.ols(s["Xtr"], s["ytr"]) if lam == 0 else linear.ridge_path(s["Xtr"], s["ytr"], [lam])[0]
            method = "ols" if lam == 0 else "ridge"
            out.append(_rows(**base, method=method, lam=lam,
                             metric=["cond_measured", "cond_formula", "eig_shift_error", "test_mse"],
                             value=[np.linalg.cond(G + lam * np.eye(G.shape[0])), (ev[-1] + lam) / (ev[0] + lam),
                                    np.abs(shifted - ev - lam).max(), mse(s["Xte"], s["yte"], w)]))
            out.append(_rows(**base, method=method, lam=lam, feature=np.arange(w.size), metric="coef", value=w / s["scale"]))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- L5
def _map_gaussian(X, y, sigma, tau):
    # negative log posterior, likelihood N(Xw, sigma^2), prior N(0, tau^2): a generic optimizer
    def f(w):
        r = y - X @ w
        return r @ r / (2 * sigma**2) + w @ w / (2 * tau**2), -X.T @ r / sigma**2 + w / tau**2

    return minimize(f, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options=dict(ftol=1e-15, gtol=1e-10, maxiter=10_000)).x


def _map_laplace(X, y, sigma, b):
    # Laplace prior: split w = u - v with u, v >= 0 so L-BFGS-B sees a smooth bounded problem
    p = X.shape[1]

    def f(uv):
        w = uv[:p] - uv[p:]
        r = y - X @ w
        g = -X.T @ r / sigma**2
        return r @ r / (2 * sigma**2) + uv.sum() / b, np.concatenate([g + 1 / b, -g + 1 / b])

    res = minimize(f, np.zeros(2 * p), jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * p),
                   options=dict(ftol=1e-15, gtol=1e-10, maxiter=20_000))
    return res.x[:p] - res.x[p:]


def bayes_map(job) -> pd.DataFrame:
    """MAP under Gaussian / Laplace priors vs the penalized fit at lam = sigma^2/(n tau^2) (or sigma^2/(n b))."""
    params, d = job.params, job.data
    out = []
    sigma = float(d["sigma"])
    for i in range(d["X_train"].shape[0]):
        s = prepare(d, i)
        n = s["Xtr"].shape[0]
        for scale in params["prior_scales"]:
            lam = sigma**2 / (n * scale**2)
            w_pen = linear.ridge_path(s["Xtr"], s["ytr"], [lam])[0]
            w_map = _map_gaussian(s["Xtr"], s["ytr"], sigma, scale)
            lam1 = sigma**2 / (n * scale)
            w_pen1 = linear.enet_path(s["Xtr"], s["ytr"], np.array([lam1]), 1.0)[0]
            w_map1 = _map_laplace(s["Xtr"], s["ytr"], sigma, scale)
            for prior, a, b, lm in (("gaussian", w_map, w_pen, lam), ("laplace", w_map1, w_pen1, lam1)):
                rel = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
                out.append(_rows(experiment="bayes_map", seed=i, prior=prior, prior_scale=scale, lam=lm,
                                 metric=["max_rel_diff", "n_zero_penalized"], value=[rel, float((b == 0).sum())]))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- L6
def geometry(job) -> pd.DataFrame:
    """Lasso and ridge at matched constraint size on random dense problems, as p grows.

    The truth has no zeros, so any exact zero comes from the shape of the ball. Rows
    grow with p (rows_per_feature * p), so p/n is the same at every p: what changes is
    the dimension, not how well-determined the fit is. Per solution: the share of zero
    coordinates, whether it is 1-sparse (a vertex of the L1 ball: a corner), and
    whether it has any zero.
    """
    params = job.params
    out = []
    for p in params["dims"]:
        rho = params["rho"]
        design = dict(n_train=params["rows_per_feature"] * p, n_val=2, n_test=2, p=p, covariance={"family": "toeplitz", "rho": rho},
                      coef={"values": [1.0] * p}, noise={"sigma": 1.0})
        pop = data.truth(design)
        for i in range(params["seeds"]):
            rng = job.rng(p, i)
            pop["beta"] = rng.standard_normal(p)
            ds = data.sample(design, rng, pop)
            X, y = linear.standardize(ds["X_train"])[0], linear.center(ds["y_train"])[0]
            w_ols = linear.ols(X, y)
            f = params["radius_fraction"]
            w1 = linear.lasso_constrained(X, y, f * np.abs(w_ols).sum())
            w2 = linear.ridge_constrained(X, y, f * np.linalg.norm(w_ols))
            for method, w in (("lasso", w1), ("ridge", w2)):
                out.append(_rows(experiment="geometry", seed=i, p=p, method=method,
                                 metric=["has_zero", "frac_zero", "corner"],
                                 value=[float((w == 0).any()), float((w == 0).mean()), float((w != 0).sum() == 1)]))
            if p == 2 and i == 0:
                # the data of the 2-D picture: Gram, X'y and the three solutions
                G, c = X.T @ X / X.shape[0], X.T @ y / X.shape[0]
                vals = dict(g00=G[0, 0], g01=G[0, 1], g11=G[1, 1], c0=c[0], c1=c[1], yy=y @ y / y.size,
                            ols0=w_ols[0], ols1=w_ols[1], lasso0=w1[0], lasso1=w1[1], ridge0=w2[0], ridge1=w2[1])
                out.append(_rows(experiment="geometry", seed=i, p=p, method="example", metric=list(vals), value=list(vals.values())))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- L7a-e
def grouping(w: np.ndarray, blocks: np.ndarray) -> dict:
    """How one fit treats the correlated groups (blocks: per feature, the source of
    its group, -1 outside every group):

    grouping    mean over source-twin pairs of |w_s - w_t| / (|w_s| + |w_t|): 0 when
                the pair moves together, 1 when one of them is zero. Normalized, so it
                does not shrink just because every weight shrinks; pairs where both
                are zero are left out (nan if every pair is)
    """
    src = np.flatnonzero((blocks >= 0) & (blocks == np.arange(blocks.size)))
    gaps = []
    for i in src:
        tw = np.abs(w[(blocks == i) & (np.arange(blocks.size) != i)])
        s = abs(w[i])
        both = s + tw
        gaps += list(np.abs(s - tw)[both > 0] / both[both > 0])
    mean = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan  # noqa: E731
    return dict(grouping=mean(np.array(gaps, dtype=float)))


def design_blocks(design: dict | None, beta: np.ndarray, sigma_x: np.ndarray) -> np.ndarray:
    """The correlated groups of a design: a twins design's own groups (where ever its
    signal sits), else each true feature with the features it correlates with."""
    if design is not None and design["covariance"]["family"] == "twins":
        return data.twin_groups(design["covariance"], beta.size)
    return data.blocks_from(beta, sigma_x)


def _fit_rows(s, d, params, rng, base, blocks):
    """Tuned fits of every method: errors, supports, grouping, chosen hyper-parameters."""
    beta, true = d["beta"], d["beta"] != 0
    noise = data.group_labels_from(beta, d["Sigma"]) == "noise"
    out, fits = [], {}
    for method in params["methods"]:
        w, chosen = fit_tuned(method, s, params, rng)
        fits[method] = (w, chosen)
        nz = w != 0
        metrics = dict(test_mse=mse(s["Xte"], s["yte"], w), model_error=model_error(w, s["scale"], beta, d["Sigma"]),
                       n_nonzero=nz.sum(), true_pos=(nz & true).sum(), false_pos=(nz & ~true).sum(),
                       noise_zeroed=(~nz[noise]).mean() if noise.any() else np.nan, **grouping(w / s["scale"], blocks),
                       lam=chosen["lam"], l1_ratio=chosen["l1_ratio"],
                       **{k: v for k, v in chosen.items() if k.endswith("_on_edge")})
        out.append(_rows(**base, method=method, metric=list(metrics), value=np.array(list(metrics.values()), dtype=float)))
    return out, fits


def matched_lambda(s: dict, a: float, params: dict, size: int) -> float:
    """The lambda of an l1_ratio-a path (its tuning grid) whose full-data fit keeps the
    number of features closest to `size` (ties: the larger lambda, the sparser fit)."""
    lambdas = tuning_lambdas(s, a, params)
    counts = (path(s["Xtr"], s["ytr"], lambdas, a, **LOOSE) != 0).sum(axis=1)
    return float(lambdas[int(np.argmin(np.abs(counts - size)))])


def stability_rows(s, fits, params, rng, base, groups, freq=True):
    """Bootstrap selections of the tuned lasso and elastic net, and of the elastic net
    at the lambda whose selection size matches the tuned lasso's (setting 'matched'):
    Nogueira stability over all features and over the correlated groups (`groups`:
    per feature true / correlated / noise), mean selection size, the lambda used, and
    (freq) each feature's selection frequency at the tuned values."""
    linked = groups != "noise"
    settings = {m: (fits[m][1]["lam"], fits[m][1]["l1_ratio"]) for m in ("lasso", "enet") if m in fits}
    if len(settings) == 2:  # at equal selection size, so stability cannot come from selecting more or fewer
        a = settings["enet"][1]
        settings["matched"] = (matched_lambda(s, a, params, int((fits["lasso"][0] != 0).sum())), a)
    n, p = s["Xtr"].shape
    picks = {k: np.empty((params["bootstrap"], p), dtype=bool) for k in settings}
    for b in range(params["bootstrap"]):
        idx = rng.integers(0, n, n)
        Xb, yb = linear.standardize(s["Xtr"][idx])[0], linear.center(s["ytr"][idx])[0]
        for k, (lam, a) in settings.items():
            picks[k][b] = path(Xb, yb, np.array([lam]), a, **LOOSE)[0] != 0
    out = []
    for k, z in picks.items():
        method, setting = ("enet", "matched") if k == "matched" else (k, "tuned")
        out.append(_rows(**base, method=method, setting=setting, metric=["stability", "stability_signal", "sel_size", "sel_lam"],
                         value=[stats.nogueira_stability(z), stats.nogueira_stability(z[:, linked]), z.sum(axis=1).mean(),
                                settings[k][0]]))
        if freq and setting == "tuned":
            out.append(_rows(**base, method=method, setting=setting, feature=np.arange(p), group=groups, metric="sel_freq",
                             value=z.mean(axis=0)))
    return out


def problem1(job) -> pd.DataFrame:
    """The document's Problem 1: each method tuned, then bootstrap selection at the tuned hyper-parameters."""
    params, d = job.params, job.data
    out = []
    p = d["beta"].size
    groups = data.group_labels_from(d["beta"], d["Sigma"])
    blocks = design_blocks(job.design, d["beta"], d["Sigma"])
    for i in range(d["X_train"].shape[0]):
        s = prepare(d, i)
        rng = job.rng(i)
        base = dict(experiment="problem1", seed=i)
        rows, fits = _fit_rows(s, d, params, rng, base, blocks)
        out += rows
        for method, (w, _) in fits.items():
            out.append(_rows(**base, method=method, feature=np.arange(p), group=groups, block=blocks,
                             metric="coef", value=w / s["scale"]))
        out += stability_rows(s, fits, params, rng, base, groups)
    return pd.concat(out, ignore_index=True)


def problem1_sweep(job) -> pd.DataFrame:
    """Each tuned method at every grid point of a sweep over design keys (n_train,
    noise.sigma, covariance.r, coef.placement): test errors, grouping and, with
    bootstrap > 0, the selection stability of the lasso and elastic net."""
    params, design, name, points = job.params, job.design, job.params["design"], job.points
    out = []
    for point in points:
        des = apply_overrides(design, point)
        key = ",".join(f"{k}={v}" for k, v in sorted(point.items()))
        pop = data.truth(des)
        blocks = design_blocks(des, pop["beta"], pop["Sigma"])
        groups = data.group_labels_from(pop["beta"], pop["Sigma"])
        for i in range(params["seeds"]):
            ds = data.sample(des, data.stream(job.root, name, key, i), pop)
            d = {k: v[None] for k, v in ds.items() if k.startswith(("X_", "y_"))} | pop
            s = prepare(d, 0)
            # the fitting stream predates Job.rng's per-experiment prefix; kept so the numbers stay the same
            fit_rng = seeds.rng(job.root, "sweep", key, i)
            base = dict(experiment="problem1_sweep", seed=i, **point)
            rows, fits = _fit_rows(s, d, params, fit_rng, base, blocks)
            out += rows
            # ridge's weights per design: L7c reads how evenly they split within each group
            out.append(_rows(**base, method="ridge", feature=np.arange(pop["beta"].size), block=blocks, metric="coef",
                             value=fits["ridge"][0] / s["scale"]))
            if params["bootstrap"] > 0:
                out += stability_rows(s, fits, params, seeds.rng(job.root, "sweep-boot", key, i), base, groups, freq=False)
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- L8
# Feature roles of the failure-mode design (columns of X; the rest is noise).
ROLES = {0: "twin_a", 1: "twin_b", 2: "quadratic", 3: "interaction_a", 4: "interaction_b",
         5: "weak", 6: "weak", 7: "weak", 8: "weak", 9: "weak", 10: "control"}
# The true linear support: the twins, the weak signals and the control.
LINEAR_SUPPORT = (0, 1, 5, 6, 7, 8, 9, 10)


def failure_design(n: int, p: int, rng) -> dict:
    """Known truth where a zero lasso weight misleads:
    y = x0 + x1 (x0, x1 twins, r = 0.9) + (x2^2 - 1) + x3*x4 + 0.3 * (x5 + ... + x9) + x10 + noise.
    x2, x3, x4 matter to y but have no linear effect; x5..x9 are weak linear signals;
    x10, a strong independent linear signal, is the control that a working lasso keeps.
    """
    def draw(m):
        X = rng.standard_normal((m, p))
        X[:, 1] = 0.9 * X[:, 0] + np.sqrt(1 - 0.81) * X[:, 1]
        y = X[:, 0] + X[:, 1] + (X[:, 2] ** 2 - 1) + X[:, 3] * X[:, 4] + 0.3 * X[:, 5:10].sum(axis=1) + X[:, 10] + rng.standard_normal(m)
        return X, y

    out = {}
    for split in data.SPLITS:
        out[f"X_{split}"], out[f"y_{split}"] = draw(n)
    return out


def _expand(X):
    """Squares of every feature and products of the first ten: a basis where x2 and x3*x4 become linear."""
    i, j = np.triu_indices(10, 1)
    return np.hstack([X, X**2, X[:, i] * X[:, j]]), ["sq"] * X.shape[1] + [f"{a}x{b}" for a, b in zip(i, j)]


def failure_modes(job) -> pd.DataFrame:
    params = job.params
    out = []
    n, p = params["n"], params["p"]
    lin_support = np.zeros(p, dtype=bool)
    lin_support[list(LINEAR_SUPPORT)] = True
    for i in range(params["seeds"]):
        rng = job.rng(i)
        raw = failure_design(n, p, rng)
        d = {k: v[None] for k, v in raw.items()}
        s = prepare(d, 0)
        tune = dict(l1_ratios=[], n_lambdas=params["n_lambdas"], lambda_min_ratio=params["lambda_min_ratio"], tuning="validation")
        w, chosen = fit_tuned("lasso", s, tune, rng)
        w_big = path(s["Xtr"], s["ytr"], np.array([5 * chosen["lam"]]), 1.0, **LOOSE)[0]
        base = dict(experiment="failure_modes", seed=i)
        roles = [ROLES.get(j, "noise") for j in range(p)]
        out.append(_rows(**base, setting="tuned", feature=np.arange(p), role=roles, metric="zeroed", value=(w == 0).astype(float)))
        out.append(_rows(**base, setting="lambda_x5", feature=np.arange(p), role=roles, metric="zeroed", value=(w_big == 0).astype(float)))
        out.append(_rows(**base, setting="tuned", metric=["test_mse", "false_pos"],
                         value=[mse(s["Xte"], s["yte"], w), float(((w != 0) & ~lin_support).sum())]))
        out.append(_rows(**base, setting="lambda_x5", metric=["test_mse"], value=[mse(s["Xte"], s["yte"], w_big)]))
        # the same lasso in an expanded basis: do the quadratic and the interaction come back?
        E = {k: _expand(raw[k])[0] for k in ("X_train", "X_val", "X_test")}
        se = prepare({k: (E[k] if k in E else raw[k])[None] for k in raw}, 0)
        we, chosen_e = fit_tuned("lasso", se, tune, rng)
        kept = dict(quadratic=we[p + 2] != 0, interaction=we[2 * p + _pair_index(3, 4)] != 0)
        out.append(_rows(**base, setting="expanded", role=list(kept), metric="kept", value=np.array(list(kept.values()), dtype=float)))
        out.append(_rows(**base, setting="expanded", metric=["test_mse"], value=[mse(se["Xte"], se["yte"], we)]))
        out.append(_rows(**base, setting=["tuned", "expanded"], method="lasso", metric="lam_on_edge",
                         value=[chosen["lam_on_edge"], chosen_e["lam_on_edge"]]))
        # Stability selection (Meinshausen & Buhlmann 2010): half-samples over the
        # head of the path where the full-data lasso keeps at most q features, q set
        # so that E[false selections] <= q^2 / ((2 thr - 1) p) meets the target, but
        # never below the true support's size: a smaller q caps recall by construction.
        thr = params["stability_threshold"]
        q = max(len(LINEAR_SUPPORT), int(np.sqrt(params["expected_false"] * (2 * thr - 1) * p)))
        grid = linear.lambda_grid(s["Xtr"], s["ytr"], 1.0, 50, eps=STABILITY_EPS)
        support = (linear.enet_path(s["Xtr"], s["ytr"], grid, 1.0, **LOOSE) != 0).sum(axis=1)
        grid = grid[: max(1, int(np.flatnonzero(support <= q).max()) + 1)]
        m = s["Xtr"].shape[0]
        freq = np.zeros((grid.size, p))
        union = []
        for b in range(params["bootstrap"]):
            idx = rng.choice(m, m // 2, replace=False)
            Xb, yb = linear.standardize(s["Xtr"][idx])[0], linear.center(s["ytr"][idx])[0]
            picks = linear.enet_path(Xb, yb, grid, 1.0, **LOOSE) != 0
            freq += picks / params["bootstrap"]
            union.append(picks.any(axis=0).sum())
        stable = freq.max(axis=0) >= thr
        bound = np.mean(union) ** 2 / ((2 * thr - 1) * p)
        out.append(_rows(**base, setting="stability", feature=np.arange(p), role=roles, metric="sel_freq", value=freq.max(axis=0)))
        out.append(_rows(**base, setting="stability", metric=["false_pos", "true_pos", "recall", "mb_bound", "q"],
                         value=[float((stable & ~lin_support).sum()), float((stable & lin_support).sum()),
                                float((stable & lin_support).mean() / lin_support.mean()), bound, float(q)]))
    return pd.concat(out, ignore_index=True)


def _pair_index(a: int, b: int) -> int:
    i, j = np.triu_indices(10, 1)
    return int(np.flatnonzero((i == a) & (j == b))[0])


# ---------------------------------------------------------------- L9
GROUP_METHODS = ("separate", "global", "pooled", "shrink")


def group_sizes(params: dict) -> np.ndarray:
    """Training rows per group: geometric from min_size to max_size (same in every seed)."""
    return np.unique(np.round(np.geomspace(params["min_size"], params["max_size"], params["n_groups"])).astype(int))


def ridge_toward(X, y, lam, w0) -> np.ndarray:
    """argmin ||y - X w||^2 / n + lam ||w - w0||^2, for every lam (rows): ridge on the residual of w0."""
    return w0 + linear.ridge_path(X, y - X @ w0, lam)


def groups(job) -> pd.DataFrame:
    """L9: many groups of very different sizes, each with its own truth beta_g = beta + delta_g.

    Per group, ridge fits with the group's own validation-tuned lambda (separate),
    one lambda for every group tuned on the pooled validation error (global), one
    pooled fit ignoring the groups (pooled), and ridge toward the pooled fit with
    one strength tuned on the pooled validation error (shrink). X ~ N(0, I), so a
    fit's excess risk is exactly ||w - beta_g||^2. The oracle lambda of a separate
    fit is the grid value with the least excess risk: what "the per-group optimum"
    means, known here because the truth is.
    """
    params = job.params
    sizes, p = group_sizes(params), params["p"]
    grid = np.geomspace(params["min_lambda"], params["max_lambda"], params["n_lambdas"])
    # tuning may also choose no shrinkage at all (least squares: every group has n > p), the
    # natural end of lambda's range, so a large group is never held at the grid's floor
    tune = np.append(grid, 0.0)
    out = []
    for i in range(params["seeds"]):
        rng = job.rng(i)
        beta = rng.standard_normal(p)
        betas = beta + params["tau"] * rng.standard_normal((sizes.size, p))
        draw = lambda n, b: (lambda X: (X, X @ b + params["sigma"] * rng.standard_normal(n)))(rng.standard_normal((n, p)))  # noqa: E731
        train = [draw(n, b) for n, b in zip(sizes, betas)]
        val = [draw(n, b) for n, b in zip(sizes, betas)]
        sse = lambda W, g: ((val[g][1][None, :] - W @ val[g][0].T) ** 2).sum(axis=1)  # noqa: E731  per lambda
        sep = [linear.ridge_path(*train[g], tune) for g in range(sizes.size)]            # [L, p] per group
        Xp, yp = np.vstack([t[0] for t in train]), np.concatenate([t[1] for t in train])
        pool_path = linear.ridge_path(Xp, yp, tune)
        j_pooled = int(np.argmin(sum(sse(pool_path, g) for g in range(sizes.size))))
        pooled = pool_path[j_pooled]
        shr = [ridge_toward(*train[g], tune, pooled) for g in range(sizes.size)]
        j_global = int(np.argmin(sum(sse(sep[g], g) for g in range(sizes.size))))
        j_shrink = int(np.argmin(sum(sse(shr[g], g) for g in range(sizes.size))))
        for g, n in enumerate(sizes):
            risk = lambda w: float(((w - betas[g]) ** 2).sum())  # noqa: E731
            j_sep = int(np.argmin(sse(sep[g], g)))
            fits = {"separate": sep[g][j_sep], "global": sep[g][j_global], "pooled": pooled, "shrink": shr[g][j_shrink]}
            base = dict(experiment="groups", seed=i, group=g, n_group=int(n))
            out.append(_rows(**base, method=list(fits), metric="excess_risk", value=[risk(w) for w in fits.values()]))
            # the oracle over the positive grid: L9's trend is a log-log slope (a floor pick clips it toward 0)
            oracle = grid[int(np.argmin(((sep[g][:grid.size] - betas[g]) ** 2).sum(axis=1)))]
            out.append(_rows(**base, method=["separate", "global", "shrink", "separate"],
                             metric=["lam", "lam", "lam", "oracle_lam"],
                             value=[tune[j_sep], tune[j_global], tune[j_shrink], oracle]))
            out.append(_rows(**base, method=["separate"], metric="lam_on_edge", value=[on_edge(tune, tune[j_sep], (0.0,))]))
        shared = {"global": j_global, "pooled": j_pooled, "shrink": j_shrink}  # one pick per seed
        out.append(_rows(experiment="groups", seed=i, method=list(shared), metric="lam_on_edge",
                         value=[on_edge(tune, tune[j], (0.0,)) for j in shared.values()]))
    return pd.concat(out, ignore_index=True)


RUNNERS = {f.__name__: f for f in (paths, orthonormal, conditioning, bayes_map, geometry, problem1, problem1_sweep,
                                    failure_modes, groups)}
