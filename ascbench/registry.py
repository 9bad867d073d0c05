"""One plugin manager, one registry of every plugin kind (models, strategies, semi methods, datasets, protocols,
front-ends, recipes, loggers, metrics and CLI commands).

Plugins (built-in and third-party alike) are modules listed in the ``ascbench`` entry-point group.
Each registered name remembers the plugin that provided it, so that clashes and failures name both sides.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pluggy

from ascbench import hookspecs
from ascbench.errors import PluginError, UnknownNameError
from ascbench.kinds import BY_NAME, HOOK_NAMES, KINDS
from ascbench.specs import (DatasetSpec, FrontEndSpec, LoggerSpec, ModelFamily, ModelSpec, ProtocolSpec, RecipeSpec,
                            MetricSpec, SemiSpec, StrategySpec)

ENTRY_POINT_GROUP = "ascbench"

class PluginWarning(UserWarning):
    """A plugin was skipped; the message says which and why."""


@dataclass
class Registry:
    """Names to specs, per kind, with the plugin that registered each one."""

    entries: dict[str, dict[str, Any]] = field(default_factory=lambda: {k.name: {} for k in KINDS})
    owners: dict[str, dict[str, str]] = field(default_factory=lambda: {k.name: {} for k in KINDS})
    plugins: list[str] = field(default_factory=list)  # the plugins that loaded
    status: dict[str, "PluginStatus"] = field(default_factory=dict)  # every plugin tried, with what happened
    # Old names a spec still answers to (``aliases=`` on its spec), per kind: stored records, sweep specs and
    # scripts that name a renamed plugin keep working, and every table shows the current name.
    aliases: dict[str, dict[str, str]] = field(default_factory=lambda: {k.name: {} for k in KINDS})

    def add(self, kind: str, spec: Any, plugin: str) -> None:
        table, owners = self.entries[kind], self.owners[kind]
        key = _spec_key(spec)
        self.refuse_taken(kind, spec, plugin)
        table[key] = spec
        owners[key] = plugin
        for alias in getattr(spec, "aliases", ()):
            self.aliases[kind][alias] = key

    def refuse_taken(self, kind: str, spec: Any, plugin: str) -> None:
        """Raise when ``spec``'s name or one of its old names is already a name or old name here, naming both plugins."""
        for name in (_spec_key(spec), *getattr(spec, "aliases", ())):
            if name in self.entries[kind] or name in self.aliases[kind]:
                raise PluginError(f"{kind} {name!r} is registered twice: by plugin {self.owner(kind, name)!r} and "
                                  f"by plugin {plugin!r}")

    def has(self, kind: str, name: str) -> bool:
        """Whether ``name`` resolves here: a registered name, an old name of one, or a model of a registered family.
        Ask this rather than looking in ``entries``, which holds current names only."""
        if self.canonical(kind, name) in self.entries[kind]:
            return True
        return kind == "model" and self._family_of(name) is not None

    def canonical(self, kind: str, name: str) -> str:
        """The current name of ``name`` (itself unless it is an old name a spec declares as an alias)."""
        return self.aliases[kind].get(name, name)

    def get(self, kind: str, name: str) -> Any:
        name = self.canonical(kind, name)
        if name in self.entries[kind]:
            return self.entries[kind][name]
        if kind == "model":
            family = self._family_of(name)
            if family is not None:
                spec = family.resolve(name[len(family.prefix):])
                if spec is not None:
                    self.entries["model"][name] = spec
                    self.owners["model"][name] = self.owners["model family"][family.prefix]
                    return spec
        valid = list(self.entries[kind])
        if kind == "model":
            valid += [f"{prefix}<name>" for prefix in self.entries["model family"]]
        raise UnknownNameError(BY_NAME[kind].display, name, valid)

    def _family_of(self, name: str) -> ModelFamily | None:
        prefix = name.split(":", 1)[0] + ":" if ":" in name else None
        return self.entries["model family"].get(prefix) if prefix else None

    def family_names(self, prefix: str) -> list[str]:
        """Every model name of one family, e.g. all ``timm:`` models."""
        family = self.entries["model family"][prefix]
        return [prefix + n for n in family.names()]

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def owner(self, kind: str, name: str) -> str:
        return self.owners[kind][self.canonical(kind, name)]

    def provenance(self, kind: str, name: str) -> dict[str, str | None]:
        """Which plugin, package, version and source registered ``name``: what a record keeps, so a row
        can be re-run elsewhere (``rerun`` says which package to install when it is missing)."""
        status = self.status.get(self.owner(kind, name))
        return {"kind": kind, "name": self.canonical(kind, name),
                **(status.provenance() if status else {"plugin": self.owner(kind, name)})}

    # Convenience accessors, so call sites read naturally.
    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def strategy(self, name: str) -> StrategySpec:
        return self.get("strategy", name)

    def metric(self, name: str) -> MetricSpec:
        return self.get("metric", name)

    def semi(self, name: str) -> SemiSpec:
        return self.get("semi", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def protocol(self, name: str) -> ProtocolSpec:
        return self.get("protocol", name)

    def front_end(self, name: str) -> FrontEndSpec:
        return self.get("front-end", name)

    def recipe(self, name: str) -> RecipeSpec:
        return self.get("recipe", name)

    def logger(self, name: str) -> LoggerSpec:
        return self.get("logger", name)


STRICT_ENV = "ASCBENCH_STRICT_PLUGINS"  # "1": any plugin problem is fatal (for CI)
ONLY_ENV = "ASCBENCH_PLUGINS"  # comma-separated entry-point names: load only these
# Folders (os.pathsep-separated) whose *.py files are plugins, loaded without installing them (`--plugins-dir`).
DIRS_ENV = "ASCBENCH_PLUGINS_DIR"


@dataclass
class PluginStatus:
    name: str
    source: str  # module path, or the object's type for plugins given directly
    ok: bool = True
    error: str | None = None
    registered: list[str] = field(default_factory=list)
    distribution: str | None = None  # the installed package that provides it (pip install NAME==VERSION)
    version: str | None = None
    source_sha256: str | None = None  # of the plugin module's source (its package's, for a package)

    def provenance(self) -> dict[str, str | None]:
        return {"plugin": self.name, "distribution": self.distribution, "version": self.version,
                "source_sha256": self.source_sha256}


def source_digest(module: object) -> str | None:
    """sha256 of a plugin module's source: the file, or every .py file of a package (sorted by path)."""
    import hashlib

    path = getattr(module, "__file__", None)
    if not path:
        return None
    path = Path(path)
    files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _entry_points() -> list:
    eps = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    only = {n.strip() for n in os.environ.get(ONLY_ENV, "").split(",") if n.strip()}
    if only:
        eps = [ep for ep in eps if ep.name in only]

    def builtin_first(ep) -> tuple:
        dist = getattr(getattr(ep, "dist", None), "name", "") or ""
        return (dist.lower() != "ascbench", ep.name)

    return sorted(eps, key=builtin_first)


def build_registry(
    extra_plugins: Iterable[tuple[str, object]] = (), *, entry_points: bool = True, strict: bool | None = None
) -> Registry:
    """Load plugins into a fresh pluggy manager and collect what each registers.

    A plugin that fails to import, raises in a hook, returns something that is not a spec, or claims a
    name another plugin already has is skipped as a whole with a one-line warning naming it and the
    rule it broke; with ``strict`` (or ``$ASCBENCH_STRICT_PLUGINS=1``) the same message is an error.
    """
    strict = os.environ.get(STRICT_ENV, "") not in ("", "0") if strict is None else strict
    registry = Registry()
    skip = _Skipper(strict)
    candidates = (_entry_point_plugins(skip) + _folder_plugins(skip)) if entry_points else []
    candidates += [(PluginStatus(name, type(obj).__name__), obj) for name, obj in extra_plugins]
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for status, plugin in candidates:
        registry.status[status.name] = status
        if plugin is not None:
            _admit(pm, registry, status, plugin, skip)
    registry.plugins = [name for name, st in registry.status.items() if st.ok]
    if strict:
        pm.check_pending()  # pluggy's own check: every @hookimpl left has a hookspec
    return registry


@dataclass
class _Skipper:
    """Marks a plugin as skipped: a warning naming it and the rule it broke, or under strict mode an error."""

    strict: bool

    def __call__(self, status: PluginStatus, message: str, exc: BaseException | None = None) -> None:
        status.ok, status.error = False, message
        if self.strict:
            raise PluginError(message) from exc
        warnings.warn(f"ascbench: skipping plugin {status.name!r}: {message}", PluginWarning, stacklevel=4)


def _entry_point_plugins(skip: _Skipper) -> list[tuple[PluginStatus, object | None]]:
    """Every installed plugin module with its status; one that cannot be imported comes back as None."""
    candidates: list[tuple[PluginStatus, object | None]] = []
    for ep in _entry_points():
        dist = getattr(ep, "dist", None)
        status = PluginStatus(ep.name, ep.value, distribution=getattr(dist, "name", None),
                              version=getattr(dist, "version", None))
        try:
            module = ep.load()
            status.source_sha256 = source_digest(module)
            candidates.append((status, module))
        except (Exception, SystemExit) as exc:  # a broken plugin must be named, not surface as a bare traceback
            skip(status, f"plugin {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}", exc)
            candidates.append((status, None))
    return candidates


def plugin_dirs() -> list[Path]:
    """The folders of ``$ASCBENCH_PLUGINS_DIR`` (set by ``--plugins-dir`` too), in order."""
    return [Path(part).expanduser() for part in os.environ.get(DIRS_ENV, "").split(os.pathsep) if part.strip()]


def _folder_plugins(skip: _Skipper) -> list[tuple[PluginStatus, object | None]]:
    """Every ``*.py`` file of the plugin folders, imported as a module named after the file and offered like an
    installed plugin: the same admission checks, and a file that fails to import is skipped by name."""
    candidates: list[tuple[PluginStatus, object | None]] = []
    for folder in plugin_dirs():
        if not folder.is_dir():
            status = PluginStatus(str(folder), str(folder))
            skip(status, f"plugin folder {folder} ({DIRS_ENV} or --plugins-dir) is not a folder; fix the path")
            candidates.append((status, None))
            continue
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue  # __init__.py and private helpers are not plugins
            if not path.is_file():  # a FIFO would block the import, a link to /dev/zero never end it
                status = PluginStatus(path.stem, str(path))
                skip(status, f"plugin file {path} is not a regular file (a folder, a pipe, a device or a broken "
                             "link); replace it with the plugin's source file")
                candidates.append((status, None))
                continue
            candidates.append(_import_file(path, skip))
    return candidates


# Modules this process imported from plugin folders: a later build may import such a name again (from this or
# another folder), but never replace a module that is not a folder plugin (a file named json.py, say).
_FOLDER_MODULES: set[str] = set()


def _import_file(path: Path, skip: _Skipper) -> tuple[PluginStatus, object | None]:
    """One plugin file imported as the module ``<file stem>`` (registered in sys.modules, so its dataclasses and
    pickling work as in an installed module)."""
    import importlib.util
    import sys

    name = path.stem
    status = PluginStatus(name, str(path))
    if name in sys.modules and name not in _FOLDER_MODULES:
        skip(status, f"plugin file {path}: its name {name!r} is taken by the module "
                     f"{getattr(sys.modules[name], '__file__', None) or name} already imported; rename the file")
        return status, None
    _FOLDER_MODULES.add(name)
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # a broken file is named, not a traceback for every command
        sys.modules.pop(name, None)
        skip(status, f"plugin file {path} failed to import: {type(exc).__name__}: {exc}", exc)
        return status, None
    status.source_sha256 = source_digest(module)
    return status, module


def _admit(pm: pluggy.PluginManager, registry: Registry, status: PluginStatus, plugin: object, skip: _Skipper) -> None:
    """Register one plugin with pluggy and add what its hooks offer; on any broken rule it is skipped whole."""
    if pm.has_plugin(status.name):
        skip(status, f"two plugins are named {status.name!r}; rename one of them")
        return
    try:
        pm.register(plugin, name=status.name)
    except Exception as exc:
        skip(status, f"plugin {status.name!r} could not be registered: {exc}", exc)
        return
    misspelled = _unknown_hooks(pm, plugin, status.name)
    if misspelled:  # registers nothing through that hook: an error under strict mode, a warning otherwise
        message = (f"plugin {status.name!r} defines {', '.join(misspelled)}, which is no ascbench hook; "
                   f"the hooks are {', '.join(sorted(HOOK_NAMES))} (marked with @ascbench.hookimpl)")
        if skip.strict:
            pm.unregister(name=status.name)
            skip(status, message)
            return
        warnings.warn(f"ascbench: {message}", PluginWarning, stacklevel=3)
    try:
        offered = _offered_specs(pm, registry, status.name)
    except PluginError as exc:
        pm.unregister(name=status.name)
        skip(status, str(exc), exc)
        return
    for kind, spec in offered:
        registry.add(kind, spec, status.name)
        status.registered.append(f"{kind}:{_spec_key(spec)}")


def _offered_specs(pm: pluggy.PluginManager, registry: Registry, plugin_name: str) -> list[tuple[str, object]]:
    """Everything one plugin's hooks return, checked, before any of it is registered (a plugin is in or out as a
    whole). Each hook is called for this plugin alone, so a failure is attributed to it and to nobody else."""
    offered: list[tuple[str, object]] = []
    for kind, hook_name, spec_cls in ((k.name, k.hook, k.spec) for k in KINDS):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            if impl.plugin_name != plugin_name:
                continue
            try:
                specs = impl.function()
            except (Exception, SystemExit) as exc:  # a plugin calling sys.exit() must not end the command
                raise PluginError(f"plugin {plugin_name!r} raised in {hook_name}: {type(exc).__name__}: {exc}") from exc
            if specs is not None and not isinstance(specs, (list, tuple)):
                raise PluginError(f"plugin {plugin_name!r}: {hook_name} must return a list of {spec_cls.__name__}, "
                                  f"got {type(specs).__name__} {specs!r:.60}")
            for spec in specs or []:
                if not isinstance(spec, spec_cls):
                    raise PluginError(f"plugin {plugin_name!r}: {hook_name} must return {spec_cls.__name__} "
                                      f"objects, got {type(spec).__name__}")
                registry.refuse_taken(kind, spec, plugin_name)
                offered.append((kind, spec))
    return offered


def _spec_key(spec: object) -> str:
    return spec.prefix if isinstance(spec, ModelFamily) else spec.name


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object, name: str) -> list[str]:
    """Hook implementations of ``plugin`` that match no hookspec (a misspelled ``ascbench_model``, say),
    and ``ascbench_*`` functions that are not marked as hook implementations at all."""
    unknown = []
    for attr in sorted(a for a in dir(plugin) if a.startswith("ascbench_")):
        caller = getattr(pm.hook, attr, None)
        if caller is not None and not caller.has_spec() and any(i.plugin_name == name for i in caller.get_hookimpls()):
            unknown.append(attr)
        elif attr.startswith("ascbench_") and attr not in HOOK_NAMES and callable(getattr(plugin, attr, None)):
            unknown.append(attr)
        elif attr in HOOK_NAMES and caller is not None and not any(i.plugin_name == name for i in caller.get_hookimpls()):
            unknown.append(f"{attr} (not marked with @ascbench.hookimpl)")
    return unknown


_default: Registry | None = None


def get_registry() -> Registry:
    """The registry of every installed plugin, built once per process."""
    global _default
    if _default is None:
        _default = build_registry()
    return _default


def plugin_label(kind: str, name: str, registry: Registry | None = None) -> str:
    """How a message names a chosen plugin: ``model 'x' (plugin 'p')``; without the plugin where ``registry``
    (default: the global one) does not hold the name (a test's own registry)."""
    what = "semi-supervised method" if kind == "semi" else kind
    try:
        return f"{what} {name!r} (plugin {(registry or get_registry()).owner(kind, name)!r})"
    except (KeyError, PluginError):
        return f"{what} {name!r}"
