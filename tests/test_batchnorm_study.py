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
    gap = d6[d6.metric == "gap_loss"].set_index(["lr_scaling", "batch_size", "norm", "seed"]).value
    val = d6[(d6.metric == "loss") & (d6.split == "val")].set_index(["lr_scaling", "batch_size", "norm", "seed"]).value
    tr = d6[(d6.metric == "loss") & (d6.split == "train")].set_index(["lr_scaling", "batch_size", "norm", "seed"]).value
    fixed = d6.lr_scaling == "fixed"
    np.testing.assert_allclose(gap.sort_index(), (val - tr).sort_index(), rtol=1e-9)
    # the scaled-lr arm: lr x sqrt(batch / 8), no ghost BN; at batch 8 its lr is the fixed one, so its runs are those
    sq = d6[d6.lr_scaling == "sqrt"]
    assert set(sq.norm) == {"none", "batch"} and np.allclose(sq[sq.batch_size == 32].lr, 2e-3)
    key = ["seed", "norm", "split", "metric"]
    at8 = lambda m: d6[m & (d6.batch_size == 8) & d6.norm.isin(["none", "batch"])].sort_values(key).value.to_numpy()  # noqa: E731
    np.testing.assert_array_equal(at8(fixed), at8(d6.lr_scaling == "sqrt"))
    assert not np.allclose(*(d6[m & (d6.batch_size == 32) & (d6.norm == "batch") & (d6.metric == "gap_loss")].sort_values("seed")
                             .value.to_numpy() for m in (fixed, d6.lr_scaling == "sqrt")))

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


# ---------------------------------------------------------------- every rule reaches each verdict
# Planted tables with realistic values: cross-entropies near 0.5-1, per-seed noise of 1-3% of the
# loss, effects of 2-10%, 8 seeds (fewer than the defaults' 8-10), so a verdict here is not an
# artefact of an implausibly clean table.
SEEDS = 8


def _z(r):
    z = r.standard_normal(SEEDS)
    return (z - z.mean()) / z.std(ddof=1)  # standardized: the planted mean and sd are exact


Z = _z(np.random.default_rng(7))  # a seed-level effect shared by the arms of a table (task difficulty)


def planter(seed=0):
    """planted(effect, sd): per-seed values with mean `effect` and sd `sd` exactly, fresh noise on every call
    (arms differ by their own noise, not by a constant), the same sequence for the same seed."""
    r = np.random.default_rng(seed)
    return lambda effect, sd=0.01: effect + sd * _z(r)


def rule_of(cid):
    return studies.claims()[cid].rule


def n5_planted(drops: dict, sd=0.01) -> pd.DataFrame:
    """bn_dropout table: failing arm test loss 0.8 (+ seed noise); each fix's loss lower by drops[fix] x 0.8."""
    base = 0.8 + 0.05 * Z
    planted = planter()
    rows = []
    for arm in ("dropout_bn", *rules.FIXES):
        loss = base if arm == "dropout_bn" else base * (1 - planted(drops.get(arm, 0.08), sd))
        for s in range(SEEDS):
            rows += [dict(seed=s, arm=arm, layer=np.nan, split="test", metric="loss", value=loss[s]),
                     dict(seed=s, arm=arm, layer=np.nan, split="test", metric="accuracy", value=0.7 + 0.1 * (0.8 - loss[s])),
                     dict(seed=s, arm=arm, layer=np.nan, split="train", metric="loss", value=0.4)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("drops, sd, expected", [
    ({}, 0.01, "supported"),                                                     # every fix lowers the loss ~8%
    ({"no_dropout": -0.08}, 0.01, "conditional"),                                # one fix raises it, the rest help
    ({a: -0.06 for a in rules.FIXES}, 0.01, "refuted"),                          # the failing arm is the best
    ({a: 0.0 for a in rules.FIXES}, 0.003, "equivalent"),                        # no fix matters by 1%
    ({a: 0.005 for a in rules.FIXES}, 0.04, "inconclusive"),                     # too noisy to tell
])
def test_n5_reaches_each_verdict(drops, sd, expected):
    out = rule_of("N5")({"bn_dropout": n5_planted(drops, sd)})
    assert out["verdict"] == expected, out
    assert out["family"] == "regimes" and out["cells"] == 4 and out["sesoi"] == rules.LOSS_SESOI


def n6_planted(narrow=(-0.05, -0.01), narrow_sqrt=-0.01, test=-0.04, ghost=-0.03, sd=0.01, arms=("fixed", "sqrt")):
    """bn_batchsize table at batches 8 and 256: no-norm gap 0.3, held-out and test loss 1.0 (so relative = absolute);
    BN's gap = 0.3 + narrow[i] (lr fixed) or + narrow_sqrt at 256 (lr scaled); BN's test loss 1 + test at 8;
    ghost BN's gap at 256 = BN's + ghost."""
    planted = planter()
    rows = []

    def add(b, norm, arm, gap, test_loss):
        for s in range(SEEDS):
            base = dict(seed=s, batch_size=b, norm=norm, lr_scaling=arm, lr=1e-3)
            rows.extend([dict(base, split=np.nan, metric="gap_loss", value=gap[s]),
                         dict(base, split="val", metric="loss", value=1.0 + 0.0 * gap[s]),
                         dict(base, split="train", metric="loss", value=1.0 - gap[s]),
                         dict(base, split="test", metric="loss", value=test_loss[s]),
                         dict(base, split=np.nan, metric="updates", value=512.0)])
            if norm == "ghost":
                rows.append(dict(base, split=np.nan, metric="ghost_batch", value=8.0))

    none = np.full(SEEDS, 0.3)
    for arm in arms:
        for i, b in enumerate((8, 256)):
            d = narrow[i] if (arm == "fixed" or i == 0) else narrow_sqrt
            bn_gap = 0.3 + planted(d, sd)
            add(b, "none", arm, none, np.ones(SEEDS))
            add(b, "batch", arm, bn_gap, 1.0 + planted(test if i == 0 else 0.0, sd))
            if arm == "fixed" and b == 256:
                add(b, "ghost", arm, bn_gap + planted(ghost, sd), np.ones(SEEDS))
    return pd.DataFrame(rows)


def n6_verdicts(**kw) -> dict:
    t = {"bn_batchsize": n6_planted(**kw)}
    return {cid: rule_of(cid)(t)["verdict"] for cid in ("N6", "N6a", "N6b", "N6c", "N6d")}


def test_n6_as_documented_is_supported_in_every_part():
    assert set(n6_verdicts().values()) == {"supported"}


@pytest.mark.parametrize("part, kw, expected", [
    ("N6a", dict(narrow=(0.05, 0.06)), "refuted"),                      # BN widens the gap at the small batch
    ("N6a", dict(narrow=(0.0, 0.0), sd=0.003), "equivalent"),
    ("N6a", dict(narrow=(-0.005, 0.0), sd=0.04), "inconclusive"),
    ("N6b", dict(test=0.04), "refuted"),                                # BN raises the test loss
    ("N6b", dict(test=0.0, sd=0.003), "equivalent"),
    ("N6b", dict(test=-0.005, sd=0.04), "inconclusive"),
    ("N6c", dict(narrow=(-0.01, -0.05), narrow_sqrt=-0.05), "refuted"),  # the narrowing grows with the batch
    ("N6c", dict(narrow=(-0.05, -0.01), narrow_sqrt=-0.09), "conditional"),  # fades at fixed lr, grows with the lr scaled
    ("N6c", dict(narrow=(-0.05, -0.05), narrow_sqrt=-0.05, sd=0.003), "equivalent"),
    ("N6c", dict(narrow=(-0.05, -0.045), narrow_sqrt=-0.045, sd=0.05), "inconclusive"),
    ("N6d", dict(ghost=0.03), "refuted"),                               # small normalization batches widen the gap
    ("N6d", dict(ghost=0.0, sd=0.003), "equivalent"),
    ("N6d", dict(ghost=-0.005, sd=0.04), "inconclusive"),
])
def test_n6_each_part_reaches_each_verdict_and_the_weakest_decides(part, kw, expected):
    v = n6_verdicts(**kw)
    assert v[part] == expected, v
    assert v["N6"] == verdicts.worst(*(v[k] for k in ("N6a", "N6b", "N6c", "N6d")))


def test_n6_rows_carry_calibration_fields_and_a_table_without_lr_arms_still_works():
    t = {"bn_batchsize": n6_planted(arms=("fixed",)).drop(columns=["lr_scaling", "lr"])}
    for cid, family in (("N6a", "paired"), ("N6b", "paired"), ("N6c", "regimes"), ("N6d", "paired")):
        out = rule_of(cid)(t)
        assert out["family"] == family and out["n"] == SEEDS and out["sesoi"] == rules.LOSS_SESOI and out["verdict"] == "supported"


def n7_planted(stale=0.1, missing=0.3, sd=0.01, ln_acc=0.7, ln_raised=0.0, bn_raised=1.0, bn_acc=None, spread=1e-17):
    """bn_stats table: fresh test loss 0.6; stale / missing higher by that share; majority class 0.3."""
    planted = planter()
    rows = []
    fresh = 0.6 + 0.03 * Z
    stale_, missing_, ln_, bn_ = planted(stale, sd), planted(missing, sd), planted(ln_acc, 0.03), planted(bn_acc or 0, 0.01)
    for s in range(SEEDS):
        base = dict(seed=s, norm="batch", batch_size=32, split="test")
        rows += [dict(base, arm="fresh", metric="loss", value=fresh[s]),
                 dict(base, arm="stale", metric="loss", value=fresh[s] * (1 + stale_[s])),
                 dict(base, arm="missing", metric="loss", value=fresh[s] * (1 + missing_[s])),
                 dict(base, arm="chance", norm=np.nan, batch_size=np.nan, metric="chance_accuracy", value=0.3),
                 dict(base, arm="batch1", norm="layer", batch_size=1, metric="accuracy", value=ln_[s]),
                 dict(base, arm="batch1", norm="layer", batch_size=1, split=np.nan, metric="raised", value=ln_raised),
                 dict(base, arm="batch1", norm="batch", batch_size=1, split=np.nan, metric="raised", value=bn_raised),
                 dict(base, arm="batch1", norm="batch", batch_size=1, split=np.nan, metric="single_row_bn_spread", value=spread),
                 dict(base, arm="stale", split=np.nan, metric="stale_var_drift", value=0.4)]
        if bn_acc is not None:
            rows.append(dict(base, arm="batch1", norm="batch", batch_size=1, metric="accuracy", value=bn_[s]))
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kw, expected", [
    ({}, "supported"),                                                  # stale/missing cost; LN learns; BN refused (identity)
    (dict(bn_raised=0.0, bn_acc=0.305), "supported"),                   # an engine that lets BN train: it stays at chance
    (dict(stale=-0.05, missing=-0.05), "refuted"),                      # stale statistics are better than fresh ones
    (dict(stale=0.1, missing=-0.1), "conditional"),                     # one costs, the other helps (Holm over the two)
    (dict(stale=0.0, missing=0.0, sd=0.003), "equivalent"),             # statistics do not matter by 1%
    (dict(stale=0.005, missing=0.0, sd=0.05), "inconclusive"),
    (dict(ln_raised=1.0), "refuted"),                                   # LayerNorm cannot train on one row either
    (dict(ln_acc=0.31), "inconclusive"),                                # LayerNorm at batch 1 not clearly above chance
    (dict(bn_raised=0.0, bn_acc=0.7), "refuted"),                       # BN learns at batch 1
    (dict(spread=0.5), "refuted"),                                      # BN on one row carries the row: identity broken
])
def test_n7_reaches_each_verdict(kw, expected):
    out = rule_of("N7")({"bn_stats": n7_planted(**kw)})
    assert out["verdict"] == expected, out
    assert out["family"] == "regimes" and out["cells"] == 2


def test_n7_bn_at_batch_one_is_an_identity_check():
    parts = rules.n7_judged(n7_planted())
    assert parts["bn_batch1"]["verdict"] == "identity check"
    assert rules.n7_judged(n7_planted(spread=1e-6))["bn_batch1"]["verdict"] == "inconclusive"


def test_scaled_lr():
    assert bn.scaled_lr(1e-3, 32, 8, "fixed") == 1e-3
    assert bn.scaled_lr(1e-3, 32, 8, "sqrt") == pytest.approx(2e-3)
    assert bn.scaled_lr(1e-3, 32, 8, "linear") == pytest.approx(4e-3)
