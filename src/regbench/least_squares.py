"""Implicit regularization on least squares: early-stopped GD, input-noise injection,
dropout on a linear model, and the bias-variance decomposition of predictions.

Conventions (float64 numpy throughout, no intercept: center X and y first):

    data loss   L(w)       = (1/2n) ||y - X w||^2
    ridge       L(w) + (lam/2) ||w||^2   ->  w_lam = (S + lam I)^-1 b,
                with S = X^T X / n and b = X^T y / n
    GD          w_0 = 0,  w_{t+1} = w_t - eta * (S w_t - b)

With the eigendecomposition S = V diag(s) V^T and z = V^T b, both paths are
spectral filters of z:

    w_T   = V diag( (1 - (1 - eta s)^T) / s ) z      (-> eta*T z where s = 0)
    w_lam = V diag( 1 / (s + lam) ) z

For eta*s << 1, 1 - (1 - eta s)^T ~ 1 - exp(-eta T s), which is close to
s / (s + lam) when lam ~ 1/(eta T): the document's claim (Part 7). The
constant is not exactly 1 and depends on the spectrum; ``gd_vs_ridge``
measures it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from regbench import seeds

__all__ = [
    "spectrum",
    "gd_filter",
    "gd_iterates_loop",
    "gd_coef",
    "ridge_coef",
    "gd_vs_ridge",
    "loglog_slope",
    "best_risk_ratio",
    "expected_noisy_loss",
    "noise_injection",
    "noise_injection_path",
    "noise_fit_path",
    "dropout_fit_path",
    "bias_variance_decomposition",
]


def spectrum(X, y):
    """(s, V, z) with S = X^T X / n = V diag(s) V^T (s ascending, clipped at 0) and z = V^T X^T y / n."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n = X.shape[0]
    s, V = np.linalg.eigh(X.T @ X / n)
    s = np.clip(s, 0.0, None)
    z = V.T @ (X.T @ y / n)
    return s, V, z


def gd_filter(s: np.ndarray, eta: float, T) -> np.ndarray:
    """(1 - (1 - eta s)^T) / s for each T (rows) and eigenvalue s (columns); eta*T where s == 0.

    Computed as -expm1(T log1p(-eta s)) / s where 0 < eta s < 1, which keeps
    full precision for tiny eta*s.
    """
    s = np.asarray(s, np.float64)
    T = np.atleast_1d(np.asarray(T, np.float64))[:, None]
    es = eta * s
    if np.any(es >= 2):
        raise ValueError(f"GD diverges: eta * s_max = {es.max():.3g} >= 2")
    out = np.empty((T.shape[0], s.shape[0]))
    small = s <= 0  # exact zeros (eigh output clipped at 0)
    mid = (~small) & (es < 1)
    big = (~small) & (es >= 1)
    out[:, small] = eta * T
    if mid.any():
        out[:, mid] = -np.expm1(T * np.log1p(-es[mid])) / s[mid]
    if big.any():
        out[:, big] = (1 - (1 - es[big]) ** T) / s[big]
    return out


def gd_coef(X, y, eta: float, T) -> np.ndarray:
    """GD iterates from 0 after each T in ``T`` via the closed form: [len(T), p]."""
    s, V, z = spectrum(X, y)
    return (gd_filter(s, eta, T) * z) @ V.T


def gd_iterates_loop(X, y, eta: float, steps) -> np.ndarray:
    """GD iterates by the explicit loop w <- w - eta * X^T (X w - y) / n, at each T in ``steps``: [len(steps), p]."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n, p = X.shape
    steps = [int(t) for t in np.atleast_1d(steps)]
    want = set(steps)
    w = np.zeros(p)
    got = {}
    if 0 in want:
        got[0] = w.copy()
    for t in range(1, max(steps) + 1):
        w = w - eta * (X.T @ (X @ w - y)) / n
        if t in want:
            got[t] = w.copy()
    return np.stack([got[t] for t in steps])


def ridge_coef(X, y, lam) -> np.ndarray:
    """Ridge solution(s) in the (1/2n)||y - Xw||^2 + (lam/2)||w||^2 convention: [len(lam), p] (or [p] for scalar lam)."""
    s, V, z = spectrum(X, y)
    lam_arr = np.atleast_1d(np.asarray(lam, np.float64))
    W = (z / (s[None, :] + lam_arr[:, None])) @ V.T
    return W[0] if np.ndim(lam) == 0 else W


def _risk_eig(A: np.ndarray, bt: np.ndarray | None, M: np.ndarray | None) -> np.ndarray:
    """(a - bt)^T M (a - bt) for each row a of A (eigenbasis coordinates)."""
    if bt is None or M is None:
        return np.full(A.shape[0], np.nan)
    D = A - bt
    return np.einsum("ij,jk,ik->i", D, M, D)


def _default_lambdas(s: np.ndarray, eta: float, steps) -> np.ndarray:
    T = np.asarray(steps, np.float64)
    T = T[T > 0]
    pos = s[s > 0]
    # GD converges geometrically once eta*T*s_min >> 1 and the matching lambda
    # then collapses like s_min * exp(-eta T s_min): reach far below the spectrum.
    lo = min(1.0 / (eta * T.max()), pos.min() if pos.size else np.inf) * 1e-12
    hi = max(1.0 / (eta * T.min()), s.max()) * 1e3
    return np.logspace(np.log10(lo), np.log10(hi), 3001)


def gd_vs_ridge(X, y, eta: float, steps, beta=None, Sigma=None, lambdas=None,
                refine: bool = True) -> pd.DataFrame:
    """For each T in ``steps``: the ridge lambda whose solution is closest (Euclidean) to w_T.

    The search runs over a log grid of lambdas (``lambdas``; default 3001 points
    from 1e-12 * min(1/(eta T_max), s_min) to 1e3 * max(1/(eta T_min), s_max))
    using one eigendecomposition, then (``refine``) a bounded scalar
    minimisation in log lambda between the grid neighbours of the best point.

    Expect ratio ~ 1 early, ~0.6 inside the spectrum, and -> 0 late: for one
    eigenvalue the match 1 - exp(-eta T s) = s / (s + lam) gives
    lam * eta * T = x / (e^x - 1) with x = eta T s; late on GD has converged
    (geometrically) to least squares and lambda collapses exponentially.

    Columns: T, eta, inv_eta_T (= 1/(eta T)), lambda_closest, ratio
    (= lambda_closest * eta * T; the claim says ~1), distance (||w_T - w_lam||),
    rel_distance (distance / ||w_T||), at_grid_edge (best lambda on the grid's
    boundary: widen the grid, or GD has converged to least squares), regime
    ("early": 1/(eta T) > s_max, "within": s_min <= 1/(eta T) <= s_max,
    "late": 1/(eta T) < s_min, with s the eigenvalues of X^T X / n, s_min the
    smallest positive one), gd_risk, ridge_risk (at lambda_closest) --
    excess risks (w - beta)^T Sigma (w - beta), NaN unless beta and Sigma are
    given (Sigma = population covariance of the rows of X).
    """
    s, V, z = spectrum(X, y)
    steps = np.atleast_1d(np.asarray(steps))
    if np.any(steps <= 0):
        raise ValueError("steps must be positive (w_0 = 0 matches lambda = infinity)")
    lambdas = _default_lambdas(s, eta, steps) if lambdas is None else np.sort(np.asarray(lambdas, np.float64))
    G = gd_filter(s, eta, steps)                       # [nT, p]
    R = 1.0 / (s[None, :] + lambdas[:, None])          # [nL, p]
    z2 = z ** 2
    bt = M = None
    if beta is not None and Sigma is not None:
        bt = V.T @ np.asarray(beta, np.float64)
        M = V.T @ np.asarray(Sigma, np.float64) @ V

    def dist2(g_row, lam):
        return float(np.sum(z2 * (g_row - 1.0 / (s + lam)) ** 2))

    s_hi = float(s.max())
    s_lo = float(s[s > 1e-12 * s_hi].min())
    rows = []
    for i, T in enumerate(steps):
        g = G[i]
        d2 = ((g[None, :] - R) ** 2) @ z2                 # [nL]
        k = int(np.argmin(d2))
        lam_best, d2_best = lambdas[k], d2[k]
        edge = k == 0 or k == len(lambdas) - 1
        if refine and not edge:
            lo, hi = np.log(lambdas[k - 1]), np.log(lambdas[k + 1])
            res = minimize_scalar(lambda u: dist2(g, np.exp(u)), bounds=(lo, hi), method="bounded",
                                  options={"xatol": 1e-10})
            if res.fun <= d2_best:
                lam_best, d2_best = float(np.exp(res.x)), float(res.fun)
        a_gd = g * z
        a_r = z / (s + lam_best)
        norm_gd = float(np.sqrt(np.sum(a_gd ** 2)))
        rows.append({
            "T": int(T),
            "eta": float(eta),
            "inv_eta_T": 1.0 / (eta * T),
            "lambda_closest": float(lam_best),
            "ratio": float(lam_best * eta * T),
            "distance": float(np.sqrt(max(d2_best, 0.0))),
            "rel_distance": float(np.sqrt(max(d2_best, 0.0)) / norm_gd) if norm_gd > 0 else np.nan,
            "at_grid_edge": bool(edge),
            "regime": ("early" if 1.0 / (eta * T) > s_hi else
                       "late" if 1.0 / (eta * T) < s_lo else "within"),
            "gd_risk": float(_risk_eig(a_gd[None, :], bt, M)[0]),
            "ridge_risk": float(_risk_eig(a_r[None, :], bt, M)[0]),
        })
    return pd.DataFrame(rows)


def loglog_slope(df: pd.DataFrame, regimes=("early", "within")) -> float:
    """Slope of log(lambda_closest) on log(1/(eta T)) in a ``gd_vs_ridge`` table (the claim: 1).

    Only rows whose ``regime`` is in ``regimes`` and that are not at the grid
    edge are used (default: leave out "late", where GD has converged and the
    matched lambda collapses exponentially, not as a power of T). Pass
    regimes=None for all rows. NaN if fewer than 2 rows qualify.
    """
    d = df[~df["at_grid_edge"]]
    if regimes is not None:
        d = d[d["regime"].isin(list(regimes))]
    if len(d) < 2:
        return float("nan")
    return float(np.polyfit(np.log(d["inv_eta_T"]), np.log(d["lambda_closest"]), 1)[0])


def best_risk_ratio(X, y, eta: float, beta, Sigma, T_max: int | None = None, n_T: int = 3000,
                    lambdas=None) -> dict:
    """min over T of GD excess risk / min over lambda of ridge excess risk.

    GD risk is evaluated in closed form at T = 0 and at ``n_T`` log-spaced
    integers up to ``T_max`` (default: 20 / (eta * smallest positive
    eigenvalue), capped at 1e7, i.e. until GD has essentially converged); ridge
    risk on a 3001-point log grid of lambdas (plus lambda = infinity, i.e.
    w = 0), refined by bounded scalar minimisation around the best grid point.

    Returns dict: gd_best_risk, gd_best_T, ridge_best_risk, ridge_best_lambda,
    ratio (gd / ridge; >= 1 means ridge's best beats GD's best), null_risk
    (risk of w = 0), gd_best_T_inv_eta (1/(eta * gd_best_T)).
    Known result for comparison (Ali, Kolter & Tibshirani 2019, gradient
    flow): GD risk at time t is within a factor 1.6862 of ridge risk at
    lambda = 1/t, so the ratio of the two optima lies well inside that.
    """
    s, V, z = spectrum(X, y)
    bt = V.T @ np.asarray(beta, np.float64)
    M = V.T @ np.asarray(Sigma, np.float64) @ V
    pos = s[s > 1e-12 * s.max()]
    if T_max is None:
        T_max = int(min(1e7, np.ceil(20.0 / (eta * pos.min()))))
    Ts = np.unique(np.round(np.logspace(0, np.log10(T_max), n_T)).astype(np.int64))
    gd_risk = np.empty(len(Ts))
    for start in range(0, len(Ts), 500):
        chunk = Ts[start:start + 500]
        gd_risk[start:start + 500] = _risk_eig(gd_filter(s, eta, chunk) * z, bt, M)
    null_risk = float(bt @ M @ bt)
    j = int(np.argmin(gd_risk))
    gd_best, gd_T = float(gd_risk[j]), int(Ts[j])
    if null_risk <= gd_best:
        gd_best, gd_T = null_risk, 0

    if lambdas is None:
        lambdas = np.logspace(np.log10(pos.min()) - 6, np.log10(s.max()) + 6, 3001)
    lambdas = np.sort(np.asarray(lambdas, np.float64))
    r_risk = _risk_eig(z[None, :] / (s[None, :] + lambdas[:, None]), bt, M)
    k = int(np.argmin(r_risk))
    r_best, r_lam = float(r_risk[k]), float(lambdas[k])
    if 0 < k < len(lambdas) - 1:
        f = lambda u: float(_risk_eig((z / (s + np.exp(u)))[None, :], bt, M)[0])
        res = minimize_scalar(f, bounds=(np.log(lambdas[k - 1]), np.log(lambdas[k + 1])),
                              method="bounded", options={"xatol": 1e-10})
        if res.fun < r_best:
            r_best, r_lam = float(res.fun), float(np.exp(res.x))
    if null_risk <= r_best:
        r_best, r_lam = null_risk, float("inf")
    return {
        "gd_best_risk": gd_best,
        "gd_best_T": gd_T,
        "gd_best_T_inv_eta": 1.0 / (eta * gd_T) if gd_T > 0 else float("inf"),
        "ridge_best_risk": r_best,
        "ridge_best_lambda": r_lam,
        "ratio": gd_best / r_best if r_best > 0 else float("nan"),
        "null_risk": null_risk,
    }


# ---------------------------------------------------------------- N15: input-noise injection

def expected_noisy_loss(X, y, w, noise_sd) -> float:
    """Closed form of E_E[(1/2n) ||y - (X + E) w||^2] for E with iid N(0, sd_j^2) entries in column j.

    Row i contributes (y_i - x_i w - e_i w)^2 with e_i w ~ N(0, sum_j sd_j^2 w_j^2)
    independent of everything else and mean 0, so the cross term vanishes and

        E[...] = (1/2n) ||y - X w||^2 + (1/2) sum_j sd_j^2 w_j^2,

    i.e. ridge with lam = sd^2 in the (lam/2)||w||^2 convention (per-feature
    lam_j = sd_j^2 for a vector sd). The identity holds for any X; standardize
    X so that one isotropic sd means the same relative noise on every feature.
    """
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    w = np.asarray(w, np.float64)
    sd2 = np.broadcast_to(np.asarray(noise_sd, np.float64) ** 2, w.shape)
    r = y - X @ w
    return float(r @ r / (2 * len(y)) + 0.5 * np.sum(sd2 * w ** 2))


def _noise_stream(seed: int, n: int, p: int):
    """Prefix-stable noise copies: copy k is the same array whatever the total count."""
    r = seeds.rng(seed, "implicit", "noise_injection", n, p)
    while True:
        yield r.standard_normal((n, p))


def _noisy_fits(X, y, noise_sd, copies, seed: int):
    """Yield (K, w_noise) for each K in sorted ``copies``, accumulating the normal equations once."""
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n, p = X.shape
    sd = np.broadcast_to(np.asarray(noise_sd, np.float64), (p,))
    A = np.zeros((p, p))
    b = np.zeros(p)
    stream = _noise_stream(seed, n, p)
    done = 0
    for K in sorted(int(k) for k in copies):
        if K < 1:
            raise ValueError("n_copies must be >= 1")
        while done < K:
            Xk = X + next(stream) * sd
            A += Xk.T @ Xk
            b += Xk.T @ y
            done += 1
        yield K, np.linalg.solve(A / (n * K), b / (n * K))


def _matched_ridge(X, y, noise_sd):
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n, p = X.shape
    lam = np.broadcast_to(np.asarray(noise_sd, np.float64) ** 2, (p,))
    return lam, np.linalg.solve(X.T @ X / n + np.diag(lam), X.T @ y / n)


def noise_injection(X, y, noise_sd, n_copies: int, seed: int) -> dict:
    """Least squares on ``n_copies`` noisy replicas of X vs ridge at the matched lam = noise_sd^2.

    Noisy fit: minimise (1/(2 n K)) sum_k ||y - (X + E_k) w||^2 with E_k iid
    N(0, noise_sd^2) (noise_sd a scalar or one sd per column), solved from the
    accumulated normal equations. Replica k uses the same standard-normal draw
    for every n_copies and every noise_sd (common random numbers), so a
    larger n_copies extends a smaller one.

    Ridge: (S + diag(noise_sd^2)) w = b (see ``expected_noisy_loss`` for the
    derivation). The noisy fit converges to it as n_copies grows; the gap
    shrinks roughly like 1/sqrt(n * n_copies).

    Returns dict: w_noise [p], w_ridge [p], lam (scalar, or [p] for a vector
    noise_sd), gap (||w_noise - w_ridge||), rel_gap (gap / ||w_ridge||), n_copies.
    """
    lam, w_ridge = _matched_ridge(X, y, noise_sd)
    (_, w_noise), = _noisy_fits(X, y, noise_sd, [n_copies], seed)
    gap = float(np.linalg.norm(w_noise - w_ridge))
    return {
        "w_noise": w_noise,
        "w_ridge": w_ridge,
        "lam": float(lam[0]) if np.ndim(noise_sd) == 0 else lam.copy(),
        "gap": gap,
        "rel_gap": gap / float(np.linalg.norm(w_ridge)),
        "n_copies": int(n_copies),
    }


def noise_injection_path(X, y, noise_sd: float, copies, seed: int) -> pd.DataFrame:
    """``noise_injection`` for each count in ``copies`` (one pass, nested replicas).

    DataFrame(n_copies, noise_sd, lam, gap, rel_gap), sorted by n_copies.
    """
    lam, w_ridge = _matched_ridge(X, y, noise_sd)
    norm = float(np.linalg.norm(w_ridge))
    rows = []
    for K, w in _noisy_fits(X, y, noise_sd, copies, seed):
        gap = float(np.linalg.norm(w - w_ridge))
        rows.append({"n_copies": K, "noise_sd": float(noise_sd), "lam": float(lam[0]),
                     "gap": gap, "rel_gap": gap / norm})
    return pd.DataFrame(rows)


def bias_variance_decomposition(preds: np.ndarray, truth: np.ndarray) -> dict:
    """Bias^2, variance and risk of predictions preds [M training sets, q points] against truth [q].

    variance = mean over points of the sample variance over training sets (ddof 1);
    bias2 = mean over points of (mean prediction - truth)^2 - variance / M, the
    unbiased estimate (the squared mean of M draws overshoots the squared bias by
    var/M); risk = mean over sets and points of (pred - truth)^2, which equals
    bias2 + variance exactly with these two estimates. Needs M >= 2.
    """
    P = np.asarray(preds, dtype=float)
    M = P.shape[0]
    if M < 2:
        raise ValueError("bias_variance_decomposition needs at least 2 training sets")
    mean = P.mean(axis=0)
    var = P.var(axis=0, ddof=1)
    bias2_raw = (mean - truth) ** 2
    return {"bias2": float(np.mean(bias2_raw - var / M)), "variance": float(np.mean(var)),
            "risk": float(np.mean((P - truth) ** 2))}


def noise_fit_path(X, y, sds, copies, rng):
    """Least squares on K copies of X + sd * E_k (E_k iid N(0, 1) from `rng`), for every sd and every K in `copies`.

    sum_k (X + sd E_k)'(X + sd E_k) = K X'X + sd (X'S + S'X) + sd^2 Q and
    sum_k (X + sd E_k)' y = K X'y + sd S'y, with S = sum_k E_k and Q = sum_k E_k'E_k:
    one pass over the copies serves every sd (common random numbers) and every K
    (nested: copy k is the same draw whatever the count). With
    rng = seeds.rng(seed, "implicit", "noise_injection", n, p) the draws are those of
    regbench.least_squares.noise_injection(X, y, sd, K, seed). Returns {K: W [len(sds), p]}.
    """
    n, p = X.shape
    S = np.zeros((n, p))
    Q = np.zeros((p, p))
    G, c = X.T @ X, X.T @ y
    out, done = {}, 0
    for K in sorted(int(k) for k in np.atleast_1d(copies)):
        while done < K:
            E = rng.standard_normal((n, p))
            S += E
            Q += E.T @ E
            done += 1
        XS, Sy = X.T @ S, S.T @ y
        out[K] = np.stack([np.linalg.solve(K * G + sd * (XS + XS.T) + sd ** 2 * Q, K * c + sd * Sy) for sd in sds])
    return out


def dropout_fit_path(X, y, rates, copies, rng):
    """Least squares on `copies` inverted-dropout copies of X (entries kept with prob 1-q, scaled 1/(1-q)), per rate q.

    The same uniforms U_k serve every rate (mask = U_k >= q), so the fits along q are
    coupled like a path. In expectation this is ridge with a per-feature penalty
    q/(1-q) * mean(x_j^2) (= q/(1-q) for standardized X).
    """
    n, p = X.shape
    U = [rng.random((n, p)) for _ in range(copies)]
    W = []
    for q in rates:
        A = np.zeros((p, p))
        c = np.zeros(p)
        for u in U:
            Xk = X * (u >= q) / (1 - q)
            A += Xk.T @ Xk
            c += Xk.T @ y
        W.append(np.linalg.solve(A, c))
    return np.stack(W)
