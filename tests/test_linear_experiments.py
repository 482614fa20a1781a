"""The linear experiments' building blocks: tuning by validation and by k-fold CV."""
import numpy as np
import pytest

from regbench import data, linear, seeds, studies
from regbench.studies.linear import runners as L

DESIGN = dict(n_train=120, n_val=120, n_test=400, p=20, covariance=dict(family="toeplitz", rho=0.3),
              coef=dict(first_k=4, value=1.0), noise=dict(sigma=0.5))


def tune(**change) -> dict:
    """problem1's tuning keys (grids included) at their schema defaults, with changes."""
    props = studies.schema("linear")["problem1"]["properties"]
    return {k: v["default"] for k, v in props.items() if "default" in v} | change


@pytest.fixture(scope="module")
def split():
    return L.prepare(data.generate(DESIGN, "t", 1, root=5), 0)


@pytest.mark.parametrize("tuning", ["validation", "cv"])
def test_tuned_lasso_finds_the_support_and_lambda_is_on_the_grid(split, tuning):
    params = tune(l1_ratios=[0.5], n_lambdas=20, tuning=tuning, cv_folds=4)
    w, chosen = L.fit_tuned("lasso", split, params, seeds.rng(1, "t"))
    grid = L.tuning_lambdas(split, 1.0, params)
    assert np.isclose(grid, chosen["lam"]).any() and grid[0] == linear.lambda_max(split["Xtr"], split["ytr"])
    assert set(np.flatnonzero(w)) >= {0, 1, 2, 3}
    again, chosen2 = L.fit_tuned("lasso", split, params, seeds.rng(1, "t"))
    assert chosen == chosen2 and np.array_equal(w, again)


def test_enet_tuning_picks_one_of_the_configured_mixings(split):
    params = tune(l1_ratios=[0.2, 0.8], n_lambdas=10, tuning="validation", cv_folds=3)
    _, chosen = L.fit_tuned("enet", split, params, seeds.rng(1, "t"))
    assert chosen["l1_ratio"] in (0.2, 0.8)


def test_validation_error_at_the_chosen_lambda_is_the_smallest(split):
    params = tune(l1_ratios=[0.5], n_ridge_lambdas=15, tuning="validation", cv_folds=3)
    w, chosen = L.fit_tuned("ridge", split, params, seeds.rng(1, "t"))
    grid = L.tuning_lambdas(split, 0.0, params)
    errs = [L.mse(split["Xva"], split["yva"], linear.ridge_path(split["Xtr"], split["ytr"], [g])[0]) for g in grid]
    assert L.mse(split["Xva"], split["yva"], w) == pytest.approx(min(errs))


def test_prepare_standardizes_on_the_training_split(split):
    assert np.allclose(split["Xtr"].mean(axis=0), 0) and np.allclose(split["Xtr"].std(axis=0), 1)
    assert abs(split["ytr"].mean()) < 1e-12
    assert not np.allclose(split["Xte"].mean(axis=0), 0, atol=1e-6)


# ---------------------------------------------------------------- L9: heterogeneous groups
def test_ridge_toward_a_shared_fit_spans_separate_and_shared():
    r = np.random.default_rng(0)
    X, w0 = r.standard_normal((30, 4)), r.standard_normal(4)
    y = X @ np.ones(4) + r.standard_normal(30)
    W = L.ridge_toward(X, y, [1e-12, 1e12], w0)
    assert np.allclose(W[0], linear.ols(X, y), atol=1e-8)  # no shrinkage: the group's own least squares
    assert np.allclose(W[1], w0, atol=1e-8)                # infinite shrinkage: the shared fit
    lam = 0.7  # the optimality condition of ||y - Xw||^2/n + lam ||w - w0||^2
    w = L.ridge_toward(X, y, [lam], w0)[0]
    assert np.allclose(-X.T @ (y - X @ w) / len(y) + lam * (w - w0), 0, atol=1e-10)


def _groups_rule(tiny, **change):
    from regbench import jobs, studies
    cfg = {**tiny, "experiments": {"groups": {**tiny["experiments"]["groups"], "seeds": 12, **change}}}
    return studies.claims()["L9"].rule({"groups": jobs.run("groups", cfg)})


def test_L9_verdict_follows_the_data(tiny):
    # groups drawn around a shared model: shrinking toward it helps the small groups
    assert _groups_rule(tiny, tau=0.3)["verdict"] == "supported"
    # unrelated groups (deviations 10x the shared effect): the shared fit has nothing to lend
    unrelated = _groups_rule(tiny, tau=10.0)
    assert unrelated["verdict"] != "supported"
    assert "beats separate: supported" not in unrelated["note"]


def test_group_sizes_span_the_configured_range(tiny):
    sizes = L.group_sizes(dict(n_groups=12, min_size=10, max_size=1000))
    assert sizes[0] == 10 and sizes[-1] == 1000 and np.all(np.diff(sizes) > 0)
