"""Batched layer primitives: a Linear for K models whose products use the fast orientation.

On one CPU thread, MKL's batched GEMM is 3-7x slower when the right-hand
matrix is narrow (e.g. the 10-class output layer: [64 x 128] @ [128 x 10]),
while the transposed product (W^T a^T)^T runs at full speed. autograd's
own bmm backward cannot choose, so the Linear has its own backward that
picks, for the forward and both gradients, the orientation whose result has
at least as many columns as rows.
"""
import torch


def bmm(x: torch.Tensor, y: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """x @ y (+ bias broadcast over rows) for [K, m, k] @ [K, k, n], as [K, m, n] (maybe a view)."""
    if y.shape[2] < x.shape[1]:
        xt, yt = x.transpose(1, 2), y.transpose(1, 2)
        out = torch.bmm(yt, xt) if bias is None else torch.baddbmm(bias[:, :, None], yt, xt)
        return out.transpose(1, 2)
    return torch.bmm(x, y) if bias is None else torch.baddbmm(bias[:, None, :], x, y)


class BatchedLinear(torch.autograd.Function):
    """h[b, k] = a[b, k] @ w[k] + bias[k]: a [b, K, in], w [K, in, out], bias [K, out] or None."""

    @staticmethod
    def forward(ctx, a, w, bias):
        ctx.save_for_backward(a, w)
        ctx.has_bias = bias is not None
        return bmm(a.transpose(0, 1), w, bias).transpose(0, 1)

    @staticmethod
    def backward(ctx, g):
        a, w = ctx.saved_tensors
        gt = g.transpose(0, 1)  # [K, b, out]
        grad_a = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = bmm(gt, w.transpose(1, 2)).transpose(0, 1)
        if ctx.needs_input_grad[1]:
            # Contiguous, like the parameter: the fused optimizer kernels need it.
            grad_w = bmm(a.transpose(0, 1).transpose(1, 2), gt).contiguous()
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = gt.sum(1)
        return grad_a, grad_w, grad_b


def linear(a: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Batched Linear on sample-major a: [b, in] (shared by all models) or [b, K, in] -> [b, K, out]."""
    if a.dim() == 2:
        # Shared input (evaluation): one GEMM against all K weight matrices side by side.
        K, n_in, n_out = w.shape
        h = (a @ w.transpose(0, 1).reshape(n_in, K * n_out)).view(a.shape[0], K, n_out)
        return h if bias is None else h + bias
    return BatchedLinear.apply(a, w, bias)
