"""Thin: write where the tables came from (versions, commit, device, config hash, checksums)."""
import json
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w")  # noqa: F821

from regbench import provenance  # noqa: E402

sm = snakemake  # noqa: F821
meta = provenance.collect(dict(sm.config), list(sm.input), sm.scriptdir)
with open(sm.output[0], "w") as f:
    json.dump(meta, f, indent=1, sort_keys=True)
print(provenance.to_markdown(meta))
