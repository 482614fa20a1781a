"""The study registry: every study has its whole interface, the ledger covers exactly
the claims document's IDs, every claim's evidence is something the workflow draws,
and nothing outside studies/ knows a study or an experiment by name."""
import ast
import importlib

import numpy as np
import pytest
import yaml

from regbench import config, jobs, ledger, seeds, studies

from .conftest import ROOT, SCHEMA

DOCUMENT = ROOT / "CLAIMS.md"


def test_every_study_has_the_interface():
    assert len(studies.names()) >= 7
    for s in studies.names():
        pkg = studies.package(s)
        assert pkg.__doc__ and len(pkg.__doc__) > 40, f"{s}: the package docstring says what the study tests"
        assert studies.schema(s), f"{s}: schema.yaml defines at least one experiment"
        runners = importlib.import_module(f"regbench.studies.{s}.runners")
        assert set(runners.RUNNERS) == set(studies.schema(s)), f"{s}: one runner per experiment of its schema"
        assert all(callable(f) for f in runners.RUNNERS.values())
        figures = importlib.import_module(f"regbench.studies.{s}.figures").FIGURES
        assert all(set(f.tables) <= set(studies.schema(s)) for f in figures.values()), f"{s}: figures read its own tables"
        for design_reader in getattr(pkg, "STORED_DESIGN", ()):
            assert design_reader in studies.schema(s)


def test_registry_is_derived_and_consistent():
    owner = studies.study_of()
    assert set(owner) == set(yaml.safe_load(SCHEMA.read_text())["properties"]["experiments"]["properties"]) | set(owner)
    merged = config.load_schema(SCHEMA)["properties"]["experiments"]["properties"]
    assert set(merged) == set(owner)
    default = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert set(default["experiments"]) <= set(owner)


def test_ledger_ids_equal_the_claims_document():
    ids = ledger.document_ids(DOCUMENT)
    assert len(ids) == len(set(ids)), "an ID is listed twice in CLAIMS.md"
    assert {"L1", "L7a", "L7e", "L9", "N1", "N17"} <= set(ids)
    table = ledger.evaluate({}, ids)
    assert sorted(table.id) == sorted(ids), "the ledger has one row per ID of CLAIMS.md, no more, no fewer"
    registered = set(studies.claims())
    assert registered <= set(ids), f"rules for claims CLAIMS.md does not list: {registered - set(ids)}"
    missing = table[~table.id.isin(registered)]
    assert (missing.verdict == "not implemented").all()
    assert (table[table.id.isin(registered)].verdict == "not run").all()  # no tables at all


def test_every_claim_names_evidence_the_workflow_draws(tiny):
    figures = studies.figures()
    default = config.validate(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()), config.load_schema(SCHEMA))
    for cid, c in studies.claims().items():
        if c.figure:
            assert c.figure in figures, f"{cid}: evidence figure {c.figure!r} is not a figure of any study"
            fig = figures[c.figure]
            assert set(fig.tables) <= set(default["experiments"]), f"{cid}: the default workflow does not draw {c.figure}"
            assert ledger.evidence(c) == f"figures/{fig.study}/{c.figure}.png"
        else:
            assert c.table in studies.study_of(), f"{cid}: evidence table {c.table!r} is not an experiment"
        assert set(c.needs) <= set(studies.study_of()), f"{cid}: reads an experiment no study defines"


def test_job_streams_are_keyed_by_experiment(tiny):
    job = jobs.make("orthonormal", tiny)
    assert job.rng(3).random() == seeds.rng(tiny["seed"], "orthonormal", 3).random()
    assert job.int_seed("x", 1) == seeds.int_seed(tiny["seed"], "orthonormal", "x", 1)
    other = jobs.make("geometry", tiny)
    assert job.rng(0).random() != other.rng(0).random()
    # the implicit study keeps its historical (study, experiment) key
    imp = jobs.make("gd_vs_ridge", tiny)
    assert imp.stream == ("implicit", "gd_vs_ridge")


def test_job_hands_runners_their_chunk_and_data(tiny):
    p = tiny["experiments"]["problem1_sweep"]
    all_points = config.sweep_points(p)
    got = [pt for k in range(config.n_chunks("problem1_sweep", p)) for pt in jobs.make("problem1_sweep", tiny, k).points]
    assert got == all_points
    fake = {"X_train": np.zeros((50, 3, 2)), "beta": np.ones(2)}
    job = jobs.make("paths", tiny, data=fake)
    assert job.data["X_train"].shape[0] == tiny["experiments"]["paths"]["seeds"]
    assert job.data["beta"] is fake["beta"]


# Library names that coincide with a study or experiment name but mean something else.
ALLOWED = {
    ("least_squares.py", "implicit"): "the noise-copy stream key, kept so earlier numbers stay",
    ("least_squares.py", "gd_vs_ridge"): "a library function (in __all__)",
    ("images.py", "augmentation"): "a library function (in __all__)",
    ("streams.py", "dropout"): "the engine's dropout-mask stream (a layer, not the study)",
    ("train.py", "dropout"): "the engine's dropout-mask stream (a layer, not the study)",
}


def test_no_module_outside_studies_names_a_study_or_experiment():
    names = set(studies.study_of()) | set(studies.names())
    files = [f for f in (ROOT / "src" / "regbench").rglob("*.py") if "studies" not in f.parts]
    files += list((ROOT / "workflow" / "scripts").glob("*.py"))
    found = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Constant) and node.value in names and (f.name, node.value) not in ALLOWED:
                found.append(f"{f.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk")) + (ROOT / "Snakefile").read_text()
    found += [f"workflow rules name {n!r}" for n in names if f'"{n}"' in rules or f"'{n}'" in rules]
    assert not found, "study knowledge outside studies/:\n" + "\n".join(found)


@pytest.mark.parametrize("study", ["linear", "training"])
def test_study_checks_run_before_any_job(study, tiny):
    import copy
    bad = copy.deepcopy(tiny)
    if study == "linear":
        bad["experiments"]["orthonormal"].update(p=500, n=100)
        key = "experiments.orthonormal.p"
    else:
        bad.setdefault("experiments", {})["adamw_vs_l2"] = {"grids": {"adamw": {"lrs": [0.5], "decays": [3.0]}}}
        key = "experiments.adamw_vs_l2.grids.adamw"
    with pytest.raises(config.ConfigError, match=key.replace(".", r"\.")):
        config.validate(bad, config.load_schema(SCHEMA))
