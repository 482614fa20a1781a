"""Every dropout rule reaches each verdict it can give, on planted tables with realistic
values (N1, N2 and N3's rows; N4 in tests/test_dropout_study.py), and a planted null
gives a false verdict at most ~5% of the time."""
import numpy as np
import pandas as pd
import pytest

from regbench.studies.dropout import claims as rules
from regbench.verdicts import REGISTRY

CORRECT = rules.CORRECT
WRONG = ("supported", "refuted", "conditional")


# ---------------------------------------------------------------- N1
def n1_table(share: dict, seeds=5, units=2000, control=1.0, rng=None) -> dict:
    """dropout_expectation rows: per variant, rate and seed, a binomial count of |z| > 3 at the planted share."""
    r = rng or np.random.default_rng(0)
    rows = []
    for v in (*CORRECT, "control"):
        p = control if v == "control" else share.get(v, share["default"])
        for rate in (0.3, 0.7):
            for s in range(seeds):
                k = r.binomial(units, p)
                vals = dict(share_exceed=k / units, n_units=units, max_abs_z=3.5, mean_z=0.0 if v != "control" else 40.0,
                            n_exact=0)
                rows += [dict(experiment="dropout_expectation", variant=v, rate=rate, seed=s, metric=m, value=float(x))
                         for m, x in vals.items()]
    return {"dropout_expectation": pd.DataFrame(rows).assign(feature=np.nan)}


@pytest.mark.parametrize("share, control, expected", [
    ({"default": rules.Z_NOMINAL}, 1.0, "supported"),              # a correct implementation
    ({"default": 0.03}, 1.0, "refuted"),                           # every variant biased
    ({"default": rules.Z_NOMINAL, "problem2a": 0.05}, 1.0, "conditional"),  # one variant wrong
    ({"default": rules.Z_NOMINAL}, 0.0, "inconclusive"),           # the control is not caught: no power
    ({"default": rules.SHARE_TOL}, 1.0, "equivalent"),             # the share sits at the tolerance
])
def test_N1_reaches_each_verdict(share, control, expected):
    units = 200_000 if expected == "equivalent" else 2000  # equivalence needs a narrow interval
    assert rules.n1(n1_table(share, units=units, control=control))["verdict"] == expected


def test_N1_inconclusive_when_the_interval_straddles_the_tolerance():
    assert rules.n1(n1_table({"default": rules.SHARE_TOL}, seeds=2, units=100))["verdict"] == "inconclusive"


def test_N1_planted_null_rarely_gives_a_false_verdict():
    # the engine call that decides N1 (the rest of the rule only writes the note)
    r = np.random.default_rng(1)
    v = []
    for _ in range(150):
        t = n1_table({"default": rules.SHARE_TOL}, units=2000, rng=r)["dropout_expectation"]
        v.append(rules.regimes(rules.n1_cells(t), "<", rules.SHARE_TOL, rules.SHARE_SESOI)[0]["verdict"])
    assert np.mean([x in WRONG for x in v]) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 150)


def test_N1_row_feeds_the_calibration():
    out = rules.n1(n1_table({"default": rules.Z_NOMINAL}))
    assert out["family"] == "regimes" and out["n"] == 5 and out["cells"] == len(CORRECT) and out["sesoi"] > 0


# ---------------------------------------------------------------- N2
def n2_table(ratio: dict, sd=0.02, seeds=8, rng=None) -> dict:
    """dropout_mc rows: per rate and seed, gap2 / spread2 giving the planted gap/spread ratio (+ seed noise)."""
    r = rng or np.random.default_rng(0)
    rows = []
    for rate, m in ratio.items():
        for s in range(seeds):
            q = max(m + sd * r.standard_normal(), 0.0)
            for split in ("test", "ood"):
                vals = dict(gap2=q ** 2 * 0.01, spread2=0.01, agree=0.98)
                rows += [dict(split=split, labels="", rate=rate, seed=s, metric=k, value=x) for k, x in vals.items()]
            for pred, x in (("det", 0.6), ("mc", 0.59)):
                rows.append(dict(split="test", labels="noisy", rate=rate, seed=s, metric=f"nll_{pred}", value=x))
    return {"dropout_mc": pd.DataFrame(rows).assign(experiment="dropout_mc", feature=np.nan)}


@pytest.mark.parametrize("ratio, sd, expected", [
    ({0.1: 0.12, 0.5: 0.18}, 0.02, "supported"),     # as close as ~30-70 masks
    ({0.1: 0.60, 0.5: 0.70}, 0.02, "refuted"),       # worse than 10 masks at every rate
    ({0.1: 0.12, 0.5: 0.70}, 0.02, "conditional"),   # fine at 0.1, not at 0.5
    ({0.1: 0.30, 0.5: 0.33}, 0.15, "inconclusive"),  # noisy, around the threshold
    ({0.1: 0.31, 0.5: 0.32}, 0.005, "equivalent"),   # at the tolerance, precisely
])
def test_N2_reaches_each_verdict(ratio, sd, expected):
    assert rules.n2(n2_table(ratio, sd))["verdict"] == expected


# ---------------------------------------------------------------- N3
HIDDEN = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95)
INPUT = (0.0, 0.1, 0.2, 0.4, 0.6, 0.8)
SIZES = (150, 600, 2400)


def n3_table(opt, depth, noise=0.01, seeds=8, rng=None) -> dict:
    """dropout_rates rows at both epoch rules: loss(rate) = 0.9 - depth(n) * max(0, 1 - |rate - opt| / 0.45),
    a V around the planted best rate, plus independent validation / test noise per model; a seed effect shared by
    its models. opt(layer, n, when) and depth(n, when) plant the truth."""
    r = rng or np.random.default_rng(0)
    rows = []
    for when in ("best_val", "final"):
        for n in SIZES:
            for s in range(seeds):
                shift = 0.05 * r.standard_normal()
                for layer, grid in (("hidden", HIDDEN), ("input", INPUT)):
                    for rate in grid:
                        mean = 0.9 + shift - depth(n, when) * max(0.0, 1 - abs(rate - opt(layer, n, when)) / 0.45)
                        for metric in ("val_loss", "test_loss"):
                            rows.append(dict(when=when, n_train=n, layer=layer, rate=rate, seed=s, metric=metric,
                                             value=mean + noise * r.standard_normal()))
    return {"dropout_rates": pd.DataFrame(rows).assign(experiment="dropout_rates")}


DOC = lambda layer, n, when: 0.4 if layer == "hidden" else 0.15  # noqa: E731  the document's ranges
HIGH = lambda layer, n, when: 0.9 if layer == "hidden" else 0.6  # noqa: E731  far above them
SHRINKS = lambda n, when: 0.12 * 150 / n  # noqa: E731  more benefit with less data


def verdict(cid, t):
    return REGISTRY[cid].rule(t)["verdict"]


@pytest.mark.parametrize("cid", ["N3a", "N3b"])
@pytest.mark.parametrize("opt, depth, noise, expected", [
    (DOC, SHRINKS, 0.01, "supported"),
    (HIGH, SHRINKS, 0.01, "refuted"),
    (DOC, lambda n, when: 0.0, 0.002, "equivalent"),       # dropout does nothing: no range, no trend matters
    (DOC, lambda n, when: 0.012, 0.08, "inconclusive"),    # a small effect drowned in noise
    # the hidden optimum leaves the range at the largest size (where dropout still matters)
    (lambda layer, n, when: (0.4 if n < 2400 else 0.9) if layer == "hidden" else 0.15,
     lambda n, when: 0.2 * (150 / n) ** 0.5, 0.005, "conditional"),
])
def test_N3_rows_reach_each_verdict(cid, opt, depth, noise, expected):
    assert verdict(cid, n3_table(opt, depth, noise)) == expected


def test_N3_trend_is_a_slope_over_every_size():
    # the benefit is largest in the middle: the endpoints are equal, the slope is ~0, the trend does not hold
    t = n3_table(DOC, lambda n, when: {150: 0.05, 600: 0.15, 2400: 0.05}[n], 0.005)
    slopes = rules.benefit_slopes(t["dropout_rates"], "best_val")
    assert abs(slopes.mean()) < 0.01
    assert rules.n3_parts(t["dropout_rates"], "best_val")["trend"][0]["verdict"] != "supported"


def test_N3_parent_is_the_weakest_row():
    opt = lambda layer, n, when: DOC(layer, n, when) if when == "best_val" else HIGH(layer, n, when)  # noqa: E731
    t = n3_table(opt, SHRINKS, 0.01)
    assert verdict("N3a", t) == "supported" and verdict("N3b", t) == "refuted"
    assert rules.n3(t)["verdict"] == "refuted"


def test_N3_range_part_planted_null_rarely_gives_a_false_verdict():
    # every rate equally good (the seed's level shared by its rates, independent validation and test noise):
    # the in-range and the out-of-range pick have the same expected test loss, over three sizes
    r = np.random.default_rng(3)
    rates = np.array(HIDDEN)
    v = []
    for _ in range(300):
        cells = {}
        for n in SIZES:
            level = 0.9 + 0.05 * r.standard_normal((8, 1))
            val, test = (level + 0.02 * r.standard_normal((8, rates.size)) for _ in range(2))
            cells[n] = pd.Series(rules.in_minus_out(rates, val, test, rules.HIDDEN_RANGE))
        v.append(rules.regimes(cells, "<", 0.0, rules.RANGE_SESOI_REL * 0.9)[0]["verdict"])
    assert np.mean([x in WRONG for x in v]) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / len(v))


def test_N3_selection_is_on_validation():
    # validation prefers 0.3, test prefers 0.5: the reported test loss is 0.3's
    rates = np.array([0.0, 0.3, 0.5])
    val = np.array([[1.0, 0.5, 0.9]])
    test = np.array([[1.0, 0.8, 0.2]])
    assert rules._pick(val, test, np.ones(3, bool))[0] == 0.8
    assert rules._pick(val, test, rates > 0.4)[0] == 0.2
