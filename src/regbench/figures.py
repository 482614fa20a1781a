"""Figure helpers shared by the studies. Each figure function takes the result
tables (dict name -> DataFrame) and a footer line (config and seeds) and returns
a matplotlib Figure whose title states what the data show, computed from the
data. No torch here: the Snakefile imports every study's figures."""
import matplotlib

matplotlib.use("Agg")

import dataclasses  # noqa: E402
import textwrap  # noqa: E402
from typing import Callable  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
COLORS = {"lasso": "#0072B2", "enet": "#009E73", "ridge": "#D55E00", "ols": "#999999",
          "true": "#0072B2", "correlated": "#E69F00", "noise": "#BBBBBB"}
SEQ = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
LABELS = {"lasso": "lasso (L1)", "enet": "elastic net", "ridge": "ridge (L2)", "ols": "OLS"}


def new(ncols: int = 1, nrows: int = 1, width: float = 5.0, height: float = 4.2, **kw):
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 9.5, "axes.spines.top": False, "axes.spines.right": False})
    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)


def finish(fig, title: str, footer: str):
    """Title (the finding) on top, provenance (config, seeds) at the bottom, panels in between.

    The footer's height is measured after drawing, not guessed from a line count, and
    tight_layout keeps the title clear, so neither leaves a blank band nor runs into a panel."""
    width = fig.get_size_inches()[0]
    title = "\n".join(textwrap.wrap(title, int(width * 10.5)))
    footer = "\n".join(textwrap.wrap(footer, int(width * 19)))
    fig.suptitle(title, fontsize=11, fontweight="bold", y=0.995, va="top")
    foot = fig.text(0.01, 0.005, footer, fontsize=7, color="#444444", ha="left", va="bottom")
    fig.canvas.draw()
    footer_top = fig.transFigure.inverted().transform(foot.get_window_extent(fig.canvas.get_renderer()))[1, 1]
    pad = 0.08 / fig.get_size_inches()[1]  # 0.08 inch between the panels and the title or footer
    # tight_layout already keeps the suptitle clear of the panels: only the footer is ours to reserve
    fig.tight_layout(rect=(0, footer_top + pad, 1, 1))
    return fig


def save(fig, path):
    fig.savefig(path, dpi=110)
    plt.close(fig)


def correlation(X, name: str, footer: str):
    """Empirical correlation matrix of one dataset."""
    fig, ax = new(width=5.6, height=5.0)
    ax = ax[0, 0]
    corr = np.corrcoef(X.T)
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="empirical correlation")
    ax.set_xlabel("feature index")
    ax.set_ylabel("feature index")
    off = np.abs(corr[~np.eye(len(corr), dtype=bool)])
    return finish(fig, f"Design '{name}': {X.shape[1]} features, {X.shape[0]} training rows; "
                       f"{(off > 0.5).sum() // 2} feature pairs with |r| > 0.5", footer)


def calibration(table, footer: str):
    """The verdict engine at each claim's operating point: false-verdict rate under a planted
    null and power at twice the smallest effect of interest (regbench.verdict_sim)."""
    t = table.dropna(subset=["false_rate"]) if "false_rate" in table else table.iloc[:0].assign(
        false_rate=[], false_rate_se=[], power=[])
    fig, axes = new(ncols=2, width=5.0, height=0.25 * max(len(t), 4) + 1.6)
    y = np.arange(len(t))
    for ax, col, bar, label in ((axes[0, 0], "false_rate", 0.05, "false-verdict rate under a planted null"),
                                (axes[0, 1], "power", 0.80, "power at 2x the smallest effect of interest")):
        over = t.false_rate > bar + 2 * t.false_rate_se if col == "false_rate" else t.power < bar
        ax.barh(y, t[col], color=[SEQ[3] if o else SEQ[0] for o in over])
        ax.axvline(bar, color="k", ls="--", lw=0.8)
        ax.set_yticks(y, [f"{i} ({f}, {int(n)} seeds)" for i, f, n in zip(t.id, t.family, t.seeds)], fontsize=7)
        ax.set_ylim(len(t) - 0.5, -0.5)
        ax.set_xlim(0, 1 if col == "power" else max(0.1, t[col].max() * 1.2))
        ax.set_xlabel(label)
    bad = (t.false_rate > 0.05 + 2 * t.false_rate_se).sum()
    weak = (t.power < 0.80).sum()
    return finish(fig, f"Verdict engine on planted data at each claim's seeds and noise: false-verdict rate above 5% (beyond "
                       f"simulation error) for {bad} of {len(t)} simulated claims; power at 2x the smallest effect of interest "
                       f"below 80% for {weak} (red)", footer)


@dataclasses.dataclass(frozen=True)
class Figure:
    """A figure of the report: the experiment tables it reads, the function that
    draws it, its caption, and (filled in by the registry) its study."""
    tables: list
    draw: Callable
    text: str
    study: str = ""

    def placed(self, study: str) -> "Figure":
        return dataclasses.replace(self, study=study)

    def path(self, name: str) -> str:
        return f"figures/{self.study}/{name}.png"


def seeds_text(fig: Figure, cfg: dict) -> str:
    """The seed count (and design) of the experiments behind a figure."""
    parts = []
    for t in fig.tables:
        p = cfg["experiments"].get(t, {})
        parts.append(f"{t}: {p.get('seeds', '?')} seeds" + (f", design {p['design']}" if "design" in p else ""))
    return "; ".join(parts)


def footer(cfg: dict, config_name: str, extra: str) -> str:
    """Provenance line printed on every figure."""
    return (f"config {config_name} | root seed {cfg['seed']} | {extra} | 95% intervals over seeds: Student t for means, "
            "BCa bootstrap where a panel says so")


def caption(fig: Figure, cfg: dict, config_name: str) -> str:
    return f"{fig.text} Config: {config_name}, root seed {cfg['seed']}; {seeds_text(fig, cfg)}."
