"""The fine-tuning recipe of the document's Problem 3 (N17) as an ablation: a small
CNN pretrained on digits 0-4 and fine-tuned on few images of digits 5-9, with
warmup, AdamW, label smoothing, early stopping, clipping and layer-wise lr decay
switched on and off."""

# Digits 5-9 in sklearn's digits (the fine-tuning pool), split into one disjoint test fold
# per seed; a fold keeps at least MIN_TEST images. A constant: counting them imports torch.
N_FINETUNE = 896
MIN_TEST = 40


def problems(cfg: dict) -> list[str]:
    """The fine-tuning splits must fit in the digits 5-9, before any job."""
    ft = cfg["experiments"].get("finetune")
    if not ft:
        return []
    fold = N_FINETUNE // ft["seeds"]
    largest = max(ft["sweep"]["n_train"])
    out = []
    if fold < MIN_TEST:
        out.append(f"experiments.finetune.seeds: {ft['seeds']} seeds leave test folds of {fold} of the {N_FINETUNE} "
                   f"digits 5-9; allowed: seeds <= {N_FINETUNE // MIN_TEST} (folds of at least {MIN_TEST})")
    if ft["n_val"] + largest > N_FINETUNE - fold:
        out.append(f"experiments.finetune.sweep.n_train: the largest, {largest}, plus n_val = {ft['n_val']} exceeds the "
                   f"{N_FINETUNE - fold} digits 5-9 outside a test fold; allowed: n_val + largest n_train <= "
                   f"{N_FINETUNE - fold}")
    return out
