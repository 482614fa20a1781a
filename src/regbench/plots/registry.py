"""Every figure of the report: which study it belongs to, what it reads, its caption.

Each plots module of a study defines FIGURES: name -> Figure. Plot modules
import no torch, so the Snakefile can plan figures cheaply.
"""
from regbench.plots import augmentation, batchnorm, dropout, implicit, linear, training

FIGURES = {**linear.FIGURES, **dropout.FIGURES, **batchnorm.FIGURES, **training.FIGURES, **implicit.FIGURES,
           **augmentation.FIGURES}


def seeds_text(name: str, cfg: dict) -> str:
    """The seed count (and design) of the experiments behind a figure."""
    parts = []
    for t in FIGURES[name].tables:
        p = cfg["experiments"].get(t, {})
        parts.append(f"{t}: {p.get('seeds', '?')} seeds" + (f", design {p['design']}" if "design" in p else ""))
    return "; ".join(parts)


def footer(cfg: dict, config_files: str, extra: str) -> str:
    """Provenance line printed on every figure."""
    return f"config {config_files} | root seed {cfg['seed']} | {extra} | 95% intervals: bootstrap over seeds"


def caption(name: str, cfg: dict, config_files: str) -> str:
    return f"{FIGURES[name].text} Config: {config_files}, root seed {cfg['seed']}; {seeds_text(name, cfg)}."
