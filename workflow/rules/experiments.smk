rule experiment:
    """One chunk of one experiment: every seed of the chunk, written as a tidy table."""
    input:
        unpack(experiment_data),
    output:
        "results/{study}/{experiment}/chunk{chunk}.parquet",
    threads: config["threads"]
    log:
        "results/logs/{study}/{experiment}/chunk{chunk}.log",
    benchmark:
        "results/benchmarks/{study}/{experiment}/chunk{chunk}.tsv"
    script:
        "../scripts/experiment.py"


rule aggregate:
    """All chunks of an experiment in one table, plus a summary with 95% intervals over seeds."""
    input:
        experiment_chunks,
    output:
        table="results/tables/{experiment}.parquet",
        summary="results/tables/{experiment}.csv",
    log:
        "results/logs/aggregate/{experiment}.log",
    script:
        "../scripts/aggregate.py"
