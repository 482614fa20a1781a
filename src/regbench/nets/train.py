"""The training loop: K models, one set of tensors, a tidy table of metrics.

Per step every model takes its own mini-batch (its own shuffle of its own or
the shared data) and its own dropout masks; the randomness of a whole epoch
is drawn first, model by model from that model's generators, so the steps
themselves are fully batched (no Python loop over models).
"""
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from regbench.cnn import lr_scale
from regbench.nets import streams
from regbench.device import resolve_device
from regbench.nets.model import BatchedMLP
from regbench.nets.optim import BatchedOptimizer, OptimSpec
from regbench.nets.spec import MLPSpec

TASKS = ("regression", "classification")
COLUMNS = ["model", "epoch", "split", "metric", "value"]


class Split:
    """One split's data, stored sample-major ([n, ...] or [n, K, ...]).

    x: [n, d] shared by all models or [K, n, d] one dataset per model.
    y: classification: class indices [n] or [K, n]; regression: [n], [n, d_out],
    [K, n] or [K, n, d_out] (a leading K only when x has one).
    """

    def __init__(self, x, y, K, task, device, dtype):
        x = torch.as_tensor(x, dtype=dtype, device=device)
        self.per_model = x.dim() == 3
        if self.per_model and x.shape[0] != K:
            raise ValueError(f"data: per-model x has {x.shape[0]} models, expected {K}")
        y = torch.as_tensor(y, device=device)
        if task == "classification":
            y = y.long()
        else:
            y = y.to(dtype)
            if y.dim() == (2 if self.per_model else 1):
                y = y.unsqueeze(-1)
        # Sample-major, so that a mini-batch is a gather of rows: [b, K, ...].
        self.x = x.transpose(0, 1).contiguous() if self.per_model else x
        self.y = y.transpose(0, 1).contiguous() if self.per_model else y
        self.n = self.x.shape[0]
        if self.y.shape[0] != self.n:
            raise ValueError(f"data: {self.n} rows of x but {self.y.shape[0]} of y")
        self._models = torch.arange(K, device=device)

    def batch(self, idx):
        """Inputs [b, K, d] and targets [b, K(, d_out)] for row indices idx [b, K]."""
        if self.per_model:
            return self.x[idx, self._models], self.y[idx, self._models]
        return self.x[idx], self.y[idx]


def _loss(out, y, task, label_smoothing=0.0):
    """Sum over models of each model's mean loss: model k's gradient is its own."""
    b = out.shape[0]
    if task == "classification":
        c = out.shape[2]
        target = y.reshape(-1, c) if y.dim() == 3 else y.reshape(-1)  # soft targets or indices
        return F.cross_entropy(out.reshape(-1, c), target, reduction="sum", label_smoothing=label_smoothing) / b
    return F.mse_loss(out, y, reduction="sum") / (b * out.shape[2])


@torch.no_grad()
def evaluate(model: BatchedMLP, split: Split, task: str, batch_size: int = 4096) -> dict:
    """Eval-mode metrics per model: {"loss": [K], "accuracy": [K] (classification)}.

    loss is the plain mean cross-entropy (no label smoothing) or the mean
    squared error over rows and outputs.
    """
    K = model.K
    loss = torch.zeros(K, dtype=torch.float64, device=model.device)
    correct = torch.zeros(K, dtype=torch.float64, device=model.device)
    for s in range(0, split.n, batch_size):
        out = model.run(split.x[s:s + batch_size])  # [b, K, d_out]
        y = split.y[s:s + batch_size]
        b, c = out.shape[0], out.shape[2]
        if task == "classification":
            y = y[:, None].expand(b, K) if y.dim() == 1 else y
            loss += F.cross_entropy(out.reshape(-1, c), y.reshape(-1), reduction="none").view(b, K).sum(0).double()
            correct += (out.argmax(-1) == y).sum(0).double()
        else:
            y = y[:, None, :] if y.dim() == 2 else y
            loss += ((out - y) ** 2).sum((0, 2)).double() / c
    metrics = {"loss": loss / split.n}
    if task == "classification":
        metrics["accuracy"] = correct / split.n
    return metrics


def train(spec: MLPSpec, optim: OptimSpec, seeds, data: dict, *, task: str = "classification",
          epochs: int = 10, batch_size: int = 64, label_smoothing: float = 0.0, mix=None,
          model: BatchedMLP | None = None, device="cpu", dtype=torch.float32,
          eval_batch: int = 4096, eval_every: int = 1, drop_last: bool = False, callback=None,
          schedule: str = "constant"):
    """Train K = len(seeds) models at once; returns (metrics DataFrame, model).

    data: {"train": (x, y), "val": (x, y), "test": (x, y)}; only "train" is
    required; shapes as in Split (x [n, d] shared or [K, n, d] per model).
    task: "classification" (cross-entropy, optional label_smoothing as in
    F.cross_entropy) or "regression" (mean squared error).
    mix: optional hook mix(x, y, gens) -> (x, y_soft) applied to every
    training mini-batch: x [K, b, d_in], y one-hot [K, b, C] float
    (classification) or targets [K, b, d_out] (regression), gens the K
    per-model "mix" generators; returns soft targets of y's shape (MixUp, CutMix).
    model: start from this model (e.g. BatchedMLP.from_reference) instead of
    initializing from seeds; seeds still name the shuffle/dropout/mix streams.
    callback(epoch, model, metrics): called after every evaluation (epoch 0 too).
    drop_last: skip the last mini-batch of an epoch when it is short.
    schedule: "constant" or "cosine" (every lr, and decoupled decay's lr * lambda with
    it as in torch's AdamW under a scheduler, falls to 0 over all steps; cnn.lr_scale).

    Metrics are recorded in eval mode before training (epoch 0), after every
    eval_every-th epoch and after the last (eval_every=0: never; the table
    is then empty): DataFrame columns model (0..K-1, model k has seeds[k]),
    epoch, split, metric ("loss"; "accuracy" for classification), value.
    """
    if task not in TASKS:
        raise ValueError(f"train: task {task!r}; allowed: {', '.join(TASKS)}")
    seeds = [int(s) for s in seeds]
    K = len(seeds)
    dev = resolve_device(device)
    if model is None:
        model = BatchedMLP(spec, seeds, device=dev, dtype=dtype)
    elif model.K != K:
        raise ValueError(f"train: model holds {model.K} models, {K} seeds given")
    dev, dtype = model.device, model.dtype
    splits = {name: Split(*xy, K, task, dev, dtype) for name, xy in data.items()}
    tr = splits["train"]
    params = list(model.parameters())
    opt = BatchedOptimizer(params, optim, K, decay_mask=model.decay_mask())
    shuffle_gens = streams.generators(seeds, "shuffle")
    dropout_gens = streams.generators(seeds, "dropout", dev)
    mix_gens = streams.generators(seeds, "mix", dev) if mix is not None else None

    records = []

    def record(epoch):
        metrics = {name: evaluate(model, split, task, eval_batch) for name, split in splits.items()}
        for name, ms in metrics.items():
            for metric, values in ms.items():
                records.append((epoch, name, metric, values.cpu().numpy()))
        if callback is not None:
            callback(epoch, model, metrics)

    if eval_every:
        record(0)
    n = tr.n
    stops = range(0, n - batch_size + 1 if drop_last else n, batch_size)
    total = epochs * len(stops)
    for epoch in range(1, epochs + 1):
        # The epoch's randomness, model by model from its own streams.
        order = torch.stack([torch.randperm(n, generator=g) for g in shuffle_gens], dim=1).to(dev)  # [n, K]
        masks = model.draw_masks(dropout_gens, n)  # per site [n, K, width] or None
        for s in stops:
            x, y = tr.batch(order[s:s + batch_size])
            if mix is not None:
                y_in = F.one_hot(y, model.spec.d_out).to(dtype) if task == "classification" else y
                xm, ym = mix(x.transpose(0, 1), y_in.transpose(0, 1), mix_gens)
                x, y = xm.transpose(0, 1), ym.transpose(0, 1)
            step_masks = [None if m is None else m[s:s + batch_size] for m in masks]
            out = model.run(x, step_masks, bn_train=True)
            loss = _loss(out, y, task, label_smoothing)
            grads = torch.autograd.grad(loss, params)
            opt.step(grads, lr_scale(opt.n_steps, total, schedule))
        if eval_every and (epoch % eval_every == 0 or epoch == epochs):
            record(epoch)
    return _table(records, K), model


def _table(records, K) -> pd.DataFrame:
    """Long table from (epoch, split, metric, values[K]) records."""
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    return pd.DataFrame({
        "model": np.tile(np.arange(K), len(records)),
        "epoch": np.repeat([r[0] for r in records], K),
        "split": np.repeat([r[1] for r in records], K),
        "metric": np.repeat([r[2] for r in records], K),
        "value": np.concatenate([r[3] for r in records]),
    })
