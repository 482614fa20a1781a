"""Figure of the fine-tuning study (N17)."""
from regbench.figures import SEQ, Figure, finish, new
from regbench.studies.finetune.claims import CLIP_REF, N17_PARTS, RECIPE, ft_cells, ft_parts


def _ft_order(df):
    """Arms top to bottom: full, full minus each part, baseline plus each part, references."""
    present = set(df.arm)
    controls = sorted(a for a in present if str(a).startswith("no_clipping_"))  # clipping's lr / warmup controls
    order = ["full"] + [f"no_{c}" for c in RECIPE] + controls + [f"only_{c}" for c in RECIPE] + ["scratch", "head_only"]
    return [a for a in order if a in present]


def _contributions(df) -> dict:
    """Each accuracy-judged part's mean contribution over sizes, against the reference its ledger row
    (N17_PARTS) uses: clipping against the validation-picked no_clipping control (N17f), not plain
    removal; label smoothing is judged on ECE (N17d) and left out of this accuracy ranking."""
    out = {}
    for c in RECIPE:
        _, _, _, a, b, metric, _, _ = N17_PARTS[c]
        cells = ft_cells(df, a, b) if metric == "acc" and (df.arm == f"no_{c}").any() else None
        if cells is not None and len(cells):
            out[c] = cells["mean"].mean()
    return out


def _reference(part: str) -> str:
    b = N17_PARTS[part][4]
    return "the no-clipping arm picked on validation" if b == CLIP_REF else b


def finetune_ablation(t, footer):
    """Paired differences against the baseline (all parts off) for every fine-tuning arm, per size."""
    df = t["finetune"]
    arms = _ft_order(df)
    ns = sorted(df[df.metric == "acc"].n_train.unique())
    metrics = [("acc", 100, "test accuracy minus baseline (points)"), ("ece", 1, "test ECE minus baseline (15 bins)")]
    fig, axes = new(ncols=len(metrics) * len(ns), width=3.3, height=0.3 * len(arms) + 1.6)
    color = lambda a: ("#000000" if a == "full" else SEQ[0] if a.startswith("no_") else SEQ[1] if a.startswith("only_")  # noqa: E731
                       else SEQ[3])
    for j, n in enumerate(ns):
        for m, (metric, scale, label) in enumerate(metrics):
            ax = axes[0, m * len(ns) + j]
            sub = df[df.n_train == n]
            for y, arm in enumerate(arms):
                c = ft_cells(sub, arm, "baseline", metric)
                if c.empty:
                    continue
                r = c.iloc[0]
                ax.errorbar(scale * r["mean"], y, xerr=[[scale * (r["mean"] - r.lo)], [scale * (r.hi - r["mean"])]],
                            fmt="o", color=color(arm), capsize=2, ms=4)
            ax.axvline(0, color="k", lw=0.8)
            ax.set_yticks(range(len(arms)))
            ax.set_yticklabels(arms if m * len(ns) + j == 0 else [], fontsize=7)
            ax.set_ylim(len(arms) - 0.5, -0.5)
            ax.set_xlabel(label)
            ax.set_title(f"n = {int(n)} fine-tuning images")
    rec = ft_parts(df)["recipe"].sort_values("n_train")
    contrib = _contributions(df)
    best = max(contrib, key=contrib.get) if contrib else None
    title = ("Full fine-tuning recipe vs baseline: " + ", ".join(f"{100 * r['mean']:+.1f} pts at n={int(r.n_train)}"
                                                           for _, r in rec.iterrows())
             + (f"; the part that adds most accuracy, as its ledger row judges it: {best} (full minus "
                f"{_reference(best)}: {100 * contrib[best]:+.1f} pts, mean over n)" if best else "")
             + "; blue: full minus one part, orange: baseline plus one part, red: references")
    return finish(fig, title, footer)


FIGURES = {
    "finetune_ablation": Figure(["finetune"], finetune_ablation,
                                "Problem 3's fine-tuning recipe as an ablation on a small CNN pretrained on digits 0-4 and "
                                "fine-tuned on few digits 5-9: test accuracy and ECE of every arm minus the baseline (all "
                                "parts off), paired over seeds with 95% intervals: the full recipe, the full recipe without "
                                "each part, the baseline with each part alone, the recipe from scratch and with frozen "
                                "conv layers (claim N17)."),
}
