"""The implicit / optimizer-level regularization study (claims N9, N10, N11, N15, N16).

Float64 throughout, on linear least squares with known truth, so every effect is
measured against an exact reference:

  gd_vs_ridge      N9   early-stopped GD vs the closest ridge solution (closed forms
                        in the eigenbasis of X'X/n, regbench.least_squares)
  sgd_l2_decay     N10  SGD: L2 in the loss vs weight_decay vs decay by hand
                        (torch.optim, regbench.optimizers)
  adam_l2_decay    N11  Adam+L2 vs AdamW: per-parameter pull toward 0 vs sqrt(v)
  noise_vs_ridge   N15  least squares on noisy input copies vs ridge at lambda = sd^2
  bias_variance    N16  bias^2 and variance of predictions over many training sets

Conventions (as in regbench.least_squares and regbench.linear): X standardized and y
centred with training statistics; data loss (1/2n)||y - Xw||^2; ridge adds
(lambda/2)||w||^2. Excess risk of a fit is (w/sd - beta)' Sigma (w/sd - beta): the
population error of the slopes on the original feature scale.

Every experiment draws its own data from a named design (`designs`) with
streams job.rng(...) = seeds.rng(root, "implicit", <experiment>, ...), so the same config gives
the same numbers.
"""
import numpy as np
import pandas as pd

from regbench import data, linear, seeds
from regbench import least_squares as im
from regbench import optimizers as opt
from regbench.config import apply_overrides



# ---------------------------------------------------------------- helpers
def _draw(design: dict, pop: dict, rng) -> dict:
    """One dataset, standardized / centred on its training split, with the truth on the standardized scale.

    Keys: Xtr, ytr, Xva, yva, Xte, yte (standardized / centred), mu, sd (training
    column mean and sd), ybar, beta_s = beta * sd and Sigma_s = Sigma / (sd sd'),
    so that (w - beta_s)' Sigma_s (w - beta_s) is the excess risk of w on the
    original scale.
    """
    d = data.sample(design, rng, pop)
    Xtr, Xva, Xte = linear.standardize(d["X_train"], d["X_val"], d["X_test"])
    ytr, yva, yte = linear.center(d["y_train"], d["y_val"], d["y_test"])
    sd = d["X_train"].std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return dict(Xtr=Xtr, ytr=ytr, Xva=Xva, yva=yva, Xte=Xte, yte=yte, mu=d["X_train"].mean(axis=0), sd=sd,
                ybar=float(d["y_train"].mean()), beta_s=pop["beta"] * sd, Sigma_s=pop["Sigma"] / np.outer(sd, sd))


def excess_risk(w, beta_s, Sigma_s) -> float:
    """(w - beta_s)' Sigma_s (w - beta_s), one fit (w [p]) or many (w [k, p])."""
    D = np.atleast_2d(w) - beta_s
    r = np.einsum("ij,jk,ik->i", D, Sigma_s, D)
    return float(r[0]) if np.ndim(w) == 1 else r


def _mse(X, y, W):
    """Mean squared error of each row of W [k, p] (or one w [p]) on (X, y)."""
    R = y[None, :] - np.atleast_2d(W) @ X.T
    out = (R ** 2).mean(axis=1)
    return float(out[0]) if np.ndim(W) == 1 else out


def _rows(**cols) -> pd.DataFrame:
    return pd.DataFrame(cols)


def _eig_pos(s):
    """Smallest positive eigenvalue (relative cut 1e-12, as regbench.least_squares does)."""
    return float(s[s > 1e-12 * s.max()].min())


# ---------------------------------------------------------------- N9
def gd_vs_ridge(job) -> pd.DataFrame:
    """For each seed and step size: closest ridge lambda to GD after T steps, over T from 1 far into convergence.

    One step size and one T grid per eta_fraction serve every seed (so per-T rows
    line up across seeds): eta = eta_fraction / s_ref with s_ref the largest
    eigenvalue of X'X/n over all seeds (stable for every seed), and T log-spaced
    from 1 to late_factor / (eta s_min_ref), s_min_ref the smallest positive one.

    Per T rows (metric): lambda_closest, ratio (= lambda_closest * eta * T, the
    claim says ~1), rel_distance (||w_T - w_ridge(lambda_closest)|| / ||w_T||),
    rel_distance_claimed (the same at the claimed lambda = 1/(eta T)), gd_risk,
    ridge_risk_claimed (excess risks of w_T and of ridge at 1/(eta T)),
    ridge_risk_closest, at_grid_edge, val_mse (GD's validation error at T: early
    stopping's pick is its argmin); columns eta_fraction, T, inv_eta_T. The
    seed's own s_min and s_max (per (seed, eta) rows) place each T in a regime:
    u = 1/(eta T s_min) > s_max/s_min early, 1 <= u <= s_max/s_min within the
    spectrum, u < 1 late (GD has converged along the smallest eigen-direction).
    Per (seed, eta) rows: slope (log lambda_closest on log 1/(eta T), from
    regbench.least_squares.loglog_slope; column regime = early, within, early+within,
    all), best_risk_ratio (min_T GD risk / min_lambda ridge risk), gd_best_risk,
    ridge_best_risk, gd_best_inv_eta_T, ridge_best_lambda, s_min, s_max, eta.
    """
    params, name, design = job.params, job.experiment, job.design
    pop = data.truth(design)
    draws = []
    for i in range(params["seeds"]):
        d = _draw(design, pop, job.rng(i))
        draws.append((d, *im.spectrum(d["Xtr"], d["ytr"])))
    s_ref = max(float(s.max()) for _, s, _, _ in draws)
    s_min_ref = min(_eig_pos(s) for _, s, _, _ in draws)
    out = []
    for frac in params["eta_fractions"]:
        job.progress(f"eta fraction {frac}")
        eta = frac / s_ref
        steps = np.unique(np.round(np.geomspace(1, params["late_factor"] / (eta * s_min_ref), params["n_steps"])).astype(np.int64))
        for i, (d, s, V, z) in enumerate(draws):
            X, y, beta_s, Sigma_s = d["Xtr"], d["ytr"], d["beta_s"], d["Sigma_s"]
            s_max, s_min = float(s.max()), _eig_pos(s)
            bt, M = V.T @ beta_s, V.T @ Sigma_s @ V
            lambdas = np.geomspace(1e-12 * min(1 / (eta * steps[-1]), s_min), 1e3 * max(1 / eta, s_max), params["n_lambdas"])
            df = im.gd_vs_ridge(X, y, eta, steps, beta_s, Sigma_s, lambdas=lambdas)
            # the claimed map lambda = 1/(eta T), in the eigenbasis
            A_gd = im.gd_filter(s, eta, steps) * z
            val_mse = _mse(d["Xva"], d["yva"], A_gd @ V.T)  # where early stopping on validation would stop
            lam_c = 1.0 / (eta * steps)
            A_c = z[None, :] / (s[None, :] + lam_c[:, None])
            rel_c = np.linalg.norm(A_gd - A_c, axis=1) / np.linalg.norm(A_gd, axis=1)
            D = A_c - bt
            risk_c = np.einsum("ij,jk,ik->i", D, M, D)
            A_b = z[None, :] / (s[None, :] + df["lambda_closest"].to_numpy()[:, None])
            Db = A_b - bt
            risk_b = np.einsum("ij,jk,ik->i", Db, M, Db)
            base = dict(experiment=name, seed=i, eta_fraction=frac, T=df["T"].to_numpy(), inv_eta_T=df["inv_eta_T"].to_numpy())
            for metric, v in (("lambda_closest", df["lambda_closest"]), ("ratio", df["ratio"]),
                              ("rel_distance", df["rel_distance"]), ("rel_distance_claimed", rel_c),
                              ("gd_risk", df["gd_risk"]), ("ridge_risk_claimed", risk_c), ("ridge_risk_closest", risk_b),
                              ("at_grid_edge", df["at_grid_edge"].astype(float)), ("val_mse", val_mse)):
                out.append(_rows(**base, metric=metric, value=np.asarray(v, dtype=float)))
            slopes = {"early": im.loglog_slope(df, ("early",)), "within": im.loglog_slope(df, ("within",)),
                      "early+within": im.loglog_slope(df, ("early", "within")), "all": im.loglog_slope(df, None)}
            out.append(_rows(experiment=name, seed=i, eta_fraction=frac, regime=list(slopes), metric="slope",
                             value=list(slopes.values())))
            best = im.best_risk_ratio(X, y, eta, beta_s, Sigma_s, n_T=params["risk_points"])
            vals = dict(best_risk_ratio=best["ratio"], gd_best_risk=best["gd_best_risk"], ridge_best_risk=best["ridge_best_risk"],
                        gd_best_inv_eta_T=best["gd_best_T_inv_eta"], ridge_best_lambda=best["ridge_best_lambda"],
                        s_min=s_min, s_max=s_max, eta=eta)
            out.append(_rows(experiment=name, seed=i, eta_fraction=frac, metric=list(vals), value=list(vals.values())))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- N10
def sgd_l2_decay(job) -> pd.DataFrame:
    """Max abs trajectory differences between SGD variants (regbench.optimizers.sgd_l2_vs_decay), per seed and lr.

    Metrics: l2_vs_weight_decay, l2_vs_decoupled, weight_decay_vs_decoupled,
    l2_vs_decoupled_after (decay after the step: differs by lr^2 lam grad),
    l2_no_half_vs_weight_decay (lam ||w||^2 in the loss vs weight_decay = lam: the
    lambda vs lambda/2 trap), max_abs_w (the weights' scale), and the
    first five divided by max_abs_w (suffix _rel).
    """
    params, name, design = job.params, job.experiment, job.design
    pop = data.truth(design)
    out = []
    for i in range(params["seeds"]):
        job.progress(f"seed {i + 1} of {params['seeds']}")
        d = _draw(design, pop, job.rng(i))
        for lr in params["lrs"]:
            res = opt.sgd_l2_vs_decay(d["Xtr"], d["ytr"], params["lam"], lr, params["steps"],
                                      seed=job.int_seed(i, lr), batch_size=params["batch_size"])
            scale = res["max_abs_w"]
            vals = dict(res)
            vals.update({f"{k}_rel": v / scale for k, v in res.items() if k != "max_abs_w"})
            out.append(_rows(experiment=name, seed=i, lr=lr, lam=params["lam"], metric=list(vals), value=list(vals.values())))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- N11
def adam_design(job, coef: str, i: int):
    """(X, y, beta, scales) of seed i: regbench.optimizers.scaled_design, truth as `coef` says."""
    params = job.params
    X, y, beta, scales = opt.scaled_design(params["n"], params["p"], params["scale_ratio"],
                                           job.int_seed(i), params["noise_sd"])
    if coef == "random":
        r = job.rng("random_beta", i)
        beta = r.standard_normal(params["p"])
        y = X @ beta + params["noise_sd"] * r.standard_normal(params["n"])
    return X, y, beta, scales


def adam_l2_decay(job) -> pd.DataFrame:
    """Per-parameter decay pull vs sqrt(v) under Adam+L2 and AdamW (regbench.optimizers.adam_shrinkage).

    Per-parameter rows (column feature = parameter index): sqrt_v, shrinkage (the
    decay's part of the last step / w), w, predicted, scale. Per (seed, coef,
    optimizer): slope and corr of log|shrinkage| on log sqrt_v, shrinkage_ratio,
    sqrt_v_ratio, and corr_absw_sqrtv (correlation of log|w| with log sqrt_v: the
    document's "large weights have large v"). Per seed (coef "fixed_gradients"):
    regbench.optimizers.adamw_decoupling, the moments AdamW and Adam+L2 keep under
    one fixed gradient sequence compared with Adam without decay.
    """
    params, name = job.params, job.experiment
    out = []
    for i in range(params["seeds"]):
        job.progress(f"seed {i + 1} of {params['seeds']}")
        for coef in params["coefs"]:
            X, y, beta, scales = adam_design(job, coef, i)
            df = opt.adam_shrinkage(X, y, params["lam"], params["lr"], params["steps"],
                                    seed=job.int_seed("batches", i), batch_size=params["batch_size"])
            for optimizer, g in df.groupby("optimizer", sort=False):
                for metric in ("sqrt_v", "shrinkage", "w", "predicted", "scale"):
                    out.append(_rows(experiment=name, seed=i, coef=coef, optimizer=optimizer, feature=g["param"].to_numpy(),
                                     metric=metric, value=g[metric].to_numpy(dtype=float)))
                lw, lv = np.log(np.abs(g["w"].to_numpy())), np.log(g["sqrt_v"].to_numpy())
                out.append(_rows(experiment=name, seed=i, coef=coef, optimizer=optimizer, metric=["corr_absw_sqrtv"],
                                 value=[float(np.corrcoef(lw, lv)[0, 1])]))
            sv = opt.shrinkage_vs_v(df)
            for r in sv.itertuples():
                out.append(_rows(experiment=name, seed=i, coef=coef, optimizer=r.optimizer,
                                 metric=["slope", "corr", "shrinkage_ratio", "sqrt_v_ratio"],
                                 value=[r.slope, r.corr, r.shrinkage_ratio, r.sqrt_v_ratio]))
        dec = opt.adamw_decoupling(params["p"], params["steps"], params["lam"], params["lr"],
                                   job.int_seed("decoupling", i))
        out.append(_rows(experiment=name, seed=i, coef="fixed_gradients", metric=list(dec), value=list(dec.values())))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- N15
def noise_vs_ridge(job) -> pd.DataFrame:
    """Least squares on K noisy copies of X (noise sd s) vs ridge at lambda = s^2 vs OLS, per n_train.

    Rows, method "noise": per (n_train, seed, noise_sd, copies) gap, rel_gap
    (||w_noise - w_ridge|| and / ||w_ridge||), excess_risk, val_mse. Method "ridge"
    (lambda = noise_sd^2): excess_risk, val_mse. Method "ols": excess_risk. Method
    "noise_tuned" / "ridge_tuned": the noise sd (lambda = sd^2) chosen on validation
    among noise_sds, noise with the largest number of copies: excess_risk, noise_sd.
    """
    params, name, base_design = job.params, job.experiment, job.design
    copies = sorted(set(params["copies"]))
    K_max = copies[-1]
    out = []
    for n_train in params["n_train"]:
        job.progress(f"n_train {n_train}")
        design = apply_overrides(base_design, {"n_train": n_train})
        pop = data.truth(design)
        for i in range(params["seeds"]):
            d = _draw(design, pop, job.rng(n_train, i))
            X, y, Xva, yva, b, S = d["Xtr"], d["ytr"], d["Xva"], d["yva"], d["beta_s"], d["Sigma_s"]
            w_ols = linear.ols(X, y)
            base = dict(experiment=name, n_train=n_train, seed=i)
            out.append(_rows(**base, method="ols", metric=["excess_risk", "val_mse"],
                             value=[excess_risk(w_ols, b, S), _mse(Xva, yva, w_ols)]))
            n, p = X.shape
            rng = seeds.rng(job.int_seed("noise", n_train, i), "implicit", "noise_injection", n, p)
            sds = list(params["noise_sds"])
            noisy = im.noise_fit_path(X, y, sds, copies, rng)
            best = {"noise": (np.inf, None, None), "ridge": (np.inf, None, None)}
            for j, sd in enumerate(sds):
                w_r = linear.ridge_path(X, y, [sd ** 2])[0]
                val_r = _mse(Xva, yva, w_r)
                out.append(_rows(**base, method="ridge", noise_sd=sd, metric=["excess_risk", "val_mse"],
                                 value=[excess_risk(w_r, b, S), val_r]))
                if val_r < best["ridge"][0]:
                    best["ridge"] = (val_r, sd, w_r)
                norm_r = float(np.linalg.norm(w_r))
                for K in copies:
                    w = noisy[K][j]
                    gap = float(np.linalg.norm(w - w_r))
                    val = _mse(Xva, yva, w)
                    out.append(_rows(**base, method="noise", noise_sd=sd, copies=K,
                                     metric=["gap", "rel_gap", "excess_risk", "val_mse"],
                                     value=[gap, gap / norm_r, excess_risk(w, b, S), val]))
                    if K == K_max and val < best["noise"][0]:
                        best["noise"] = (val, sd, w)
            for method, (_, sd, w) in best.items():
                out.append(_rows(**base, method=f"{method}_tuned", copies=K_max if method == "noise" else np.nan,
                                 metric=["excess_risk", "noise_sd"], value=[excess_risk(w, b, S), sd]))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------- N16
def _fit_techniques(d: dict, params: dict, rng) -> tuple[dict, dict]:
    """Every technique tuned on the validation split: {technique: w (standardized scale)}, {technique: chosen strength}."""
    X, y, Xva, yva = d["Xtr"], d["ytr"], d["Xva"], d["yva"]
    n_l = params["n_lambdas"]
    fits, chosen = {"ols": linear.ols(X, y)}, {"ols": 0.0}

    def pick(tech, W, strengths):
        j = int(np.argmin(_mse(Xva, yva, W)))
        fits[tech], chosen[tech] = W[j], float(strengths[j])
        return j

    lmax = linear.lambda_max(X, y, 1.0)
    techniques = params["techniques"]
    if "ridge" in techniques:
        lams = np.geomspace(10 * lmax, 1e-4 * lmax, n_l)
        pick("ridge", linear.ridge_path(X, y, lams), lams)
    for tech, a in (("lasso", 1.0), ("enet", params["l1_ratio"])):
        if tech in techniques:
            lams = linear.lambda_grid(X, y, a, n_l, eps=1e-2)
            pick(tech, linear.enet_path(X, y, lams, a, tol=1e-8, kkt_tol=1e-6), lams)
    if "early_stopping" in techniques:
        s, V, z = im.spectrum(X, y)
        eta = params["eta_fraction"] / s.max()
        steps = np.unique(np.round(np.geomspace(1, 30 / (eta * _eig_pos(s)), 3 * n_l)).astype(np.int64))
        W = (im.gd_filter(s, eta, steps) * z) @ V.T
        j = pick("early_stopping", W, steps)
        f = params["stop_factor"]
        extra = np.array([max(1, int(round(steps[j] / f))), int(round(steps[j] * f))])
        We = (im.gd_filter(s, eta, extra) * z) @ V.T
        fits["early_stopping_early"], chosen["early_stopping_early"] = We[0], float(extra[0])
        fits["early_stopping_late"], chosen["early_stopping_late"] = We[1], float(extra[1])
    if "noise_injection" in techniques:
        sds = np.geomspace(0.05, 3.0, n_l)
        pick("noise_injection", im.noise_fit_path(X, y, sds, [params["noise_copies"]], rng)[params["noise_copies"]], sds)
    if "dropout" in techniques:
        rates = np.asarray(params["dropout_rates"], dtype=float)
        pick("dropout", im.dropout_fit_path(X, y, rates, params["dropout_copies"], rng), rates)
    return fits, chosen


def bias_variance(job) -> pd.DataFrame:
    """Bias^2 and variance of each technique's predictions over `datasets` training sets, per replicate (seed).

    Each replicate draws n_points test inputs from the design's population and
    `datasets` training (and validation) sets; every technique is tuned on each
    set's validation split and predicts f_hat(x) = ybar + ((x - mu) / sd)' w at the
    test inputs; the truth is f(x) = x' beta. Rows per (seed, technique): bias2,
    variance, risk (see bias_variance_decomposition) and strength (mean chosen
    lambda / noise sd / T / dropout rate). Techniques early_stopping_early / _late
    are GD stopped at T*/stop_factor and T* x stop_factor.
    """
    params, name = job.params, job.experiment
    design = apply_overrides(job.design, {"n_test": 2})
    pop = data.truth(design)
    vals, vecs = np.linalg.eigh(pop["Sigma"])
    root_sigma = vecs * np.sqrt(np.clip(vals, 0, None))
    out = []
    for r in range(params["seeds"]):
        job.progress(f"replicate {r + 1} of {params['seeds']}")
        pts = job.rng("points", r).standard_normal((params["n_points"], design["p"])) @ root_sigma.T
        f = pts @ pop["beta"]
        preds, strengths = {}, {}
        for m in range(params["datasets"]):
            d = _draw(design, pop, job.rng(r, m))
            fits, chosen = _fit_techniques(d, params, job.rng("fit", r, m))
            Xq = (pts - d["mu"]) / d["sd"]
            for tech, w in fits.items():
                preds.setdefault(tech, []).append(d["ybar"] + Xq @ w)
                strengths.setdefault(tech, []).append(chosen[tech])
        for tech, P in preds.items():
            bv = im.bias_variance_decomposition(np.stack(P), f)
            bv["strength"] = float(np.mean(strengths[tech]))
            out.append(_rows(experiment=name, seed=r, technique=tech, metric=list(bv), value=list(bv.values())))
    return pd.concat(out, ignore_index=True)


RUNNERS = {f.__name__: f for f in (gd_vs_ridge, sgd_l2_decay, adam_l2_decay, noise_vs_ridge, bias_variance)}
