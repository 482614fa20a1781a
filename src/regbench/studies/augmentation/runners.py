"""The augmentation study (claim N14) on small images, with K small CNNs trained at once.

One job = one grid point (dataset, training-set size) of the ``augmentation``
experiment, with every seed and every augmentation arm of that point trained
together as one BatchedCNN (K = seeds x arms models).

Pairing. For a seed index i, every arm trains on the same training set, from
the same initial weights, on the same sequence of mini-batches; only the
augmentation differs. Differences against the "none" arm are therefore paired
per seed. The same seed index also keeps its init and (nested) data across
training-set sizes, so trends over size are paired too.

Data (regbench.images):
  digits  sklearn's 8x8 digits; nested class-balanced training sets; test = a
          held-out split of the same distribution: seed i's fold of disjoint
          folds (one per seed), so that seeds share no test image; the images
          they still share in training are corrected for in the intervals
          (metric resample_overlap, regbench.images.resample_overlap).
  shapes  procedural 16x16 shapes; training set with NARROW nuisances (small
          shifts, rotations within +-10 deg, scales 0.9-1.1); "test" with WIDE
          nuisances (shifts, any rotation, scales 0.65-1.2): the distribution
          shift an invariance-encoding augmentation should bridge; "test_iid"
          with the training (narrow) nuisances.

Affine arms name a range set (config `affine`): mild (slight transforms, about the
data's own variation: the in-distribution question) or wide (shapes' test nuisances:
the shifted test); an arm runs only on the datasets its set gives ranges for.

Training length: passes = max(epochs, ceil(min_steps / batches per pass)) (mixup and
CutMix from mix_epochs), so that small training sets still give every arm min_steps
optimizer steps; split "train_aug" scores each arm on one draw of its own augmentation
of its training set, to show whether it fit.

Augmentations. ``BatchedAug`` applies the transforms of
``regbench.images.augmentation`` (torchvision v2 semantics and parameter
distributions) to S models' batches in one call: x [S, b, C, H, W]. The
library's per-call seeding (fork_rng + manual_seed, ~0.5-1 ms) and v2's
per-image parameter sampling (~0.1 ms per image) cost more than a CNN step
here, so parameters are drawn vectorized from one numpy stream per model and
applied with the same kernels (the affine goes through the library's batched
grid_sample kernel); tests/test_augmentation_study.py checks each transform
against the library / v2 with the same parameters.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as Fnn

from regbench import calibration, cnn, images, seeds

DATASETS = ("digits", "shapes")
N_CLASSES = {"digits": 10, "shapes": len(images.SHAPE_CLASSES)}
KINDS = ("none", "affine", "flip", "mixup", "cutmix")


# ---------------------------------------------------------------- data
def digits_test_size(n_test: int, seeds_: int) -> int:
    """Digits' test images per seed: disjoint folds, one per seed, so at most 1797 // seeds."""
    return min(n_test, images.N_DIGITS // seeds_)


def load(dataset: str, n_train: int, n_test: int, i: int, root: int, size: int = 16, folds: int = 0) -> dict:
    """Seed i's training set and test splits as {"train": (X, y), "test": (X, y)[, "test_iid": (X, y)]}.
    Digits with folds > 0: the test set is fold i mod folds of disjoint folds (images.digits)."""
    if dataset == "digits":
        d = images.digits(root, n_train, 0, n_test, seed=i, folds=folds)
        return {"train": (d["X_train"], d["y_train"]), "test": (d["X_test"], d["y_test"])}
    if dataset == "shapes":
        draw = lambda n, purpose, nz: images.shapes(n, seed=seeds.int_seed(root, "shapes", purpose, i), size=size, nuisance=nz)  # noqa: E731
        return {"train": draw(n_train, "train", images.NARROW),
                "test": draw(n_test, "test_wide", images.WIDE),
                "test_iid": draw(n_test, "test_narrow", images.NARROW)}
    raise ValueError(f"unknown dataset {dataset!r}; known: {DATASETS}")


# ---------------------------------------------------------------- augmentations
class BatchedAug:
    """One augmentation arm over S models' batches: (x [S, b, C, H, W], y int [S, b]) -> (x', soft y' [S, b, n_classes]).

    kind / params (defaults as regbench.images.augmentation):
      none
      affine  degrees (15), translate (0.1), scale (None or (lo, hi)): per image,
              angle ~ U(-degrees, degrees), shift = round(U(-t*W, t*W)) pixels
              per axis, scale ~ U(lo, hi), as v2.RandomAffine.make_params;
              bilinear, fill 0, the library's batched grid_sample kernel
      flip    p (0.5), axes: per image and axis a coin with probability p,
              horizontal first, then vertical
      mixup   alpha: per model and batch lam ~ Beta(alpha, alpha); image i
              mixed with image i-1 of the same batch (v2.MixUp)
      cutmix  alpha: per model and batch lam ~ Beta(alpha, alpha), a box of
              side sqrt(1 - lam) * (W, H) around a uniform pixel, clipped; label
              weight 1 - box area / image area (v2.CutMix)
    Each model s draws from its own numpy stream ``rngs[s]`` (one call per
    model and step, in the order listed), so a model's run does not depend on
    which other models share the batch.
    """

    def __init__(self, kind: str, n_classes: int, rngs, **params):
        if kind not in KINDS:
            raise ValueError(f"unknown augmentation kind {kind!r}; known: {KINDS}")
        self.kind, self.n_classes, self.rngs, self.params = kind, n_classes, list(rngs), dict(params)
        self.soft_labels = kind in ("mixup", "cutmix")
        if kind == "affine":
            self.degrees = float(params.get("degrees", 15.0))
            self.translate = params.get("translate", 0.1)
            self.scale = params.get("scale")
        elif kind == "flip":
            self.p = float(params.get("p", 0.5))
            self.axes = tuple(params.get("axes", ("horizontal", "vertical")))
        elif kind in ("mixup", "cutmix"):
            self.alpha = float(params.get("alpha", 0.2 if kind == "mixup" else 1.0))

    def affine_params(self, b: int, H: int, W: int) -> list[dict]:
        """Per-image affine parameters for every model (S * b dicts, model-major)."""
        out = []
        for r in self.rngs:
            angle = r.uniform(-self.degrees, self.degrees, b)
            if self.translate:
                t = self.translate
                tx = np.round(r.uniform(-t * W, t * W, b))
                ty = np.round(r.uniform(-t * H, t * H, b))
            else:
                tx = ty = np.zeros(b)
            scale = r.uniform(self.scale[0], self.scale[1], b) if self.scale else np.ones(b)
            out += [dict(angle=float(a), translate=(int(u), int(v)), scale=float(s), shear=(0.0, 0.0))
                    for a, u, v, s in zip(angle, tx, ty, scale)]
        return out

    def mix_params(self, H: int, W: int) -> list[dict]:
        """Per-model mixup lam, or cutmix box (x1, y1, x2, y2) and adjusted lam."""
        out = []
        for r in self.rngs:
            lam = float(r.beta(self.alpha, self.alpha))
            if self.kind == "mixup":
                out.append(dict(lam=lam))
                continue
            rx, ry = int(r.integers(W)), int(r.integers(H))
            half = 0.5 * np.sqrt(1.0 - lam)
            hw, hh = int(half * W), int(half * H)
            x1, y1, x2, y2 = max(rx - hw, 0), max(ry - hh, 0), min(rx + hw, W), min(ry + hh, H)
            out.append(dict(box=(x1, y1, x2, y2), lam=1.0 - (x2 - x1) * (y2 - y1) / (W * H)))
        return out

    def apply(self, x: torch.Tensor, y: torch.Tensor, params) -> tuple[torch.Tensor, torch.Tensor]:
        """The transform with given parameters (from affine_params / mix_params / flip coins)."""
        S, b = x.shape[:2]
        H, W = x.shape[-2:]
        onehot = Fnn.one_hot(y, self.n_classes).to(x.dtype)
        if self.kind == "none":
            return x, onehot
        if self.kind == "affine":
            flat = images._batched_affine(x.reshape(S * b, *x.shape[2:]), params, "bilinear", 0.0)
            return flat.reshape(x.shape), onehot
        if self.kind == "flip":
            out = x
            for axis, coin in zip(self.axes, params):
                dim = -1 if axis == "horizontal" else -2
                c = torch.as_tensor(coin).reshape(S, b, *([1] * (x.ndim - 2)))
                out = torch.where(c, out.flip(dim), out)
            return out, onehot
        lam = torch.tensor([p["lam"] for p in params], dtype=x.dtype).reshape(S, 1, 1)
        rolled_y = onehot.roll(1, 1)
        y_out = lam * onehot + (1 - lam) * rolled_y
        rolled = x.roll(1, 1)
        if self.kind == "mixup":
            lx = lam.reshape(S, 1, *([1] * (x.ndim - 2)))
            return lx * x + (1 - lx) * rolled, y_out
        rows = torch.arange(H).reshape(1, H, 1)
        cols = torch.arange(W).reshape(1, 1, W)
        box = torch.tensor([p["box"] for p in params]).reshape(S, 4, 1, 1)
        inside = (cols >= box[:, 0]) & (cols < box[:, 2]) & (rows >= box[:, 1]) & (rows < box[:, 3])  # [S, H, W]
        return torch.where(inside.reshape(S, 1, 1, H, W), rolled, x), y_out

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        S, b = x.shape[:2]
        H, W = x.shape[-2:]
        if self.kind == "none":
            params = None
        elif self.kind == "affine":
            params = self.affine_params(b, H, W)
        elif self.kind == "flip":
            params = [np.stack([r.random(b) < self.p for r in self.rngs]) for _ in self.axes]
        else:
            params = self.mix_params(H, W)
        return self.apply(x, y, params)


# ---------------------------------------------------------------- training
def _arm_spec(arm: dict, dataset: str, params: dict) -> dict:
    """An arm's transform parameters (affine: its range set's ranges for the dataset)."""
    kind = arm["kind"]
    extra = {k: v for k, v in arm.items() if k not in ("kind", "ranges")}
    if kind == "affine":
        extra = {**params["affine"][_ranges(arm)][dataset], **extra}
        if extra.get("scale") is not None:
            extra["scale"] = tuple(extra["scale"])
    return extra


def _ranges(arm: dict) -> str:
    """An affine arm's range set (mild unless named); '' for other kinds."""
    return arm.get("ranges", "mild") if arm["kind"] == "affine" else ""


def arms_for(params: dict, dataset: str) -> list[str]:
    """The arms that run on a dataset: an affine arm only where its range set gives that dataset ranges
    (the wide set exists for shapes' shifted test; wide rotations would turn a digit 6 into a 9)."""
    arms = params["arms"]
    return [a for a in arms if arms[a]["kind"] != "affine" or dataset in params["affine"][_ranges(arms[a])]]


def epochs_at(params: dict, n_train: int, epochs: int) -> int:
    """Passes at a training-set size: `epochs`, raised so that the run takes at least min_steps
    optimizer steps; at small n a fixed number of passes is too few steps for an augmented arm to
    fit (it sees each image under few draws of its transform). Every arm of a group gets the same."""
    per_pass = -(-n_train // params["batch_size"])
    return max(epochs, -(-params["min_steps"] // per_pass))


MIX_KINDS = ("mixup", "cutmix")


def _train_arms(job, dataset: str, n_train: int, names: list, data: dict, steps: int):
    """Train every (seed, arm) model of the arms `names` for `steps` steps; returns the model
    (model k = a * S + i). Arms of a seed share the initial weights, and the batch order is
    one stream per seed: a longer run sees the same first batches (paired across groups)."""
    params, device = job.params, job.device
    S, arms, A, C, b = params["seeds"], params["arms"], len(names), N_CLASSES[dataset], params["batch_size"]
    Xtr, ytr = data["train"]
    init = [job.int_seed("init", dataset, i) for i in range(S)]
    model = cnn.BatchedCNN(init * A, Xtr.shape[2], Xtr.shape[-1], C, params["widths"], device=device)
    opt = cnn.BatchedAdamW(list(model.parameters()), params["lr"], params["weight_decay"])
    order = torch.stack([cnn.batch_indices(n_train, steps, b, torch.Generator().manual_seed(
        job.int_seed("order", dataset, n_train, i))) for i in range(S)], 1)  # [steps, S, b]
    augs = [BatchedAug(arms[a]["kind"], C, [job.rng("aug", dataset, n_train, a, i) for i in range(S)],
                       **_arm_spec(arms[a], dataset, params)) for a in names]
    seed_of = torch.arange(S)[:, None]
    for step in range(steps):
        if step % max(1, steps // 4) == 0:
            job.progress(f"{dataset} n_train {n_train} ({', '.join(names)}): step {step} of {steps}")
        idx = order[step]
        x, y = Xtr[seed_of, idx], ytr[seed_of, idx]  # [S, b, ...]
        xs, ys = zip(*(aug(x, y) for aug in augs))
        X, Y = torch.cat(xs).to(device), torch.cat(ys).to(device)  # [A*S, b, ...]
        loss = cnn.soft_cross_entropy(model(X), Y).sum()
        opt.zero_grad()
        loss.backward()
        opt.step(cnn.lr_scale(step, steps, params["schedule"]))
    return model


def train_point(job, dataset: str, n_train: int) -> pd.DataFrame:
    """Train every (seed, arm) model of one grid point; returns the tidy metrics.

    Every arm but mixup / CutMix trains for epochs_at(epochs) passes over its training
    set, mixup and CutMix for epochs_at(mix_epochs): soft mixed targets fit more slowly,
    and a regularizer judged before its arm fits its training set is judged on
    underfitting. Both are raised at small n to at least min_steps optimizer steps. The
    two groups are two batched models with the same initial weights and batch stream per
    seed. Besides the test splits, every arm is scored on its clean training set ("train")
    and on one fresh draw of its own augmentation of it ("train_aug"; soft labels scored
    against their largest weight): whether the arm fit what it trained on."""
    t0, c0 = time.perf_counter(), time.process_time()
    params, root, device = job.params, job.root, job.device
    S, arms = params["seeds"], params["arms"]
    if "none" not in arms:
        raise ValueError("experiments.augmentation.arms needs a 'none' arm (the paired baseline)")
    names = arms_for(params, dataset)
    n_test = digits_test_size(params["n_test"], S) if dataset == "digits" else params["n_test"]
    data = cnn.stack_seeds([load(dataset, n_train, n_test, i, root, params["shapes_size"], folds=S) for i in range(S)])
    Xtr, ytr = data["train"]
    per_pass = -(-n_train // params["batch_size"])
    groups = [[a for a in names if arms[a]["kind"] not in MIX_KINDS], [a for a in names if arms[a]["kind"] in MIX_KINDS]]
    epochs = [epochs_at(params, n_train, params["epochs"]), epochs_at(params, n_train, params["mix_epochs"])]
    rows = []
    alpha = {a: float(arms[a].get("alpha", np.nan)) if arms[a]["kind"] in MIX_KINDS else np.nan for a in names}
    for group, ep in zip(groups, epochs):
        if not group:
            continue
        model = _train_arms(job, dataset, n_train, group, data, ep * per_pass)
        A = len(group)
        splits = {split: (X.repeat(A, *([1] * (X.ndim - 1))), y.repeat(A, 1)) for split, (X, y) in data.items()}
        splits["train_aug"] = _augmented_train(job, dataset, n_train, group, Xtr, ytr)
        for split, (X, y) in splits.items():  # model k = a * S + i sees row k
            ev = cnn.evaluate(model, X.to(device), y.to(device))
            probs = ev["probs"].cpu()
            for k in range(A * S):
                a, i = divmod(k, S)
                base = dict(dataset=dataset, n_train=n_train, arm=group[a], kind=arms[group[a]]["kind"],
                            ranges=_ranges(arms[group[a]]), alpha=alpha[group[a]], seed=i, split=split)
                rows.append(dict(base, metric="acc", value=float(ev["acc"][k])))
                if split == "train_aug":
                    continue
                rows += [dict(base, metric="nll", value=float(ev["nll"][k])),
                         dict(base, metric="ece", value=calibration.ece(probs[k], y[k]))]
                if split == "train":
                    rows += [dict(base, metric="epochs", value=float(ep)), dict(base, metric="steps", value=float(ep * per_pass))]
    # seeds re-split digits' 1797 images: the correction their intervals need (shapes are fresh draws)
    overlap = images.resample_overlap(n_train, n_test, images.N_DIGITS) if dataset == "digits" else 0.0
    rows.append(dict(dataset=dataset, n_train=n_train, arm="none", kind="none", ranges="", alpha=np.nan, seed=0,
                     split="design", metric="resample_overlap", value=overlap))
    out = [pd.DataFrame(rows)]
    if params["n_examples"] and n_train == min(params["sweep"]["n_train"]):
        out.append(examples(job, dataset, Xtr[0], ytr[0], alpha))
    # timings go to the job log (and Snakemake's benchmark file), never into the
    # results: the same config must give the same table
    print(f"augmentation {dataset} n={n_train}: train {time.perf_counter() - t0:.1f} s, "
          f"cpu {time.process_time() - c0:.1f} s", flush=True)
    return pd.concat(out, ignore_index=True)


def _augmented_train(job, dataset: str, n_train: int, group: list, Xtr: torch.Tensor, ytr: torch.Tensor):
    """Each arm's own augmentation of its seed's training set, one draw (stream "fit_check", apart from
    training's): X [A*S, n, ...] and hard labels [A*S, n] (a soft label's largest weight), arm-major."""
    params, arms, S, C = job.params, job.params["arms"], job.params["seeds"], N_CLASSES[dataset]
    xs, ys = [], []
    for a in group:
        aug = BatchedAug(arms[a]["kind"], C, [job.rng("fit_check", dataset, n_train, a, i) for i in range(S)],
                         **_arm_spec(arms[a], dataset, params))
        x, soft = aug(Xtr, ytr)
        xs.append(x)
        ys.append(soft.argmax(-1))
    return torch.cat(xs), torch.cat(ys)


def examples(job, dataset: str, X: torch.Tensor, y: torch.Tensor, alpha: dict) -> pd.DataFrame:
    """The first n_examples training images of seed 0 under every arm, as tidy rows.

    metric "pixel": feature = flat pixel index (row-major), value = intensity;
    metric "label": feature = class, value = its weight in the (soft) target.
    Rows carry a `feature` column, so tables.summarize leaves them out of the CSV summary.
    """
    params = job.params
    m = params["n_examples"]
    C = N_CLASSES[dataset]
    x, yy = X[None, :m], y[None, :m]
    rows = []
    for a in arms_for(params, dataset):
        arm = params["arms"][a]
        aug = BatchedAug(arm["kind"], C, [job.rng("examples", dataset, a)], **_arm_spec(arm, dataset, params))
        xa, ya = aug(x, yy)
        base = dict(dataset=dataset, n_train=int(X.shape[0]), arm=a, kind=arm["kind"], ranges=_ranges(arm), alpha=alpha[a],
                    seed=0, split="example")
        for j in range(xa.shape[1]):
            pix = xa[0, j, 0].reshape(-1).numpy()
            rows += [dict(base, example=j, metric="pixel", feature=f, value=float(v)) for f, v in enumerate(pix)]
            rows += [dict(base, example=j, metric="label", feature=c, value=float(w)) for c, w in enumerate(ya[0, j].numpy()) if w > 0]
    return pd.DataFrame(rows)


def augmentation(job) -> pd.DataFrame:
    """N14: every grid point (dataset, n_train) of this chunk."""
    return pd.concat([train_point(job, p["dataset"], int(p["n_train"])) for p in job.points], ignore_index=True)


RUNNERS = {"augmentation": augmentation}
