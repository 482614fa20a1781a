import numpy as np
import pytest
import torch

from regbench import calibration as cal


def two_class(conf, correct):
    """probs [n, 2] with max prob `conf` on class 0; label 0 where correct else 1."""
    conf = np.asarray(conf, float)
    probs = np.stack([conf, 1 - conf], axis=1)
    labels = np.where(np.asarray(correct, bool), 0, 1)
    return probs, labels


def ece_loop(probs, labels, n_bins):
    """Straightforward reference: loop over bins (lo, hi], first bin also takes 0."""
    probs = np.asarray(probs, float)
    conf = probs.max(1)
    pred = probs.argmax(1)
    n = len(labels)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(n) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if not members:
            continue
        acc = sum(pred[i] == labels[i] for i in members) / len(members)
        c = sum(conf[i] for i in members) / len(members)
        total += len(members) / n * abs(acc - c)
    return total


def test_perfectly_calibrated_is_zero():
    probs, labels = two_class([0.8] * 10, [1] * 8 + [0] * 2)
    assert cal.ece(probs, labels) == pytest.approx(0.0, abs=1e-12)
    assert cal.accuracy(probs, labels) == pytest.approx(0.8)


def test_certain_but_half_wrong():
    probs, labels = two_class([1.0] * 10, [1] * 5 + [0] * 5)
    assert cal.ece(probs, labels) == pytest.approx(0.5)
    # all ten have confidence >= 0.9; half are wrong
    assert cal.confident_wrong(probs, labels) == pytest.approx(0.5)
    assert cal.confident_wrong_rate(probs, labels) == pytest.approx(0.5)


def test_two_bins_by_hand():
    # 4 predictions at conf 0.95, 3 right -> |0.75 - 0.95| = 0.20, weight 4/10
    # 6 predictions at conf 0.60, 2 right -> |1/3 - 0.60| = 0.2667, weight 6/10
    probs, labels = two_class([0.95] * 4 + [0.6] * 6, [1, 1, 1, 0] + [1, 1, 0, 0, 0, 0])
    expected = 0.4 * 0.20 + 0.6 * (0.6 - 1 / 3)
    assert cal.ece(probs, labels) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.24)
    # of the 4 confident ones (>= 0.9) one is wrong
    assert cal.confident_wrong(probs, labels) == pytest.approx(0.25)
    assert cal.confident_wrong_rate(probs, labels) == pytest.approx(0.1)
    table = cal.reliability(probs, labels)
    assert list(table.columns) == ["bin_lo", "bin_hi", "count", "confidence", "accuracy"]
    assert len(table) == 15
    used = table[table["count"] > 0]
    assert used["count"].tolist() == [6, 4]
    assert used["accuracy"].tolist() == pytest.approx([1 / 3, 0.75])
    assert used["confidence"].tolist() == pytest.approx([0.6, 0.95])
    assert table["count"].sum() == 10


def test_bin_edges():
    # confidence exactly 1.0 goes in the last bin
    probs, labels = two_class([1.0, 1.0], [1, 1])
    table = cal.reliability(probs, labels, n_bins=15)
    assert table["count"].iloc[-1] == 2 and table["count"].sum() == 2
    # an inner edge belongs to the bin it closes: 0.8 with 10 bins -> bin (0.7, 0.8]
    probs, labels = two_class([0.8, 0.5], [1, 1])
    table = cal.reliability(probs, labels, n_bins=10)
    assert table["count"].iloc[7] == 1 and table["bin_hi"].iloc[7] == pytest.approx(0.8)
    # 0.5 (the least possible two-class confidence) closes bin (0.4, 0.5]
    assert table["count"].iloc[4] == 1
    # 3 classes: 1/3 confidence falls in the bin that contains it
    probs = np.full((1, 3), 1 / 3)
    table = cal.reliability(probs, [0], n_bins=15)
    assert table["count"].iloc[4] == 1  # (4/15, 5/15]


def test_matches_loop_on_random_data():
    rng = np.random.default_rng(0)
    for n_bins in (5, 15, 20):
        logits = rng.normal(size=(500, 4)) * 3
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        # labels drawn from the predicted distribution but tempered: some miscalibration
        labels = np.array([rng.choice(4, p=np.exp(l / 2) / np.exp(l / 2).sum()) for l in logits])
        got = cal.ece(probs, labels, n_bins)
        ref = ece_loop(probs, labels, n_bins)
        assert got == pytest.approx(ref, abs=1e-12)
        assert got > 0.01  # the tempered labels make it visibly miscalibrated


def test_edge_values_match_loop():
    # confidences sitting exactly on edges of 15 bins
    edges = np.linspace(0, 1, 16)[8:]  # >= 0.5 so valid two-class confidences
    probs, labels = two_class(np.repeat(edges, 3), np.tile([1, 0, 1], len(edges)))
    assert cal.ece(probs, labels, 15) == pytest.approx(ece_loop(probs, labels, 15), abs=1e-12)
    table = cal.reliability(probs, labels, 15)
    assert table["count"].sum() == len(labels)


def test_nll_and_torch_input():
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    labels = np.array([0, 0, 0])
    expected = -(np.log(0.5) + np.log(0.9) + np.log(0.2)) / 3
    assert cal.nll(probs, labels) == pytest.approx(expected)
    t = torch.tensor(probs, dtype=torch.float32)
    assert cal.nll(t, torch.tensor(labels)) == pytest.approx(expected, rel=1e-6)
    assert cal.ece(t, torch.tensor(labels)) == pytest.approx(cal.ece(probs, labels), abs=1e-6)


def test_confident_wrong_none_confident_is_nan():
    probs, labels = two_class([0.6, 0.7], [0, 1])
    assert np.isnan(cal.confident_wrong(probs, labels))
    assert cal.confident_wrong_rate(probs, labels) == 0.0


def test_summary_and_errors():
    probs, labels = two_class([0.95] * 4 + [0.6] * 6, [1, 1, 1, 0] + [1, 1, 0, 0, 0, 0])
    s = cal.summary(probs, labels)
    assert s["ece"] == pytest.approx(0.24)
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["mean_confidence"] == pytest.approx(0.74)
    with pytest.raises(ValueError):
        cal.ece(probs, labels[:-1])
    with pytest.raises(ValueError):
        cal.ece(probs, np.full(10, 2))
