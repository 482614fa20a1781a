"""The implicit study (N9, N10, N11, N15, N16): runners on a tiny config, verdicts that follow the
results when they are perturbed, and closed-form checks of the bias-variance and noise/dropout paths."""
import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from regbench import config, data, jobs, linear, seeds, studies, verdicts
from regbench import least_squares as im
from regbench.studies.implicit.claims import bias_variance_table, gd_boundary, gd_rows
from regbench.studies.implicit import runners as E

from .conftest import ROOT, SCHEMA

EXPERIMENTS = ["gd_vs_ridge", "sgd_l2_decay", "adam_l2_decay", "noise_vs_ridge", "bias_variance"]
# The tiny block (also the one proposed for tests/tiny_config.yaml): seconds in all.
TINY = {
    "gd_vs_ridge": {"design": "problem1", "seeds": 3, "eta_fractions": [0.1, 1.0], "n_steps": 12, "n_lambdas": 200,
                    "risk_points": 50},
    "sgd_l2_decay": {"design": "problem1", "seeds": 2, "lrs": [0.02], "steps": 20},
    "adam_l2_decay": {"seeds": 2, "n": 128, "p": 8, "steps": 30},
    "noise_vs_ridge": {"design": "problem1", "seeds": 3, "n_train": [60, 240], "noise_sds": [0.5, 1.0], "copies": [1, 10]},
    "bias_variance": {"design": "problem1", "seeds": 3, "datasets": 6, "n_points": 50, "n_lambdas": 6, "noise_copies": 3,
                      "dropout_copies": 2, "dropout_rates": [0.2, 0.5]},
}
SMALL_PROBLEM1 = {"n_train": 60, "n_val": 60, "n_test": 200, "p": 30, "covariance": {"family": "twins", "sources": 4, "copies": 2, "r": 0.8},
                  "coef": {"first_k": 4, "value": 1.0}, "noise": {"sigma": 1.0}}


def build(experiments: dict, small: bool = True) -> dict:
    """config/config.yaml with these experiments (and a small problem1 design for speed), validated."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["experiments"] = copy.deepcopy(experiments)
    if small:
        cfg["designs"]["problem1"] = SMALL_PROBLEM1
    return config.validate(cfg, config.load_schema(SCHEMA))


@pytest.fixture(scope="module")
def cfg():
    return build(TINY)


@pytest.fixture(scope="module")
def tables(cfg):
    return {name: jobs.run(name, cfg, 0) for name in EXPERIMENTS}


def rule(cid, t):
    return studies.claims()[cid].rule(t)


# ---------------------------------------------------------------- config and runners
def test_defaults_validate_on_the_default_designs():
    cfg = build({name: {} for name in EXPERIMENTS}, small=False)
    ex = cfg["experiments"]
    assert ex["gd_vs_ridge"]["eta_fractions"] == [0.01, 0.1, 1.0] and ex["gd_vs_ridge"]["design"] == "problem1"
    assert ex["bias_variance"]["techniques"] == ["ridge", "lasso", "enet", "early_stopping", "noise_injection", "dropout"]
    assert ex["adam_l2_decay"]["coefs"] == ["equal_contribution", "random"]
    for bad in ({"gd_vs_ridge": {"eta_fractions": [2.5]}}, {"bias_variance": {"techniques": ["batchnorm"]}},
                {"noise_vs_ridge": {"design": "nope"}}, {"sgd_l2_decay": {"lrs": []}}, {"adam_l2_decay": {"p": 2}}):
        with pytest.raises(config.ConfigError):
            build(bad, small=False)


def test_runners_give_tidy_tables(tables):
    for name, df in tables.items():
        assert {"experiment", "seed", "metric", "value"} <= set(df.columns), name
        assert (df.experiment == name).all()
        assert len(df) and df.value.notna().any()
    g = tables["gd_vs_ridge"]
    assert set(gd_rows(g, "ratio").regime) >= {"within", "late"}
    # one T grid per step size for every seed: per-T rows line up across seeds
    lam = g[g.metric == "lambda_closest"]
    assert lam.groupby(["eta_fraction", "T"]).seed.nunique().eq(3).all()
    assert set(g.eta_fraction.dropna()) == {0.1, 1.0}
    bv = tables["bias_variance"]
    assert {"ols", "ridge", "lasso", "enet", "early_stopping", "early_stopping_early", "early_stopping_late",
            "noise_injection", "dropout"} == set(bv.technique)
    # risk = bias^2 + variance exactly, per replicate and technique
    w = bv.pivot_table(index=["seed", "technique"], columns="metric", values="value")
    np.testing.assert_allclose(w["risk"], w["bias2"] + w["variance"], rtol=1e-10)


def test_same_config_same_numbers(cfg, tables):
    again = jobs.run("noise_vs_ridge", cfg, 0)
    pd.testing.assert_frame_equal(again, tables["noise_vs_ridge"])


def test_every_rule_gives_a_verdict(tables):
    for cid in ("N9", "N10", "N11", "N15", "N16"):
        out = rule(cid, tables)
        assert out["verdict"] in verdicts.VERDICTS and out["verdict"] != "not run", cid
        assert out["statistic"] and out["note"]


def test_figures_draw(tables):
    from regbench.studies.implicit import figures as P
    import matplotlib.pyplot as plt

    for name, fig in P.FIGURES.items():
        f = fig.draw({k: tables[k] for k in fig.tables}, "test footer")
        assert f._suptitle.get_text()
        plt.close(f)


# ---------------------------------------------------------------- verdicts follow the results
def _set(df, mask, value):
    df = df.copy()
    df.loc[mask, "value"] = value
    return df


def _per_seed(values):
    """A map seed -> value from a list (seed i gets values[i])."""
    return lambda seed: values[int(seed)]


def _n9_table(tables, factor_doublings=(0.3, 0.4, 0.35), slopes=(1.05, 1.08, 0.97), late=1e-6):
    """gd_vs_ridge with planted values: in the judged window (u >= 1) seed i's lambda*eta*T falls to
    2^-factor_doublings[i] at its worst T (1 elsewhere); past convergence (u < 1) it collapses to `late`;
    seed i's slope is slopes[i] at every step size."""
    df = tables["gd_vs_ridge"].copy()
    r = gd_rows(df, "ratio")
    key = ["seed", "eta_fraction", "T"]
    ratio = df.metric == "ratio"
    merged = df[ratio].reset_index().merge(r[key + ["u"]], on=key).set_index("index")
    worst_t = merged[merged.u >= 1].groupby("seed").u.idxmin()  # the window's last T: where the factor is worst
    new = np.where(merged.u < 1, late, 1.0)
    new = pd.Series(new, index=merged.index)
    for seed, idx in worst_t.items():
        new[idx] = 2.0 ** -factor_doublings[int(seed)]
    df.loc[new.index, "value"] = new
    df.loc[df.metric == "at_grid_edge", "value"] = 0.0
    sl = df.metric == "slope"
    df.loc[sl, "value"] = [slopes[int(x)] for x in df.loc[sl, "seed"]]
    return dict(tables, gd_vs_ridge=df)


@pytest.mark.parametrize("kw, expected", [
    ({}, "supported"),                                                   # within a factor 2 and slope ~1; late collapse ignored
    (dict(factor_doublings=(1.6, 1.5, 1.7)), "refuted"),                 # the constant falls to ~1/3 inside the window
    (dict(slopes=(1.4, 1.5, 1.45)), "refuted"),                          # a different power law
    (dict(factor_doublings=(0.98, 1.02, 1.0)), "equivalent"),            # the worst factor sits at 2, the reading's edge
    (dict(factor_doublings=(0.2, 1.8, 1.0)), "inconclusive"),            # seeds disagree
])
def test_N9_reaches_each_verdict_on_the_window_before_convergence(tables, kw, expected):
    out = rule("N9", _n9_table(tables, **kw))
    assert out["verdict"] == expected, out
    assert out["family"] == "paired" and out["n"] == 3 and out["sesoi"] > 0


def test_N9_on_the_tiny_run_reports_the_late_regime_and_the_stopping_point(tables):
    out = rule("N9", tables)
    assert "Late regime (not judged)" in out["note"] and "Where early stopping on validation stops" in out["note"]


def test_N9_boundary_is_where_the_ratio_leaves_the_factor():
    rows = [dict(seed=0, eta_fraction=0.1, metric="s_min", value=0.5), dict(seed=0, eta_fraction=0.1, metric="s_max", value=20.0)]
    for T, u, ratio in ((1, 100.0, 0.9), (10, 10.0, 0.7), (100, 1.0, 0.4), (1000, 0.1, 1e-6)):
        rows += [dict(seed=0, eta_fraction=0.1, T=T, inv_eta_T=0.5 * u, metric="ratio", value=ratio),
                 dict(seed=0, eta_fraction=0.1, T=T, inv_eta_T=0.5 * u, metric="at_grid_edge", value=0.0)]
    b = gd_boundary(pd.DataFrame(rows), factor=2.0)
    assert b.u_star.iloc[0] == 10.0 and b.n_fail.iloc[0] == 2
    assert b.min_ratio.iloc[0] == 0.4 and b.max_ratio.iloc[0] == 0.9
    assert list(gd_rows(pd.DataFrame(rows), "ratio").regime) == ["early", "within", "within", "late"]


def test_N10_needs_rounding_level_agreement(tables):
    t = dict(tables)
    assert rule("N10", t)["verdict"] == "identity check"
    df = t["sgd_l2_decay"]
    t["sgd_l2_decay"] = _set(df, df.metric == "l2_vs_weight_decay_rel", 1e-3)
    assert rule("N10", t)["verdict"] == "refuted"
    # one seed off by more than rounding, not by a real difference: neither
    one = (df.metric == "l2_vs_weight_decay_rel") & (df.seed == 0)
    t["sgd_l2_decay"] = _set(df, one, 1e-9)
    assert rule("N10", t)["verdict"] == "inconclusive"


def _adam(tables, adam=(-1.01, -0.99), adamw=(1e-3, -2e-3), mom_w=0.0, mom_a=1e-2):
    """adam_l2_decay (2 seeds in TINY) with seed i's slopes planted: adam[i] for Adam+L2, adamw[i] for AdamW."""
    df = tables["adam_l2_decay"].copy()
    sl = df.metric == "slope"
    for opt_, vals in (("adam_l2", adam), ("adamw", adamw)):
        m = sl & (df.optimizer == opt_)
        df.loc[m, "value"] = [vals[int(x)] for x in df.loc[m, "seed"]]
    df.loc[df.metric.isin(["adamw_exp_avg", "adamw_exp_avg_sq"]), "value"] = mom_w
    df.loc[df.metric.isin(["adam_l2_exp_avg", "adam_l2_exp_avg_sq"]), "value"] = mom_a
    return dict(tables, adam_l2_decay=df)


@pytest.mark.parametrize("kw, expected", [
    ({}, "supported"),
    (dict(adam=(-0.5, -0.51)), "refuted"),                              # the pull scales as 1/v^(1/4), not 1/sqrt(v)
    (dict(adamw=(-0.45, -0.46)), "refuted"),                            # AdamW's pull depends on v
    (dict(adam=(-1.1, -0.901)), "equivalent"),                          # |slope + 1| at the tolerance's edge
    (dict(adam=(-1.0, -0.7)), "inconclusive"),                          # seeds disagree
    (dict(mom_w=1e-3), "refuted"),                                      # the decay leaked into AdamW's moments
    (dict(mom_a=0.0), "inconclusive"),                                  # the control shows no difference either
])
def test_N11_reaches_each_verdict(tables, kw, expected):
    out = rule("N11", _adam(tables, **kw))
    assert out["verdict"] == expected, out
    assert out["family"] == "paired" and out["sesoi"] > 0


def test_N15_follows_the_paired_risks(tables):
    t = dict(tables)
    df = t["noise_vs_ridge"]
    er = df.metric == "excess_risk"
    ols = df[er & (df.method == "ols")].set_index(["n_train", "seed"]).value
    tuned = er & (df.method == "noise_tuned")
    key = pd.MultiIndex.from_frame(df.loc[tuned, ["n_train", "seed"]])
    ridge = er & (df.method == "ridge")
    rkey = pd.MultiIndex.from_frame(df.loc[ridge, ["n_train", "seed"]])

    def as_ridge(frame, factor=1.0):  # ridge at the matched lambda given the tuned noisy fit's risk / factor
        frame = frame.copy()
        same = frame[tuned].set_index(["n_train", "seed"]).value
        frame.loc[ridge, "value"] = same.reindex(rkey).to_numpy() / factor
        return frame

    def scaled(frame, change, spread=0.01, where=tuned):  # tuned noise risk = OLS x (1 + change + seed spread)
        frame = frame.copy()
        seed = frame.loc[where, "seed"].to_numpy()
        frame.loc[where, "value"] = ols.reindex(pd.MultiIndex.from_frame(frame.loc[where, ["n_train", "seed"]])).to_numpy() * (
            1 + change + spread * (seed - 1))
        return frame

    better = as_ridge(scaled(df, -0.5))
    t["noise_vs_ridge"] = better
    assert rule("N15", t)["verdict"] == "supported"
    t["noise_vs_ridge"] = as_ridge(scaled(df, -0.5), factor=1.3)  # regularizes, but 30% off ridge's risk at sd^2
    assert rule("N15", t)["verdict"] == "refuted"
    t["noise_vs_ridge"] = as_ridge(scaled(df, 0.5))  # worse than OLS
    assert rule("N15", t)["verdict"] == "refuted"
    t["noise_vs_ridge"] = as_ridge(scaled(df, 0.0, spread=0.002))  # no change beyond 2% of OLS's risk
    assert rule("N15", t)["verdict"] == "equivalent"
    t["noise_vs_ridge"] = as_ridge(scaled(df, -0.01, spread=0.2))  # too noisy to tell
    assert rule("N15", t)["verdict"] == "inconclusive"
    mixed = scaled(better, 0.5, where=tuned & (df.n_train == df.n_train.max()))
    t["noise_vs_ridge"] = as_ridge(mixed)
    out = rule("N15", t)
    assert out["verdict"] == "conditional"
    assert out["family"] == "regimes" and out["cells"] == 2


def _bv(values: dict, n_seeds=5, ols=(0.0, 10.0), spread=0.0):
    """A synthetic bias_variance table: technique -> (bias2, variance), with a little spread over seeds
    (and `spread` more, alternating in sign, on the techniques' variances)."""
    rows = []
    for s in range(n_seeds):
        jitter = 0.01 * s
        for tech, (b, v) in {"ols": ols, **values}.items():
            b, v = b + jitter, v + jitter + (0 if tech == "ols" else spread * (s - 2) * (-1) ** s)
            rows += [dict(seed=s, technique=tech, metric="bias2", value=b), dict(seed=s, technique=tech, metric="variance", value=v),
                     dict(seed=s, technique=tech, metric="risk", value=b + v), dict(seed=s, technique=tech, metric="strength", value=1.0)]
    return pd.DataFrame(rows).assign(experiment="bias_variance")


AS_DOCUMENTED = {"ridge": (1.0, 3.0), "lasso": (2.0, 3.0), "enet": (1.8, 3.0), "early_stopping": (1.5, 3.0),
                 "early_stopping_early": (4.0, 1.0), "early_stopping_late": (0.3, 6.0), "noise_injection": (-0.5, 8.0),
                 "dropout": (1.0, 3.5)}


def test_N16_rows_follow_the_measurement():
    t = {"bias_variance": _bv(AS_DOCUMENTED)}
    tab = bias_variance_table(t["bias_variance"])
    assert (tab.outcome == "supported").all(), tab
    assert "noise_injection" not in set(tab.technique)  # the augmentation row is not judged (see NOT_JUDGED)
    out = rule("N16", t)
    assert out["verdict"] == "supported" and "Measured, not judged: noise_injection" in out["note"]
    # noise injection raising the bias, as ridge does, changes nothing: it stands in for no row
    assert rule("N16", {"bias_variance": _bv(dict(AS_DOCUMENTED, noise_injection=(1.5, 3.0)))})["verdict"] == "supported"
    # one row out of its range: the weakest row decides
    out = rule("N16", {"bias_variance": _bv(dict(AS_DOCUMENTED, dropout=(1.0, 9.5)))})
    assert out["verdict"] == "refuted" and "fail: dropout" in out["note"]
    # L1 adding the same bias as L2: the ranking is too small to matter
    assert rule("N16", {"bias_variance": _bv(dict(AS_DOCUMENTED, lasso=(1.0, 3.0)))})["verdict"] == "equivalent"
    # a variance change that straddles a range edge: inconclusive
    assert rule("N16", {"bias_variance": _bv(dict(AS_DOCUMENTED, ridge=(1.0, 5.0)), spread=0.4)})["verdict"] == "inconclusive"


def test_N16_reads_large_as_half_the_ols_risk():
    # variance down by 40% of R0 is a decrease, but not a "large" one
    v = dict(AS_DOCUMENTED, ridge=(1.0, 6.0))
    tab = bias_variance_table(_bv(v)).set_index("technique")
    assert tab.loc["ridge", "variance_cell"] == "refuted"
    assert tab.loc["early_stopping", "variance_cell"] == "supported"


# ---------------------------------------------------------------- closed forms
def test_ols_is_unbiased_and_its_variance_matches_the_wishart_formula():
    """OLS with an intercept on Gaussian X: E over training sets of the prediction at x is x'beta, and
    Var = sigma^2 (1/n + (1 + 1/n) p / (n - p - 2)) averaged over x from the population."""
    n, p, sigma, M = 40, 5, 1.0, 3000
    design = {"n_train": n, "n_val": 2, "n_test": 2, "p": p, "covariance": {"family": "toeplitz", "rho": 0.5},
              "coef": {"values": [1.0, -0.5, 0.3, 0.0, 2.0]}, "noise": {"sigma": sigma}}
    pop = data.truth(design)
    pts = data.sample(dict(design, n_train=400), seeds.rng(0, "pts"), pop)["X_train"]
    f = pts @ pop["beta"]
    P = np.empty((M, len(f)))
    for m in range(M):
        d = E._draw(design, pop, seeds.rng(1, "ols", m))
        w = linear.ols(d["Xtr"], d["ytr"])
        P[m] = d["ybar"] + ((pts - d["mu"]) / d["sd"]) @ w
    bv = im.bias_variance_decomposition(P, f)
    expected_var = sigma ** 2 * (1 / n + (1 + 1 / n) * p / (n - p - 2))
    assert bv["variance"] == pytest.approx(expected_var, rel=0.06)
    assert abs(bv["bias2"]) < 0.02 * bv["variance"]
    assert bv["risk"] == pytest.approx(bv["bias2"] + bv["variance"], rel=1e-12)


def test_decomposition_recovers_a_known_bias():
    r = np.random.default_rng(0)
    f = r.standard_normal(300)
    P = f + 0.7 + 0.5 * r.standard_normal((4000, 300))
    bv = im.bias_variance_decomposition(P, f)
    assert bv["bias2"] == pytest.approx(0.49, abs=0.01)
    assert bv["variance"] == pytest.approx(0.25, rel=0.02)
    with pytest.raises(ValueError):
        im.bias_variance_decomposition(P[:1], f)


def test_noise_fit_path_reproduces_the_library():
    r = seeds.rng(3, "nfp")
    X = r.standard_normal((50, 6))
    y = X @ r.standard_normal(6) + r.standard_normal(50)
    X, = linear.standardize(X)
    y, = linear.center(y)
    sds = [0.3, 1.0]
    W = im.noise_fit_path(X, y, sds, [2, 7], seeds.rng(11, "implicit", "noise_injection", 50, 6))
    for K in (2, 7):
        for j, sd in enumerate(sds):
            np.testing.assert_allclose(W[K][j], im.noise_injection(X, y, sd, K, 11)["w_noise"], rtol=1e-9, atol=1e-12)


def test_dropout_path_is_least_squares_on_masked_copies_and_tends_to_ridge():
    r = seeds.rng(4, "dfp")
    n, p = 40, 5
    X, = linear.standardize(r.standard_normal((n, p)))
    y, = linear.center(X @ r.standard_normal(p) + r.standard_normal(n))
    W = im.dropout_fit_path(X, y, [0.3], 3, seeds.rng(5, "masks"))
    g = seeds.rng(5, "masks")
    U = [g.random((n, p)) for _ in range(3)]
    Xs = np.vstack([X * (u >= 0.3) / 0.7 for u in U])
    np.testing.assert_allclose(W[0], np.linalg.lstsq(Xs, np.tile(y, 3), rcond=None)[0], rtol=1e-9)
    # in expectation: ridge with lambda = q/(1-q) (standardized X, 1/(2n) convention)
    q = 0.3
    many = im.dropout_fit_path(X, y, [q], 3000, seeds.rng(6, "masks"))[0]
    ridge = linear.ridge_path(X, y, [q / (1 - q)])[0]
    assert np.linalg.norm(many - ridge) < 0.03 * np.linalg.norm(ridge)
