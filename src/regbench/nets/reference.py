"""Ordinary torch.nn versions of one model: the oracle the batched engine must match."""
import math

import torch
from torch import nn

from regbench.nets.spec import MLPSpec
from regbench.nets.streams import generator


class GhostBatchNorm1d(nn.BatchNorm1d):
    """Batch norm over consecutive chunks of `ghost_batch` rows in training.

    Each chunk is normalized with its own statistics and updates the running
    statistics in turn; evaluation uses the running statistics as usual.
    """

    def __init__(self, num_features, ghost_batch=32, **kw):
        super().__init__(num_features, **kw)
        self.ghost_batch = ghost_batch

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        return torch.cat([super(GhostBatchNorm1d, self).forward(c) for c in x.split(self.ghost_batch)])


ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def init_linear_(weight: torch.Tensor, bias: torch.Tensor | None, gen: torch.Generator) -> None:
    """nn.Linear's default init, drawn from `gen`; weight is [out, in]."""
    # Same calls as nn.Linear.reset_parameters, so the stream matches it bit for bit.
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=gen)
    if bias is not None:
        bound = 1 / math.sqrt(weight.shape[1]) if weight.shape[1] > 0 else 0
        nn.init.uniform_(bias, -bound, bound, generator=gen)


def _norm(spec: MLPSpec, width: int) -> list:
    if spec.norm == "batch":
        return [nn.BatchNorm1d(width, eps=spec.eps, momentum=spec.bn_momentum)]
    if spec.norm == "ghost":
        return [GhostBatchNorm1d(width, ghost_batch=spec.ghost_batch, eps=spec.eps, momentum=spec.bn_momentum)]
    if spec.norm == "layer":
        return [nn.LayerNorm(width, eps=spec.eps)]
    return []


def reference_mlp(spec: MLPSpec, seed: int | None = None) -> nn.Sequential:
    """Model `seed` as a plain nn.Sequential (spec must hold scalar rates).

    Layout: Dropout(p_input), then per hidden block the modules of
    spec.order, then the output Linear. Dropout modules are present even
    with p = 0, so every model of a batch has the same module indices.
    With seed=None the layers keep torch's own (global-RNG) init.
    """
    if not isinstance(spec.p_input, float) or not isinstance(spec.p_hidden, float):
        raise ValueError("reference_mlp: use spec.for_model(k, K) for per-model rates")
    layers = [nn.Dropout(spec.p_input)]
    for fan_in, width in spec.sizes[:-1]:
        lin = nn.Linear(fan_in, width, bias=spec.hidden_bias)
        act = ACTIVATION_MODULES[spec.activation]()
        drop = nn.Dropout(spec.p_hidden)
        if spec.order == "norm_dropout":
            layers += [lin, *_norm(spec, width), act, drop]
        else:
            layers += [lin, act, drop, *_norm(spec, width)]
    layers.append(nn.Linear(*spec.sizes[-1]))
    net = nn.Sequential(*layers)
    if seed is not None:
        gen = generator(seed, "init")
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Linear):
                    init_linear_(m.weight, m.bias, gen)
    return net
