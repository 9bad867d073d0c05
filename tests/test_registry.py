import importlib.metadata
import types

import pytest

from ascbench import hookimpl
from ascbench.errors import PluginError, UnknownNameError
from ascbench.registry import build_registry
from ascbench.specs import ModelSpec, StrategySpec


def _model_plugin(name: str) -> types.SimpleNamespace:
    @hookimpl
    def ascbench_models():
        return [ModelSpec(name, build=lambda ctx: None, description="test")]

    return types.SimpleNamespace(ascbench_models=ascbench_models)


def test_builtins_are_found_through_entry_points(registry):
    # The built-ins are installed entry points, not a special path in the core.
    names = {ep.name for ep in importlib.metadata.entry_points(group="ascbench")}
    assert {"mobileascnet", "scratch", "finetune", "embedded", "protocols"} <= names
    assert "mobileascnet" in registry.names("model")
    assert registry.owner("model", "mobileascnet") == "mobileascnet"
    assert {"scratch", "finetune"} <= set(registry.names("strategy"))
    assert {"official", "unseen-city", "unseen-time"} <= set(registry.names("protocol"))
    assert "embedded" in registry.names("dataset")


def test_same_name_from_two_plugins_names_both():
    with pytest.raises(PluginError) as err:
        build_registry([("alpha", _model_plugin("dup-net")), ("beta", _model_plugin("dup-net"))], entry_points=False)
    assert "'dup-net'" in str(err.value) and "'alpha'" in str(err.value) and "'beta'" in str(err.value)


def test_clash_with_a_builtin_is_reported():
    with pytest.raises(PluginError, match="'mobileascnet'.*'mobileascnet'.*'intruder'"):
        build_registry([("intruder", _model_plugin("mobileascnet"))])


def test_plugin_failing_to_import_is_named(monkeypatch):
    broken = importlib.metadata.EntryPoint(name="broken-plugin", value="no_such_module_xyz", group="ascbench")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken])
    with pytest.raises(PluginError) as err:
        build_registry()
    msg = str(err.value)
    assert "broken-plugin" in msg and "no_such_module_xyz" in msg and "ModuleNotFoundError" in msg


def test_plugin_raising_in_a_hook_is_named():
    @hookimpl
    def ascbench_strategies():
        raise RuntimeError("boom")

    with pytest.raises(PluginError, match="'exploding'.*ascbench_strategies.*RuntimeError: boom"):
        build_registry([("exploding", types.SimpleNamespace(ascbench_strategies=ascbench_strategies))], entry_points=False)


def test_wrong_spec_type_is_rejected():
    @hookimpl
    def ascbench_models():
        return [StrategySpec("oops", train=lambda job: None)]

    with pytest.raises(PluginError, match="must return ModelSpec"):
        build_registry([("confused", types.SimpleNamespace(ascbench_models=ascbench_models))], entry_points=False)


def test_invalid_name_is_rejected():
    with pytest.raises(ValueError, match="invalid"):
        ModelSpec("Bad Name", build=lambda ctx: None)


def test_unknown_name_lists_valid_ones(registry):
    with pytest.raises(UnknownNameError) as err:
        registry.model("nosuchmodel")
    assert "nosuchmodel" in str(err.value) and "mobileascnet" in str(err.value) and "\n" not in str(err.value)
