"""The batched CNN equals K plain CNNs: forward, init from seeds, AdamW steps, clipping."""
import pytest
import torch
import torch.nn.functional as F

from regbench import cnn

torch.set_num_threads(1)


@pytest.mark.parametrize("size,widths", [(8, (4, 6)), (12, (3, 5))])
def test_forward_equals_plain_modules(size, widths):
    seeds = [11, 5, 11]
    m = cnn.BatchedCNN(seeds, 2, size, 7, widths)
    x = torch.rand(3, 9, 2, size, size)
    out = m(x)
    assert out.shape == (3, 9, 7)
    for k, s in enumerate(seeds):
        ref = cnn.SmallCNN(2, size, 7, widths, seed=s)
        torch.testing.assert_close(out[k], ref(x[k]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out[k], m.to_module(k)(x[k]), rtol=1e-5, atol=1e-6)
    # same seed -> same weights; a model does not depend on its batch-mates
    torch.testing.assert_close(m(x[[2, 1, 2]])[0], out[2], rtol=1e-5, atol=1e-6)
    alone = cnn.BatchedCNN([5], 2, size, 7, widths)
    assert torch.equal(alone.p("conv2.weight")[0], m.p("conv2.weight")[1])
    assert not torch.equal(m.p("fc.weight")[0], m.p("fc.weight")[1])
    with pytest.raises(ValueError):
        m(x[:2])


def test_init_bounds_match_torch_default():
    p = cnn.init_params(0, 1, 8, 10, (8, 16))
    for name, fan_in in (("conv1.weight", 9), ("conv2.weight", 72), ("fc.weight", 64)):
        bound = fan_in ** -0.5
        assert float(p[name].abs().max()) <= bound and float(p[name].abs().max()) > 0.9 * bound
    with pytest.raises(ValueError):
        cnn.init_params(0, 1, 10, 10)


def test_soft_cross_entropy_and_smoothing():
    logits = torch.randn(2, 5, 4)
    y = torch.randint(0, 4, (2, 5))
    ref = torch.stack([F.cross_entropy(logits[k], y[k]) for k in range(2)])
    torch.testing.assert_close(cnn.soft_cross_entropy(logits, y), ref)
    torch.testing.assert_close(cnn.soft_cross_entropy(logits, F.one_hot(y, 4).float()), ref)
    eps = torch.tensor([0.0, 0.1])
    t = cnn.smooth(y, 4, eps)
    ls = torch.stack([F.cross_entropy(logits[k], y[k], label_smoothing=float(eps[k])) for k in range(2)])
    torch.testing.assert_close(cnn.soft_cross_entropy(logits, t), ls)
    torch.testing.assert_close(t.sum(-1), torch.ones(2, 5))


def test_adamw_and_clipping_equal_torch_per_model():
    """K models with per-model lr, decay, lr scale and clipping == torch.optim.AdamW + clip_grad_norm_ on each."""
    seeds, size, widths = [1, 2, 3], 8, (4, 6)
    lrs, wds, clips = [1e-2, 3e-3, 1e-2], [0.0, 0.1, 0.05], [0.5, float("inf"), 0.05]
    m = cnn.BatchedCNN(seeds, 1, size, 5, widths)
    # layer-wise lr: the first conv layer learns at half the rate
    layer_lr = [torch.tensor(lrs) * (0.5 if name.startswith("conv1") else 1.0) for name in m.named()]
    opt = cnn.BatchedAdamW(list(m.named().values()), layer_lr, torch.tensor(wds))
    refs = [cnn.SmallCNN(1, size, 5, widths, seed=s) for s in seeds]
    ropts = [torch.optim.AdamW([{"params": [r.conv1.weight, r.conv1.bias], "lr": lr * 0.5},
                                {"params": [*r.conv2.parameters(), *r.fc.parameters()], "lr": lr}], lr=lr, weight_decay=wd)
             for r, lr, wd in zip(refs, lrs, wds)]
    g = torch.Generator().manual_seed(0)
    for step in range(6):
        x = torch.rand(3, 8, 1, size, size, generator=g)
        y = torch.randint(0, 5, (3, 8), generator=g)
        scale = torch.tensor([1.0, 0.5, 0.0]) if step % 2 else 1.0  # per-model schedule / frozen model
        opt.zero_grad()
        cnn.soft_cross_entropy(m(x), y).sum().backward()
        norms = cnn.clip_per_model(list(m.named().values()), torch.tensor(clips))
        opt.step(scale)
        for k, (r, ro) in enumerate(zip(refs, ropts)):
            s = float(scale[k]) if torch.is_tensor(scale) else scale
            for group, base in zip(ro.param_groups, (lrs[k] * 0.5, lrs[k])):
                group["lr"] = base * s
            ro.zero_grad()
            F.cross_entropy(r(x[k]), y[k]).backward()
            ref_norm = torch.nn.utils.clip_grad_norm_(r.parameters(), clips[k])
            torch.testing.assert_close(norms[k], ref_norm, rtol=1e-5, atol=1e-7)
            ro.step()
    for k, r in enumerate(refs):
        for name, p in m.named().items():
            torch.testing.assert_close(p[k], r.get_parameter(name), rtol=1e-5, atol=1e-6)


def test_batch_indices_are_passes_of_permutations():
    idx = cnn.batch_indices(10, 7, 4, torch.Generator().manual_seed(3))
    assert idx.shape == (7, 4)
    flat = idx.reshape(-1)
    for p in range(2):
        assert sorted(flat[p * 10:(p + 1) * 10].tolist()) == list(range(10))
    again = cnn.batch_indices(10, 7, 4, torch.Generator().manual_seed(3))
    assert torch.equal(idx, again)


def test_evaluate_matches_manual():
    m = cnn.BatchedCNN([0, 1], 1, 8, 3, (2, 2))
    X = torch.rand(2, 20, 1, 8, 8)
    y = torch.randint(0, 3, (2, 20))
    ev = cnn.evaluate(m, X, y)
    logits = m(X)
    torch.testing.assert_close(ev["acc"], (logits.argmax(-1) == y).float().mean(-1))
    torch.testing.assert_close(ev["probs"].sum(-1), torch.ones(2, 20))
    torch.testing.assert_close(cnn.predict(m, X, chunk=7), logits.detach())


def test_coupled_l2_equals_torch_adam_weight_decay():
    m = cnn.BatchedCNN([4, 5], 1, 8, 3, (2, 3))
    opt = cnn.BatchedAdamW(list(m.named().values()), 1e-2, l2=torch.tensor([0.0, 0.5]))
    refs = [cnn.SmallCNN(1, 8, 3, (2, 3), seed=s) for s in (4, 5)]
    ropts = [torch.optim.Adam(r.parameters(), 1e-2, weight_decay=wd) for r, wd in zip(refs, (0.0, 0.5))]
    g = torch.Generator().manual_seed(1)
    for _ in range(4):
        x = torch.rand(2, 6, 1, 8, 8, generator=g)
        y = torch.randint(0, 3, (2, 6), generator=g)
        opt.zero_grad()
        cnn.soft_cross_entropy(m(x), y).sum().backward()
        opt.step()
        for k, (r, ro) in enumerate(zip(refs, ropts)):
            ro.zero_grad()
            F.cross_entropy(r(x[k]), y[k]).backward()
            ro.step()
    for k, r in enumerate(refs):
        for name, p in m.named().items():
            torch.testing.assert_close(p[k], r.get_parameter(name), rtol=1e-5, atol=1e-6)
