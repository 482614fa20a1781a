"""Model-epochs per second: the batched engine vs a naive loop over K nn.Modules, and vs
the peer a user would reach for first, torch.func ensembling (stack_module_state + vmap
of grad(functional_call), randomness "different", batch norm on batch statistics only).

Workload (DESIGN.md): MLP 100-128-128-10 with batch norm and dropout 0.3
after each hidden block, AdamW (lr 1e-3, weight decay 1e-2), n = 2000
training rows, mini-batch 64, cross-entropy. Both sides train only (no
evaluation), in this process, on --threads threads (default 1). The naive
side is what one would write by hand: K nn.Sequential models, each with its
own torch.optim.AdamW (default settings) and its own torch.randperm order.
It runs fewer epochs at large K so the benchmark stays quick; its rate does
not depend on K. Each figure is the best of --repeats runs, interleaved
(other processes on a shared machine only ever slow a run down). Rates are
given per wall-clock second and per CPU second of this process (the latter
is less disturbed when other jobs share the cores).

    python benchmarks/bench_engine.py [--device cpu|cuda|auto] [--ks 1 8 32 128] [--naive-max-k 32]

--naive-max-k N times the naive loop only up to K = N (its rate does not depend on K;
at K = 1024 it would take minutes) and reuses the rate of the largest K timed, marked *.
"""
import argparse
import platform
import time

import torch
import torch.nn.functional as F
from torch import nn

from regbench.device import resolve_device
from regbench.nets import MLPSpec, OptimSpec, train

N, D_IN, HIDDEN, C, BATCH, P = 2000, 100, (128, 128), 10, 64, 0.3


def workload(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D_IN, generator=g)
    y = (x @ torch.randn(D_IN, C, generator=g)).argmax(1)
    return x.to(device), y.to(device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Clock:
    """Wall and process CPU time of a block (CUDA synchronized)."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        sync(self.device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        sync(self.device)
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def naive(K, epochs, x, y, device):
    """K ordinary modules and optimizers, trained one after the other."""
    models, opts = [], []
    for k in range(K):
        torch.manual_seed(k)
        m = nn.Sequential(nn.Linear(D_IN, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(P),
                          nn.Linear(128, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(P),
                          nn.Linear(128, C)).to(device)
        models.append(m)
        opts.append(torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=1e-2))
    with Clock(device) as clock:
        for _ in range(epochs):
            for m, opt in zip(models, opts):
                m.train()
                perm = torch.randperm(N, device=device)
                for s in range(0, N, BATCH):
                    i = perm[s:s + BATCH]
                    loss = F.cross_entropy(m(x[i]), y[i])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
    return K * epochs / clock.wall, K * epochs / clock.cpu


def _module():
    # batch norm without running statistics: vmap cannot update buffers in place
    return nn.Sequential(nn.Linear(D_IN, 128, bias=False), nn.BatchNorm1d(128, track_running_stats=False), nn.ReLU(),
                         nn.Dropout(P), nn.Linear(128, 128, bias=False), nn.BatchNorm1d(128, track_running_stats=False),
                         nn.ReLU(), nn.Dropout(P), nn.Linear(128, C))


def vmapped(K, epochs, x, y, device, lr=1e-3, wd=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    """K models as one stack of parameters, gradients by vmap(grad(functional_call)), AdamW by hand on the stack."""
    from torch.func import functional_call, grad, stack_module_state, vmap
    models = []
    for k in range(K):
        torch.manual_seed(k)
        models.append(_module().to(device).train())
    params, _ = stack_module_state(models)
    base = _module().to("meta").train()

    def loss(p, xb, yb):
        return F.cross_entropy(functional_call(base, p, (xb,)), yb)

    g = vmap(grad(loss), in_dims=(0, 0, 0), randomness="different")
    m = {k: torch.zeros_like(v) for k, v in params.items()}
    v2 = {k: torch.zeros_like(v) for k, v in params.items()}
    step = 0
    with Clock(device) as clock:
        for _ in range(epochs):
            perm = torch.stack([torch.randperm(N, device=device) for _ in range(K)])  # each model its own order
            for s in range(0, N, BATCH):
                i = perm[:, s:s + BATCH]
                grads = g(params, x[i], y[i])
                step += 1
                with torch.no_grad():
                    for k, w in params.items():
                        m[k].mul_(b1).add_(grads[k], alpha=1 - b1)
                        v2[k].mul_(b2).addcmul_(grads[k], grads[k], value=1 - b2)
                        w.mul_(1 - lr * wd).addcdiv_(m[k] / (1 - b1 ** step), (v2[k] / (1 - b2 ** step)).sqrt_().add_(eps),
                                                    value=-lr)
    return K * epochs / clock.wall, K * epochs / clock.cpu


def batched(K, epochs, x, y, device):
    spec = MLPSpec(D_IN, C, HIDDEN, norm="batch", p_hidden=P)
    opt = OptimSpec("adamw", lr=1e-3, weight_decay=1e-2)
    with Clock(device) as clock:
        train(spec, opt, range(K), {"train": (x, y)}, epochs=epochs, batch_size=BATCH, device=device, eval_every=0)
    return K * epochs / clock.wall, K * epochs / clock.cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--ks", type=int, nargs="+", default=[1, 8, 32, 128])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--naive-max-k", type=int, default=None,
                    help="time the naive loop only up to this K; larger K reuse its rate (marked *)")
    ap.add_argument("--model-epochs", type=int, default=64,
                    help="about this many model-epochs per timed run (at least 1 epoch; batched at least 2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    x, y = workload(device)
    batched(2, 1, x, y, device)  # warm-up: allocator, BLAS, kernel caches
    naive(1, 1, x, y, device)
    vmapped(2, 1, x, y, device)
    rows, last_naive = [], None
    for K in args.ks:
        timed = args.naive_max_k is None or K <= args.naive_max_k or last_naive is None
        ep_naive = max(1, args.model_epochs // (2 * K)) if timed else "*"
        ep_batched = max(2, args.model_epochs // K)
        n_runs, b_runs, v_runs = [], [], []
        for _ in range(args.repeats):  # interleaved, so load changes hit every side alike
            if timed:
                n_runs.append(naive(K, ep_naive, x, y, device))
            b_runs.append(batched(K, ep_batched, x, y, device))
            v_runs.append(vmapped(K, ep_batched, x, y, device))
        best_b, best_v = ([max(r[i] for r in runs) for i in (0, 1)] for runs in (b_runs, v_runs))
        best_n = [max(r[i] for r in n_runs) for i in (0, 1)] if timed else last_naive
        last_naive = best_n
        rows.append((K, best_n, best_b, best_v, ep_naive, ep_batched))
        print(f"K={K}: naive {best_n[0]:.1f}{'' if timed else '*'}, batched {best_b[0]:.1f}, "
              f"torch.func {best_v[0]:.1f} model-epochs/s (wall); "
              f"per CPU-s {best_n[1]:.1f}, {best_b[1]:.1f}, {best_v[1]:.1f}", flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"\ndevice: {device} ({name}), torch {torch.__version__}, threads {args.threads}, "
          f"best of {args.repeats}\n")
    print("| K models | naive loop | batched engine | torch.func vmap | engine / naive | engine / vmap "
          "| per CPU-second: engine / naive | engine / vmap | epochs timed (naive / batched, vmap) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for K, n_, b_, v_, en, eb in rows:
        print(f"| {K} | {n_[0]:.1f} | {b_[0]:.1f} | {v_[0]:.1f} | {b_[0] / n_[0]:.2f}x | {b_[0] / v_[0]:.2f}x "
              f"| {b_[1] / n_[1]:.2f}x | {b_[1] / v_[1]:.2f}x | {en} / {eb} |")
    print("\n(model-epochs per second; the first three columns per wall-clock second; "
          "* naive rate reused from the largest K timed)")


if __name__ == "__main__":
    main()
