"""Batch normalization with the batched MLP engine: dropout placed before BN and
its fixes (N5), BN's regularization against batch size with updates held fixed
(N6), and running statistics at inference, stale or missing, vs LayerNorm (N7)."""


def problems(cfg: dict) -> list[str]:
    out = []
    stats = cfg["experiments"].get("bn_stats")
    if stats and stats["stale_epoch"] > stats["epochs"]:
        out.append(f"experiments.bn_stats.stale_epoch: {stats['stale_epoch']} exceeds epochs = {stats['epochs']}")
    return out
