"""One plugin surface: a plugin imports ``ascbench.plugin`` and nothing else from ascbench (the built-in plugins and
the scaffold templates alike), every kind is declared once, and a plugin can be tried from a folder."""

from __future__ import annotations

import ast
import dataclasses
import os
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


# --- a plugin tried from a folder, without installing it -----------------------------------------------------------

SEMI_FILE = '''
import ascbench.plugin as ap


def labeled_twice(job, model, lr, epochs, desc):
    job.notes["labeled_twice"] = True
    return ap.supervised(job, model, lr, epochs, desc)


@ap.hookimpl
def ascbench_semi_methods():
    return [ap.SemiSpec("labeled-twice", labeled_twice, "the labeled clips only, and a note")]
'''

METRIC_FILE = '''
import ascbench.plugin as ap


def share_of_class_zero(y_true, probs, classes):
    return float((probs.argmax(axis=1) == 0).mean())


@ap.hookimpl
def ascbench_metrics():
    return [ap.MetricSpec("share-of-class-zero", share_of_class_zero, False, "how often class 0 is predicted")]
'''

PROTOCOL_FILE = '''
import numpy as np

import ascbench.plugin as ap


def first_city_out(dataset, options):
    city = sorted(dataset.meta["city"].unique())[0]
    tested = (dataset.meta["city"] == city).to_numpy()
    return ap.Split(train=np.flatnonzero(~tested), test=np.flatnonzero(tested & dataset.meta["labeled"].to_numpy()),
                    info={"test_cities": [city]})


@ap.hookimpl
def ascbench_protocols():
    return [ap.ProtocolSpec("first-city-out", first_city_out, "the alphabetically first city held out")]
'''


def plugin_folder(tmp_path: Path, **files: str) -> Path:
    folder = tmp_path / "my-plugins"
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text, encoding="utf-8")
    return folder


def test_a_semi_method_and_a_metric_from_a_folder_run(tmp_path, monkeypatch, runs):
    from ascbench.config import RunConfig
    from ascbench.registry import DIRS_ENV, build_registry
    from ascbench.runner import execute

    folder = plugin_folder(tmp_path, my_semi=SEMI_FILE, my_metric=METRIC_FILE)
    monkeypatch.setenv(DIRS_ENV, os.pathsep.join([str(tmp_path / "elsewhere-empty"), str(folder)]))
    (tmp_path / "elsewhere-empty").mkdir()
    registry = build_registry(strict=True)
    assert registry.owner("semi", "labeled-twice") == "my_semi"
    assert registry.status["my_metric"].source == str(folder / "my_metric.py")
    record = execute(RunConfig(dataset="embedded-tiny", model="context-only", strategy="scratch", semi="labeled-twice",
                               epochs=1), registry=registry, progress=False)
    assert 0.0 <= record.metrics["scores"]["share-of-class-zero"] <= 1.0
    assert record.metrics["strategy_notes"]["labeled_twice"] is True  # the method from the folder did the fitting


def test_a_protocol_from_a_folder_splits_on_the_command_line(tmp_path, monkeypatch, capsys):
    from ascbench import registry
    from ascbench.cli import main

    folder = plugin_folder(tmp_path, my_protocol=PROTOCOL_FILE)
    monkeypatch.setenv(registry.DIRS_ENV, "")  # main() sets it from --plugins-dir; restored after the test
    monkeypatch.setattr(registry, "_default", None)  # the process's registry is built afresh, with the folder
    assert main(["--plugins-dir", str(folder), "data", "split", "embedded-tiny", "--protocol", "first-city-out"]) == 0
    assert "first-city-out" in capsys.readouterr().out
    assert registry.get_registry().owner("protocol", "first-city-out") == "my_protocol"


def test_a_broken_file_is_skipped_by_name_or_fatal_when_strict(tmp_path, monkeypatch):
    from ascbench.errors import PluginError
    from ascbench.registry import DIRS_ENV, PluginWarning, build_registry

    folder = plugin_folder(tmp_path, broken="import no_such_module_anywhere\n", my_metric=METRIC_FILE)
    monkeypatch.setenv(DIRS_ENV, str(folder))
    with pytest.warns(PluginWarning, match=r"'broken'.*broken\.py failed to import: ModuleNotFoundError"):
        registry = build_registry(strict=False)
    assert "share-of-class-zero" in registry.names("metric")  # the good file beside it still loads
    with pytest.raises(PluginError, match=r"broken\.py failed to import"):
        build_registry(strict=True)


def test_a_missing_plugins_dir_is_one_line(tmp_path, capsys):
    from ascbench.cli import main

    assert main(["--plugins-dir", str(tmp_path / "nope"), "list"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--plugins-dir" in err and "nope" in err


def test_a_plugin_file_never_replaces_an_imported_module(tmp_path, monkeypatch):
    from ascbench.registry import DIRS_ENV, PluginWarning, build_registry

    folder = plugin_folder(tmp_path, json=METRIC_FILE)
    monkeypatch.setenv(DIRS_ENV, str(folder))
    with pytest.warns(PluginWarning, match=r"json\.py: its name 'json' is taken .*; rename the file"):
        build_registry(strict=False)
    assert sys.modules["json"].__name__ == "json" and hasattr(sys.modules["json"], "dumps")


def test_a_scaffolded_plugin_loads_from_its_folder_before_it_is_installed(tmp_path, monkeypatch):
    from ascbench.registry import DIRS_ENV, build_registry

    root = scaffold.new_plugin("try-me", "metric", tmp_path)
    monkeypatch.setenv(DIRS_ENV, str(root))
    assert build_registry(strict=True).owner("metric", "try-me") == "ascbench_try_me"


def test_new_plugin_help_explains_every_argument():
    import argparse

    from ascbench.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices["new-plugin"]
    assert parser.description and "--plugins-dir" in parser.description
    assert all(action.help for action in parser._actions), [a.dest for a in parser._actions if not a.help]
