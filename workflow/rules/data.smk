rule data:
    """Every seed's dataset of one design, with its truth, and its correlation figure."""
    output:
        data="results/data/{design}.npz",
        figure=report(
            "results/figures/data/{design}.png",
            caption="../report/data.rst",
            category="Data",
            subcategory="{design}",
        ),
    params:
        seeds=lambda w: rbjobs.seeds_needed(config)[w.design],
        footer=lambda w: rbfigures.footer(config, CONFIG_NAME, f"design {w.design}"),
    log:
        "results/logs/data/{design}.log",
    script:
        "../scripts/data.py"
