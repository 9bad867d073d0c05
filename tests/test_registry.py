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
    assert {"session-holdout", "unseen-city", "unseen-time"} <= set(registry.names("protocol"))
    assert "embedded" in registry.names("dataset")


def test_same_name_from_two_plugins_names_both():
    with pytest.raises(PluginError) as err:
        build_registry([("alpha", _model_plugin("dup-net")), ("beta", _model_plugin("dup-net"))], entry_points=False,
                       strict=True)
    assert "'dup-net'" in str(err.value) and "'alpha'" in str(err.value) and "'beta'" in str(err.value)


def _protocol_plugin(name: str, aliases: tuple[str, ...] = ()) -> types.SimpleNamespace:
    from ascbench.specs import ProtocolSpec

    @hookimpl
    def ascbench_protocols():
        return [ProtocolSpec(name, split=lambda ds, options: None, aliases=aliases)]

    return types.SimpleNamespace(ascbench_protocols=ascbench_protocols)


def test_an_old_name_resolves_to_the_renamed_plugin_and_tables_show_the_new_one(registry):
    from ascbench.config import RunConfig

    assert registry.protocol("official") is registry.protocol("session-holdout")
    assert registry.canonical("protocol", "official") == "session-holdout"
    assert "official" not in registry.names("protocol")  # listed once, under its current name
    assert registry.has("protocol", "official") and not registry.has("protocol", "officiall")
    assert registry.provenance("protocol", "official")["name"] == "session-holdout"
    # a published record made under the old name: rerun finds its plugin installed
    from ascbench.cli.rerun import _check_plugins_installed

    _check_plugins_installed({}, {"provenance": {"plugins": [{"kind": "protocol", "name": "official",
                                                               "plugin": "protocols", "distribution": "ascbench"}]}})
    assert RunConfig.from_dict({"protocol": "official"}).protocol == "session-holdout"
    assert RunConfig.from_dict({"protocol": "official"}).digest() == RunConfig().digest()


@pytest.mark.parametrize("name, aliases", [("official", ()), ("my-holdout", ("official",)),
                                           ("my-holdout", ("session-holdout",))])
def test_a_name_or_old_name_taken_already_names_both_plugins(name, aliases):
    """An outside plugin may not take a built-in's current or old name, nor give one as its own old name."""
    with pytest.raises(PluginError, match="registered twice.*'protocols'.*'intruder'"):
        build_registry([("intruder", _protocol_plugin(name, aliases))], strict=True)


def test_clash_with_a_builtin_is_reported():
    with pytest.raises(PluginError, match="'mobileascnet'.*'mobileascnet'.*'intruder'"):
        build_registry([("intruder", _model_plugin("mobileascnet"))], strict=True)


def test_plugin_failing_to_import_is_named(monkeypatch):
    broken = importlib.metadata.EntryPoint(name="broken-plugin", value="no_such_module_xyz", group="ascbench")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken])
    with pytest.raises(PluginError) as err:
        build_registry(strict=True)
    msg = str(err.value)
    assert "broken-plugin" in msg and "no_such_module_xyz" in msg and "ModuleNotFoundError" in msg


def test_plugin_raising_in_a_hook_is_named():
    @hookimpl
    def ascbench_strategies():
        raise RuntimeError("boom")

    with pytest.raises(PluginError, match="'exploding'.*ascbench_strategies.*RuntimeError: boom"):
        build_registry([("exploding", types.SimpleNamespace(ascbench_strategies=ascbench_strategies))], entry_points=False,
                       strict=True)


def test_wrong_spec_type_is_rejected():
    @hookimpl
    def ascbench_models():
        return [StrategySpec("oops", train=lambda job: None)]

    with pytest.raises(PluginError, match="must return ModelSpec"):
        build_registry([("confused", types.SimpleNamespace(ascbench_models=ascbench_models))], entry_points=False,
                       strict=True)


def test_invalid_name_is_rejected():
    with pytest.raises(ValueError, match="invalid"):
        ModelSpec("Bad Name", build=lambda ctx: None)


def test_unknown_name_lists_valid_ones(registry):
    with pytest.raises(UnknownNameError) as err:
        registry.model("nosuchmodel")
    assert "nosuchmodel" in str(err.value) and "mobileascnet" in str(err.value) and "\n" not in str(err.value)


def test_a_broken_plugin_is_skipped_with_one_warning_and_the_rest_works(monkeypatch):
    from ascbench.registry import PluginWarning

    real = importlib.metadata.entry_points
    broken = importlib.metadata.EntryPoint(name="broken-plugin", value="no_such_module_xyz", group="ascbench")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [*real(group=group), broken])
    with pytest.warns(PluginWarning, match="skipping plugin 'broken-plugin'.*ModuleNotFoundError"):
        registry = build_registry(strict=False)
    assert "mobileascnet" in registry.names("model")
    assert not registry.status["broken-plugin"].ok and "no_such_module_xyz" in registry.status["broken-plugin"].error
    assert registry.status["mobileascnet"].ok and "model:mobileascnet" in registry.status["mobileascnet"].registered


def test_a_clashing_plugin_is_skipped_whole(recwarn):
    @hookimpl
    def ascbench_models():
        return [ModelSpec("fresh-net", build=lambda ctx: None), ModelSpec("mobileascnet", build=lambda ctx: None)]

    registry = build_registry([("intruder", types.SimpleNamespace(ascbench_models=ascbench_models))], strict=False)
    assert "fresh-net" not in registry.names("model")  # in or out as a whole
    assert registry.owner("model", "mobileascnet") == "mobileascnet"
    assert "registered twice" in registry.status["intruder"].error


def test_strict_environment_variable_makes_failures_fatal(monkeypatch):
    monkeypatch.setenv("ASCBENCH_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        build_registry([("intruder", _model_plugin("mobileascnet"))])


def test_only_listed_plugins_load(monkeypatch):
    monkeypatch.setenv("ASCBENCH_PLUGINS", "mobileascnet,scratch")
    registry = build_registry()
    assert set(registry.status) == {"mobileascnet", "scratch"}
    assert registry.names("strategy") == ["scratch"]


def test_plugins_command(capsys):
    from ascbench.cli import main

    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "mobileascnet" in out and "model:mobileascnet-tiny" in out and "ok" in out
