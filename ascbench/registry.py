"""One plugin manager, one registry of models, strategies, datasets and protocols.

Plugins (built-in and third-party alike) are modules listed in the ``ascbench`` entry-point group.
Each registered name remembers the plugin that provided it, so that clashes and failures name both sides.
"""

from __future__ import annotations

import importlib.metadata
import types
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from ascbench import hookspecs
from ascbench.errors import PluginError, UnknownNameError
from ascbench.specs import DatasetSpec, ModelFamily, ModelSpec, ProtocolSpec, StrategySpec

ENTRY_POINT_GROUP = "ascbench"

# kind -> (hook name, spec class)
_KINDS: dict[str, tuple[str, type]] = {
    "model": ("ascbench_models", ModelSpec),
    "model family": ("ascbench_model_families", ModelFamily),
    "strategy": ("ascbench_strategies", StrategySpec),
    "dataset": ("ascbench_datasets", DatasetSpec),
    "protocol": ("ascbench_protocols", ProtocolSpec),
}


@dataclass
class Registry:
    """Names to specs, per kind, with the plugin that registered each one."""

    entries: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in _KINDS})
    owners: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in _KINDS})
    plugins: list[str] = field(default_factory=list)

    def add(self, kind: str, spec: Any, plugin: str) -> None:
        table, owners = self.entries[kind], self.owners[kind]
        key = spec.prefix if isinstance(spec, ModelFamily) else spec.name
        if key in table:
            raise PluginError(
                f"{kind} {key!r} is registered twice: by plugin {owners[key]!r} and by plugin {plugin!r}"
            )
        table[key] = spec
        owners[key] = plugin

    def get(self, kind: str, name: str) -> Any:
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
        valid = list(self.entries[kind]) + [f"{p}<name>" for p in self.entries["model family"]] * (kind == "model")
        raise UnknownNameError(kind, name, valid)

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
        return self.owners[kind][name]

    # Convenience accessors, so call sites read naturally.
    def model(self, name: str) -> ModelSpec:
        return self.get("model", name)

    def strategy(self, name: str) -> StrategySpec:
        return self.get("strategy", name)

    def dataset(self, name: str) -> DatasetSpec:
        return self.get("dataset", name)

    def protocol(self, name: str) -> ProtocolSpec:
        return self.get("protocol", name)


def _entry_point_plugins() -> list[tuple[str, types.ModuleType | object]]:
    loaded = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            loaded.append((ep.name, ep.load()))
        except Exception as exc:  # a broken plugin must be named, not surface as a bare traceback
            raise PluginError(
                f"plugin {ep.name!r} ({ep.value}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc
    return loaded


def build_registry(
    extra_plugins: Iterable[tuple[str, object]] = (), *, entry_points: bool = True
) -> Registry:
    """Load plugins into a fresh pluggy manager and collect what each registers."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    plugins = (_entry_point_plugins() if entry_points else []) + list(extra_plugins)
    for name, plugin in plugins:
        if pm.has_plugin(name):
            raise PluginError(f"two plugins are named {name!r}; rename one of them")
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}") from exc

    registry = Registry(plugins=[name for name, _ in plugins])
    for kind, (hook_name, spec_cls) in _KINDS.items():
        # Call each implementation on its own so that every spec is attributed to its plugin.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            try:
                specs = impl.function()
            except Exception as exc:
                raise PluginError(
                    f"plugin {impl.plugin_name!r} raised in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
            for spec in specs or []:
                if not isinstance(spec, spec_cls):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: {hook_name} must return {spec_cls.__name__} objects, "
                        f"got {type(spec).__name__}"
                    )
                registry.add(kind, spec, impl.plugin_name)
    return registry


_default: Registry | None = None


def get_registry() -> Registry:
    """The registry of every installed plugin, built once per process."""
    global _default
    if _default is None:
        _default = build_registry()
    return _default
