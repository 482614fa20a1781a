"""Per-model random streams: model k's randomness depends on its own seed only.

Every model owns one torch.Generator per purpose, seeded from its integer
seed, so the same seed gives the same initialization, data order, dropout
masks and mix draws whether the model trains alone or in a batch of any size.

Drawing order (what a reference loop must replicate to get the same run):
  init:    torch.Generator seeded with the seed itself; Linear layers input
           to output, each kaiming_uniform_(weight[out, in], a=sqrt(5)) then
           uniform_(bias, +-1/sqrt(fan_in)), exactly nn.Linear's default init
           (so torch.manual_seed(seed) + building the nn.Sequential gives the
           same weights).
  shuffle: one torch.randperm(n) per epoch (always on CPU, then moved).
  dropout: per epoch, for every dropout site with rate p > 0 for this model
           (input first, then hidden blocks in order), one draw
           u = torch.empty(ceil(n * width / 2), dtype=torch.int64).random_(generator)
           (uniform on [0, 2^63)), split into 31-bit uniforms
           v = (u.view(torch.int32)[:n * width] & 0x7FFFFFFF).view(n, width)
           (two per draw: low and high word), kept where
           v < floor((1 - p) * 2^31); row i masks the i-th example of that
           epoch's order. Why: mask draws are ~15-20% of a training step
           on one CPU thread, and torch's 64-bit draws cost ~25% less per
           32 bits than int32 or float draws; the keep probability is exact
           to 2^-31 (float32 rand: 2^-24). The int32 view assumes a
           little-endian machine (x86, ARM). On CUDA the dropout generator
           lives on the GPU, so masks differ from CPU runs (still a
           function of the seed alone).
  mix:     passed to the caller's mix hook, one generator per model.
"""
import torch

from regbench.seeds import int_seed

PURPOSES = ("init", "shuffle", "dropout", "mix")


def generator(seed: int, purpose: str, device="cpu") -> torch.Generator:
    """The generator of one model (given by its seed) for one purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown stream {purpose!r}; allowed: {', '.join(PURPOSES)}")
    # init uses the raw seed so the init equals nn.Linear's under torch.manual_seed(seed).
    s = int(seed) if purpose == "init" else int_seed(int(seed), "nets", purpose)
    return torch.Generator(device=torch.device(device)).manual_seed(s)


def generators(seeds, purpose: str, device="cpu") -> list:
    """One generator per seed."""
    return [generator(s, purpose, device) for s in seeds]


def keep_threshold(q: float) -> int:
    """Keep a unit when its 31-bit draw (uniform on [0, 2^31)) is below this."""
    return int(q * 2**31)


def draw_masks(gens, keeps, width: int, n: int, device) -> torch.Tensor | None:
    """Dropout keep-masks for K models as a uint8 0/1 tensor [n, K, width], n rows per model.

    uint8, not bool: on CPU, turning a bool mask into the float factor
    costs 4x more than turning a uint8 one.

    keeps: per-model keep probability 1 - p; a model with keep 1 draws
    nothing from its stream (its stream must not depend on its batch-mates).
    Returns None when no model drops anything.
    """
    if all(q >= 1.0 for q in keeps):
        return None
    # Stored model by model (each draw lands contiguously), returned as the [n, K, width] view.
    masks = torch.empty(len(gens), n, width, dtype=torch.uint8, device=device)
    m = n * width
    u = torch.empty((m + 1) // 2, dtype=torch.int64, device=device)
    for k, (g, q) in enumerate(zip(gens, keeps)):
        if q < 1.0:
            v = u.random_(generator=g).view(torch.int32)[:m].view(n, width).bitwise_and_(0x7FFFFFFF)
            torch.lt(v, keep_threshold(q), out=masks[k])
        else:
            masks[k] = 1
    return masks.transpose(0, 1)
