"""Equivalence on one device, in float32: K models trained together = each trained alone
= the plain torch.nn reference (MLP engine and batched CNN); the same run twice is the same
bit for bit; and, on a device other than the CPU, how far it lands from the CPU.

    python benchmarks/equivalence.py --device cuda [--rows FILE]

One row per check (check, device, measured, tolerance, ok), printed and, with --rows,
appended to FILE as tab-separated values (benchmarks/device_check.sh tabulates them).
Exit status 1 when a check with a tolerance fails; cross-device rows only report.

Tolerances (float32, stated once here):
- ENGINE_ATOL 1e-4, absolute, on every parameter and BN buffer after 3 epochs of AdamW
  (lr 1e-3): the engine's batched matmuls and the reference's plain ones round
  differently (float32 eps 1.2e-7, weights O(0.1-1)), and Adam's normalized step can
  turn a rounding-level gradient difference into up to lr / 10 on a near-zero gradient.
- CNN_ATOL 1e-5 + CNN_RTOL 1e-5 (torch.testing defaults for float32 are 1e-5 / 1.3e-6)
  on logits and on parameters after 4 AdamW steps; conv reductions differ in order.
TF32 is switched off for these checks (torch's default leaves cuDNN convolutions in
TF32, about 1e-3 relative): they test the engine's arithmetic, not TF32's. The
cross-device rows use torch's defaults, as the workflow does.
"""
import argparse
import math
import sys

import torch
import torch.nn.functional as F

from regbench import cnn
from regbench.device import resolve_device
from regbench.nets import MLPSpec, OptimSpec, generator, reference_mlp, train

ENGINE_ATOL = 1e-4
CNN_ATOL, CNN_RTOL = 1e-5, 1e-5
SEEDS = [11, 3, 250, 7]
SPEC = MLPSpec(20, 4, (32, 32), norm="batch", p_input=0.1, p_hidden=0.3)
OPT = OptimSpec("adamw", lr=1e-3, weight_decay=1e-2)
EPOCHS, BATCH = 3, 16


def data(n=100, d=20, c=4, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return x.to(device), (x @ torch.randn(d, c, generator=g)).argmax(1).to(device)


def max_diff(a: dict, b: dict) -> float:
    """Largest absolute difference over the float tensors two state dicts share."""
    return max(float((a[k].double().cpu() - b[k].double().cpu()).abs().max()) for k in a if a[k].is_floating_point())


# --- MLP engine ---------------------------------------------------------------

def keep_mask(gen, n, width, p, device):
    """The engine's documented dropout draw (regbench.nets.streams) for one model and site, on `device`."""
    u = torch.empty(math.ceil(n * width / 2), dtype=torch.int64, device=device).random_(generator=gen)
    v = (u.view(torch.int32)[:n * width] & 0x7FFFFFFF).view(n, width)
    return v < math.floor((1 - p) * 2**31)


def reference_run(seed, x, y, device):
    """One nn.Sequential trained by torch.optim.AdamW with the engine's data order and masks."""
    net = reference_mlp(SPEC, seed).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=OPT.lr, weight_decay=OPT.weight_decay, foreach=False)
    drops = [m for m in net if isinstance(m, torch.nn.Dropout)]
    widths = [SPEC.d_in, *SPEC.hidden]
    sg, dg = generator(seed, "shuffle"), generator(seed, "dropout", device)
    n = x.shape[0]
    masks = {}

    def fed(m, inputs):  # nn.Dropout replaced by the fed mask, inverted scaling
        return inputs[0] * masks[m] / (1 - m.p) if net.training else inputs[0]

    for m in drops:
        m.register_forward_hook(lambda mod, inp, out: fed(mod, inp))
    for _ in range(EPOCHS):
        perm = torch.randperm(n, generator=sg).to(device)
        full = {m: keep_mask(dg, n, w, m.p, device) for m, w in zip(drops, widths)}
        net.train()
        for s in range(0, n, BATCH):
            i = perm[s:s + BATCH]
            masks.update({m: mk[s:s + BATCH] for m, mk in full.items()})
            loss = F.cross_entropy(net(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def engine_rows(device):
    x, y = data(device=device)
    kw = dict(epochs=EPOCHS, batch_size=BATCH, device=device, eval_every=0)
    together = train(SPEC, OPT, SEEDS, {"train": (x, y)}, **kw)[1]
    again = train(SPEC, OPT, SEEDS, {"train": (x, y)}, **kw)[1]
    alone = [train(SPEC, OPT, [s], {"train": (x, y)}, **kw)[1] for s in SEEDS]
    refs = [reference_run(s, x, y, device) for s in SEEDS]
    d_alone = max(max_diff(together.to_reference(k).state_dict(), a.to_reference(0).state_dict())
                  for k, a in enumerate(alone))
    d_ref = max(max_diff(together.to_reference(k).state_dict(), r.state_dict()) for k, r in enumerate(refs))
    d_rep = max_diff(together.state_dict(), again.state_dict())
    return [("engine: K together vs each alone", d_alone, ENGINE_ATOL),
            ("engine: K together vs torch.nn + torch.optim", d_ref, ENGINE_ATOL),
            ("engine: same run twice (bit for bit)", d_rep, 0.0)]


# --- batched CNN ----------------------------------------------------------------

def cnn_rows(device, size=12, widths=(8, 16), classes=5, steps=4):
    g = torch.Generator().manual_seed(1)
    xs = [torch.rand(len(SEEDS), 16, 1, size, size, generator=g).to(device) for _ in range(steps)]
    ys = [torch.randint(0, classes, (len(SEEDS), 16), generator=g).to(device) for _ in range(steps)]

    def batched(seeds, pick):
        m = cnn.BatchedCNN(seeds, 1, size, classes, widths, device=device)
        opt = cnn.BatchedAdamW(list(m.named().values()), 1e-2, torch.tensor(0.01))
        first = m(xs[0][pick]).detach()
        for x, y in zip(xs, ys):
            opt.zero_grad()
            cnn.soft_cross_entropy(m(x[pick]), y[pick]).sum().backward()
            opt.step()
        return first, {k: v.detach() for k, v in m.named().items()}

    def reference(k):
        r = cnn.SmallCNN(1, size, classes, widths, seed=SEEDS[k]).to(device)
        opt = torch.optim.AdamW(r.parameters(), 1e-2, weight_decay=0.01, foreach=False)
        first = r(xs[0][k]).detach()
        for x, y in zip(xs, ys):
            opt.zero_grad()
            F.cross_entropy(r(x[k]), y[k]).backward()
            opt.step()
        return first, {name: r.get_parameter(name).detach() for name in cnn.BatchedCNN([0], 1, size, classes, widths).named()}

    def gap(a, b):  # largest |a - b| beyond the rtol part of the tolerance, as assert_close measures
        return max(0.0, float(((a - b).abs() - CNN_RTOL * b.abs()).max()))

    out, params = batched(SEEDS, slice(None))
    d_alone = d_ref = 0.0
    for k in range(len(SEEDS)):
        out_a, params_a = batched([SEEDS[k]], [k])
        out_r, params_r = reference(k)
        d_alone = max(d_alone, gap(out[k], out_a[0]), *(gap(params[n][k], params_a[n][0]) for n in params))
        d_ref = max(d_ref, gap(out[k], out_r), *(gap(params[n][k], params_r[n]) for n in params))
    _, again = batched(SEEDS, slice(None))
    d_rep = max(float((params[n] - again[n]).abs().max()) for n in params)
    return [("cnn: K together vs each alone (atol + rtol x ref)", d_alone, CNN_ATOL),
            ("cnn: K together vs torch.nn + torch.optim (atol + rtol x ref)", d_ref, CNN_ATOL),
            ("cnn: same run twice (bit for bit)", d_rep, 0.0)]


# --- this device vs the CPU (reported, no tolerance) -------------------------------

def cross_device_rows(device):
    rows = []
    # Dropout masks: the generator lives on the device, so masks are a different draw.
    a = keep_mask(generator(11, "dropout", "cpu"), 1000, 64, 0.3, "cpu")
    b = keep_mask(generator(11, "dropout", device), 1000, 64, 0.3, device).cpu()
    rows.append(("vs cpu: dropout keep-masks that differ (share)", float((a != b).double().mean()), None))
    # Reductions: the same run without dropout (same init, same data order).
    spec = MLPSpec(20, 4, (32, 32), norm="batch")
    runs = {}
    for dev in ("cpu", device):
        x, y = data(device=dev)
        runs[dev] = train(spec, OPT, SEEDS, {"train": (x, y)}, epochs=EPOCHS, batch_size=BATCH, device=dev,
                          eval_every=0)[1].state_dict()
    rows.append(("vs cpu: engine parameters, dropout off (max abs)", max_diff(runs["cpu"], runs[device]), None))
    m_cpu = cnn.BatchedCNN(SEEDS, 1, 12, 5, (8, 16))
    m_dev = cnn.BatchedCNN(SEEDS, 1, 12, 5, (8, 16), device=device)
    x = torch.rand(len(SEEDS), 64, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        d = float((m_cpu(x) - m_dev(x.to(device)).cpu()).abs().max())
    rows.append(("vs cpu: cnn logits, torch default TF32 settings (max abs)", d, None))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto")
    ap.add_argument("--rows", help="append the rows to this file (tab-separated)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    device = resolve_device(args.device)
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    rows = engine_rows(device) + cnn_rows(device)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    if device.type != "cpu":
        rows += cross_device_rows(device)
    failed = 0
    lines = []
    for check, value, tol in rows:
        ok = "-" if tol is None else ("yes" if value <= tol else "NO")
        failed += ok == "NO"
        tol_text = "reported" if tol is None else f"<= {tol:g}"
        lines.append(f"{check}\t{device.type}\t{value:.3g}\t{tol_text}\t{ok}")
        print(f"{check:62s} {device.type:5s} {value:10.3g}  {tol_text:9s} {ok}", flush=True)
    if args.rows:
        with open(args.rows, "a") as f:
            f.write("".join(line + "\n" for line in lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
