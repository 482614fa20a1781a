"""The augmentation study (N14): batched transforms equal the library / torchvision v2, the
runner on a tiny config, and verdicts that follow the results when they are perturbed."""
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import matplotlib.pyplot as plt
import torch
import yaml
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from regbench import jobs, config, images
from regbench.ledger import evaluate
from regbench.verdicts import REGISTRY
from regbench.studies.augmentation import claims as rules
from regbench.studies.augmentation import runners as exp
from regbench.studies.finetune import claims as ftrules
from regbench.studies.finetune import figures as ftfigs
from regbench.studies.finetune import runners as ft
from regbench.studies.augmentation import figures as figs

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]

TINY = {"seeds": 2, "sweep": {"dataset": ["digits", "shapes"], "n_train": [20, 40]}, "chunk_size": 2,
        "epochs": 2, "mix_epochs": 3, "min_steps": 8, "batch_size": 8, "n_test": 40, "widths": [2, 3], "n_examples": 1}


def cfg_with(params: dict | None = None) -> dict:
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["experiments"] = {"augmentation": copy.deepcopy(params if params is not None else TINY)}
    return config.validate(raw, config.load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


# ---------------------------------------------------------------- config
def test_schema_defaults_and_errors():
    p = cfg_with({})["experiments"]["augmentation"]
    assert p["arms"]["none"] == {"kind": "none"} and p["arms"]["mixup"]["alpha"] == 0.2
    assert p["affine"]["wide"] == {"shapes": {"degrees": 180.0, "translate": 0.15, "scale": [0.65, 1.2]}}
    assert p["arms"]["affine"] == {"kind": "affine", "ranges": "mild"} and p["arms"]["affine_wide"]["ranges"] == "wide"
    assert config.n_chunks("augmentation", p) == 5
    assert {"dataset": "shapes", "n_train": 800} in config.chunk_points(p, 4)
    for bad in ({"arms": {"affine": {"kind": "affine"}}},            # no 'none' baseline
                {"arms": {"none": {"kind": "none"}, "x": {"kind": "rotate"}}},
                {"sweep": {"dataset": ["mnist"], "n_train": [10]}},
                {"shapes_size": 10}):
        with pytest.raises(config.ConfigError):
            cfg_with(bad)


# ---------------------------------------------------------------- transforms vs the library
@pytest.fixture(scope="module")
def batch():
    X, y = images.shapes(2 * 16, seed=3, size=12, nuisance=images.NARROW)
    return X.reshape(2, 16, 1, 12, 12), y.reshape(2, 16)


def rngs(n=2, key=0):
    return [np.random.default_rng([key, i]) for i in range(n)]


def test_affine_matches_v2_per_image(batch):
    x, y = batch
    aug = exp.BatchedAug("affine", 6, rngs(), degrees=180, translate=0.15, scale=(0.65, 1.2))
    params = aug.affine_params(16, 12, 12)
    out, soft = aug.apply(x, y, params)
    ref = torch.stack([TF.affine(xi, **p, interpolation=v2.InterpolationMode.BILINEAR, fill=0.0)
                       for xi, p in zip(x.reshape(32, 1, 12, 12), params)]).reshape(x.shape)
    assert float((out - ref).abs().max()) < 1e-5
    assert torch.equal(soft.argmax(-1), y) and torch.equal(soft.sum(-1), torch.ones(2, 16))


def test_affine_parameter_distribution_matches_v2():
    n = 4000
    aug = exp.BatchedAug("affine", 6, rngs(1), degrees=30, translate=0.15, scale=(0.8, 1.2))
    ours = pd.DataFrame(aug.affine_params(n, 12, 12))
    t = v2.RandomAffine(degrees=30, translate=(0.15, 0.15), scale=(0.8, 1.2))
    torch.manual_seed(0)
    theirs = pd.DataFrame([t.make_params([torch.zeros(1, 12, 12)]) for _ in range(n)])
    for col in ("angle", "scale"):
        a, b = ours[col].to_numpy(), theirs[col].to_numpy()
        assert abs(a.mean() - b.mean()) < 0.1 * b.std() and abs(a.std() / b.std() - 1) < 0.05
        assert a.min() >= b.min() - 0.1 * b.std() and a.max() <= b.max() + 0.1 * b.std()
    tx = ours.translate.map(lambda v: v[0]).value_counts(normalize=True).sort_index()
    ref = theirs.translate.map(lambda v: v[0]).value_counts(normalize=True).sort_index()
    assert list(tx.index) == list(ref.index) == [-2, -1, 0, 1, 2]
    assert float((tx - ref).abs().max()) < 0.03


def test_flip_matches_v2(batch):
    x, y = batch
    aug = exp.BatchedAug("flip", 6, rngs(), p=0.5)
    coins = [np.random.default_rng(k).random((2, 16)) < 0.5 for k in range(2)]
    out, _ = aug.apply(x, y, coins)
    for s in range(2):
        for i in range(16):
            ref = x[s, i]
            if coins[0][s, i]:
                ref = TF.horizontal_flip(ref)
            if coins[1][s, i]:
                ref = TF.vertical_flip(ref)
            assert torch.equal(out[s, i], ref)
    assert 0 < sum(c.sum() for c in coins) < 64


class _Fixed:
    """Patch a v2 MixUp / CutMix so its make_params returns the given parameters."""

    def __init__(self, cls, params, **kw):
        self.t = cls(num_classes=6, **kw)
        self.t.make_params = lambda flat: params


def test_mixup_and_cutmix_match_v2(batch):
    x, y = batch
    mix = exp.BatchedAug("mixup", 6, rngs(), alpha=0.3)
    params = mix.mix_params(12, 12)
    out, soft = mix.apply(x, y, params)
    for s in range(2):
        rx, ry = _Fixed(v2.MixUp, dict(lam=params[s]["lam"]), alpha=0.3).t(x[s], y[s])
        torch.testing.assert_close(out[s], rx)
        torch.testing.assert_close(soft[s], ry)
    cut = exp.BatchedAug("cutmix", 6, rngs(key=1), alpha=1.0)
    params = cut.mix_params(12, 12)
    out, soft = cut.apply(x, y, params)
    for s in range(2):
        rx, ry = _Fixed(v2.CutMix, dict(box=params[s]["box"], lam_adjusted=params[s]["lam"])).t(x[s], y[s])
        assert torch.equal(out[s], rx)
        torch.testing.assert_close(soft[s], ry)
        x1, y1, x2, y2 = params[s]["box"]
        assert 0 <= x1 <= x2 <= 12 and 0 <= y1 <= y2 <= 12
    torch.testing.assert_close(soft.sum(-1), torch.ones(2, 16))


def test_cutmix_box_distribution_matches_v2():
    """Box and adjusted lam from our numpy draws vs v2.CutMix.make_params: same distribution."""
    n = 3000
    aug = exp.BatchedAug("cutmix", 6, rngs(1), alpha=1.0)
    ours = pd.DataFrame(aug.mix_params(12, 12)[0] for _ in range(n))
    torch.manual_seed(0)
    t = v2.CutMix(alpha=1.0, num_classes=6)
    theirs = pd.DataFrame(t.make_params([torch.zeros(1, 12, 12)]) for _ in range(n))
    assert abs(ours.lam.mean() - theirs.lam_adjusted.mean()) < 0.03
    assert abs(ours.lam.std() - theirs.lam_adjusted.std()) < 0.03


def test_models_draw_independently(batch):
    x, y = batch
    both, _ = exp.BatchedAug("affine", 6, rngs(), degrees=90)(x, y)
    alone, _ = exp.BatchedAug("affine", 6, rngs()[1:], degrees=90)(x[1:], y[1:])
    assert torch.equal(both[1], alone[0])
    assert not torch.equal(both[0], x[0])


# ---------------------------------------------------------------- runner
@pytest.fixture(scope="module")
def tiny_table():
    cfg = cfg_with()
    p = cfg["experiments"]["augmentation"]
    return pd.concat([jobs.run("augmentation", cfg, k) for k in range(config.n_chunks("augmentation", p))],
                     ignore_index=True)


def test_runner_tidy_and_deterministic(tiny_table):
    df = tiny_table
    scores = df[df.metric.isin(["acc", "nll", "ece"])]
    assert set(scores.split) == {"train", "train_aug", "test", "test_iid"}
    assert set(scores.arm) == {"none", "affine", "affine_wide", "flip", "mixup", "mixup_a1", "cutmix"}
    assert "affine_wide" not in set(scores[scores.dataset == "digits"].arm)
    # 2 sizes x 2 seeds; digits 6 arms (no wide affine), shapes 7; 3 metrics on train and the tests (digits 1,
    # shapes 2), accuracy alone on train_aug
    assert len(scores) == 2 * 2 * (6 * (3 * 2 + 1) + 7 * (3 * 3 + 1))
    acc = scores[scores.metric == "acc"].value
    assert acc.between(0, 1).all()
    ex = df[df.split == "example"]
    assert set(ex.n_train) == {20} and ex.feature.notna().all()
    assert len(ex[(ex.metric == "pixel") & (ex.dataset == "shapes")]) == 7 * 1 * 144
    labels = ex[ex.metric == "label"].groupby(["dataset", "arm", "example"]).value.sum()
    np.testing.assert_allclose(labels.to_numpy(), 1.0, atol=1e-6)
    cfg = cfg_with()
    again = jobs.run("augmentation", cfg, 0)
    pd.testing.assert_frame_equal(again, df[df.dataset == "digits"].reset_index(drop=True))


def test_arms_are_paired(tiny_table):
    """An arm's numbers do not depend on which other arms run beside it."""
    cfg = cfg_with({**TINY, "sweep": {"dataset": ["digits"], "n_train": [20]},
                    "arms": {"none": {"kind": "none"}, "cutmix": {"kind": "cutmix", "alpha": 1.0}}})
    small = jobs.run("augmentation", cfg, 0)
    sel = lambda d: d[(d.dataset == "digits") & (d.n_train == 20) & d.arm.isin(["none", "cutmix"])  # noqa: E731
                      & d.metric.isin(["acc", "nll"])].sort_values(["arm", "seed", "split", "metric"]).value.to_numpy()
    np.testing.assert_allclose(sel(small), sel(tiny_table), rtol=1e-6)


def test_rule_and_figures_on_the_tiny_run(tiny_table):
    assert "N14" in REGISTRY
    assert figs.SHAPE_CLASSES == images.SHAPE_CLASSES
    row = evaluate({"augmentation": tiny_table}).set_index("id").loc["N14"]
    assert row.verdict in ("supported", "refuted", "conditional", "equivalent", "inconclusive")
    assert "[A:" in row.note and "[D:" in row.note
    for name, f in figs.FIGURES.items():
        if f.tables != ["augmentation"]:
            continue
        fig = f.draw({"augmentation": tiny_table}, "footer")
        assert fig._suptitle.get_text()
        plt.close(fig)


# ---------------------------------------------------------------- verdicts follow the results
SIZES = (50, 100, 200, 400)


def synthetic(effects: dict, seeds: int = 6, noise: float = 0.002, skip=(), shifted: dict | None = None,
              overlap: float = 0.0, unfit: dict | None = None) -> pd.DataFrame:
    """A results table where arm accuracy = none + effects[arm](dataset, n) + small noise; (dataset, arm) in skip left out.
    Shapes rows on the in-distribution split (test_iid) and the shifted one (test, with `shifted` effects, default the
    same); digits rows carry the resample overlap `overlap`; accuracy on each arm's own training set 0.99, or
    unfit[(dataset, arm, n)]."""
    arms = {"none": ("none", np.nan), "affine": ("affine", np.nan), "affine_wide": ("affine", np.nan), "flip": ("flip", np.nan),
            "mixup": ("mixup", 0.2), "mixup_a1": ("mixup", 1.0), "cutmix": ("cutmix", 1.0)}
    ranges = {"affine": "mild", "affine_wide": "wide"}
    r = np.random.default_rng(0)
    rows = []
    for ds in ("digits", "shapes"):
        for n in SIZES:
            for s in range(seeds):
                base = 0.8 + 0.02 * r.standard_normal()
                for arm, (kind, alpha) in arms.items():
                    if (ds, arm) in skip or (ds, arm) == ("digits", "affine_wide"):
                        continue
                    for split, eff_of in ((("test", effects),) if ds == "digits" else
                                          (("test_iid", effects), ("test", shifted or effects))):
                        eff = eff_of.get(arm, lambda ds, n: 0.0)(ds, n) if arm != "none" else 0.0
                        for metric, v in (("acc", base + eff + noise * r.standard_normal()), ("nll", 0.5 - eff)):
                            rows.append(dict(dataset=ds, n_train=n, arm=arm, kind=kind, ranges=ranges.get(arm, ""),
                                             alpha=alpha, seed=s, split=split, metric=metric, value=v))
                    fit_split = "train_aug" if kind in ("affine", "flip") else "train"
                    rows.append(dict(dataset=ds, n_train=n, arm=arm, kind=kind, ranges=ranges.get(arm, ""), alpha=alpha,
                                     seed=s, split=fit_split, metric="acc", value=(unfit or {}).get((ds, arm, n), 0.99)))
            rows.append(dict(dataset=ds, n_train=n, arm="none", kind="none", alpha=np.nan, seed=0, split="design",
                             metric="resample_overlap", value=overlap if ds == "digits" else 0.0))
    return pd.DataFrame(rows)


def shrinking(big):  # helps, less with more data
    return lambda ds, n: big * 50 / n


GOOD = {"affine": shrinking(0.08), "affine_wide": shrinking(0.08), "flip": lambda ds, n: -0.05 if ds == "digits" else 3 / n,
        "mixup": shrinking(0.1), "mixup_a1": shrinking(0.1), "cutmix": shrinking(0.1)}


def verdict(df):
    return evaluate({"augmentation": df}).set_index("id").loc["N14"]


def test_all_parts_supported_then_each_perturbation_flips():
    p = rules.parts(synthetic(GOOD))
    assert {k: q["verdict"] for k, q in p.items()} == {"A": "supported", "B": "supported", "C": "supported", "D": "supported",
                                                       "E": "supported"}
    assert verdict(synthetic(GOOD)).verdict == "supported"
    # A + B: the label-preserving arms hurt at every size -> A refuted, and a refuted part refutes N14 (C, D hold)
    bad_affine = synthetic({**GOOD, "affine": lambda ds, n: -0.04}, skip={("shapes", "flip")})
    p = rules.parts(bad_affine)
    assert p["A"]["verdict"] == "refuted" and p["B"]["verdict"] != "supported"
    assert verdict(bad_affine).verdict == "refuted"
    # ... while flip, label-preserving on shapes, still helping there makes A conditional
    assert rules.parts(synthetic({**GOOD, "affine": lambda ds, n: -0.04}))["A"]["verdict"] == "conditional"
    # B: a gain that grows with n
    growing = rules.parts(synthetic({**GOOD, "affine": lambda ds, n: 0.02 * np.log2(n / 25)}, skip={("shapes", "flip")}))
    assert growing["A"]["verdict"] == "supported" and growing["B"]["verdict"] == "refuted"
    # C: mixup / cutmix gains below the 'strong' bar
    weak = rules.parts(synthetic({**GOOD, "mixup": lambda ds, n: 0.003, "cutmix": lambda ds, n: 0.003}))
    assert weak["C"]["verdict"] == "refuted"
    # the alpha = 1 arm is not judged: making it bad changes nothing
    assert rules.parts(synthetic({**GOOD, "mixup_a1": lambda ds, n: -0.1}))["C"]["verdict"] == "supported"
    # D: the label-changing control helps -> refuted
    assert rules.parts(synthetic({**GOOD, "flip": lambda ds, n: 0.05}))["D"]["verdict"] == "refuted"
    # every part refuted -> refuted
    all_bad = {"affine": lambda ds, n: -0.002 * np.log2(400 / n) - 0.04, "flip": lambda ds, n: 0.05 if ds == "digits" else -0.05,
               "mixup": lambda ds, n: -0.03, "cutmix": lambda ds, n: -0.03}
    assert verdict(synthetic(all_bad)).verdict == "refuted"


def test_conditional_names_the_boundary():
    # affine helps at n <= 100 and hurts above: conditional, and the note says where
    df = synthetic({**GOOD, "affine": lambda ds, n: 0.03 if n <= 100 else -0.03})
    a = rules.parts(df)["A"]
    assert a["verdict"] == "conditional"
    assert "yes at n=50,100" in a["text"] and "no at n=200,400" in a["text"]
    row = verdict(df)
    assert row.verdict == "conditional" and row.value == pytest.approx(a["summary"]["value"])


def test_noise_makes_it_inconclusive():
    df = synthetic({"affine": lambda ds, n: 0.0, "flip": lambda ds, n: 0.0}, seeds=8, noise=0.05)
    p = rules.parts(df)
    assert p["D"]["verdict"] != "supported"
    assert (p["A"]["cells"].verdict == "inconclusive").mean() >= 0.5


def test_shifted_row_reaches_each_verdict_and_stays_out_of_n14():
    rows = lambda df: evaluate({"augmentation": df}).set_index("id")  # noqa: E731
    good = rows(synthetic(GOOD))
    assert good.loc["N14e"].verdict == "supported" and good.loc["N14"].verdict == "supported"
    hurt = {"affine_wide": lambda ds, n: -0.04, "flip": lambda ds, n: -0.04}
    bad = rows(synthetic(GOOD, shifted={**GOOD, **hurt}))
    assert bad.loc["N14e"].verdict == "refuted" and bad.loc["N14"].verdict == "supported"  # E is beside N14
    tiny = {"affine_wide": lambda ds, n: 0.001, "flip": lambda ds, n: -0.001}
    assert rows(synthetic(GOOD, shifted={**GOOD, **tiny}, noise=0.001)).loc["N14e"].verdict == "equivalent"
    mixed = {"affine_wide": lambda ds, n: 0.03 if n <= 100 else -0.03, "flip": lambda ds, n: 0.03 if n <= 100 else -0.03}
    assert rows(synthetic(GOOD, shifted={**GOOD, **mixed})).loc["N14e"].verdict == "conditional"
    null = {"affine_wide": lambda ds, n: 0.0, "flip": lambda ds, n: 0.0}
    assert rows(synthetic(GOOD, shifted={**GOOD, **null}, noise=0.05)).loc["N14e"].verdict == "inconclusive"
    # each part's equivalent: effects far below a point with tight seeds
    flat = rules.parts(synthetic({k: (lambda ds, n: 0.0005) for k in GOOD}, noise=0.0005))
    assert flat["A"]["verdict"] == "equivalent" and flat["D"]["verdict"] == "equivalent"


def test_digits_intervals_use_the_recorded_overlap():
    """Seeds that re-split digits get the corrected resampled t: the same gains with a recorded
    overlap give a wider digits interval, and a verdict that was clear becomes inconclusive."""
    effects = {**GOOD, "flip": lambda ds, n: -0.02 if ds == "digits" else 3 / n}
    plain = rules.parts(synthetic(effects, noise=0.02))["D"]
    fixed = rules.parts(synthetic(effects, noise=0.02, overlap=0.8))["D"]
    assert plain["verdict"] == "supported" and fixed["verdict"] == "inconclusive"
    w = lambda q: (q["cells"].hi - q["cells"].lo).to_numpy()  # noqa: E731
    np.testing.assert_allclose(w(fixed) / w(plain), np.sqrt((1 / 6 + 0.8) / (1 / 6)), rtol=1e-9)
    # shapes seeds are fresh draws: their cells are untouched
    a0, a1 = rules.parts(synthetic(GOOD))["A"]["cells"], rules.parts(synthetic(GOOD, overlap=0.8))["A"]["cells"]
    sh = lambda c: c[c.dataset == "shapes"].hi.to_numpy()  # noqa: E731
    np.testing.assert_array_equal(sh(a0), sh(a1))


def test_in_distribution_parts_read_the_mild_arm_and_the_shifted_row_the_wide_one():
    # the wide arm losing in distribution (it rotates shapes far beyond their own variation) is reported, not judged
    wide_hurts = synthetic({**GOOD, "affine_wide": lambda ds, n: -0.2}, shifted=GOOD)
    p = rules.parts(wide_hurts)
    assert p["A"]["verdict"] == "supported" and p["B"]["verdict"] == "supported"
    assert "for reference, not judged: the wide affine arm in distribution shapes/affine_wide" in p["A"]["text"]
    assert set(p["A"]["cells"].type) == {"affine_mild", "flip"}
    # ... the mild arm losing in distribution is judged (flip skipped so that it alone decides)
    mild_hurts = synthetic({**GOOD, "affine": lambda ds, n: -0.04}, skip={("shapes", "flip")})
    assert rules.parts(mild_hurts)["A"]["verdict"] == "refuted"
    # the shifted row reads the wide arm: the mild one hurting there changes nothing
    shifted = rules.parts(synthetic(GOOD, shifted={**GOOD, "affine": lambda ds, n: -0.2}))["E"]
    assert shifted["verdict"] == "supported" and set(shifted["cells"].type) == {"affine_wide", "flip"}


def test_notes_and_figure_say_where_an_arm_did_not_fit():
    df = synthetic(GOOD, unfit={("shapes", "affine_wide", 50): 0.67, ("digits", "mixup", 50): 0.9})
    f = rules.fit(df).set_index(["dataset", "arm", "n_train"])
    assert not f.fit[("shapes", "affine_wide", 50)] and not f.fit[("digits", "mixup", 50)]
    assert f.fit.sum() == len(f) - 2
    text = rules.parts(df)["A"]["text"]
    assert "shapes/affine_wide 0.67, 0.99, 0.99, 0.99 (did not fit at n=50)" in text and "digits/none 0.99" in text
    assert "digits/affine 0.99, 0.99, 0.99, 0.99 (fit)" in text
    assert "did not fit" not in rules.parts(synthetic(GOOD))["A"]["text"]
    assert "did not fit" in figs._accuracy_title(df) and "every arm fit" in figs._accuracy_title(synthetic(GOOD))


@pytest.mark.parametrize("batch_size", [8, 32, 64])
def test_training_length_gives_every_arm_the_minimum_steps(batch_size):
    p = {**cfg_with({})["experiments"]["augmentation"], "batch_size": batch_size}
    assert p["min_steps"] == yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["experiments"]["augmentation"]["min_steps"]
    for n in (2, 20, 50, 100, 200, 400, 800, 1200):
        per_pass = -(-n // batch_size)
        for epochs in (p["epochs"], p["mix_epochs"]):
            ep = exp.epochs_at(p, n, epochs)
            assert ep * per_pass >= p["min_steps"] and ep >= epochs
            assert ep == epochs or (ep - 1) * per_pass < p["min_steps"]  # raised no further than needed
    # cheap where the floor does not bind: the default's largest sizes keep their epochs
    assert exp.epochs_at({**p, "batch_size": 32}, 800, 40) == 40


def test_runner_records_steps_and_fit(tiny_table):
    """Every arm trains at least min_steps (8 in TINY) at every size, the same within its group, and the
    runner scores each arm on one draw of its own augmentation of its training set."""
    st = tiny_table[tiny_table.metric == "steps"]
    assert (st.value >= TINY["min_steps"]).all()
    kinds = st.assign(mix=st.kind.isin(["mixup", "cutmix"])).groupby(["dataset", "n_train", "mix"]).value.nunique()
    assert (kinds == 1).all()
    at20 = st[(st.n_train == 20) & ~st.kind.isin(["mixup", "cutmix"])].value
    assert (at20 == 9).all()  # 2 passes of 3 batches = 6 < 8 -> 3 passes
    aug = tiny_table[tiny_table.split == "train_aug"]
    none = aug[aug.arm == "none"].set_index(["dataset", "n_train", "seed"]).value
    clean = tiny_table[(tiny_table.split == "train") & (tiny_table.metric == "acc") & (tiny_table.arm == "none")]
    np.testing.assert_allclose(none.to_numpy(), clean.set_index(["dataset", "n_train", "seed"]).value[none.index].to_numpy())
    assert len(rules.fit(tiny_table)) == 2 * (6 + 7)


def test_mild_ranges_are_the_configs_and_slight():
    """The mild arm's ranges are the config's, stated before any result as slight: rotation within +-15 deg,
    shifts up to 0.1 of the side (one pixel on 8x8 digits and 12x12 shapes), zoom 0.9-1.1; the runner draws within them."""
    p = cfg_with({})["experiments"]["augmentation"]
    stated = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["experiments"]["augmentation"]["affine"]["mild"]
    assert p["affine"]["mild"] == stated
    for ds, side in (("digits", 8), ("shapes", 12)):
        assert stated[ds] == {"degrees": 15.0, "translate": 0.1, "scale": [0.9, 1.1]}
        spec = exp._arm_spec(p["arms"]["affine"], ds, p)
        assert spec == {"degrees": 15.0, "translate": 0.1, "scale": (0.9, 1.1)}
        drawn = pd.DataFrame(exp.BatchedAug("affine", 6, rngs(1), **spec).affine_params(2000, side, side))
        assert drawn.angle.abs().max() <= 15 and drawn.scale.between(0.9, 1.1).all()
        assert drawn.translate.map(lambda v: max(abs(v[0]), abs(v[1]))).max() == 1
    assert exp.arms_for(p, "digits") == ["none", "affine", "flip", "mixup", "mixup_a1", "cutmix"]
    assert "affine_wide" in exp.arms_for(p, "shapes")


# ---------------------------------------------------------------- N17: fine-tuning recipe
FT_TINY = {"seeds": 2, "sweep": {"n_train": [10, 20]}, "epochs": 6, "batch_size": 8, "n_val": 20, "widths": [2, 3],
           "lr": 0.3, "recipe": {"patience": 1}, "pretrain": {"steps": 5, "batch_size": 16}}


def ft_cfg(params=None):
    raw = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    raw["experiments"] = {"finetune": copy.deepcopy(FT_TINY if params is None else params)}
    return config.validate(raw, config.load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def test_finetune_arms_and_schedule():
    arms = ft.finetune_arms()
    assert len(arms) == 2 + 2 * 6 + 2 and len(ft.finetune_arms(clip_controls=[{"lr_factor": 0.5}])) == 17
    assert not any(v for k, v in arms["baseline"].items() if k in ft.COMPONENTS)
    assert all(arms["full"][c] for c in ft.COMPONENTS) and arms["no_clipping"]["clipping"] is False
    assert arms["only_adamw"]["adamw"] and not arms["only_adamw"]["warmup"]
    assert arms["scratch"]["pretrained"] is False and arms["head_only"]["head_only"] is True
    s = ft._linear_schedule(10, torch.tensor([0, 4]))
    np.testing.assert_allclose(s[:, 0].numpy(), (10 - np.arange(10)) / 10, rtol=1e-6)
    np.testing.assert_allclose(s[:4, 1].numpy(), [0.25, 0.5, 0.75, 1.0], rtol=1e-6)
    np.testing.assert_allclose(s[4:, 1].numpy(), (10 - np.arange(4, 10)) / 6, rtol=1e-6)
    assert ft_cfg({})["experiments"]["finetune"]["recipe"]["weight_decay"] == 0.01


@pytest.fixture(scope="module")
def ft_table():
    cfg = ft_cfg()
    p = cfg["experiments"]["finetune"]
    return pd.concat([jobs.run("finetune", cfg, k) for k in range(config.n_chunks("finetune", p))],
                     ignore_index=True)


def test_finetune_runner(ft_table):
    df = ft_table
    acc = df[(df.metric == "acc") & (df.split == "test")]
    assert len(acc) == 2 * 2 * 19 and acc.value.between(0, 1).all()
    ep = df[df.metric == "epochs_used"]
    assert (ep[~ep.early_stopping].value == 6).all()
    assert (ep.value <= 6).all() and (ep[ep.early_stopping].value < 6).any()  # patience 1 stops some
    # early stopping restores the best-validation weights: the final val NLL is the best one seen
    vl = df[(df.metric == "nll") & (df.split == "val")].set_index(["n_train", "arm", "seed"]).value
    best = df[df.metric == "best_val_nll"].set_index(["n_train", "arm", "seed"]).value
    es = df[df.metric == "best_val_nll"].set_index(["n_train", "arm", "seed"]).early_stopping
    np.testing.assert_allclose(vl[es[es].index], best[es[es].index], rtol=1e-4)
    assert (vl[es[~es].index] >= best[es[~es].index] - 1e-6).all()
    # arms of one seed start from the same pretrained convs; scratch does not
    row = evaluate({"finetune": df}).set_index("id").loc["N17"]
    assert row.verdict in ("supported", "refuted", "conditional", "equivalent", "inconclusive") and "[clipping:" in row.note
    fig = ftfigs.FIGURES["finetune_ablation"].draw({"finetune": df}, "footer")
    assert "recipe" in fig._suptitle.get_text()
    plt.close(fig)


def ft_synthetic(effects: dict, seeds: int = 6, ece: dict | None = None, val: dict | None = None) -> pd.DataFrame:
    """Test accuracy = base + effects[arm]; test ECE = 0.05 + ece[arm] (default: label smoothing off costs 0.02 ECE);
    validation NLL = 1 - accuracy + val[arm] (what the clipping controls are chosen on)."""
    ece = {"no_label_smoothing": 0.02, "baseline": 0.02} if ece is None else ece
    r = np.random.default_rng(1)
    rows = []
    for n in (50, 100):
        for s in range(seeds):
            base = 0.9 + 0.02 * r.standard_normal()
            for arm in ft.finetune_arms(clip_controls=[{"lr_factor": 0.5}]):
                v = base + effects.get(arm, 0.0) + 0.001 * r.standard_normal()
                e = 0.05 + ece.get(arm, 0.0) + 0.001 * r.standard_normal()
                for split, metric, val_ in (("test", "acc", v), ("test", "nll", 1 - v), ("test", "ece", e),
                                            ("val", "nll", 1 - v + (val or {}).get(arm, 0.0))):
                    rows.append(dict(n_train=n, arm=arm, seed=s, split=split, metric=metric, value=val_))
            rows += [dict(n_train=n, arm="full", seed=s, split="train", metric=m, value=v)
                     for m, v in (("epochs_used", 30.0), ("clipped_frac", 0.5))]
        rows.append(dict(n_train=n, arm="baseline", seed=0, split="design", metric="resample_overlap", value=0.1))
    return pd.DataFrame(rows)


def n17(df, id="N17"):
    return evaluate({"finetune": df}).set_index("id").loc[id]


EVERY = {"full": 0.05, **{f"no_{c}": 0.03 for c in ftrules.RECIPE}, "no_clipping_lr0.5": 0.03}


def test_n17_verdict_follows_the_ablation():
    assert n17(ft_synthetic(EVERY)).verdict == "supported"
    rows = evaluate({"finetune": ft_synthetic(EVERY)}).set_index("id")
    assert all(rows.loc[f"N17{k}"].verdict == "supported" for k in "abcdefg")
    # one part does nothing inside the recipe -> "each part contributing" fails: its contribution is smaller than
    # the smallest effect of interest (equivalent), and the note says which
    row = n17(ft_synthetic({**EVERY, "no_layer_decay": 0.05}))
    assert row.verdict == "equivalent" and "[layer_decay: equivalent]" in row.note
    # one part hurts inside the recipe -> refuted
    assert n17(ft_synthetic({**EVERY, "no_layer_decay": 0.08})).verdict == "refuted"
    assert n17(ft_synthetic({**EVERY, "no_layer_decay": 0.08}), "N17g").verdict == "refuted"
    # the recipe loses to the baseline and no part helps -> refuted
    worse = {"full": -0.03, **{f"no_{c}": 0.0 for c in ftrules.RECIPE}}
    assert n17(ft_synthetic(worse)).verdict == "refuted" and n17(ft_synthetic(worse), "N17a").verdict == "refuted"
    assert n17(ft_synthetic(EVERY)).value == pytest.approx(0.05, abs=0.005)
    # a part that helps at one size and hurts at the other: conditional
    mixed = ft_synthetic(EVERY)
    sel = (mixed.arm == "no_warmup") & (mixed.metric == "acc") & (mixed.split == "test")
    mixed.loc[sel & (mixed.n_train == 100), "value"] += 0.05  # at n=100 full minus no_warmup = -0.03
    assert n17(mixed, "N17b").verdict == "conditional"
    # noise: inconclusive
    noisy = ft_synthetic(EVERY)
    noisy.loc[noisy.arm == "no_adamw", "value"] += 0.02 + 0.1 * np.random.default_rng(3).standard_normal((noisy.arm == "no_adamw").sum())
    assert n17(noisy, "N17c").verdict == "inconclusive"


def test_n17_label_smoothing_is_judged_on_calibration():
    # smoothing helps accuracy but not ECE: the part reads ECE, so it is not supported
    same_ece = ft_synthetic(EVERY, ece={"baseline": 0.02})
    assert n17(same_ece, "N17d").verdict == "equivalent"
    worse_ece = ft_synthetic(EVERY, ece={"baseline": 0.02, "no_label_smoothing": -0.03})
    assert n17(worse_ece, "N17d").verdict == "refuted"
    assert n17(ft_synthetic(EVERY), "N17d").verdict == "supported"


def test_n17_clipping_is_judged_against_the_lr_control():
    """Clipping's gain over plain no_clipping is a smaller step in disguise when a lower lr without
    clipping does as well: the part compares with the control chosen on validation loss."""
    disguised = {**EVERY, "no_clipping": 0.02, "no_clipping_lr0.5": 0.05}
    # the control has the better validation loss, so it is chosen, and clipping adds nothing beyond it
    assert n17(ft_synthetic(disguised), "N17f").verdict == "equivalent"
    # if validation preferred the plain arm, the comparison would be with it (the choice is on validation, not test)
    prefer_plain = ft_synthetic(disguised, val={"no_clipping_lr0.5": 0.5})
    assert n17(prefer_plain, "N17f").verdict == "supported"
    assert n17(ft_synthetic({**EVERY, "no_clipping_lr0.5": 0.08}), "N17f").verdict == "refuted"
    assert "chosen on validation" in n17(ft_synthetic(disguised), "N17f").note


def test_finetune_title_ranks_parts_as_their_rows_judge_them():
    """The figure title's best part uses each row's reference: clipping against the validation-picked
    control (N17f), not plain removal; label smoothing (judged on ECE, N17d) is not ranked on accuracy."""
    effects = {**EVERY, "no_clipping": -0.10, "no_clipping_lr0.5": 0.04, "no_label_smoothing": -0.05, "no_warmup": -0.01}
    df = ft_synthetic(effects)
    contrib = ftfigs._contributions(df)
    assert "label_smoothing" not in contrib and contrib["clipping"] == pytest.approx(0.01, abs=0.003)
    assert contrib["warmup"] == pytest.approx(0.06, abs=0.003)
    def title(d):  # the suptitle with its wrapping undone
        fig = ftfigs.FIGURES["finetune_ablation"].draw({"finetune": d}, "footer")
        plt.close(fig)
        return " ".join(fig._suptitle.get_text().split())

    assert "most accuracy, as its ledger row judges it: warmup (full minus no_warmup: +6.0 pts" in title(df)
    # with the control no better than plain removal, clipping's contribution is plain removal's
    plain = ft_synthetic({**EVERY, "no_clipping": -0.10, "no_clipping_lr0.5": -0.2})
    assert "clipping (full minus the no-clipping arm picked on validation: +15.0 pts" in title(plain)
