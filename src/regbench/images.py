"""Small image data and batch augmentations for claim N14 (augmentation regularizes).

Data
----
* ``digits``: sklearn's bundled 8x8 handwritten digits (1797 images, no
  download), deterministic splits with nested training sets.
* ``shapes``: procedurally drawn simple shapes whose nuisances (position,
  scale, rotation, pixel noise, contrast) are parameters, so a training set can
  have narrow nuisance ranges and a test set wide ones: an augmentation that
  encodes the nuisance should then help.

Augmentations
-------------
``augmentation(name, **params)`` returns a callable ``aug(x, y, seed=...)``
over a batch x [B, C, H, W] float, y [B] int64, built on
``torchvision.transforms.v2``:

* "none"     -> (x, y)
* "affine"   -> per-sample ``v2.RandomAffine`` (label-preserving)
* "flip"     -> per-sample horizontal and vertical flips, each with prob p
                (label-changing on digits: the negative control)
* "mixup"    -> ``v2.MixUp(alpha)``: soft labels [B, num_classes]
* "cutmix"   -> ``v2.CutMix(alpha)``: soft labels [B, num_classes]

Determinism. torchvision v2 draws its randomness from the global torch RNG
and takes no generator. Every call therefore runs inside
``torch.random.fork_rng(devices=[])`` after ``torch.manual_seed(seed)``, with
``seed`` supplied per batch by the caller (e.g.
``seeds.int_seed(root, "aug", run, epoch, batch)``) or drawn from a
``torch.Generator`` the caller owns (``aug(x, y, generator=g)``). The global
RNG state outside the call is left untouched, and the same seed gives the same
output.

Batch semantics of v2 (checked in torchvision 0.29 source and in tests):
``RandomAffine`` and ``RandomHorizontalFlip`` applied to a batch tensor draw
ONE set of parameters for the whole batch. "affine" therefore draws
parameters per sample with ``RandomAffine.make_params`` (v2's own sampler) and
applies them in one batched ``grid_sample`` that reproduces v2's
``affine_image`` kernel (same inverse matrix, grid and fill handling;
``mode="loop"`` calls ``v2.functional.affine`` per sample instead, and the
tests check the two agree). "flip" draws one coin per sample and per axis and
applies ``v2.functional.horizontal_flip`` / ``vertical_flip`` to the selected
samples. MixUp and CutMix are batch transforms by design: one lambda (one box
for CutMix) per batch, sample i paired with sample i-1 (``roll(1)``) -- the
batch must already be shuffled, as a shuffling DataLoader does.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as Fnn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from regbench import seeds

__all__ = [
    "digits",
    "digit_indices",
    "resample_overlap",
    "shapes",
    "SHAPE_CLASSES",
    "NARROW",
    "WIDE",
    "augmentation",
    "Augmentation",
    "soft_targets",
    "AUGMENTATIONS",
]

# ------------------------------------------------------------------ digits

N_DIGITS = 1797


@functools.lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits

    data = load_digits()
    X = data.images.astype(np.float32) / 16.0
    y = data.target.astype(np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def digits(root_seed: int, n_train: int, n_val: int, n_test: int, seed: int, folds: int = 0,
           classes=None) -> dict:
    """sklearn's 8x8 digits split deterministically into train / val / test.

    Returns dict with X_train, X_val, X_test (float32 tensors [n, 1, 8, 8],
    pixel values / 16 so in [0, 1]) and y_train, y_val, y_test (int64 [n]);
    the split is `digit_indices` (same arguments).
    """
    X, y = _digits_arrays()

    def pack(idx):
        return torch.from_numpy(X[idx][:, None].copy()), torch.from_numpy(y[idx].copy())

    out = {}
    for name, idx in digit_indices(root_seed, n_train, n_val, n_test, seed, folds, classes).items():
        out[f"X_{name}"], out[f"y_{name}"] = pack(idx)
    return out


def digit_indices(root_seed: int, n_train: int, n_val: int, n_test: int, seed: int, folds: int = 0,
                  classes=None) -> dict:
    """The split of `digits` as indices into sklearn's digits: {"train", "val", "test"} -> int array.

    classes: keep only these digits (labels unchanged); None keeps all 1797 images.

    Split for (root_seed, seed): one permutation of the images from
    ``seeds.rng(root_seed, "digits", seed)``; its first n_test images are the
    test set, the next n_val the validation set, the rest the training pool.
    With folds = F > 0 the test set is instead fold (seed mod F) of F disjoint
    folds (one permutation from ``seeds.rng(root_seed, "digits", "folds", F)``,
    the same for every seed), its first n_test images (n_test <= images // F);
    val and pool come from the seed's permutation of the other images. Seeds
    re-split one data set, so their results are correlated: disjoint test folds
    remove the part that shared test images cause, and `resample_overlap` gives
    the correction for the part shared training images cause.
    The pool is ordered class-round-robin (each class shuffled, then the k-th
    image of every class before the (k+1)-th of any, class order within a
    round random), and the training set is its first n_train images. Hence,
    for fixed (root_seed, seed, n_val, n_test): the val and test sets do not
    depend on n_train, a smaller training set is a subset of a larger one,
    and every training set is class-balanced to within one image per class
    (while the pool lasts; classes have 174-183 images).
    """
    _, y = _digits_arrays()
    keep = np.arange(len(y)) if classes is None else np.flatnonzero(np.isin(y, list(classes)))
    N = len(keep)
    if min(n_train, n_val, n_test, folds) < 0 or n_train + n_val + n_test > N:
        raise ValueError(f"need 0 <= sizes and n_train + n_val + n_test <= {N}")
    if folds and n_test > N // folds:
        raise ValueError(f"n_test = {n_test} exceeds a fold ({N} images // {folds} folds = {N // folds})")
    r = seeds.rng(root_seed, "digits", seed)
    if folds:
        fold = seeds.rng(root_seed, "digits", "folds", folds).permutation(keep)[:folds * (N // folds)]
        test = fold.reshape(folds, -1)[seed % folds, :n_test]
        rest = r.permutation(np.setdiff1d(keep, test))
        val, pool = rest[:n_val], rest[n_val:]
    else:
        perm = r.permutation(keep)
        test, val, pool = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    # round-robin order of the pool: rank within class (pool order is already random)
    rank = np.empty(len(pool), np.int64)
    for c in range(10):
        members = np.flatnonzero(y[pool] == c)
        rank[members] = np.arange(len(members))
    class_order = r.permutation(10)  # tie-break within a round
    order = np.lexsort((class_order[y[pool]], rank))
    return {"train": pool[order][:n_train], "val": val, "test": test}


def resample_overlap(n_fit: int, n_fold: int, n_total: int) -> float:
    """The overlap term of the corrected resampled t (regbench.stats.mean_ci) for seeds
    that re-split one set of n_total images: test sets disjoint folds of n_fold images,
    n_fit images (training and validation) drawn from the rest of each seed.

    Shared test images are gone with the folds; shared fitting images remain. Under a
    first-order (additive) model of how each image moves a seed's result, two seeds'
    results correlate by at most the expected share of one seed's fitting images that
    the other also fits on, rho = n_fit (n_total - 2 n_fold) / (n_total - n_fold)^2
    (an image outside both test folds is in each fitting set with probability
    n_fit / (n_total - n_fold)); higher-order terms of a shared training set correlate
    less (rho^k). Returns rho / (1 - rho), Nadeau and Bengio's variance term. Not
    covered: an image tested in one seed and trained on in another, whose two effects
    tend to have opposite signs."""
    rho = n_fit * max(n_total - 2 * n_fold, 0) / (n_total - n_fold) ** 2
    return rho / (1 - rho)


# ------------------------------------------------------------------ shapes

SHAPE_CLASSES = ("disk", "ring", "square", "cross", "triangle", "bar")

#: narrow nuisance ranges (e.g. a training set) and wide ones (e.g. a test set)
NARROW = {"shift": 0.05, "scale": (0.9, 1.1), "rotation": 10.0, "noise": 0.1, "contrast": (1.0, 1.0)}
WIDE = {"shift": 0.3, "scale": (0.65, 1.2), "rotation": 180.0, "noise": 0.1, "contrast": (1.0, 1.0)}

_STROKE = 0.2  # outline thickness in shape units (shape radius ~0.5)


def _sd_box(px, py, hx, hy):
    qx, qy = np.abs(px) - hx, np.abs(py) - hy
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    inside = np.minimum(np.maximum(qx, qy), 0)
    return outside + inside


def _sdf(cls: int, px, py):
    """Signed distance (negative inside) of class `cls` in shape coordinates."""
    t = _STROKE / 2
    if cls == 0:  # disk
        return np.hypot(px, py) - 0.5
    if cls == 1:  # ring
        return np.abs(np.hypot(px, py) - 0.45) - t
    if cls == 2:  # square outline
        return np.abs(_sd_box(px, py, 0.45, 0.45)) - t
    if cls == 3:  # cross (plus)
        return np.minimum(_sd_box(px, py, 0.6, 0.12), _sd_box(px, py, 0.12, 0.6))
    if cls == 4:  # filled equilateral triangle, circumradius 0.6, centroid at 0
        d = None
        for k in range(3):
            a = math.pi / 2 + 2 * math.pi * k / 3 + math.pi  # outward normals
            e = np.cos(a) * px + np.sin(a) * py - 0.3
            d = e if d is None else np.maximum(d, e)
        return d
    if cls == 5:  # bar
        return _sd_box(px, py, 0.6, 0.12)
    raise ValueError(cls)


def _nuisance(nuisance: dict | None) -> dict:
    nz = dict(NARROW)
    if nuisance:
        unknown = set(nuisance) - set(nz)
        if unknown:
            raise ValueError(f"unknown nuisance keys {sorted(unknown)}; known: {sorted(nz)}")
        nz.update(nuisance)
    return nz


def shapes(n: int, seed: int, size: int = 16, nuisance: dict | None = None,
           n_classes: int = len(SHAPE_CLASSES)):
    """Draw n images of simple shapes: (X float32 [n, 1, size, size] in [0, 1], y int64 [n]).

    Classes (``SHAPE_CLASSES``, first ``n_classes`` used): disk, ring, square
    outline, cross, filled triangle, bar -- chosen to stay distinct under any
    rotation, shift and the scale ranges below.

    ``nuisance`` (missing keys default to ``NARROW``):
      shift     max |offset| of the shape centre, per axis, in half-frame
                units (0.25 = a quarter of the half-width = size/8 pixels;
                v2.RandomAffine's translate=t is t*size pixels, i.e. shift 2t)
      scale     (lo, hi) uniform scale factor (1: radius ~ 0.5 half-frame)
      rotation  max |angle| in degrees, uniform in [-rotation, rotation]
      noise     sd of additive Gaussian pixel noise (then clipped to [0, 1])
      contrast  (lo, hi) uniform foreground intensity

    Determinism: labels, nuisance draws and noise come from
    ``seeds.rng(seed, "shapes", ...)`` streams drawn row by row, so for a given
    (seed, size, n_classes) the first k images of ``shapes(n, ...)`` equal
    ``shapes(k, ...)``; the nuisance ranges map the same uniforms, so use
    different seeds for training and test sets. Labels cycle through blocks
    holding every class once (random order in each block): classes are
    balanced to within one image.
    Rendering: signed distance functions with one-pixel anti-aliasing,
    vectorized over images (10k 16x16 images in well under a second).
    """
    if not 2 <= n_classes <= len(SHAPE_CLASSES):
        raise ValueError(f"n_classes must be in 2..{len(SHAPE_CLASSES)}")
    nz = _nuisance(nuisance)
    C = n_classes
    n_blocks = -(-n // C)
    y = seeds.rng(seed, "shapes", "labels", C).random((n_blocks, C)).argsort(axis=1).ravel()[:n]
    U = seeds.rng(seed, "shapes", "params").random((n, 6))
    noise = seeds.rng(seed, "shapes", "noise", size).standard_normal((n, size, size))

    cx = (2 * U[:, 0] - 1) * nz["shift"]
    cy = (2 * U[:, 1] - 1) * nz["shift"]
    s_lo, s_hi = nz["scale"]
    scale = s_lo + (s_hi - s_lo) * U[:, 2]
    theta = np.deg2rad((2 * U[:, 3] - 1) * nz["rotation"])
    c_lo, c_hi = nz["contrast"]
    contrast = c_lo + (c_hi - c_lo) * U[:, 4]

    u = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    ux = u[None, None, :]
    uy = u[None, :, None]
    img = np.zeros((n, size, size))
    half = size / 2.0  # pixels per frame unit
    for c in range(C):
        sel = np.flatnonzero(y == c)
        if sel.size == 0:
            continue
        dx = ux - cx[sel, None, None]
        dy = uy - cy[sel, None, None]
        ct = np.cos(theta[sel])[:, None, None]
        st = np.sin(theta[sel])[:, None, None]
        sc = scale[sel, None, None]
        px = (ct * dx + st * dy) / sc
        py = (-st * dx + ct * dy) / sc
        d_pix = _sdf(c, px, py) * sc * half
        img[sel] = np.clip(0.5 - d_pix, 0.0, 1.0) * contrast[sel, None, None]
    img = np.clip(img + nz["noise"] * noise, 0.0, 1.0)
    X = torch.from_numpy(img.astype(np.float32)[:, None]).contiguous()
    return X, torch.from_numpy(y.astype(np.int64))


# ------------------------------------------------------------------ augmentations

AUGMENTATIONS = ("none", "affine", "flip", "mixup", "cutmix")


def soft_targets(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer labels [B] -> one-hot float [B, num_classes]; soft labels pass through."""
    if y.ndim == 2:
        return y.float()
    return Fnn.one_hot(y.long(), num_classes).float()


def _inverse_affine(angle: float, translate, scale: float, shear) -> list[float]:
    """Inverse affine matrix about the image centre, as torchvision's affine_image builds it."""
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    tx, ty = float(translate[0]), float(translate[1])
    cx = cy = 0.0
    cos_sy = math.cos(sy)
    tan_sx = math.tan(sx)
    a = math.cos(rot - sy) / cos_sy
    b = -(a * tan_sx + math.sin(rot))
    c = math.sin(rot - sy) / cos_sy
    d = math.cos(rot) - c * tan_sx
    m = [d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0]
    m[2] += cx - m[0] * (cx + tx) - m[1] * (cy + ty)
    m[5] += cy - m[3] * (cx + tx) - m[4] * (cy + ty)
    return m


def _batched_affine(x: torch.Tensor, params: list[dict], mode: str, fill: float | None) -> torch.Tensor:
    """Apply one affine per sample in a single grid_sample, mirroring v2's affine_image kernel."""
    B, C, H, W = x.shape
    dtype = x.dtype
    theta = torch.tensor([_inverse_affine(**p) for p in params], dtype=dtype).reshape(B, 2, 3)
    base = torch.empty(1, H, W, 3, dtype=dtype)
    base[..., 0].copy_(torch.linspace((1.0 - W) * 0.5, (W - 1.0) * 0.5, steps=W))
    base[..., 1].copy_(torch.linspace((1.0 - H) * 0.5, (H - 1.0) * 0.5, steps=H).unsqueeze(-1))
    base[..., 2].fill_(1)
    rescaled = theta.transpose(1, 2).div(torch.tensor([0.5 * W, 0.5 * H], dtype=dtype))
    grid = base.view(1, H * W, 3).expand(B, -1, -1).bmm(rescaled).view(B, H, W, 2)
    img = x
    if fill is not None:
        img = torch.cat((x, torch.ones(B, 1, H, W, dtype=dtype)), dim=1)
    out = Fnn.grid_sample(img, grid, mode=mode, padding_mode="zeros", align_corners=False)
    if fill is not None:
        out, mask = out[:, :C], out[:, C:].expand(-1, C, -1, -1)
        if mode == "nearest":
            out = torch.where(mask < 0.5, torch.full_like(out, fill), out)
        else:
            out = (out - fill) * mask + fill
    return out


class Augmentation:
    """A seeded batch augmentation; see the module docstring. Build with ``augmentation(name, ...)``.

    Attributes: name, params, soft_labels (True for mixup/cutmix: returns
    [B, num_classes] float targets), label_preserving (False for "flip" on
    oriented data and for mixup/cutmix).
    """

    def __init__(self, name: str, **params):
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {name!r}; known: {AUGMENTATIONS}")
        self.name = name
        self.params = dict(params)
        self.soft_labels = name in ("mixup", "cutmix")
        self.label_preserving = name in ("none", "affine")
        if name == "affine":
            interp = params.get("interpolation", "bilinear")
            self._mode = "bilinear" if interp in ("bilinear", v2.InterpolationMode.BILINEAR) else "nearest"
            self._fill = params.get("fill", 0.0)
            self._loop = params.get("mode", "batched") == "loop"
            translate = params.get("translate", 0.1)
            if translate is not None and not isinstance(translate, (tuple, list)):
                translate = (translate, translate)
            self._t = v2.RandomAffine(
                degrees=params.get("degrees", 15.0),
                translate=translate,
                scale=params.get("scale", None),
                shear=params.get("shear", None),
                interpolation=v2.InterpolationMode.BILINEAR if self._mode == "bilinear"
                else v2.InterpolationMode.NEAREST,
                fill=self._fill,
            )
        elif name == "flip":
            self._p = float(params.get("p", 0.5))
            self._axes = tuple(params.get("axes", ("horizontal", "vertical")))
        elif name in ("mixup", "cutmix"):
            if "num_classes" not in params:
                raise ValueError(f"{name} needs num_classes")
            cls = v2.MixUp if name == "mixup" else v2.CutMix
            self._t = cls(alpha=float(params.get("alpha", 0.2 if name == "mixup" else 1.0)),
                          num_classes=int(params["num_classes"]))

    def __repr__(self):
        return f"Augmentation({self.name!r}, {self.params})"

    def __call__(self, x: torch.Tensor, y: torch.Tensor, seed: int | None = None,
                 generator: torch.Generator | None = None):
        if self.name == "none":
            return x, y
        if seed is None:
            if generator is None:
                raise ValueError("pass seed= or generator= (augmentations are seeded per batch)")
            seed = int(torch.randint(0, 2 ** 62, (1,), generator=generator))
        if x.ndim != 4:
            raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self._apply(x, y)

    def _apply(self, x, y):
        B = x.shape[0]
        if self.name == "affine":
            params = [self._t.make_params([x[i]]) for i in range(B)]
            if self._loop:
                interp = (v2.InterpolationMode.BILINEAR if self._mode == "bilinear"
                          else v2.InterpolationMode.NEAREST)
                out = torch.stack([TF.affine(x[i], **params[i], interpolation=interp, fill=self._fill)
                                   for i in range(B)])
            else:
                out = _batched_affine(x, params, self._mode, self._fill)
            return out, y
        if self.name == "flip":
            out = x.clone()
            for axis in self._axes:
                sel = torch.rand(B) < self._p
                if sel.any():
                    f = TF.horizontal_flip if axis == "horizontal" else TF.vertical_flip
                    out[sel] = f(out[sel])
            return out, y
        # mixup / cutmix: v2 batch transforms (one lambda per batch, pairs i with i-1)
        return self._t(x, y)


def augmentation(name: str, **params) -> Augmentation:
    """Build a seeded batch augmentation.

    name / params:
      "none"
      "affine": degrees (15; rotation in [-degrees, degrees]), translate (0.1;
                max shift as a fraction of width/height, rounded to whole
                pixels by v2), scale (None or (lo, hi)), shear (None),
                interpolation ("bilinear" | "nearest"), fill (0.0),
                mode ("batched" | "loop": same result, loop is the v2 reference)
      "flip":   p (0.5, per sample and per axis), axes (("horizontal", "vertical"))
      "mixup":  alpha (0.2), num_classes (required)
      "cutmix": alpha (1.0), num_classes (required)

    Call as ``aug(x, y, seed=int)`` or ``aug(x, y, generator=torch.Generator)``;
    returns (x_aug, y_aug) with y_aug int64 [B] for label-preserving and flip
    transforms, float [B, num_classes] for mixup/cutmix (``soft_labels``).
    """
    return Augmentation(name, **params)
