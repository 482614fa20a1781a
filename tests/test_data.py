import numpy as np
import pytest

from regbench import data

TWINS = dict(n_train=4000, n_val=10, n_test=10, p=12, covariance=dict(family="twins", sources=3, copies=2, r=0.8),
             coef=dict(first_k=3, value=1.0), noise=dict(sigma=0.5))


def test_twins_layout_matches_the_document():
    # Problem 1: feature 1 has twins 11 and 12 (1-based) when there are 10 sources with 2 copies
    assert [data.twin_index(0, c, 10, 2) for c in (0, 1)] == [10, 11]
    s = data.covariance(TWINS["covariance"], 12)
    assert s[0, 3] == s[0, 4] == 0.8 and s[3, 4] == pytest.approx(0.64) and s[0, 1] == 0
    assert np.all(np.linalg.eigvalsh(s) > 0)


def test_samples_have_the_design_covariance_and_noise():
    d = data.generate(TWINS, "twins", 1, root=3)
    X, y = d["X_train"][0], d["y_train"][0]
    assert np.abs(np.cov(X.T) - d["Sigma"]).max() < 0.1
    resid = y - X @ d["beta"]
    assert resid.std() == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("cov", [
    dict(family="independent"), dict(family="toeplitz", rho=0.5), dict(family="equicorrelated", rho=0.3),
    dict(family="factors", n_groups=2, group_size=3, noise_sd=0.5)])
def test_covariance_families_are_valid(cov):
    s = data.covariance(cov, 8)
    assert np.allclose(s, s.T) and np.linalg.eigvalsh(s).min() > 0
    if cov["family"] == "toeplitz":
        assert s[0, 2] == pytest.approx(0.25)
    if cov["family"] == "factors":
        assert s[0, 1] == 1.0 and s[0, 0] == 1.25 and s[0, 3] == 0


def test_coefficients_and_snr():
    assert list(data.coefficients({"values": [1, 2]}, 4)) == [1, 2, 0, 0]
    design = dict(TWINS, noise={"snr": 4.0})
    pop = data.truth(design)
    assert pop["beta"] @ pop["Sigma"] @ pop["beta"] / pop["sigma"] ** 2 == pytest.approx(4.0)


def test_generation_is_deterministic_and_seed_streams_do_not_shift():
    a = data.generate(TWINS, "x", 2, root=1)
    b = data.generate(TWINS, "x", 3, root=1)
    assert np.array_equal(a["X_train"], b["X_train"][:2])  # adding seeds keeps the earlier ones
    c = data.generate(TWINS, "y", 2, root=1)
    assert not np.array_equal(a["X_train"], c["X_train"])  # another design name, another stream


def test_group_labels_and_blocks():
    labels = data.group_labels(TWINS)
    assert list(labels[:3]) == ["true"] * 3 and list(labels[3:9]) == ["correlated"] * 6 and labels[9] == "noise"
    pop = data.truth(TWINS)
    assert list(data.blocks_from(pop["beta"], pop["Sigma"])[:10]) == [0, 1, 2, 0, 0, 1, 1, 2, 2, -1]
