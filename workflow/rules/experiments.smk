rule experiment:
    """One chunk of one experiment: every seed of the chunk, written as a tidy table."""
    input:
        unpack(experiment_data),
    output:
        R + "/{study}/{experiment}/chunk{chunk}.parquet",
    params:
        settings=lambda w: SETTINGS[w.experiment],
    threads: config["threads"]
    resources:
        mem_mb=RESOURCES.experiment("mem_mb"),
        runtime=RESOURCES.experiment("runtime"),
        gpu=RESOURCES.experiment("gpu"),
    log:
        R + "/logs/{study}/{experiment}/chunk{chunk}.log",
    benchmark:
        R + "/benchmarks/{study}/{experiment}/chunk{chunk}.tsv"
    script:
        "../scripts/experiment.py"


rule aggregate:
    """All chunks of an experiment in one table, plus a summary with 95% intervals over seeds."""
    input:
        experiment_chunks,
    output:
        table=R + "/tables/{experiment}.parquet",
        summary=R + "/tables/{experiment}.csv",
    resources:
        mem_mb=RESOURCES.rule("aggregate", "mem_mb"),
        runtime=RESOURCES.rule("aggregate", "runtime"),
    log:
        R + "/logs/aggregate/{experiment}.log",
    script:
        "../scripts/aggregate.py"
