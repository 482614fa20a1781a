"""Data for the neural studies: inputs from a covariance family, targets from a
fixed random teacher network (one tanh hidden layer), so the truth is known.

A teacher spec is plain config data (see config/README.md, `teachers`). Each seed
is its own task: the teacher's weights depend on (root, name, seed), as do the data
draw and (in the engine) the initialization. Seeds are therefore independent draws
of task, data and training together, and an interval over seeds covers task-to-task
variation as well; with one teacher shared by every seed it would not (seeds would
be nested in one task, and the interval would speak for that task alone).
"""
import functools
import json

import numpy as np

from regbench import data
from regbench.seeds import rng as make_rng


def classification_spec(teachers: dict, name: str) -> dict:
    """The named teacher, which must be a classification teacher (config validation
    checks both before any job; this guards library callers)."""
    if name not in teachers:
        raise ValueError(f"teacher {name!r} is not defined under teachers; defined: {', '.join(sorted(teachers)) or '(none)'}")
    if teachers[name].get("task", "classification") != "classification":
        raise ValueError(f"teacher {name!r} is a regression teacher; this experiment needs a classification teacher")
    return teachers[name]


def _weights(spec: dict, name: str, root: int, seed: int) -> dict:
    # cached per process: a job draws each seed's data several times
    return _weights_cached(json.dumps(spec, sort_keys=True), name, root, seed)


@functools.lru_cache(maxsize=512)
def _weights_cached(spec_json: str, name: str, root: int, seed: int) -> dict:
    spec = json.loads(spec_json)
    r = make_rng(root, "teacher", name, seed)
    p, h = spec["p"], spec["hidden"]
    out = spec["classes"] if spec["task"] == "classification" else 1
    w = dict(W1=r.standard_normal((p, h)) * np.sqrt(2.0 / p), b1=0.3 * r.standard_normal(h),
             W2=r.standard_normal((h, out)) * np.sqrt(2.0 / h))
    # centre the logits over the input distribution so no class is starved
    probe = r.standard_normal((20_000, p)) @ _root(spec).T
    w["b2"] = -(np.tanh(probe @ w["W1"] + w["b1"]) @ w["W2"]).mean(axis=0)
    return w


def _root(spec: dict) -> np.ndarray:
    vals, vecs = np.linalg.eigh(data.covariance(spec["covariance"], spec["p"]))
    return vecs * np.sqrt(np.clip(vals, 0, None))


def teacher_output(spec: dict, name: str, root: int, seed: int, X: np.ndarray) -> np.ndarray:
    """Seed's teacher's logits (classification) or mean (regression, [n])."""
    w = _weights(spec, name, root, seed)
    out = np.tanh(X @ w["W1"] + w["b1"]) @ w["W2"] + w["b2"]
    return out if spec["task"] == "classification" else out[:, 0]


def sample(spec: dict, name: str, n_train: int, seed: int, root: int) -> dict:
    """One seed's task (its own teacher) and splits: train / val (with label noise),
    test and ood (clean).

    Training rows are a prefix of a pool drawn for the seed, so with the same
    seed a smaller training set is a subset of a larger one (only the prefix
    length changes between training-set sizes). Classification: int64 labels;
    regression: float targets.
    """
    root_cov = _root(spec)
    sizes = {"train": n_train, "val": spec["n_val"], "test": spec["n_test"], "ood": spec["n_test"]}
    out = {}
    for split, n in sizes.items():
        # one stream per split and purpose: every draw is a prefix of a longer one
        stream = lambda purpose: make_rng(root, "teacher-data", name, seed, split, purpose)  # noqa: E731
        x = stream("x").standard_normal((n, spec["p"])) @ root_cov.T
        if split == "ood":
            x = x * spec["ood_scale"]
        f = teacher_output(spec, name, root, seed, x)
        noisy = split in ("train", "val")
        if spec["task"] == "classification":
            y = f.argmax(axis=1)
            if noisy:
                flip = stream("flip").random(n) < spec["label_noise"]
                y = np.where(flip, stream("class").integers(0, spec["classes"], n), y)
            out[f"y_{split}"] = y.astype(np.int64)
        else:
            out[f"y_{split}"] = f + (spec["noise_sd"] * stream("noise").standard_normal(n) if noisy else 0.0)
        out[f"X_{split}"] = x.astype(np.float32)
    return out


def stack(ds: list[dict], which=None) -> dict:
    """Per-model arrays from per-seed splits: X_* [K, n, d], y_* [K, n], model k
    taking dataset which[k] (default: one model per dataset)."""
    which = range(len(ds)) if which is None else which
    return {k: np.stack([ds[i][k] for i in which]) for k in ds[0] if k.startswith(("X_", "y_"))}
