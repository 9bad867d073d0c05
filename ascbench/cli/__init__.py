"""The ``ascbench`` command line: one module per subcommand, each with ``add_parser(sub)`` and
``command(args)``; this module assembles the parser and dispatches.

Subcommand modules import what they need inside ``command``, so ``ascbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ascbench import __version__
from ascbench.cli import (data, export, leaderboard, listing, new_plugin, plot, plugins, predict, profile, rerun, run,
                          sweep)
from ascbench.cli.run import config_from_args
from ascbench.errors import AscbenchError, RunInterrupted

__all__ = ["main", "build_parser", "config_from_args"]

# Subcommand -> its module, in the order `ascbench --help` lists them.
SUBCOMMANDS = {"run": run, "list": listing, "new-plugin": new_plugin, "plugins": plugins, "sweep": sweep,
               "leaderboard": leaderboard, "rerun": rerun, "plot": plot, "predict": predict, "export": export,
               "data": data, "profile": profile}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ascbench",
        description="Benchmark acoustic scene classifiers under city and time shift. "
                    "Models, strategies, datasets and protocols come from plugins.",
        epilog="start with: ascbench list, then ascbench run --model mobileascnet --strategy finetune",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"ascbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        module.add_parser(sub)
    return parser


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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.command == "run":  # the run's own options, to tell typed flags from defaults (recipes fill the rest)
        args.run_argv = argv[argv.index("run") + 1:]
    # Under torchrun only rank 0 reports progress; the other ranks speak up only for problems.
    quiet_rank = os.environ.get("RANK", "0") != "0"
    level = logging.DEBUG if args.debug else logging.WARNING if quiet_rank else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    _one_line_plugin_warnings()
    try:
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
    except KeyboardInterrupt:
        print("ascbench: interrupted; nothing was written for the unfinished run", file=sys.stderr)
        return 130
