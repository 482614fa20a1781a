"""Load and check a regbench config before any job runs.

The JSON schema (workflow/schemas/config.schema.yaml, with each study's
experiment schemas merged in) fills defaults and checks types and ranges;
`validate` then checks what a schema cannot (that a design or teacher an
experiment names exists, that a design's blocks fit in p, and each study's own
cross-key checks). Every problem is reported at once, each naming its key and
what is allowed.
"""
import copy
import itertools
import math
from pathlib import Path

import jsonschema
import yaml

from regbench import data, studies


class ConfigError(ValueError):
    """A config that cannot run; the message lists every problem found."""


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


_Validator = _with_defaults(jsonschema.Draft7Validator)


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _describe(error) -> str:
    """One line per schema error: the key, what was wrong, what is allowed."""
    where = _where(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
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
    return f"{where}: {error.message}"


def load_schema(path) -> dict:
    """The config schema, with every study's experiment schemas
    (regbench/studies/<study>/schema.yaml) merged into experiments.properties."""
    schema = yaml.safe_load(Path(path).read_text())
    props = schema["properties"]["experiments"]["properties"]
    for exp, study in studies.study_of().items():
        props[exp] = copy.deepcopy(studies.schema(study)[exp])
    return schema


def validate(config: dict, schema: dict) -> dict:
    """A copy of `config` with defaults filled in; raises ConfigError listing every problem."""
    cfg = copy.deepcopy(config) if config else {}
    problems = [_describe(e) for e in sorted(_Validator(schema).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))]
    if not problems:
        problems = _semantic_problems(cfg)
    if problems:
        raise ConfigError("invalid regbench config:\n  - " + "\n  - ".join(problems))
    return cfg


def _semantic_problems(cfg: dict) -> list[str]:
    problems = []
    designs = cfg.get("designs", {})
    for name, design in designs.items():
        try:
            data.truth(design)
        except ValueError as err:
            problems.append(f"designs.{name}.{err}")
    teachers = cfg.get("teachers", {})
    for exp, params in cfg["experiments"].items():
        ref = params.get("teacher")
        if ref is not None and ref not in teachers:
            problems.append(
                f"experiments.{exp}.teacher: {ref!r} is not defined under teachers; defined: {', '.join(sorted(teachers)) or '(none)'}"
            )
        elif ref is not None and teachers[ref]["task"] != "classification":
            problems.append(f"experiments.{exp}.teacher: {ref!r} is a regression teacher; the neural studies need task: classification")
        ref = params.get("design")
        if ref is not None and ref not in designs:
            problems.append(
                f"experiments.{exp}.design: {ref!r} is not defined under designs; defined: {', '.join(sorted(designs)) or '(none)'}"
            )
    return problems + studies.problems(cfg)


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
