"""Tuning grids (issue 12): a tuned value never hides on the edge of its grid.

Edge flags on hand-made validation curves; l1_ratio 1 and 0 are exactly the
lasso and ridge; an elastic net that may pick 1.0 is never worse on validation
than the lasso; and on a small-sample design the default grids keep the share
of picks on an open edge at most 5% for ridge, the lasso and the elastic net.
"""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Lasso, Ridge

from regbench import config, data, linear, seeds, studies
from regbench.studies import dropout
from regbench.studies import linear as linear_study
from regbench.studies.linear import runners as L

EDGE_SHARE_MAX = 0.05
# The small-sample regime: few rows, few correlated features, 50 seeds.
SMALL = dict(n_train=20, n_val=20, n_test=200, p=8, covariance=dict(family="toeplitz", rho=0.5),
             coef=dict(first_k=4, value=1.0), noise=dict(sigma=2.0))
SEEDS = 50


def defaults(**change) -> dict:
    """problem1's tuning keys at their schema defaults (the defaults under test)."""
    props = studies.schema("linear")["problem1"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v} | change


@pytest.fixture(scope="module")
def small():
    d = data.generate(SMALL, "edges", SEEDS, root=12)
    return [L.prepare(d, i) for i in range(SEEDS)]


# ---------------------------------------------------------------- edge flags
@pytest.mark.parametrize("curve, edge", [
    ([1.0, 2.0, 3.0, 4.0, 5.0], 1.0),   # falls towards the first value: best may lie before the grid
    ([5.0, 4.0, 3.0, 2.0, 1.0], 1.0),   # falls towards the last
    ([3.0, 2.0, 1.0, 2.0, 3.0], 0.0),   # interior minimum
])
def test_edge_flag_on_a_hand_made_validation_curve(curve, edge):
    grid = np.geomspace(10.0, 0.01, 5)
    pick = grid[int(np.argmin(curve))]
    assert L.on_edge(grid, pick) == edge


def test_an_end_that_is_a_limit_of_the_parameter_is_no_edge():
    grid = np.array([2.0, 1.0, 0.5, 0.0])          # lambda_max ... 0 (least squares)
    assert L.on_edge(grid, 2.0, limits=(2.0, 0.0)) == 0.0
    assert L.on_edge(grid, 0.0, limits=(2.0, 0.0)) == 0.0
    assert L.on_edge(grid, 2.0, limits=(0.0,)) == 1.0  # ridge: the top is open
    ratios = [0.0, 0.5, 1.0]
    assert [L.on_edge(ratios, a, L.L1_RATIO_LIMITS) for a in ratios] == [0.0, 0.0, 0.0]
    assert L.on_edge([0.2, 0.5, 0.8], 0.8, L.L1_RATIO_LIMITS) == 1.0
    assert np.isnan(L.on_edge([0.5], 0.5))           # one value: nothing was tuned


def test_fit_tuned_flags_a_pick_on_the_floor():
    # p > n (no least-squares end below the path) and a floor far above the best lambda
    r = np.random.default_rng(4)
    X = r.standard_normal((40, 30))
    y = X[:, :5] @ np.ones(5) + 0.1 * r.standard_normal(40)
    Xtr, Xva = linear.standardize(X[:20], X[20:])
    s = {"Xtr": Xtr, "Xva": Xva, "ytr": y[:20] - y[:20].mean(), "yva": y[20:] - y[:20].mean()}
    params = defaults(lambda_min_ratio=0.5, n_lambdas=3)
    _, chosen = L.fit_tuned("lasso", s, params, seeds.rng(1, "t"))
    assert chosen["lam"] == pytest.approx(L.tuning_lambdas(s, 1.0, params)[-1]) and chosen["lam_on_edge"] == 1.0


# ---------------------------------------------------------------- grids
def test_glmnet_floor_and_least_squares_end():
    assert linear.lambda_min_ratio(200, 100) == 1e-4
    assert linear.lambda_min_ratio(100, 100) == 1e-2 and linear.lambda_min_ratio(50, 100) == 1e-2
    r = np.random.default_rng(3)
    X = linear.standardize(r.standard_normal((30, 5)))[0]
    s = {"Xtr": X, "ytr": linear.center(X @ np.ones(5) + r.standard_normal(30))[0]}
    lasso = L.tuning_lambdas(s, 1.0, defaults())
    assert lasso[0] == pytest.approx(linear.lambda_max(X, s["ytr"])) and lasso[-1] == 0.0
    assert lasso[-2] == pytest.approx(1e-4 * lasso[0])
    ev = np.linalg.eigvalsh(X.T @ X / 30)
    ridge = L.tuning_lambdas(s, 0.0, defaults())
    assert ridge[0] == pytest.approx(1e3 * ev[-1]) and ridge[-2] == pytest.approx(1e-4 * ev[0]) and ridge[-1] == 0.0
    assert ridge.size == defaults()["n_ridge_lambdas"] + 1 and np.all(np.diff(ridge) < 0)


def test_schema_accepts_the_closed_interval_of_l1_ratios(tiny, schema):
    def check(ratios):
        cfg = {**tiny, "experiments": {"problem1": {**tiny["experiments"]["problem1"], "l1_ratios": ratios}}}
        return config.validate(cfg, schema)["experiments"]["problem1"]["l1_ratios"]
    assert check([0.0, 0.5, 1.0]) == [0.0, 0.5, 1.0]
    for bad in ([1.5], [-0.1]):
        with pytest.raises(config.ConfigError):
            check(bad)


# ---------------------------------------------------------------- l1_ratio 1 and 0
def test_l1_ratio_one_is_the_lasso_and_zero_is_ridge(small):
    s = small[1]
    X, y = s["Xtr"], s["ytr"]
    n = len(y)
    lams = linear.lambda_grid(X, y, 1.0, 8, eps=1e-3)
    W1 = L.path(X, y, lams, 1.0)
    for lam, w in zip(lams, W1):  # sklearn's Lasso: the same (1/2n) ||y - Xw||^2 + lam ||w||_1
        ref = Lasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y).coef_
        np.testing.assert_allclose(w, ref, atol=1e-8)
    W0 = L.path(X, y, lams, 0.0)
    for lam, w in zip(lams, W0):  # (1/2n) ||y - Xw||^2 + (lam/2) ||w||^2 = Ridge with alpha = n lam, over 2n
        np.testing.assert_allclose(w, Ridge(alpha=n * lam, fit_intercept=False).fit(X, y).coef_, atol=1e-10)
        np.testing.assert_allclose(X.T @ (X @ w - y) / n + lam * w, 0, atol=1e-12)
    # the enet objective is continuous in l1_ratio: a = 1e-9 is ridge to solver accuracy
    np.testing.assert_allclose(linear.enet_path(X, y, lams, 1e-9), W0, atol=1e-7)
    np.testing.assert_allclose(L.path(X, y, [0.0], 1.0)[0], linear.ols(X, y), atol=1e-12)


def test_enet_tuned_at_one_ratio_is_the_tuned_lasso_or_ridge(small):
    for ratio, method in ((1.0, "lasso"), (0.0, "ridge")):
        for s in small[:5]:
            w_e, c_e = L.fit_tuned("enet", s, defaults(l1_ratios=[ratio]), seeds.rng(1, "t"))
            w_m, c_m = L.fit_tuned(method, s, defaults(), seeds.rng(1, "t"))
            assert np.array_equal(w_e, w_m) and c_e["lam"] == c_m["lam"] and c_e["l1_ratio"] == ratio


def test_enet_with_the_lasso_in_its_ratios_is_never_worse_on_validation(small):
    params = defaults(l1_ratios=[0.1, 0.5, 0.9, 1.0])
    for i, s in enumerate(small):
        w_e, _ = L.fit_tuned("enet", s, params, seeds.rng(1, "t", i))
        w_l, _ = L.fit_tuned("lasso", s, params, seeds.rng(1, "t", i))
        e, la = L.mse(s["Xva"], s["yva"], w_e), L.mse(s["Xva"], s["yva"], w_l)
        assert e <= la * (1 + 1e-6), (i, e, la)  # slack: the refit at the chosen lambda is solved to 1e-8, not exactly


# ---------------------------------------------------------------- the default grids on a small design
def test_default_grids_keep_small_sample_picks_off_the_edges(small):
    params = defaults()
    flags = {"ridge": [], "lasso": [], "enet": [], "enet l1_ratio": []}
    for i, s in enumerate(small):
        for method in ("ridge", "lasso", "enet"):
            _, chosen = L.fit_tuned(method, s, params, seeds.rng(1, "t", i))
            flags[method].append(chosen["lam_on_edge"])
            if method == "enet":
                flags["enet l1_ratio"].append(chosen["l1_ratio_on_edge"])
    shares = {k: float(np.mean(v)) for k, v in flags.items()}
    assert all(v <= EDGE_SHARE_MAX for v in shares.values()), shares


# ---------------------------------------------------------------- the ledger's details
def test_linear_details_name_a_share_above_five_percent():
    rows = [dict(experiment="problem1_sweep", seed=i, method=m, metric="lam_on_edge", value=float(m == "ridge" and i < 3),
                 n_train=50) for i in range(10) for m in ("ridge", "lasso")]
    text = linear_study.details({"problem1_sweep": pd.DataFrame(rows)})
    assert "the tuned lambda of ridge is on an open edge of its grid in 30% of 10 picks" in text
    assert "lasso is on an open edge" not in text


def test_dropout_details_name_a_best_rate_on_the_top_of_its_grid():
    rows = [dict(experiment="dropout_rates", n_train=100, layer="hidden", rate=r, seed=s, when="final",
                 metric="test_loss", value=1.0 - r + 0.01 * s) for r in (0.0, 0.5, 0.9) for s in range(4)]
    text = dropout.details({"dropout_rates": pd.DataFrame(rows)})
    assert "hidden 0.9, final, n_train = 100: 100% of seeds, and the rule's pick" in text
    flat = [dict(r, value=abs(r["rate"] - 0.5)) for r in rows]
    assert "Every share is at most 5%" in dropout.details({"dropout_rates": pd.DataFrame(flat)})
