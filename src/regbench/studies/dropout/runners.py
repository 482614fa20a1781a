"""The dropout study (claims N1-N4).

N1  dropout_expectation: does the Monte Carlo mean of the train-mode output
    equal the inference output, unit by unit, within its sampling error?
    Standard dropout (mask ~ Bernoulli(1-p), inference x (1-p)), inverted
    dropout (mask / (1-p), inference unchanged), the document's Problem 2
    code verbatim (a and b), the engine's own dropout, and a deliberately
    wrong control (inverted training *and* (1-p) at inference) that shows
    the check has the power to catch a real bug.
N2, N4  dropout_mc: nets trained with hidden dropout (best-validation weights
    restored); the weight-scaled deterministic pass against the mean over
    sampled masks (the sub-network ensemble); MC-dropout spread on test vs
    out-of-distribution inputs; NLL and ECE of both predictors.
N3  dropout_rates: test loss vs hidden rate and vs input rate at several
    training-set sizes; every rate (and seed) of one size is one batch of
    the engine (per-model dropout rates).

Per-unit and per-row values (z-scores, per-input uncertainties) carry their
index in the `feature` column, so the CSV summary leaves them out.
"""
import math

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from regbench import calibration, nets, seeds

Z = 3.0  # a unit whose |MC mean - inference| exceeds Z standard errors counts as off
VARIANTS = ("standard", "inverted", "problem2a", "problem2b", "engine", "control")
# The variants whose expectations the document says match (all but the control).
CORRECT = VARIANTS[:-1]


# ---------------------------------------------------------------- helpers
def _sample(job, n_train, s) -> dict:
    """Seed s's splits, plus y_test_noisy: test labels with the training label noise.

    The test loss the study reports is on y_test_noisy (held-out rows from the
    distribution the nets were trained on, label noise included); the clean
    teacher labels y_test give the accuracy against the truth.
    """
    spec, d = job.teacher, job.draw(n_train, s)
    r = job.rng("test-label-noise", s)
    y = d["y_test"]
    flip = r.random(y.size) < spec["label_noise"]
    d["y_test_noisy"] = np.where(flip, r.integers(0, spec["classes"], y.size), y).astype(np.int64)
    return d


def _rows(**cols) -> pd.DataFrame:
    n = max(np.size(v) for v in cols.values())
    return pd.DataFrame({k: (np.asarray(v) if np.size(v) == n else np.repeat(v, n)) for k, v in cols.items()})


class BestWeights:
    """Engine callback: keeps each model's parameters at its lowest validation loss."""

    def __init__(self, model):
        self.loss = torch.full((model.K,), math.inf, dtype=torch.float64, device=model.device)
        self.epoch = torch.zeros(model.K, dtype=torch.long)
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def __call__(self, epoch, model, metrics):
        loss = metrics["val"]["loss"]
        better = loss < self.loss
        if bool(better.any()):
            self.loss = torch.where(better, loss, self.loss)
            self.epoch[better.cpu()] = epoch
            for k, v in model.state_dict().items():
                self.state[k][better] = v.detach()[better]

    def restore(self, model):
        model.load_state_dict(self.state)


# ---------------------------------------------------------------- N1
def _z_stats(diff_sum, diff_sq, m):
    """z-scores of the mean difference (train-mode MC mean - inference) per unit.

    diff_sum, diff_sq: sums over m masks of d and d^2, d = train output - inference
    output (centring on the inference value keeps the variance exact in float64).
    Units with zero variance (a ReLU unit that is 0, so every mask gives 0)
    match exactly and get no z-score.
    """
    mean = diff_sum / m
    var = (diff_sq - m * mean**2) / (m - 1)
    live = var > 0
    z = mean[live] / np.sqrt(var[live] / m)
    return z, int((~live).sum())


def _mc_numpy(train, infer, n_masks, chunk=250):
    """Sums of d, d^2 over n_masks draws of train() - infer (float64, [units])."""
    s = np.zeros_like(infer)
    s2 = np.zeros_like(infer)
    m = 0
    while m < n_masks:
        c = min(chunk, n_masks - m)
        d = train(c) - infer[None]
        s += d.sum(0)
        s2 += (d * d).sum(0)
        m += c
    return s, s2


ENGINE_ROWS = 4  # the engine variant checks one output on ENGINE_ROWS x rows inputs (about the numpy variants' cost)


def _activations(job, s):
    """Teacher test inputs for the engine ([ENGINE_ROWS * rows, p]) and the hidden
    activations h = relu(x W + b) of a random layer on the first `rows` of them, flattened."""
    params = job.params
    x = job.draw(2, s)["X_test"][: ENGINE_ROWS * params["rows"]].astype(np.float64)
    r = job.rng("layer", s)
    W = r.standard_normal((x.shape[1], params["width"])) * np.sqrt(2.0 / x.shape[1])
    b = 0.1 * r.standard_normal(params["width"])
    return x, np.maximum(x[: params["rows"]] @ W + b, 0.0).ravel()


def _numpy_variant(variant, h, p, n_masks, r):
    """(sums of d, d^2) for one numpy variant at rate p; h is [units] float64."""
    keep = 1.0 - p
    if variant == "standard":      # mask ~ Bernoulli(1-p), no scaling; inference multiplies by (1-p)
        train, infer = (lambda c: h * (r.random((c, h.size), dtype=np.float32) < keep)), h * keep
    elif variant == "inverted":    # mask / (1-p) in training; inference unchanged
        train, infer = (lambda c: h * (r.random((c, h.size), dtype=np.float32) < keep) / keep), h
    elif variant == "control":     # the classic bug: inverted training AND (1-p) at inference
        train, infer = (lambda c: h * (r.random((c, h.size), dtype=np.float32) < keep) / keep), h * keep
    elif variant == "problem2a":   # the document's Problem 2 code, verbatim (p = 0.5 hard-coded)
        def train(c):
            mask = r.binomial(1, 0.5, size=(c, *h.shape))
            h_dropped = h * mask
            return h_dropped
        infer = h * 0.5
    elif variant == "problem2b":   # its inverted version (Problem 2b)
        def train(c):
            mask = r.binomial(1, 0.5, size=(c, *h.shape))
            h_dropped = h * mask / 0.5
            return h_dropped
        infer = h
    else:
        raise ValueError(variant)
    return _mc_numpy(train, infer, n_masks)


def _engine_variant(x, rates, n_masks, seed, device):
    """The engine's inverted dropout on a one-hidden-layer net, per-model rates.

    Only the hidden layer drops, and the output layer is linear in it, so the
    mean train-mode output must equal the eval-mode output exactly. Returns
    per model the sums of d and d^2 over n_masks masks for the first output
    of every row: rows get independent masks, while the outputs of one row
    share theirs, so only one output per row is an independent check.
    """
    K = len(rates)
    spec = nets.MLPSpec(d_in=x.shape[1], d_out=4, hidden=(64,), p_hidden=tuple(rates))
    model = nets.BatchedMLP(spec, [seed] * K, device=device, dtype=torch.float64)
    gens = [torch.Generator(device=device).manual_seed(seeds.int_seed(seed, "mc", k)) for k in range(K)]
    xt = torch.as_tensor(x, dtype=torch.float64, device=device)
    infer = model.predict(xt)  # [K, rows, out]
    reps = max(1, 4096 // x.shape[0])
    s = torch.zeros_like(infer[..., 0])
    s2 = torch.zeros_like(infer[..., 0])
    m = 0
    with torch.no_grad():
        while m < n_masks:
            c = min(reps, n_masks - m)
            out = model(xt.repeat(c, 1), train=True, generators=gens).view(K, c, *infer.shape[1:])
            d = (out - infer[:, None])[..., 0]
            s += d.sum(1)
            s2 += (d * d).sum(1)
            m += c
    return s.cpu().numpy(), s2.cpu().numpy()


def dropout_expectation(job) -> pd.DataFrame:
    """N1: per (variant, rate, seed): share of units with |z| > Z, max |z|, mean z."""
    params, device = job.params, job.device
    M = params["n_masks"]
    out = []

    def emit(s, variant, rate, sums):
        z, exact = _z_stats(*sums, M)
        base = dict(experiment="dropout_expectation", seed=s, variant=variant, rate=rate)
        vals = dict(share_exceed=float(np.mean(np.abs(z) > Z)) if z.size else 0.0,
                    max_abs_z=float(np.abs(z).max()) if z.size else 0.0, mean_z=float(z.mean()) if z.size else 0.0,
                    n_units=z.size, n_exact=exact)
        out.append(_rows(**base, metric=list(vals), value=list(vals.values())))
        if s == 0:
            out.append(_rows(**base, feature=np.arange(z.size), metric="z", value=z))

    for s in range(params["seeds"]):
        job.progress(f"seed {s + 1} of {params['seeds']}")
        x, h = _activations(job, s)
        for variant in ("standard", "inverted", "control"):
            for p in params["rates"]:
                r = job.rng(variant, p, s)
                emit(s, variant, p, _numpy_variant(variant, h, p, M, r))
        for variant in ("problem2a", "problem2b"):
            r = job.rng(variant, s)
            emit(s, variant, 0.5, _numpy_variant(variant, h, 0.5, M, r))
        sums = _engine_variant(x, params["rates"], M, job.int_seed("engine", s), device)
        for k, p in enumerate(params["rates"]):
            emit(s, "engine", p, (sums[0][k], sums[1][k]))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- N2, N4
def _entropy(p):
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)


def _softmax64(logits):
    return torch.softmax(logits.double(), dim=-1).cpu().numpy()


def _auroc(in_scores, out_scores) -> float:
    """AUROC of telling out-of-distribution rows (positive) from test rows by a score."""
    y = np.r_[np.zeros(in_scores.size), np.ones(out_scores.size)]
    return float(roc_auc_score(y, np.r_[in_scores, out_scores]))


def _mc_moments(model, x, n_samples, gens):
    """Sum of softmax p, of p^2 and of the entropy of p over n_samples masks ([K, n, C], [K, n])."""
    s = s2 = ent = 0.0
    for _ in range(n_samples):
        p = _softmax64(model.mc_predict(x, 1, gens)[0])
        s = s + p
        s2 = s2 + p * p
        ent = ent + _entropy(p)
    return s, s2, ent


def mc_summary(p_det, s, s2, ent, S):
    """Per model and row: MC mean, ensemble spread, gap of the weight-scaled pass, uncertainties.

    p_det [K, n, C]: softmax of the deterministic (weight-scaled) pass. s, s2,
    ent: sums over S sampled masks of p, p^2 and entropy(p). Returns arrays
    [K, n]: spread2 = E||p_mask - p_ens||^2 (unbiased), gap2 = ||p_det -
    p_ens||^2 with the Monte Carlo error of the estimated mean removed
    (E||p_det - mean_S||^2 = gap2 + spread2 / S), tv = total variation
    between p_det and the MC mean, mi = mutual information (predictive
    entropy minus the mean entropy of the masks), var = mean variance of the
    class probabilities across masks, and the predictive entropies.
    """
    p_mc = s / S
    var_c = (s2 / S - p_mc**2) * S / (S - 1)
    spread2 = var_c.sum(-1)
    gap2 = ((p_det - p_mc) ** 2).sum(-1) - spread2 / S
    ent_mc = _entropy(p_mc)
    return dict(p_mc=p_mc, spread2=spread2, gap2=gap2, tv=0.5 * np.abs(p_det - p_mc).sum(-1),
                mi=np.clip(ent_mc - ent / S, 0.0, None), var=var_c.mean(-1), entropy_mc=ent_mc,
                entropy_det=_entropy(p_det))


def _stack(ds, key):
    return np.stack([d[key] for d in ds])


def dropout_mc(job) -> pd.DataFrame:
    """N2, N4: one model per (hidden rate, seed), trained at once; deterministic vs MC predictions."""
    params, device = job.params, job.device
    S, rates = params["mc_samples"], params["rates"]
    n_seeds = params["seeds"]
    models = [(p, s) for p in rates for s in range(n_seeds)]
    K = len(models)
    ds = [_sample(job, params["n_train"], s) for s in range(n_seeds)]
    for d in ds:  # the first mc_rows test and out-of-distribution rows
        for key in ("X_test", "y_test", "y_test_noisy", "X_ood", "y_ood"):
            d[key] = d[key][: params["mc_rows"]]
    per = [ds[s] for _, s in models]
    spec_t = job.teacher
    spec = nets.MLPSpec(d_in=spec_t["p"], d_out=spec_t["classes"], hidden=tuple(params["hidden"]),
                        p_hidden=tuple(p for p, _ in models))
    engine_seeds = [job.int_seed(s) for _, s in models]  # same init and order across rates
    job.progress(f"training {K} models (rates x seeds) for {params['epochs']} epochs")
    model = nets.BatchedMLP(spec, engine_seeds, device=device)
    keeper = BestWeights(model)
    hist, model = nets.train(spec, nets.OptimSpec("adam", lr=params["lr"]), engine_seeds,
                             {"train": (_stack(per, "X_train"), _stack(per, "y_train")),
                              "val": (_stack(per, "X_val"), _stack(per, "y_val"))},
                             epochs=params["epochs"], batch_size=params["batch_size"], eval_every=params["eval_every"],
                             model=model, device=device, callback=keeper)
    keeper.restore(model)
    rate_of = np.array([p for p, _ in models])
    seed_of = np.array([s for _, s in models])
    out = [_rows(experiment="dropout_mc", rate=rate_of, seed=seed_of, split="val", metric="best_epoch",
                 value=keeper.epoch.numpy().astype(float))]
    summ = {}
    for split in ("test", "ood"):
        job.progress(f"{S} MC-dropout passes on {split}")
        x = _stack(per, f"X_{split}")
        gens = [torch.Generator(device=device).manual_seed(job.int_seed("mc", split, k)) for k in range(K)]
        p_det = _softmax64(model.predict(x))
        summ[split] = mc_summary(p_det, *_mc_moments(model, x, S, gens), S)
        summ[split]["p_det"] = p_det
    labels = {("test", "noisy"): _stack(per, "y_test_noisy"), ("test", "clean"): _stack(per, "y_test"),
              ("ood", "clean"): _stack(per, "y_ood")}
    for k, (p, s) in enumerate(models):
        base = dict(experiment="dropout_mc", rate=p, seed=s)
        for split, m in summ.items():
            vals = {
                "gap2": m["gap2"][k].mean(), "spread2": m["spread2"][k].mean(), "tv_gap": m["tv"][k].mean(),
                "agree": float(np.mean(m["p_det"][k].argmax(-1) == m["p_mc"][k].argmax(-1))),
                "mi": m["mi"][k].mean(), "var": m["var"][k].mean(),
                "entropy_mc": m["entropy_mc"][k].mean(), "entropy_det": m["entropy_det"][k].mean(),
            }
            out.append(_rows(**base, split=split, labels="", metric=list(vals), value=list(vals.values())))
            for (sp, lab), y in labels.items():
                if sp != split:
                    continue
                for pred in ("det", "mc"):
                    pk = m[f"p_{pred}"][k]
                    vals = {f"nll_{pred}": calibration.nll(pk, y[k]), f"ece_{pred}": calibration.ece(pk, y[k]),
                            f"accuracy_{pred}": calibration.accuracy(pk, y[k])}
                    out.append(_rows(**base, split=split, labels=lab, metric=list(vals), value=list(vals.values())))
            for metric in ("mi", "entropy_det", "entropy_mc"):
                out.append(_rows(**base, split=split, labels="", feature=np.arange(m[metric][k].size),
                                 metric=f"row_{metric}", value=m[metric][k]))
        t, o = summ["test"], summ["ood"]
        vals = {f"auroc_{metric}": _auroc(t[metric][k], o[metric][k]) for metric in ("mi", "var", "entropy_mc", "entropy_det")}
        out.append(_rows(**base, split="test_vs_ood", labels="", metric=list(vals), value=list(vals.values())))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- N3
def _arms(params):
    """Unique (p_input, p_hidden) pairs and the (layer, rate) labels each one stands for."""
    arms = {}
    for r in sorted({0.0, *map(float, params["hidden_rates"])}):  # 0: the no-dropout baseline, always trained
        arms.setdefault((0.0, r), []).append(("hidden", r))
    for r in sorted({0.0, *map(float, params["input_rates"])}):
        arms.setdefault((r, 0.0), []).append(("input", r))
    return arms


def rates_at_size(job, n_train: int) -> pd.DataFrame:
    """One training-set size: every (rate, seed) model in one batch; test loss at the
    best-validation evaluation and after the fixed step budget.

    The models of one seed share data, initialization and data order; only
    their dropout rates differ (a paired design). The no-dropout model is
    listed under both layers (rate 0 of the hidden and of the input sweep).
    """
    params, device, n_seeds = job.params, job.device, job.params["seeds"]
    job.progress(f"n_train {n_train}: training every rate x seed")
    arms = _arms(params)
    models = [(pair, s) for pair in arms for s in range(n_seeds)]
    ds = [_sample(job, n_train, s) for s in range(n_seeds)]
    per = [ds[s] for _, s in models]
    spec_t = job.teacher
    spec = nets.MLPSpec(d_in=spec_t["p"], d_out=spec_t["classes"], hidden=tuple(params["hidden"]),
                        p_input=tuple(pair[0] for pair, _ in models), p_hidden=tuple(pair[1] for pair, _ in models))
    engine_seeds = [job.int_seed(n_train, s) for _, s in models]
    epochs = max(params["min_epochs"], math.ceil(params["steps"] / math.ceil(n_train / params["batch_size"])))
    eval_every = max(1, epochs // params["evals"])
    model = nets.BatchedMLP(spec, engine_seeds, device=device)
    keeper = BestWeights(model)
    hist, model = nets.train(spec, nets.OptimSpec("adam", lr=params["lr"]), engine_seeds,
                             {"train": (_stack(per, "X_train"), _stack(per, "y_train")),
                              "val": (_stack(per, "X_val"), _stack(per, "y_val"))},
                             epochs=epochs, batch_size=params["batch_size"], eval_every=eval_every, model=model,
                             device=device, callback=keeper)
    # The test split is scored twice, not at every evaluation: after the budget, then at the best-validation weights.
    test = nets.Split(_stack(per, "X_test"), _stack(per, "y_test_noisy"), len(models), "classification", model.device, model.dtype)
    final_test = {k: v.cpu().numpy() for k, v in nets.evaluate(model, test, "classification").items()}
    keeper.restore(model)
    best_test = {k: v.cpu().numpy() for k, v in nets.evaluate(model, test, "classification").items()}
    wide = hist.pivot_table(index=["model", "epoch"], columns=["split", "metric"], values="value")
    out = []
    for k, (pair, s) in enumerate(models):
        h = wide.loc[k]
        val = h[("val", "loss")]
        final = int(h.index.max())
        vals = {
            ("best_val", "test_loss"): best_test["loss"][k], ("best_val", "test_accuracy"): best_test["accuracy"][k],
            ("best_val", "epoch"): int(keeper.epoch[k]), ("final", "test_loss"): final_test["loss"][k],
            ("final", "test_accuracy"): final_test["accuracy"][k], ("final", "train_loss"): h.loc[final, ("train", "loss")],
            ("final", "val_rise"): h.loc[final, ("val", "loss")] - val.min(), ("final", "epoch"): final,
            # validation losses: the best rate is chosen on these, never on the test loss it reports
            ("best_val", "val_loss"): val.min(), ("final", "val_loss"): h.loc[final, ("val", "loss")],
        }
        for layer, rate in arms[pair]:
            base = dict(experiment="dropout_rates", n_train=n_train, layer=layer, rate=rate, seed=s)
            out.append(_rows(**base, when=[a for a, _ in vals], metric=[m for _, m in vals], value=list(vals.values())))
    return pd.concat(out, ignore_index=True)


def dropout_rates(job) -> pd.DataFrame:
    return pd.concat([rates_at_size(job, pt["n_train"]) for pt in job.points], ignore_index=True)


RUNNERS = {f.__name__: f for f in (dropout_expectation, dropout_mc, dropout_rates)}
