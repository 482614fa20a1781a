"""Synthetic regression designs with known truth, described as plain config data.

A design is a dict (see config/README.md):

    n_train, n_val, n_test, p
    covariance: {family: independent | toeplitz | equicorrelated | twins | factors, ...}
    coef:       {first_k: k, value: b}  or  {values: [...]}  (padded with zeros to p),
                optionally placement: sources | spread | factor  (twins designs; see `truth`)
    noise:      {sigma: s}  or  {snr: r}   (snr = beta' Sigma beta / sigma^2)
"""
import numpy as np

from regbench.seeds import rng as make_rng

SPLITS = ("train", "val", "test")
FAMILIES = ("independent", "toeplitz", "equicorrelated", "twins", "factors")
# Where a twins design's signal sits (coef.placement): on the sources only (the
# document's Problem 1), spread evenly over each source's group, or on a latent
# factor that every feature of the group measures with noise.
PLACEMENTS = ("sources", "spread", "factor")


def twin_index(source: int, copy: int, sources: int, copies: int) -> int:
    """Column of the `copy`-th twin of `source` (the document's 1 -> 11, 12 layout)."""
    return sources + source * copies + copy


def covariance(spec: dict, p: int) -> np.ndarray:
    """Population covariance of the features for one covariance spec."""
    family = spec["family"]
    idx = np.arange(p)
    if family == "independent":
        return np.eye(p)
    if family == "toeplitz":
        return spec["rho"] ** np.abs(idx[:, None] - idx[None, :]).astype(float)
    if family == "equicorrelated":
        return np.full((p, p), float(spec["rho"])) + (1 - spec["rho"]) * np.eye(p)
    if family == "twins":
        # twin = r * source + sqrt(1-r^2) * fresh noise: corr(source, twin) = r,
        # corr(twin, twin of the same source) = r^2, every variance 1.
        s, c, r = spec["sources"], spec["copies"], spec["r"]
        if s * (1 + c) > p:
            raise ValueError(f"covariance.twins: sources*(1+copies) = {s * (1 + c)} exceeds p = {p}")
        sigma = np.eye(p)
        for i in range(s):
            group = [i] + [twin_index(i, k, s, c) for k in range(c)]
            for a in group:
                for b in group:
                    if a != b:
                        sigma[a, b] = r if i in (a, b) else r * r
        return sigma
    if family == "factors":
        # feature = shared group factor + independent noise of sd noise_sd
        g, size, sd = spec["n_groups"], spec["group_size"], spec["noise_sd"]
        if g * size > p:
            raise ValueError(f"covariance.factors: n_groups*group_size = {g * size} exceeds p = {p}")
        sigma = np.eye(p)
        for k in range(g):
            block = slice(k * size, (k + 1) * size)
            sigma[block, block] = 1.0
            sigma[block, block] += sd**2 * np.eye(size)
        return sigma
    raise ValueError(f"covariance.family: unknown {family!r}; allowed: {', '.join(FAMILIES)}")


def coefficients(spec: dict, p: int) -> np.ndarray:
    """True coefficient vector of length p."""
    beta = np.zeros(p)
    if "values" in spec:
        values = np.asarray(spec["values"], dtype=float)
        if values.size > p:
            raise ValueError(f"coef.values: {values.size} values for p = {p} features")
        beta[: values.size] = values
    else:
        if spec["first_k"] > p:
            raise ValueError(f"coef.first_k: {spec['first_k']} exceeds p = {p}")
        beta[: spec["first_k"]] = spec["value"]
    return beta


def noise_sigma(spec: dict, beta: np.ndarray, sigma_x: np.ndarray) -> float:
    """Noise standard deviation from an explicit sigma or a signal-to-noise ratio."""
    if "sigma" in spec:
        return float(spec["sigma"])
    signal = float(beta @ sigma_x @ beta)
    return float(np.sqrt(signal / spec["snr"]))


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    # eigh rather than Cholesky: equicorrelated rho -> 1 is singular but valid
    vals, vecs = np.linalg.eigh(sigma)
    return vecs * np.sqrt(np.clip(vals, 0, None))


def truth(design: dict) -> dict:
    """The population quantities of a design: covariance, coefficients, noise sd.

    coef.placement moves a twins design's signal (coefficient b of source i) while
    the signal each group carries stays b^2, so the signal-to-noise ratio is matched:
      sources  beta_i = b, twins 0 (the document's Problem 1)
      spread   every feature of the group gets b / sqrt(1' Sigma_g 1): y is the same
               per-group signal variance, evenly shared by correlated features
      factor   a latent factor f per group: every feature of the group is
               sqrt(r) f + sqrt(1 - r) e (every pair correlates r, twins included)
               and y carries b f. X spans f only partly: y's regression on X is
               beta = b sqrt(r) / (1 + (m-1) r) on each of the group's m features,
               and the rest of b f, b^2 (1 - m r / (1 + (m-1) r)), joins the noise
    """
    problems = placement_problems(design)
    if problems:
        raise ValueError(problems[0])
    p, cov, placement = design["p"], design["covariance"], design["coef"].get("placement", "sources")
    sigma_x = covariance(cov, p)
    beta = coefficients(design["coef"], p)
    latent = 0.0  # variance of y that the factor placement leaves outside X's span
    if placement != "sources":
        beta, groups = np.zeros(p), twin_groups(cov, p)
        for i, b in enumerate(coefficients(design["coef"], p)[: cov["sources"]]):
            g = np.flatnonzero(groups == i)
            if placement == "factor":
                r, m = cov["r"], g.size
                sigma_x[np.ix_(g, g)] = r + (1 - r) * np.eye(m)
                beta[g] = b * np.sqrt(r) / (1 + (m - 1) * r)
                latent += b**2 * (1 - m * r / (1 + (m - 1) * r))
            else:
                beta[g] = b / np.sqrt(sigma_x[np.ix_(g, g)].sum())
    sigma = noise_sigma(design["noise"], beta, sigma_x)
    return {"Sigma": sigma_x, "beta": beta, "sigma": float(np.sqrt(sigma**2 + latent))}


def twin_groups(cov: dict, p: int) -> np.ndarray:
    """Per feature of a twins design: the source it belongs with (itself for a
    source, its source for a twin), or -1 for a feature outside every group."""
    out = np.full(p, -1)
    s, c = cov["sources"], cov["copies"]
    out[:s] = np.arange(s)
    for i in range(s):
        out[[twin_index(i, k, s, c) for k in range(c)]] = i
    return out


def placement_problems(design: dict) -> list[str]:
    """Why a design's coef.placement cannot be built (messages name the key and the
    allowed values), or []: spread and factor need the groups of a twins covariance,
    signal only on its sources, and (factor) a correlation a factor can make, r >= 0."""
    placement, cov = design["coef"].get("placement", "sources"), design["covariance"]
    if placement not in PLACEMENTS:
        return [f"coef.placement: unknown {placement!r}; allowed: {', '.join(PLACEMENTS)}"]
    if placement == "sources":
        return []
    if cov["family"] != "twins":
        return [f"coef.placement: {placement!r} spreads each source's signal over its twins, but covariance.family is "
                f"{cov['family']!r}; allowed: placement sources, or covariance.family twins"]
    coef, s = design["coef"], cov["sources"]
    k = len(coef["values"]) if "values" in coef else coef["first_k"]
    if k > s:
        return [f"coef.{'values' if 'values' in coef else 'first_k'}: {k} coefficients, but placement {placement!r} "
                f"places signal on the {s} sources (covariance.sources) only; allowed: at most {s}"]
    if placement == "factor" and cov["r"] < 0:
        return [f"covariance.r: {cov['r']} with coef.placement 'factor' (features sqrt(r) f + noise); allowed: 0 <= r <= 1"]
    return []


def sample(design: dict, rng: np.random.Generator, population: dict | None = None) -> dict:
    """One dataset: X_<split>, y_<split> for train/val/test, plus the truth."""
    pop = population or truth(design)
    root = _sqrt_psd(pop["Sigma"])
    out = dict(pop)
    for split in SPLITS:
        n = design[f"n_{split}"]
        X = rng.standard_normal((n, design["p"])) @ root.T
        out[f"X_{split}"] = X
        out[f"y_{split}"] = X @ pop["beta"] + pop["sigma"] * rng.standard_normal(n)
    return out


def stream(root: int, name: str, *keys) -> np.random.Generator:
    """The data stream of design `name` (and *keys: a seed index, a sweep cell)."""
    return make_rng(root, "data", name, *keys)


def generate(design: dict, name: str, seeds: int, root: int) -> dict:
    """Every seed's dataset of a design, stacked on a leading seed axis.

    Seed i of design `name` always draws from the stream (root, "data", name, i),
    so adding seeds never changes the earlier ones.
    """
    pop = truth(design)
    draws = [sample(design, stream(root, name, i), pop) for i in range(seeds)]
    out = {k: np.stack([d[k] for d in draws]) for k in draws[0] if k.startswith(("X_", "y_"))}
    out.update({k: np.asarray(v) for k, v in pop.items()})
    return out


def save(path, data: dict) -> None:
    np.savez_compressed(path, **data)


def load(path) -> dict:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def group_labels(design: dict) -> np.ndarray:
    """Per feature: 'true' (non-zero coefficient), 'correlated' (shares a block with
    a true feature), or 'noise'. Used to colour paths and count noise zeroed."""
    pop = truth(design)
    return group_labels_from(pop["beta"], pop["Sigma"])


def group_labels_from(beta: np.ndarray, sigma_x: np.ndarray) -> np.ndarray:
    """group_labels from the population coefficients and covariance."""
    p = beta.size
    labels = np.full(p, "noise", dtype=object)
    linked = (np.abs(sigma_x[:, beta != 0]) > 1e-12).any(axis=1)
    labels[linked] = "correlated"
    labels[beta != 0] = "true"
    return labels


def blocks_from(beta: np.ndarray, sigma_x: np.ndarray) -> np.ndarray:
    """Per feature: the true feature it is most correlated with (itself for a true
    feature), or -1 for noise. Groups a source with its twins."""
    true = np.flatnonzero(beta != 0)
    if true.size == 0:
        return np.full(beta.size, -1)
    link = np.abs(sigma_x[:, true])
    return np.where(link.max(axis=1) > 1e-12, true[link.argmax(axis=1)], -1)
