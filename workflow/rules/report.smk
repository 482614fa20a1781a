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
        footer=figure_footer,
    log:
        "results/logs/figures/{study}/{name}.log",
    script:
        "../scripts/figure.py"


rule provenance:
    """Where the tables came from: package versions, git commit, device, config hash, each table's checksum."""
    input:
        expand("results/tables/{experiment}.parquet", experiment=EXPERIMENTS),
    output:
        report("results/tables/metadata.json", caption="../report/metadata.rst", category="Claims"),
    log:
        "results/logs/provenance.log",
    script:
        "../scripts/provenance.py"


rule claims:
    """The ledger: one row per claim ID of CLAIMS.md with statistic, 95% interval and verdict."""
    input:
        tables=expand("results/tables/{experiment}.parquet", experiment=EXPERIMENTS),
        metadata="results/tables/metadata.json",
    output:
        csv=report("results/claims.csv", caption="../report/claims.rst", category="Claims"),
        md="results/claims.md",
    params:
        header=lambda w: rbfigures.footer(config, CONFIG_NAME, "seeds per experiment as configured"),
        # the IDs, not the file: a fresh checkout's newer CLAIMS.md must not rerun a finished ledger
        ids=CLAIM_IDS,
    log:
        "results/logs/claims.log",
    script:
        "../scripts/claims.py"
