"""Figures. Each figure function takes the result tables (dict name -> DataFrame)
and a footer line (config and seeds) and returns a matplotlib Figure whose
title states what the data show, computed from the data."""
import matplotlib

matplotlib.use("Agg")

import textwrap  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
COLORS = {"lasso": "#0072B2", "enet": "#009E73", "ridge": "#D55E00", "ols": "#999999",
          "true": "#0072B2", "correlated": "#E69F00", "noise": "#BBBBBB"}
SEQ = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
LABELS = {"lasso": "lasso (L1)", "enet": "elastic net", "ridge": "ridge (L2)", "ols": "OLS"}


def new(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 4.2, **kw):
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 9.5, "axes.spines.top": False, "axes.spines.right": False})
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)


def finish(fig, title: str, footer: str):
    """Title (the finding) on top, provenance (config, seeds) at the bottom."""
    width = fig.get_size_inches()[0]
    title = "\n".join(textwrap.wrap(title, int(width * 10.5)))
    footer = "\n".join(textwrap.wrap(footer, int(width * 19)))
    n_title, n_foot = title.count("\n") + 1, footer.count("\n") + 1
    height = fig.get_size_inches()[1]
    fig.suptitle(title, fontsize=11, fontweight="bold")
    fig.text(0.01, 0.005, footer, fontsize=7, color="#444444", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.2 * n_foot / height, 1, 1 - 0.22 * n_title / height))
    return fig


def save(fig, path):
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class Figure:
    """A figure of the report: its study (folder and report category), the
    experiment tables it reads, the function that draws it, and its caption."""
    study: str
    tables: list
    draw: Callable
    text: str
