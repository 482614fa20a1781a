"""config/README.md's key tables are generated from the schema, so they cannot drift from it."""
import copy

from regbench import config_doc, studies
from tests.conftest import ROOT

README = ROOT / "config" / "README.md"
FIX = "run `python -m regbench.config_doc` (after editing descriptions in the schema, not the README)"


def test_readme_tables_are_a_fresh_render_of_the_schema(schema):
    stale = config_doc.stale(README.read_text(), config_doc.render(schema))
    assert not stale, f"config/README.md: stale generated block(s) {stale}; {FIX}"


def properties(node, root, path="config"):
    """(dotted path, schema) of every key a config can hold: nested objects, maps of
    objects (teachers, designs, arms) and oneOf alternatives included, $refs followed.
    A oneOf discriminator (`const`, e.g. covariance.family) is named by its form, not described."""
    for key, sub in node.get("properties", {}).items():
        sub = config_doc.resolve(sub, root)
        if "const" not in sub:
            yield f"{path}.{key}", sub
            yield from properties(sub, root, f"{path}.{key}")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from properties(config_doc.resolve(extra, root), root, f"{path}.<name>")
    for alt in node.get("oneOf", []):
        yield from properties(alt, root, path)


def test_every_key_has_a_description(schema):
    found = dict(properties(schema, schema))
    missing = [path for path, sub in found.items() if not str(sub.get("description", "")).strip()]
    assert not missing, f"keys without a schema description (the README's meaning column): {missing}"
    # the walk reaches every kind of key, so an empty walk cannot pass
    for path in ("config.seed", "config.teachers.<name>.ood_scale", "config.designs.<name>.covariance.rho",
                 "config.experiments.finetune.recipe.patience", "config.experiments.augmentation.arms.<name>.kind"):
        assert path in found, path
    for exp in schema["properties"]["experiments"]["properties"]:
        assert f"config.experiments.{exp}" in found


def planted(schema, *keys):
    """A copy of the schema with one description changed (the node at `keys`)."""
    out = copy.deepcopy(schema)
    node = out
    for key in keys:
        node = node[key]
    node["description"] = node.get("description", "") + " (planted change)"
    return out


def test_a_changed_description_makes_exactly_its_block_stale(schema):
    text = README.read_text()
    exps = ("properties", "experiments", "properties")
    cases = {
        "top-level": ("properties", "threads"),
        "design": ("definitions", "design", "properties", "noise", "oneOf", 1, "properties", "snr"),
        "teacher": ("definitions", "teacher", "properties", "hidden"),
    }
    for study in studies.names():
        exp = next(iter(studies.schema(study)))
        cases[f"experiments/{study}"] = (*exps, exp, "properties", next(iter(schema[exps[0]][exps[1]][exps[2]][exp]["properties"])))
    for block, keys in cases.items():
        assert config_doc.stale(text, config_doc.render(planted(schema, *keys))) == [block], keys
    # a shared definition reaches every table that uses it without a description of its own
    users = [f"experiments/{s}" for s in studies.names()
             if any("description" not in e["properties"].get("seeds", {"description": ""}) for e in studies.schema(s).values())]
    assert len(users) >= 2
    assert config_doc.stale(text, config_doc.render(planted(schema, "definitions", "seeds"))) == users


def test_check_and_rewrite_round_trip(tmp_path, capsys):
    good = README.read_text()
    readme = tmp_path / "README.md"
    # a hand edit inside a block, and a block deleted outright
    start = good.index("<!-- BEGIN generated: experiments/dropout -->") - 1  # with the blank line before it
    end = good.index("<!-- END generated -->", start) + len("<!-- END generated -->\n")
    readme.write_text((good[:start] + good[end:]).replace("| `seed` |", "| `seed` (edited) |", 1))
    assert config_doc.main(["--check", "--readme", str(readme)]) == 1
    err = capsys.readouterr().err
    assert "top-level" in err and "experiments/dropout (missing)" in err and "python -m regbench.config_doc" in err
    assert config_doc.main(["--readme", str(readme)]) == 0
    assert readme.read_text() == good  # rewritten in place, the missing block back where it was
    assert config_doc.main(["--check", "--readme", str(readme)]) == 0


def test_a_block_for_nothing_rendered_is_reported_and_removed(schema):
    good = README.read_text()
    extra = good + "\n<!-- BEGIN generated: experiments/gone -->\nold table\n<!-- END generated -->\n"
    blocks = config_doc.render(schema)
    assert config_doc.stale(extra, blocks) == ["experiments/gone (not in the schema)"]
    assert config_doc.update(extra, blocks) == good + "\n"
