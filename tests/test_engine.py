"""The batched MLP engine against plain torch.nn + torch.optim, and against itself.

Oracles: a reference nn.Sequential per model trained by an ordinary loop
with torch.optim, the same data order and the same dropout masks (drawn
from the streams the engine documents); swa_utils.update_bn for BN
recalibration; closed-form expectations for dropout. float64 throughout
where exact agreement is asserted, so tolerances can be tight.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regbench.nets import layers
from regbench.nets import (COLUMNS, BatchedMLP, GhostBatchNorm1d, MLPSpec, OptimSpec, generator,
                           reference_mlp, train)
from regbench.device import resolve_device

torch.set_num_threads(1)
D = torch.float64


def make_data(n=96, d=6, c=3, seed=0, task="classification", dtype=D):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype)
    logits = x @ torch.randn(d, c, generator=g, dtype=dtype)
    if task == "classification":
        return x, logits.argmax(1)
    return x, logits + 0.3 * torch.randn(n, c, generator=g, dtype=dtype)


def splits(task="classification", d=6, c=3, dtype=D, n=96):
    return {name: make_data(n, d, c, seed, task, dtype) for seed, name in enumerate(("train", "val", "test"))}


def keep_mask(gen, n, width, p):
    """The engine's documented dropout draw for one model and one site."""
    u = torch.empty(math.ceil(n * width / 2), dtype=torch.int64).random_(generator=gen)
    v = (u.view(torch.int32)[:n * width] & 0x7FFFFFFF).view(n, width)
    return v < math.floor((1 - p) * 2**31)


class FedDropout(nn.Module):
    """Inverted dropout whose mask is set from outside (the engine's stream)."""

    def __init__(self, p):
        super().__init__()
        self.p, self.mask = p, None

    def forward(self, x):
        if not self.training or self.mask is None:
            return x
        return x * self.mask / (1 - self.p)


def with_fed_dropout(net):
    return nn.Sequential(*[FedDropout(m.p) if isinstance(m, nn.Dropout) else m for m in net])


def torch_optimizer(params, o: OptimSpec):
    if o.kind == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay, foreach=False)
    cls = torch.optim.AdamW if o.decay == "decoupled" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay, foreach=False)


def reference_train(net, opt, x, y, seed, *, epochs, batch_size, task, label_smoothing=0.0, penalty=0.0):
    """An ordinary training loop on one nn.Sequential, replicating the engine's streams.

    penalty: add (penalty / 2) * sum ||p||^2 to the loss (the l2 convention).
    """
    n = x.shape[0]
    drops = [m for m in net if isinstance(m, FedDropout)]
    widths = [x.shape[1]] + [m.in_features for m in net if isinstance(m, nn.Linear)][1:]
    sg, dg = generator(seed, "shuffle"), generator(seed, "dropout")
    for _ in range(epochs):
        perm = torch.randperm(n, generator=sg)
        masks = [keep_mask(dg, n, w, m.p) if m.p > 0 else None for m, w in zip(drops, widths)]
        net.train()
        for s in range(0, n, batch_size):
            i = perm[s:s + batch_size]
            for m, mk in zip(drops, masks):
                m.mask = None if mk is None else mk[s:s + batch_size]
            out = net(x[i])
            if task == "classification":
                loss = F.cross_entropy(out, y[i], label_smoothing=label_smoothing)
            else:
                loss = F.mse_loss(out, y[i])
            if penalty:
                loss = loss + penalty / 2 * sum((p ** 2).sum() for p in net.parameters())
            opt.zero_grad()
            loss.backward()
            opt.step()
    for m in drops:
        m.mask = None
    return net


def assert_same_state(a: nn.Module, b: nn.Module, atol):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        if key.endswith("num_batches_tracked"):
            continue
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=atol, msg=key)


def final(df, split, metric, model=0):
    last = df[(df.split == split) & (df.metric == metric) & (df.model == model)]
    return last.loc[last.epoch.idxmax(), "value"]


# --- K = 1 against torch.nn + torch.optim -------------------------------------

CASES = [
    # (spec overrides, optimizer, task, label smoothing)
    (dict(norm="batch", p_input=0.1, p_hidden=0.3), OptimSpec("adamw", lr=1e-2, weight_decay=0.1),
     "classification", 0.1),
    (dict(norm="batch", order="dropout_norm", p_hidden=0.5), OptimSpec("adam", lr=1e-2, weight_decay=0.05),
     "classification", 0.0),
    (dict(norm="layer", activation="gelu", p_hidden=0.2),
     OptimSpec("sgd", lr=0.05, momentum=0.9, weight_decay=0.01), "regression", 0.0),
    (dict(norm="ghost", ghost_batch=8, activation="tanh", p_hidden=0.3), OptimSpec("adamw", lr=1e-2),
     "classification", 0.0),
    (dict(norm="none", p_input=0.2), OptimSpec("sgd", lr=0.1, weight_decay=0.01, decay="decoupled"),
     "regression", 0.0),
]


@pytest.mark.parametrize("overrides,opt,task,ls", CASES)
def test_single_model_equals_torch_reference(overrides, opt, task, ls):
    spec = MLPSpec(6, 3, (16, 12), **overrides)
    data = splits(task)
    df, model = train(spec, opt, [7], data, task=task, epochs=3, batch_size=16, label_smoothing=ls,
                      model=BatchedMLP(spec, [7], dtype=D))
    ref = with_fed_dropout(BatchedMLP(spec, [7], dtype=D).to_reference(0))
    reference_train(ref, torch_optimizer(ref.parameters(), opt), *data["train"], 7,
                    epochs=3, batch_size=16, task=task, label_smoothing=ls)
    assert_same_state(model.to_reference(0), ref, atol=1e-10)
    # The recorded eval-mode test loss is the reference's plain loss.
    ref.eval()
    x, y = data["test"]
    with torch.no_grad():
        out = ref(x)
    want = F.cross_entropy(out, y) if task == "classification" else F.mse_loss(out, y)
    assert final(df, "test", "loss") == pytest.approx(want.item(), abs=1e-10)
    if task == "classification":
        acc = (out.argmax(1) == y).double().mean().item()
        assert final(df, "test", "accuracy") == pytest.approx(acc, abs=1e-12)


def test_float32_and_uneven_last_batch_equal_torch_reference():
    spec = MLPSpec(6, 3, (16,), norm="batch", p_hidden=0.3)
    data = {"train": make_data(100, dtype=torch.float32)}  # 100 = 6 x 16 + 4
    opt = OptimSpec("adamw", lr=1e-2, weight_decay=0.01)
    _, model = train(spec, opt, [3], data, epochs=2, batch_size=16)
    ref = with_fed_dropout(reference_mlp(spec, seed=3))
    reference_train(ref, torch_optimizer(ref.parameters(), opt), *data["train"], 3,
                    epochs=2, batch_size=16, task="classification")
    assert_same_state(model.to_reference(0), ref, atol=1e-5)


# --- K models at once = the same K trained one by one -------------------------

def train_alone(spec, opt, seeds, data, **kw):
    """Train each seed alone (K = 1), with its own scalar hyperparameters."""
    K = len(seeds)
    out = []
    for k, seed in enumerate(seeds):
        o = OptimSpec(**{**opt.__dict__, "lr": opt.per_model("lr", K)[k],
                         "weight_decay": opt.per_model("weight_decay", K)[k]})
        out.append(train(spec.for_model(k, K), o, [seed], data, dtype=D, **kw))
    return out


def assert_batch_equals_alone(batch, alone, atol=1e-12):
    df, model = batch
    for k, (df_k, model_k) in enumerate(alone):
        assert_same_state(model.to_reference(k), model_k.to_reference(0), atol=atol)
        mine = df[df.model == k].drop(columns="model").reset_index(drop=True)
        theirs = df_k.drop(columns="model").reset_index(drop=True)
        assert (mine[["epoch", "split", "metric"]] == theirs[["epoch", "split", "metric"]]).all().all()
        assert (mine.value - theirs.value).abs().max() < 1e-10


def test_batch_equals_models_trained_alone_with_dropout_and_bn():
    spec = MLPSpec(6, 3, (16, 12), norm="batch", p_input=0.1, p_hidden=0.3)
    seeds = [11, 3, 250, 7]
    data = splits()
    opt = OptimSpec("adamw", lr=1e-2, weight_decay=0.01)
    kw = dict(epochs=3, batch_size=16)
    batch = train(spec, opt, seeds, data, dtype=D, **kw)
    assert_batch_equals_alone(batch, train_alone(spec, opt, seeds, data, **kw))


def test_per_model_hyperparameters_equal_separate_runs():
    seeds = [1, 2, 3]
    spec = MLPSpec(6, 3, (16,), norm="ghost", ghost_batch=8, p_input=(0.0, 0.1, 0.0), p_hidden=(0.0, 0.2, 0.5))
    opt = OptimSpec("adam", lr=(1e-2, 3e-3, 1e-3), weight_decay=(0.0, 0.01, 0.1))
    data = splits()
    kw = dict(epochs=3, batch_size=16)
    batch = train(spec, opt, seeds, data, dtype=D, **kw)
    assert_batch_equals_alone(batch, train_alone(spec, opt, seeds, data, **kw))
    # and the models really differ (the test could fail)
    w = batch[1].weight0
    assert (w[0] - w[2]).abs().max() > 1e-3


def test_per_model_datasets_equal_separate_runs():
    seeds = [5, 6, 7]
    spec = MLPSpec(6, 1, (8,), norm="layer", p_hidden=0.2)
    sets = [make_data(64, 6, 1, seed=10 + k, task="regression") for k in range(3)]
    x, y = torch.stack([s[0] for s in sets]), torch.stack([s[1][:, 0] for s in sets])  # y [K, n]
    data = {"train": (x, y), "test": make_data(40, 6, 1, seed=99, task="regression")}
    data["test"] = (data["test"][0], data["test"][1][:, 0])
    opt = OptimSpec("sgd", lr=0.05, momentum=0.9, weight_decay=(0.0, 0.01, 0.1))
    kw = dict(epochs=3, batch_size=16, task="regression")
    batch = train(spec, opt, seeds, data, dtype=D, **kw)
    alone = []
    for k, seed in enumerate(seeds):
        o = OptimSpec("sgd", lr=0.05, momentum=0.9, weight_decay=opt.weight_decay[k])
        alone.append(train(spec, o, [seed], {"train": (x[k], y[k]), "test": data["test"]}, dtype=D, **kw))
    assert_batch_equals_alone(batch, alone)


# --- layers: train vs eval mode like torch ------------------------------------

@pytest.mark.parametrize("n_out", [3, 16])  # narrower / wider than the batch: both product orientations
def test_batched_linear_gradients(n_out):
    a = torch.randn(12, 2, 5, dtype=D, requires_grad=True)  # [b, K, in]
    w = torch.randn(2, 5, n_out, dtype=D, requires_grad=True)
    b = torch.randn(2, n_out, dtype=D, requires_grad=True)
    h = layers.linear(a, w, b)
    want = torch.einsum("bki,kio->bko", a, w) + b
    torch.testing.assert_close(h, want, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(layers.BatchedLinear.apply, (a, w, b))
    assert torch.autograd.gradcheck(layers.BatchedLinear.apply, (a, w, None))
    shared = a[:, 0].detach()
    torch.testing.assert_close(layers.linear(shared, w, b), torch.einsum("bi,kio->bko", shared, w) + b,
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm,order", [("batch", "norm_dropout"), ("batch", "dropout_norm"),
                                        ("ghost", "norm_dropout"), ("layer", "norm_dropout")])
def test_train_and_eval_mode_match_torch_layers(norm, order):
    spec = MLPSpec(6, 3, (16, 12), norm=norm, order=order, ghost_batch=8, p_input=0.2, p_hidden=0.4)
    model = BatchedMLP(spec, [1, 2, 3], dtype=D)
    x = make_data(32)[0]
    # Move the running statistics away from (0, 1) first, so eval mode has something to use.
    model(x, train=True)
    refs = [with_fed_dropout(model.to_reference(k)) for k in range(3)]
    out = model(x, train=True, generators=[torch.Generator().manual_seed(k) for k in range(3)])
    for k, ref in enumerate(refs):
        g = torch.Generator().manual_seed(k)
        widths = [6, 16, 12]
        drops = [m for m in ref if isinstance(m, FedDropout)]
        for m, w in zip(drops, widths):
            m.mask = keep_mask(g, 32, w, m.p)
        ref.train()
        torch.testing.assert_close(out[k], ref(x), rtol=0, atol=1e-12)
        for m in drops:
            m.mask = None
    for k, ref in enumerate(refs):  # running statistics updated like torch's
        assert_same_state(model.to_reference(k), ref, atol=1e-12)
        ref.eval()
        torch.testing.assert_close(model(x)[k], ref(x), rtol=0, atol=1e-12)
    # Dropout is the identity in eval mode: the rates do not change the eval output.
    no_drop = BatchedMLP(MLPSpec(**{**spec.__dict__, "p_input": 0.0, "p_hidden": 0.0}), [1, 2, 3], dtype=D)
    no_drop.load_state_dict(model.state_dict())
    torch.testing.assert_close(no_drop(x), model(x), rtol=0, atol=0)
    # ... and not in train mode.
    assert (model(x, train=True, generators=torch.Generator().manual_seed(0), update_stats=False)
            - no_drop(x, train=True, update_stats=False)).abs().max() > 1e-2


def test_dropout_masks_rate_scale_and_expectation():
    # hidden=() with an identity output layer: the network is dropout(x) itself.
    K, d, n = 2, 40, 20000
    spec = MLPSpec(d, d, (), p_input=(0.3, 0.0))
    model = BatchedMLP(spec, [0, 1], dtype=D)
    with torch.no_grad():
        model.weight0.copy_(torch.eye(d, dtype=D).expand(K, d, d))
        model.bias0.zero_()
    x = torch.rand(n, d, dtype=D) + 1.0  # strictly positive: a zero output means dropped
    out = model(x, train=True, generators=[torch.Generator().manual_seed(k) for k in range(K)])
    kept = out[0] != 0
    for part in (kept, kept[:, 0::2], kept[:, 1::2]):  # both 31-bit halves of each 64-bit draw
        assert abs(part.double().mean().item() - 0.7) < 4 * math.sqrt(0.21 / part.numel())
    torch.testing.assert_close(out[0][kept], (x / 0.7)[kept], rtol=1e-15, atol=0)  # inverted scaling
    assert torch.equal(out[1], x)  # p = 0: no mask at all for model 1
    # E[train output] = eval output (N1): the column means agree within MC error.
    se = (out[0] - x).std(0) / math.sqrt(n)
    assert ((out[0].mean(0) - x.mean(0)).abs() < 5 * se).all()
    torch.testing.assert_close(model(x)[0], x, rtol=0, atol=0)  # eval: identity


def test_mc_predict():
    spec = MLPSpec(5, 2, (), p_input=0.5)  # linear in the dropped input: E[MC] = eval exactly
    model = BatchedMLP(spec, [4, 5], dtype=D)
    x = make_data(10, 5)[0]
    draws = model.mc_predict(x, 1000, torch.Generator().manual_seed(0))
    assert draws.shape == (1000, 2, 10, 2)
    assert draws.std(0).min() > 0.01  # the masks vary between samples
    se = draws.std(0) / math.sqrt(1000)
    assert ((draws.mean(0) - model.predict(x)).abs() < 5 * se).all()
    again = model.mc_predict(x, 1000, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)
    # With p = 0 and BN, every sample is the eval-mode output (BN uses running stats).
    bn = BatchedMLP(MLPSpec(5, 2, (8,), norm="batch"), [1], dtype=D)
    bn(x, train=True)
    torch.testing.assert_close(bn.mc_predict(x, 3, torch.Generator())[2], bn.predict(x), rtol=0, atol=0)


# --- weight decay conventions --------------------------------------------------

def test_sgd_l2_and_decoupled_coincide_without_momentum():
    spec, data = MLPSpec(6, 3, (16,), norm="batch"), splits()
    runs = [train(spec, OptimSpec("sgd", lr=0.1, weight_decay=0.05, decay=dec), [1, 2], data,
                  dtype=D, epochs=3, batch_size=16)[1] for dec in ("l2", "decoupled")]
    assert_same_state(runs[0], runs[1], atol=1e-12)
    # but with momentum they are different algorithms
    runs = [train(spec, OptimSpec("sgd", lr=0.1, momentum=0.9, weight_decay=0.05, decay=dec), [1], data,
                  dtype=D, epochs=3, batch_size=16)[1] for dec in ("l2", "decoupled")]
    assert (runs[0].weight0 - runs[1].weight0).abs().max() > 1e-4


def test_adam_l2_and_decoupled_differ_and_match_torch():
    spec, data = MLPSpec(6, 3, (16,)), splits()
    x, y = data["train"]
    models = {}
    for kind, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        opt = OptimSpec(kind, lr=1e-2, weight_decay=0.5)
        _, models[kind] = train(spec, opt, [9], data, dtype=D, epochs=3, batch_size=16)
        ref = reference_mlp(spec, seed=9).double()
        reference_train(ref, cls(ref.parameters(), lr=1e-2, weight_decay=0.5, foreach=False), x, y, 9,
                        epochs=3, batch_size=16, task="classification")
        assert_same_state(models[kind].to_reference(0), ref, atol=1e-10)
    assert (models["adam"].weight0 - models["adamw"].weight0).abs().max() > 1e-3
    # "l2" is the gradient of loss + (lambda / 2) ||w||^2: an explicit penalty under plain Adam.
    ref = reference_mlp(spec, seed=9).double()
    reference_train(ref, torch.optim.Adam(ref.parameters(), lr=1e-2, foreach=False), x, y, 9,
                    epochs=3, batch_size=16, task="classification", penalty=0.5)
    assert_same_state(models["adam"].to_reference(0), ref, atol=1e-9)


def test_weight_decay_weights_only_leaves_biases_undecayed():
    spec, data = MLPSpec(6, 3, (16,)), splits()
    # lr tiny so the loss gradient hardly moves anything; decoupled decay of 0.5 per step would.
    runs = {w: train(spec, OptimSpec("sgd", lr=1e-9, weight_decay=1e8, decay="decoupled", weights_only=w),
                     [1], data, dtype=D, epochs=1, batch_size=32)[1] for w in (False, True)}
    init = BatchedMLP(spec, [1], dtype=D)
    # 3 steps of w <- 0.9 w on everything, or on the weights only.
    torch.testing.assert_close(runs[False].bias0, init.bias0 * 0.9 ** 3, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(runs[True].bias0, init.bias0, rtol=0, atol=1e-7)
    torch.testing.assert_close(runs[True].weight0, init.weight0 * 0.9 ** 3, rtol=1e-6, atol=1e-9)


# --- determinism, seeds, initialization ------------------------------------------

def test_same_seeds_same_results_other_seeds_differ():
    spec = MLPSpec(6, 3, (16,), norm="batch", p_hidden=0.3)
    data, opt = splits(), OptimSpec("adamw", lr=1e-2)
    a = train(spec, opt, [1, 2], data, epochs=2, batch_size=16)
    b = train(spec, opt, [1, 2], data, epochs=2, batch_size=16)
    c = train(spec, opt, [1, 3], data, epochs=2, batch_size=16)
    assert a[0].equals(b[0])
    assert all(torch.equal(p, q) for p, q in zip(a[1].parameters(), b[1].parameters()))
    assert torch.equal(a[1].weight0[0], c[1].weight0[0])
    assert not torch.equal(a[1].weight0[1], c[1].weight0[1])


def test_init_is_nn_linear_default_init_per_seed():
    spec = MLPSpec(6, 3, (16, 12), norm="batch")
    torch.manual_seed(5)
    plain = nn.Sequential(nn.Linear(6, 16, bias=False), nn.Linear(16, 12, bias=False), nn.Linear(12, 3))
    model = BatchedMLP(spec, [3, 5])
    lins = [m for m in model.to_reference(1) if isinstance(m, nn.Linear)]
    for a, b in zip(lins, plain):
        assert torch.equal(a.weight, b.weight)
        assert (a.bias is None) == (b.bias is None)
    assert torch.equal(lins[-1].bias, plain[-1].bias)
    assert model.bias0 is None and model.bias2 is not None  # no bias in front of BN
    assert BatchedMLP(MLPSpec(6, 3, (16,), norm="batch", order="dropout_norm"), [1]).bias0 is not None
    assert not torch.equal(model.weight0[0], model.weight0[1])
    # distribution: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1 / (3 fan_in)
    big = BatchedMLP(MLPSpec(400, 2, (300,)), range(4)).weight0
    assert big.abs().max() <= 1 / math.sqrt(400)
    assert big.var().item() == pytest.approx(1 / 1200, rel=0.02)


def test_reference_round_trip():
    spec = MLPSpec(6, 3, (16, 12), norm="ghost", ghost_batch=8, p_hidden=0.25)
    nets = [reference_mlp(spec, seed=k).double() for k in range(3)]
    nets[1][0].p = 0.1  # per-model input dropout is read from the modules
    x = make_data(40)[0]
    for net in nets:  # non-trivial running statistics
        net.train()
        net[2].running_mean.uniform_(-1, 1)
    model = BatchedMLP.from_reference(spec, nets)
    assert model.spec.p_input == (0.0, 0.1, 0.0)
    assert isinstance(nets[0][2], GhostBatchNorm1d)
    for k, net in enumerate(nets):
        net.eval()
        torch.testing.assert_close(model(x)[k], net(x), rtol=0, atol=1e-12)
        assert_same_state(model.to_reference(k), net, atol=0)


# --- batch-norm utilities -----------------------------------------------------------

@pytest.mark.parametrize("norm", ["batch", "ghost"])
def test_recalibrate_bn_equals_update_bn_without_dropout(norm):
    spec = MLPSpec(6, 3, (16, 12), norm=norm, ghost_batch=8, p_hidden=0.5)
    model = BatchedMLP(spec, [1, 2], dtype=D)
    x = make_data(100)[0]
    model(x, train=True, generators=torch.Generator())  # some stats to throw away
    model.recalibrate_bn(x, batch_size=32)
    for k in range(2):
        ref = model.to_reference(k)
        for m in ref:
            if isinstance(m, nn.Dropout):
                m.p = 0.0
        torch.optim.swa_utils.update_bn([x[s:s + 32] for s in range(0, 100, 32)], ref)
        for mine, theirs in zip(model.bn_stats(), [m for m in ref if isinstance(m, nn.BatchNorm1d)]):
            torch.testing.assert_close(mine[0][k], theirs.running_mean, rtol=0, atol=1e-12)
            torch.testing.assert_close(mine[1][k], theirs.running_var, rtol=0, atol=1e-12)


def test_bn_stats_get_and_set():
    model = BatchedMLP(MLPSpec(6, 3, (16,), norm="batch"), [1, 2], dtype=D)
    x = make_data(64)[0]
    model(x, train=True)
    stale, before = model.bn_stats(), model.predict(x)
    for _ in range(3):
        model(x * 3 + 1, train=True)  # the data drift: fresh statistics move
    assert (model.predict(x) - before).abs().max() > 0.1
    model.set_bn_stats(stale)
    torch.testing.assert_close(model.predict(x), before, rtol=0, atol=0)


def test_norm_input_stats():
    spec = MLPSpec(6, 3, (64, 12), norm="batch", order="dropout_norm", p_hidden=0.5)
    model = BatchedMLP(spec, [1, 2], dtype=D)
    x = make_data(4000)[0]
    model(x, train=True)
    running = model.bn_stats()
    ev = model.norm_input_stats(x, train=False)
    for k in range(2):  # eval: the input to each BN module of the reference, via hooks
        seen = []
        ref = model.to_reference(k).eval()
        for m in ref:
            if isinstance(m, nn.BatchNorm1d):
                m.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0]))
        ref(x)
        for mine, inp in zip(ev, seen):
            torch.testing.assert_close(mine["mean"][k], inp.mean(0), rtol=0, atol=1e-12)
            torch.testing.assert_close(mine["var"][k], inp.var(0, unbiased=False), rtol=0, atol=1e-12)
    tr = model.norm_input_stats(x, train=True, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for pair in zip(running, model.bn_stats()) for a, b in zip(*pair))
    # Dropout before BN (first BN layer): inverted dropout keeps the mean, inflates the variance.
    mean_shift = (tr[0]["mean"] - ev[0]["mean"]).abs() / ev[0]["var"].sqrt()
    ratio = tr[0]["var"] / ev[0]["var"]
    assert mean_shift.max() < 0.2
    assert ratio.median() > 1.3


# --- the training loop's options -------------------------------------------------

def test_identity_mix_equals_no_mix_and_mixup_is_per_model():
    spec, data = MLPSpec(6, 3, (16,), norm="batch", p_hidden=0.2), splits()
    opt = OptimSpec("adamw", lr=1e-2)
    kw = dict(epochs=2, batch_size=16, dtype=D, label_smoothing=0.1)
    plain = train(spec, opt, [1, 2], data, **kw)
    ident = train(spec, opt, [1, 2], data, mix=lambda x, y, gens: (x, y), **kw)
    assert_same_state(plain[1], ident[1], atol=1e-12)

    def mixup(x, y, gens):  # one mixing weight and partner permutation per model, from its stream
        lam = torch.stack([torch.rand((), generator=g, dtype=x.dtype) for g in gens])[:, None, None]
        perm = torch.stack([torch.randperm(x.shape[1], generator=g) for g in gens])
        xp = torch.gather(x, 1, perm[:, :, None].expand_as(x))
        yp = torch.gather(y, 1, perm[:, :, None].expand_as(y))
        return lam * x + (1 - lam) * xp, lam * y + (1 - lam) * yp

    batch = train(spec, opt, [1, 2], data, mix=mixup, **kw)
    alone = [train(spec, opt, [s], data, mix=mixup, **kw) for s in (1, 2)]
    assert_batch_equals_alone(batch, alone)
    assert (batch[1].weight0 - plain[1].weight0).abs().max() > 1e-3


def test_dataframe_schema_and_epochs():
    spec, data = MLPSpec(6, 3, (8,)), splits()
    df, model = train(spec, OptimSpec("sgd", lr=0.1), [4, 5, 6], data, epochs=2, batch_size=32)
    assert list(df.columns) == COLUMNS
    assert sorted(df.model.unique()) == [0, 1, 2]
    assert sorted(df.epoch.unique()) == [0, 1, 2]
    assert set(df.split) == {"train", "val", "test"} and set(df.metric) == {"loss", "accuracy"}
    assert len(df) == 3 * 3 * 3 * 2
    # epoch 0 is the untrained model; training lowers the training loss
    tr = df[(df.split == "train") & (df.metric == "loss")].pivot(index="model", columns="epoch", values="value")
    assert (tr[2] < tr[0]).all()
    x, y = data["test"]
    acc = (model.predict(x).argmax(-1) == y).double().mean(1)
    got = df[(df.split == "test") & (df.metric == "accuracy") & (df.epoch == 2)].value.to_numpy()
    assert got.tolist() == pytest.approx(acc.tolist(), abs=1e-12)


def test_device_auto_and_bad_config():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        MLPSpec(2, 2, norm="group")
    with pytest.raises(ValueError):
        OptimSpec("adamw", decay="l2")
    with pytest.raises(ValueError):
        train(MLPSpec(2, 2, p_hidden=(0.1, 0.2)), OptimSpec(), [1, 2, 3],
              {"train": (torch.zeros(4, 2), torch.zeros(4))})
