"""Malformed configs are refused before any job, naming the key and what is allowed;
no name in a config can reach outside results/; the claims step refuses tables
that do not match the config or changed behind the workflow's back.

CORPUS is one table: (what is wrong, a change to the tiny config or a YAML text,
the key its error must name). Every entry goes through regbench.config (load for
YAML text, validate for the rest), which the workflow runs before any job.
"""
import copy
import json
import time
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import yaml

from regbench import checks, config, provenance
from tests.conftest import TINY

NAN, INF = float("nan"), float("inf")


def put(dotted: str, value):
    """A change: set a dotted key (list indices as numbers) of the raw tiny config."""
    def change(cfg):
        *parents, leaf = dotted.split(".")
        node = cfg
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        node[int(leaf) if isinstance(node, list) else leaf] = value
    return change


def drop(dotted: str):
    def change(cfg):
        *parents, leaf = dotted.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        del node[leaf]
    return change


def both(*changes):
    def change(cfg):
        for c in changes:
            c(cfg)
    return change


def rename_design(new: str):
    """Rename design problem1 and point every experiment that used it at the new name."""
    def change(cfg):
        cfg["designs"][new] = cfg["designs"].pop("problem1")
        for params in cfg["experiments"].values():
            if params.get("design") == "problem1":
                params["design"] = new
    return change


def rename_teacher(new: str):
    def change(cfg):
        cfg["teachers"][new] = cfg["teachers"].pop("tabular")
        for params in cfg["experiments"].values():
            if "teacher" in params or params is cfg["experiments"].get("bn_stats"):
                params["teacher"] = new
    return change


ONE_FEATURE = {"n_train": 40, "n_val": 20, "n_test": 50, "p": 1, "covariance": {"family": "independent"},
               "coef": {"first_k": 1, "value": 1.0}, "noise": {"sigma": 1.0}}
NO_SIGNAL_PAIR = {"n_train": 40, "n_val": 20, "n_test": 50, "p": 2, "covariance": {"family": "equicorrelated", "rho": 1.0},
                  "coef": {"values": [1.0, -1.0]}, "noise": {"snr": 2.0}}

TINY_TEXT = TINY.read_text()

CORPUS = [
    # names become file paths and wildcard regexes
    ("design name climbing out of the checkout", rename_design("../../../outside/x"), "designs"),
    ("design name climbing into results", rename_design("../x"), "designs"),
    ("design name that breaks a regex", rename_design("a(b"), "designs"),
    ("design name with a space", rename_design("a b"), "designs"),
    ("design name with a slash", rename_design("sub/x"), "designs"),
    ("teacher name climbing out", rename_teacher("t/../../x"), "teachers"),
    ("experiment name climbing out", put("experiments.../paths", {}), "experiments"),
    ("results folder outside results/", put("results", "../outside"), "results"),
    ("results folder absolute", put("results", "/tmp/elsewhere"), "results"),
    ("results folder climbing back", put("results", "results/../../x"), "results"),
    # non-finite numbers pass every range check
    ("NaN learning rate", put("experiments.early_stopping.lr", NAN), "experiments.early_stopping.lr"),
    ("NaN noise sigma", put("designs.problem1.noise.sigma", NAN), "designs.problem1.noise.sigma"),
    ("NaN twin correlation", put("designs.collinear.covariance.r", NAN), "designs.collinear.covariance.r"),
    ("NaN teacher rho", put("teachers.tabular.covariance.rho", NAN), "teachers.tabular.covariance.rho"),
    ("NaN in a rate list", put("experiments.dropout_expectation.rates.0", NAN), "experiments.dropout_expectation.rates.0"),
    ("infinite l1_ratio", put("experiments.problem1.l1_ratios.0", INF), "experiments.problem1.l1_ratios.0"),
    ("minus infinity rho", put("experiments.geometry.rho", -INF), "experiments.geometry.rho"),
    ("infinite coefficient", put("designs.problem1.coef.value", INF), "designs.problem1.coef.value"),
    ("NaN bn lr", put("experiments.bn_stats.lr", NAN), "experiments.bn_stats.lr"),
    ("NaN label noise", put("teachers.tabular.label_noise", NAN), "teachers.tabular.label_noise"),
    # integers mean integers
    ("seeds written as a float", put("experiments.paths.seeds", 3.0), "experiments.paths.seeds"),
    ("chunk_size written as a float", put("experiments.problem1_sweep.chunk_size", 1.0), "experiments.problem1_sweep.chunk_size"),
    ("p written as a float", put("designs.problem1.p", 30.0), "designs.problem1.p"),
    ("float in an integer grid", put("experiments.bn_batchsize.sweep.batch_size", [8.0, 32]),
     "experiments.bn_batchsize.sweep.batch_size.0"),
    ("boolean epochs", put("experiments.early_stopping.epochs", True), "experiments.early_stopping.epochs"),
    ("fractional root seed", put("seed", 7.5), "seed"),
    ("threads as a float", put("threads", 2.0), "threads"),
    ("n_lambdas as a string", put("experiments.paths.n_lambdas", "8"), "experiments.paths.n_lambdas"),
    ("seeds spelled out", put("experiments.paths.seeds", "three"), "experiments.paths.seeds"),
    # sizes: refused by number before any job
    ("a billion seeds", put("experiments.paths.seeds", 10**9), "experiments.paths.seeds"),
    ("a billion lambdas", put("experiments.paths.n_lambdas", 10**9), "experiments.paths.n_lambdas"),
    ("ten million features", put("designs.problem1.p", 10**7), "designs.problem1.p"),
    ("a million features: p x p covariance", put("designs.problem1.p", 10**6), "designs.problem1"),
    ("a million teacher inputs", put("teachers.tabular.p", 10**6), "teachers.tabular.p"),
    ("stored datasets beyond memory", both(put("designs.problem1.n_test", 10**6), put("designs.problem1.p", 30_000),
                                           put("experiments.paths.seeds", 10_000)), "designs.problem1"),
    ("teacher data beyond memory", both(put("experiments.bn_dropout.n_train", 10**6), put("experiments.bn_dropout.seeds", 10_000),
                                        put("teachers.tabular.p", 2000)), "experiments.bn_dropout.seeds"),
    ("more seeds than the schema allows", put("experiments.geometry.seeds", 20_000), "experiments.geometry.seeds"),
    # cross-key problems that used to surface inside a job
    ("finetune sizes beyond the digits", put("experiments.finetune.sweep.n_train", [10, 900]), "experiments.finetune.sweep.n_train"),
    ("augmentation digits beyond 1797", put("experiments.augmentation.sweep.n_train", [20, 1790]),
     "experiments.augmentation.sweep.n_train"),
    ("batch larger than n_train (drop_last)", put("experiments.bn_batchsize.sweep.batch_size", [8, 100]),
     "experiments.bn_batchsize.sweep.batch_size"),
    ("snr with first_k 0", both(put("designs.problem1.coef", {"first_k": 0, "value": 1.0}), put("designs.problem1.noise", {"snr": 2.0})),
     "designs.problem1.noise.snr"),
    ("snr with value 0", both(put("designs.problem1.coef.value", 0.0), put("designs.problem1.noise", {"snr": 2.0})),
     "designs.problem1.noise.snr"),
    ("snr with zero values", both(put("designs.problem1.coef", {"values": [0.0, 0.0]}), put("designs.problem1.noise", {"snr": 1.0})),
     "designs.problem1.noise.snr"),
    ("snr with beta in the null space", put("designs.null", NO_SIGNAL_PAIR), "designs.null.noise.snr"),
    ("problem1 on one feature", both(put("designs.one", ONE_FEATURE), put("experiments.problem1.design", "one")),
     "experiments.problem1.design"),
    ("gd_vs_ridge on one feature", both(put("designs.one", ONE_FEATURE), put("experiments.gd_vs_ridge.design", "one")),
     "experiments.gd_vs_ridge.design"),
    ("twins that do not fit", put("designs.problem1.covariance.sources", 20), "designs.problem1.covariance.twins"),
    ("factors that do not fit", put("designs.collinear.covariance", {"family": "factors", "n_groups": 4, "group_size": 2, "noise_sd": 1.0}),
     "designs.collinear.covariance.factors"),
    ("first_k beyond p", put("designs.collinear.coef", {"first_k": 99, "value": 1.0}), "designs.collinear.coef.first_k"),
    ("more coefficients than features", put("designs.collinear.coef", {"values": [1.0] * 7}), "designs.collinear.coef.values"),
    ("teacher twins that do not fit", put("teachers.tabular.covariance", {"family": "twins", "sources": 15, "copies": 1, "r": 0.5}),
     "teachers.tabular.covariance.twins"),
    ("undefined design", put("experiments.paths.design", "nope"), "experiments.paths.design"),
    ("undefined teacher", put("experiments.bn_stats.teacher", "missing"), "experiments.bn_stats.teacher"),
    ("regression teacher", both(put("teachers.reg", {"p": 3, "covariance": {"family": "independent"}, "task": "regression"}),
                                put("experiments.bn_stats.teacher", "reg")), "experiments.bn_stats.teacher"),
    ("stale epoch after the last", put("experiments.bn_stats.stale_epoch", 9), "experiments.bn_stats.stale_epoch"),
    ("runaway AdamW decay", put("experiments.adamw_vs_l2.grids.adamw", {"lrs": [0.1], "decays": [30.0]}),
     "experiments.adamw_vs_l2.grids.adamw"),
    ("orthonormal p above n", put("experiments.orthonormal.p", 50), "experiments.orthonormal.p"),
    ("MC rows beyond the teacher's test rows", put("experiments.dropout_mc.mc_rows", 1000), "experiments.dropout_mc.mc_rows"),
    ("twin correlation swept on another family", both(put("designs.problem1.covariance", {"family": "independent"}),
                                                      put("experiments.problem1_sweep.sweep", {"covariance.r": [0.5]})),
     "experiments.problem1_sweep.sweep.covariance.r"),
    # structure the schema refuses
    ("no experiment", put("experiments", {}), "experiments"),
    ("experiments missing", drop("experiments"), "(top level)"),
    ("misspelled top-level key", put("experiment", {}), "(top level)"),
    ("unknown experiment", put("experiments.dropout_magic", {}), "experiments"),
    ("negative seeds", put("experiments.paths.seeds", -1), "experiments.paths.seeds"),
    ("one training row", put("designs.problem1.n_train", 1), "designs.problem1.n_train"),
    ("unknown method", put("experiments.problem1.methods", ["lasso", "svm"]), "experiments.problem1.methods.1"),
    ("unknown covariance family", put("designs.problem1.covariance", {"family": "banded"}), "designs.problem1.covariance"),
    ("two coefficient forms at once", put("designs.problem1.coef", {"first_k": 2, "value": 1.0, "values": [1.0]}),
     "designs.problem1.coef"),
    ("sigma and snr at once", put("designs.problem1.noise", {"sigma": 1.0, "snr": 2.0}), "designs.problem1.noise"),
    ("empty sweep", put("experiments.problem1_sweep.sweep", {}), "experiments.problem1_sweep.sweep"),
    ("empty grid", put("experiments.problem1_sweep.sweep.n_train", []), "experiments.problem1_sweep.sweep.n_train"),
    ("unknown device", put("device", "gpu"), "device"),
    ("experiment without settings", put("experiments.paths", None), "experiments.paths"),
    ("designs as a list", put("designs", ["problem1"]), "designs"),
    ("augmentation without its baseline arm", put("experiments.augmentation.arms", {"flip": {"kind": "flip"}}),
     "experiments.augmentation.arms"),
    ("negative smoothing", put("experiments.label_smoothing.smoothings", [-0.1]), "experiments.label_smoothing.smoothings.0"),
    ("dropout rate 1", put("experiments.dropout_expectation.rates", [1.0]), "experiments.dropout_expectation.rates.0"),
    ("one-dimensional geometry", put("experiments.geometry.dims", [1]), "experiments.geometry.dims.0"),
    ("negative root seed", put("seed", -1), "seed"),
    # YAML the loader refuses, with its line
    ("duplicate top-level key", TINY_TEXT + "experiments:\n  paths: {seeds: 2}\n", "duplicate key 'experiments'"),
    ("duplicate key in a design", "experiments: {orthonormal: {}}\ndesigns:\n  d:\n    p: 3\n    p: 4\n", "line 5: duplicate key 'p'"),
    ("duplicate experiment", "experiments:\n  geometry: {seeds: 2}\n  geometry: {seeds: 3}\n", "line 3: duplicate key 'geometry'"),
    ("unclosed flow list", "experiments:\n  geometry: {dims: [2, 3}\n", "YAML syntax error at line 2"),
    ("tab indentation", "experiments:\n\tgeometry: {}\n", "YAML syntax error at line 2"),
    ("a list at the top level", "- seed\n- 3\n", "top level must be a mapping"),
]


def lines(msg: str) -> list[str]:
    return [line.strip()[2:] for line in msg.splitlines() if line.strip().startswith("- ")] or [msg]


# what "the allowed values" look like in a message: a bound, a list, a form, a type
ALLOWED = ("allowed", "minimum", "maximum", "is not one of", "is not of type", "too short", "required property",
           "matches none of the allowed forms", "exceeds", "defined:", "does not have enough", "regression teacher",
           "line ", "needs ")


def rejection(entry, schema, tmp_path) -> str:
    _, change, _ = entry
    if isinstance(change, str):
        path = tmp_path / "bad.yaml"
        path.write_text(change)
        with pytest.raises(config.ConfigError) as exc:
            config.validate(config.load(None, [path]), schema)
        return str(exc.value)
    cfg = yaml.safe_load(TINY_TEXT)
    change(cfg)
    with pytest.raises(config.ConfigError) as exc:
        config.validate(cfg, schema)
    return str(exc.value)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


CUDA_ENTRY = ("cuda without CUDA", put("device", "cuda"), "device")


@pytest.mark.parametrize("entry", CORPUS + [pytest.param(CUDA_ENTRY, marks=pytest.mark.skipif(_cuda(), reason="CUDA present"))],
                         ids=[e[0] for e in CORPUS] + [CUDA_ENTRY[0]])
def test_corpus_is_refused_naming_the_key_and_what_is_allowed(entry, schema, tmp_path):
    what, change, key = entry
    msg = rejection(entry, schema, tmp_path)
    found = [line for line in lines(msg) if (key in line if isinstance(change, str) else line.startswith(key))]
    assert found, f"{what}: no problem names {key!r}:\n{msg}"
    assert any(a in line for line in found for a in ALLOWED), f"{what}: {key!r} named without what is allowed:\n{msg}"


def test_corpus_size():
    assert len(CORPUS) >= 60 and len({e[0] for e in CORPUS}) == len(CORPUS)


def test_every_problem_is_listed_at_once(schema):
    """Schema errors and cross-key problems together, in one message."""
    cfg = yaml.safe_load(TINY_TEXT)
    for change in (put("experiments.paths.seeds", 3.0), put("designs.collinear.coef.first_k", 99),
                   put("experiments.bn_stats.stale_epoch", 9), put("experiments.orthonormal.p", 50),
                   put("experiments.early_stopping.lr", NAN)):
        change(cfg)
    msg = str(pytest.raises(config.ConfigError, config.validate, cfg, schema).value)
    for key in ("experiments.paths.seeds", "designs.collinear.coef.first_k", "experiments.bn_stats.stale_epoch",
                "experiments.orthonormal.p", "experiments.early_stopping.lr"):
        assert any(line.startswith(key) for line in lines(msg)), (key, msg)


def test_validation_builds_no_large_matrix(schema):
    """p = 1e6 is refused by arithmetic: a p x p covariance would be 8 TB."""
    cfg = yaml.safe_load(TINY_TEXT)
    put("designs.problem1.p", 10**6)(cfg)
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(config.ConfigError):
        config.validate(cfg, schema)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 5 and peak < 200 * 2**20


# ---------------------------------------------------------------- nothing leaves results/
BAD_NAMES = ["../x", "../../../outside/x", "/abs/x", "a/b", "a\\b", ".", "..", "", "a(b", "x.*", "a b", "é", "a-b", 3]
BAD_FOLDERS = {"../x", "../../../outside/x", "/abs/x", ".", "..", "", "a(b", "x.*", "a b", "é"}  # not a folder under results/


@pytest.mark.parametrize("name", BAD_NAMES, ids=map(repr, BAD_NAMES))
def test_no_name_can_reach_outside_results(name, schema):
    """A design, teacher or experiment name becomes a file name or a regex: only plain names pass."""
    for section, source in (("designs", "problem1"), ("teachers", "tabular")):
        cfg = yaml.safe_load(TINY_TEXT)
        cfg[section][name] = copy.deepcopy(cfg[section][source])
        msg = str(pytest.raises(config.ConfigError, config.validate, cfg, schema).value)
        assert any(line.startswith(f"{section}: name {name!r}") for line in lines(msg)), msg
    cfg = yaml.safe_load(TINY_TEXT)
    cfg["experiments"][name] = {}
    assert "experiments" in str(pytest.raises(config.ConfigError, config.validate, cfg, schema).value)
    for folder in ([f"results/{name}"] if name in BAD_FOLDERS else []) + [str(name)]:
        cfg = yaml.safe_load(TINY_TEXT)
        cfg["results"] = folder
        msg = str(pytest.raises(config.ConfigError, config.validate, cfg, schema).value)
        assert any(line.startswith("results:") for line in lines(msg)), msg


# ---------------------------------------------------------------- tables the claims step must refuse
PARAMS = {"seeds": 3, "sweep": {"n_train": [10, 20]}, "chunk_size": 1}
NAME = "problem1_sweep"  # any experiment of the registry with a sweep


def good_table() -> pd.DataFrame:
    rows = [dict(experiment=NAME, seed=s, n_train=n, method=m, metric="test_mse", value=1.0 + s + n / 100)
            for s in range(3) for n in (10, 20) for m in ("ridge", "lasso")]
    rows += [dict(experiment=NAME, seed=0, n_train=10, method="ridge", metric="example", value=0.5)]  # seed 0 only
    rows += [dict(experiment=NAME, seed=s, n_train=n, method="ols", metric="l1_ratio", value=NAN)    # not applicable
             for s in range(3) for n in (10, 20)]
    return pd.DataFrame(rows)


def write(tmp_path, table: pd.DataFrame, metadata=True):
    path = tmp_path / f"{NAME}.parquet"
    table.to_parquet(path)
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"tables": {NAME: provenance.sha256(path)}}))
    return path, meta


def refused(tmp_path, table, cfg=None, corrupt=None) -> str:
    path, meta = write(tmp_path, table)
    if corrupt:
        corrupt(path)
    cfg = cfg or {"experiments": {NAME: PARAMS}}
    with pytest.raises(checks.TableError) as exc:
        checks.load_checked([path], cfg, meta)
    return str(exc.value)


def test_a_good_table_passes(tmp_path):
    path, meta = write(tmp_path, good_table())
    tables = checks.load_checked([path], {"experiments": {NAME: PARAMS}}, meta)
    assert list(tables) == [NAME]
    assert checks.seeds_text(tables, {"experiments": {NAME: PARAMS}}) == f"{NAME}: 3 seeds"


def test_missing_seeds_are_refused(tmp_path):
    t = good_table()
    msg = refused(tmp_path, t[t.seed == 0])
    assert f"table {NAME}: seed(s) 1, 2 missing; the config has 3 seeds" in msg
    t = t[~((t.seed == 2) & (t.method == "lasso"))]  # one metric loses a seed in some settings
    msg = refused(tmp_path, t.assign(metric=np.where(t.method == "lasso", "lasso_mse", t.metric)))
    assert "lasso_mse lack some of the 3 seeds" in msg


def test_nans_are_refused_unless_not_applicable_or_allowed(tmp_path):
    t = good_table()
    t.loc[(t.seed == 1) & (t.metric == "test_mse") & (t.n_train == 20), "value"] = NAN
    msg = refused(tmp_path, t)
    assert "non-finite value(s) for some seeds only, in metric(s) test_mse" in msg
    t.loc[t.index[0], "value"] = INF
    assert "non-finite" in refused(tmp_path, t)
    assert checks.check_table(NAME, t, PARAMS, allowed={"test_mse"}) == []


def test_a_wrong_experiment_or_grid_is_refused(tmp_path):
    msg = refused(tmp_path, good_table().assign(experiment="paths"))
    assert f"table {NAME}: holds rows of experiment(s) ['paths'], not {NAME}" in msg
    params = dict(PARAMS, sweep={"n_train": [10, 40]})
    msg = refused(tmp_path, good_table(), cfg={"experiments": {NAME: params}})
    assert "grid point(s) (40,) of sweep ['n_train'] missing" in msg and "(20,) not in the config's sweep" in msg
    msg = refused(tmp_path, good_table(), cfg={"experiments": {NAME: dict(PARAMS, seeds=5)}})
    assert "seed(s) 3, 4 missing; the config has 5 seeds" in msg


def test_a_table_changed_behind_the_workflows_back_is_refused(tmp_path):
    def flip_a_value(path):
        t = pd.read_parquet(path)
        t.loc[0, "value"] = 99.0
        t.to_parquet(path)

    msg = refused(tmp_path, good_table(), corrupt=flip_a_value)
    assert "differs from the checksum recorded" in msg and f"snakemake --cores 8 --forcerun {tmp_path}" in msg

    def truncate(path):
        path.write_bytes(path.read_bytes()[:100])

    assert "differs from the checksum" in refused(tmp_path, good_table(), corrupt=truncate)
    path, _ = write(tmp_path, good_table())
    truncate(path)
    with pytest.raises(checks.TableError, match=r"cannot be read \(.*\); rebuild it"):
        checks.load_checked([path], {"experiments": {NAME: PARAMS}})  # no checksums: the reader's error, named



@pytest.mark.skipif(_cuda(), reason="CUDA present")
def test_cuda_is_checked_where_the_jobs_run_not_on_a_cluster_login_node(schema):
    cfg = yaml.safe_load(TINY_TEXT)
    cfg["device"] = "cuda"
    with pytest.raises(config.ConfigError, match="device: cuda"):
        config.validate(cfg, schema)
    assert config.validate(cfg, schema, local=False)["device"] == "cuda"
