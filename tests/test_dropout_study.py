"""The dropout study (N1-N4): the expectation check on hand-made activations,
the runners on a tiny config, and verdicts that follow the results."""
import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from regbench import jobs, config as rbconfig
from regbench.studies.dropout import claims as rules
from regbench.studies.dropout import runners as dx
from regbench.studies.dropout import figures as dplots

from tests.conftest import ROOT, SCHEMA

torch.set_num_threads(1)

TINY = {
    "dropout_expectation": {"seeds": 2, "rates": [0.3, 0.7], "rows": 16, "width": 32, "n_masks": 300},
    "dropout_mc": {"seeds": 2, "n_train": 60, "rates": [0.2, 0.5], "hidden": [16], "epochs": 4, "eval_every": 2,
                   "mc_samples": 6, "mc_rows": 150},
    "dropout_rates": {"seeds": 2, "hidden_rates": [0.0, 0.5], "input_rates": [0.0, 0.2], "hidden": [16], "steps": 6,
                      "min_epochs": 2, "evals": 2, "sweep": {"n_train": [40, 80]}, "chunk_size": 1},
}


@pytest.fixture(scope="module")
def cfg():
    """config/config.yaml with the dropout experiments (tiny) added and a small teacher."""
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["experiments"] = copy.deepcopy(TINY)
    raw["teachers"]["tabular"].update(n_val=100, n_test=150)
    return rbconfig.validate(raw, rbconfig.load_schema(SCHEMA))


@pytest.fixture(scope="module")
def tables(cfg):
    out = {}
    for name in TINY:
        params = cfg["experiments"][name]
        chunks = range(rbconfig.n_chunks(name, params))
        out[name] = pd.concat([jobs.run(name, cfg, k) for k in chunks], ignore_index=True)
    return out


# ------------------------------------------------------------- N1 by hand
def test_z_stats_by_hand():
    # d over 4 masks: unit 0 = [1, -1, 1, -1] (mean 0), unit 1 = [2, 2, 2, 2] (no spread: exact)
    d = np.array([[1.0, 2.0], [-1.0, 2.0], [1.0, 2.0], [-1.0, 2.0]])
    z, exact = dx._z_stats(d.sum(0), (d * d).sum(0), 4)
    assert exact == 1 and z.shape == (1,) and z[0] == 0.0
    d = np.array([[2.0], [0.0], [2.0], [0.0]])  # mean 1, sample var 4/3
    z, _ = dx._z_stats(d.sum(0), (d * d).sum(0), 4)
    assert z[0] == pytest.approx(1 / np.sqrt(4 / 3 / 4))


@pytest.mark.parametrize("variant", ["standard", "inverted", "problem2a", "problem2b"])
def test_correct_variants_match_inference_on_hand_made_activations(variant):
    h = np.r_[np.linspace(0.1, 5.0, 300), np.zeros(20)]  # 20 dead ReLU units
    p = 0.5 if variant.startswith("problem2") else 0.3
    sums = dx._numpy_variant(variant, h, p, 3000, np.random.default_rng(1))
    z, exact = dx._z_stats(*sums, 3000)
    assert exact == 20 and z.size == 300
    assert np.mean(np.abs(z) > 3) < 0.02
    assert abs(z.mean()) < 0.3  # no bias: z ~ N(0, 1), mean over 300 units has sd 0.06


def test_wrong_control_is_caught():
    h = np.linspace(0.1, 5.0, 300)
    z, _ = dx._z_stats(*dx._numpy_variant("control", h, 0.3, 3000, np.random.default_rng(1)), 3000)
    assert np.mean(np.abs(z) > 3) == 1.0 and z.min() > 3


def test_engine_dropout_keeps_the_expectation():
    x = np.random.default_rng(0).standard_normal((6, 5))
    s, s2 = dx._engine_variant(x, [0.2, 0.6], 2000, 3, torch.device("cpu"))
    for k in range(2):
        z, _ = dx._z_stats(s[k], s2[k], 2000)
        assert z.size == 6 and np.abs(z).max() < 4.5


def test_mc_summary_removes_monte_carlo_error():
    # masks give p in {a, b} equally often; p_det = exact mean -> gap2 ~ 0 after the correction
    a, b = np.array([0.9, 0.1]), np.array([0.5, 0.5])
    S = 400
    rng = np.random.default_rng(0)
    ps = np.where(rng.random(S)[:, None] < 0.5, a, b)[:, None, None, :]  # [S, K=1, n=1, C]
    ent = -(ps * np.log(ps)).sum(-1)
    m = dx.mc_summary(((a + b) / 2)[None, None], ps.sum(0), (ps**2).sum(0), ent.sum(0), S)
    assert m["spread2"][0, 0] == pytest.approx(2 * 0.2**2, rel=0.05)  # each class probability is 0.7 +- 0.2
    assert abs(m["gap2"][0, 0]) < 0.1 * m["spread2"][0, 0]
    assert m["mi"][0, 0] > 0


def test_rate_sweep_always_has_the_no_dropout_baseline():
    arms = dx._arms({"hidden_rates": [0.5], "input_rates": [0.2, 0.0]})
    assert arms == {(0.0, 0.0): [("hidden", 0.0), ("input", 0.0)], (0.0, 0.5): [("hidden", 0.5)], (0.2, 0.0): [("input", 0.2)]}


# ------------------------------------------------------------- runners
def test_runners_give_tidy_tables(tables, cfg):
    e = tables["dropout_expectation"]
    assert set(e.variant) == set(dx.VARIANTS)
    assert set(e.seed) == {0, 1}
    r = tables["dropout_rates"]
    assert set(r.n_train) == {40, 80} and set(r.layer) == {"hidden", "input"}
    assert {"best_val", "final"} == set(r.when)
    # the no-dropout model stands for rate 0 of both sweeps: identical numbers
    q = r[(r.rate == 0) & (r.when == "final") & (r.metric == "test_loss")].pivot_table(index=["n_train", "seed"], columns="layer", values="value")
    assert np.allclose(q.hidden, q.input)
    m = tables["dropout_mc"]
    assert {"test", "ood", "test_vs_ood", "val"} == set(m.split)
    a = m[m.metric == "auroc_mi"].value
    assert a.between(0, 1).all()


def test_same_config_same_numbers(cfg, tables):
    again = jobs.run("dropout_expectation", cfg, 0)
    pd.testing.assert_frame_equal(again, tables["dropout_expectation"])


def test_figures_draw(tables):
    for fig in dplots.FIGURES.values():
        f = fig.draw({k: tables[k] for k in fig.tables}, "footer")
        assert f.axes


# ------------------------------------------------------------- verdicts follow the results
def test_rules_run_on_the_runners_tables(tables):
    # verdicts on planted tables: tests/test_dropout_claims.py; here the rules read what the runners write
    from regbench.verdicts import REGISTRY, VERDICTS
    for cid in ("N1", "N2", "N3", "N3a", "N3b", "N4", "N4a", "N4b", "N4c"):
        out = REGISTRY[cid].rule(tables)
        assert out["verdict"] in VERDICTS and out["note"], cid
    assert REGISTRY["N3a"].rule(tables)["family"] in ("regimes", "paired")


def _set(df, mask, values):
    df = df.copy()
    df.loc[mask, "value"] = values
    return df


def test_N2_flips(tables):
    df = tables["dropout_mc"]
    gap = (df.metric == "gap2") & (df.split == "test")
    spread = df.loc[(df.metric == "spread2") & (df.split == "test")].value.to_numpy()
    seedj = df.loc[gap, "seed"].to_numpy()
    assert rules.n2({"dropout_mc": _set(df, gap, spread * 0.001 * (1 + seedj))})["verdict"] == "supported"
    assert rules.n2({"dropout_mc": _set(df, gap, spread * 0.5 * (1 + 0.1 * seedj))})["verdict"] == "refuted"
    rate = df.loc[gap, "rate"].to_numpy()
    mixed = np.where(rate == rate.min(), 0.001, 0.5) * spread * (1 + 0.1 * seedj)
    assert rules.n2({"dropout_mc": _set(df, gap, mixed)})["verdict"] == "conditional"


def test_N4_flips(tables):
    df = tables["dropout_mc"].copy()
    s = df.seed.astype(float)
    df = _set(df, df.metric == "auroc_mi", 0.8 + 0.01 * s[df.metric == "auroc_mi"])
    for metric in ("nll", "ece"):
        df = _set(df, df.metric == f"{metric}_det", 0.5 + 0.01 * s[df.metric == f"{metric}_det"])
        df = _set(df, df.metric == f"{metric}_mc", 0.4)
    assert rules.n4({"dropout_mc": df})["verdict"] == "supported"
    worse = _set(df, df.metric == "auroc_mi", 0.2 + 0.01 * s[df.metric == "auroc_mi"])
    worse = _set(worse, worse.metric == "nll_mc", 0.9)
    worse = _set(worse, worse.metric == "ece_mc", 0.9)
    assert rules.n4({"dropout_mc": worse})["verdict"] == "refuted"
    part = _set(df, df.metric == "ece_mc", 0.9)  # spread and NLL hold, calibration fails: a refuted part refutes
    assert rules.n4({"dropout_mc": part})["verdict"] == "refuted"
    mixed = _set(df, (df.metric == "ece_mc") & (df.rate == df.rate.max()), 0.9)  # calibration fails at one rate only
    assert rules.n4({"dropout_mc": mixed})["verdict"] == "conditional"


def test_config_rejects_a_bad_rate():
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["experiments"] = {"dropout_rates": {"hidden_rates": [0.0, 1.0]}}
    with pytest.raises(rbconfig.ConfigError, match="hidden_rates"):
        rbconfig.validate(raw, rbconfig.load_schema(SCHEMA))
