"""Float64 linear-model solvers: lasso, ridge and elastic net on one objective.

Every function uses scikit-learn's ElasticNet convention, a = l1_ratio in [0, 1]:

    f(w) = 1/(2n) ||y - Xw||^2 + lam*a*||w||_1 + lam*(1-a)/2 * ||w||^2

a = 1 is the lasso, a = 0 ridge. No intercept: callers standardize X on the
training split (`standardize`) and center y (`center`) first.

scikit-learn is the engine (coordinate descent with the Gram matrix, LARS);
the checks of its answers are `kkt_violation`, `duality_gap` and the closed
forms in tests/test_linear.py.
"""
import warnings

import numpy as np
from scipy.optimize import brentq
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import enet_path as _sk_enet_path
from sklearn.linear_model import lars_path, lars_path_gram


def standardize(X_train, *others):
    """Center and scale every array by the training columns' mean and sd.

    Statistics are over the sample axis (-2), so a stack [seeds, n, p] is
    standardized per seed. A constant training column gets scale 1 and is
    centered to exact zeros. Returns a tuple (Xs_train, *Xs_others).
    """
    X_train = np.asarray(X_train, dtype=float)
    mean = X_train.mean(axis=-2, keepdims=True)
    sd = X_train.std(axis=-2, keepdims=True)
    const = np.ptp(X_train, axis=-2, keepdims=True) == 0
    mean = np.where(const, X_train[..., :1, :], mean)  # exact, not a rounded sum/n
    sd = np.where(const, 1.0, sd)
    return tuple((np.asarray(X, dtype=float) - mean) / sd for X in (X_train, *others))


def center(y_train, *others):
    """Subtract the training mean (over the last axis) from every array; a tuple."""
    y_train = np.asarray(y_train, dtype=float)
    mean = y_train.mean(axis=-1, keepdims=True)
    return tuple(np.asarray(y, dtype=float) - mean for y in (y_train, *others))


def soft_threshold(z, t):
    """sign(z) * max(|z| - t, 0): the proximal operator of t*||.||_1."""
    z = np.asarray(z, dtype=float)
    return np.sign(z) * np.maximum(np.abs(z) - t, 0.0)


def lambda_max(X, y, l1_ratio=1.0):
    """max|X^T y| / (n * l1_ratio): the smallest lam whose solution is all zero."""
    if l1_ratio <= 0:
        raise ValueError("lambda_max: l1_ratio = 0 (ridge) has no finite lam with an all-zero solution")
    return float(np.max(np.abs(X.T @ y)) / (X.shape[0] * l1_ratio))


def lambda_grid(X, y, l1_ratio=1.0, n_lambdas=50, eps=1e-3):
    """Geometric grid, decreasing, from lambda_max down to eps * lambda_max.

    For ridge (l1_ratio = 0) lambda_max does not exist; the lasso grid
    (l1_ratio = 1) is used, so lasso, ridge and enet paths share the same lams.
    """
    lmax = lambda_max(X, y, l1_ratio if l1_ratio > 0 else 1.0)
    return np.geomspace(lmax, eps * lmax, n_lambdas)


def lambda_min_ratio(n, p):
    """glmnet's default floor of a lasso / elastic-net path, as a fraction of lambda_max:
    1e-4 when n > p, 1e-2 otherwise.

    With more rows than columns the path can run close to least squares; with
    p >= n it heads for an interpolating fit that coordinate descent crawls
    towards and that no validation split prefers. glmnet's code writes
    ifelse(nobs < nvars, 1e-2, 1e-4), so it puts n = p with n > p; here n = p
    goes with p > n (as in h2o's GLM), because callers center X on its rows, so
    rank(X) <= n - 1 < p and the path's low end already interpolates.
    """
    return 1e-4 if n > p else 1e-2


def ridge_grid(X, n_lambdas=100, min_ratio=1e-4, max_ratio=1e3):
    """Ridge grid, decreasing: n_lambdas geometric values from max_ratio * s_max down
    to min_ratio * s_min (s the non-zero eigenvalues of X^T X / n), then 0.

    Ridge keeps the share s_k / (s_k + lam) of the least-squares fit along
    eigenvector k. At lam = 1e3 s_max every direction keeps under 0.1% of it
    (the all-zero fit, nearly); at lam = 1e-4 s_min every direction keeps over
    99.99%, and lam = 0 is least squares itself (minimum-norm when p > n), the
    end of ridge's range. So the default grid spans the whole path whatever the
    scale or conditioning of X, which a grid in units of the lasso's lambda_max
    (max|X^T y|/n, another quantity) does not: ridge's best lambda can lie above
    its top, and least squares below its bottom.
    """
    s = _eig(X, np.zeros(X.shape[0]))[0]
    return np.append(np.geomspace(max_ratio * s[-1], min_ratio * s[0], n_lambdas), 0.0)


def _eig(X, y):
    """Eigenpairs (s, V) of X^T X / n and b = V^T X^T y / n, without the
    numerical null space of X (eigenvalues <= p * eps * s_max): there b is
    zero in exact arithmetic, and keeping rounding noise there would blow up
    as lam -> 0. Ridge for every lam, and min-norm OLS at lam = 0, follow."""
    n, p = X.shape
    s, V = np.linalg.eigh(X.T @ X / n)
    keep = s > p * np.finfo(float).eps * max(s[-1], 0.0)
    s, V = s[keep], V[:, keep]
    return s, V, V.T @ (X.T @ y) / n


def ridge_path(X, y, lambdas):
    """W [L, p] with W[i] = (X^T X/n + lam_i I)^-1 X^T y/n, all lams from one eigh."""
    s, V, b = _eig(X, y)
    lam = np.atleast_1d(np.asarray(lambdas, dtype=float))
    return (b / (s + lam[:, None])) @ V.T


def enet_path(X, y, lambdas, l1_ratio, tol=1e-12, max_iter=100_000, kkt_tol=1e-10):
    """W [L, p]: the minimizers of f at each lam (rows in the order of `lambdas`).

    scikit-learn's coordinate descent with the Gram matrix X^T X precomputed,
    warm-started along the lams sorted in decreasing order. sklearn's alpha is
    our lam exactly (same objective). l1_ratio = 0 goes to `ridge_path`.
    Zeros are exact (0.0): the soft threshold sets them.

    `tol` is sklearn's: stop when the largest coordinate update is <= tol *
    max|w| and the duality gap is <= tol * ||y||^2 / n. A gap test cannot
    certify small KKT violations (the gap is quadratic in them: just below
    lambda_max, w = 0 passes a 1e-12 gap test with a 1e-6 KKT violation), so
    every lam whose kkt_violation exceeds `kkt_tol` gets more coordinate
    descent sweeps from where it stopped, without the gap test (tol = 0), in
    doubling rounds (10, 20, 40, ... up to max_iter) until it is below. At
    tol = 1e-12 this is rare; at a loose tol (1e-6) it is most of the run time.
    Measured on the designs of tests/test_linear.py (twins, n=200, p=100 and
    its p > n version, n=60), 50-lam paths: max kkt_violation 8e-13 (lasso and
    enet, n > p), 7e-11 (lasso, p > n, where CD needs ~2e4 sweeps at small
    lam). A warning is raised if any lam still exceeds max(kkt_tol, 1e-8).
    """
    if l1_ratio == 0:
        return ridge_path(X, y, lambdas)
    X = np.asarray(X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    lam = np.atleast_1d(np.asarray(lambdas, dtype=float))
    order = np.argsort(-lam, kind="stable")
    gram = np.ascontiguousarray(X.T @ X)
    Xy = np.ascontiguousarray(X.T @ y)

    def solve(alphas, **kw):
        return _sk_enet_path(X, y, l1_ratio=l1_ratio, alphas=alphas, precompute=gram, Xy=Xy,
                             check_input=False, **kw)[1].T

    W = np.empty((lam.size, X.shape[1]))
    with warnings.catch_warnings():  # the gap test can stall in rounding; KKT decides below
        warnings.simplefilter("ignore", ConvergenceWarning)
        W[order] = solve(lam[order], tol=tol, max_iter=max_iter)
    kkt = lambda i: _kkt(gram, Xy, len(y), W[i], lam[i], l1_ratio)  # noqa: E731
    for i in np.flatnonzero(kkt(slice(None)) > kkt_tol):
        sweeps = 10
        while sweeps <= max_iter:  # no gap test; 10, 20, 40, ... sweeps until KKT holds
            with warnings.catch_warnings():  # tol = 0 runs all the sweeps, then warns
                warnings.simplefilter("ignore", ConvergenceWarning)
                W[i] = solve(lam[i:i + 1], coef_init=W[i].copy(), tol=0.0, max_iter=sweeps)[0]
            if kkt(i) <= kkt_tol:
                break
            sweeps *= 2
    worst = kkt(slice(None)).max(initial=0.0)
    if worst > max(kkt_tol, 1e-8):  # a caller asking for less accuracy gets no warning for it
        warnings.warn(f"enet_path: KKT violation {worst:.1e} above kkt_tol = {kkt_tol:g} after polishing", ConvergenceWarning)
    return W


def ols(X, y):
    """Least squares via lstsq: the minimum-norm solution when X is rank deficient."""
    return np.linalg.lstsq(X, y, rcond=None)[0]


def objective(X, y, w, lam, l1_ratio):
    """f(w) at lam; w [p] gives a float, W [L, p] with lams [L] gives [L]."""
    W, lam, a = np.atleast_2d(w), np.atleast_1d(lam), l1_ratio
    R = y - W @ X.T
    f = (0.5 * np.sum(R**2, axis=1) / len(y) + lam * a * np.abs(W).sum(1)
         + 0.5 * lam * (1 - a) * np.sum(W**2, axis=1))
    return float(f[0]) if np.ndim(w) == 1 else f


def duality_gap(X, y, w, lam, l1_ratio):
    """f(w) - D(theta) >= 0 with the dual point built from the residual R = y - Xw.

    Fenchel dual of the n-scaled problem 1/2||y - Xw||^2 + A||w||_1 + B/2||w||^2
    (A = n*lam*a, B = n*lam*(1-a)): D(t) = t^T y - ||t||^2/2 - sum_j (|X_j^T t| - A)_+^2 / (2B).
    B > 0 (enet, ridge): t = R, no constraint. B = 0 (lasso): t = s*R with
    s = min(1, A / max|X^T R|), rescaled to be feasible (|X^T t| <= A).
    Returned on the scale of f (divided by n); same shapes as `objective`.
    """
    W, lam, a = np.atleast_2d(w), np.atleast_1d(lam), l1_ratio
    n = len(y)
    A, B = n * lam * a, n * lam * (1 - a)
    R = y - W @ X.T
    XtR = R @ X
    if a < 1:
        excess = np.maximum(np.abs(XtR) - A[:, None], 0.0)
        dual = R @ y - 0.5 * np.sum(R**2, 1) - np.sum(excess**2, 1) / (2 * B)
    else:
        s = np.minimum(1.0, A / np.maximum(np.abs(XtR).max(1), np.finfo(float).tiny))
        dual = s * (R @ y) - 0.5 * s**2 * np.sum(R**2, 1)
    gap = objective(X, y, W, lam, a) - dual / n
    return float(gap[0]) if np.ndim(w) == 1 else gap


def _kkt(gram, Xy, n, W, lam, a):
    W, lam = np.atleast_2d(W), np.atleast_1d(lam)
    g = (W @ gram - Xy) / n + (lam * (1 - a))[:, None] * W
    t = (lam * a)[:, None]
    v = np.where(W != 0, np.abs(g + t * np.sign(W)), np.maximum(np.abs(g) - t, 0.0))
    return v.max(axis=1) / (np.abs(Xy).max() / n)


def kkt_violation(X, y, W, lambdas, l1_ratio):
    """Per lam, the worst violation of the optimality conditions, / lambda_max(X, y).

    g = -(1/n) X^T (y - Xw) + lam*(1-a)*w (gradient of the smooth part);
    w_j != 0: |g_j + lam*a*sign(w_j)|;  w_j == 0: max(0, |g_j| - lam*a).
    """
    return _kkt(X.T @ X, X.T @ y, len(y), W, np.asarray(lambdas, dtype=float), l1_ratio)


def lars_oracle(X, y, lambdas, l1_ratio):
    """W [L, p]: the minimizers of f by homotopy (LARS with the lasso modification),
    an algorithm independent of `enet_path`'s coordinate descent: it follows the
    exact piecewise-linear path from lambda_max down, so a coefficient is zero
    exactly where the path has not let it in, with no stopping rule.

    The elastic net is the lasso on the Gram matrix X^T X + n lam (1-a) I (the
    ridge term as extra rows), with L1 strength lam*a: one path per lam. The
    lasso's path is one call for every lam. Between knots the path is linear in
    the L1 strength, so the solution at lam is interpolated exactly.
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    n, p = X.shape
    lam = np.atleast_1d(np.asarray(lambdas, dtype=float))
    gram, Xy = X.T @ X, X.T @ y

    def at(G, alpha):  # the lasso of Gram G at the L1 strengths alpha (sklearn: 1/(2n) scaling, as ours)
        knots, _, coefs = lars_path_gram(Xy, G, n_samples=n, method="lasso", max_iter=max(500, 10 * p),
                                         alpha_min=float(alpha.min()))  # the path's last knot is at or below it
        knots, coefs = knots[::-1], coefs[:, ::-1]  # increasing, for interp
        return np.array([np.interp(alpha, knots, c) for c in coefs]).T

    if l1_ratio == 1:
        return at(gram, lam)
    return np.vstack([at(gram + n * v * (1 - l1_ratio) * np.eye(p), np.array([v * l1_ratio])) for v in lam])


def lasso_constrained(X, y, radius):
    """argmin ||y - Xw||^2 subject to ||w||_1 <= radius, exactly.

    The lasso-LARS path (sklearn lars_path, method="lasso") is piecewise linear
    and its L1 norm grows along it, so the solution of L1 norm `radius` is the
    linear interpolation between the two knots around it. With full column
    rank the path ends at OLS (appended as the last knot, so radius >=
    ||w_ols||_1 returns OLS exactly). Otherwise (p > n) a larger radius returns
    the path's lam -> 0 end, the sparse minimum-L1 interpolant, rather than
    the dense minimum-L2 OLS: both fit exactly, the lasso one is the lasso's.
    """
    if radius < 0:
        raise ValueError(f"lasso_constrained: radius = {radius} < 0")
    _, _, coefs = lars_path(X, y, method="lasso", max_iter=max(500, 10 * X.shape[1]))
    w_ols, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    knots = np.column_stack([coefs, w_ols]) if rank == X.shape[1] else coefs
    norms = np.abs(knots).sum(axis=0)
    if radius >= norms[-1]:
        return knots[:, -1]
    k = int(np.searchsorted(norms, radius))  # norms[k-1] < radius <= norms[k]
    if k == 0:
        return np.zeros(X.shape[1])
    t = (radius - norms[k - 1]) / (norms[k] - norms[k - 1])
    return knots[:, k - 1] + t * (knots[:, k] - knots[:, k - 1])


def ridge_constrained(X, y, radius):
    """argmin ||y - Xw||^2 subject to ||w||_2 <= radius.

    ||w(lam)|| of the ridge path falls from ||w_ols|| (lam = 0) towards 0, so the
    lam with ||w(lam)|| = radius is bracketed in [0, ||b||/radius] and found by
    brentq on the eigendecomposition (no solve per step). Returns OLS when
    radius >= ||w_ols||.
    """
    if radius < 0:
        raise ValueError(f"ridge_constrained: radius = {radius} < 0")
    s, V, b = _eig(X, y)
    if radius == 0:
        return np.zeros(X.shape[1])
    norm = lambda lam: np.sqrt(np.sum((b / (s + lam)) ** 2))  # noqa: E731
    if radius >= norm(0.0):
        return V @ (b / s)
    lam = brentq(lambda lam: norm(lam) - radius, 0.0, np.linalg.norm(b) / radius,
                 xtol=1e-300, rtol=4 * np.finfo(float).eps)
    return V @ (b / (s + lam))
