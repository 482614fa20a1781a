"""Data augmentation on small images with a batched CNN (N14): label-preserving
transforms (affine, flips where the classes allow), mixup and CutMix, and a
label-changing flip as a negative control, on sklearn's digits and procedural
shapes, across training-set sizes."""

# sklearn's digits hold 1797 images (regbench.images.N_DIGITS; images imports torch,
# which planning a run must not)
N_DIGITS = 1797


def problems(cfg: dict) -> list[str]:
    """Digits splits must fit in the 1797 images, before any job."""
    aug = cfg["experiments"].get("augmentation")
    if not aug or "digits" not in aug["sweep"]["dataset"]:
        return []
    largest = max(aug["sweep"]["n_train"])
    n_test = min(aug["n_test"], N_DIGITS // aug["seeds"])  # a seed's test set is one of disjoint folds
    if largest + n_test > N_DIGITS:
        return [f"experiments.augmentation.sweep.n_train: the largest, {largest}, plus the digits test fold, {n_test}, "
                f"exceeds the {N_DIGITS} digits images; allowed: n_train + min(n_test, {N_DIGITS} // seeds) <= "
                f"{N_DIGITS} (or drop digits from sweep.dataset)"]
    return []
