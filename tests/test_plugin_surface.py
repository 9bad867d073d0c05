"""One plugin surface: a plugin imports ``ascbench.plugin`` and nothing else from ascbench (the built-in plugins and
the scaffold templates alike), every kind is declared once, and a plugin can be tried from a folder."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ascbench import scaffold

ROOT = Path(__file__).resolve().parents[1]
FACADE = "ascbench.plugin"


def ascbench_imports(source: str) -> list[str]:
    """Every ascbench module a source imports, at any depth (``ascbench_plugins``, a sibling plugin, is no ascbench)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [node.module if node.module != "ascbench" else f"ascbench.{a.name}" for a in node.names]
    return [name for name in found if name == "ascbench" or name.startswith("ascbench.")]


def test_the_finder_sees_every_form_of_import():
    source = ("import ascbench.specs\nfrom ascbench import hookimpl\nimport ascbench_plugins\n"
              "def f():\n    from ascbench.training import predict\n")
    assert ascbench_imports(source) == ["ascbench.specs", "ascbench.hookimpl", "ascbench.training"]


@pytest.mark.parametrize("path", sorted((ROOT / "plugins").glob("*.py")), ids=lambda p: p.name)
def test_builtin_plugins_import_only_the_facade(path):
    others = [name for name in ascbench_imports(path.read_text(encoding="utf-8")) if name != FACADE]
    assert not others, f"{path.name} imports {others}; a plugin imports only {FACADE} (add what it needs there)"


def rendered_templates() -> dict[str, str]:
    fields = {"name": "my-thing", "module": "ascbench_my_thing", "cls": "MyThing", "kind": "model",
              "module_suffix": "my_thing"}
    return {kind: scaffold._template(f"{kind}.py.tmpl").format(**fields) for kind in scaffold.KINDS}


def test_scaffold_templates_import_only_the_facade():
    for kind, source in rendered_templates().items():
        assert ascbench_imports(source) == [FACADE], kind


def test_scaffold_asks_for_the_python_the_project_needs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    fields = {"name": "x", "module": "ascbench_x", "kind": "model"}
    generated = tomllib.loads(scaffold._template("pyproject.toml.tmpl").format(**fields))["project"]["requires-python"]
    assert generated == project.split("#")[0].strip()


def test_import_ascbench_does_not_load_the_facade():
    code = "import sys, ascbench; ascbench.hookimpl; print('ascbench.plugin' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_the_training_job_meets_the_contract():
    """The job the runner hands a strategy has every member the facade's Protocol promises."""
    from ascbench import job
    from ascbench import plugin as ap

    promised = {name for name in ap.TrainingJob.__annotations__} | {
        name for name, value in vars(ap.TrainingJob).items() if callable(value) and not name.startswith("_")}
    provided = {f.name for f in dataclasses.fields(job.TrainingJob)} | set(dir(job.TrainingJob))
    assert promised - provided == set()
    assert {"config", "data", "partition", "fit", "build_model", "load_pretrained", "freeze"} <= promised


def test_the_facade_exports_what_it_lists():
    from ascbench import plugin as ap

    missing = [name for name in ap.__all__ if not hasattr(ap, name)]
    assert not missing
    assert ap.hookimpl is __import__("ascbench").hookimpl


# --- every kind declared once ---------------------------------------------------------------------------------------

def test_the_hookspecs_and_the_kinds_table_agree():
    """One hookspec per kind, each saying it returns the kind's spec class, and no hookspec without a kind."""
    from ascbench import hookspecs, kinds

    specs = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("ascbench_") and callable(fn)}
    assert set(specs) == kinds.HOOK_NAMES
    for kind in kinds.KINDS:
        assert f"``{kind.spec.__name__}``" in specs[kind.hook].__doc__, kind.name


def test_every_reader_of_kinds_reads_the_table():
    from ascbench import kinds, options, registry
    from ascbench.cli import listing

    assert set(registry.Registry().entries) == set(kinds.BY_NAME)
    assert registry.HOOK_NAMES == kinds.HOOK_NAMES
    assert tuple(options.KINDS) == kinds.OPTION_PREFIXES
    assert tuple(scaffold.KINDS) == kinds.TEMPLATES
    assert list(listing.PLURAL) == [k.name for k in kinds.LISTED]


def test_every_kind_with_a_template_has_its_files_and_every_kit_exists():
    import ascbench.testing as kits
    from ascbench import kinds

    for kind in kinds.KINDS:
        if kind.template:
            assert scaffold._template(f"{kind.template}.py.tmpl") and scaffold._template(f"{kind.template}_test.py.tmpl")
        if kind.kit:
            assert kind.kit in kits.__all__ and callable(getattr(kits, kind.kit)), kind.name
    # a scaffolded plugin's tests run its kind's kit
    assert {k.name for k in kinds.KINDS if k.template} <= {k.name for k in kinds.KINDS if k.kit}
    for kind in (k for k in kinds.KINDS if k.template):
        assert kind.kit in scaffold._template(f"{kind.template}_test.py.tmpl"), kind.name


def test_an_unknown_name_is_named_as_the_table_says():
    from ascbench.errors import UnknownNameError
    from ascbench.registry import Registry

    with pytest.raises(UnknownNameError, match="semi-supervised method"):
        Registry().get("semi", "nope")
