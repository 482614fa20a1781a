"""Calibration metrics for classifiers (claim N13: label smoothing curbs over-confidence).

Every function takes predicted class probabilities ``probs`` of shape [n, C]
(rows sum to 1) and integer labels ``labels`` of shape [n]. numpy arrays,
lists and torch tensors are accepted (tensors are detached and moved to CPU).

Confidence of a prediction = its largest class probability; the prediction is
the arg-max class (ties go to the lowest class index, as numpy's argmax does).

Binning (``ece``, ``reliability``): ``n_bins`` equal-width bins on [0, 1],
bin b = (b/n_bins, (b+1)/n_bins], i.e. right-closed, as in Guo et al. (2017)
"On calibration of modern neural networks". Confidence exactly 1.0 therefore
falls in the last bin; a confidence exactly on an inner edge e.g. 0.8 with 10
bins falls in the bin that ends at 0.8. Confidence 0 (impossible for a
probability vector with C >= 1 that sums to 1) would go in the first bin.
"""
import numpy as np
import pandas as pd

__all__ = ["accuracy", "ece", "reliability", "nll", "confident_wrong", "confidence", "summary"]

DEFAULT_BINS = 15
CONFIDENT_THRESHOLD = 0.9


def _as_numpy(a, dtype=None) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=dtype)


def _check(probs, labels):
    p = _as_numpy(probs, np.float64)
    y = _as_numpy(labels)
    if p.ndim != 2:
        raise ValueError(f"probs must be [n, C], got shape {p.shape}")
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must be [n] with n = {p.shape[0]}, got shape {y.shape}")
    if p.shape[0] == 0:
        raise ValueError("empty input")
    if not np.issubdtype(y.dtype, np.integer):
        if np.any(y != np.round(y)):
            raise ValueError("labels must be integers")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError("labels out of range for probs' class dimension")
    return p, y


def confidence(probs) -> np.ndarray:
    """Largest class probability per row."""
    return _as_numpy(probs, np.float64).max(axis=1)


def accuracy(probs, labels) -> float:
    """Share of rows whose arg-max class equals the label."""
    p, y = _check(probs, labels)
    return float(np.mean(p.argmax(axis=1) == y))


def _bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    # right-closed bins (lo, hi]: index = ceil(conf * n_bins) - 1, clipped to [0, n_bins-1].
    # Computed against the edges themselves (searchsorted) rather than by
    # multiplication so that conf == edge lands in the lower bin exactly.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges, conf, side="left") - 1
    return np.clip(idx, 0, n_bins - 1)


def reliability(probs, labels, n_bins: int = DEFAULT_BINS) -> pd.DataFrame:
    """Reliability table: one row per equal-width confidence bin (empty bins included).

    Columns: bin_lo, bin_hi, count, confidence (mean confidence in the bin,
    NaN if empty), accuracy (share correct in the bin, NaN if empty).
    """
    p, y = _check(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    idx = _bin_index(conf, n_bins)
    count = np.bincount(idx, minlength=n_bins)
    sum_conf = np.bincount(idx, weights=conf, minlength=n_bins)
    sum_acc = np.bincount(idx, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(count > 0, sum_conf / np.maximum(count, 1), np.nan)
        mean_acc = np.where(count > 0, sum_acc / np.maximum(count, 1), np.nan)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return pd.DataFrame({
        "bin_lo": edges[:-1],
        "bin_hi": edges[1:],
        "count": count.astype(np.int64),
        "confidence": mean_conf,
        "accuracy": mean_acc,
    })


def ece(probs, labels, n_bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error: sum_b (n_b / n) * |acc_b - conf_b| over equal-width bins."""
    table = reliability(probs, labels, n_bins)
    n = table["count"].sum()
    used = table[table["count"] > 0]
    return float(np.sum(used["count"] / n * np.abs(used["accuracy"] - used["confidence"])))


def nll(probs, labels, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class; probabilities are clipped below at eps."""
    p, y = _check(probs, labels)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], eps, None))))


def confident_wrong(probs, labels, threshold: float = CONFIDENT_THRESHOLD) -> float:
    """Among predictions with confidence >= threshold, the share that are wrong.

    The threshold defaults to 0.9 ("the model says 90% or more"): a calibrated
    model is wrong at most ~10% of the time there, so values well above 0.1
    signal over-confidence. Returns NaN if no prediction reaches the threshold
    (the share is undefined; a heavily smoothed model may never get there).
    Use ``confident_wrong_rate`` for the share of *all* predictions that are
    confident and wrong.
    """
    p, y = _check(probs, labels)
    conf = p.max(axis=1)
    sel = conf >= threshold
    if not sel.any():
        return float("nan")
    return float(np.mean(p[sel].argmax(axis=1) != y[sel]))


def confident_wrong_rate(probs, labels, threshold: float = CONFIDENT_THRESHOLD) -> float:
    """Share of all predictions that have confidence >= threshold and are wrong."""
    p, y = _check(probs, labels)
    conf = p.max(axis=1)
    return float(np.mean((conf >= threshold) & (p.argmax(axis=1) != y)))


def summary(probs, labels, n_bins: int = DEFAULT_BINS, threshold: float = CONFIDENT_THRESHOLD) -> dict:
    """All metrics in one dict: accuracy, ece, nll, confident_wrong, confident_wrong_rate, mean_confidence."""
    p, y = _check(probs, labels)
    return {
        "accuracy": accuracy(p, y),
        "ece": ece(p, y, n_bins),
        "nll": nll(p, y),
        "confident_wrong": confident_wrong(p, y, threshold),
        "confident_wrong_rate": confident_wrong_rate(p, y, threshold),
        "mean_confidence": float(p.max(axis=1).mean()),
    }
