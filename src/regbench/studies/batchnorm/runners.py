"""The batch-normalization study (claims N5-N7).

N5  bn_dropout: the document's Problem 2c. One MLP recipe (teacher data,
    hidden dropout p) in five arms, every seed trained in every arm:
      dropout_bn        Linear -> ReLU -> Dropout -> BN (the failing case)
      bn_dropout        Linear -> BN -> ReLU -> Dropout (fix: dropout after BN)
      dropout_bn_recal  the dropout_bn nets themselves, BN running statistics
                        re-estimated on the training rows with dropout off
      layer_norm        dropout_bn with LayerNorm in place of BN
      no_dropout        dropout_bn with p = 0
    Test loss and accuracy per arm, and the mean and variance of every BN
    layer's input in train mode (dropout on, batch statistics) vs eval mode
    (dropout off) on the test rows, with the running variance BN divides by.
N6  bn_batchsize: generalization gap (held-out minus training loss) and test
    loss vs batch size for no norm, BN and ghost BN, with the number of updates
    held fixed (epochs grow with the batch), one batch size per job; no norm and
    BN again with the learning rate scaled with the batch (a second arm: a larger
    batch at a fixed lr also means less gradient noise per update).
N7  bn_stats: one BN net evaluated with fresh, stale (saved at an early
    epoch), missing (the init values 0 / 1) and recalibrated running
    statistics, and with batch statistics of small test batches (eval mode
    forgotten); LayerNorm trained the same way; and training with batch
    size 1, BN vs LayerNorm.

Seeds: seed index i draws its own teacher and data (regbench.teacher); its nets
carry the model seed int_seed(root, experiment, i), the same in every arm,
so arms are paired by seed (same data, same shuffles and masks).
"""
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from regbench import nets, teacher
from regbench.nets.train import Split, evaluate

N5_ARMS = ("dropout_bn", "bn_dropout", "dropout_bn_recal", "layer_norm", "no_dropout")
N6_NORMS = ("none", "batch", "ghost")
# Below this eval-mode variance a unit counts as dead (a ReLU that is always 0) and
# is left out of the variance ratios: its ratio is 0/0.
DEAD_VAR = 1e-8


# ---------------------------------------------------------------- helpers
def teacher_data(job) -> dict:
    """Every seed's splits stacked per model: X_* [K, n, d], y_* [K, n] (numpy)."""
    out = teacher.stack([job.draw(job.params["n_train"], i) for i in range(job.seeds)])
    out["classes"] = int(job.teacher["classes"])
    return out


def model_seeds(job, n: int) -> list:
    return [job.int_seed(i) for i in range(n)]


def _optim(params) -> nets.OptimSpec:
    return nets.OptimSpec("adamw", lr=params["lr"], weight_decay=params["weight_decay"])


def _final(df: pd.DataFrame) -> pd.DataFrame:
    """The last epoch's eval-mode metrics of an engine table, as seed/split/metric/value."""
    last = df[df.epoch == df.epoch.max()]
    return pd.DataFrame({"seed": last.model.to_numpy(), "split": last.split.to_numpy(),
                         "metric": last.metric.to_numpy(), "value": last.value.to_numpy()})


def _metrics(out: torch.Tensor, y: torch.Tensor) -> dict:
    """Mean cross-entropy and accuracy per model of logits [K, n, C] against y [K, n]."""
    K, n, c = out.shape
    loss = F.cross_entropy(out.reshape(-1, c).double(), y.reshape(-1), reduction="none").view(K, n).mean(1)
    acc = (out.argmax(-1) == y).double().mean(1)
    return {"loss": loss.cpu().numpy(), "accuracy": acc.cpu().numpy()}


def _eval(model, d, split="test") -> dict:
    """Eval-mode loss and accuracy per model on one split of per-model data."""
    s = Split(d[f"X_{split}"], d[f"y_{split}"], model.K, "classification", model.device, model.dtype)
    return {k: v.cpu().numpy() for k, v in evaluate(model, s, "classification").items()}


def _rows(base: dict, values: dict) -> list:
    """One row per (seed, metric) from {metric: per-seed array}."""
    return [dict(base, seed=i, metric=m, value=float(v)) for m, arr in values.items() for i, v in enumerate(arr)]


def chance(y_train: np.ndarray, y_test: np.ndarray, classes: int) -> dict:
    """Per seed: the accuracy of always predicting the training majority class and the
    test cross-entropy of predicting the training class frequencies (what a net whose
    output ignores its input can reach at best)."""
    acc, loss = [], []
    for ytr, yte in zip(y_train, y_test):
        freq = np.bincount(ytr, minlength=classes) / ytr.size
        acc.append(float(np.mean(yte == np.argmax(freq))))
        loss.append(float(-np.mean(np.log(np.clip(freq[yte], 1e-12, None)))))
    return {"chance_accuracy": np.array(acc), "chance_loss": np.array(loss)}


# ---------------------------------------------------------------- the variance shift
def input_moments(model: nets.BatchedMLP, x, generator: torch.Generator) -> list:
    """Per norm layer, per model: how the layer's input differs between train and eval mode.

    x: rows shared by all models [n, d] or per model [K, n, d]. Train mode:
    dropout masks from `generator`, batch statistics over all of x, running
    statistics untouched. Returns one dict per norm layer of [K] arrays,
    each a ratio over the layer's live units (eval variance > DEAD_VAR):
      mean_ratio   sum of train-mode means / sum of eval-mode means (for inputs
                   that follow a ReLU, whose means are >= 0; else nan)
      mean_shift   RMS over units of (train mean - eval mean) / eval sd
      var_ratio    sum of train-mode variances / sum of eval-mode variances
      m2_ratio     the same for the second moment E[x^2]
      var_ratio_predicted   what inverted dropout alone predicts for var_ratio
                   from the eval-mode moments: (E[x^2]/q - mean^2) summed over
                   units / eval variances summed (q = 1 - p, the keep rate);
                   nan for a layer whose input is not a dropout output
      running_var_ratio     BN's running variance (what it divides by at
                   inference) / the eval-mode variance it meets there (nan
                   without running statistics)
    """
    tr = model.norm_input_stats(x, train=True, generator=generator)
    ev = model.norm_input_stats(x, train=False)
    spec = model.spec
    after_relu = spec.order == "dropout_norm" and spec.activation == "relu"
    q = torch.tensor([1 - p for p in spec.rates("p_hidden", model.K)], dtype=torch.float64, device=model.device)[:, None]
    running = model.bn_stats()
    out = []
    for i, (t, e) in enumerate(zip(tr, ev)):
        mt, vt, me, ve = (a.double() for a in (t["mean"], t["var"], e["mean"], e["var"]))
        live = (ve > DEAD_VAR).double()
        m2t, m2e = vt + mt**2, ve + me**2
        ssum = lambda a: (a * live).sum(1)  # noqa: E731
        row = {
            "mean_ratio": ssum(mt) / ssum(me) if after_relu else torch.full_like(ssum(me), float("nan")),
            "mean_shift": torch.sqrt(ssum((mt - me) ** 2 / ve.clamp_min(DEAD_VAR)) / live.sum(1)),
            "var_ratio": ssum(vt) / ssum(ve),
            "m2_ratio": ssum(m2t) / ssum(m2e),
            "var_ratio_predicted": (ssum(m2e / q - me**2) / ssum(ve)) if spec.order == "dropout_norm"
            else torch.full_like(ssum(ve), float("nan")),
            "running_var_ratio": ssum(running[i][1].double()) / ssum(ve) if running
            else torch.full_like(ssum(ve), float("nan")),
        }
        out.append({k: v.cpu().numpy() for k, v in row.items()})
    return out


# ---------------------------------------------------------------- N5
def _n5_spec(params, d_in, d_out, arm) -> nets.MLPSpec:
    p = params["p_hidden"]
    kw = {"dropout_bn": dict(norm="batch", order="dropout_norm", p_hidden=p),
          "bn_dropout": dict(norm="batch", order="norm_dropout", p_hidden=p),
          "layer_norm": dict(norm="layer", order="dropout_norm", p_hidden=p),
          "no_dropout": dict(norm="batch", order="dropout_norm", p_hidden=0.0)}[arm]
    return nets.MLPSpec(d_in, d_out, tuple(params["hidden"]), **kw)


def bn_dropout(job) -> pd.DataFrame:
    """N5: test metrics per arm and the train-vs-eval moments of every BN input."""
    params, dev = job.params, job.device
    d = teacher_data(job)
    K, d_in = d["X_train"].shape[0], d["X_train"].shape[2]
    ms = model_seeds(job, K)
    data = {"train": (d["X_train"], d["y_train"]), "test": (d["X_test"], d["y_test"])}
    arms = list(params["arms"])
    trained = [a for a in arms if a != "dropout_bn_recal"]
    if "dropout_bn_recal" in arms and "dropout_bn" not in trained:
        trained.insert(0, "dropout_bn")  # recalibration needs the failing nets
    rows = _rows(dict(arm="dropout_bn", layer=np.nan, split=np.nan), {"p_hidden": np.full(K, params["p_hidden"])})
    for arm in trained:
        job.progress(f"arm {arm}")
        spec = _n5_spec(params, d_in, d["classes"], arm)
        df, model = nets.train(spec, _optim(params), ms, data, epochs=params["epochs"],
                               batch_size=params["batch_size"], eval_every=params["epochs"], device=dev)
        if arm in arms:
            rows += [dict(r, arm=arm, layer=np.nan) for r in _final(df).to_dict("records")]
        variants = [(arm, model)]
        if arm == "dropout_bn" and "dropout_bn_recal" in arms:
            variants.append(("dropout_bn_recal", None))
        for name, m in variants:
            if m is None:  # the same nets, statistics re-estimated on the training rows, dropout off
                model.recalibrate_bn(d["X_train"])
                for split in ("train", "test"):
                    rows += _rows(dict(arm=name, split=split, layer=np.nan), _eval(model, d, split))
            if name not in arms or spec.norm == "none":
                continue
            gen = torch.Generator(device=model.device).manual_seed(job.int_seed("moments", name))
            for layer, mom in enumerate(input_moments(model, d["X_test"], gen)):
                rows += _rows(dict(arm=name, split="test", layer=layer), mom)
    return pd.DataFrame(rows)[["seed", "arm", "layer", "split", "metric", "value"]]


# ---------------------------------------------------------------- N6
def updates_schedule(n_train: int, batch_size: int, steps: int) -> tuple[int, int]:
    """(epochs, updates): whole epochs of n_train // batch_size updates (short last
    batch dropped) closest to `steps` updates, at least one epoch."""
    per_epoch = n_train // batch_size
    if per_epoch < 1:
        raise ValueError(f"bn_batchsize: batch size {batch_size} exceeds n_train = {n_train}")
    epochs = max(1, round(steps / per_epoch))
    return epochs, epochs * per_epoch


def scaled_lr(lr: float, batch: int, ref_batch: int, scaling: str) -> float:
    """The learning rate of an lr-scaling arm at a batch size: `fixed` keeps lr; `linear`
    multiplies it by batch / ref_batch (Goyal et al. 2017, for SGD); `sqrt` by its square
    root (the scaling rule for Adam, Malladi et al. 2022): both keep the gradient-noise
    scale of training about constant as the batch grows."""
    power = {"fixed": 0.0, "sqrt": 0.5, "linear": 1.0}[scaling]
    return lr * (batch / ref_batch) ** power


def bn_batchsize(job) -> pd.DataFrame:
    """N6: held-out minus training loss per norm, for the batch sizes of this chunk.

    The held-out rows are the teacher's validation split (same label noise as
    the training rows, never used for tuning here), so the gap measures
    overfitting and nothing else; test metrics (clean labels) come along.
    Ghost BN is trained only where the batch exceeds its ghost batch (else it is BN),
    and only at the fixed learning rate. Each lr-scaling arm other than `fixed`
    trains no norm and BN with its scaled lr; at the reference batch its lr is the
    fixed one, so the fixed arm's runs are its runs there (rows copied, not retrained).
    """
    params, dev = job.params, job.device
    d = teacher_data(job)
    K, d_in = d["X_train"].shape[0], d["X_train"].shape[2]
    ms = model_seeds(job, K)
    data = {"train": (d["X_train"], d["y_train"]), "val": (d["X_val"], d["y_val"]), "test": (d["X_test"], d["y_test"])}
    arms = ["fixed", *[a for a in params["lr_scaling"] if a != "fixed"]]
    rows = []
    for point in job.points:
        b = int(point["batch_size"])
        epochs, updates = updates_schedule(params["n_train"], b, params["steps"])
        fixed_rows = {}
        for arm in arms:
            lr = scaled_lr(params["lr"], b, params["lr_ref_batch"], arm)
            for norm in params["norms"]:
                if norm == "ghost" and (params["ghost_batch"] >= b or arm != "fixed"):
                    continue
                base = dict(batch_size=b, norm=norm, lr_scaling=arm, lr=lr)
                if arm != "fixed" and lr == params["lr"]:
                    rows += [dict(r, **base) for r in fixed_rows[norm]]
                    continue
                job.progress(f"batch size {b}, norm {norm}, lr {lr:.3g} ({arm}): {epochs} epochs")
                spec = nets.MLPSpec(d_in, d["classes"], tuple(params["hidden"]), norm=norm, ghost_batch=params["ghost_batch"])
                optim = nets.OptimSpec("adamw", lr=lr, weight_decay=params["weight_decay"])
                df, _ = nets.train(spec, optim, ms, data, epochs=epochs, batch_size=b,
                                   eval_every=epochs, drop_last=True, device=dev)
                f = _final(df)
                val = lambda split, metric: f[(f.split == split) & (f.metric == metric)].sort_values("seed").value.to_numpy()  # noqa: E731
                extra = {"gap_loss": val("val", "loss") - val("train", "loss"),
                         "gap_accuracy": val("train", "accuracy") - val("val", "accuracy"),
                         "epochs": np.full(K, epochs), "updates": np.full(K, updates)}
                if norm == "ghost":
                    extra["ghost_batch"] = np.full(K, params["ghost_batch"])
                new = [dict(r, **base) for r in f.to_dict("records")] + _rows(dict(base, split=np.nan), extra)
                if arm == "fixed":
                    fixed_rows[norm] = [{k: v for k, v in r.items() if k not in base} for r in new]
                rows += new
    return pd.DataFrame(rows)[["seed", "batch_size", "norm", "lr_scaling", "lr", "split", "metric", "value"]]


# ---------------------------------------------------------------- N7
class StatsAt:
    """Engine callback: copies the BN running statistics after epoch `epoch`."""

    def __init__(self, epoch: int):
        self.epoch, self.stats = epoch, None

    def __call__(self, epoch, model, metrics):
        if epoch == self.epoch:
            self.stats = model.bn_stats()


@torch.no_grad()
def batch_stats_eval(model, X, y, batch: int) -> dict:
    """Test metrics with BN in train mode (batch statistics of `batch` test rows at a
    time, running statistics untouched, no dropout): eval mode forgotten at inference."""
    X = torch.as_tensor(X, dtype=model.dtype, device=model.device)
    y = torch.as_tensor(y, device=model.device)
    out = torch.cat([model(X[:, s:s + batch], train=True, update_stats=False) for s in range(0, X.shape[1], batch)], 1)
    return _metrics(out, y)


def try_train(spec, optim, ms, data, **kw):
    """(metrics table or None, error message or ""): the engine's own behaviour, kept."""
    try:
        df, _ = nets.train(spec, optim, ms, data, **kw)
        return df, ""
    except (ValueError, RuntimeError) as err:
        return None, f"{type(err).__name__}: {err}"


def bn_stats(job) -> pd.DataFrame:
    """N7: eval with fresh / stale / missing / recalibrated / batch statistics; batch-1 training."""
    params, dev = job.params, job.device
    d = teacher_data(job)
    K, d_in, C = d["X_train"].shape[0], d["X_train"].shape[2], d["classes"]
    ms = model_seeds(job, K)
    data = {"train": (d["X_train"], d["y_train"]), "test": (d["X_test"], d["y_test"])}
    hidden = tuple(params["hidden"])
    if params["stale_epoch"] > params["epochs"]:
        raise ValueError(f"bn_stats: stale_epoch {params['stale_epoch']} exceeds epochs {params['epochs']}")
    rows = _rows(dict(arm="chance", norm=np.nan, batch_size=np.nan, split="test"), chance(d["y_train"], d["y_test"], C))

    # One BN net per seed, its running statistics saved early.
    saved = StatsAt(params["stale_epoch"])
    spec = nets.MLPSpec(d_in, C, hidden, norm="batch")
    b = params["batch_size"]
    _, model = nets.train(spec, _optim(params), ms, data, epochs=params["epochs"], batch_size=b,
                          eval_every=1, callback=saved, device=dev)
    base = dict(norm="batch", batch_size=b, split="test")
    fresh = model.bn_stats()
    rows += _rows(dict(base, arm="fresh"), _eval(model, d))
    rows += _rows(dict(base, arm="batch_stats"), batch_stats_eval(model, d["X_test"], d["y_test"], params["eval_batch"]))
    model.set_bn_stats(saved.stats)
    rows += _rows(dict(base, arm="stale"), _eval(model, d))
    model.set_bn_stats([(torch.zeros_like(m), torch.ones_like(v)) for m, v in fresh])
    rows += _rows(dict(base, arm="missing"), _eval(model, d))
    model.recalibrate_bn(d["X_train"])
    rows += _rows(dict(base, arm="recalibrated"), _eval(model, d))
    # How far the saved statistics are from the fresh ones: relative distance per model,
    # averaged over the BN layers.
    def drift(which):
        return np.mean([((f[which] - s[which]).norm(dim=1) / f[which].norm(dim=1)).cpu().numpy()
                        for f, s in zip(fresh, saved.stats)], axis=0)
    rows += _rows(dict(base, arm="stale", split=np.nan), {"stale_mean_drift": drift(0), "stale_var_drift": drift(1),
                                                          "stale_epoch": np.full(K, params["stale_epoch"]),
                                                          "epochs": np.full(K, params["epochs"])})
    rows += _rows(dict(base, arm="batch_stats", split=np.nan), {"eval_batch": np.full(K, params["eval_batch"])})

    # LayerNorm trained the same way, and batch-size-1 training with each norm.
    runs = [("layer_norm", "layer", b, params["epochs"]), ("batch1", "layer", 1, params["b1_epochs"]),
            ("batch1", "batch", 1, params["b1_epochs"])]
    for arm, norm, bs, epochs in runs:
        job.progress(f"{arm} ({norm}, batch {bs}, {epochs} epochs)")
        spec = nets.MLPSpec(d_in, C, hidden, norm=norm)
        df, err = try_train(spec, _optim(params), ms, data, epochs=epochs, batch_size=bs,
                            eval_every=epochs, device=dev)
        base = dict(arm=arm, norm=norm, batch_size=bs)
        rows += _rows(dict(base, split=np.nan), {"raised": np.full(K, float(bool(err)))})
        if err:
            print(f"bn_stats: {norm} norm, batch size {bs}: training raised {err}")
            continue
        rows += [dict(r, **base) for r in _final(df).to_dict("records")]
    rows += _rows(dict(arm="batch1", norm="batch", batch_size=1, split=np.nan),
                  {"single_row_bn_spread": np.full(K, single_row_bn_spread())})
    return pd.DataFrame(rows)[["seed", "arm", "norm", "batch_size", "split", "metric", "value"]]


def single_row_bn_spread(width: int = 8, rows: int = 16, seed: int = 0) -> float:
    """What batch norm would compute for a batch of one, had torch not refused it:
    every row normalized with its own mean (itself) and variance (0). Returns the
    largest spread between the outputs of different single rows; 0 means the output
    carries nothing of the input. Uses torch.batch_norm (the kernel), which skips
    F.batch_norm's 'more than 1 value per channel' check."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, width, generator=g, dtype=torch.float64)
    w, bias = torch.rand(width, generator=g, dtype=torch.float64) + 0.5, torch.randn(width, generator=g, dtype=torch.float64)
    outs = torch.cat([torch.batch_norm(x[i:i + 1], w, bias, None, None, True, 0.1, 1e-5, False) for i in range(rows)])
    return float((outs - outs[0]).abs().max())


RUNNERS = {f.__name__: f for f in (bn_dropout, bn_batchsize, bn_stats)}
