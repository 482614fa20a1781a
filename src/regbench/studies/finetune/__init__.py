"""The fine-tuning recipe of the document's Problem 3 (N17) as an ablation: a small
CNN pretrained on digits 0-4 and fine-tuned on few images of digits 5-9, with
warmup, AdamW, label smoothing, early stopping, clipping and layer-wise lr decay
switched on and off."""

# Digits 5-9 in sklearn's digits (the fine-tuning pool); the runner keeps at least 50
# more for testing (finetune_data). A constant: counting them imports torch.
N_FINETUNE = 896
MIN_TEST = 50


def problems(cfg: dict) -> list[str]:
    """The fine-tuning splits must fit in the digits 5-9, before any job."""
    ft = cfg["experiments"].get("finetune")
    if not ft:
        return []
    largest = max(ft["sweep"]["n_train"])
    if ft["n_val"] + largest > N_FINETUNE - MIN_TEST - 1:
        return [f"experiments.finetune.sweep.n_train: the largest, {largest}, plus n_val = {ft['n_val']} leaves fewer than "
                f"{MIN_TEST + 1} of the {N_FINETUNE} digits 5-9 for testing; allowed: n_val + largest n_train <= "
                f"{N_FINETUNE - MIN_TEST - 1}"]
    return []
