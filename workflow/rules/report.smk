rule figure:
    """One figure of the report, drawn from the aggregated tables."""
    input:
        figure_tables,
    output:
        report(
            R + "/figures/{study}/{name}.png",
            caption="../report/figure.rst",
            category="{study}",
            subcategory="{name}",
        ),
    params:
        caption=figure_caption,
        footer=lambda w: footer_template("{seeds}"),  # a function: braces in a string param are wildcards
    resources:
        mem_mb=RESOURCES.rule("figure", "mem_mb"),
        runtime=RESOURCES.rule("figure", "runtime"),
    log:
        R + "/logs/figures/{study}/{name}.log",
    script:
        "../scripts/figure.py"


rule provenance:
    """Where the tables came from: package versions, git commit, device, config hash, each table's checksum."""
    input:
        expand(R + "/tables/{experiment}.parquet", experiment=EXPERIMENTS),
    output:
        report(R + "/tables/metadata.json", caption="../report/metadata.rst", category="Claims"),
    resources:
        mem_mb=RESOURCES.rule("provenance", "mem_mb"),
        runtime=RESOURCES.rule("provenance", "runtime"),
    log:
        R + "/logs/provenance.log",
    script:
        "../scripts/provenance.py"


rule replicate:
    """The whole workflow again under another root seed, into its own folder, for the
    ledger's agreement column (config key `replicates`). A nested run of this Snakefile:
    one job that uses every core given to the outer run."""
    output:
        R + "/replicates/seed-{root}/claims.csv",
    params:
        command=replicate_command,
    threads: workflow.cores
    resources:
        mem_mb=RESOURCES.whole_run("mem_mb", workflow.cores),
        runtime=RESOURCES.whole_run("runtime", workflow.cores),
    log:
        R + "/logs/replicates/seed-{root}.log",
    shell:
        "{PYTHON} -m snakemake {params.command} --cores {threads} > {log} 2>&1"


rule claims:
    """The ledger: one row per claim ID of CLAIMS.md with statistic, 95% interval and verdict."""
    input:
        tables=expand(R + "/tables/{experiment}.parquet", experiment=EXPERIMENTS),
        metadata=R + "/tables/metadata.json",
        replicates=[f"{R}/replicates/seed-{s}/claims.csv" for s in REPLICATE_SEEDS],
    output:
        csv=report(R + "/claims.csv", caption="../report/claims.rst", category="Claims"),
        md=R + "/claims.md",
        # the verdict engine's own calibration at every claim's operating point (regbench.verdict_sim)
        calibration=R + "/tables/verdict_calibration.csv",
        calibration_figure=report(R + "/figures/verdicts/calibration.png", caption="../report/calibration.rst", category="Claims"),
    params:
        header=lambda w: footer_template("{seeds}"),
        # the IDs, not the file: a fresh checkout's newer CLAIMS.md must not rerun a finished ledger
        ids=CLAIM_IDS,
    resources:
        mem_mb=RESOURCES.rule("claims", "mem_mb"),
        runtime=RESOURCES.rule("claims", "runtime"),
    log:
        R + "/logs/claims.log",
    script:
        "../scripts/claims.py"
