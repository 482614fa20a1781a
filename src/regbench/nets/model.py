"""K MLPs of one architecture as one module: every tensor has a leading model dimension.

Inside, activations are sample-major, [batch, K, features]. A Linear is one
bmm of the input (viewed [K, batch, in]) with the weight [K, in, out]
(stored as the transpose of nn.Linear's [out, in], so that its gradient
comes out contiguous, as the fused optimizer kernels need), and a [batch, K, width]
activation viewed as [batch, K*width] is a plain 2-D batch-norm input with
one channel per (model, feature): torch's fused batch_norm kernel, its
backward and its running-stat update then serve all models at once, with
no Python loop over models. (The feature-major alternative, [1, K*width,
batch], hits a slower kernel: about 5x here on one thread.)
"""
import torch
import torch.nn.functional as F
from torch import nn

from regbench.nets.reference import init_linear_, reference_mlp
from regbench.device import resolve_device
from regbench.nets.spec import MLPSpec
from regbench.nets import layers, streams

_ACTS = {"relu": torch.relu, "tanh": torch.tanh, "gelu": F.gelu}


class BatchedMLP(nn.Module):
    """K independent MLPs of architecture `spec`, model k initialized from seeds[k].

    Parameters: weight{i} [K, in, out] (nn.Linear's weight transposed),
    bias{i} [K, out] (absent where the Linear feeds batch norm),
    norm_weight{i}, norm_bias{i} [K, width];
    buffers running_mean{i}, running_var{i} [K, width] for (ghost) batch norm.
    Inputs x are [n, d_in] (shared by all models) or [K, n, d_in];
    outputs are [K, n, d_out]. `run` is the internal sample-major pass.
    """

    def __init__(self, spec: MLPSpec, seeds, *, device="cpu", dtype=torch.float32):
        super().__init__()
        self.spec = spec
        self.seeds = [int(s) for s in seeds]
        self.K = K = len(self.seeds)
        dev = resolve_device(device)
        kw = dict(device=dev, dtype=dtype)
        # Inverted-dropout factors 1 / (1 - p) per model, [K, 1]; they follow the
        # spec, not the state dict (like nn.Dropout's p).
        for name in ("p_input", "p_hidden"):
            scale = [[1 / (1 - p)] for p in spec.rates(name, K)]
            self.register_buffer(f"scale_{name[2:]}", torch.tensor(scale, **kw), persistent=False)
        n_lin = len(spec.sizes)
        for i, (fan_in, fan_out) in enumerate(spec.sizes):
            has_bias = spec.hidden_bias or i == n_lin - 1
            self.register_parameter(f"weight{i}", nn.Parameter(torch.empty(K, fan_in, fan_out, **kw)))
            self.register_parameter(f"bias{i}", nn.Parameter(torch.empty(K, fan_out, **kw)) if has_bias else None)
        for i, width in enumerate(spec.hidden):
            if spec.norm != "none":
                self.register_parameter(f"norm_weight{i}", nn.Parameter(torch.ones(K, width, **kw)))
                self.register_parameter(f"norm_bias{i}", nn.Parameter(torch.zeros(K, width, **kw)))
            if spec.batch_norm:
                self.register_buffer(f"running_mean{i}", torch.zeros(K, width, **kw))
                self.register_buffer(f"running_var{i}", torch.ones(K, width, **kw))
        # Cumulative-average counters used only by recalibrate_bn.
        self._bn_calls = None
        with torch.no_grad():
            for k, seed in enumerate(self.seeds):
                # Drawn on CPU in float32 and [out, in] order, as nn.Linear does:
                # the same init on every device and in every dtype.
                gen = streams.generator(seed, "init")
                for i in range(n_lin):
                    fan_in, fan_out = spec.sizes[i]
                    w = torch.empty(fan_out, fan_in)
                    b = self.bias(i)
                    bk = None if b is None else torch.empty(fan_out)
                    init_linear_(w, bk, gen)
                    self.weight(i)[k].copy_(w.T)
                    if b is not None:
                        b[k].copy_(bk)

    # --- accessors ----------------------------------------------------------

    def weight(self, i):
        return getattr(self, f"weight{i}")

    def bias(self, i):
        return getattr(self, f"bias{i}")

    @property
    def device(self):
        return self.weight0.device

    @property
    def dtype(self):
        return self.weight0.dtype

    def decay_mask(self) -> list:
        """For each parameter (in .parameters() order): is it a Linear weight?"""
        return [name.startswith("weight") for name, _ in self.named_parameters()]

    def dropout_sites(self) -> list:
        """(width, per-model keep probabilities) of each dropout site, input first."""
        # From the spec's Python floats, not the buffers: the mask stream must not depend on dtype.
        keep_in = [1 - p for p in self.spec.rates("p_input", self.K)]
        keep_hid = [1 - p for p in self.spec.rates("p_hidden", self.K)]
        return [(self.spec.d_in, keep_in)] + [(w, keep_hid) for w in self.spec.hidden]

    def draw_masks(self, gens, n: int) -> list:
        """Keep-masks [n, K, width] (or None) for every dropout site, from per-model generators."""
        return [streams.draw_masks(gens, keeps, w, n, self.device) for w, keeps in self.dropout_sites()]

    # --- the forward pass -----------------------------------------------------

    @staticmethod
    def _drop(a, mask, scale):
        if mask is None:
            return a
        # Inverted dropout with a per-model rate: one multiply by 0 or 1 / (1 - p).
        # The uint8 mask is cast first: mixed uint8 x float ops can take a slow path.
        return a * mask.to(a.dtype).mul_(scale)

    def _norm(self, h, i, bn_train, update_stats, capture):
        spec, K = self.spec, self.K
        b, width = h.shape[0], h.shape[2]
        if capture is not None:
            var, mean = torch.var_mean(h.detach(), dim=0, correction=0)
            capture.append({"mean": mean, "var": var})
        w, bias = getattr(self, f"norm_weight{i}"), getattr(self, f"norm_bias{i}")
        if spec.norm == "layer":
            return torch.addcmul(bias, F.layer_norm(h, (width,), None, None, spec.eps), w)
        rm, rv = getattr(self, f"running_mean{i}").view(-1), getattr(self, f"running_var{i}").view(-1)
        w, bias = w.view(-1), bias.view(-1)
        h = h.reshape(b, K * width)  # one BN channel per (model, feature)
        if not bn_train:
            return F.batch_norm(h, rm, rv, w, bias, False, 0.0, spec.eps).view(b, K, width)
        chunks = h.split(spec.ghost_batch) if spec.norm == "ghost" else (h,)
        outs = []
        for c in chunks:
            if self._bn_calls is not None:  # recalibration: cumulative average, like momentum=None
                self._bn_calls[i] += 1
                momentum = 1.0 / self._bn_calls[i]
            else:
                momentum = spec.bn_momentum
            stats = (rm, rv) if update_stats else (None, None)
            outs.append(F.batch_norm(c, *stats, w, bias, True, momentum, spec.eps))
        return (outs[0] if len(outs) == 1 else torch.cat(outs)).view(b, K, width)

    def _linear(self, a, i):
        return layers.linear(a, self.weight(i), self.bias(i))

    def run(self, a, masks=None, *, bn_train=False, update_stats=True, capture=None):
        """Forward pass on sample-major input a: [b, d_in] (shared) or [b, K, d_in].

        masks: one 0/1 keep-mask [b, K, width] (or None) per dropout site, input
        first; None = no dropout. bn_train: normalize with batch statistics
        (and update the running ones if update_stats) instead of running
        statistics. capture: a list that receives the batch mean and
        variance of every norm layer's input. Returns [b, K, d_out].
        """
        spec = self.spec
        act = _ACTS[spec.activation]
        masks = masks or [None] * (len(spec.hidden) + 1)
        if masks[0] is not None and a.dim() == 2:
            a = a[:, None, :]
        a = self._drop(a, masks[0], self.scale_input)
        for i in range(len(spec.hidden)):
            h = self._linear(a, i)
            if spec.order == "norm_dropout":
                if spec.norm != "none":
                    h = self._norm(h, i, bn_train, update_stats, capture)
                a = self._drop(act(h), masks[i + 1], self.scale_hidden)
            else:
                a = self._drop(act(h), masks[i + 1], self.scale_hidden)
                if spec.norm != "none":
                    a = self._norm(a, i, bn_train, update_stats, capture)
        return self._linear(a, len(spec.hidden))

    # --- user-facing passes -------------------------------------------------

    def _sample_major(self, x):
        """x [n, d] stays shared; x [K, n, d] becomes a [n, K, d] view."""
        x = torch.as_tensor(x, device=self.device, dtype=self.dtype)
        return x if x.dim() == 2 else x.transpose(0, 1)

    def forward(self, x, *, train=False, generators=None, update_stats=True, capture=None):
        """Outputs [K, n, d_out] for x [n, d_in] or [K, n, d_in].

        train=False: eval mode (no dropout, BN running statistics).
        train=True: train mode: BN batch statistics (updating the running ones
        unless update_stats=False) and dropout with masks drawn from
        `generators` (a list of K torch.Generators, or one shared; None: no dropout).
        """
        a = self._sample_major(x)
        masks = None
        if train and generators is not None:
            gens = generators if isinstance(generators, (list, tuple)) else [generators] * self.K
            masks = self.draw_masks(gens, a.shape[0])
        return self.run(a, masks, bn_train=train, update_stats=update_stats, capture=capture).transpose(0, 1)

    @torch.no_grad()
    def predict(self, x, batch_size: int = 4096) -> torch.Tensor:
        """Eval-mode outputs [K, n, d_out], in row chunks of batch_size, no grad."""
        a = self._sample_major(x)
        return torch.cat([self.run(a[s:s + batch_size]) for s in range(0, a.shape[0], batch_size)]).transpose(0, 1)

    @torch.no_grad()
    def mc_predict(self, x, n_samples: int, generator, batch_size: int = 4096) -> torch.Tensor:
        """MC dropout: [n_samples, K, n, d_out] with dropout on and BN in eval mode.

        generator: one torch.Generator or a list of K (one per model).
        """
        gens = generator if isinstance(generator, (list, tuple)) else [generator] * self.K
        a = self._sample_major(x)
        out = []
        for _ in range(n_samples):
            parts = [self.run(c, self.draw_masks(gens, c.shape[0])) for c in a.split(batch_size)]
            out.append(torch.cat(parts).transpose(0, 1))
        return torch.stack(out)

    @torch.no_grad()
    def norm_input_stats(self, x, *, train: bool, generator=None) -> list:
        """Mean and variance over x's rows of the input to every norm layer.

        Returns one {"mean": [K, width], "var": [K, width]} per norm layer
        (population variance). train=True: train-mode pass (dropout masks
        from generator, BN batch statistics) that leaves the running
        statistics untouched; train=False: eval-mode pass. Comparing the two
        measures the variance shift that dropout before BN causes.
        """
        capture = []
        self.forward(x, train=train, generators=generator, update_stats=False, capture=capture)
        return capture

    # --- batch-norm statistics ----------------------------------------------

    def bn_stats(self) -> list:
        """Copies of every BN layer's (running_mean, running_var), each [K, width]."""
        if not self.spec.batch_norm:
            return []
        return [(getattr(self, f"running_mean{i}").clone(), getattr(self, f"running_var{i}").clone())
                for i in range(len(self.spec.hidden))]

    @torch.no_grad()
    def set_bn_stats(self, stats) -> None:
        """Overwrite the running statistics (e.g. with stale ones from an earlier epoch)."""
        for i, (m, v) in enumerate(stats):
            getattr(self, f"running_mean{i}").copy_(m)
            getattr(self, f"running_var{i}").copy_(v)

    @torch.no_grad()
    def recalibrate_bn(self, x, batch_size: int | None = None) -> None:
        """Re-estimate BN running statistics on x with dropout off.

        Resets them, then runs train-mode BN over x in row chunks of
        batch_size (all rows at once if None), keeping the cumulative average
        of the batch statistics: torch's momentum=None, as
        torch.optim.swa_utils.update_bn does, but without dropout.
        """
        if not self.spec.batch_norm:
            return
        for i in range(len(self.spec.hidden)):
            getattr(self, f"running_mean{i}").zero_()
            getattr(self, f"running_var{i}").fill_(1.0)
        a = self._sample_major(x)
        self._bn_calls = [0] * len(self.spec.hidden)
        try:
            for chunk in a.split(batch_size or a.shape[0]):
                self.run(chunk, bn_train=True)
        finally:
            self._bn_calls = None

    # --- plain torch.nn modules in and out ----------------------------------

    def to_reference(self, k: int) -> nn.Sequential:
        """Model k as an ordinary nn.Sequential (see reference_mlp), same device and dtype."""
        net = reference_mlp(self.spec.for_model(k, self.K)).to(self.device, self.dtype)
        lins, norms = _split_modules(net)
        with torch.no_grad():
            for i, lin in enumerate(lins):
                lin.weight.copy_(self.weight(i)[k].T)
                if lin.bias is not None:
                    lin.bias.copy_(self.bias(i)[k])
            for i, norm in enumerate(norms):
                norm.weight.copy_(getattr(self, f"norm_weight{i}")[k])
                norm.bias.copy_(getattr(self, f"norm_bias{i}")[k])
                if self.spec.batch_norm:
                    norm.running_mean.copy_(getattr(self, f"running_mean{i}")[k])
                    norm.running_var.copy_(getattr(self, f"running_var{i}")[k])
        return net

    @classmethod
    def from_reference(cls, spec: MLPSpec, nets, seeds=None, *, device=None) -> "BatchedMLP":
        """A batched model holding the K given reference nets (laid out as reference_mlp).

        Dropout rates are read from the nets' Dropout modules; seeds (default
        0..K-1) only name the models' training streams.
        """
        nets = list(nets)
        drops = [[m.p for m in net if isinstance(m, nn.Dropout)] for net in nets]
        p_in, p_hid = [d[0] for d in drops], [d[1] if len(d) > 1 else 0.0 for d in drops]
        spec = MLPSpec(**{**spec.__dict__,
                          "p_input": p_in[0] if len(set(p_in)) == 1 else tuple(p_in),
                          "p_hidden": p_hid[0] if len(set(p_hid)) == 1 else tuple(p_hid)})
        first = next(nets[0].parameters())
        model = cls(spec, seeds if seeds is not None else range(len(nets)),
                    device=device or first.device, dtype=first.dtype)
        with torch.no_grad():
            for k, net in enumerate(nets):
                lins, norms = _split_modules(net)
                if len(lins) != len(spec.sizes) or len(norms) != (len(spec.hidden) if spec.norm != "none" else 0):
                    raise ValueError(f"from_reference: net {k} does not match the spec's layout")
                for i, lin in enumerate(lins):
                    model.weight(i)[k].copy_(lin.weight.T)
                    if model.bias(i) is not None:
                        model.bias(i)[k].copy_(lin.bias)
                for i, norm in enumerate(norms):
                    getattr(model, f"norm_weight{i}")[k].copy_(norm.weight)
                    getattr(model, f"norm_bias{i}")[k].copy_(norm.bias)
                    if spec.batch_norm:
                        getattr(model, f"running_mean{i}")[k].copy_(norm.running_mean)
                        getattr(model, f"running_var{i}")[k].copy_(norm.running_var)
        return model


def _split_modules(net):
    lins = [m for m in net if isinstance(m, nn.Linear)]
    norms = [m for m in net if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm))]
    return lins, norms
