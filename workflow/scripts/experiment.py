"""Thin: run one chunk of one experiment and write its tidy table."""
import time

from regbench import jobs

jobs.log_to(snakemake.log[0])  # noqa: F821  (progress: tail -f the log; an error also reaches the console)

from threadpoolctl import threadpool_limits  # noqa: E402

from regbench import data  # noqa: E402

sm = snakemake  # noqa: F821
threadpool_limits(sm.threads)  # BLAS threads = the rule's threads: jobs run side by side
start = time.time()
d = data.load(sm.input.data) if "data" in sm.input.keys() else None
print(f"{sm.wildcards.experiment} chunk {sm.wildcards.chunk}: start", flush=True)
table = jobs.run(sm.wildcards.experiment, sm.config, int(sm.wildcards.chunk), d)
table.to_parquet(sm.output[0])
print(f"{len(table)} rows in {time.time() - start:.1f} s")
