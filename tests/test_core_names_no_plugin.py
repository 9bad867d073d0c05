"""The core names no built-in plugin except in one table of defaults (issue 32).

The rule, by grep over the syntax tree: in ``ascbench/**/*.py`` (not ``ascbench/testing/``, the conformance kits
that exercise built-ins, nor the scaffold templates), no string literal equals the name of a built-in plugin of any
kind, except in ``ascbench/defaults.py`` (what ``ascbench run`` uses when nothing is given). Docstrings, comments
and help texts that mention a name inside a sentence are prose, not a branch on a name, and are not matched: only a
literal that *is* a name (``config.semi == "mean-teacher"``, ``RunConfig.model = "mobileascnet"``) is.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from ascbench.kinds import KINDS
from ascbench.registry import get_registry

ROOT = Path(__file__).resolve().parents[1] / "ascbench"
SKIPPED_DIRS = ("testing", "templates")
DEFAULTS_TABLE = Path("defaults.py")

# Plugin names that are also words of the core's own vocabulary, where a literal cannot tell which is meant: each is
# everywhere a record field, a file format or a setting's value, never a branch on the plugin.
COMMON_WORDS: dict[str, str] = {
    "accuracy": "a record's metrics field and a --select-on criterion the core computes itself (metrics.json)",
    "macro-accuracy": "a --select-on criterion, computed by the core for model selection",
    "csv": "a file format (--format csv), as well as the csv logger",
    "none": "the value 'none' of core settings (--normalization none, plot options), as well as --semi none",
}
# (file, name) pairs left, each with why.
ALLOWED: dict[tuple[str, str], str] = {}


def builtin_plugin_names() -> set[str]:
    """Every name a built-in plugin registers, of every kind (model family prefixes and old names too)."""
    registry = get_registry()
    return {name for kind in KINDS for name in [*registry.names(kind.name), *registry.aliases[kind.name]]}


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are docstrings (of the module, a class or a function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def plugin_name_literals(root: Path, names: set[str]) -> list[tuple[str, int, str]]:
    """(file relative to ``root``, line, literal) of each string literal equal to one of ``names``."""
    hits = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in SKIPPED_DIRS or rel == DEFAULTS_TABLE:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names \
                    and id(node) not in docs:
                hits.append((rel.as_posix(), node.lineno, node.value))
    return hits


def test_the_core_names_no_builtin_plugin_outside_the_defaults_table():
    hits = [h for h in plugin_name_literals(ROOT, builtin_plugin_names() - set(COMMON_WORDS))
            if (h[0], h[2]) not in ALLOWED]
    assert not hits, "the core names built-in plugins (read a capability, a declaration or ascbench.defaults):\n" + \
        "\n".join(f"ascbench/{f}:{line}: {value!r}" for f, line, value in hits)


def test_the_scan_finds_a_name_and_skips_docstrings(tmp_path):
    (tmp_path / "core.py").write_text('"""Uses mean-teacher."""\n\nif semi == "mean-teacher":\n    pass\n'
                                      'HELP = "e.g. mean-teacher"\n')
    assert plugin_name_literals(tmp_path, {"mean-teacher"}) == [("core.py", 3, "mean-teacher")]


def test_each_common_word_is_a_builtin_plugin_name():
    """An allowance for a name no plugin registers any more is removed, so the list never grows stale."""
    assert set(COMMON_WORDS) <= builtin_plugin_names()


def test_each_allowance_is_still_needed():
    """An allowance the code no longer needs is removed, so the list never grows stale."""
    hits = {(f, value) for f, _, value in plugin_name_literals(ROOT, builtin_plugin_names())}
    assert set(ALLOWED) <= hits, sorted(set(ALLOWED) - hits)


# --- capabilities instead of names -------------------------------------------------------------------------------


def test_data_parallel_refusal_reads_the_semi_methods_capability(monkeypatch):
    """A method that declares data_parallel=False is refused under torchrun, whatever its name; others are not."""
    import types

    from ascbench import runner
    from ascbench.config import RunConfig
    from ascbench.errors import ConfigError
    from ascbench.specs import SemiSpec

    monkeypatch.setattr(runner.distributed, "setup", lambda backend="gloo": None)
    monkeypatch.setattr(runner.distributed, "world_size", lambda: 2)
    cpu = types.SimpleNamespace(device=types.SimpleNamespace(type="cpu"))
    config = RunConfig(semi="my-teacher")
    with pytest.raises(ConfigError, match="--semi my-teacher cannot run data-parallel"):
        runner._prepare_process(config, SemiSpec("my-teacher", lambda *a: [], data_parallel=False), cpu, None)
    assert runner._prepare_process(config, SemiSpec("my-teacher", lambda *a: []), cpu, None) == 2
    assert get_registry().semi("mean-teacher").data_parallel is False  # its EMA teacher is one process's


def test_the_training_job_has_no_semi_fallback_of_its_own():
    """The job fits through the run's registered semi method (labeled-only is the registered default), so it must
    be given one."""
    import dataclasses

    from ascbench.job import TrainingJob

    field = {f.name: f for f in dataclasses.fields(TrainingJob)}["semi_method"]
    assert field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


# --- shortcut flags and old names, declared by their plugins -------------------------------------------------------


def test_the_declarations_read_from_source_are_the_registered_ones():
    """What `ascbench run --help` reads without importing the plugins is what the registry's specs hold."""
    from ascbench.shortcuts import declared

    registry, read = get_registry(), declared()
    for s in read.shortcuts:
        spec = registry.get(s.kind, s.plugin)
        assert spec.shortcuts[s.flag] == s.option + (f"={s.switch}" if s.switch else "")
    for r in read.renamed.values():
        assert registry.get(r.kind, r.plugin).renamed[r.old] == (r.option, r.default)
    registered = {(kind, flag) for kind in ("strategy", "semi", "protocol") for name in registry.names(kind)
                  for flag in registry.get(kind, name).shortcuts}
    assert registered == {(s.kind, s.flag) for s in read.shortcuts}
    # every shortcut names an option its plugin has, and --help shows that option's own help
    for s in read.shortcuts:
        options_class = registry.get(s.kind, s.plugin).options_class
        assert s.option in {f.name for f in dataclasses.fields(options_class)}, s
        assert s.help and s.help == options_class.__dataclass_fields__[s.option].metadata["help"], s


def test_a_folder_plugins_shortcut_is_listed_and_sets_its_option(tmp_path, monkeypatch, capsys):
    """A third-party method's shortcut flag reaches --help and the config like a built-in's, with no core change."""
    from ascbench.cli import build_parser
    from ascbench.cli.run import _explicit_fields
    from ascbench.shortcuts import declared

    (tmp_path / "my_semi.py").write_text(
        "from dataclasses import dataclass\nimport ascbench.plugin as ap\n\n"
        "@dataclass(frozen=True)\nclass Opts:\n    k: int = 1\n    on: bool = True\n\n"
        "@ap.hookimpl\ndef ascbench_semi_methods():\n"
        "    return [ap.SemiSpec('my-semi', ap.supervised, 'x', options_class=Opts,\n"
        "                        shortcuts={'--my-k': 'k', '--my-off': 'on=false'},\n"
        "                        renamed={'my_k': ('k', 1)})]\n")
    monkeypatch.setenv("ASCBENCH_PLUGINS_DIR", str(tmp_path))
    declared.cache_clear()
    try:
        with pytest.raises(SystemExit):
            build_parser().parse_args(["run", "--help"])
        shown = capsys.readouterr().out
        assert "--my-k K" in shown and "semi my-semi: --set semi.on=false" in shown
        argv = ["run", "--semi", "my-semi", "--my-k", "3", "--my-off"]
        args = build_parser().parse_args(argv)
        given = _explicit_fields(args)
        assert given["semi.k"] == 3 and given["semi.on"] is False
        from ascbench.config import _options_of_chosen_plugins, _renamed
        assert _options_of_chosen_plugins(_renamed({"semi": "my-semi", "my_k": 4}))["options"] == {"semi": {"k": 4}}
    finally:
        declared.cache_clear()


def test_a_shortcut_to_an_option_the_plugin_lacks_is_refused_at_declaration():
    from ascbench.specs import SemiSpec
    from ascbench_plugins.semi_methods import MeanTeacherOptions

    with pytest.raises(ValueError, match="--mt-nope sets option 'nope'"):
        SemiSpec("x", lambda *a: [], options_class=MeanTeacherOptions, shortcuts={"--mt-nope": "nope"})
    with pytest.raises(ValueError, match="mt_old sets option 'gone'"):
        SemiSpec("x", lambda *a: [], options_class=MeanTeacherOptions, renamed={"mt_old": ("gone", 1)})


@pytest.mark.parametrize("flag, argv, dest, value", [
    ("--seed", ["run", "--seed", "3"], "seed", 3),
    ("--epochs", ["run", "--epochs", "3"], "epochs", 3),  # a core flag made after the shortcuts once crashed every command
    ("--output", ["data", "split", "embedded-tiny", "--output", "x.csv"], "output", "x.csv"),
])
def test_a_shortcut_that_clashes_with_a_core_flag_is_skipped_with_a_warning(tmp_path, monkeypatch, flag, argv, dest,
                                                                          value):
    from ascbench.cli import build_parser
    from ascbench.registry import PluginWarning
    from ascbench.shortcuts import declared

    kind, hook, spec = ("protocol", "ascbench_protocols", "ProtocolSpec") if argv[0] == "data" else \
        ("semi", "ascbench_semi_methods", "SemiSpec")
    (tmp_path / "clash.py").write_text(
        "import ascbench.plugin as ap\n\n"
        f"@ap.hookimpl\ndef {hook}():\n"
        f"    return [ap.{spec}('clash', ap.supervised, 'x', options_class=ap.BudgetOptions,\n"
        f"                        shortcuts={{'{flag}': 'budget'}})]\n")
    monkeypatch.setenv("ASCBENCH_PLUGINS_DIR", str(tmp_path))
    declared.cache_clear()
    try:
        with pytest.warns(PluginWarning, match=f"{kind} 'clash': shortcut {flag} skipped"):
            args = build_parser().parse_args(argv)
        assert getattr(args, dest) == value  # the core's flag still works
    finally:
        declared.cache_clear()


def test_an_old_name_a_plugin_may_not_claim_is_ignored_with_a_warning(tmp_path, monkeypatch):
    """A plugin declaring a core field (``epochs``) or another plugin's old name (``test_cities``) as its own old
    name would silently take that setting from every run, sweep and config file."""
    from ascbench.config import RunConfig
    from ascbench.registry import PluginWarning
    from ascbench.shortcuts import declared

    (tmp_path / "hijack.py").write_text(
        "from dataclasses import dataclass\nimport ascbench.plugin as ap\n\n"
        "@dataclass(frozen=True)\nclass Opts:\n    epochs: int = 30\n    test_cities: list = ()\n\n"
        "@ap.hookimpl\ndef ascbench_protocols():\n"
        "    return [ap.ProtocolSpec('hijack', lambda d, o: None, 'x', options_class=Opts,\n"
        "                            renamed={'epochs': ('epochs', 30), 'test_cities': ('test_cities', [])})]\n")
    monkeypatch.setenv("ASCBENCH_PLUGINS_DIR", str(tmp_path))
    declared.cache_clear()
    try:
        with pytest.warns(PluginWarning) as caught:
            renamed = declared().renamed
        said = " ".join(str(w.message) for w in caught)
        assert "old name 'epochs'" in said and "field of the core config" in said
        assert "old name 'test_cities'" in said and "'unseen-city' declares it already" in said
        assert "epochs" not in renamed and renamed["test_cities"].plugin == "unseen-city"
        from ascbench.shortcuts import _core_fields  # read from config.py's source: every field, none else

        assert _core_fields() == {f.name for f in dataclasses.fields(RunConfig)}
        assert RunConfig.from_dict({"epochs": 5}).epochs == 5
        config = RunConfig.from_dict({"protocol": "unseen-city", "test_cities": ["Arden"]})
        assert config.options["protocol"]["test_cities"] == ["Arden"]
    finally:
        declared.cache_clear()


def test_a_flag_is_taken_only_as_written(capsys):
    """argparse reads a prefix as the flag it starts (``--fold`` as ``--folds``): a typo must not run another setting."""
    from ascbench.cli import build_parser

    for argv in (["data", "split", "embedded-tiny", "--protocol", "unseen-city", "--fold", "2"],
                 ["run", "--epoch", "3"], ["leaderboard", "--proto", "unseen-city"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(argv)
        assert "unrecognized arguments" in capsys.readouterr().err
