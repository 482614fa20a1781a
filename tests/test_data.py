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


TEACHER = dict(p=6, covariance=dict(family="toeplitz", rho=0.5), hidden=16, task="classification", classes=3,
               label_noise=0.2, noise_sd=0.3, n_val=300, n_test=400, ood_scale=3.0)


def test_teacher_data_is_nested_balanced_and_noisy_where_configured():
    from regbench import teacher
    big, small = teacher.sample(TEACHER, "t", 200, 0, 1), teacher.sample(TEACHER, "t", 50, 0, 1)
    assert np.array_equal(big["X_train"][:50], small["X_train"]) and np.array_equal(big["y_train"][:50], small["y_train"])
    assert np.array_equal(big["X_test"], small["X_test"])  # test set does not depend on n_train
    clean = teacher.teacher_output(TEACHER, "t", 1, 0, big["X_val"].astype(float)).argmax(axis=1)
    flipped = (clean != big["y_val"]).mean()
    assert 0.2 * 2 / 3 - 0.06 < flipped < 0.2 * 2 / 3 + 0.06  # a flip to a random class keeps 1/3 of labels
    assert np.array_equal(teacher.teacher_output(TEACHER, "t", 1, 0, big["X_test"].astype(float)).argmax(axis=1), big["y_test"])
    assert np.bincount(big["y_test"], minlength=3).min() > 400 / 3 * 0.4
    assert np.abs(big["X_ood"]).std() > 2.5 * np.abs(big["X_test"]).std()
    other = teacher.sample(TEACHER, "t", 50, 1, 1)
    assert not np.array_equal(other["X_train"], small["X_train"])


def test_each_seed_is_its_own_task():
    """Seeds draw their own teacher, so intervals over seeds cover task-to-task variation:
    on the same inputs, two seeds' teachers label a large share of points differently,
    while a seed's teacher is the same whatever the training size."""
    from regbench import teacher
    X = teacher.sample(TEACHER, "t", 10, 0, 1)["X_test"].astype(float)
    a, b = (teacher.teacher_output(TEACHER, "t", 1, s, X).argmax(axis=1) for s in (0, 1))
    assert (a != b).mean() > 0.3  # 3 classes: unrelated teachers disagree on ~2/3 of points
    assert np.array_equal(teacher.sample(TEACHER, "t", 10, 3, 1)["y_test"], teacher.sample(TEACHER, "t", 80, 3, 1)["y_test"])


@pytest.mark.parametrize("placement", ["sources", "spread", "factor"])
def test_placements_keep_each_groups_signal_and_fill_the_group(placement):
    design = dict(TWINS, coef=dict(first_k=3, value=1.0, placement=placement))
    pop = data.truth(design)
    groups = data.twin_groups(design["covariance"], 12)
    assert list(groups) == [0, 1, 2, 0, 0, 1, 1, 2, 2, -1, -1, -1]
    nonzero = np.flatnonzero(pop["beta"])
    assert list(nonzero) == ([0, 1, 2] if placement == "sources" else list(range(9)))
    if placement == "spread":  # the same signal per group as the sources-only design
        assert pop["beta"] @ pop["Sigma"] @ pop["beta"] == pytest.approx(3.0)
    if placement == "factor":  # every pair of a group correlates r; y's variance beyond X joins the noise
        g = np.flatnonzero(groups == 0)
        assert np.allclose(pop["Sigma"][np.ix_(g, g)][~np.eye(3, dtype=bool)], 0.8)
        explained = pop["beta"] @ pop["Sigma"] @ pop["beta"]
        assert explained + pop["sigma"] ** 2 == pytest.approx(3.0 + 0.5**2)  # total variance of y: 3 factors + noise
    d = data.generate(design, placement, 1, root=3)
    resid = d["y_train"][0] - d["X_train"][0] @ d["beta"]
    assert resid.std() == pytest.approx(pop["sigma"], rel=0.05)


@pytest.mark.parametrize("design,key", [
    (dict(TWINS, coef=dict(first_k=3, value=1.0, placement="spread"), covariance=dict(family="toeplitz", rho=0.5)), "coef.placement"),
    (dict(TWINS, coef=dict(first_k=5, value=1.0, placement="factor")), "coef.first_k"),
    (dict(TWINS, coef=dict(first_k=3, value=1.0, placement="factor"), covariance=dict(TWINS["covariance"], r=-0.3)), "covariance.r"),
    (dict(TWINS, coef=dict(first_k=3, value=1.0, placement="middle")), "coef.placement")])
def test_placement_problems_name_the_key_and_the_allowed_values(design, key):
    from regbench import config
    msgs = config.design_problems(design)
    assert msgs and msgs[0].startswith(key) and "allowed" in msgs[0]
    with pytest.raises(ValueError, match=key.split(".")[-1]):
        data.truth(design)
