# regbench: every claim of the study document, measured. See README.md.
# The config (config/config.yaml, then --configfile files) is loaded, merged and
# validated in workflow/rules/common.smk, not by a `configfile:` directive:
# Snakemake's deep merge cannot say which experiments run, and its parser drops
# duplicate keys and YAML error lines.
from snakemake.utils import min_version

min_version("8.0")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/experiments.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
