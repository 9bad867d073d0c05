"""Shortcut flags and old config names, declared by the plugins whose options they set.

A strategy, semi-supervised method or protocol may give some of its options a flag of their own (``--pl-rounds 3`` is
``--set semi.rounds=3``) and keep the config names they had before they were its options (``pl_rounds`` in a stored
record, a sweep file or a config file). It declares both on its spec (``shortcuts=``, ``renamed=``) as literal
dicts, and this module reads them from the plugin modules' source without importing them: ``ascbench run --help``
lists every shortcut, with its option's help (the options class field's literal ``metadata`` help), without
importing torch. The registry holds the same declarations (the specs' fields);
``tests/test_core_names_no_plugin.py`` checks that the two agree.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ascbench.kinds import KINDS, Kind

# The spec classes whose plugins may declare shortcuts, by class name (as a plugin module calls them).
_DECLARING: dict[str, Kind] = {kind.spec.__name__: kind for kind in KINDS
                               if "shortcuts" in {f.name for f in fields(kind.spec)}}


@dataclass(frozen=True)
class Shortcut:
    """``flag`` sets option ``option`` of ``kind`` plugin ``plugin``: to its value, or to ``switch`` (a switch)."""

    flag: str
    kind: str  # the config field choosing the plugin ("semi")
    prefix: str  # its options' prefix (``--set PREFIX.FIELD``)
    plugin: str
    option: str
    switch: str | None = None  # "false" for ``"--pl-unbalanced": "class_balanced=false"``; None: takes a value
    help: str = ""  # the option's own help (its field's metadata["help"] in the plugin's source), for --help

    @property
    def key(self) -> str:
        return f"{self.prefix}.{self.option}"

    @property
    def dest(self) -> str:
        return "shortcut_" + self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class Renamed:
    """Config name ``old`` is now option ``option`` of ``kind`` plugin ``plugin``; ``default`` is what configs held
    when it was not set (such a value is dropped, whichever plugin the run chose)."""

    old: str
    kind: str
    prefix: str
    plugin: str
    option: str
    default: Any


@dataclass(frozen=True)
class Declarations:
    shortcuts: tuple[Shortcut, ...]
    renamed: dict[str, Renamed]


def plugin_sources() -> list[Path]:
    """The source files of the plugins the registry would load (entry points, then the plugin folders)."""
    from ascbench.registry import _entry_points, plugin_dirs

    paths = []
    for ep in _entry_points():
        try:
            found = importlib.util.find_spec(ep.module)
        except (ImportError, ValueError):
            continue  # the registry says why, when it loads
        if found is not None and found.origin and found.origin.endswith(".py"):
            paths.append(Path(found.origin))
    # Regular files only: reading a FIFO blocks (the registry names such a file when it loads plugins).
    return paths + [p for folder in plugin_dirs() if folder.is_dir() for p in sorted(folder.glob("*.py")) if p.is_file()]


def read_declarations(paths: list[Path]) -> Declarations:
    """Every spec call in ``paths`` with literal ``shortcuts=`` or ``renamed=``."""
    shortcuts: list[Shortcut] = []
    renamed: dict[str, Renamed] = {}
    for path in paths:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue  # the registry reports a plugin it cannot import
        helps = _option_helps(tree)
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            kind, plugin, given = _spec_call(call)
            if kind is None:
                continue
            options_class = next((k.value.id for k in call.keywords
                                  if k.arg == "options_class" and isinstance(k.value, ast.Name)), "")
            for flag, target in given.get("shortcuts", {}).items():
                option, _, switch = target.partition("=")
                shortcuts.append(Shortcut(flag, kind.name, kind.option_prefix, plugin, option, switch or None,
                                          helps.get(options_class, {}).get(option, "")))
            for old, (option, default) in given.get("renamed", {}).items():
                claim = Renamed(old, kind.name, kind.option_prefix, plugin, option, default)
                if _refused_old_name(claim, renamed.get(old)):
                    continue
                renamed[old] = claim
    return Declarations(tuple(shortcuts), renamed)


def _refused_old_name(claim: Renamed, earlier: Renamed | None) -> bool:
    """An old name a plugin may not claim, warned about: a field the core config has today (the plugin would take
    ``epochs`` from every run), or one another plugin claimed first (the first declaration keeps it)."""
    import warnings

    from ascbench.registry import PluginWarning

    if claim.old in _core_fields():
        why = "it is a field of the core config"
    elif earlier is not None:
        why = f"{earlier.kind} {earlier.plugin!r} declares it already"
    else:
        return False
    warnings.warn(f"{claim.kind} {claim.plugin!r}: old name {claim.old!r} for {claim.prefix}.{claim.option} ignored "
                  f"({why})", PluginWarning, stacklevel=3)
    return True


@functools.lru_cache(maxsize=None)
def _core_fields() -> frozenset[str]:
    """The fields of ``RunConfig``, read from ascbench/config.py's source: config imports this module, so it cannot
    be imported here (and the source is what ``--help`` reads for plugins too)."""
    tree = ast.parse(Path(__file__).with_name("config.py").read_text(encoding="utf-8"))
    run_config = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "RunConfig")
    return frozenset(n.target.id for n in run_config.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name))


def _option_helps(tree: ast.AST) -> dict[str, dict[str, str]]:
    """Per class of a module, each field's literal help: ``x: int = field(..., metadata={"help": "..."})``, or
    ``metadata=_help("...")`` (a one-argument helper); fields without a literal help are left out."""
    found: dict[str, dict[str, str]] = {}
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for stmt in cls.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(stmt.value, ast.Call)):
                continue
            metadata = next((k.value for k in stmt.value.keywords if k.arg == "metadata"), None)
            text = None
            if isinstance(metadata, ast.Dict):
                text = next((v.value for k, v in zip(metadata.keys, metadata.values) if isinstance(k, ast.Constant)
                             and k.value == "help" and isinstance(v, ast.Constant)), None)
            elif isinstance(metadata, ast.Call) and len(metadata.args) == 1 \
                    and isinstance(metadata.args[0], ast.Constant):
                text = metadata.args[0].value
            if isinstance(text, str):
                found.setdefault(cls.name, {})[stmt.target.id] = text
    return found


def _spec_call(call: ast.Call) -> tuple[Kind | None, str, dict[str, Any]]:
    """(kind, plugin name, literal declarations) of a ``XSpec("name", ..., shortcuts={...})`` call."""
    func = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    kind = _DECLARING.get(func)
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    name = call.args[0] if call.args else keywords.get("name")
    if kind is None or not isinstance(name, ast.Constant) or not {"shortcuts", "renamed"} & set(keywords):
        return None, "", {}
    given = {}
    for field_name in ("shortcuts", "renamed"):
        if field_name in keywords:
            try:
                given[field_name] = ast.literal_eval(keywords[field_name])
            except ValueError:
                continue  # not a literal: the registry warns when it loads the spec
    return kind, name.value, given


@functools.lru_cache(maxsize=None)
def declared() -> Declarations:
    """The shortcuts and old names of every plugin this process would load (read once)."""
    return read_declarations(plugin_sources())
