"""Verdicts are computed from the results: perturb the results and they change."""
import numpy as np
import pytest

from regbench import ledger as rbledger
from regbench.verdicts import VERDICTS


@pytest.fixture(scope="module")
def tables(tiny_tables):
    return tiny_tables


def verdicts(tables):
    return rbledger.evaluate(tables).set_index("id").verdict


def test_every_linear_claim_has_a_computed_row(tables):
    ledger = rbledger.evaluate(tables)
    assert {f"L{i}" for i in range(1, 7)} | {"L7a", "L7b", "L7c", "L7d", "L7e", "L8"} <= set(ledger.id)
    assert ledger.verdict.isin(VERDICTS).all()
    assert (ledger.verdict != "not run").all()
    md = rbledger.to_markdown(ledger)
    assert sum(md.count(f"\n| {i} |") for i in ledger.id) == len(ledger)


def test_missing_experiment_reads_not_run(tables):
    ledger = rbledger.evaluate({k: v for k, v in tables.items() if k != "geometry"}).set_index("id")
    assert ledger.loc["L6", "verdict"] == "not run"
    assert "geometry" in ledger.loc["L6", "note"]


def test_L1_flips_when_ridge_shows_a_zero(tables):
    assert verdicts(tables)["L1"] == "supported"
    t = dict(tables)
    df = t["paths"].copy()
    hit = df.index[(df.metric == "n_zero") & (df.method == "ridge")][0]
    df.loc[hit, "value"] = 1
    t["paths"] = df
    assert verdicts(t)["L1"] == "refuted"


def test_L2_is_decided_by_the_independent_solver_not_the_kkt_residual(tables):
    assert verdicts(tables)["L2"] == "identity check"
    t = dict(tables)
    df = t["paths"].copy()
    df.loc[df.metric == "kkt", "value"] = 1e-3  # the solver's own residual only informs
    t["paths"] = df
    assert verdicts(t)["L2"] == "identity check"
    df = df.copy()
    df.loc[df.metric == "oracle_ratio", "value"] = 1.5  # zeros where the gradient exceeds lambda: no dead zone
    t["paths"] = df
    assert verdicts(t)["L2"] == "refuted"
    df = t["paths"] = tables["paths"].copy()
    first = df.seed == df.seed.min()
    df.loc[first & (df.metric == "zero_mismatch"), "value"] = 1  # one seed's zero pattern differs from LARS
    assert verdicts(t)["L2"] == "inconclusive"


def test_L7a_follows_the_share_of_noise_zeroed(tables):
    t = dict(tables)
    df = t["problem1"].copy()
    noise = (df.metric == "coef") & (df.method == "lasso") & (df.group == "noise")
    df.loc[noise, "value"] = 0.0
    t["problem1"] = df
    assert verdicts(t)["L7a"] == "supported"
    df = df.copy()
    df.loc[noise, "value"] = 0.1
    t["problem1"] = df
    assert verdicts(t)["L7a"] == "refuted"


def test_L7e_follows_the_paired_errors(tables):
    t = dict(tables)
    for name in ("problem1", "problem1_sweep"):
        df = t[name].copy()
        enet = (df.metric == "test_mse") & (df.method == "enet")
        df.loc[enet, "value"] -= 100 + df.loc[enet, "seed"]  # enet far better, with some spread
        t[name] = df
    assert verdicts(t)["L7e"] == "supported"
    df = t["problem1_sweep"].copy()
    first = df.n_train == df.n_train.min()
    df.loc[(df.metric == "test_mse") & (df.method == "enet") & first, "value"] += 1000
    t["problem1_sweep"] = df
    assert verdicts(t)["L7e"] == "conditional"


def test_L6_needs_growth_with_dimension(tables):
    t = dict(tables)
    df = t["geometry"].copy()
    lasso = (df.metric == "frac_zero") & (df.method == "lasso")
    df.loc[lasso, "value"] = np.where(df.loc[lasso, "p"] == df.p.max(), 0.0, 0.5)  # fewer zeros in high dimension
    t["geometry"] = df
    assert verdicts(t)["L6"] == "refuted"
