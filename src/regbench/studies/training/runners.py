"""Training-time regularization with the batched engine (claims N8, N12, N13).

Every experiment draws one task per seed, a teacher network and its data
(regbench.teacher: train and validation labels carry the teacher's label
noise, test labels are clean) and trains all of its models as one batch:

- early_stopping (N8): one Adam run per seed to the maximum number of epochs,
  train / val / test loss recorded after every epoch. Every patience rule is
  then read off the recorded curves (`early_stop`): training is deterministic
  given the seed, so the model an early-stopping loop would have returned at
  epoch e is the one the long run held at epoch e. No model is trained twice.
- adamw_vs_l2 (N12): a learning-rate x decay grid for one optimizer per job
  (Adam with L2 in the gradient, AdamW with decoupled decay, SGD with momentum),
  every grid point and seed one model of the batch (per-model lr and decay),
  with a cosine learning-rate schedule (`schedule`) as AdamW is used in practice.
  Models of the same seed share their data, initialization and data order, so
  grid points are compared on common random numbers.
- label_smoothing (N13): each smoothing value and seed one model of the batch.
  The engine's train() takes one label_smoothing for the whole batch; per-model
  values go through its `mix` hook instead, which returns the smoothed soft
  targets (1 - eps) one_hot + eps / C: the same loss as
  F.cross_entropy(label_smoothing=eps) (checked in tests/test_training_study.py).
"""
import itertools

import numpy as np
import pandas as pd
import torch

from regbench import calibration, teacher
from regbench.nets import MLPSpec, OptimSpec, train

NO_STOPPING = np.inf  # the patience of the arm that trains every epoch
SPLITS = ("train", "val", "test")
# optimizer name of the config -> (engine kind, decay convention)
OPTIMIZERS = {"adam_l2": ("adam", "l2"), "adamw": ("adamw", "decoupled"), "sgd": ("sgd", "l2")}


# ---------------------------------------------------------------- helpers
def draw(job) -> list[dict]:
    """One teacher dataset per seed index (train / val / test)."""
    return [job.draw(job.params["n_train"], i) for i in range(job.seeds)]


def stack(ds: list[dict], which: list[int]) -> dict:
    """Per-model data for the engine: model k gets dataset which[k] ([K, n, d] inputs)."""
    st = teacher.stack(ds, which)
    return {s: (st[f"X_{s}"], st[f"y_{s}"]) for s in SPLITS}


def mlp(params: dict, spec: dict) -> MLPSpec:
    return MLPSpec(d_in=spec["p"], d_out=spec["classes"], hidden=tuple(params["hidden"]))


# ---------------------------------------------------------------- N8
def early_stop(val, patience) -> tuple[int, int]:
    """The document's early-stopping loop (Part 7) run on a recorded validation curve.

    val[e - 1] is the validation loss after epoch e (e = 1..E). A new best is a
    strictly smaller loss; after an epoch without one the counter grows, and
    training stops once it reaches `patience`. Patience 0 and 1 therefore both
    stop at the first epoch that does not improve; patience inf never stops.
    A NaN loss counts as no improvement.
    Returns (stop_epoch, best_epoch): the epochs trained, and the epoch whose
    weights a best-weight restore returns (the best so far at the stop).
    """
    best, best_epoch, counter = np.inf, 0, 0
    for e, v in enumerate(np.asarray(val, dtype=float), start=1):
        if v < best:
            best, best_epoch, counter = v, e, 0
        else:
            counter += 1
            if counter >= patience:
                return e, best_epoch
    return len(val), best_epoch


def early_stopping_rows(curves: pd.DataFrame, patiences) -> pd.DataFrame:
    """Per seed and patience, with (weights 'best') and without ('last') restore:
    test loss / accuracy, validation loss, epochs trained and the epoch returned.

    curves: tidy per-epoch table with columns seed, epoch, split, metric, value
    (epoch 0 = before training, ignored by the rule as in the document's loop).
    """
    out = []
    for seed, g in curves[curves.epoch >= 1].groupby("seed"):
        w = g.pivot_table(index="epoch", columns=["split", "metric"], values="value").sort_index()
        val = w[("val", "loss")].to_numpy()
        for p in list(patiences) + [NO_STOPPING]:
            stop, best = early_stop(val, p)
            for weights, e in (("best", best), ("last", stop)):
                row = w.loc[e]
                metrics = dict(test_loss=row[("test", "loss")], test_accuracy=row[("test", "accuracy")],
                               val_loss=row[("val", "loss")], stop_epoch=stop, chosen_epoch=e)
                out.append(pd.DataFrame(dict(seed=seed, patience=float(p), weights=weights,
                                             metric=list(metrics), value=np.array(list(metrics.values()), dtype=float))))
        # the oracle: the best test loss anywhere on the curve (no rule can know it)
        test = w[("test", "loss")]
        out.append(pd.DataFrame(dict(seed=seed, metric=["oracle_test_loss", "oracle_epoch"],
                                     value=[float(test.min()), float(test.idxmin())])))
    return pd.concat(out, ignore_index=True)


def early_stopping(job) -> pd.DataFrame:
    """N8: train to the maximum epochs once per seed, then apply every patience rule post hoc."""
    params, dev, spec = job.params, job.device, job.teacher
    ds = draw(job)
    K = params["seeds"]
    model_seeds = [job.int_seed(i) for i in range(K)]
    job.progress(f"training {K} models for {params['epochs']} epochs")
    df, _ = train(mlp(params, spec), OptimSpec("adam", lr=params["lr"]), model_seeds, stack(ds, list(range(K))),
                  epochs=params["epochs"], batch_size=params["batch_size"], device=dev)
    curves = df.rename(columns={"model": "seed"})
    rules = early_stopping_rows(curves, params["patiences"])
    curves = curves.assign(metric=curves.metric.map({"loss": "curve_loss", "accuracy": "curve_accuracy"}))
    return pd.concat([rules, curves], ignore_index=True)


# ---------------------------------------------------------------- N12
def grid_points(params: dict, optimizer: str) -> list[tuple[int, float, float]]:
    """(seed index, lr, decay) of every model of one optimizer's batch."""
    g = params["grids"][optimizer]
    return list(itertools.product(range(params["seeds"]), g["lrs"], g["decays"]))


def adamw_vs_l2(job) -> pd.DataFrame:
    """N12: final train / val / test loss and accuracy over each optimizer's lr x decay grid."""
    params, dev, spec = job.params, job.device, job.teacher
    ds = draw(job)
    out = []
    for point in job.points:
        name = point["optimizer"]
        job.progress(f"optimizer {name}: {params['epochs']} epochs")
        kind, decay = OPTIMIZERS[name]
        grid = grid_points(params, name)
        if decay == "decoupled":
            bad = sorted({(lr, wd) for _, lr, wd in grid if lr * wd >= 1})
            if bad:
                raise ValueError(f"experiments.adamw_vs_l2.grids.{name}: lr * decay >= 1 zeroes the weights every step: {bad}")
        optim = OptimSpec(kind, lr=[lr for _, lr, _ in grid], weight_decay=[wd for _, _, wd in grid], decay=decay,
                          momentum=params["momentum"] if kind == "sgd" else 0.0)
        # the same seed index -> the same init and data order at every grid point
        model_seeds = [job.int_seed(i) for i, _, _ in grid]
        df, _ = train(mlp(params, spec), optim, model_seeds, stack(ds, [i for i, _, _ in grid]), epochs=params["epochs"],
                      batch_size=params["batch_size"], eval_every=params["epochs"], device=dev, schedule=params["schedule"])
        df = df[df.epoch == params["epochs"]]
        k = df.model.to_numpy()
        out.append(pd.DataFrame(dict(
            seed=[grid[j][0] for j in k], optimizer=name, lr=[grid[j][1] for j in k], decay=[grid[j][2] for j in k],
            schedule=params["schedule"], metric=(df.split + "_" + df.metric).to_numpy(), value=df.value.to_numpy())))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- N13
def smoothing_mix(eps) -> callable:
    """A train(mix=...) hook giving model k the soft targets (1 - eps[k]) y + eps[k] / C."""
    def mix(x, y, gens):
        e = torch.as_tensor(eps, dtype=y.dtype, device=y.device)[:, None, None]
        return x, y * (1 - e) + e / y.shape[-1]
    return mix


def calibration_rows(probs, labels, n_bins: int, confident: float, share: float) -> tuple[dict, pd.DataFrame]:
    """Metrics of one model on one split, and its reliability table.

    top_wrong / top_overconfidence: among the model's own `share` most confident
    predictions, the share that are wrong / mean confidence minus accuracy. A
    threshold relative to each model's confidence distribution, because a fixed
    one is partly mechanical: smoothing eps caps the target at 1 - eps + eps / C."""
    s = calibration.summary(probs, labels, n_bins, confident)
    s["overconfidence"] = s["mean_confidence"] - s["accuracy"]
    conf = probs.max(axis=1)
    top = np.argsort(-conf, kind="stable")[: max(1, int(round(share * conf.size)))]
    s["top_wrong"] = float(np.mean(probs[top].argmax(axis=1) != labels[top]))
    s["top_overconfidence"] = float(conf[top].mean() - np.mean(probs[top].argmax(axis=1) == labels[top]))
    s["top_share"] = top.size / conf.size
    rel = calibration.reliability(probs, labels, n_bins)
    return s, rel


def label_smoothing(job) -> pd.DataFrame:
    """N13: calibration of the same MLP trained with each label-smoothing value."""
    params, dev, spec = job.params, job.device, job.teacher
    ds = draw(job)
    grid = list(itertools.product(range(params["seeds"]), params["smoothings"]))
    data = stack(ds, [i for i, _ in grid])
    model_seeds = [job.int_seed(i) for i, _ in grid]
    job.progress(f"training {len(grid)} models for {params['epochs']} epochs")
    _, model = train(mlp(params, spec), OptimSpec("adam", lr=params["lr"]), model_seeds, data,
                     epochs=params["epochs"], batch_size=params["batch_size"], eval_every=0,
                     mix=smoothing_mix([e for _, e in grid]), device=dev)
    out = []
    for split in ("val", "test"):
        probs = torch.softmax(model.predict(data[split][0]).double(), dim=-1).cpu().numpy()
        for k, (i, eps) in enumerate(grid):
            s, rel = calibration_rows(probs[k], data[split][1][k], params["n_bins"], params["confident"],
                                      params["confident_share"])
            base = dict(seed=i, smoothing=float(eps), split=split)
            out.append(pd.DataFrame(dict(**base, metric=list(s), value=np.array(list(s.values()), dtype=float))))
            for col, metric in (("count", "bin_count"), ("confidence", "bin_confidence"), ("accuracy", "bin_accuracy")):
                out.append(pd.DataFrame(dict(**base, bin=np.arange(len(rel)), bin_lo=rel.bin_lo, bin_hi=rel.bin_hi,
                                             metric=metric, value=rel[col].to_numpy(dtype=float))))
    return pd.concat(out, ignore_index=True)


RUNNERS = {f.__name__: f for f in (early_stopping, adamw_vs_l2, label_smoothing)}
