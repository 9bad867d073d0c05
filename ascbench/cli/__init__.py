"""The ``ascbench`` command line: one module per subcommand, each with ``add_parser(sub)`` and
``command(args)``; this module assembles the parser and dispatches.

Subcommand modules import what they need inside ``command``, so a built-in command starts fast; plugins (and
the subcommands they add, ``ascbench_commands``) are loaded only when the command line names no built-in one.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Iterator

from ascbench import __version__
from ascbench.cli import (data, export, leaderboard, listing, new_plugin, plot, plugins, predict, profile, rerun, run,
                          sweep)
from ascbench.cli.run import config_from_args
from ascbench.errors import AscbenchError, ConfigError, RunInterrupted, Terminated, raise_terminated

__all__ = ["main", "build_parser", "config_from_args"]

# Subcommand -> its module, in the order `ascbench --help` lists them.
SUBCOMMANDS = {"run": run, "list": listing, "new-plugin": new_plugin, "plugins": plugins, "sweep": sweep,
               "leaderboard": leaderboard, "rerun": rerun, "plot": plot, "predict": predict, "export": export,
               "data": data, "profile": profile}


class ExactFlagParser(argparse.ArgumentParser):
    """A subcommand's parser that takes flags only as written: argparse would read a prefix such as ``--fold`` as
    ``--folds`` (and a plugin's shortcut flag added later could change what a prefix means)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser(plugin_commands: bool = False) -> argparse.ArgumentParser:
    """The parser of every built-in subcommand; with ``plugin_commands`` also those plugins add (loading the
    plugins, which a built-in command does not need before it runs)."""
    parser = argparse.ArgumentParser(
        prog="ascbench", allow_abbrev=False,
        description="Benchmark acoustic scene classifiers under city and time shift. "
                    "Models, strategies, datasets and protocols come from plugins.",
        epilog="start with: ascbench list, then ascbench run --model mobileascnet --strategy finetune. "
               "Plugins may add commands of their own: ascbench list --commands",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    parser.add_argument("--plugins-dir", metavar="DIR", action="append", default=[],
                        help="load every *.py file in DIR as a plugin, without installing it (repeatable; "
                             "also $ASCBENCH_PLUGINS_DIR, folders separated by the OS path separator)")
    parser.add_argument("--version", action="version", version=f"ascbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=ExactFlagParser)
    for module in SUBCOMMANDS.values():
        module.add_parser(sub)
    if plugin_commands:
        _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub) -> None:
    import warnings

    from ascbench.registry import PluginWarning, get_registry

    registry = get_registry()
    for name in registry.names("command"):
        spec, owner = registry.get("command", name), registry.owner("command", name)
        if name in SUBCOMMANDS:
            warnings.warn(f"plugin {owner!r}: command {name!r} is a built-in command; skipped", PluginWarning)
            continue
        p = sub.add_parser(name, help=f"{spec.help} (plugin {owner})")
        spec.add_arguments(p)
        p.set_defaults(plugin_command=spec)


def _names_another_command(argv: list[str]) -> bool:
    """Whether the first word of ``argv`` that is not an option names a command that is not built in (a plugin's,
    or a typo that argparse will then answer with the full list)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first is not None and first not in SUBCOMMANDS


def _one_line_plugin_warnings() -> None:
    import warnings

    from ascbench.registry import PluginWarning

    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _run_plugin_command(args) -> int:
    """A plugin's command; its failures name the plugin (an ascbench error keeps its own message)."""
    from ascbench.registry import get_registry

    spec = args.plugin_command
    try:
        status = spec.run(args)
    except (AscbenchError, KeyboardInterrupt):
        raise
    except Exception as exc:
        owner = get_registry().owner("command", spec.name)
        raise AscbenchError(f"command {spec.name!r} of plugin {owner!r} failed: {type(exc).__name__}: {exc}") from exc
    return int(status or 0)


def _use_plugin_dirs(argv: list[str]) -> None:
    """``--plugins-dir DIR`` (before the command) joins ``$ASCBENCH_PLUGINS_DIR``, read when the plugins load: before
    the full parser is built (it may need the plugins' commands), and in every subprocess a command starts."""
    from ascbench.registry import DIRS_ENV

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugins-dir", action="append", default=[])
    dirs = pre.parse_known_args(argv)[0].plugins_dir  # placed after the command, the full parser refuses it
    for folder in dirs:
        if not os.path.isdir(folder):
            raise ConfigError(f"--plugins-dir {folder}: no such folder; give the folder that holds the plugin's .py files")
    if dirs:
        os.environ[DIRS_ENV] = os.pathsep.join([*(os.path.abspath(d) for d in dirs), *filter(None, [os.environ.get(DIRS_ENV)])])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _one_line_plugin_warnings()
    try:
        _use_plugin_dirs(argv)
    except ConfigError as exc:
        print(f"ascbench: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser(plugin_commands=_names_another_command(argv))
    args = parser.parse_args(argv)
    # Under torchrun only rank 0 reports progress; the other ranks speak up only for problems.
    quiet_rank = os.environ.get("RANK", "0") != "0"
    level = logging.DEBUG if args.debug else logging.WARNING if quiet_rank else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    try:
        with _sigterm_as_interrupt():
            if getattr(args, "plugin_command", None) is not None:
                return _run_plugin_command(args)
            return SUBCOMMANDS[args.command].command(args)
    except RunInterrupted as exc:
        print(f"ascbench: {exc}", file=sys.stderr)
        return 130
    except AscbenchError as exc:
        if args.debug:
            raise
        print(f"ascbench: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as exc:  # a bug or a plugin fault: one line by default, the traceback with --debug
        if args.debug:
            raise
        print(f"ascbench: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        stopped = "stopped (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"ascbench: {stopped}; nothing it had half written was kept", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler's stop, ``kill``) as an exception in the main thread for the command's duration: by
    default it ends the process on the spot, skipping every clean-up, and left a run folder without its row or a
    board half published. A sweep sets its own handler inside (it also stops its workers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
