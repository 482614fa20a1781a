"""The batch-norm study (N5-N7): runners on a tiny config, the variance-shift
measurement on hand-made cases, and verdict rules that flip with the results."""
import copy
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from regbench import ledger as rbledger
from regbench import config, jobs, nets, studies, verdicts
from regbench.studies.batchnorm import claims as rules
from regbench.studies.batchnorm import runners as bn
from regbench.studies.batchnorm import figures as figs

from .conftest import ROOT, SCHEMA

torch.set_num_threads(1)

TINY = {
    "bn_dropout": {"seeds": 3, "n_train": 200, "hidden": [16, 16], "epochs": 3, "batch_size": 32},
    "bn_batchsize": {"seeds": 3, "n_train": 64, "hidden": [16, 16], "steps": 16, "ghost_batch": 4,
                     "sweep": {"batch_size": [8, 32]}},
    "bn_stats": {"seeds": 3, "n_train": 100, "hidden": [16, 16], "epochs": 3, "batch_size": 16, "b1_epochs": 1},
}


@pytest.fixture(scope="module")
def cfg():
    """config/config.yaml with the study's tiny experiments (validated, defaults filled)."""
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["teachers"]["tabular"].update(n_val=300, n_test=400)
    raw["experiments"] = copy.deepcopy(TINY)
    return config.validate(raw, config.load_schema(SCHEMA))


def run(name, cfg, chunk=0):
    return jobs.run(name, cfg, chunk)


@pytest.fixture(scope="module")
def tables(cfg):
    out = {}
    for name, params in cfg["experiments"].items():
        out[name] = pd.concat([run(name, cfg, k) for k in range(config.n_chunks(name, params))], ignore_index=True)
    return out


# ---------------------------------------------------------------- config and runners
def test_defaults_validate_and_bad_values_are_rejected(cfg):
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["experiments"] = {name: {} for name in TINY}
    full = config.validate(raw, config.load_schema(SCHEMA))
    assert full["experiments"]["bn_dropout"]["arms"][0] == "dropout_bn"
    assert config.n_chunks("bn_batchsize", full["experiments"]["bn_batchsize"]) == len(full["experiments"]["bn_batchsize"]["sweep"]["batch_size"])
    for bad in ({"bn_dropout": {"arms": ["bn_dropout", "layer_norm"]}},  # the failing arm is required
                {"bn_dropout": {"p_hidden": 1.0}},
                {"bn_batchsize": {"sweep": {"batch_size": [1, 8]}}},
                {"bn_stats": {"eval_batch": 1}}):
        raw["experiments"] = bad
        with pytest.raises(config.ConfigError):
            config.validate(raw, config.load_schema(SCHEMA))


def test_runner_tables(tables, cfg):
    d5 = tables["bn_dropout"]
    assert set(d5.arm) == set(bn.N5_ARMS)
    test = d5[(d5.split == "test") & d5.layer.isna()]
    assert set(test.metric) == {"loss", "accuracy"} and test.groupby("arm").seed.nunique().eq(3).all()
    moments = d5[d5.layer.notna()]
    assert set(moments.arm) == {"dropout_bn", "bn_dropout", "dropout_bn_recal", "layer_norm", "no_dropout"}
    assert np.isfinite(moments[moments.metric == "var_ratio"].value).all()
    # Recalibration brings the running variance to the eval-mode variance it meets (same rows' distribution).
    recal = moments[(moments.arm == "dropout_bn_recal") & (moments.metric == "running_var_ratio") & (moments.layer == 0)]
    assert recal.value.between(0.7, 1.4).all()

    d6 = tables["bn_batchsize"]
    assert set(d6.batch_size) == {8, 32} and set(d6.norm) == {"none", "batch", "ghost"}
    upd = d6[d6.metric == "updates"]
    assert (upd.value == cfg["experiments"]["bn_batchsize"]["steps"]).all()  # updates held fixed
    ep = d6[d6.metric == "epochs"].groupby("batch_size").value.first()
    assert ep[32] == 4 * ep[8]  # so epochs grow with the batch
    gap = d6[d6.metric == "gap_loss"].set_index(["batch_size", "norm", "seed"]).value
    val = d6[(d6.metric == "loss") & (d6.split == "val")].set_index(["batch_size", "norm", "seed"]).value
    tr = d6[(d6.metric == "loss") & (d6.split == "train")].set_index(["batch_size", "norm", "seed"]).value
    np.testing.assert_allclose(gap.sort_index(), (val - tr).sort_index(), rtol=1e-9)

    d7 = tables["bn_stats"]
    raised = d7[d7.metric == "raised"].groupby(["norm", "batch_size"]).value.max()
    assert raised[("batch", 1)] == 1 and raised[("layer", 1)] == 0  # torch refuses BN on one row
    assert {"fresh", "stale", "missing", "recalibrated", "batch_stats", "layer_norm", "batch1", "chance"} <= set(d7.arm)
    assert d7[d7.metric == "single_row_bn_spread"].value.max() < 1e-10


def test_same_config_same_numbers(cfg, tables):
    again = run("bn_batchsize", cfg, 0)
    first = tables["bn_batchsize"]
    first = first[first.batch_size == 8].reset_index(drop=True)
    pd.testing.assert_frame_equal(again.reset_index(drop=True), first)


def test_every_claim_row_is_computed_and_figures_draw(tables):
    ledger = rbledger.evaluate(tables).set_index("id")
    for cid in ("N5", "N6", "N7"):
        assert ledger.loc[cid, "verdict"] in verdicts.VERDICTS and ledger.loc[cid, "verdict"] != "not run"
        assert ledger.loc[cid, "note"]
    for name, f in figs.FIGURES.items():
        fig = f.draw({t: tables[t] for t in f.tables}, "footer")
        assert fig._suptitle.get_text()
        import matplotlib.pyplot as plt
        plt.close(fig)


def test_plot_module_imports_no_torch():
    code = "import sys, regbench.studies.batchnorm.figures; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------- the variance shift, by hand
def _identity_net(p, order="dropout_norm", width=4):
    """One hidden block whose Linear is the identity: the norm input is dropout(relu(x)) (or x)."""
    model = nets.BatchedMLP(nets.MLPSpec(width, 2, (width,), norm="batch", order=order, p_hidden=p), [1, 2],
                            dtype=torch.float64)
    with torch.no_grad():
        model.weight0.copy_(torch.eye(width, dtype=torch.float64).expand(2, width, width))
        if model.bias0 is not None:
            model.bias0.zero_()
    return model


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_inverted_dropout_keeps_the_mean_and_scales_the_second_moment(p):
    g = torch.Generator().manual_seed(0)
    x = 0.5 + torch.rand(40_000, 4, generator=g, dtype=torch.float64)  # positive: ReLU is the identity
    model = _identity_net(p)
    (mom,) = bn.input_moments(model, x, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(mom["mean_ratio"], 1.0, atol=0.01)
    np.testing.assert_allclose(mom["m2_ratio"], 1 / (1 - p), rtol=0.02)
    # From the eval-mode moments of x itself, unit by unit: sum(E[x^2]/q - E[x]^2) / sum(var x).
    q = 1 - p
    predicted = float(((x**2).mean(0) / q - x.mean(0) ** 2).sum() / x.var(0, unbiased=False).sum())
    np.testing.assert_allclose(mom["var_ratio_predicted"], predicted, rtol=1e-6)
    np.testing.assert_allclose(mom["var_ratio"], predicted, rtol=0.05)
    # Running statistics at their init (var 1) against the eval variance 1/12 of the input.
    np.testing.assert_allclose(mom["running_var_ratio"], 4 / float(x.var(0, unbiased=False).sum()), rtol=1e-9)


def test_no_dropout_before_the_norm_means_no_shift():
    x = 0.5 + torch.rand(5000, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (mom,) = bn.input_moments(_identity_net(0.5, order="norm_dropout"), x, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(mom["var_ratio"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(mom["mean_shift"], 0.0, atol=1e-12)
    assert np.isnan(mom["var_ratio_predicted"]).all() and np.isnan(mom["mean_ratio"]).all()


def test_helpers():
    assert bn.updates_schedule(512, 8, 512) == (8, 512)
    assert bn.updates_schedule(100, 32, 10) == (3, 9)  # nearest whole number of epochs, recorded
    with pytest.raises(ValueError):
        bn.updates_schedule(16, 32, 10)
    c = bn.chance(np.array([[0, 0, 1, 2]]), np.array([[0, 1, 1, 1]]), 3)
    np.testing.assert_allclose(c["chance_accuracy"], [0.25])
    np.testing.assert_allclose(c["chance_loss"], [-(np.log(0.5) + 3 * np.log(0.25)) / 4])
    assert bn.single_row_bn_spread() < 1e-10


# ---------------------------------------------------------------- verdicts flip with the results
def _set(df, mask, values_by_seed):
    df = df.copy()
    idx = df.index[mask]
    df.loc[idx, "value"] = [values_by_seed(s) for s in df.loc[idx, "seed"]]
    return df


def _jitter(base):
    return lambda s: base + 0.01 * (s - 1)


def n5_table(raw, fail=1.0, **fixes):
    df = raw.copy()
    loss = (df.split == "test") & df.layer.isna() & (df.metric == "loss")
    df = _set(df, loss & (df.arm == "dropout_bn"), _jitter(fail))
    for arm in rules.FIXES:
        df = _set(df, loss & (df.arm == arm), _jitter(fixes.get(arm, 0.8)))
    return df


def test_n5_flips(tables):
    raw = tables["bn_dropout"]
    rule = studies.claims()["N5"].rule
    assert rule({"bn_dropout": n5_table(raw)})["verdict"] == "supported"
    assert rule({"bn_dropout": n5_table(raw, no_dropout=1.2)})["verdict"] == "conditional"
    assert rule({"bn_dropout": n5_table(raw, dropout_bn_recal=1.2)})["verdict"] == "refuted"
    assert rule({"bn_dropout": n5_table(raw, **{a: 1.2 for a in rules.FIXES})})["verdict"] == "refuted"
    assert rule({"bn_dropout": n5_table(raw, **{a: 1.0 for a in rules.FIXES})})["verdict"] == "inconclusive"


def n6_table(raw, none=1.0, batch=(0.7, 0.9), ghost=(0.6, 0.6)):
    """Gap values per norm at the (two) batch sizes, smallest first."""
    df = raw.copy()
    bs = sorted(df.batch_size.unique())
    gap = df.metric == "gap_loss"
    for i, b in enumerate(bs):
        at = gap & (df.batch_size == b)
        df = _set(df, at & (df.norm == "none"), _jitter(none))
        df = _set(df, at & (df.norm == "batch"), _jitter(batch[i]))
        df = _set(df, at & (df.norm == "ghost"), _jitter(ghost[i]))
    return df


def test_n6_flips(tables):
    raw = tables["bn_batchsize"]
    rule = studies.claims()["N6"].rule
    assert rule({"bn_batchsize": n6_table(raw)})["verdict"] == "supported"
    # BN narrows the gap at the small batch but widens it at the large one: holds in a range only.
    assert rule({"bn_batchsize": n6_table(raw, batch=(0.7, 1.2))})["verdict"] == "conditional"
    # The narrowing grows with the batch (the opposite of fading), and ghost BN does not help.
    assert rule({"bn_batchsize": n6_table(raw, batch=(0.9, 0.6), ghost=(0.9, 0.8))})["verdict"] == "refuted"
    # BN widens the gap everywhere, ghost BN no better: refuted; ghost BN narrower: batch noise helps -> conditional.
    assert rule({"bn_batchsize": n6_table(raw, batch=(1.2, 1.2), ghost=(1.3, 1.3))})["verdict"] == "refuted"
    assert rule({"bn_batchsize": n6_table(raw, batch=(1.2, 1.2), ghost=(0.8, 0.8))})["verdict"] == "conditional"
    # A supported BN-level result with ghost BN widening the gap is only conditional.
    assert rule({"bn_batchsize": n6_table(raw, ghost=(1.0, 1.1))})["verdict"] == "conditional"


def n7_table(raw, stale=0.1, missing=0.3, ln_raised=0.0, bn_raised=1.0, bn_acc=None):
    df = raw.copy()
    loss = (df.split == "test") & (df.metric == "loss")
    df = _set(df, loss & (df.arm == "fresh"), _jitter(1.0))
    df = _set(df, loss & (df.arm == "stale"), _jitter(1.0 + stale))
    df = _set(df, loss & (df.arm == "missing"), _jitter(1.0 + missing))
    acc = (df.split == "test") & (df.metric == "accuracy") & (df.arm == "batch1")
    chance = df.arm == "chance"
    df = _set(df, chance & (df.metric == "chance_accuracy"), _jitter(0.3))
    df = _set(df, acc & (df.norm == "layer"), _jitter(0.7))
    raised = (df.metric == "raised") & (df.arm == "batch1")
    df = _set(df, raised & (df.norm == "layer"), lambda s: ln_raised)
    df = _set(df, raised & (df.norm == "batch"), lambda s: bn_raised)
    if bn_acc is not None:  # pretend BN trained at batch 1 and reached this accuracy
        rows = df[acc & (df.norm == "layer")].assign(norm="batch", value=lambda d: bn_acc + 0.01 * (d.seed - 1))
        df = pd.concat([df, rows], ignore_index=True)
    return df


def test_n7_flips(tables):
    raw = tables["bn_stats"]
    rule = studies.claims()["N7"].rule
    assert rule({"bn_stats": n7_table(raw)})["verdict"] == "supported"
    assert rule({"bn_stats": n7_table(raw, stale=-0.1)})["verdict"] == "refuted"
    assert rule({"bn_stats": n7_table(raw, stale=0.0)})["verdict"] == "inconclusive"
    assert rule({"bn_stats": n7_table(raw, missing=-0.2)})["verdict"] == "refuted"
    assert rule({"bn_stats": n7_table(raw, ln_raised=1.0)})["verdict"] == "refuted"
    assert rule({"bn_stats": n7_table(raw, bn_raised=0.0, bn_acc=0.7)})["verdict"] == "refuted"  # BN learns at batch 1
    assert rule({"bn_stats": n7_table(raw, bn_raised=0.0, bn_acc=0.3)})["verdict"] == "supported"  # BN stuck at chance
