"""A small CNN, K independent copies trained at once (grouped convolutions), for the image studies.

One model (``SmallCNN``, the plain ``nn.Module`` reference)::

    conv3x3(C -> w1, padding 1) -> ReLU -> maxpool 2
    conv3x3(w1 -> w2, padding 1) -> ReLU -> maxpool 2
    flatten -> linear(w2 * (H/4) * (W/4) -> n_classes)

``BatchedCNN`` holds K such models as one set of tensors with a leading model
dimension (conv1.weight is [K, w1, C, 3, 3], ...). Its forward takes
x [K, B, C, H, W] (model k sees its own batch x[k]) and runs both
convolutions as one grouped convolution (groups=K) and the head as one
batched matmul, so K models cost little more than one launch-bound model on
a CPU and fill a GPU.

Determinism. Model k's initial weights depend on ``seeds[k]`` alone: a
``torch.Generator`` seeded with it draws, layer by layer (conv1, conv2, fc),
weight then bias, uniform on +-1/sqrt(fan_in) -- the bound of torch's default
init (kaiming_uniform with a = sqrt(5)) for conv and linear layers. So a model
trained in a batch equals the same model trained alone, and ``to_module(k)``
gives a ``SmallCNN`` with identical weights and outputs (the tests check it).

Optimizer. ``BatchedAdamW`` is AdamW (torch.optim.AdamW's update, decoupled
decay) over [K, ...] parameters with a learning rate and a weight decay per
model and per parameter tensor (layer-wise lr decay, warmup schedules and
per-model recipes need that), plus per-model gradient-norm clipping
(``clip_per_model``, torch.nn.utils.clip_grad_norm_ applied to each model on
its own). With weight_decay 0 it is Adam.
"""
from __future__ import annotations

import math

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS = ("conv1", "conv2", "fc")  # input to output (layer-wise lr decay counts from the top)


def _shapes(in_ch: int, size: int, n_classes: int, widths) -> dict:
    w1, w2 = widths
    if size % 4:
        raise ValueError(f"image size must be a multiple of 4 (two 2x2 poolings), got {size}")
    feat = w2 * (size // 4) ** 2
    return {
        "conv1.weight": (w1, in_ch, 3, 3), "conv1.bias": (w1,),
        "conv2.weight": (w2, w1, 3, 3), "conv2.bias": (w2,),
        "fc.weight": (n_classes, feat), "fc.bias": (n_classes,),
    }


def _fan_in(shape) -> int:
    return int(math.prod(shape[1:]))


def init_params(seed: int, in_ch: int, size: int, n_classes: int, widths=(8, 16)) -> dict:
    """One model's initial parameters from its seed (see the module docstring for the draw order)."""
    g = torch.Generator().manual_seed(int(seed))
    shapes = _shapes(in_ch, size, n_classes, widths)
    out = {}
    for layer in LAYERS:
        bound = 1.0 / math.sqrt(_fan_in(shapes[f"{layer}.weight"]))
        for kind in ("weight", "bias"):
            name = f"{layer}.{kind}"
            out[name] = torch.empty(shapes[name]).uniform_(-bound, bound, generator=g)
    return out


class SmallCNN(nn.Module):
    """The reference single model (plain torch.nn), same weights as BatchedCNN's model k."""

    def __init__(self, in_ch: int, size: int, n_classes: int, widths=(8, 16), seed: int | None = None):
        super().__init__()
        w1, w2 = widths
        self.conv1 = nn.Conv2d(in_ch, w1, 3, padding=1)
        self.conv2 = nn.Conv2d(w1, w2, 3, padding=1)
        self.fc = nn.Linear(w2 * (size // 4) ** 2, n_classes)
        if seed is not None:
            with torch.no_grad():
                for name, value in init_params(seed, in_ch, size, n_classes, widths).items():
                    self.get_parameter(name).copy_(value)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.fc(h.flatten(1))


class BatchedCNN(nn.Module):
    """K SmallCNNs as one module; forward(x [K, B, C, H, W]) -> logits [K, B, n_classes]."""

    def __init__(self, seeds, in_ch: int, size: int, n_classes: int, widths=(8, 16), device="cpu"):
        super().__init__()
        self.seeds = [int(s) for s in seeds]
        self.K, self.in_ch, self.size, self.n_classes, self.widths = len(self.seeds), in_ch, size, n_classes, tuple(widths)
        per = [init_params(s, in_ch, size, n_classes, widths) for s in self.seeds]
        self.params = nn.ParameterDict({
            name.replace(".", "_"): nn.Parameter(torch.stack([p[name] for p in per]).to(device))
            for name in per[0]})

    def p(self, name: str) -> torch.Tensor:
        """The stacked parameter 'conv1.weight' etc. ([K, ...])."""
        return self.params[name.replace(".", "_")]

    def named(self) -> dict:
        """name -> stacked parameter, in LAYERS order (weight, bias)."""
        return {f"{layer}.{kind}": self.p(f"{layer}.{kind}") for layer in LAYERS for kind in ("weight", "bias")}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x [K, B, C, H, W] -> flattened conv features [K, B, F]."""
        K, B = x.shape[:2]
        if K != self.K:
            raise ValueError(f"x has {K} models' batches, the network {self.K} models")
        # channels-last: ~15-50% faster grouped conv and pooling on CPU (measured, 1 thread)
        h = x.transpose(0, 1).reshape(B, K * self.in_ch, *x.shape[-2:]).contiguous(memory_format=torch.channels_last)
        for layer in ("conv1", "conv2"):
            w = self.p(f"{layer}.weight")
            h = F.conv2d(h, w.reshape(-1, *w.shape[2:]), self.p(f"{layer}.bias").reshape(-1), padding=1, groups=K)
            h = F.max_pool2d(F.relu(h), 2)
        return h.contiguous().reshape(B, K, -1).transpose(0, 1)

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.p("fc.bias").unsqueeze(1), f, self.p("fc.weight").transpose(1, 2))

    def forward(self, x):
        return self.head(self.features(x))

    def to_module(self, k: int) -> SmallCNN:
        """Model k as a plain SmallCNN (a copy)."""
        m = SmallCNN(self.in_ch, self.size, self.n_classes, self.widths)
        with torch.no_grad():
            for name, value in self.named().items():
                m.get_parameter(name).copy_(value[k])
        return m.to(value.device)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-model mean cross entropy: logits [K, B, C], targets int [K, B] or soft [K, B, C] -> [K]."""
    logp = F.log_softmax(logits, dim=-1)
    if targets.ndim == logits.ndim - 1:
        return -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).mean(-1)
    return -(targets * logp).sum(-1).mean(-1)


def smooth(targets: torch.Tensor, n_classes: int, eps) -> torch.Tensor:
    """Label smoothing: (1 - eps) * targets + eps / C, eps a float or per-model [K] (targets int or soft, [K, B(, C)])."""
    t = F.one_hot(targets, n_classes).float() if targets.ndim == 2 else targets
    eps = torch.as_tensor(eps, dtype=t.dtype, device=t.device)
    eps = eps.reshape(-1, *([1] * (t.ndim - 1))) if eps.ndim else eps
    return (1 - eps) * t + eps / n_classes


@torch.no_grad()
def clip_per_model(params, max_norm) -> torch.Tensor:
    """Scale each model's gradients so its total 2-norm is at most max_norm (float or [K]; inf = off).

    The same rule as torch.nn.utils.clip_grad_norm_ run on each model alone:
    coef = min(1, max_norm / (norm + 1e-6)). Returns the per-model norms before clipping.
    """
    grads = [p.grad for p in params if p.grad is not None]
    K = grads[0].shape[0]
    norm = torch.stack([g.reshape(K, -1).pow(2).sum(1) for g in grads]).sum(0).sqrt()
    max_norm = torch.as_tensor(max_norm, dtype=norm.dtype, device=norm.device)
    coef = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.reshape(-1, *([1] * (g.ndim - 1))))
    return norm


class BatchedAdamW:
    """AdamW on [K, ...] parameters, lr and weight decay per model (and per tensor).

    lr, weight_decay, l2: a float, a [K] tensor, or a list with one such entry
    per parameter tensor (layer-wise settings). ``step(scale)`` multiplies
    every lr by ``scale`` (a float or [K]; schedules such as warmup).
    The update is torch.optim.AdamW's: p <- p * (1 - lr * wd), then
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    ``l2`` is the coupled alternative, torch.optim.Adam(weight_decay=l2):
    g <- g + l2 * p before the moments (so the decay is divided by sqrt(v)).
    """

    def __init__(self, params, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8, l2=0.0):
        self.params = list(params)
        K = self.params[0].shape[0]
        self.b1, self.b2 = betas
        self.eps = eps
        self.t = 0

        def per_model(v, p):
            v = torch.as_tensor(v, dtype=p.dtype, device=p.device)
            v = v.expand(K) if v.ndim == 0 else v
            if v.shape != (K,):
                raise ValueError(f"per-model settings must have shape [{K}], got {tuple(v.shape)}")
            return v.reshape(K, *([1] * (p.ndim - 1))).clone()

        def listed(v):
            if isinstance(v, (list, tuple)):
                if len(v) != len(self.params):
                    raise ValueError(f"{len(v)} settings for {len(self.params)} parameter tensors")
                return list(v)
            return [v] * len(self.params)

        self.lr = [per_model(v, p) for v, p in zip(listed(lr), self.params)]
        self.wd = [per_model(v, p) for v, p in zip(listed(weight_decay), self.params)]
        self.l2 = [per_model(v, p) for v, p in zip(listed(l2), self.params)]
        self.coupled = any(bool((v != 0).any()) for v in self.l2)
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, scale=1.0):
        self.t += 1
        bc1, bc2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        scale = torch.as_tensor(scale, dtype=self.params[0].dtype, device=self.params[0].device)
        for p, m, v, lr, wd, l2 in zip(self.params, self.m, self.v, self.lr, self.wd, self.l2):
            if p.grad is None:
                continue
            g = p.grad + l2 * p if self.coupled else p.grad
            lr_t = lr * (scale.reshape(-1, *([1] * (p.ndim - 1))) if scale.ndim else scale)
            p.mul_(1 - lr_t * wd)
            m.lerp_(g, 1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            denom = (v.sqrt() / math.sqrt(bc2)).add_(self.eps)
            p.sub_(lr_t / bc1 * m / denom)


def batch_indices(n: int, steps: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """[steps, batch] training indices: consecutive slices of a stream of random permutations of range(n).

    Every image is seen once per pass before any is seen twice; a batch may
    straddle two passes. The batch is shuffled, as MixUp/CutMix need.
    """
    need = steps * batch
    perms = [torch.randperm(n, generator=generator) for _ in range(-(-need // n))]
    return torch.cat(perms)[:need].reshape(steps, batch)


@torch.no_grad()
def predict(model: BatchedCNN, X: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Logits [K, n, C] for inputs X [K, n, C_in, H, W] (model k on X[k]), in chunks of rows."""
    return torch.cat([model(X[:, i:i + chunk]) for i in range(0, X.shape[1], chunk)], dim=1)


@torch.no_grad()
def evaluate(model: BatchedCNN, X: torch.Tensor, y: torch.Tensor) -> dict:
    """Per-model accuracy and mean NLL ([K] tensors) and the probabilities [K, n, C]."""
    logits = predict(model, X)
    return {"acc": (logits.argmax(-1) == y).float().mean(-1),
            "nll": soft_cross_entropy(logits, y),
            "probs": logits.softmax(-1)}


def stack_seeds(per_seed: list[dict]) -> dict:
    """Per-seed splits -> split -> (X [S, n, C, H, W], y [S, n])."""
    return {k: (torch.stack([d[k][0] for d in per_seed]), torch.stack([d[k][1] for d in per_seed])) for k in per_seed[0]}


def lr_scale(step: int, steps: int, schedule: str, warmup: int = 0) -> float:
    """Multiplier of the base lr at `step` (0-based): linear warmup, then constant or cosine to 0."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    t = (step - warmup) / max(steps - warmup, 1)
    return 0.5 * (1 + np.cos(np.pi * t))
