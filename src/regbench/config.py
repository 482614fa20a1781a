"""Load, merge and check a regbench config before any job runs.

`load` reads config/config.yaml and any further files (`--configfile`) strictly
(a duplicate key or a YAML syntax error is reported with its line) and merges
them by one rule (`overlay`). `validate` fills defaults from the JSON schema
(workflow/schemas/config.schema.yaml, with each study's experiment schemas
merged in) and reports every problem at once, each naming its key and what is
allowed: schema errors; non-finite numbers; integers written as floats; names
that are not plain (they become file paths and regex patterns); counts and
memory beyond what a job can hold; and the cross-key problems a schema cannot
express (undefined designs or teachers, blocks that do not fit in p, a noise
level set by snr on a design without signal, device cuda without CUDA, and
each study's own `problems(cfg)` hook). Nothing here builds a large matrix.
"""
import copy
import hashlib
import itertools
import json
import math
import os
import re
import sys
from pathlib import Path

import jsonschema
import yaml

from regbench import studies


class ConfigError(ValueError):
    """A config that cannot run; the message lists every problem found."""


# Names of designs, teachers and experiments become file names and Snakemake
# wildcard patterns: plain names only, so no name can leave results/ or break a regex.
NAME = re.compile(r"^[A-Za-z0-9_]+$")
NAMED = ("experiments", "designs", "teachers")
# A results folder is results/ or a folder inside it (segments of plain names).
RESULTS = re.compile(r"^results(/[A-Za-z0-9_][A-Za-z0-9_-]*)*$")
# No count in this benchmark needs more (the largest configured is in the thousands);
# above it a job would only exhaust memory or time.
MAX_COUNT = 1_000_000


# ---------------------------------------------------------------- loading and merging
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records duplicate keys (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges are meant to be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                self.duplicates.append(f"line {line}: duplicate key {key!r} (first at line {seen[key]}); "
                                       "allowed: each key once per mapping")
            seen.setdefault(key, line)
        return super().construct_mapping(node, deep)


def load_yaml(path) -> dict:
    """A config file as a dict; ConfigError with the file and line of a syntax error or duplicate key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"config file {path}: cannot be read ({err.strerror})") from None
    loader = _StrictLoader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        raise ConfigError(f"config file {path}: YAML syntax error at {where}: {err.problem or err.context}") from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(f"config file {path}:\n  - " + "\n  - ".join(loader.duplicates))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping, not a {type(data).__name__}; "
                          "allowed: keys such as seed, designs, experiments")
    return data


def overlay(base: dict, override: dict) -> dict:
    """`base` with a later config (file or --config) applied; the inputs are not changed.

    The rule: a top-level setting given later (seed, device, threads, results)
    replaces the earlier one. `experiments` given later is exactly the set that
    runs. Under `experiments`, `designs` and `teachers`, an entry keeps the
    earlier entry of the same name and each setting given later replaces that
    setting whole: a new `sweep`, `coef` or `covariance` replaces the old one
    instead of merging into it. An entry given empty (`paths: {}` or `paths:`)
    keeps the earlier settings (or takes the schema's defaults); designs and
    teachers not named stay defined.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key in NAMED and isinstance(value, dict):
            earlier = base.get(key) if isinstance(base.get(key), dict) else {}
            merged = {} if key == "experiments" else copy.deepcopy(earlier)
            for name, entry in value.items():
                old = earlier.get(name)
                entry = {} if entry is None else entry
                both = isinstance(old, dict) and isinstance(entry, dict)
                merged[name] = {**copy.deepcopy(old), **copy.deepcopy(entry)} if both else copy.deepcopy(entry)
            out[key] = merged
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(default, extra=(), overrides=None) -> dict:
    """The config of a run: `default` (if it exists), then each file of `extra`,
    then `overrides` (Snakemake's --config), merged by `overlay`. Sets `results`
    (the run's folder) when no file does: results/ for the default file alone,
    results/<name of the last extra file>/ otherwise, so two config files never
    write into one folder."""
    cfg, problems = {}, []
    files = ([default] if default is not None and Path(default).exists() else []) + list(extra)
    for path in files:
        try:
            cfg = overlay(cfg, load_yaml(path))
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("invalid regbench config:\n  - " + "\n  - ".join(problems))
    cfg = overlay(cfg, dict(overrides or {}))
    if "results" not in cfg:
        cfg["results"] = results_folder(extra)
    return cfg


def results_folder(extra) -> str:
    """results/ for the default config, results/<file name>/ for another one. A file
    name that is also a folder of a results tree (tables, figures, a study) gets
    a _run suffix so the two cannot be confused."""
    if not extra:
        return "results"
    name = re.sub(r"[^A-Za-z0-9_-]", "_", Path(extra[-1]).stem) or "config"
    if name in {"data", "tables", "figures", "logs", "benchmarks", *studies.names()}:
        name += "_run"
    return f"results/{name}"


# ---------------------------------------------------------------- schema
def _with_defaults(cls):
    # The jsonschema FAQ recipe: fill "default" while validating "properties",
    # so nested defaults (reached through $ref) are filled too.
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


# JSON schema counts 3.0 as an integer; here an integer is an int (seeds: 3.0 is a typo
# that crashed jobs, not three seeds).
_TYPES = jsonschema.Draft7Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, x: isinstance(x, int) and not isinstance(x, bool))
_Validator = _with_defaults(jsonschema.validators.extend(jsonschema.Draft7Validator, type_checker=_TYPES))


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error) -> str:
    """One line per schema error: the key, what was wrong, what is allowed."""
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed), key=str)
        if allowed:
            return f"{where}: unknown key(s) {extra}; allowed: {', '.join(allowed)}"
        return f"{where}: {error.message}"
    if error.validator == "oneOf":
        forms = []
        for branch in error.schema["oneOf"]:
            props = branch.get("properties", {})
            const = {k: v["const"] for k, v in props.items() if "const" in v}
            req = [k for k in branch.get("required", []) if k not in const]
            forms.append(", ".join([f"{k}: {v}" for k, v in const.items()] + [f"{k}: ..." for k in req]))
        return f"{where}: {error.instance!r} matches none of the allowed forms: " + " | ".join(
            "{" + f + "}" for f in forms
        )
    if error.validator == "type" and error.validator_value == "integer":
        return f"{where}: {error.message}; allowed: a whole number written without a decimal point (3, not 3.0)"
    if error.validator in ("minItems", "maxItems"):
        bound = "at least" if error.validator == "minItems" else "at most"
        return f"{where}: {error.message}; allowed: {bound} {error.validator_value} item(s)"
    if error.validator == "minProperties" and not error.instance:
        return f"{where}: empty; allowed: at least {error.validator_value} entry (name: settings)"
    return f"{where}: {error.message}"


def load_schema(path) -> dict:
    """The config schema, with every study's experiment schemas
    (regbench/studies/<study>/schema.yaml) merged into experiments.properties."""
    schema = yaml.safe_load(Path(path).read_text())
    props = schema["properties"]["experiments"]["properties"]
    for exp, study in studies.study_of().items():
        props[exp] = copy.deepcopy(studies.schema(study)[exp])
    return schema


# ---------------------------------------------------------------- validation
def validate(config: dict, schema: dict, local: bool = True) -> dict:
    """A copy of `config` with defaults filled in; raises ConfigError listing every problem.

    local: the jobs run on this machine, so `device: cuda` needs CUDA here. A run planned
    for a cluster (profiles/slurm) passes False: the login node need not have a GPU, and
    the job on the GPU node validates again (every job parses the Snakefile).

    Schema errors and the checks that need no schema (non-finite numbers, names,
    counts) are listed together; the cross-key checks then run on the entries
    the schema accepted, so their problems are listed in the same message."""
    if config is not None and not isinstance(config, dict):
        raise ConfigError(f"invalid regbench config:\n  - (top level): a {type(config).__name__}; allowed: a mapping of keys")
    cfg = copy.deepcopy(config) if config else {}
    errors = sorted(_Validator(schema).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    bad = [list(e.absolute_path) for e in errors if e.validator != "additionalProperties"]
    bad += [list(e.absolute_path) + [k] for e in errors if e.validator == "additionalProperties"
            for k in set(e.instance) - set(e.schema.get("properties", {}))]
    plain = _plain_problems(cfg)
    problems = [_describe(e) for e in errors] + [msg for _, msg in plain]
    safe = _prune(cfg, bad + [path for path, _ in plain])
    problems += _semantic_problems(safe, defined={k: set(cfg.get(k) or {}) for k in NAMED if isinstance(cfg.get(k), dict)})
    problems += _device_problems(safe) if local else []
    if problems:
        raise ConfigError("invalid regbench config:\n  - " + "\n  - ".join(dict.fromkeys(problems)))
    return cfg


def _walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def _plain_problems(cfg: dict) -> list[tuple[list, str]]:
    """(path, problem) for what needs no schema: non-finite numbers anywhere (every
    range check passes a NaN), names that are not plain, counts above MAX_COUNT."""
    out = []
    for path, value in _walk(cfg):
        where = _where(path)
        if isinstance(value, float) and not math.isfinite(value):
            out.append((list(path), f"{where}: {value} is not a finite number; allowed: finite numbers"))
        elif (isinstance(value, int) and not isinstance(value, bool) and value > MAX_COUNT
              and path and path[0] in NAMED):
            out.append((list(path), f"{where}: {value} is above {MAX_COUNT}; allowed: at most {MAX_COUNT} "
                                    "(no count in this benchmark needs more)"))
        if len(path) == 1 and path[0] in NAMED and isinstance(value, dict):
            for name in value:
                if not (isinstance(name, str) and NAME.match(name)):
                    out.append(([path[0], name], f"{path[0]}: name {name!r} is not allowed; allowed: letters, digits "
                                                 "and underscore (names become file names)"))
    results = cfg.get("results", "results")
    if not (isinstance(results, str) and RESULTS.match(results)):
        out.append((["results"], f"results: {results!r} is not allowed; allowed: results or a folder inside it "
                                 "(results/<name>, letters, digits, _ and -)"))
    return out


def _prune(cfg: dict, paths) -> dict:
    """A copy without the entries (an experiment, a design, a teacher) or top-level
    settings that failed a check, so the cross-key checks see only well-formed ones."""
    safe = copy.deepcopy(cfg)
    for path in paths:
        if not path:
            continue
        section = path[0]
        if section in NAMED:
            if len(path) == 1 or not isinstance(safe.get(section), dict):
                safe[section] = {}
            else:
                safe[section].pop(path[1], None)
        else:
            safe.pop(section, None)
    for section in NAMED:
        if not isinstance(safe.get(section), dict):
            safe[section] = {}
    return safe


def _semantic_problems(cfg: dict, defined: dict) -> list[str]:
    problems = []
    designs, teachers = cfg["designs"], cfg["teachers"]
    for name, design in designs.items():
        problems += [f"designs.{name}.{p}" for p in design_problems(design)]
    for name, teacher in teachers.items():
        problems += [f"teachers.{name}.{p}" for p in covariance_problems(teacher["covariance"], teacher["p"])]
    for exp, params in cfg["experiments"].items():
        for key, pool, kind in (("teacher", teachers, "teachers"), ("design", designs, "designs")):
            ref = params.get(key)
            if ref is None or ref in pool:
                continue
            if ref not in defined.get(kind, ()):  # defined but malformed: its own problems are listed
                problems.append(f"experiments.{exp}.{key}: {ref!r} is not defined under {kind}; "
                                f"defined: {', '.join(sorted(defined.get(kind, ()))) or '(none)'}")
        ref = params.get("teacher")
        if ref in teachers and teachers[ref]["task"] != "classification":
            problems.append(f"experiments.{exp}.teacher: {ref!r} is a regression teacher; the neural studies need task: classification")
    problems += _memory_problems(cfg)
    return problems + studies.problems(cfg)


def design_problems(design: dict) -> list[str]:
    """What a schema-valid design cannot do, by arithmetic (no p x p matrix is built):
    blocks that do not fit in p, more coefficients than features, a coef.placement its
    covariance cannot carry, an snr with no signal."""
    out, p, coef = covariance_problems(design["covariance"], design["p"]), design["p"], design["coef"]
    if "values" in coef and len(coef["values"]) > p:
        out.append(f"coef.values: {len(coef['values'])} values for p = {p} features; allowed: at most p")
    if "first_k" in coef and coef["first_k"] > p:
        out.append(f"coef.first_k: {coef['first_k']} exceeds p = {p}")
    if not out:  # placements read the twins blocks, so only once they fit
        from regbench import data
        out += data.placement_problems(design)
    if "snr" in design["noise"] and not out and not _has_signal(design):
        out.append("noise.snr: the design has no signal (beta' Sigma beta = 0), so a signal-to-noise ratio cannot set "
                   "its noise level; allowed: noise.sigma, or coef with a non-zero coefficient")
    return out


def covariance_problems(cov: dict, p: int) -> list[str]:
    """Blocks of a covariance family that do not fit in p features."""
    if cov["family"] == "twins" and cov["sources"] * (1 + cov["copies"]) > p:
        return [f"covariance.twins: sources*(1+copies) = {cov['sources'] * (1 + cov['copies'])} exceeds p = {p}"]
    if cov["family"] == "factors" and cov["n_groups"] * cov["group_size"] > p:
        return [f"covariance.factors: n_groups*group_size = {cov['n_groups'] * cov['group_size']} exceeds p = {p}"]
    return []


def _has_signal(design: dict) -> bool:
    coef = design["coef"]
    beta = coef["values"] if "values" in coef else [coef["value"]] * coef["first_k"]
    if not any(beta):
        return False
    if design["p"] > 500:  # a non-zero beta has signal unless Sigma is singular along it: checked exactly when cheap
        return True
    from regbench import data
    pop = data.truth(design)
    return float(pop["beta"] @ pop["Sigma"] @ pop["beta"]) > 1e-12


def _machine_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def memory_problem(key: str, nbytes: float, what: str) -> list[str]:
    """[problem] when one job would need more memory than this machine has, else []."""
    have = _machine_bytes()
    if nbytes <= have:
        return []
    return [f"{key}: {what} needs about {nbytes / 2**30:,.1f} GiB in one job; this machine has "
            f"{have / 2**30:,.1f} GiB; allowed: settings that fit (reduce the sizes named)"]


def _memory_problems(cfg: dict) -> list[str]:
    """Rough per-job memory of the arrays every study shares: a design's covariance,
    its square root and the stored datasets (float64); a teacher's covariance and
    probe; the splits of every seed an experiment stacks (float32, a few copies)."""
    from regbench import jobs
    out, stored = [], jobs.seeds_needed(cfg)
    for name, d in cfg["designs"].items():
        rows, p, seeds = d["n_train"] + d["n_val"] + d["n_test"], d["p"], max(stored.get(name, 1), 1)
        out += memory_problem(f"designs.{name}", 8 * (4 * p * p + 2 * seeds * rows * p),
                              f"design {name} (p = {p}, {rows} rows per seed, {seeds} seed(s) stored)")
    for name, t in cfg["teachers"].items():
        out += memory_problem(f"teachers.{name}.p", 8 * (3 * t["p"] ** 2 + 20_000 * t["p"]),
                              f"teacher {name} (p = {t['p']}: its covariance and a 20000-row probe)")
    for exp, params in cfg["experiments"].items():
        t = cfg["teachers"].get(params.get("teacher"))
        if t is None:
            continue
        n = max([params.get("n_train", 0)] + list(params.get("sweep", {}).get("n_train", [])))
        rows = n + t["n_val"] + 2 * t["n_test"]
        out += memory_problem(f"experiments.{exp}.seeds", 4 * 3 * params["seeds"] * rows * t["p"],
                              f"{exp} ({params['seeds']} seeds x {rows} rows x {t['p']} features of teacher {params['teacher']})")
    return out


def _device_problems(cfg: dict) -> list[str]:
    # torch is imported only when CUDA is asked for: planning a run stays light.
    if cfg.get("device") != "cuda":
        return []
    try:
        import torch
    except ImportError:
        return ["device: cuda, but torch is not installed; allowed: auto, cpu"]
    if not torch.cuda.is_available():
        return [f"device: cuda, but CUDA is not available on this machine (torch {torch.__version__}); "
                "allowed: auto (CUDA when present) or cpu"]
    return []


# ---------------------------------------------------------------- grids and settings
def sweep_points(params: dict) -> list[dict]:
    """The grid of a sweep: the product of its value lists, in a fixed order."""
    keys = sorted(params["sweep"])
    return [dict(zip(keys, values)) for values in itertools.product(*(params["sweep"][k] for k in keys))]


def n_chunks(experiment: str, params: dict) -> int:
    """How many jobs an experiment's grid is split into."""
    if "sweep" in params:
        return math.ceil(len(sweep_points(params)) / params["chunk_size"])
    return 1


def chunk_points(params: dict, chunk: int) -> list[dict]:
    size = params["chunk_size"]
    return sweep_points(params)[chunk * size : (chunk + 1) * size]


def apply_overrides(design: dict, overrides: dict) -> dict:
    """A design with dotted keys (noise.sigma, covariance.r) replaced."""
    out = copy.deepcopy(design)
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = out
        for key in parents:
            node = node[key]
        node[leaf] = value
    return out


def digest(obj) -> str:
    """A stable short hash of plain data (key order does not matter)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def experiment_settings(cfg: dict, experiment: str) -> dict:
    """Exactly what an experiment's jobs read from a validated config: its params,
    the root seed and the design and teacher they name (a job gets nothing else that
    changes its numbers). Its digest is the experiment rule's rerun trigger."""
    params = cfg["experiments"][experiment]
    out = {"experiment": experiment, "params": params, "seed": cfg["seed"]}
    if params.get("design") in cfg.get("designs", {}):
        out["design"] = cfg["designs"][params["design"]]
    if params.get("teacher") in cfg.get("teachers", {}):
        out["teacher"] = cfg["teachers"][params["teacher"]]
    return out


def main(argv=None) -> int:
    """`python -m regbench.config [FILE ...]`: check config/config.yaml with FILEs applied
    as `snakemake --configfile FILE ...` would, without Snakemake (which reports a YAML
    syntax error in a --configfile without its line)."""
    root = Path(__file__).resolve().parents[2]
    default = root / "config" / "config.yaml"
    # naming the default file itself checks it alone, as a plain `snakemake` run would use it
    files = [f for f in (sys.argv[1:] if argv is None else argv) if Path(f).resolve() != default.resolve()]
    try:
        cfg = load(default, files)
        cfg = validate(cfg, load_schema(root / "workflow" / "schemas" / "config.schema.yaml"))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    print(f"ok: {len(cfg['experiments'])} experiment(s) ({', '.join(cfg['experiments'])}); results in {cfg['results']}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
