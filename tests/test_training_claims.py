"""N12 and N13 reach each verdict they can give on planted tables with realistic values
(N8's are in tests/test_training_study.py); N12 selects on validation and its best-decay
slope is not stuck on grid values."""
import numpy as np
import pandas as pd
import pytest

from regbench.studies.training import claims as rules

LRS = (0.0003, 0.001, 0.003, 0.01)
DECAYS = {"adam_l2": (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3), "adamw": (0.0, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)}


# ---------------------------------------------------------------- N12
def n12_table(gain, noise, seeds=16, best_decay=None, rng=None) -> dict:
    """adamw_vs_l2 rows: loss(lr, decay) = 0.8 + 0.05 (log10 decay - log10 best)^2 + a seed level, with independent
    validation / test noise; AdamW's surface lower by `gain`. best_decay(opt, lr) plants the optimum."""
    r = rng or np.random.default_rng(0)
    best_decay = best_decay or (lambda opt, lr: 0.01 if opt == "adam_l2" else 1.0)
    rows = []
    for s in range(seeds):
        level = 0.05 * r.standard_normal()
        for opt, decays in DECAYS.items():
            for lr in LRS:
                for d in decays:
                    x = np.log10(d) if d > 0 else np.log10(decays[1]) - 1
                    mean = 0.8 + level + 0.05 * (x - np.log10(best_decay(opt, lr))) ** 2 - (gain if opt == "adamw" else 0.0)
                    for metric in ("val_loss", "test_loss"):
                        rows.append(dict(seed=s, optimizer=opt, lr=lr, decay=d, metric=metric,
                                         value=mean + noise * r.standard_normal()))
                    rows.append(dict(seed=s, optimizer=opt, lr=lr, decay=d, metric="test_accuracy", value=0.8))
    return {"adamw_vs_l2": pd.DataFrame(rows).assign(experiment="adamw_vs_l2", schedule="cosine")}


@pytest.mark.parametrize("gain, noise, expected", [
    (0.05, 0.01, "supported"),      # AdamW ~6% lower
    (-0.05, 0.01, "refuted"),
    (0.0, 0.001, "equivalent"),     # the same surface, precisely measured
    (0.004, 0.05, "inconclusive"),  # a small gain in noisy selections
])
def test_N12_reaches_each_verdict(gain, noise, expected):
    assert rules.n12(n12_table(gain, noise))["verdict"] == expected


def test_N12_reports_the_test_loss_of_the_validation_pick():
    t = n12_table(0.0, 0.0)["adamw_vs_l2"]
    # plant one (lr, decay) that validation loves and test hates: the pick must be it, with its bad test loss
    trap = (t.optimizer == "adamw") & (t.lr == 0.01) & (t.decay == 30.0)
    t.loc[trap & (t.metric == "val_loss"), "value"] = 0.0
    t.loc[trap & (t.metric == "test_loss"), "value"] = 5.0
    best = rules.best_of_grid(t)
    assert (best[best.optimizer == "adamw"].test_loss == 5.0).all()
    assert rules.n12({"adamw_vs_l2": t})["verdict"] == "refuted"


def test_N12_best_decay_slope_is_refined_between_grid_points():
    # AdamW's planted optimum moves as lr^-0.5, between grid points: the refined slope finds it,
    # and its bootstrap interval is not a single grid value
    t = n12_table(0.0, 0.003, best_decay=lambda opt, lr: 0.01 if opt == "adam_l2" else 1.0 * (lr / 0.001) ** -0.5)
    s, lo, hi = rules.slope_ci(t["adamw_vs_l2"], "adamw", n_boot=300)
    assert s == pytest.approx(-0.5, abs=0.1)
    assert hi - lo > 0.005 and lo < -0.5 + 0.15 and hi > -0.5 - 0.15


def test_vertex_of_a_parabola():
    assert rules._vertex([0.0, 1.0, 3.0], [(x - 1.4) ** 2 for x in (0.0, 1.0, 3.0)]) == pytest.approx(1.4)
    assert rules._vertex([0.0, 1.0, 2.0], [1.0, 1.0, 1.0]) == 1.0  # flat: stay on the grid point


# ---------------------------------------------------------------- N13
def n13_table(d_ece, d_wrong, noise, seeds=10, rng=None) -> dict:
    """label_smoothing rows: per seed and smoothing, ECE and top-confidence error rate around realistic levels
    (ECE 0.06, 15% wrong among the top 10%), smoothing 0.1 shifted by d_ece / d_wrong, seed noise."""
    r = rng or np.random.default_rng(0)
    rows = []
    for s in range(seeds):
        base = dict(ece=0.06, top_wrong=0.15, accuracy=0.8, nll=0.6, overconfidence=0.03, confident_wrong_rate=0.05,
                    top_overconfidence=0.05, top_share=0.1, mean_confidence=0.83)
        for eps in (0.0, 0.1):
            for split in ("val", "test"):
                for m, v in base.items():
                    shift = (d_ece if m == "ece" else d_wrong if m == "top_wrong" else 0.0) if eps == 0.1 else 0.0
                    jitter = noise * r.standard_normal() if m in ("ece", "top_wrong") else 0.0
                    rows.append(dict(seed=s, smoothing=eps, split=split, bin=np.nan, metric=m, value=v + shift + jitter))
                rows.append(dict(seed=s, smoothing=eps, split=split, bin=14.0, metric="bin_count", value=10.0))
    return {"label_smoothing": pd.DataFrame(rows).assign(experiment="label_smoothing")}


@pytest.mark.parametrize("d_ece, d_wrong, noise, expected", [
    (-0.03, -0.03, 0.005, "supported"),
    (0.03, 0.03, 0.005, "refuted"),
    (-0.03, 0.03, 0.005, "refuted"),       # better ECE but more confident mistakes: the weaker part decides
    (0.0, 0.0, 0.001, "equivalent"),
    (-0.005, -0.005, 0.03, "inconclusive"),
])
def test_N13_reaches_each_verdict(d_ece, d_wrong, noise, expected):
    out = rules.n13(n13_table(d_ece, d_wrong, noise))
    assert out["verdict"] == expected
    assert out["family"] == "paired" and out["sesoi"] > 0


def test_N13_judges_a_threshold_relative_to_the_models_confidence():
    from regbench.studies.training.runners import calibration_rows
    # two models with the same ranking; one is uniformly less confident (as smoothing makes it):
    # the fixed 0.9 threshold sees no confident mistakes in it, the relative one sees the same ones
    r = np.random.default_rng(0)
    conf = np.sort(r.uniform(0.5, 0.99, 400))[::-1]
    labels = (r.random(400) < 0.2).astype(int)  # 20% wrong, anywhere
    sharp = np.c_[conf, 1 - conf]
    soft = np.c_[0.5 + 0.8 * (conf - 0.5), 1 - (0.5 + 0.8 * (conf - 0.5))]
    a, _ = calibration_rows(sharp, labels, 15, 0.9, 0.1)
    b, _ = calibration_rows(soft, labels, 15, 0.9, 0.1)
    assert a["top_wrong"] == b["top_wrong"] and a["top_share"] == 0.1
    assert b["confident_wrong_rate"] == 0.0 < a["confident_wrong_rate"]


# ---------------------------------------------------------------- N12's cosine schedule
def test_cosine_schedule_steps_every_lr_down_to_zero():
    import torch
    from regbench.cnn import lr_scale
    from regbench.nets import BatchedOptimizer, MLPSpec, OptimSpec, train
    p = torch.zeros(2, 3)
    opt = BatchedOptimizer([p], OptimSpec("sgd", lr=[0.1, 0.2]), 2)
    for k in range(4):
        opt.step([torch.ones_like(p)], lr_scale(k, 4, "cosine"))
    # plain SGD moves each weight by -sum of its lrs: 0.1 * (1 + 0.854 + 0.5 + 0.146) = 0.25 (model 0)
    scale = sum(0.5 * (1 + np.cos(np.pi * k / 4)) for k in range(4))
    np.testing.assert_allclose(p[:, 0].numpy(), [-0.1 * scale, -0.2 * scale], rtol=1e-6)
    # the engine's schedule: the first step is at the full lr, later ones are not
    r = np.random.default_rng(0)
    data = {"train": (torch.tensor(r.standard_normal((16, 3)), dtype=torch.float32), torch.tensor(r.integers(0, 2, 16)))}
    spec, optim = MLPSpec(d_in=3, d_out=2, hidden=(4,)), OptimSpec("sgd", lr=0.5)
    run = lambda epochs, schedule: train(spec, optim, [1], data, epochs=epochs, batch_size=16, eval_every=0,  # noqa: E731
                                          schedule=schedule)[1].state_dict()
    one_c, one_s = run(1, "constant"), run(1, "cosine")
    assert all(torch.equal(one_c[k], one_s[k]) for k in one_c)
    two_c, two_s = run(2, "constant"), run(2, "cosine")
    assert not all(torch.equal(two_c[k], two_s[k]) for k in two_c)
