"""Bad configs fail before any job, naming the key and what is allowed."""
import copy

import pytest
import yaml

from regbench import config
from tests.conftest import ROOT, TINY


def raw():
    return yaml.safe_load(TINY.read_text())


def error_of(cfg, schema) -> str:
    with pytest.raises(config.ConfigError) as exc:
        config.validate(cfg, schema)
    return str(exc.value)


def test_default_and_tiny_configs_are_valid(schema):
    for path in (ROOT / "config" / "config.yaml", TINY):
        cfg = config.validate(yaml.safe_load(path.read_text()), schema)
        assert cfg["experiments"]


def test_defaults_are_filled(schema):
    cfg = raw()
    cfg["experiments"]["problem1"].pop("tuning", None)
    out = config.validate(cfg, schema)
    assert out["experiments"]["problem1"]["tuning"] == "validation"
    assert out["experiments"]["problem1"]["cv_folds"] == 5
    assert out["threads"] == 1 and out["device"] == "auto"
    assert "tuning" not in cfg["experiments"]["problem1"]  # the input is not mutated


def test_unknown_experiment_lists_the_allowed_ones(schema):
    cfg = raw()
    cfg["experiments"]["dropout_magic"] = {}
    msg = error_of(cfg, schema)
    assert "experiments: unknown key(s) ['dropout_magic']" in msg
    assert "problem1_sweep" in msg and "failure_modes" in msg


def test_negative_size_and_wrong_type_name_their_keys(schema):
    cfg = raw()
    cfg["designs"]["problem1"]["n_train"] = -5
    cfg["experiments"]["paths"]["seeds"] = "three"
    msg = error_of(cfg, schema)
    assert "designs.problem1.n_train: -5 is less than the minimum of 2" in msg
    assert "experiments.paths.seeds: 'three' is not of type 'integer'" in msg


def test_empty_grid_is_rejected(schema):
    cfg = raw()
    cfg["experiments"]["problem1_sweep"]["sweep"]["n_train"] = []
    assert "experiments.problem1_sweep.sweep.n_train" in error_of(cfg, schema)
    cfg = raw()
    cfg["experiments"]["problem1_sweep"]["sweep"] = {}
    assert "experiments.problem1_sweep.sweep" in error_of(cfg, schema)


def test_unknown_method_and_family(schema):
    cfg = raw()
    cfg["experiments"]["problem1"]["methods"] = ["lasso", "svm"]
    cfg["designs"]["collinear"]["covariance"] = {"family": "toeplitz"}  # rho missing
    msg = error_of(cfg, schema)
    assert "'svm' is not one of ['ols', 'ridge', 'lasso', 'enet']" in msg
    assert "designs.collinear.covariance" in msg and "{family: toeplitz, rho: ...}" in msg


def test_design_references_and_sizes_are_checked(schema):
    cfg = raw()
    cfg["experiments"]["paths"]["design"] = "nope"
    cfg["designs"]["collinear"]["coef"] = {"first_k": 99, "value": 1.0}
    cfg["designs"]["problem1"]["covariance"]["sources"] = 20  # 20 * 3 > 30 features
    msg = error_of(cfg, schema)
    assert "experiments.paths.design: 'nope' is not defined under designs; defined: collinear, problem1" in msg
    assert "designs.collinear.coef.first_k: 99 exceeds p = 6" in msg
    assert "designs.problem1.covariance.twins" in msg


def test_every_schema_property_has_a_description(schema):
    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert "description" in sub or "$ref" in sub, f"{path}.{key} has no description"
            walk(sub, f"{path}.{key}")
    walk(schema, "config")


def test_sweep_grid_and_chunks(tiny):
    params = copy.deepcopy(tiny["experiments"]["problem1_sweep"])
    params["sweep"] = {"n_train": [1, 2, 3], "noise.sigma": [0.5, 1.0]}
    params["chunk_size"] = 4
    points = config.sweep_points(params)
    assert len(points) == 6 and config.n_chunks("problem1_sweep", params) == 2
    assert config.chunk_points(params, 0) + config.chunk_points(params, 1) == points
    design = {"noise": {"sigma": 3.0}, "n_train": 5}
    assert config.apply_overrides(design, points[0]) == {"noise": {"sigma": 0.5}, "n_train": 1}
    assert design["noise"]["sigma"] == 3.0


def test_teacher_references_are_checked(schema):
    cfg = raw()
    cfg["experiments"]["bn_stats"] = {"teacher": "missing", "stale_epoch": 9, "epochs": 3}
    msg = error_of(cfg, schema)
    assert "experiments.bn_stats.teacher: 'missing' is not defined under teachers; defined: tabular" in msg
    assert "experiments.bn_stats.stale_epoch: 9 exceeds epochs = 3" in msg


def test_negative_rates_and_empty_neural_grids_are_rejected(schema):
    cfg = raw()
    cfg["experiments"]["dropout_rates"]["hidden_rates"] = [-0.1, 0.5]
    cfg["experiments"]["label_smoothing"]["smoothings"] = [-0.1]
    cfg["experiments"]["bn_batchsize"]["sweep"]["batch_size"] = []
    msg = error_of(cfg, schema)
    assert "experiments.dropout_rates.hidden_rates.0: -0.1 is less than the minimum of 0" in msg
    assert "experiments.label_smoothing.smoothings.0: -0.1 is less than the minimum of 0" in msg
    assert "experiments.bn_batchsize.sweep.batch_size: [] is too short" in msg


KEYWORDS = {"$schema", "$ref", "type", "description", "default", "minimum", "maximum", "exclusiveMinimum",
            "exclusiveMaximum", "multipleOf", "items", "minItems", "maxItems", "uniqueItems", "contains", "enum", "const",
            "properties", "additionalProperties", "required", "minProperties", "oneOf", "anyOf", "allOf", "definitions"}


def test_schema_uses_only_schema_keywords(schema):
    """An unquoted comma in a YAML flow mapping silently cuts a description and adds a junk key: catch it."""
    def walk(node, path):
        assert set(node) <= KEYWORDS, f"{path}: not JSON-schema keywords: {sorted(set(node) - KEYWORDS)}"
        for key, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{key}")
        for key, sub in node.get("definitions", {}).items():
            walk(sub, f"{path}#{key}")
        for key in ("items", "additionalProperties", "contains"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}[{key}]")
        for key in ("oneOf", "anyOf", "allOf"):
            for i, sub in enumerate(node.get(key, [])):
                walk(sub, f"{path}.{key}{i}")
    walk(schema, "config")


def test_regression_teacher_and_runaway_adamw_decay_are_rejected(schema):
    cfg = raw()
    cfg["teachers"]["reg"] = {"p": 3, "covariance": {"family": "independent"}, "task": "regression"}
    cfg["experiments"]["bn_stats"]["teacher"] = "reg"
    cfg["experiments"]["adamw_vs_l2"]["grids"]["adamw"] = {"lrs": [0.01, 0.1], "decays": [1.0, 30.0]}
    msg = error_of(cfg, schema)
    assert "experiments.bn_stats.teacher: 'reg' is a regression teacher" in msg
    assert "experiments.adamw_vs_l2.grids.adamw: lr * decay reaches 3" in msg


# ---------------------------------------------------------------- merging config files
def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_config_file_lists_exactly_the_experiments_that_run(tmp_path, schema):
    base = write_yaml(tmp_path / "base.yaml", raw())
    mine = write_yaml(tmp_path / "mine.yaml", {"experiments": {"geometry": {"seeds": 9}, "paths": None}})
    cfg = config.validate(config.load(base, [mine]), schema)
    assert list(cfg["experiments"]) == ["geometry", "paths"]
    assert cfg["experiments"]["geometry"]["seeds"] == 9
    assert cfg["experiments"]["geometry"]["dims"] == [2, 8]      # the default file's other settings stay
    assert cfg["experiments"]["paths"]["n_lambdas"] == 8         # an empty entry keeps the default file's entry
    assert cfg["results"] == "results/mine"                      # another file, its own folder
    assert config.load(base)["results"] == "results"


def test_a_later_setting_replaces_the_earlier_one_whole(tmp_path):
    base = write_yaml(tmp_path / "base.yaml", raw())
    mine = write_yaml(tmp_path / "mine.yaml", {
        "seed": 3,
        "designs": {"problem1": {"p": 12, "coef": {"values": [1.0, 2.0]}, "noise": {"snr": 2.0},
                                 "covariance": {"family": "independent"}}},
        "experiments": {"problem1_sweep": {"sweep": {"n_train": [40]}}}})
    cfg = config.load(base, [mine], {"threads": 2})
    design = cfg["designs"]["problem1"]
    assert design["coef"] == {"values": [1.0, 2.0]} and design["noise"] == {"snr": 2.0}  # the form switched
    assert design["covariance"] == {"family": "independent"} and design["n_train"] == 60  # keys not given stay
    assert cfg["experiments"]["problem1_sweep"]["sweep"] == {"n_train": [40]}             # noise.sigma is gone
    assert "collinear" in cfg["designs"] and cfg["seed"] == 3 and cfg["threads"] == 2
    assert list(cfg["experiments"]) == ["problem1_sweep"]


def test_results_folder_of_another_file(tmp_path):
    assert config.results_folder([]) == "results"
    assert config.results_folder([tmp_path / "gpu.yaml"]) == "results/gpu"
    assert config.results_folder([tmp_path / "a", tmp_path / "my run.yml"]) == "results/my_run"
    assert config.results_folder([tmp_path / "tables.yaml"]) == "results/tables_run"  # not results/tables itself
    assert config.results_folder([tmp_path / "linear.yaml"]) == "results/linear_run"
    mine = write_yaml(tmp_path / "mine.yaml", {"results": "results/elsewhere"})
    assert config.load(None, [mine])["results"] == "results/elsewhere"


def test_yaml_problems_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\nexperiments:\n  paths: {}\n  paths: {seeds: 2}\nseed: 2\n")
    msg = str(pytest.raises(config.ConfigError, config.load, None, [bad]).value)
    assert f"config file {bad}" in msg
    assert "line 4: duplicate key 'paths' (first at line 3)" in msg and "line 5: duplicate key 'seed' (first at line 1)" in msg
    bad.write_text("experiments:\n  paths: {seeds: 2\n")
    assert "YAML syntax error at line 3" in str(pytest.raises(config.ConfigError, config.load, None, [bad]).value)
    anchors = tmp_path / "anchors.yaml"  # a YAML merge key is not a duplicate
    anchors.write_text("designs:\n  a: &a {p: 3}\n  b:\n    <<: *a\n    p: 4\n")
    assert config.load(None, [anchors])["designs"]["b"] == {"p": 4}


def test_check_a_config_from_the_command_line(tmp_path, capsys):
    good = write_yaml(tmp_path / "one.yaml", {"experiments": {"geometry": {"seeds": 4}}})
    assert config.main([str(good)]) == 0
    assert "ok: 1 experiment(s) (geometry); results in results/one/" in capsys.readouterr().out
    bad = write_yaml(tmp_path / "bad.yaml", {"experiments": {"geometry": {"seeds": 4.0}}})
    assert config.main([str(bad)]) == 1
    assert "experiments.geometry.seeds: 4.0 is not of type 'integer'" in capsys.readouterr().err


# ---------------------------------------------------------------- what decides a rerun
def test_settings_hash_covers_exactly_what_a_job_reads(tiny):
    def digests(cfg):
        return {e: config.digest(config.experiment_settings(cfg, e)) for e in cfg["experiments"]}

    before = digests(tiny)
    changed = copy.deepcopy(tiny)
    changed["experiments"]["geometry"]["seeds"] += 1
    assert {e for e, d in digests(changed).items() if d != before[e]} == {"geometry"}
    changed = copy.deepcopy(tiny)
    changed["designs"]["collinear"]["noise"]["sigma"] = 2.0
    users = {e for e, p in tiny["experiments"].items() if p.get("design") == "collinear"}
    assert users and {e for e, d in digests(changed).items() if d != before[e]} == users
    changed = copy.deepcopy(tiny)
    changed["teachers"]["tabular"]["label_noise"] = 0.2
    users = {e for e, p in tiny["experiments"].items() if p.get("teacher") == "tabular"}
    assert users and {e for e, d in digests(changed).items() if d != before[e]} == users
    changed = copy.deepcopy(tiny)
    changed["seed"] += 1
    assert all(d != before[e] for e, d in digests(changed).items())
    changed = copy.deepcopy(tiny)
    changed["threads"], changed["results"] = 2, "results/other"  # not what a job's numbers depend on
    assert digests(changed) == before
