import numpy as np
import pytest
import torch

from regbench import optimizers as opt

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def design():
    return opt.scaled_design(n=512, p=10, scale_ratio=100, seed=0)


def test_scaled_design(design):
    X, y, beta, scales = design
    assert X.shape == (512, 10) and y.shape == (512,)
    assert scales.max() / scales.min() == pytest.approx(100)
    sd = X.std(0)
    assert sd.max() / sd.min() == pytest.approx(100, rel=0.2)
    np.testing.assert_allclose(beta * scales, 1.0)
    X2, y2, _, _ = opt.scaled_design(n=512, p=10, scale_ratio=100, seed=0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_sgd_l2_equals_weight_decay(design):
    X, y, _, _ = design
    X = X[:, 3:7]  # moderate scales so SGD is stable at this lr
    res = opt.sgd_l2_vs_decay(X, y, lam=0.1, lr=0.02, steps=200, seed=1, return_trajectories=True)
    assert res["max_abs_w"] > 0.5  # the weights moved: the comparison is not vacuous
    assert res["l2_vs_weight_decay"] < 1e-12
    assert res["l2_vs_decoupled"] < 1e-12
    assert res["weight_decay_vs_decoupled"] < 1e-12
    # decaying after the step instead of before differs by lr^2 * lam * grad per step
    assert res["l2_vs_decoupled_after"] > 1e-6
    # the lambda vs lambda/2 convention matters: lam*||w||^2 is weight_decay = 2*lam
    assert res["l2_no_half_vs_weight_decay"] > 1e-3
    traj = res["trajectories"]
    assert traj["l2"].shape == (201, 4)
    np.testing.assert_array_equal(traj["l2"][0], 0.0)
    # decay actually shrinks: the L2 run ends with a smaller norm than the lam*||w||^2 run's double-decay
    assert np.linalg.norm(traj["l2_no_half"][-1]) < np.linalg.norm(traj["l2"][-1])


def test_sgd_full_batch_converges_to_ridge(design):
    X, y, _, _ = design
    X = X[:, 3:7]
    n = len(y)
    lam = 0.1
    res = opt.sgd_l2_vs_decay(X, y, lam=lam, lr=0.2, steps=300, seed=1, batch_size=None,
                              return_trajectories=True)
    ridge = np.linalg.solve(X.T @ X / n + lam * np.eye(4), X.T @ y / n)
    np.testing.assert_allclose(res["trajectories"]["weight_decay"][-1], ridge, rtol=1e-6)


def test_adamw_moments_are_decoupled():
    res = opt.adamw_decoupling(p=8, steps=200, lam=0.1, lr=1e-2, seed=3)
    # AdamW(lam) keeps exactly the moments of Adam(0) under the same gradients
    assert res["adamw_exp_avg"] <= 1e-15
    assert res["adamw_exp_avg_sq"] <= 1e-15
    # Adam with weight_decay (L2) pushes lam*w through both moments
    assert res["adam_l2_exp_avg"] > 1e-3
    assert res["adam_l2_exp_avg_sq"] > 1e-5
    # AdamW = Adam(0)'s update plus exactly lr*lam*w, whatever v is
    assert res["decay_scale"] > 1e-4
    assert res["adamw_decay_residual"] < 1e-12


def test_adam_shrinkage_depends_on_v(design):
    X, y, _, _ = design
    lr, lam = 1e-3, 1e-2
    df = opt.adam_shrinkage(X, y, lam=lam, lr=lr, steps=500, seed=1)
    assert list(df.columns) == ["optimizer", "param", "scale", "w", "sqrt_v", "decay_update",
                                "shrinkage", "predicted"]
    assert len(df) == 20
    summ = opt.shrinkage_vs_v(df).set_index("optimizer")
    # the setting really spans gradient scales
    assert summ.loc["adam_l2", "sqrt_v_ratio"] > 10
    assert summ.loc["adamw", "sqrt_v_ratio"] > 10
    # Adam+L2: shrinkage ~ lr*lam / sqrt(v)
    assert summ.loc["adam_l2", "corr"] < -0.99
    assert -1.1 < summ.loc["adam_l2", "slope"] < -0.9
    assert summ.loc["adam_l2", "shrinkage_ratio"] > 10
    a = df[df.optimizer == "adam_l2"]
    np.testing.assert_allclose(a["shrinkage"], a["predicted"], rtol=0.1)
    # AdamW: shrinkage = lr*lam for every parameter, whatever sqrt(v)
    w = df[df.optimizer == "adamw"]
    np.testing.assert_allclose(w["shrinkage"], lr * lam, rtol=1e-6)
    assert abs(summ.loc["adamw", "slope"]) < 1e-6
    assert (df["shrinkage"] > 0).all()


def test_adam_shrinkage_deterministic(design):
    X, y, _, _ = design
    a = opt.adam_shrinkage(X[:64, :4], y[:64], lam=1e-2, lr=1e-3, steps=50, seed=5)
    b = opt.adam_shrinkage(X[:64, :4], y[:64], lam=1e-2, lr=1e-3, steps=50, seed=5)
    c = opt.adam_shrinkage(X[:64, :4], y[:64], lam=1e-2, lr=1e-3, steps=50, seed=6)
    assert a.equals(b)
    assert not a.equals(c)
