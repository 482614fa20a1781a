"""SGD, Adam and AdamW over K stacked models, equal to torch.optim run on each model.

Weight decay, the lambda convention (N10-N12 hinge on it):
  decay="l2":        g <- g + lambda * w before the update; that is the
                     gradient of loss + (lambda / 2) * ||w||^2. This is what
                     torch.optim.SGD(weight_decay=lambda) and
                     torch.optim.Adam(weight_decay=lambda) do. Under Adam the
                     decay term then passes through the 1/sqrt(v) scaling.
  decay="decoupled": w <- w - lr * lambda * w, outside the moment estimates
                     (torch.optim.AdamW(weight_decay=lambda)). For SGD without
                     momentum this is the same update as "l2" (to rounding);
                     with momentum it is "SGDW" (decay not accumulated in the
                     momentum buffer).
So the same lambda in both conventions means the same per-step shrinkage
lr * lambda * w under plain SGD, and a penalty (lambda / 2) * ||w||^2.

The update itself is torch's own fused kernel (the one behind
torch.optim.*(fused=True)): one vectorized pass per tensor instead of ~10
elementwise ops (measured: 0.8 ms vs 11 ms for torch.optim.AdamW's default
per-tensor loop, K=32, one thread). Results equal torch.optim's default
implementation to rounding (tests: 1e-10 in float64).
Per-model lr / weight decay: models are grouped by their (lr, lambda) pair,
one fused call per group on row views; a shared pair is one call in all.
"""
from dataclasses import dataclass

import torch

KINDS = ("sgd", "adam", "adamw")
DECAYS = ("l2", "decoupled")


@dataclass(frozen=True)
class OptimSpec:
    """Optimizer settings; lr and weight_decay may be length-K sequences (per model).

    kind "adamw" is shorthand for Adam with decay="decoupled". decay=None
    picks "decoupled" for adamw and "l2" (torch's weight_decay) otherwise.
    weights_only: decay only the Linear weights (default: every parameter,
    as torch does).
    """

    kind: str = "adamw"
    lr: float | tuple = 1e-3
    weight_decay: float | tuple = 0.0
    decay: str | None = None
    momentum: float = 0.0
    betas: tuple = (0.9, 0.999)
    eps: float = 1e-8
    weights_only: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"OptimSpec.kind: {self.kind!r}; allowed: {', '.join(KINDS)}")
        decay = self.decay or ("decoupled" if self.kind == "adamw" else "l2")
        if decay not in DECAYS:
            raise ValueError(f"OptimSpec.decay: {decay!r}; allowed: {', '.join(DECAYS)}")
        if self.kind == "adamw" and decay == "l2":
            raise ValueError("OptimSpec: kind 'adamw' means decoupled decay; use kind 'adam' with decay 'l2'")
        if self.momentum and self.kind != "sgd":
            raise ValueError("OptimSpec.momentum: only for sgd (Adam uses betas)")
        object.__setattr__(self, "decay", decay)
        for name in ("lr", "weight_decay"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)):
                object.__setattr__(self, name, tuple(float(x) for x in v))

    def per_model(self, name: str, k: int) -> list:
        v = getattr(self, name)
        if isinstance(v, (int, float)):
            return [float(v)] * k
        if len(v) != k:
            raise ValueError(f"OptimSpec.{name}: {len(v)} per-model values for {k} models")
        return list(v)


class BatchedOptimizer:
    """Steps a list of [K, ...] parameters given their gradients."""

    def __init__(self, params, spec: OptimSpec, n_models: int, decay_mask=None):
        self.spec = spec
        self.params = [p.detach() for p in params]
        if not all(p.is_contiguous() for p in self.params):
            raise ValueError("BatchedOptimizer: parameters must be contiguous")
        self.K = n_models
        self.adam = spec.kind in ("adam", "adamw")
        self.decoupled = spec.decay == "decoupled"
        # decay_mask[i]: does parameter i get weight decay (weights_only uses it).
        mask = decay_mask if (spec.weights_only and decay_mask is not None) else [True] * len(self.params)
        self.subsets = [[i for i, m in enumerate(mask) if m], [i for i, m in enumerate(mask) if not m]]
        zeros = lambda: [torch.zeros_like(p) for p in self.params]  # noqa: E731
        self.state = {"m": zeros(), "v": zeros()} if self.adam else ({"buf": zeros()} if spec.momentum else {})
        # Fused kernels read the step count from tensors; one shared counter.
        self.step_t = torch.zeros((), dtype=torch.float32, device=self.params[0].device)
        self.n_steps = 0
        lrs, wds = spec.per_model("lr", n_models), spec.per_model("weight_decay", n_models)
        groups = {}
        for k, key in enumerate(zip(lrs, wds)):
            groups.setdefault(key, []).append(k)
        # One group: whole tensors; else row views, made once (they stay valid: updates are in place).
        self.groups = [(lr, wd, None if len(groups) == 1 else idx) for (lr, wd), idx in groups.items()]
        self.rows = None if len(groups) == 1 else {
            name: [t.unbind(0) for t in ts] for name, ts in {"p": self.params, **self.state}.items()}

    @torch.no_grad()
    def step(self, grads, scale: float = 1.0) -> None:
        """One update of every parameter from its gradient (same order as params); every
        learning rate times `scale` (a schedule's multiplier at this step)."""
        spec = self.spec
        self.step_t += 1
        self.n_steps += 1
        # The fused kernels pair elements by memory offset: every tensor must be contiguous.
        grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
        whole = {"p": self.params, "g": grads, **self.state}
        rows = None
        for lr, wd, idx in self.groups:
            lr = lr * scale
            if idx is not None and rows is None:
                rows = {**self.rows, "g": [g.unbind(0) for g in grads]}
            for subset, lam in zip(self.subsets, (wd, 0.0)):
                if not subset:
                    continue
                if idx is None:
                    take = lambda name: [whole[name][i] for i in subset]  # noqa: E731
                else:
                    take = lambda name: [rows[name][i][k] for i in subset for k in idx]  # noqa: E731
                P, G = take("p"), take("g")
                if self.adam:
                    fused = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
                    fused(P, G, take("m"), take("v"), [], [self.step_t] * len(P),
                          lr=lr, beta1=spec.betas[0], beta2=spec.betas[1], weight_decay=lam,
                          eps=spec.eps, amsgrad=False, maximize=False)
                else:
                    if self.decoupled and lam:
                        torch._foreach_mul_(P, 1.0 - lr * lam)
                    torch._fused_sgd_(P, G, take("buf") if spec.momentum else [],
                                      weight_decay=0.0 if self.decoupled else lam,
                                      momentum=spec.momentum, lr=lr, dampening=0.0, nesterov=False,
                                      maximize=False, is_first_step=self.n_steps == 1)
