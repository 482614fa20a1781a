"""Tests of regbench.linear: closed forms, optimality (KKT, duality gap) and an
independent oracle (L-BFGS-B on the split w = u - v), per DESIGN.md."""
import numpy as np
import pytest
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from regbench import data
from regbench import linear as L

TWINS = dict(n_train=200, n_val=10, n_test=10, p=100,
             covariance=dict(family="twins", sources=10, copies=2, r=0.9),
             coef=dict(first_k=10, value=1.0), noise=dict(snr=2.0))


def load(design, seed=0):
    d = data.generate(design, "test_linear", seed + 1, root=123)
    X, = L.standardize(d["X_train"][seed])
    y, = L.center(d["y_train"][seed])
    return X, y


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """Small matrices: BLAS threads only contend (10x slower on a busy 2-core box)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def twins():
    return load(TWINS)


@pytest.fixture(scope="module")
def wide():
    """p > n: the lasso solution is still unique in general position."""
    return load({**TWINS, "n_train": 60})


@pytest.fixture(scope="module")
def orthonormal():
    rng = np.random.default_rng(0)
    n, p = 80, 12
    Q, _ = np.linalg.qr(rng.standard_normal((n, p)))
    X = np.sqrt(n) * Q  # X^T X / n = I
    y = X @ rng.normal(0, 1, p) + rng.standard_normal(n)
    return X, y - y.mean()


# --- preprocessing and grids ------------------------------------------------

def test_standardize_uses_training_statistics():
    rng = np.random.default_rng(1)
    Xtr = rng.normal(3, 2, (50, 4))
    Xtr[:, 2] = 0.1  # constant column: scale 1, centred to exact zeros
    Xte = rng.normal(3, 2, (20, 4))
    Str, Ste = L.standardize(Xtr, Xte)
    assert np.allclose(Str[:, [0, 1, 3]].mean(0), 0, atol=1e-14)
    assert np.allclose(Str[:, [0, 1, 3]].std(0), 1, atol=1e-14)
    assert np.all(Str[:, 2] == 0.0)
    mean, sd = Xtr.mean(0), Xtr.std(0)
    assert np.allclose(Ste[:, 0], (Xte[:, 0] - mean[0]) / sd[0], atol=1e-14)
    assert np.allclose(Ste[:, 2], Xte[:, 2] - 0.1, atol=1e-14)
    # a stack [seeds, n, p] is standardized per seed
    stack = np.stack([Xtr, 5 * Xtr + 1])
    S, = L.standardize(stack)
    assert np.allclose(S[1], S[0], atol=1e-12)
    ytr, yte = L.center(np.array([1.0, 2.0, 6.0]), np.array([0.0]))
    assert np.allclose(ytr, [-2, -1, 3]) and np.allclose(yte, [-3])


def test_lambda_max_and_grid(twins):
    X, y = twins
    n = len(y)
    assert L.lambda_max(X, y) == pytest.approx(np.abs(X.T @ y).max() / n, rel=1e-15)
    assert L.lambda_max(X, y, 0.5) == pytest.approx(2 * L.lambda_max(X, y), rel=1e-15)
    with pytest.raises(ValueError):
        L.lambda_max(X, y, 0.0)
    grid = L.lambda_grid(X, y, 1.0, n_lambdas=50, eps=1e-3)
    assert grid.shape == (50,) and np.all(np.diff(grid) < 0)
    assert grid[0] == pytest.approx(L.lambda_max(X, y), rel=1e-14)
    assert grid[-1] == pytest.approx(1e-3 * L.lambda_max(X, y), rel=1e-14)
    assert np.allclose(np.diff(np.log(grid)), np.log(1e-3) / 49)
    assert np.array_equal(L.lambda_grid(X, y, 0.0), grid)  # ridge uses the lasso grid


def test_soft_threshold():
    assert np.array_equal(L.soft_threshold([-3.0, -0.5, 0.0, 0.5, 2.0], 1.0), [-2.0, 0.0, 0.0, 0.0, 1.0])


# --- closed forms -----------------------------------------------------------

@pytest.mark.parametrize("a", [1.0, 0.5, 0.0])
def test_orthonormal_design_closed_form(orthonormal, a):
    """X^T X/n = I: enet = soft_threshold(z, lam*a) / (1 + lam*(1-a)), z = X^T y/n."""
    X, y = orthonormal
    z = X.T @ y / len(y)
    lams = np.geomspace(1.5 * np.abs(z).max(), 1e-3 * np.abs(z).max(), 30)
    W = L.enet_path(X, y, lams, a)
    expect = L.soft_threshold(z, lams[:, None] * a) / (1 + lams[:, None] * (1 - a))
    assert np.abs(W - expect).max() < 1e-10
    if a > 0:  # the thresholded coordinates are exact zeros, and there are some
        assert np.array_equal(W == 0, expect == 0) and (W == 0).any()


def test_ridge_path_equals_normal_equations(twins):
    X, y = twins
    n, p = X.shape
    lams = np.geomspace(10, 1e-4, 20)
    W = L.ridge_path(X, y, lams)
    for lam, w in zip(lams, W):
        ref = np.linalg.solve(X.T @ X / n + lam * np.eye(p), X.T @ y / n)
        assert np.abs(w - ref).max() < 1e-10 * np.abs(ref).max()
    assert np.array_equal(L.enet_path(X, y, lams, 0.0), W)


def test_ols_full_rank_and_min_norm():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 5))
    y = rng.standard_normal(40)
    assert np.allclose(L.ols(X, y), np.linalg.solve(X.T @ X, X.T @ y), atol=1e-12)
    X2 = np.column_stack([X, X[:, 0]])  # duplicated column: min-norm splits it evenly
    w = L.ols(X2, y)
    assert w[0] == pytest.approx(w[5], abs=1e-12)
    assert np.allclose(X2 @ w, X @ L.ols(X, y), atol=1e-12)
    assert np.allclose(L.ridge_path(X2, y, [0.0])[0], w, atol=1e-10)  # ridge at lam 0 = min-norm OLS


# --- optimality ---------------------------------------------------------------

@pytest.mark.parametrize("a", [1.0, 0.5])
@pytest.mark.parametrize("design", ["twins", "wide"])
def test_kkt_along_path(a, design, request):
    X, y = request.getfixturevalue(design)
    lams = L.lambda_grid(X, y, a, n_lambdas=50)
    W = L.enet_path(X, y, lams, a)
    kkt = L.kkt_violation(X, y, W, lams, a)
    assert kkt.max() < 1e-8, kkt.max()
    assert np.all(W[0] == 0.0)  # lambda_max zeroes everything ...
    below = L.enet_path(X, y, [L.lambda_max(X, y, a) * (1 - 1e-6)], a)
    assert np.count_nonzero(below) == 1  # ... and one feature enters just below it
    zeros = (W == 0).sum(1)
    assert zeros[25] > 0 and zeros[-1] < zeros[25] < X.shape[1]  # exact zeros mid-path
    # the check can fail: a slightly wrong solution is flagged
    assert L.kkt_violation(X, y, W[25] * 1.01, lams[25], a)[0] > 1e-4


def test_ridge_never_zero_and_kkt(twins):
    X, y = twins
    lams = L.lambda_grid(X, y, 0.0)
    W = L.ridge_path(X, y, lams)
    assert not np.any(W == 0)
    assert L.kkt_violation(X, y, W, lams, 0.0).max() < 1e-12


def test_unsorted_lambdas_keep_caller_order(twins):
    X, y = twins
    lams = L.lambda_grid(X, y, 1.0, 10)
    perm = np.random.default_rng(3).permutation(10)
    assert np.array_equal(L.enet_path(X, y, lams[perm], 1.0), L.enet_path(X, y, lams, 1.0)[perm])


def lbfgs_oracle(X, y, lam, a):
    """Independent solver: f on w = u - v with u, v >= 0 is smooth; L-BFGS-B."""
    n, p = X.shape
    G, b = X.T @ X / n, X.T @ y / n
    l1, l2 = lam * a, lam * (1 - a)

    def fun(z):
        w = z[:p] - z[p:]
        gw = G @ w - b + l2 * w
        f = 0.5 * w @ G @ w - b @ w + l1 * z.sum() + 0.5 * l2 * w @ w
        return f, np.concatenate([gw + l1, -gw + l1])

    res = minimize(fun, np.zeros(2 * p), jac=True, method="L-BFGS-B", bounds=[(0, None)] * (2 * p),
                   options=dict(maxiter=20000, maxcor=30, ftol=1e-16, gtol=1e-13))
    return res.x[:p] - res.x[p:]


@pytest.mark.parametrize("a", [1.0, 0.5])
def test_against_independent_oracle(twins, a):
    X, y = twins
    n = len(y)
    # three lambdas with zeros, and one further down the path (3e-4 lambda_max) where none is left
    lams = np.append(L.lambda_grid(X, y, a, 50)[[5, 15, 30]], 3e-4 * L.lambda_max(X, y, a))
    W = L.enet_path(X, y, lams, a)
    assert (W[:3] == 0).any(axis=1).all() and (W[3] != 0).all()  # zeros to compare, and none
    for lam, w in zip(lams, W):
        v = lbfgs_oracle(X, y, lam, a)
        f, f_oracle = L.objective(X, y, w, lam, a), L.objective(X, y, v, lam, a)
        assert f <= f_oracle * (1 + 1e-8) and f_oracle <= f * (1 + 1e-8)
        # supports agree where the answer is clear: large coefficients, and
        # zeros whose gradient is well inside the dead zone |g_j| < lam*a
        g = np.abs(X.T @ (y - X @ w)) / n
        big = np.abs(w) > 1e-3
        dead = (w == 0) & (g < 0.9 * lam * a)
        assert big.any()
        assert np.all(np.abs(v[big]) > 1e-5) and np.all(np.sign(v[big]) == np.sign(w[big]))
        assert np.all(np.abs(v[dead]) < 1e-6)


@pytest.mark.parametrize("a", [1.0, 0.5, 0.0])
def test_duality_gap(twins, a):
    X, y = twins
    lams = L.lambda_grid(X, y, a, 20)
    W = L.enet_path(X, y, lams, a)
    f = L.objective(X, y, W, lams, a)
    gap = L.duality_gap(X, y, W, lams, a)
    assert np.all(np.abs(gap) <= 1e-10 * f)
    # away from the optimum the gap is positive and bounds the suboptimality
    w_bad = 0.9 * W[10] + 0.01
    f_bad = L.objective(X, y, w_bad, lams[10], a)
    gap_bad = L.duality_gap(X, y, w_bad, lams[10], a)
    assert gap_bad >= f_bad - f[10] > 1e-4


def test_objective_matches_sklearn_estimator(twins):
    """Our lam is sklearn's alpha: ElasticNet's fit lands on our solution."""
    from sklearn.linear_model import ElasticNet
    X, y = twins
    lam = 0.05
    w = L.enet_path(X, y, [lam], 0.5)[0]
    ref = ElasticNet(alpha=lam, l1_ratio=0.5, fit_intercept=False, tol=1e-14, max_iter=100000).fit(X, y).coef_
    assert np.abs(w - ref).max() < 1e-8
    assert L.objective(X, y, ref, lam, 0.5) == pytest.approx(L.objective(X, y, w, lam, 0.5), rel=1e-12)


# --- constrained forms ("diamond vs circle") ---------------------------------

@pytest.mark.parametrize("design", ["twins", "wide"])
def test_lasso_constrained_on_radius_and_path(design, request):
    X, y = request.getfixturevalue(design)
    n, p = X.shape
    end = L.lasso_constrained(X, y, np.inf)  # the lam -> 0 end of the lasso path
    if design == "twins":
        assert np.allclose(end, L.ols(X, y), atol=1e-10)
    else:  # p > n: a sparse exact fit (at most n nonzeros), not the dense min-norm OLS
        assert np.allclose(X @ end, y, atol=1e-8) and np.count_nonzero(end) <= n
        assert np.abs(end).sum() < np.abs(L.ols(X, y)).sum()
    for frac in (0.02, 0.2, 0.6, 0.95):
        radius = frac * np.abs(end).sum()
        w = L.lasso_constrained(X, y, radius)
        assert np.abs(w).sum() == pytest.approx(radius, rel=1e-10)
        lam = np.abs(X.T @ (y - X @ w)).max() / n  # the lam of the path point
        assert L.kkt_violation(X, y, w, lam, 1.0)[0] < 1e-9
        if design == "twins":  # unique solution: the same point as coordinate descent
            assert np.abs(w - L.enet_path(X, y, [lam], 1.0)[0]).max() < 1e-8
    assert np.array_equal(L.lasso_constrained(X, y, 2 * np.abs(end).sum()), end)
    assert np.array_equal(L.lasso_constrained(X, y, 0.0), np.zeros(p))


def test_ridge_constrained_on_radius_and_path(twins):
    X, y = twins
    n = len(y)
    w_ols = L.ols(X, y)
    for frac in (0.05, 0.5, 0.99):
        radius = frac * np.linalg.norm(w_ols)
        w = L.ridge_constrained(X, y, radius)
        assert np.linalg.norm(w) == pytest.approx(radius, rel=1e-12)
        lam = (X.T @ (y - X @ w) / n) @ w / (w @ w)  # stationarity: X^T R/n = lam w
        assert lam > 0
        assert np.abs(w - L.ridge_path(X, y, [lam])[0]).max() < 1e-10
    assert np.allclose(L.ridge_constrained(X, y, 2 * np.linalg.norm(w_ols)), w_ols, atol=1e-10)
