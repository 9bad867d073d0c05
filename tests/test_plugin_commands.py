"""Plugins may add subcommands (``ascbench_commands``): parsed with their own options, listed, and kept from
replacing a built-in command or taking the tool down when they fail."""

import types

import pytest

import ascbench.registry
from ascbench import hookimpl
from ascbench.cli import main
from ascbench.registry import build_registry
from ascbench.specs import CommandSpec


def _greet_arguments(parser):
    parser.add_argument("--name", default="world")


def _greet(args):
    print(f"hello {args.name}")
    return 0


def _explode(args):
    raise RuntimeError("boom")


PLUGIN = types.SimpleNamespace(ascbench_commands=hookimpl(lambda: [
    CommandSpec("greet", _greet_arguments, _greet, help="say hello"),
    CommandSpec("explode", lambda p: None, _explode, help="fails"),
    CommandSpec("run", lambda p: None, _greet, help="would shadow the built-in"),
]))


@pytest.fixture
def outside(monkeypatch):
    monkeypatch.setattr(ascbench.registry, "_default", build_registry([("greeter", PLUGIN)]))


def test_a_plugin_command_runs_with_its_own_options_and_is_listed(outside, capsys):
    assert main(["greet", "--name", "ascbench"]) == 0
    assert "hello ascbench" in capsys.readouterr().out
    assert main(["list", "--commands"]) == 0
    listed = capsys.readouterr().out
    assert "greet" in listed and "greeter" in listed and "say hello" in listed


def test_a_plugin_command_that_fails_names_its_plugin(outside, capsys):
    assert main(["explode"]) == 2
    assert "command 'explode' of plugin 'greeter' failed: RuntimeError: boom" in capsys.readouterr().err


def test_a_plugin_cannot_replace_a_built_in_command(outside, capsys):
    assert main(["greet"]) == 0
    assert "warning: plugin 'greeter': command 'run' is a built-in command; skipped" in capsys.readouterr().err
    # `ascbench run` is still the built-in one (its own options parse), not the plugin's
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--strategy" in capsys.readouterr().out
