"""Verdict rules for the dropout claims N1-N4 (see CLAIMS.md).

Every rule is decided by the engine (regbench.verdicts) on per-seed values with
a stated smallest effect of interest, so regbench.verdict_sim can calibrate it:
N1 over the correct variants, N2 and N4 over the hidden rates, N3's range parts
over the training-set sizes (regimes: Holm over the cells, the pooled effect
unless one cell holds and another fails), N3's trend as a per-seed slope
(paired). N3 is read twice, with early stopping (N3a) and trained to the end
(N3b); N4 has three parts (N4a spread, N4b NLL, N4c calibration). A parent row
is the weakest of its parts (verdicts.worst).
"""
import math

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from regbench.verdicts import claim, claim_parts, paired, regimes, row, worst
from regbench.verdicts import where as by_cell
from regbench.stats import mean_ci, verdict

# N1. A correct implementation gives standard-normal z-scores, so |z| > 3 in
# 0.27% of units. 1% allows for the t-like tails of a mean standardized by an
# estimated SE, while a bias of 0.7 SE in every unit already pushes the share
# past it (2 Phi(-3) -> 1%).
Z_NOMINAL = 2 * 0.5 * math.erfc(3 / math.sqrt(2))   # 0.0027
SHARE_TOL = 0.01
# Smallest effect of interest around that tolerance: half the room between the
# tolerance and the nominal share, so that twice it below the tolerance is exactly
# a correct implementation (the point where verdict_sim measures power).
SHARE_SESOI = (SHARE_TOL - Z_NOMINAL) / 2
# The wrong control (inverted training, (1-p) at inference) must be caught in
# most units, or the check has no power and proves nothing.
POWER_MIN = 0.5
CORRECT = ("standard", "inverted", "problem2a", "problem2b", "engine")

# N2. The weight-scaled pass "approximates the ensemble average" when it is at
# least as close to the mean over masks as the average of 10 sampled masks
# would be: gap / spread <= 1/sqrt(10) (an average of S masks sits at
# spread / sqrt(S) from the mean). Stated here so a reader can disagree.
EQUIV_MASKS = 10
RATIO_MAX = 1 / math.sqrt(EQUIV_MASKS)
# Smallest effect of interest: 0.05 of the ratio, i.e. as close as 7.5-14 masks
# instead of 10; a gap inside that band sits at the reading's tolerance.
RATIO_SESOI = 0.05

# N3. The document's table: hidden 0.3-0.5, input 0.1-0.2.
HIDDEN_RANGE = (0.3, 0.5)
INPUT_RANGE = (0.1, 0.2)
RANGES = {"hidden": HIDDEN_RANGE, "input": INPUT_RANGE}
N_BOOT = 2000
# N3 smallest effects of interest, as fractions of the no-dropout test loss (~0.9
# nats here): a choice of range that moves the test loss by less than 1% is not a
# recommendation anyone would act on; a benefit that shrinks by less than 1% of the
# loss per doubling of the data (4% over a 16x range) is no trend.
RANGE_SESOI_REL = 0.01
TREND_SESOI_REL = 0.01
WHEN = {"best_val": "with early stopping (best-validation weights)", "final": "trained to the end of the step budget"}

# N4. Spread "usable" to flag inputs far from the training data: better than
# chance at telling them apart (AUROC > 0.5).
AUROC_CHANCE = 0.5
# Smallest effects of interest: 0.02 of AUROC above chance; NLL and ECE changes of 0.005
# (half a point of calibration error; NLL ~0.9 here, so about 0.5%).
AUROC_SESOI = 0.02
NLL_SESOI = 0.005
ECE_SESOI = 0.005


def _g(x: float) -> str:
    return f"{x:.3g}"


# ---------------------------------------------------------------- N1
def expectation_shares(df: pd.DataFrame) -> pd.DataFrame:
    """Per variant and seed: units with |z| > 3 (pooled over rates), units tested."""
    s = df[df.feature.isna()] if "feature" in df else df
    w = s.pivot_table(index=["variant", "rate", "seed"], columns="metric", values="value").reset_index()
    w["exceed"] = w.share_exceed * w.n_units
    g = w.groupby(["variant", "seed"])[["exceed", "n_units"]].sum().reset_index()
    g["share"] = g.exceed / g.n_units
    return g


def binom_ci(k: int, n: int) -> tuple[float, float]:
    """Exact (Clopper-Pearson) 95% interval of a binomial share: unit-checks are independent draws."""
    if n == 0:
        return (np.nan, np.nan)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="exact")
    return (float(ci.low), float(ci.high))


def n1_cells(df: pd.DataFrame) -> dict:
    """Per correct variant: its per-seed share of unit-checks beyond 3 SE (rates pooled), indexed by seed."""
    g = expectation_shares(df)
    return {v: g[g.variant == v].set_index("seed").share for v in CORRECT if (g.variant == v).any()}


@claim("N1", "Standard and inverted dropout keep train and inference expectations equal; the Problem 2 code is correct",
       ["dropout_expectation"], figure="dropout_expectation")
def n1(t):
    df = t["dropout_expectation"]
    g = expectation_shares(df).groupby("variant")[["exceed", "n_units"]].sum().round().astype(int)
    per = {v: (r.exceed / max(r.n_units, 1), *binom_ci(r.exceed, r.n_units)) for v, r in g.iterrows()}
    # per-seed shares of each correct variant: Holm over the variants, the pooled share unless one
    # variant holds and another fails (conditional: that variant is wrong)
    summary, table = regimes(n1_cells(df), "<", SHARE_TOL, SHARE_SESOI)
    control = per.get("control", (np.nan,) * 3)
    powered = control[0] > POWER_MIN
    v = summary["verdict"] if powered or summary["verdict"] != "supported" else "inconclusive"
    s = df[df.feature.isna()] if "feature" in df else df
    stat = lambda var, metric, f: f(s[(s.variant == var) & (s.metric == metric)].value)  # noqa: E731
    note = (f"per variant (Holm over variants, per-seed shares, t intervals): {by_cell(table, lambda m: f'{m:.2%}')}; pooled "
            f"over seeds {', '.join(f'{k} {per[k][0]:.2%} [{per[k][1]:.2%}, {per[k][2]:.2%}] (exact binomial)' for k in CORRECT if k in per)}"
            f"; nominal 0.27%, tolerance {SHARE_TOL:.0%}, smallest effect of interest {SHARE_SESOI:.2%} around it "
            f"(equivalent = the share sits at the tolerance). Problem 2 code as written (p = 0.5, no scaling, inference "
            f"x 0.5): max |z| {stat('problem2a', 'max_abs_z', np.max):.2f}, mean z {stat('problem2a', 'mean_z', np.mean):+.3f}: "
            f"standard dropout. Wrong control (inverted training and x(1-p) at inference) caught in {control[0]:.0%} of units "
            f"(mean z {stat('control', 'mean_z', np.mean):+.1f}; at most {POWER_MIN:.0%} would mean no power and no support). "
            f"{int(stat('standard', 'n_exact', np.sum))} zero activations (standard) match exactly and are not counted. "
            "Standard and inverted differ only by the constant 1/(1-p): both test E[mask] = 1-p")
    return row("share of unit-checks whose Monte Carlo train-mode mean is > 3 standard errors from the inference output "
               "(standard, inverted, Problem 2a/b code, engine; per seed, rates pooled; mean over variants)",
               **dict(summary, verdict=v), note=note)


# ---------------------------------------------------------------- N2
def ensemble_ratios(df: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Per rate and seed: gap / spread = sqrt(gap2 / spread2) (0 where the gap is below MC noise)."""
    s = df[(df.split == split) & df.metric.isin(["gap2", "spread2"])]
    if "feature" in s:
        s = s[s.feature.isna()]
    w = s.pivot_table(index=["rate", "seed"], columns="metric", values="value").reset_index()
    w["ratio"] = np.sqrt(np.clip(w.gap2, 0, None) / w.spread2)
    return w


def _paired_diff(df, split, labels, metric):
    """Per rate: det minus MC of a metric, paired over seeds -> (mean, lo, hi)."""
    s = df[(df.split == split) & (df.labels == labels)]
    out = {}
    for rate, g in s.groupby("rate"):
        w = g.pivot_table(index="seed", columns="metric", values="value")
        out[rate] = mean_ci(w[f"{metric}_det"] - w[f"{metric}_mc"])
    return out


@claim("N2", "Weight scaling approximates the average prediction of the sub-network ensemble",
       ["dropout_mc"], figure="dropout_ensemble")
def n2(t):
    df = t["dropout_mc"]
    w = ensemble_ratios(df, "test")
    ood = ensemble_ratios(df, "ood")
    rates = sorted(w.rate.unique())
    res = {r: mean_ci(w[w.rate == r].ratio) for r in rates}
    summary, table = regimes({f"p={r:g}": w[w.rate == r].set_index("seed").ratio for r in rates}, "<", RATIO_MAX, RATIO_SESOI)
    parts = dict(zip(rates, table.verdict))
    nll = _paired_diff(df, "test", "noisy", "nll")
    agree = df[(df.metric == "agree") & (df.split == "test")].groupby("rate").value.mean()
    note = ("gap/spread on test inputs by hidden rate: "
            + "; ".join(f"p={r:g}: {_g(res[r][0])} [{_g(res[r][1])}, {_g(res[r][2])}] {parts[r]} (worth ~"
                        f"{(1 / max(res[r][0], 1e-9) ** 2):.0f} masks)" for r in rates)
            + f"; threshold {RATIO_MAX:.3f} = as close as an average of {EQUIV_MASKS} masks. Off-distribution (x"
            + "; ".join(f" p={r:g}: {_g(ood[ood.rate == r].ratio.mean())}" for r in rates)
            + "). Test NLL det - MC: " + "; ".join(f"p={r:g}: {nll[r][0]:+.4f} [{nll[r][1]:+.4f}, {nll[r][2]:+.4f}]" for r in rates)
            + "; argmax agreement " + ", ".join(f"{agree[r]:.3f}" for r in rates)
            + f". gap = |p_det - p_ens| (MC error removed), spread = rms |p_mask - p_ens| over masks; smallest effect of "
              f"interest {RATIO_SESOI} of the ratio (as close as 7.5-14 masks: equivalent = at the tolerance)")
    return row("gap / spread of class probabilities, weight-scaled pass vs mean of sampled masks (test inputs), pooled over "
               "hidden rates", **summary, note=note + "; per rate: Holm over rates")


# ---------------------------------------------------------------- N3
def _loss_cubes(df: pd.DataFrame, when: str, layer: str, n) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rates, and [seeds, rates] validation and test losses of one size and layer (rows: seeds in order)."""
    s = df[(df.when == when) & (df.layer == layer) & (df.n_train == n) & df.metric.isin(["val_loss", "test_loss"])]
    w = s.set_index(["seed", "metric", "rate"]).value.unstack(["metric", "rate"]).sort_index()
    rates = np.sort(w["test_loss"].columns.to_numpy(dtype=float))
    return rates, w["val_loss"][rates].to_numpy(), w["test_loss"][rates].to_numpy()


def _pick(val: np.ndarray, test: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Per seed: the test loss of the rate among `cols` with the lowest validation loss of that seed."""
    j = np.flatnonzero(cols)[np.argmin(val[:, cols], axis=1)]
    return test[np.arange(test.shape[0]), j]


def in_minus_out(rates, val, test, rng) -> np.ndarray:
    """Per seed ([seeds, rates] losses): test loss at the rate inside rng = (lo, hi) chosen on that seed's validation
    loss minus the test loss at the rate outside it (rate 0 included) chosen the same way. Below 0: the range wins.
    Each seed makes its own choice, so the t interval over seeds carries the selection. NaN when one side is empty."""
    inside = (rates >= rng[0]) & (rates <= rng[1])
    if not inside.any() or inside.all():
        return np.full(val.shape[0], np.nan)
    return _pick(val, test, inside) - _pick(val, test, ~inside)


def range_gain(df: pd.DataFrame, when: str, layer: str, n) -> pd.Series:
    """in_minus_out of one size and layer, indexed by seed."""
    rates, val, test = _loss_cubes(df, when, layer, n)
    seeds = np.sort(df[(df.when == when) & (df.layer == layer) & (df.n_train == n)].seed.unique())
    return pd.Series(in_minus_out(rates, val, test, RANGES[layer]), index=seeds)


def seed_benefit(df: pd.DataFrame, when: str, n, layer: str = "hidden") -> pd.Series:
    """Per seed: test loss without dropout minus at the rate that seed's validation loss chooses."""
    rates, val, test = _loss_cubes(df, when, layer, n)
    seeds = np.sort(df[(df.when == when) & (df.layer == layer) & (df.n_train == n)].seed.unique())
    return pd.Series(test[:, rates == 0.0][:, 0] - _pick(val, test, np.ones(rates.size, bool)), index=seeds)


def benefit_slopes(df: pd.DataFrame, when: str) -> pd.Series:
    """Per seed: least-squares slope of the hidden-dropout benefit on log2(n_train), over every size."""
    sizes = np.sort(df.n_train.unique())
    b = pd.concat({n: seed_benefit(df, when, n) for n in sizes}, axis=1).dropna()
    x = np.log2(sizes.astype(float))
    x = x - x.mean()
    return (b - b.mean(axis=1).to_numpy()[:, None]) @ x / (x @ x)


def no_dropout_loss(df: pd.DataFrame, when: str) -> float:
    s = df[(df.when == when) & (df.metric == "test_loss") & (df.rate == 0.0)]
    return float(s.value.mean())


def best_rates(df: pd.DataFrame, when: str = "best_val", n_boot: int = N_BOOT) -> pd.DataFrame:
    """Descriptive, not a verdict: per size and layer, the rate of the lowest mean VALIDATION loss (the test
    loss is only reported), with a percentile interval of that choice redone in bootstrap resamples of seeds."""
    rows = []
    for (n, layer), _ in df[df.when == when].groupby(["n_train", "layer"]):
        rates, val, test = _loss_cubes(df, when, layer, n)
        idx = np.random.default_rng(0).integers(0, val.shape[0], (n_boot, val.shape[0]))
        boot = rates[np.argmin(val[idx].mean(axis=1), axis=1)]
        lo, hi = np.quantile(boot, [0.025, 0.975], method="inverted_cdf")
        j = int(np.argmin(val.mean(axis=0)))
        none = np.flatnonzero(rates == 0.0)
        rows.append(dict(n_train=n, layer=layer, when=when, best=rates[j], lo=lo, hi=hi,
                         on_edge=j in (0, rates.size - 1), loss_none=float(test[:, none[0]].mean()) if none.size else np.nan,
                         loss_best=float(test[:, j].mean())))
    return pd.DataFrame(rows)


def benefit(df: pd.DataFrame, when: str, n, layer: str = "hidden") -> float:
    """Mean over seeds of the benefit of the rate each seed chooses on validation (test loss, nats)."""
    return float(seed_benefit(df, when, n, layer).mean())


def n3_parts(df: pd.DataFrame, when: str) -> dict:
    """N3 read at one epoch rule: part -> (summary of the engine, per-size table or None)."""
    sizes = sorted(df.n_train.unique())
    ref = no_dropout_loss(df, when)
    out = {}
    for layer in RANGES:
        out[layer] = regimes({f"n={n}": range_gain(df, when, layer, n) for n in sizes}, "<", 0.0, RANGE_SESOI_REL * ref)
    if len(sizes) > 1:
        out["trend"] = (paired(benefit_slopes(df, when), "<", TREND_SESOI_REL * ref), None)
    return out


N3_STATS = {"hidden": "test loss, hidden rate inside 0.3-0.5 minus outside (each chosen on the seed's validation loss), "
                      "pooled over sizes",
            "input": "test loss, input rate inside 0.1-0.2 minus outside (each chosen on the seed's validation loss), "
                     "pooled over sizes",
            "trend": "per-seed slope of the hidden-dropout benefit (test loss without minus with the chosen rate) on "
                     "log2 n_train"}


def n3_judge(df: pd.DataFrame, when: str) -> tuple[dict, str]:
    """One N3 row: the weakest of its parts decides; its fields are the deciding part's (named in the note)."""
    parts = n3_parts(df, when)
    v = worst(*(summary["verdict"] for summary, _ in parts.values()))
    key = next(k for k, (summary, _) in parts.items() if summary["verdict"] == v)
    notes = []
    for k, (summary, table) in parts.items():
        cells = f" (Holm over sizes: {by_cell(table, lambda m: f'{m:+.4f}')})" if table is not None else ""
        notes.append(f"{k}: {summary['value']:+.4f} [{summary['lo']:+.4f}, {summary['hi']:+.4f}] {summary['verdict']}, "
                     f"smallest effect {summary['sesoi']:.4f}{cells}")
    b = best_rates(df, when)
    picks = "; ".join(f"{layer}: " + ", ".join(f"n={r.n_train}: {r.best:g} [{r.lo:g}, {r.hi:g}]" + (" (grid edge)" if r.on_edge else "")
                                              for r in b[b.layer == layer].sort_values("n_train").itertuples()) for layer in RANGES)
    gains = ", ".join(f"n={n}: {benefit(df, when, n):+.4f}" for n in sorted(df.n_train.unique()))
    note = (f"{WHEN[when]}; decided by the {key} part (the weakest). " + "; ".join(notes)
            + f". Hidden-dropout benefit by size: {gains} nats. Rate of the lowest mean validation loss, with a percentile "
            f"bootstrap of that choice over seeds (descriptive, not the verdict): {picks}. A range part is < 0 when the "
            "best in-range rate beats the best out-of-range rate (rate 0 included) on test loss, each chosen per seed "
            "on validation; test loss = cross-entropy on held-out rows with the training label noise")
    return dict(parts[key][0]), note


N3_PARTS = {"best_val": ("N3a", "Dropout rates hidden 0.3-0.5 and input 0.1-0.2 are best, and dropout helps more with less "
                                "data, with early stopping (best-validation weights)",
                         "the weakest of: hidden range, input range (test loss, in-range minus out-of-range rate chosen "
                         "on validation, pooled over sizes), trend (slope of the benefit on log2 n); with early stopping"),
            "final": ("N3b", "The same, trained to the end of a fixed step budget (no early stopping)",
                      "the weakest of: hidden range, input range (test loss, in-range minus out-of-range rate chosen on "
                      "validation, pooled over sizes), trend (slope of the benefit on log2 n); trained to the end")}

claim_parts(N3_PARTS, ["dropout_rates"], "dropout_rates", lambda t, key: n3_judge(t["dropout_rates"], key))


@claim("N3", "Dropout rate: hidden 0.3-0.5 is best for fully connected nets, low (0.1-0.2) at the input; dropout helps more with less data",
       ["dropout_rates"], figure="dropout_rates")
def n3(t):
    df = t["dropout_rates"]
    judged = {when: n3_judge(df, when) for when in N3_PARTS}
    v = worst(*(fields["verdict"] for fields, _ in judged.values()))
    when = next(w for w, (fields, _) in judged.items() if fields["verdict"] == v)
    note = ("the weakest of " + ", ".join(f"{N3_PARTS[w][0]} ({WHEN[w]}) {f['verdict']}" for w, (f, _) in judged.items())
            + f"; shown: {N3_PARTS[when][0]}'s deciding part. " + judged[when][1])
    return row(f"the weakest of N3a (early stopping) and N3b (trained to the end); shown: {N3_PARTS[when][0]}'s deciding part",
               **dict(judged[when][0], verdict=v), note=note)


# ---------------------------------------------------------------- N4
def per_model(df: pd.DataFrame, split: str, metric: str, labels: str = "") -> pd.DataFrame:
    s = df[(df.split == split) & (df.metric == metric) & (df.labels == labels)]
    if "feature" in s:
        s = s[s.feature.isna()]
    return s.pivot_table(index="seed", columns="rate", values="value")


def n4_parts(df: pd.DataFrame) -> dict:
    """N4's three parts, each judged over the hidden rates: name -> (summary, per-rate table)."""
    auroc = per_model(df, "test_vs_ood", "auroc_mi")
    rates = sorted(auroc.columns)
    nll, ece = (_per_seed_diff(df, "test", "noisy", m) for m in ("nll", "ece"))
    return {"spread": regimes({f"p={r:g}": auroc[r] for r in rates}, ">", AUROC_CHANCE, AUROC_SESOI),
            "nll": regimes({f"p={r:g}": nll[r] for r in rates}, ">", 0.0, NLL_SESOI),
            "ece": regimes({f"p={r:g}": ece[r] for r in rates}, ">", 0.0, ECE_SESOI)}


def _per_seed_diff(df, split, labels, metric) -> dict:
    """Per rate: per-seed det minus MC of a metric (positive = MC better)."""
    s = df[(df.split == split) & (df.labels == labels)]
    return {rate: (w := g.pivot_table(index="seed", columns="metric", values="value"))[f"{metric}_det"] - w[f"{metric}_mc"]
            for rate, g in s.groupby("rate")}


N4_PARTS = {"spread": ("N4a", "MC dropout's spread (mutual information) is larger far from the training data than near it",
                       "AUROC of MC-dropout mutual information, out-of-distribution vs test inputs, pooled over hidden rates "
                       "(chance 0.5)"),
            "nll": ("N4b", "MC dropout's predictions have lower NLL than one deterministic pass",
                    "test NLL, deterministic minus MC average (positive = MC better), pooled over hidden rates"),
            "ece": ("N4c", "MC dropout's predictions are better calibrated than one deterministic pass",
                    "test ECE, deterministic minus MC average (positive = MC better), pooled over hidden rates")}


def _n4_judge(t, key):
    summary, table = n4_parts(t["dropout_mc"])[key]
    return summary, f"by hidden rate (Holm over rates): {by_cell(table)}"


claim_parts(N4_PARTS, ["dropout_mc"], "dropout_uncertainty", _n4_judge)


@claim("N4", "MC dropout gives usable uncertainty: larger spread far from the training data, better NLL/calibration than one deterministic pass",
       ["dropout_mc"], figure="dropout_uncertainty")
def n4(t):
    df = t["dropout_mc"]
    auroc = per_model(df, "test_vs_ood", "auroc_mi")
    ratio = per_model(df, "ood", "mi") / per_model(df, "test", "mi")
    ent_det = per_model(df, "test_vs_ood", "auroc_entropy_det").mean()
    ent_mc = per_model(df, "test_vs_ood", "auroc_entropy_mc").mean()
    nll = _paired_diff(df, "test", "noisy", "nll")
    ece = _paired_diff(df, "test", "noisy", "ece")
    ece_clean = _paired_diff(df, "test", "clean", "ece")
    rates = sorted(auroc.columns)
    parts, notes = {"spread": [], "nll": [], "ece": []}, []
    for r in rates:
        a = mean_ci(auroc[r])
        va = verdict(a[1], a[2], AUROC_CHANCE, ">")
        vn = verdict(nll[r][1], nll[r][2], 0, ">")
        ve = verdict(ece[r][1], ece[r][2], 0, ">")
        parts["spread"].append(va)
        parts["nll"].append(vn)
        parts["ece"].append(ve)
        notes.append(f"p={r:g}: AUROC(MI) {a[0]:.3f} [{a[1]:.3f}, {a[2]:.3f}] {va}, MI ood/test x{ratio[r].mean():.2f}; "
                     f"NLL det-MC {nll[r][0]:+.4f} [{nll[r][1]:+.4f}, {nll[r][2]:+.4f}] {vn}; "
                     f"ECE det-MC {ece[r][0]:+.4f} [{ece[r][1]:+.4f}, {ece[r][2]:+.4f}] {ve} "
                     f"(clean labels {ece_clean[r][0]:+.4f})")
    judged = n4_parts(df)
    v = worst(*(summary["verdict"] for summary, _ in judged.values()))
    note = ("; ".join(notes) + ". Predictive entropy as the OOD score: AUROC deterministic "
            + ", ".join(f"{ent_det[r]:.2f}" for r in rates) + ", MC " + ", ".join(f"{ent_mc[r]:.2f}" for r in rates)
            + " (below 0.5: the far inputs look MORE certain); only the mutual-information part of MC dropout rises off the "
              "data. OOD = test inputs x the teacher's ood_scale. NLL/ECE on test rows with the training label noise; "
              "each part (spread N4a, NLL N4b, ECE N4c) is judged over the rates in its own row; the weakest part decides: "
            + ", ".join(f"{N4_PARTS[k][0]} {summary['verdict']}" for k, (summary, _) in judged.items()))
    return row("the weakest of N4a (spread), N4b (NLL), N4c (calibration); shown: N4a's pooled AUROC",
               **dict(judged["spread"][0], verdict=v), note=note)
