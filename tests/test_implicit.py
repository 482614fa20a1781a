import numpy as np
import pytest
from sklearn.linear_model import Ridge

from regbench import least_squares as im
from regbench import seeds


def toeplitz_design(n=200, p=30, rho=0.5, seed=0):
    r = seeds.rng(seed, "test_implicit")
    idx = np.arange(p)
    Sigma = rho ** np.abs(idx[:, None] - idx[None, :])
    X = r.standard_normal((n, p)) @ np.linalg.cholesky(Sigma).T
    beta = 0.3 * r.standard_normal(p)
    y = X @ beta + r.standard_normal(n)
    return X, y, beta, Sigma


@pytest.fixture(scope="module")
def design():
    return toeplitz_design()


def test_closed_form_matches_loop(design):
    X, y, _, _ = design
    s, _, _ = im.spectrum(X, y)
    for eta in (0.3 / s.max(), 1.5 / s.max()):  # the second has 1 < eta*s < 2 for the top modes
        steps = [1, 2, 7, 50, 400]
        loop = im.gd_iterates_loop(X, y, eta, steps)
        closed = im.gd_coef(X, y, eta, steps)
        np.testing.assert_allclose(closed, loop, rtol=1e-9, atol=1e-12)


def test_closed_form_rank_deficient():
    r = seeds.rng(1, "rank_deficient")
    X = r.standard_normal((15, 40))  # p > n: zero eigenvalues
    y = r.standard_normal(15)
    s, _, _ = im.spectrum(X, y)
    assert np.sum(s < 1e-10) >= 25
    eta = 0.5 / s.max()
    np.testing.assert_allclose(im.gd_coef(X, y, eta, [3, 300]), im.gd_iterates_loop(X, y, eta, [3, 300]),
                               rtol=1e-8, atol=1e-12)
    assert np.all(np.isfinite(im.gd_filter(np.array([0.0, 1.0]), 0.1, [5])))
    assert im.gd_filter(np.array([0.0]), 0.1, [5])[0, 0] == pytest.approx(0.5)


def test_divergent_eta_raises(design):
    X, y, _, _ = design
    s, _, _ = im.spectrum(X, y)
    with pytest.raises(ValueError):
        im.gd_coef(X, y, 2.5 / s.max(), [10])


def test_ridge_matches_sklearn(design):
    X, y, _, _ = design
    n = len(y)
    lam = 0.37
    w = im.ridge_coef(X, y, lam)
    # sklearn minimises ||y - Xw||^2 + alpha ||w||^2  ->  alpha = n * lam
    ref = Ridge(alpha=n * lam, fit_intercept=False, solver="cholesky").fit(X, y).coef_
    np.testing.assert_allclose(w, ref, rtol=1e-10)
    assert im.ridge_coef(X, y, [0.1, lam]).shape == (2, X.shape[1])


def test_isotropic_design_exact_match():
    # S = s I: the GD iterate is exactly a ridge solution with
    # lam = s q^T / (1 - q^T), q = 1 - eta s
    r = seeds.rng(2, "isotropic")
    n, p = 64, 8
    Q, _ = np.linalg.qr(r.standard_normal((n, p)))
    s_val = 2.0
    X = Q * np.sqrt(n * s_val)
    y = r.standard_normal(n)
    s, _, _ = im.spectrum(X, y)
    np.testing.assert_allclose(s, s_val)
    eta = 0.05
    steps = [1, 3, 10, 30]
    df = im.gd_vs_ridge(X, y, eta, steps)
    q = 1 - eta * s_val
    expected = [s_val * q ** T / (1 - q ** T) for T in steps]
    np.testing.assert_allclose(df["lambda_closest"], expected, rtol=1e-6)
    assert (df["rel_distance"] < 1e-6).all()


def test_gd_vs_ridge_on_correlated_design(design):
    X, y, beta, Sigma = design
    s, _, _ = im.spectrum(X, y)
    eta = 0.01 / s.max()
    steps = np.unique(np.round(np.logspace(0, 5, 40)).astype(int))
    df = im.gd_vs_ridge(X, y, eta, steps, beta, Sigma)
    assert list(df.columns) == ["T", "eta", "inv_eta_T", "lambda_closest", "ratio", "distance",
                                "rel_distance", "at_grid_edge", "regime", "gd_risk", "ridge_risk"]
    assert set(df["regime"]) == {"early", "within", "late"}
    early = df[df.regime == "early"]
    within = df[df.regime == "within"]
    late = df[df.regime == "late"]
    # lambda ~ 1/(eta T): ratio near 1 early, a constant below 1 inside the spectrum, collapse late
    assert early["ratio"].between(0.8, 1.0).all()
    assert within["ratio"].between(0.4, 0.85).all()
    assert late["ratio"].iloc[-3:].max() < 0.01
    slope = im.loglog_slope(df)
    assert 0.9 < slope < 1.2
    assert im.loglog_slope(df, regimes=None) > 1.5  # the late rows break the power law
    # the matched ridge solution is close to the GD iterate in the early/within regimes
    assert (df.loc[df.regime != "late", "rel_distance"] < 0.2).all()
    # risk columns agree with a direct computation from the loop iterate
    T = int(df["T"].iloc[10])
    w = im.gd_iterates_loop(X, y, eta, [T])[0]
    assert df["gd_risk"].iloc[10] == pytest.approx((w - beta) @ Sigma @ (w - beta), rel=1e-8)
    wr = im.ridge_coef(X, y, df["lambda_closest"].iloc[10])
    assert df["ridge_risk"].iloc[10] == pytest.approx((wr - beta) @ Sigma @ (wr - beta), rel=1e-8)
    # no risks without the truth
    assert im.gd_vs_ridge(X, y, eta, [10])["gd_risk"].isna().all()


def test_best_risk_ratio_brute_force(design):
    X, y, beta, Sigma = design
    s, _, _ = im.spectrum(X, y)
    eta = 0.5 / s.max()
    out = im.best_risk_ratio(X, y, eta, beta, Sigma, T_max=300, n_T=3000)
    W = im.gd_iterates_loop(X, y, eta, np.arange(1, 301))
    risks = np.einsum("ij,jk,ik->i", W - beta, Sigma, W - beta)
    assert out["gd_best_risk"] == pytest.approx(risks.min(), rel=1e-9)
    assert out["gd_best_T"] == int(np.argmin(risks)) + 1
    lams = np.logspace(-4, 2, 4000)
    R = im.ridge_coef(X, y, lams)
    rr = np.einsum("ij,jk,ik->i", R - beta, Sigma, R - beta)
    assert out["ridge_best_risk"] <= rr.min() + 1e-12
    assert out["ridge_best_risk"] == pytest.approx(rr.min(), rel=1e-5)
    assert out["ratio"] == pytest.approx(out["gd_best_risk"] / out["ridge_best_risk"])
    # the two optima are comparable (Ali et al. 2019 bound the pointwise ratio by 1.69)
    assert 0.7 < out["ratio"] < 1.69
    assert out["null_risk"] == pytest.approx(beta @ Sigma @ beta)
    assert out["null_risk"] > 3 * out["gd_best_risk"]


# ------------------------------------------------------------------ N15

def standardized(seed=0, n=150, p=10):
    X, y, beta, Sigma = toeplitz_design(n=n, p=p, seed=seed)
    X = (X - X.mean(0)) / X.std(0)
    return X, y - y.mean()


def test_expected_noisy_loss_monte_carlo():
    X, y = standardized()
    r = seeds.rng(3, "mc")
    w = r.standard_normal(X.shape[1])
    sd = 0.4
    draws = np.array([np.sum((y - (X + sd * r.standard_normal(X.shape)) @ w) ** 2) / (2 * len(y))
                      for _ in range(3000)])
    closed = im.expected_noisy_loss(X, y, w, sd)
    se = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - closed) < 4 * se
    # and it is really the ridge objective at lam = sd^2
    r_ = y - X @ w
    assert closed == pytest.approx(r_ @ r_ / (2 * len(y)) + sd ** 2 / 2 * w @ w)
    # the penalty is not negligible here, so the check has teeth
    assert sd ** 2 / 2 * w @ w > 20 * se


def test_noise_injection_converges_to_matched_ridge():
    X, y = standardized()
    sd = 0.5
    path = im.noise_injection_path(X, y, sd, [1, 10, 100, 1000], seed=4)
    assert list(path.columns) == ["n_copies", "noise_sd", "lam", "gap", "rel_gap"]
    gaps = path["gap"].to_numpy()
    assert np.all(np.diff(gaps) < 0)
    # ~ 1/sqrt(n K): a factor ~10 from 10 to 1000 copies
    assert 4 < gaps[1] / gaps[3] < 25
    assert path["rel_gap"].iloc[-1] < 0.03
    assert (path["lam"] == sd ** 2).all()
    one = im.noise_injection(X, y, sd, 100, seed=4)
    assert one["gap"] == pytest.approx(gaps[2], rel=1e-12)  # nested replicas: same draws
    assert one["lam"] == sd ** 2
    # the noisy fit shrinks like ridge does, well away from least squares
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    big = im.noise_injection(X, y, sd, 1000, seed=4)
    assert np.linalg.norm(big["w_noise"]) < 0.9 * np.linalg.norm(ols)
    assert np.linalg.norm(big["w_noise"] - big["w_ridge"]) < 0.2 * np.linalg.norm(big["w_ridge"] - ols)


def test_noise_injection_edge_cases_and_determinism():
    X, y = standardized()
    zero = im.noise_injection(X, y, 0.0, 3, seed=0)
    np.testing.assert_allclose(zero["w_noise"], np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-10)
    assert zero["gap"] < 1e-10
    a = im.noise_injection(X, y, 0.3, 20, seed=7)
    b = im.noise_injection(X, y, 0.3, 20, seed=7)
    c = im.noise_injection(X, y, 0.3, 20, seed=8)
    np.testing.assert_array_equal(a["w_noise"], b["w_noise"])
    assert not np.allclose(a["w_noise"], c["w_noise"])
    # per-feature noise sd -> per-feature penalty lam_j = sd_j^2
    sd = np.linspace(0.1, 1.0, X.shape[1])
    v = im.noise_injection(X, y, sd, 2000, seed=1)
    np.testing.assert_allclose(v["lam"], sd ** 2)
    n = len(y)
    np.testing.assert_allclose(v["w_ridge"], np.linalg.solve(X.T @ X / n + np.diag(sd ** 2), X.T @ y / n))
    assert v["rel_gap"] < 0.05
