"""Batch normalization with the batched MLP engine: dropout placed before BN and
its fixes (N5), BN's regularization against batch size with updates held fixed
(N6), and running statistics at inference, stale or missing, vs LayerNorm (N7)."""


def problems(cfg: dict) -> list[str]:
    out = []
    stats = cfg["experiments"].get("bn_stats")
    if stats and stats["stale_epoch"] > stats["epochs"]:
        out.append(f"experiments.bn_stats.stale_epoch: {stats['stale_epoch']} exceeds epochs = {stats['epochs']}")
    sizes = cfg["experiments"].get("bn_batchsize")
    if sizes:  # whole epochs with the short batch dropped: a batch above n_train makes no update
        big = [b for b in sizes["sweep"]["batch_size"] if b > sizes["n_train"]]
        if big:
            out.append(f"experiments.bn_batchsize.sweep.batch_size: {big} exceed n_train = {sizes['n_train']}; "
                       "allowed: at most n_train")
    return out
