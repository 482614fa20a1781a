"""Which figures exist, what they read, and the captions the report shows."""
from dataclasses import dataclass
from typing import Callable

from regbench.plots import linear


@dataclass
class Figure:
    study: str
    tables: list
    draw: Callable
    text: str


FIGURES = {
    "paths": Figure("linear", ["paths"], linear.paths,
                    "Coefficient paths of the lasso, elastic net (mixing 0.5) and ridge on the Problem 1 design, coloured by "
                    "feature group, and the number of exactly-zero coefficients along the path (claim L1)."),
    "kkt": Figure("linear", ["paths"], linear.kkt,
                  "The subgradient dead zone: for every coefficient of every path solution, the data-loss gradient divided by "
                  "lambda times the L1 weight, split by zero / non-zero; and the worst KKT violation per lambda (claim L2)."),
    "conditioning": Figure("linear", ["conditioning"], linear.conditioning,
                           "Measured condition number of X'X/n + lambda I against (s_max+lambda)/(s_min+lambda), and the spread "
                           "of coefficients across resampled datasets of near-collinear twins, OLS vs ridge (claim L4)."),
    "geometry": Figure("linear", ["geometry"], linear.geometry,
                       "Left: a real 2-D least-squares problem, its loss contours, the L1 and L2 balls of the constrained fits "
                       "and their solutions. Right: share of constrained lasso / ridge solutions with an exact zero as the "
                       "number of features grows, on random dense truths (claim L6)."),
    "problem1_selection": Figure("linear", ["problem1"], linear.problem1_selection,
                                 "Bootstrap selection frequency of every feature for the validation-tuned lasso and elastic "
                                 "net, and the Nogueira stability index on features 1-30 (claims L7a-d)."),
    "problem1_error": Figure("linear", ["problem1"], linear.problem1_error,
                             "Test MSE of each tuned method on the Problem 1 design, one dot per seed, mean with 95% "
                             "bootstrap interval (claim L7e)."),
    "problem1_sweep": Figure("linear", ["problem1_sweep"], linear.problem1_sweep,
                             "Where elastic net wins: for each swept design, paired test-MSE differences of elastic net "
                             "against lasso and ridge; a cell is a win when both 95% intervals are below zero (claim L7e)."),
    "failure_modes": Figure("linear", ["failure_modes"], linear.failure_modes,
                            "Why a zero lasso weight is no proof: informative features zeroed (correlated twin, quadratic, "
                            "interaction, weak signals under a large lambda) and stability selection's false selections "
                            "against the Meinshausen-Buhlmann bound (claim L8)."),
}


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
