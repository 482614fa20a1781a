"""Weight decay vs L2 under SGD and Adam (claims N10, N11), with plain torch.optim.

Convention used throughout (the document's, Part 9, and torch's):

    L2 in the loss:      L_total(w) = L_data(w) + (lam / 2) * ||w||^2
                         gradient    = grad L_data + lam * w
    torch weight_decay:  ``SGD(weight_decay=lam)`` / ``Adam(weight_decay=lam)``
                         add ``lam * w`` to the gradient -> the same as the line
                         above. With the penalty written ``lam * ||w||^2`` (no 1/2)
                         the matching weight_decay is ``2 * lam``.
    decoupled decay:     w <- w - lr * lam * w, applied to the weights, not the
                         gradient (``AdamW(weight_decay=lam)`` multiplies by
                         ``1 - lr * lam`` before its Adam step).

Everything runs in float64 on CPU on a linear least-squares model with data loss
L_data(w) = (1 / 2b) * ||y_B - X_B w||^2 on a minibatch B of size b. Minibatch
indices come from ``seeds.rng(seed, ...)``, so every compared run sees the same
batches.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from regbench import seeds

__all__ = [
    "scaled_design",
    "sgd_l2_vs_decay",
    "adam_shrinkage",
    "shrinkage_vs_v",
    "adamw_decoupling",
]

DTYPE = torch.float64


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=DTYPE)


def _batches(n: int, batch_size: int | None, steps: int, seed: int, purpose: str) -> np.ndarray:
    """[steps, b] minibatch indices (sampling with replacement across steps, without within a step)."""
    if batch_size is None or batch_size >= n:
        return np.tile(np.arange(n), (steps, 1))
    r = seeds.rng(seed, "optimizers", purpose, "batches")
    return np.stack([r.choice(n, size=batch_size, replace=False) for _ in range(steps)])


def _data_loss(w, X, y, idx):
    xb, yb = X[idx], y[idx]
    resid = yb - xb @ w
    return 0.5 * (resid @ resid) / len(idx)


def scaled_design(n: int, p: int, scale_ratio: float, seed: int, noise_sd: float = 1.0):
    """Features with very different gradient scales, for N11.

    Column j of X is N(0, 1) times scale_j, scales log-spaced from
    1/sqrt(scale_ratio) to sqrt(scale_ratio) (so they span `scale_ratio`). The
    truth is beta_j = 1 / scale_j, i.e. every feature contributes the same
    variance to y; y = X beta + N(0, noise_sd^2). The gradient for w_j is
    proportional to scale_j, so Adam's sqrt(v_j) spans the same ratio.
    Returns (X [n, p], y [n], beta [p], scales [p]) as float64 numpy arrays.
    """
    r = seeds.rng(seed, "optimizers", "scaled_design", n, p)
    scales = float(scale_ratio) ** np.linspace(-0.5, 0.5, p)
    Z = r.standard_normal((n, p))
    X = Z * scales
    beta = 1.0 / scales
    y = X @ beta + noise_sd * r.standard_normal(n)
    return X, y, beta, scales


def sgd_l2_vs_decay(X, y, lam: float, lr: float, steps: int, seed: int,
                    batch_size: int | None = 16, return_trajectories: bool = False) -> dict:
    """Run SGD three (four) ways from w = 0 on the same minibatches and compare trajectories.

    Runs (plain SGD, no momentum, float64):
      * ``l2``: loss = L_data + (lam/2)||w||^2, ``SGD(lr)``.
      * ``weight_decay``: loss = L_data, ``SGD(lr, weight_decay=lam)``.
      * ``decoupled``: loss = L_data, ``SGD(lr)`` step, with the decay applied
        to the weights by hand as w <- (1 - lr*lam) w *before* the step (the
        gradient was already computed at the old w, so this is exactly
        w <- w - lr*(grad + lam*w_old), as AdamW orders it). Applying the decay
        *after* the step instead (w <- (1 - lr*lam)(w - lr*grad)) differs by
        lr^2*lam*grad per step; the ``decoupled_after`` run measures that.
      * ``l2_no_half``: loss = L_data + lam*||w||^2 with weight_decay=lam
        elsewhere: the lambda-vs-lambda/2 mismatch, a visible difference.

    Returns a dict of max abs differences over every step and coordinate:
    ``l2_vs_weight_decay``, ``l2_vs_decoupled``, ``weight_decay_vs_decoupled``,
    ``l2_vs_decoupled_after``, ``l2_no_half_vs_weight_decay``, plus
    ``max_abs_w`` (scale of the weights) and, if asked, ``trajectories``
    ({run: [steps+1, p] numpy array}).
    """
    X, y = _t(X), _t(y)
    n, p = X.shape
    batches = _batches(n, batch_size, steps, seed, "sgd")

    def run(kind):
        w = torch.zeros(p, dtype=DTYPE, requires_grad=True)
        wd = lam if kind == "weight_decay" else 0.0
        opt = torch.optim.SGD([w], lr=lr, weight_decay=wd)
        traj = [w.detach().clone()]
        for idx in batches:
            opt.zero_grad()
            loss = _data_loss(w, X, y, idx)
            if kind == "l2":
                loss = loss + 0.5 * lam * (w @ w)
            elif kind == "l2_no_half":
                loss = loss + lam * (w @ w)
            loss.backward()
            if kind == "decoupled":
                with torch.no_grad():
                    w.mul_(1 - lr * lam)
            opt.step()
            if kind == "decoupled_after":
                with torch.no_grad():
                    w.mul_(1 - lr * lam)
            traj.append(w.detach().clone())
        return torch.stack(traj).numpy()

    runs = {k: run(k) for k in ("l2", "weight_decay", "decoupled", "decoupled_after", "l2_no_half")}

    def gap(a, b):
        return float(np.max(np.abs(runs[a] - runs[b])))

    out = {
        "l2_vs_weight_decay": gap("l2", "weight_decay"),
        "l2_vs_decoupled": gap("l2", "decoupled"),
        "weight_decay_vs_decoupled": gap("weight_decay", "decoupled"),
        "l2_vs_decoupled_after": gap("l2", "decoupled_after"),
        "l2_no_half_vs_weight_decay": gap("l2_no_half", "weight_decay"),
        "max_abs_w": float(np.max(np.abs(runs["l2"]))),
    }
    if return_trajectories:
        out["trajectories"] = runs
    return out


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(X, y, rcond=None)[0]


def adam_shrinkage(X, y, lam: float, lr: float, steps: int, seed: int, batch_size: int | None = 32,
                   betas=(0.9, 0.999), eps: float = 1e-8, init: str = "ols") -> pd.DataFrame:
    """Per-parameter pull toward zero from the decay term under Adam+L2 and AdamW.

    Both optimizers run ``steps`` minibatch steps (same batches, float64) from
    ``init`` ("ols": the least-squares solution, so the measurement is taken
    near the stationary regime; "zeros": from 0):

      * ``adam_l2``: ``Adam(lr, weight_decay=lam)``, i.e. lam*w added to the
        gradient (L2 penalty (lam/2)||w||^2 in the loss). The decay enters the
        first moment m and the update is lr * m_hat / (sqrt(v_hat) + eps).
        Because m is linear in the gradients we track its decay part exactly,
        m_dec <- b1*m_dec + (1-b1)*lam*w, alongside the optimizer, and the decay's
        share of the final update is lr * m_dec_hat / (sqrt(v_hat) + eps), with
        v_hat read from the optimizer state (``exp_avg_sq``; it contains the
        (g + lam*w)^2 of the actual run).
      * ``adamw``: ``AdamW(lr, weight_decay=lam)``. The decay's share of the
        final update is measured as (w_before - w_after) minus the Adam part
        lr * m_hat / (sqrt(v_hat) + eps) computed from the optimizer state; it
        should equal lr*lam*w_before whatever v is.

    Returns one row per (optimizer, param): optimizer, param, scale (column sd
    of X), w (before the last step), sqrt_v (sqrt of bias-corrected v_hat),
    decay_update (decay's part of the last step, positive = toward 0 for
    positive w), shrinkage (= decay_update / w: relative per-step pull toward
    0), predicted (lr*lam/(sqrt_v+eps) for adam_l2, lr*lam for adamw).

    Note (for the report): this is the per-step pull. At a full-batch fixed
    point Adam+L2 satisfies grad L_data = -lam*w (plain ridge), while AdamW
    satisfies grad L_data = -lam*w*(sqrt(v)+eps) -- i.e. relative to AdamW,
    Adam+L2 regularizes parameters with large gradient history less, as the
    document says. v tracks gradient magnitude, not weight magnitude (the
    document's "large weights have large v" is loose).
    """
    Xn = np.asarray(X, np.float64)
    yn = np.asarray(y, np.float64)
    X_t, y_t = _t(Xn), _t(yn)
    n, p = Xn.shape
    batches = _batches(n, batch_size, steps, seed, "adam")
    b1, b2 = betas
    if init == "ols":
        w0 = _ols(Xn, yn)
    elif init == "zeros":
        w0 = np.zeros(p)
    else:
        raise ValueError(f"init must be 'ols' or 'zeros', got {init!r}")
    scale = Xn.std(axis=0)
    rows = []
    for name in ("adam_l2", "adamw"):
        w = _t(w0).clone().requires_grad_(True)
        cls = torch.optim.Adam if name == "adam_l2" else torch.optim.AdamW
        opt = cls([w], lr=lr, betas=betas, eps=eps, weight_decay=lam, foreach=False)
        m_dec = torch.zeros(p, dtype=DTYPE)
        for idx in batches:
            opt.zero_grad()
            _data_loss(w, X_t, y_t, idx).backward()
            w_before = w.detach().clone()
            if name == "adam_l2":
                m_dec = b1 * m_dec + (1 - b1) * lam * w_before
            opt.step()
        w_after = w.detach().clone()
        st = opt.state[w]
        t = int(st["step"])
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        sqrt_v = (st["exp_avg_sq"] / bc2).sqrt()
        denom = sqrt_v + eps
        if name == "adam_l2":
            decay_update = lr * (m_dec / bc1) / denom
            predicted = lr * lam / denom
        else:
            adam_part = lr * (st["exp_avg"] / bc1) / denom
            decay_update = (w_before - w_after) - adam_part
            predicted = torch.full((p,), lr * lam, dtype=DTYPE)
        for j in range(p):
            rows.append({
                "optimizer": name,
                "param": j,
                "scale": float(scale[j]),
                "w": float(w_before[j]),
                "sqrt_v": float(sqrt_v[j]),
                "decay_update": float(decay_update[j]),
                "shrinkage": float(decay_update[j] / w_before[j]),
                "predicted": float(predicted[j]),
            })
    return pd.DataFrame(rows)


def shrinkage_vs_v(df: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer: log-log slope and correlation of shrinkage on sqrt_v, and its spread.

    Columns: optimizer, slope, corr, shrinkage_ratio (max/min shrinkage),
    sqrt_v_ratio (max/min sqrt_v). Adam+L2 should give slope ~ -1 and corr ~ -1;
    AdamW slope ~ 0 and shrinkage_ratio ~ 1 (its correlation is undefined noise:
    the shrinkage is constant up to rounding).
    """
    rows = []
    for name, g in df.groupby("optimizer", sort=False):
        lv = np.log(g["sqrt_v"].to_numpy())
        ls = np.log(np.abs(g["shrinkage"].to_numpy()))
        slope = float(np.polyfit(lv, ls, 1)[0])
        corr = float(np.corrcoef(lv, ls)[0, 1]) if np.std(ls) > 0 else float("nan")
        s = np.abs(g["shrinkage"].to_numpy())
        rows.append({
            "optimizer": name, "slope": slope, "corr": corr,
            "shrinkage_ratio": float(s.max() / s.min()),
            "sqrt_v_ratio": float(np.exp(lv.max() - lv.min())),
        })
    return pd.DataFrame(rows)


def adamw_decoupling(p: int, steps: int, lam: float, lr: float, seed: int,
                     betas=(0.9, 0.999), eps: float = 1e-8) -> dict:
    """Feed one fixed gradient sequence to Adam(wd=0), AdamW(wd=lam) and Adam(wd=lam).

    Gradients are drawn once (N(0,1) times per-coordinate scales spanning 100x)
    and do not depend on w, so any difference in optimizer state comes from how
    the decay is applied. Returns max abs differences over all steps:

      * ``adamw_exp_avg``, ``adamw_exp_avg_sq``: AdamW(lam) vs Adam(0) moments
        (decoupled: the decay never enters them -> exactly 0);
      * ``adam_l2_exp_avg``, ``adam_l2_exp_avg_sq``: Adam(lam) vs Adam(0)
        (coupled: lam*w enters both -> nonzero);
      * ``adamw_decay_residual``: max over steps of
        |w_adamw[t] - ((1 - lr*lam) * w_adamw[t-1] - u[t])| where u[t] is the
        Adam(0) update at step t: AdamW = the same Adam update plus a decay of
        exactly lr*lam*w, whatever v is (rounding only);
      * ``decay_scale``: max |lr*lam*w| seen, to judge the residual against.
    """
    r = seeds.rng(seed, "optimizers", "adamw_decoupling")
    scales = np.logspace(-1, 1, p)
    G = torch.as_tensor(r.standard_normal((steps, p)) * scales, dtype=DTYPE)
    w0 = torch.as_tensor(r.standard_normal(p), dtype=DTYPE)

    def make(cls, wd):
        w = w0.clone().requires_grad_(True)
        return w, cls([w], lr=lr, betas=betas, eps=eps, weight_decay=wd, foreach=False)

    runs = {
        "adam0": make(torch.optim.Adam, 0.0),
        "adamw": make(torch.optim.AdamW, lam),
        "adam_l2": make(torch.optim.Adam, lam),
    }
    out = {k: 0.0 for k in ("adamw_exp_avg", "adamw_exp_avg_sq", "adam_l2_exp_avg",
                            "adam_l2_exp_avg_sq", "adamw_decay_residual", "decay_scale")}
    for t in range(steps):
        prev = {k: w.detach().clone() for k, (w, _) in runs.items()}
        for w, opt in runs.values():
            w.grad = G[t].clone()
            opt.step()
        st = {k: opt.state[w] for k, (w, opt) in runs.items()}
        for k in ("adamw", "adam_l2"):
            for m in ("exp_avg", "exp_avg_sq"):
                d = float((st[k][m] - st["adam0"][m]).abs().max())
                out[f"{k}_{m}"] = max(out[f"{k}_{m}"], d)
        u = prev["adam0"] - runs["adam0"][0].detach()
        expected = (1 - lr * lam) * prev["adamw"] - u
        resid = float((runs["adamw"][0].detach() - expected).abs().max())
        out["adamw_decay_residual"] = max(out["adamw_decay_residual"], resid)
        out["decay_scale"] = max(out["decay_scale"], float((lr * lam * prev["adamw"]).abs().max()))
    return out
