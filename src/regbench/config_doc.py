"""The key tables of config/README.md, rendered from the config schema.

A key's default, allowed values and meaning are written once, in the schema
(workflow/schemas/config.schema.yaml and src/regbench/studies/<study>/schema.yaml);
the README's tables are generated from it so the two cannot drift apart. The
README keeps its hand-written prose; each table sits between

    <!-- BEGIN generated: NAME -->  ...  <!-- END generated -->

`python -m regbench.config_doc` rewrites those blocks in place; with `--check`
it changes nothing and exits 1 naming every stale block (tests/test_config_doc.py
runs the same check). It imports no torch, so it runs anywhere the config loads.
"""
import argparse
import inspect
import re
import sys
from pathlib import Path

from regbench import config, studies

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
README = ROOT / "config" / "README.md"
BLOCK = re.compile(r"<!-- BEGIN generated: (\S+) -->\n(.*?)<!-- END generated -->\n?", re.S)
HEADER = "| key | default | meaning |\n|---|---|---|\n"


# ---------------------------------------------------------------- rendering
def render(schema: dict) -> dict[str, str]:
    """Block name -> markdown, in README order, for a merged schema (config.load_schema)."""
    defs, exps = schema["definitions"], schema["properties"]["experiments"]["properties"]
    out = {
        "top-level": table(schema, schema, nested=False),
        "design": table(defs["design"], schema),
        "teacher": table(defs["teacher"], schema),
    }
    for study in studies.names():
        parts = [f"## Experiments of the {study} study\n\n{inspect.cleandoc(studies.package(study).__doc__ or '')}\n"]
        for exp in studies.schema(study):
            parts.append(f"### `{exp}`\n\n{exps[exp].get('description', '').strip()}\n\n{table(exps[exp], schema)}")
        out[f"experiments/{study}"] = "\n".join(parts)
    return out


def table(node: dict, root: dict, nested: bool = True) -> str:
    """`| key | default | meaning |` for an object schema's properties."""
    return HEADER + "".join(f"| `{k}` | {d} | {m} |\n" for k, d, m in rows(node, root, nested=nested))


def rows(node: dict, root: dict, prefix: str = "", nested: bool = True, form: str = ""):
    """(key, default, meaning) per property. Nested objects, maps of objects
    (`arms.<name>.kind`) and the alternatives of a oneOf become dotted keys, so
    every key a config can hold gets its own row."""
    required = set(node.get("required", []))
    for key, sub in node.get("properties", {}).items():
        sub = resolve(sub, root)
        if "const" in sub:  # a oneOf discriminator (family: toeplitz): named in its parent's Forms
            continue
        yield prefix + key, _default(sub, key in required), _cell(form + _meaning(sub))
        if not nested:
            continue
        yield from rows(sub, root, f"{prefix}{key}.")
        extra = sub.get("additionalProperties")
        if isinstance(extra, dict) and "$ref" not in extra:
            yield from rows(extra, root, f"{prefix}{key}.<name>.")
        for alt in sub.get("oneOf", []):
            tag = ", ".join(f"{k} {v['const']}" for k, v in alt.get("properties", {}).items() if "const" in v)
            yield from rows(alt, root, f"{prefix}{key}.", form=f"{tag}: " if tag else "")


def resolve(node: dict, root: dict) -> dict:
    """A schema with its $ref followed; keys written beside the $ref (default, description) win."""
    while "$ref" in node:
        target = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _default(sub: dict, required: bool) -> str:
    if "default" not in sub:
        return "required" if required else "-"
    if sub["default"] == {} and any("default" in p for p in sub.get("properties", {}).values()):
        return "per key"  # an empty object whose keys carry their own defaults (rows below)
    return f"`{_cell(yamlish(sub['default']))}`"


def _meaning(sub: dict) -> str:
    """The description, plus what the schema allows when the description does not say it."""
    text = sub.get("description", "").strip()
    items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
    each = "each " if items else ""
    spec = items or sub
    notes = []
    if "enum" in spec and not all(_names(text, v) for v in spec["enum"]):
        notes.append(each + "one of " + ", ".join(f"`{yamlish(v)}`" for v in spec["enum"]))
    bounds = _bounds(spec)
    if bounds and not all(_bounded(text, v) for v in bounds[1]):
        notes.append(each + bounds[0])
    if "multipleOf" in spec:
        notes.append(f"a multiple of {yamlish(spec['multipleOf'])}")
    if notes:
        text = text.rstrip(".") + f". Allowed: {'; '.join(notes)}"
    if "oneOf" in sub:
        forms = []
        for alt in sub["oneOf"]:
            props = alt.get("properties", {})
            forms.append("`{" + ", ".join(f"{k}: {v['const']}" if "const" in v else k for k, v in props.items()) + "}`")
        text = text.rstrip(".") + ". Forms: " + ", ".join(forms)
    return text


def _bounds(spec: dict):
    """('0 < x <= 1', [0, 1]) from minimum / maximum, or None."""
    lo = next(((op, spec[k]) for k, op in (("minimum", "<="), ("exclusiveMinimum", "<")) if k in spec), None)
    hi = next(((op, spec[k]) for k, op in (("maximum", "<="), ("exclusiveMaximum", "<")) if k in spec), None)
    if lo and hi:
        return f"{yamlish(lo[1])} {lo[0]} x {hi[0]} {yamlish(hi[1])}", [lo[1], hi[1]]
    if lo:
        return f"x {lo[0].replace('<', '>')} {yamlish(lo[1])}", [lo[1]]
    if hi:
        return f"x {hi[0]} {yamlish(hi[1])}", [hi[1]]
    return None


def _names(text: str, value) -> bool:
    """Whether a description already names this allowed value, as a whole word."""
    return yamlish(value) in re.findall(r"\w+(?:\.\w+)*", text)


def _bounded(text: str, value) -> bool:
    """Whether a description already states this bound ('at least 2', 'below 2', '<= 1')."""
    return re.search(rf"(?:[<>]=?|at least|at most|below|above|up to)\s+{re.escape(yamlish(value))}(?![\w.])", text) is not None


def yamlish(value) -> str:
    """A value as it would be written in a config file (YAML flow style)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yamlish(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(yamlish(v) for v in value) + "]"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# ---------------------------------------------------------------- the README
def _wrap(name: str, body: str) -> str:
    return f"<!-- BEGIN generated: {name} -->\n\n{body.rstrip()}\n\n<!-- END generated -->\n"


def stale(text: str, blocks: dict[str, str]) -> list[str]:
    """Names of the README's blocks that differ from `blocks`, are missing, or name nothing rendered."""
    found = {m.group(1): m.group(0) for m in BLOCK.finditer(text)}
    bad = [f"{n} (missing)" for n in blocks if n not in found]
    bad += [n for n in found if n in blocks and found[n].rstrip("\n") + "\n" != _wrap(n, blocks[n])]
    return bad + [f"{n} (not in the schema)" for n in found if n not in blocks]


def update(text: str, blocks: dict[str, str]) -> str:
    """The README with every block re-rendered; a missing block goes after the one
    before it in render order (or at the end), a block for nothing rendered is removed."""
    text = BLOCK.sub(lambda m: _wrap(m.group(1), blocks[m.group(1)]) if m.group(1) in blocks else "", text)
    previous = None
    for name, body in blocks.items():
        if f"<!-- BEGIN generated: {name} -->" not in text:
            at = len(text)
            if previous is not None:
                end = re.search(rf"<!-- BEGIN generated: {re.escape(previous)} -->.*?<!-- END generated -->\n?", text, re.S)
                at = end.end()
            text = text[:at] + "\n" + _wrap(name, body) + text[at:]
        previous = name
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regbench.config_doc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a generated block is stale")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--schema", type=Path, default=SCHEMA)
    args = parser.parse_args(argv)
    text, blocks = args.readme.read_text(), render(config.load_schema(args.schema))
    bad = stale(text, blocks)
    if args.check:
        if bad:
            print(f"{args.readme}: stale generated block(s): {', '.join(bad)}. "
                  "Edit descriptions in the schema, then run `python -m regbench.config_doc`.", file=sys.stderr)
        return 1 if bad else 0
    if bad:
        args.readme.write_text(update(text, blocks))
        print(f"{args.readme}: rewrote {', '.join(bad)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
