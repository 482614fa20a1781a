"""The fine-tuning study (claim N17): Problem 3's recipe as an ablation on a small CNN
pretrained on digits 0-4 and fine-tuned on few images of digits 5-9, every arm and
seed of a training-set size trained together as one BatchedCNN.
"""
from __future__ import annotations

import time

import pandas as pd
import torch

from regbench import calibration, cnn, images
from regbench.studies.finetune import N_FINETUNE


# ---------------------------------------------------------------- N17: the fine-tuning recipe
# The six parts of Problem 3's recipe that N17 toggles (dropout 0.1 "keep it" has
# no counterpart: the CNN has no dropout; the low learning rate is held fixed).
COMPONENTS = ("warmup", "adamw", "label_smoothing", "early_stopping", "clipping", "layer_decay")
PRETRAIN_CLASSES = 5  # pretrain on digits 0-4, fine-tune on digits 5-9 (relabelled 0-4)


def finetune_arms(components=COMPONENTS, add_one: bool = True, clip_controls=()) -> dict:
    """Arm name -> settings: baseline (all off), full (all on), full minus each, baseline plus each
    (add_one), scratch (full recipe, random init), head_only (full recipe, conv layers frozen), and
    the clipping controls: the full recipe without clipping at another lr or warmup
    (clip_controls: dicts with lr_factor and/or warmup_frac), so that clipping is compared with the
    step-size change it makes, not only with the same lr unclipped."""
    off = {c: False for c in COMPONENTS}
    on = {**off, **{c: True for c in components}}
    arms = {"baseline": dict(off), "full": dict(on)}
    arms |= {f"no_{c}": {**on, c: False} for c in components}
    if add_one:
        arms |= {f"only_{c}": {**off, c: True} for c in components}
    arms["scratch"] = {**on, "pretrained": False}
    arms["head_only"] = {**on, "head_only": True}
    if "clipping" in components:
        arms |= {clip_control_name(c): {**on, "clipping": False, **c} for c in clip_controls}
    return {k: {"pretrained": True, "head_only": False, "lr_factor": 1.0, "warmup_frac": None, **v} for k, v in arms.items()}


def clip_control_name(control: dict) -> str:
    """no_clipping_lr0.5, no_clipping_warmup0.3, ...: the arm name of a clipping control."""
    return "no_clipping_" + "_".join(f"{'lr' if k == 'lr_factor' else 'warmup'}{v:g}" for k, v in sorted(control.items()))


def finetune_data(root: int, i: int, n_train: int, n_val: int, folds: int) -> dict:
    """Seed i: pretraining set = every digit 0-4; fine-tuning task = digits 5-9 (labels 0-4).

    The 5-9 images are split by images.digits with disjoint test folds (seed i's test
    set is fold i mod folds of the 896 images, so seeds share no test image); the
    validation set (early stopping) and the nested, class-balanced training set come
    from the other images, and neither the test nor the validation set depends on
    n_train. The pretraining set is the same 901 images for every seed (in a seed's
    own order): the pretrained model is given, as in Problem 3.
    """
    pre = images.digits(root, images.N_DIGITS - N_FINETUNE, 0, 0, seed=i, classes=range(PRETRAIN_CLASSES))
    fine = images.digits(root, n_train, n_val, N_FINETUNE // folds, seed=i, folds=folds,
                         classes=range(PRETRAIN_CLASSES, 10))
    shift = lambda k: (fine[f"X_{k}"], fine[f"y_{k}"] - PRETRAIN_CLASSES)  # noqa: E731
    return {"pretrain": (pre["X_train"], pre["y_train"]), "val": shift("val"), "train": shift("train"), "test": shift("test")}


def pretrain(job, X: torch.Tensor, y: torch.Tensor) -> cnn.BatchedCNN:
    """S models (one per seed) trained on digits 0-4: Adam, cosine schedule."""
    params, device = job.params, job.device
    S, pp = params["seeds"], params["pretrain"]
    model = cnn.BatchedCNN([job.int_seed("pretrain", i) for i in range(S)], X.shape[2], X.shape[-1],
                           PRETRAIN_CLASSES, params["widths"], device=device)
    opt = cnn.BatchedAdamW(list(model.parameters()), pp["lr"])
    order = torch.stack([cnn.batch_indices(X.shape[1], pp["steps"], pp["batch_size"], torch.Generator().manual_seed(
        job.int_seed("pretrain_order", i))) for i in range(S)], 1)
    seed_of = torch.arange(S)[:, None]
    for step in range(pp["steps"]):
        idx = order[step]
        loss = cnn.soft_cross_entropy(model(X[seed_of, idx].to(device)), y[seed_of, idx].to(device)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step(cnn.lr_scale(step, pp["steps"], "cosine"))
    return model


def _linear_schedule(steps: int, warmup: torch.Tensor) -> torch.Tensor:
    """[steps, K] lr multipliers: linear warmup over `warmup` steps (0 = none), then linear decay to 0."""
    t = torch.arange(steps, dtype=torch.float32)[:, None]
    w = warmup.float()[None, :]
    up = (t + 1) / w.clamp(min=1)
    down = (steps - t) / (steps - w).clamp(min=1)
    return torch.where(t < w, up, down).clamp(max=1.0)


def finetune_point(job, n_train: int) -> pd.DataFrame:
    """Pretrain S models on digits 0-4, then fine-tune every (seed, arm) on n_train digits 5-9."""
    params, root, device = job.params, job.root, job.device
    t0, c0 = time.perf_counter(), time.process_time()
    S, rec = params["seeds"], params["recipe"]
    arms = finetune_arms(params["components"], params["add_one"], params["clip_controls"])
    names, A = list(arms), len(arms)
    K, C = A * S, PRETRAIN_CLASSES
    data = cnn.stack_seeds([finetune_data(root, i, n_train, params["n_val"], S) for i in range(S)])
    job.progress(f"n_train {n_train}: pretraining {S} models")
    base = pretrain(job, *data["pretrain"])
    Xtr, ytr = data["train"]
    # the fine-tuning network: pretrained convs (or the scratch init) and a fresh head, the same for every arm of a seed
    head = [job.int_seed("head", i) for i in range(S)]
    model = cnn.BatchedCNN(head * A, Xtr.shape[2], Xtr.shape[-1], C, params["widths"], device=device)
    col = lambda key: torch.tensor([float(arms[a][key]) for a in names for _ in range(S)], device=device)  # noqa: E731
    with torch.no_grad():
        pre = col("pretrained").bool()
        for name in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"):
            p = model.p(name)
            p.copy_(torch.where(pre.reshape(-1, *([1] * (p.ndim - 1))), base.p(name).repeat(A, *([1] * (p.ndim - 1))), p))
    # per-model optimizer settings
    depth = {"conv1": 2, "conv2": 1, "fc": 0}  # layers below the head
    llrd, frozen = col("layer_decay").bool(), col("head_only").bool()
    lrs = []
    for name in model.named():
        layer = name.split(".")[0]
        f = torch.where(llrd, torch.full((K,), rec["layer_decay"] ** depth[layer], device=device), torch.ones(K, device=device))
        if layer != "fc":
            f = torch.where(frozen, torch.zeros(K, device=device), f)
        lrs.append(params["lr"] * col("lr_factor") * f)
    adamw = col("adamw").bool()
    wd = torch.where(adamw, rec["weight_decay"], 0.0)
    opt = cnn.BatchedAdamW(list(model.named().values()), lrs, weight_decay=wd, l2=rec["weight_decay"] - wd)
    eps = col("label_smoothing") * rec["label_smoothing"]
    clip = torch.where(col("clipping").bool(), rec["max_norm"], float("inf"))
    es = col("early_stopping").bool()
    spe = -(-n_train // params["batch_size"])  # steps per epoch
    steps = params["epochs"] * spe
    frac = torch.tensor([rec["warmup_frac"] if arms[a]["warmup_frac"] is None else arms[a]["warmup_frac"]
                         for a in names for _ in range(S)])
    sched = _linear_schedule(steps, torch.where(col("warmup").bool().cpu(), (frac * steps).round(), 0)).to(device)
    order = torch.stack([cnn.batch_indices(n_train, steps, params["batch_size"], torch.Generator().manual_seed(
        job.int_seed("order", n_train, i))) for i in range(S)], 1)
    seed_of = torch.arange(S)[:, None]
    Xv, yv = (t.repeat(A, *([1] * (t.ndim - 1))).to(device) for t in data["val"])
    best = {k: v.detach().clone() for k, v in model.named().items()}
    best_loss = torch.full((K,), float("inf"), device=device)
    bad = torch.zeros(K, device=device)
    live = torch.ones(K, dtype=torch.bool, device=device)
    epochs_used = torch.full((K,), float(params["epochs"]), device=device)
    clipped = torch.zeros(K, device=device)
    for step in range(steps):
        if step % max(1, steps // 4) == 0:
            job.progress(f"n_train {n_train}: fine-tuning step {step} of {steps}")
        idx = order[step]
        x = Xtr[seed_of, idx].repeat(A, 1, 1, 1, 1).to(device)
        y = cnn.smooth(ytr[seed_of, idx].repeat(A, 1).to(device), C, eps)
        opt.zero_grad()
        cnn.soft_cross_entropy(model(x), y).sum().backward()
        norms = cnn.clip_per_model(list(model.named().values()), clip)
        clipped += (norms > rec["max_norm"]).float() * live
        opt.step(sched[step] * live)
        if (step + 1) % spe == 0:  # end of an epoch: validation loss, early-stopping bookkeeping
            epoch = (step + 1) // spe
            with torch.no_grad():
                vl = cnn.soft_cross_entropy(cnn.predict(model, Xv), yv)
                better = live & (vl < best_loss)
                best_loss = torch.where(better, vl, best_loss)
                for k, v in model.named().items():
                    best[k].copy_(torch.where(better.reshape(-1, *([1] * (v.ndim - 1))), v, best[k]))
                bad = torch.where(better, torch.zeros_like(bad), bad + live.float())
                stop = es & live & (bad >= rec["patience"])
                epochs_used = torch.where(stop, float(epoch), epochs_used)
                live = live & ~stop
    with torch.no_grad():  # early stopping restores the best-validation weights
        for k, v in model.named().items():
            v.copy_(torch.where(es.reshape(-1, *([1] * (v.ndim - 1))), best[k], v))
    train_s = time.perf_counter() - t0
    rows = []
    per_model = {"epochs_used": epochs_used, "clipped_frac": clipped / (epochs_used * spe), "best_val_nll": best_loss}
    for split in ("train", "val", "test"):
        X, y = (t.repeat(A, *([1] * (t.ndim - 1))) for t in data[split])
        ev = cnn.evaluate(model, X.to(device), y.to(device))
        probs = ev["probs"].cpu()
        for k in range(K):
            a, i = divmod(k, S)
            b = dict(n_train=n_train, arm=names[a], seed=i, split=split)
            rows += [dict(b, metric="acc", value=float(ev["acc"][k])), dict(b, metric="nll", value=float(ev["nll"][k])),
                     dict(b, metric="ece", value=calibration.ece(probs[k], y[k]))]
            if split == "test":
                rows += [dict(b, split="train", metric=m, value=float(v[k])) for m, v in per_model.items()]
    # seeds re-split the digits 5-9: the correction their intervals need for the images they share in fitting
    overlap = images.resample_overlap(n_train + params["n_val"], N_FINETUNE // S, N_FINETUNE)
    rows.append(dict(n_train=n_train, arm="baseline", seed=0, split="design", metric="resample_overlap", value=overlap))
    out = pd.DataFrame(rows)
    for c in ("pretrained", "head_only", *COMPONENTS):
        out[c] = out.arm.map(lambda a, c=c: bool(arms[a][c]))
    out["lr_factor"] = out.arm.map(lambda a: arms[a]["lr_factor"])
    print(f"finetune n={n_train}: train {train_s:.1f} s, cpu {time.process_time() - c0:.1f} s", flush=True)
    return out


def finetune(job) -> pd.DataFrame:
    """N17: every training-set size of this chunk."""
    return pd.concat([finetune_point(job, int(p["n_train"])) for p in job.points], ignore_index=True)


RUNNERS = {"finetune": finetune}
