rule figure:
    """One figure of the report, drawn from the aggregated tables."""
    input:
        figure_tables,
    output:
        report(
            "results/figures/{study}/{name}.png",
            caption="../report/figure.rst",
            category="{study}",
            subcategory="{name}",
        ),
    params:
        caption=figure_caption,
        footer=lambda w: rbfigures.footer(config, CONFIG_FILES, rbfigures.seeds_text(w.name, config)),
    log:
        "results/logs/figures/{study}/{name}.log",
    script:
        "../scripts/figure.py"


rule claims:
    """The ledger: one row per claim ID with statistic, 95% interval and verdict."""
    input:
        expand("results/tables/{experiment}.parquet", experiment=EXPERIMENTS),
    output:
        csv=report("results/claims.csv", caption="../report/claims.rst", category="Claims"),
        md="results/claims.md",
    params:
        header=lambda w: rbfigures.footer(config, CONFIG_FILES, "seeds per experiment as configured"),
    log:
        "results/logs/claims.log",
    script:
        "../scripts/claims.py"
