"""Verdict stability: run the whole workflow under several root seeds and say, per claim,
how many of them give the same verdict.

    python -m regbench.replicates --seeds 20261126 1 2 --cores 8 [--configfile F]

runs `snakemake` once per root seed, each into its own folder
(results/replicates/seed-<S>/, through the `results` and `seed` config keys), then
writes results/replicates/agreement.csv and .md: per claim, the verdict under each
root seed, the modal verdict and the share of root seeds that give it. A verdict that
changes with the root seed is a statement about one draw of data, not about the claim.
"""
import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

OUT = Path("results") / "replicates"


def agreement(ledgers: dict) -> pd.DataFrame:
    """Per claim ID: each replicate's verdict, the modal verdict and the share that agree with it."""
    wide = pd.concat({name: df.set_index("id").verdict for name, df in ledgers.items()}, axis=1)
    modal = wide.mode(axis=1)[0]
    share = wide.eq(modal, axis=0).mean(axis=1)
    return wide.assign(modal=modal, agreement=share).reset_index()


def to_markdown(table: pd.DataFrame) -> str:
    reps = [c for c in table.columns if c not in ("id", "modal", "agreement")]
    lines = ["| ID | " + " | ".join(reps) + " | agreement |", "|---|" + "---|" * (len(reps) + 1)]
    lines += [f"| {r['id']} | " + " | ".join(str(r[c]) for c in reps) + f" | {r['agreement']:.0%} |" for _, r in table.iterrows()]
    stable = table[table.agreement == 1].id.tolist()
    return ("\n".join(lines) + f"\n\nSame verdict under every root seed: {len(stable)} of {len(table)} claims "
            f"({', '.join(stable) or 'none'}).\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", required=True, help="root seeds, one workflow run each")
    ap.add_argument("--cores", type=int, default=8)
    ap.add_argument("--configfile", default=None, help="a config file (default: config/config.yaml)")
    args = ap.parse_args(argv)
    snakemake = Path(sys.executable).with_name("snakemake")
    ledgers = {}
    for seed in args.seeds:
        folder = OUT / f"seed-{seed}"
        cmd = [str(snakemake), "--cores", str(args.cores), "--config", f"seed={seed}", f"results={folder}"]
        if args.configfile:
            cmd[1:1] = ["--configfile", args.configfile]
        print(f"replicate root seed {seed}: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
        ledgers[f"seed {seed}"] = pd.read_csv(folder / "claims.csv")
    table = agreement(ledgers)
    table.to_csv(OUT / "agreement.csv", index=False)
    (OUT / "agreement.md").write_text("# Verdict agreement across root seeds\n\n" + to_markdown(table))
    print(to_markdown(table))


if __name__ == "__main__":
    main()
