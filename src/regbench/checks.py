"""What the claims step reads is what the config says it must be.

Before a verdict is computed, every result table is checked against the config
and against the checksums the workflow recorded when it wrote the tables
(results/tables/metadata.json, regbench.provenance): a table changed behind the
workflow's back, one that cannot be read, one holding another experiment, fewer
or more seeds than configured, a grid other than the configured sweep, or
non-finite values where the study does not allow them is an error naming the
table and what is wrong, never a verdict.

Non-finite values: a value that is non-finite for every seed of its row (the
l1_ratio of OLS, a slope not defined for a regime) is "not applicable" and
allowed; one that is non-finite for some seeds only is allowed just for the
metrics a study lists in its optional NONFINITE (experiment -> metrics).
Seeds: every metric holds every configured seed, or only seed 0 everywhere (an
illustration drawn once, such as example images).
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd

from regbench import config as rbconfig
from regbench import provenance, studies

COLUMNS = ("experiment", "seed", "metric", "value")


class TableError(ValueError):
    """Result tables that the claims step must not read; the message lists every problem."""


def nonfinite_allowed(experiment: str) -> set:
    """Metrics of an experiment that may be non-finite for some seeds (the study's NONFINITE)."""
    study = studies.study_of().get(experiment)
    declared = getattr(studies.package(study), "NONFINITE", {}) if study else {}
    return set(declared.get(experiment, ()))


def check_table(name: str, table: pd.DataFrame, params: dict, allowed=frozenset()) -> list[str]:
    """Problems of one experiment's table against its config params (empty: fine)."""
    missing = [c for c in COLUMNS if c not in table]
    if missing:
        return [f"table {name}: column(s) {missing} missing; a result table has {', '.join(COLUMNS)}"]
    if table.empty:
        return [f"table {name}: no rows"]
    out = []
    others = sorted(set(table.experiment.astype(str)) - {name})
    if others:
        out.append(f"table {name}: holds rows of experiment(s) {others}, not {name} (a table swapped or renamed?)")
    n = params["seeds"]
    have = set(pd.to_numeric(table.seed, errors="coerce").dropna().astype(int))
    lost, extra = sorted(set(range(n)) - have), sorted(have - set(range(n)))
    if lost:
        out.append(f"table {name}: seed(s) {_few(lost)} missing; the config has {n} seeds (0-{n - 1})")
    if extra:
        out.append(f"table {name}: seed(s) {_few(extra)} beyond the config's {n} seeds")
    keys = sorted(params.get("sweep", {}))
    absent = [k for k in keys if k not in table]
    if absent:
        out.append(f"table {name}: sweep column(s) {absent} missing")
        keys = []
    if keys:
        want = {tuple(p[k] for k in keys) for p in rbconfig.sweep_points(params)}
        got = set(map(tuple, table[keys].dropna().drop_duplicates().itertuples(index=False)))
        if want - got:
            out.append(f"table {name}: grid point(s) {_few(sorted(want - got, key=str))} of sweep {keys} missing")
        if got - want:
            out.append(f"table {name}: grid point(s) {_few(sorted(got - want, key=str))} not in the config's sweep {keys}")
    if not lost and not extra:
        out += _metric_seeds(name, table, keys, n)
    return out + _nonfinite(name, table, allowed)


def _metric_seeds(name, table, keys, n) -> list[str]:
    counts = table.groupby(["metric"] + keys, dropna=False).seed.nunique().groupby(level=0)
    bad = [m for m, c in counts if not ((c == n).all() or (c == 1).all())]
    if not bad:
        return []
    return [f"table {name}: metric(s) {_few(bad)} lack some of the {n} seeds in some settings"]


def _nonfinite(name, table, allowed) -> list[str]:
    value = pd.to_numeric(table.value, errors="coerce")
    bad = ~np.isfinite(value.to_numpy(dtype=float))
    if not bad.any():
        return []
    ident = [c for c in table.columns if c not in ("seed", "value")]
    groups = pd.Series(bad, index=table.index).groupby([table[c] for c in ident], dropna=False)
    # not applicable: non-finite for every seed of its row
    partial = groups.transform("any").to_numpy(dtype=bool) & ~groups.transform("all").to_numpy(dtype=bool)
    rows = table[partial & ~table.metric.isin(allowed).to_numpy()]
    if rows.empty:
        return []
    metrics = sorted(rows.metric.astype(str).unique())
    return [f"table {name}: {len(rows)} non-finite value(s) for some seeds only, in metric(s) {_few(metrics)} "
            f"(seeds {_few(sorted(rows.seed.unique().tolist()))}); allowed non-finite here: {sorted(allowed) or 'none'}"]


def _few(items, k: int = 6) -> str:
    items = list(items)
    return ", ".join(map(str, items[:k])) + (f" and {len(items) - k} more" if len(items) > k else "")


def load_checked(paths, cfg: dict, metadata=None) -> dict:
    """name -> table for the claims step; TableError listing every problem of every table.

    `metadata`: the path of metadata.json, whose SHA-256 per table must match the file."""
    sums = json.loads(Path(metadata).read_text()).get("tables", {}) if metadata else None
    tables, problems = {}, []
    for path in map(Path, paths):
        name = path.stem
        rebuild = f"rebuild it: snakemake --cores 8 --forcerun {path}"
        if sums is not None and sums.get(name) != provenance.sha256(path):
            problems.append(f"table {name}: {path} differs from the checksum recorded when the workflow wrote it "
                            f"({Path(metadata).name}); it changed behind the workflow's back: {rebuild}")
            continue
        try:
            table = pd.read_parquet(path)
        except Exception as err:  # noqa: BLE001 - any reader error means the same: unreadable
            problems.append(f"table {name}: {path} cannot be read ({type(err).__name__}: {err}); {rebuild}")
            continue
        if name not in cfg["experiments"]:
            problems.append(f"table {name}: not an experiment of this config")
            continue
        found = check_table(name, table, cfg["experiments"][name], nonfinite_allowed(name))
        problems += found
        tables[name] = table
    if problems:
        raise TableError("the claims step will not read these tables:\n  - " + "\n  - ".join(problems))
    return tables


def seeds_text(tables: dict, cfg: dict) -> str:
    """The seed count each table holds (and the design it used), for footers and the ledger."""
    parts = []
    for name, table in tables.items():
        design = cfg["experiments"].get(name, {}).get("design")
        n = table["seed"].nunique() if "seed" in table else "?"
        parts.append(f"{name}: {n} seeds" + (f", design {design}" if design else ""))
    return "; ".join(parts)
