"""Every figure of the report, drawn from the tiny config's tables, reads cleanly: no text
leaves the canvas and the title, footer, panel titles and axis labels overlap nothing."""
import matplotlib
import numpy as np
import pandas as pd
import pytest

from regbench import studies
from regbench.figures import new, finish

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def tables(tiny_tables):
    return tiny_tables


def _labels(fig):
    """The text a reader must read whole: suptitle, footer, panel titles, axis labels."""
    texts = [t for t in fig.texts if t.get_text()]
    if fig._suptitle is not None and fig._suptitle not in texts:
        texts.append(fig._suptitle)
    for ax in fig.axes:
        texts += [t for t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label) if t.get_text()]
    return texts


def layout_problems(fig) -> list[str]:
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    canvas = fig.bbox
    boxes = [(t.get_text()[:40].replace("\n", " "), t.get_window_extent(r)) for t in _labels(fig)]
    out = [f"'{name}' leaves the canvas" for name, b in boxes
           if b.x0 < canvas.x0 - 1 or b.y0 < canvas.y0 - 1 or b.x1 > canvas.x1 + 1 or b.y1 > canvas.y1 + 1]
    for i, (a, ba) in enumerate(boxes):
        for b, bb in boxes[i + 1:]:
            if ba.overlaps(bb) and ba.intersection(ba, bb).width > 2 and ba.intersection(ba, bb).height > 2:
                out.append(f"'{a}' overlaps '{b}'")
    return out


def test_the_checker_catches_a_planted_overlap():
    fig, axes = new(ncols=2)
    axes[0, 0].set_ylabel("a long y label " * 6)  # runs off the canvas
    axes[0, 0].set_title("x" * 200)                # runs into the neighbour's title
    axes[0, 1].set_title("right panel")
    assert layout_problems(fig)
    fig2, ax2 = new()
    ax2[0, 0].set_title("fine")
    assert layout_problems(finish(fig2, "A short finding", "config x | root seed 1")) == []


@pytest.mark.parametrize("name", sorted(studies.figures()))
def test_figure_reads_cleanly(tables, name):
    fig_def = studies.figures()[name]
    if not set(fig_def.tables) <= set(tables):
        pytest.skip("experiment not in the tiny config")
    footer = "config tests/tiny_config.yaml | root seed 7 | tiny: 2-6 seeds | 95% intervals: Student t over seeds"
    fig = fig_def.draw({t: tables[t] for t in fig_def.tables}, footer)
    problems = layout_problems(fig)
    matplotlib.pyplot.close(fig)
    assert not problems, f"{name}: " + "; ".join(problems)


def test_calibration_figure_reads_cleanly():
    from regbench import figures
    cal = pd.DataFrame(dict(id=["L1", "N8"], family=["paired", "regimes"], seeds=[5, 20], cells=[1, 3], sd=[1.0, 0.1],
                            sesoi=[1.0, 0.01], false_rate=[0.04, 0.06], false_rate_se=[0.007, 0.007], power=[0.5, 0.9]))
    fig = figures.calibration(cal, "footer")
    assert layout_problems(fig) == []
    assert "for 0 of 2" in fig._suptitle.get_text() and np.isclose(len(fig.axes), 2)
