"""The training study (N8, N12, N13): the post-hoc early-stopping rule on hand-made curves,
per-model label smoothing against the engine's own, the runners on a tiny config, and
verdicts that follow the results when they are perturbed."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from regbench import ledger as rbledger
from regbench import config, jobs, verdicts
from regbench.studies.training import claims as rules
from regbench.studies.training import runners as T
from regbench.nets import MLPSpec, OptimSpec, train

from .conftest import ROOT, SCHEMA

torch.set_num_threads(1)

EXPERIMENTS = ["early_stopping", "adamw_vs_l2", "label_smoothing"]
# The tiny block (also the one proposed for tests/tiny_config.yaml): seconds in all.
TINY = {
    "early_stopping": {"seeds": 3, "n_train": 60, "hidden": [16], "epochs": 8, "patiences": [0, 2, 5]},
    "adamw_vs_l2": {"seeds": 2, "n_train": 60, "hidden": [16], "epochs": 3,
                    "grids": {"adam_l2": {"lrs": [0.001, 0.01], "decays": [0.0, 0.01]},
                              "adamw": {"lrs": [0.001, 0.01], "decays": [0.0, 1.0]},
                              "sgd": {"lrs": [0.01], "decays": [0.0, 0.01]}}},
    "label_smoothing": {"seeds": 2, "n_train": 60, "hidden": [16], "epochs": 3, "smoothings": [0.0, 0.1]},
}
SMALL_TEACHER = {"n_val": 150, "n_test": 200}


def build(experiments: dict) -> dict:
    """config/config.yaml with these experiments (and small validation / test splits), validated."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["experiments"] = copy.deepcopy(experiments)
    cfg["teachers"]["tabular"].update(SMALL_TEACHER)
    return config.validate(cfg, config.load_schema(SCHEMA))


@pytest.fixture(scope="module")
def R():
    """The N8/N12/N13 rules."""
    return rules


@pytest.fixture(scope="module")
def cfg():
    return build(TINY)


@pytest.fixture(scope="module")
def tables(cfg):
    out = {}
    for name in EXPERIMENTS:
        params = cfg["experiments"][name]
        out[name] = pd.concat([jobs.run(name, cfg, k) for k in range(config.n_chunks(name, params))],
                              ignore_index=True)
    return out


def verdict_of(tables, rule):
    return rule(tables)["verdict"]


# ---------------------------------------------------------------- the early-stopping rule
def test_early_stop_on_a_hand_made_curve():
    val = [1.0, 0.8, 0.9, 0.85, 0.7, 0.75, 0.76, 0.77]  # bests at epochs 1, 2, 5
    assert T.early_stop(val, 1) == (3, 2)  # first epoch without a new best
    assert T.early_stop(val, 0) == (3, 2)  # patience 0 is patience 1
    assert T.early_stop(val, 2) == (4, 2)
    assert T.early_stop(val, 3) == (8, 5)  # survives the bump at epochs 3-4, stops 3 after epoch 5
    assert T.early_stop(val, 4) == (8, 5)  # never reaches 4: trains to the end
    assert T.early_stop(val, np.inf) == (8, 5)
    assert T.early_stop([1.0, np.nan, 0.9], 1) == (2, 1)  # NaN is no improvement
    assert T.early_stop([1.0, 1.0, 0.5], 2) == (3, 3)  # a tie is no improvement, strict < resets


def test_early_stopping_rows_read_restore_and_last_off_the_curve():
    val = [0.9, 0.7, 0.8, 0.85, 0.9]
    test = [1.0, 0.6, 0.65, 0.7, 0.9]
    rows = []
    for split, curve in (("val", val), ("test", test)):
        for metric in ("loss", "accuracy"):
            rows.append(pd.DataFrame(dict(seed=0, epoch=np.arange(6), split=split, metric=metric,
                                          value=[9.0] + [v if metric == "loss" else 1 - v for v in curve])))
    r = T.early_stopping_rows(pd.concat(rows), [1, 2])
    get = lambda p, w, m: r[(r.patience == p) & (r.weights == w) & (r.metric == m)].value.item()  # noqa: E731
    assert get(1, "best", "test_loss") == 0.6 and get(1, "last", "test_loss") == 0.65
    assert get(2, "last", "stop_epoch") == 4 and get(2, "last", "test_loss") == 0.7
    assert get(np.inf, "last", "test_loss") == 0.9 and get(np.inf, "best", "chosen_epoch") == 2
    assert get(1, "best", "test_accuracy") == pytest.approx(0.4)
    assert r[r.metric == "oracle_test_loss"].value.item() == 0.6  # epoch 0 is not a candidate


def test_across_regimes():
    assert verdicts.across(["supported"] * 3) == "supported"
    assert verdicts.across(["supported", "inconclusive", "supported"]) == "conditional"
    assert verdicts.across(["refuted", "inconclusive"]) == "refuted"
    assert verdicts.across(["inconclusive"]) == "inconclusive"


def test_decay_slope(R):
    lrs = [1e-3, 1e-2, 1e-1]
    assert R.decay_slope(pd.Series([1.0, 1.0, 1.0], index=lrs)) == pytest.approx(0.0, abs=1e-12)
    assert R.decay_slope(pd.Series([1.0, 0.1, 0.01], index=lrs)) == pytest.approx(-1.0)
    assert np.isnan(R.decay_slope(pd.Series([0.0, 0.0, 1.0], index=lrs)))


# ---------------------------------------------------------------- per-model label smoothing
def test_mix_smoothing_equals_the_engines_label_smoothing():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 5, generator=g, dtype=torch.float64)
    y = (x @ torch.randn(5, 3, generator=g, dtype=torch.float64)).argmax(1)
    spec, opt = MLPSpec(5, 3, (8,)), OptimSpec("adam", lr=1e-2)
    kw = dict(epochs=3, batch_size=16, dtype=torch.float64, eval_every=0)
    _, ref = train(spec, opt, [11, 12], {"train": (x, y)}, label_smoothing=0.1, **kw)
    _, mixed = train(spec, opt, [11, 12], {"train": (x, y)}, mix=T.smoothing_mix([0.1, 0.1]), **kw)
    _, plain = train(spec, opt, [11, 12], {"train": (x, y)}, **kw)
    for a, b, c in zip(ref.parameters(), mixed.parameters(), plain.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert any((a - c).abs().max() > 1e-6 for a, c in zip(ref.parameters(), plain.parameters()))
    # per model: model 1 smoothed, model 0 not
    _, both = train(spec, opt, [11, 12], {"train": (x, y)}, mix=T.smoothing_mix([0.0, 0.1]), **kw)
    for a, r, p in zip(both.parameters(), ref.parameters(), plain.parameters()):
        torch.testing.assert_close(a[1], r[1], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(a[0], p[0], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- runners
def test_schema_defaults_and_tiny_config(cfg):
    full = build({name: {} for name in EXPERIMENTS})
    assert full["experiments"]["adamw_vs_l2"]["sweep"]["optimizer"] == ["adam_l2", "adamw", "sgd"]
    assert config.n_chunks("adamw_vs_l2", full["experiments"]["adamw_vs_l2"]) == 3
    assert full["experiments"]["label_smoothing"]["n_bins"] == 15
    with pytest.raises(config.ConfigError, match="patiences"):
        build({"early_stopping": {"patiences": [-1]}})
    with pytest.raises(config.ConfigError, match="optimizer"):
        build({"adamw_vs_l2": {"sweep": {"optimizer": ["adagrad"]}}})


def test_runners_give_tidy_tables(tables, cfg):
    for name, df in tables.items():
        assert {"experiment", "seed", "metric", "value"} <= set(df.columns), name
        assert (df.experiment == name).all()
    es = tables["early_stopping"]
    p = cfg["experiments"]["early_stopping"]
    curves = es[es.metric == "curve_loss"]
    assert sorted(curves.epoch.unique()) == list(range(p["epochs"] + 1))
    assert set(es.patience.dropna()) == {0.0, 2.0, 5.0, np.inf}
    stops = es[es.metric == "stop_epoch"]
    assert stops.value.between(1, p["epochs"]).all()
    # the rule's test loss is the curve's test loss at the chosen epoch
    r = es[(es.metric == "test_loss") & (es.patience == np.inf) & (es.weights == "last")].set_index("seed").value
    end = curves[(curves.split == "test") & (curves.epoch == p["epochs"])].set_index("seed").value
    pd.testing.assert_series_equal(r.sort_index(), end.sort_index(), check_names=False)

    grid = tables["adamw_vs_l2"]
    g = cfg["experiments"]["adamw_vs_l2"]["grids"]
    for opt in ("adam_l2", "adamw", "sgd"):
        sub = grid[(grid.optimizer == opt) & (grid.metric == "test_loss")]
        assert len(sub) == 2 * len(g[opt]["lrs"]) * len(g[opt]["decays"])
    # decay 0 is the same optimizer for Adam+L2 and AdamW: same seed, same lr -> same numbers
    a = grid[(grid.decay == 0) & (grid.optimizer == "adam_l2")].set_index(["seed", "lr", "metric"]).value
    w = grid[(grid.decay == 0) & (grid.optimizer == "adamw")].set_index(["seed", "lr", "metric"]).value
    np.testing.assert_allclose(a.sort_index(), w.sort_index(), rtol=1e-5)

    ls = tables["label_smoothing"]
    m = ls[ls["bin"].isna()]
    assert set(m.metric) >= {"accuracy", "ece", "nll", "confident_wrong_rate", "overconfidence"}
    counts = ls[ls.metric == "bin_count"].groupby(["seed", "smoothing", "split"]).value.sum()
    assert (counts == SMALL_TEACHER["n_val"]).loc[:, :, "val"].all()
    assert (counts == SMALL_TEACHER["n_test"]).loc[:, :, "test"].all()


def test_same_config_same_numbers(cfg):
    a, b = jobs.run("label_smoothing", cfg), jobs.run("label_smoothing", cfg)
    pd.testing.assert_frame_equal(a, b)


def test_unknown_teacher_is_named(cfg):
    bad = copy.deepcopy(cfg)
    bad["experiments"]["early_stopping"]["teacher"] = "nope"
    with pytest.raises(ValueError, match="nope"):
        jobs.run("early_stopping", bad)


def test_ledger_rows_and_figures(tables):
    ledger = rbledger.evaluate(tables).set_index("id")
    for cid in ("N8", "N12", "N13"):
        assert ledger.loc[cid, "verdict"] in verdicts.VERDICTS and ledger.loc[cid, "verdict"] != "not run"
        assert ledger.loc[cid, "note"]
    missing = rbledger.evaluate({k: v for k, v in tables.items() if k != "label_smoothing"}).set_index("id")
    assert missing.loc["N13", "verdict"] == "not run"
    from regbench.studies.training import figures as P
    import matplotlib.pyplot as plt
    for name, fig in P.FIGURES.items():
        f = fig.draw(tables, "footer")
        assert f._suptitle.get_text()
        plt.close(f)


# ---------------------------------------------------------------- verdicts follow the results
def _curves(val_fn, n_seeds=6, epochs=30):
    """Hand-made per-epoch tables: val and test loss from val_fn(epoch, seed)."""
    rows = []
    for s in range(n_seeds):
        e = np.arange(epochs + 1)
        v = np.array([val_fn(k, s) for k in e])
        for split, curve in (("val", v), ("test", v - 0.1), ("train", np.exp(-e / 5.0))):
            for metric in ("loss", "accuracy"):
                rows.append(pd.DataFrame(dict(seed=s, epoch=e, split=split, metric=metric,
                                              value=curve if metric == "loss" else 1 - curve / 3)))
    curves = pd.concat(rows, ignore_index=True)
    rules = T.early_stopping_rows(curves, [0, 1, 5, 10, 20])
    curves = curves.assign(metric="curve_" + curves.metric)
    return {"early_stopping": pd.concat([rules, curves], ignore_index=True).assign(experiment="early_stopping")}


def test_N8_follows_the_curves(R):
    # overfits: minimum at epoch 5 + seed/3, then rises steadily -> stopping and restoring both help
    u = lambda e, s: 1 + 0.01 * (e - 5 - s / 3) ** 2  # noqa: E731
    assert verdict_of(_curves(u), R.n8) == "supported"
    # never overfits (val keeps falling): every rule trains to the end, the difference is exactly 0:
    # smaller than the smallest effect of interest
    down = lambda e, s: 2 - 0.02 * e - 0.001 * s  # noqa: E731
    assert verdict_of(_curves(down), R.n8) == "equivalent"
    # a second, deeper minimum after a long plateau: stopping at patience 5-20 returns worse models than training on
    late = lambda e, s: (1 + 0.001 * (e - 3) ** 2) if e < 26 else 0.5 - 0.01 * s  # noqa: E731
    assert verdict_of(_curves(late), R.n8) == "refuted"


def _shift(df, mask, by):
    df = df.copy()
    df.loc[mask, "value"] = df.loc[mask, "value"] + by
    return df


def test_N12_follows_the_best_of_grid(tables, R):
    grid = tables["adamw_vs_l2"]
    adamw = (grid.optimizer == "adamw") & grid.metric.isin(["test_loss"])
    spread = 0.01 * grid.seed
    assert verdict_of({"adamw_vs_l2": _shift(grid, adamw, -(1 + spread[adamw]))}, R.n12) == "supported"
    assert verdict_of({"adamw_vs_l2": _shift(grid, adamw, 1 + spread[adamw])}, R.n12) == "refuted"
    # selection is on validation: a validation loss that is bad everywhere but one cell picks that cell
    best = R.best_of_grid(grid)
    assert set(best.optimizer) == {"adam_l2", "adamw", "sgd"} and len(best) == 3 * 2
    nan_grid = _shift(grid, (grid.metric == "val_loss") & (grid.optimizer == "adamw") & (grid.lr == 0.01), np.nan)
    assert (R.best_of_grid(nan_grid).query("optimizer == 'adamw'").lr == 0.001).all()


def test_N13_follows_the_calibration(tables, R):
    ls = tables["label_smoothing"]
    s01 = (ls.smoothing == 0.1) & ls.metric.isin(["ece", "top_wrong"]) & ls["bin"].isna()
    base = (ls.smoothing == 0.0) & ls.metric.isin(["ece", "top_wrong"]) & ls["bin"].isna()
    lower = _shift(_shift(ls, base, 0.5), base, 0.01 * ls.seed[base])
    assert verdict_of({"label_smoothing": lower}, R.n13) == "supported"
    higher = _shift(_shift(ls, s01, 0.5), s01, 0.01 * ls.seed[s01])
    assert verdict_of({"label_smoothing": higher}, R.n13) == "refuted"
    # fewer confident mistakes but a worse ECE is not "curbs over-confidence"
    mixed = _shift(lower, (lower.smoothing == 0.1) & (lower.metric == "ece"), 1.0)
    assert verdict_of({"label_smoothing": mixed}, R.n13) == "refuted"
