"""The architecture of a batched MLP, as plain data."""
from dataclasses import dataclass

ACTIVATIONS = ("relu", "tanh", "gelu")
NORMS = ("none", "batch", "layer", "ghost")
ORDERS = ("norm_dropout", "dropout_norm")


@dataclass(frozen=True)
class MLPSpec:
    """One MLP architecture shared by all K models of a batch.

    Each hidden block is, for order "norm_dropout" (the usual recipe):
        Linear -> Norm -> Act -> Dropout(p_hidden)
    and for order "dropout_norm" (the document's Problem 2c failure case,
    where batch norm normalizes post-dropout activations):
        Linear -> Act -> Dropout(p_hidden) -> Norm
    The network is Dropout(p_input) -> hidden blocks -> Linear(d_out).
    A Linear that feeds batch norm directly has no bias: BN's shift makes
    that bias's gradient zero, so it would only drift.

    p_input, p_hidden: a rate for every model, or a length-K sequence of
    per-model rates (a dropout-rate sweep then trains as one batch).
    norm "ghost": batch norm applied separately to consecutive chunks of
    `ghost_batch` rows of each mini-batch (ghost batch norm); at eval it
    uses the running statistics like ordinary BN.
    bn_momentum, eps: as torch.nn.BatchNorm1d / LayerNorm defaults.
    """

    d_in: int
    d_out: int
    hidden: tuple = (128, 128)
    activation: str = "relu"
    p_input: float | tuple = 0.0
    p_hidden: float | tuple = 0.0
    norm: str = "none"
    order: str = "norm_dropout"
    ghost_batch: int = 32
    bn_momentum: float = 0.1
    eps: float = 1e-5

    def __post_init__(self):
        # Tuples, not lists: the spec is hashable, frozen config data.
        object.__setattr__(self, "hidden", tuple(int(w) for w in self.hidden))
        for name in ("p_input", "p_hidden"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)):
                object.__setattr__(self, name, tuple(float(v) for v in p))
            for v in self.rates(name, None):
                if not 0.0 <= v < 1.0:
                    raise ValueError(f"MLPSpec.{name}: rate {v} outside [0, 1)")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLPSpec.activation: {self.activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"MLPSpec.norm: {self.norm!r}; allowed: {', '.join(NORMS)}")
        if self.order not in ORDERS:
            raise ValueError(f"MLPSpec.order: {self.order!r}; allowed: {', '.join(ORDERS)}")
        if self.ghost_batch < 2:
            raise ValueError("MLPSpec.ghost_batch: needs at least 2 rows to normalize")

    @property
    def batch_norm(self) -> bool:
        """True when the hidden blocks use (ghost) batch norm."""
        return self.norm in ("batch", "ghost")

    @property
    def hidden_bias(self) -> bool:
        """Whether the hidden Linear layers carry a bias (not when they feed BN)."""
        return not (self.batch_norm and self.order == "norm_dropout")

    @property
    def sizes(self) -> list:
        """(fan_in, fan_out) of every Linear layer, input to output."""
        widths = [self.d_in, *self.hidden, self.d_out]
        return list(zip(widths[:-1], widths[1:]))

    def rates(self, name: str, k: int | None) -> list:
        """Per-model rates of `name` (p_input or p_hidden) for K = k models.

        A scalar is repeated k times; k=None returns the sequence as given.
        """
        p = getattr(self, name)
        if isinstance(p, (int, float)):
            return [float(p)] * (1 if k is None else k)
        if k is not None and len(p) != k:
            raise ValueError(f"MLPSpec.{name}: {len(p)} per-model rates for {k} models")
        return list(p)

    def for_model(self, k: int, n_models: int) -> "MLPSpec":
        """The spec of model k alone (per-model rates replaced by its own)."""
        return MLPSpec(**{**self.__dict__,
                          "p_input": self.rates("p_input", n_models)[k],
                          "p_hidden": self.rates("p_hidden", n_models)[k]})
