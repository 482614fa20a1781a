"""Batched multi-seed MLP training: K models of one architecture as one set of tensors.

    spec = MLPSpec(d_in=100, d_out=10, hidden=(128, 128), norm="batch", p_hidden=0.3)
    df, model = train(spec, OptimSpec("adamw", lr=1e-3, weight_decay=1e-2),
                      seeds=range(32), data={"train": (x, y), "test": (xt, yt)}, epochs=20)

Model k's init, data order and dropout masks depend on seeds[k] alone (see
streams), so a model trained in a batch equals the same model trained alone,
and model k equals a plain torch.nn reference (reference_mlp, to_reference)
trained with torch.optim on the same data order.
"""
from regbench.nets.model import BatchedMLP, resolve_device
from regbench.nets.optim import BatchedOptimizer, OptimSpec
from regbench.nets.reference import GhostBatchNorm1d, init_linear_, reference_mlp
from regbench.nets.spec import MLPSpec
from regbench.nets.streams import draw_masks, generator, generators
from regbench.nets.train import COLUMNS, Split, evaluate, train

__all__ = [
    "BatchedMLP", "BatchedOptimizer", "COLUMNS", "GhostBatchNorm1d", "MLPSpec", "OptimSpec", "Split",
    "draw_masks", "evaluate", "generator", "generators", "init_linear_", "reference_mlp",
    "resolve_device", "train",
]
