"""Batched multi-seed MLP training: K models of one architecture as one set of tensors.

    spec = MLPSpec(d_in=100, d_out=10, hidden=(128, 128), norm="batch", p_hidden=0.3)
    df, model = train(spec, OptimSpec("adamw", lr=1e-3, weight_decay=1e-2), seeds=range(32),
                      data={"train": (x, y), "test": (x_test, y_test)}, epochs=20)

df is long: model, epoch, split, metric, value. Model k's init, data order
and dropout masks depend on seeds[k] alone (see streams), so a model trained
in a batch equals the same model trained alone, and equals a plain
nn.Sequential (reference_mlp, BatchedMLP.to_reference) trained by
torch.optim on the same data order with the same masks; tests/test_engine.py
checks both.

Modules: spec (architecture), streams (per-model generators and mask
draws), layers (batched Linear), model (BatchedMLP and its utilities:
predict, mc_predict, norm_input_stats, recalibrate_bn, bn_stats,
to/from_reference), optim (SGD/Adam/AdamW, l2 vs decoupled decay),
train (the loop and evaluation), reference (the torch.nn oracle).
"""
from regbench.nets.model import BatchedMLP
from regbench.nets.optim import BatchedOptimizer, OptimSpec
from regbench.nets.reference import GhostBatchNorm1d, init_linear_, reference_mlp
from regbench.nets.spec import MLPSpec
from regbench.nets.streams import draw_masks, generator, generators
from regbench.nets.train import COLUMNS, Split, evaluate, train

__all__ = [
    "BatchedMLP", "BatchedOptimizer", "COLUMNS", "GhostBatchNorm1d", "MLPSpec", "OptimSpec", "Split",
    "draw_masks", "evaluate", "generator", "generators", "init_linear_", "reference_mlp",
    "train",
]
