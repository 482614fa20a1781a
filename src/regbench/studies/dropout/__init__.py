"""Dropout with the batched MLP engine: train/inference expectations of standard,
inverted and the document's Problem 2 dropout (N1), weight scaling vs the mask
ensemble (N2), the best rate by layer and training-set size (N3), and MC dropout's
uncertainty (N4)."""


def problems(cfg: dict) -> list[str]:
    """Cross-key checks a schema cannot express, each naming its key."""
    out = []
    mc = cfg["experiments"].get("dropout_mc")
    teacher = cfg["teachers"].get(mc["teacher"]) if mc else None
    if teacher and mc["mc_rows"] > teacher["n_test"]:
        out.append(f"experiments.dropout_mc.mc_rows: {mc['mc_rows']} exceeds the n_test = {teacher['n_test']} rows "
                   f"of teacher {mc['teacher']!r}; allowed: at most n_test")
    return out


# A best rate on the top of its grid in more than 5% of seeds means a higher rate,
# untried, may be better: the ledger says so. Rate 0 (no dropout) is where the
# rate's range ends, so a pick there is no edge.
EDGE_SHARE_MAX = 0.05


def details(tables: dict) -> str:
    """Below the ledger: how often N3's best dropout rate sits on the top of its grid."""
    if "dropout_rates" not in tables:
        return ""
    from regbench import tables as rbtables
    df = tables["dropout_rates"]
    loss = "validation loss" if (df.metric == "val_loss").any() else "test loss"
    shares = top_edge_shares(df)
    high = shares[(shares.seeds_at_top > EDGE_SHARE_MAX) | shares.best_at_top]
    where = "; ".join(f"{r.layer} {r.top_rate:g}, {r.when}, n_train = {r.n_train}: {r.seeds_at_top:.0%} of seeds"
                      + (", and the rule's pick" if r.best_at_top else "") for r in high.itertuples())
    verdict = (f"**N3**: the best rate is the top rate tried in more than {EDGE_SHARE_MAX:.0%} of seeds ({where}); "
               "a better rate may lie above the grid." if where else f"Every share is at most {EDGE_SHARE_MAX:.0%}.")
    return ("\n## Best dropout rate on a grid edge (dropout_rates, claim N3)\n\n"
            f"Per layer, regime and training-set size: the top rate tried, the share of seeds whose lowest {loss} is "
            f"at it, and whether the rate of the lowest mean {loss} (N3's pick) is at it. Rate 0 ends the rate's "
            "range, so it is no edge.\n\n" + rbtables.to_markdown(shares) + "\n" + verdict + "\n")


def top_edge_shares(df):
    """DataFrame per (layer, when, n_train): top_rate, seeds_at_top (share), best_at_top (the mean-over-seeds pick).

    Picks are made on the loss N3 chooses the rate by: the validation loss where
    the table has it, else the test loss."""
    import pandas as pd
    s = df[df.metric == ("val_loss" if (df.metric == "val_loss").any() else "test_loss")]
    rows = []
    for (layer, when, n), g in s.groupby(["layer", "when", "n_train"]):
        w = g.pivot_table(index="seed", columns="rate", values="value")
        top = float(w.columns.max())
        rows.append(dict(layer=layer, when=when, n_train=int(n), top_rate=top,
                         seeds_at_top=float((w.idxmin(axis=1) == top).mean()), best_at_top=bool(w.mean().idxmin() == top)))
    return pd.DataFrame(rows)
