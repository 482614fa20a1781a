"""Time the lasso and ridge path jobs of regbench against scikit-learn as users call it.

Job: 50 datasets (factors design: 10 blocks of 10 features, within-block
correlation 0.8, one true feature per block; n=500, p=100) x 100 lambdas
(regbench.linear.lambda_grid, eps 1e-3), one thread, one process.

    python benchmarks/bench_linear.py [--tol 1e-12] [--seeds 50] [--repeat 3]

Prints a markdown table: best-of-`repeat` time per engine, its speed-up over
the baseline row, and the worst relative objective gap to the best engine over
every (dataset, lambda), and the worst KKT violation (regbench.linear.kkt_violation;
LARS shows ~1e-18 rounding residue where the exact answer is 0.0). Baselines: sklearn `enet_path` looped over datasets
with default arguments (lasso), and 100 sklearn `Ridge` fits per dataset (ridge).
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import Ridge, lars_path  # noqa: E402
from sklearn.linear_model import enet_path as sk_enet_path  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from regbench import data  # noqa: E402
from regbench import linear as L  # noqa: E402

DESIGN = dict(
    n_train=500, n_val=1, n_test=1, p=100,
    covariance=dict(family="factors", n_groups=10, group_size=10, noise_sd=0.5),  # corr 1/(1+0.25)
    coef=dict(values=[1.0 if j % 10 == 0 else 0.0 for j in range(100)]),
    noise=dict(snr=2.0),
)


def datasets(seeds):
    d = data.generate(DESIGN, "bench_linear", seeds, root=0)
    out = []
    for X, y in zip(d["X_train"], d["y_train"]):
        (X,), (y,) = L.standardize(X), L.center(y)
        out.append((X, y, L.lambda_grid(X, y, 1.0, n_lambdas=100)))
    return out


def lars_on_grid(X, y, lams):
    """Exact lasso path by LARS, linearly interpolated (in lam) to the grid."""
    alphas, _, coefs = lars_path(X, y, method="lasso")  # alphas = max|X^T r|/n = our lam
    return np.stack([np.interp(-lams, -alphas, c) for c in coefs], axis=1)


def lasso_engines(tol):
    return {
        "sklearn `enet_path`, default args (precompute='auto': Gram, as n > p)":
            lambda X, y, lams: sk_enet_path(X, y, l1_ratio=1.0, alphas=lams, tol=tol)[1].T,
        "sklearn `enet_path`, precompute=False (no Gram)":
            lambda X, y, lams: sk_enet_path(X, y, l1_ratio=1.0, alphas=lams, tol=tol, precompute=False)[1].T,
        "regbench `enet_path` (Gram, KKT polish to 1e-10)":
            lambda X, y, lams: L.enet_path(X, y, lams, 1.0, tol=tol),
        "sklearn `lars_path` (lasso, exact, interpolated to the grid)": lars_on_grid,
    }


def ridge_engines():
    def sk_ridge(X, y, lams):  # Ridge: ||y - Xw||^2 + alpha ||w||^2, so alpha = n * lam
        return np.stack([Ridge(alpha=len(y) * lam, fit_intercept=False).fit(X, y).coef_ for lam in lams])

    def solves(X, y, lams):
        n, p = X.shape
        G, b = X.T @ X / n, X.T @ y / n
        return np.stack([np.linalg.solve(G + lam * np.eye(p), b) for lam in lams])

    return {
        "sklearn `Ridge`, one fit per lambda": sk_ridge,
        "`np.linalg.solve` per lambda": solves,
        "regbench `ridge_path` (one eigh)": L.ridge_path,
    }


def run(engines, jobs, a, repeat):
    """Engines interleaved within each repeat, so background load hits all alike."""
    times, paths = {name: np.inf for name in engines}, {}
    for _ in range(repeat):
        for name, fit in engines.items():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                paths[name] = [fit(X, y, lams) for X, y, lams in jobs]
            times[name] = min(times[name], time.perf_counter() - t0)
    rows = {}
    for name, Ws in paths.items():
        f = np.stack([L.objective(X, y, W, lams, a) for (X, y, lams), W in zip(jobs, Ws)])
        kkt = max(L.kkt_violation(X, y, W, lams, a).max() for (X, y, lams), W in zip(jobs, Ws))
        rows[name] = (times[name], f, kkt)
    f_best = np.min([f for _, f, _ in rows.values()], axis=0)
    base = next(iter(rows.values()))[0]
    lines = ["| engine | time (s) | speed-up vs baseline | max rel. objective gap | max KKT violation |",
             "|---|---|---|---|---|"]
    for name, (t, f, kkt) in rows.items():
        gap = np.max((f - f_best) / f_best)
        lines.append(f"| {name} | {t:.3f} | {base / t:.2f} | {gap:.1e} | {kkt:.1e} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tol", type=float, default=1e-12, help="coordinate-descent tol (sklearn's), all CD engines")
    ap.add_argument("--seeds", type=int, default=50, help="number of datasets")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats; the best is reported")
    args = ap.parse_args()
    with threadpool_limits(1):
        jobs = datasets(args.seeds)
        print(f"regbench linear benchmark: {args.seeds} datasets x 100 lambdas, n=500, p=100, "
              f"block correlation 0.8, tol={args.tol:g}, 1 thread, best of {args.repeat}; "
              f"numpy {np.__version__}, scikit-learn {sklearn.__version__}\n")
        print("Lasso path (baseline: first row)\n")
        print(run(lasso_engines(args.tol), jobs, 1.0, args.repeat))
        print("\nRidge path (baseline: first row)\n")
        print(run(ridge_engines(), jobs, 0.0, args.repeat))


if __name__ == "__main__":
    main()
