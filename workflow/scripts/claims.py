"""Thin: compute every claim's verdict from the tables and write the ledger."""
import json
import os
from pathlib import Path

from regbench import checks, jobs

jobs.log_to(snakemake.log[0])  # noqa: F821

import pandas as pd  # noqa: E402

from regbench import figures, ledger, provenance, replicates, studies, verdict_sim  # noqa: E402
from regbench.figures import save  # noqa: E402

sm = snakemake  # noqa: F821
# every table checked against the config and the checksums in metadata.json: a mismatch is an error, never a verdict
tables = checks.load_checked(sm.input.tables, sm.config, sm.input.metadata)
header = sm.params.header.replace("{config}", os.environ.get("REGBENCH_CONFIG", "?")).replace(
    "{seeds}", checks.seeds_text(tables, sm.config))  # seed counts from the tables, not the config
table = ledger.evaluate(tables, sm.params.ids)
agreement = ""
if sm.input.replicates:  # config `replicates`: the same ledger under other root seeds
    others = {Path(f).parent.name.replace("-", " "): pd.read_csv(f) for f in sm.input.replicates}
    reps = replicates.agreement(table, others)
    table = table.assign(agreement=reps.agreement.to_numpy(), root_seeds=len(others) + 1)
    agreement = ("\n## Verdicts across root seeds\n\nThe whole workflow under each root seed "
                 "(config `replicates`; folders `replicates/seed-<S>/`):\n\n"
                 + replicates.to_markdown(reps, f"seed {sm.config['seed']} (this run)"))
table.to_csv(sm.output.csv, index=False)
meta = json.loads(Path(sm.input.metadata).read_text())
text = ledger.to_markdown(table, "# regbench claims ledger\n\n" + header + "\n\n" + provenance.to_markdown(meta))
# the engine's own calibration at every claim's operating point, shown beside the ledger
cal = verdict_sim.claim_calibration(table)
cal.to_csv(sm.output.calibration, index=False)
save(figures.calibration(cal, header), sm.output.calibration_figure)
text += ("\n## How often this engine is wrong\n\nPlanted data at each claim's seed count, cells, per-seed sd and "
         "smallest effect of interest (`regbench.verdict_sim`, 1,000 simulated data sets each): the share of false verdicts "
         "when there is no effect (goal: at most 5%) and of `supported` at twice the smallest effect (goal: at least 80%). "
         "Figure: `figures/verdicts/calibration.png`.\n\n" + verdict_sim.to_markdown(cal))
Path(sm.output.md).write_text(text + agreement + studies.details(tables))
print(table[["id", "verdict"]].to_string())
