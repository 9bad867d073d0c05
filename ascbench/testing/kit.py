"""What every conformance kit shares: the error it raises and how checks are bound to one plugin."""

from __future__ import annotations

import functools
from typing import Any, Callable

from ascbench.errors import AscbenchError
from ascbench.kinds import BY_NAME


class ConformanceError(AssertionError, AscbenchError):
    """A plugin broke a rule of its kind; the message names the plugin, its distribution and the check."""


def bind(checks: tuple[Callable, ...], *args: Any) -> list[Callable[[], None]]:
    """Each check with ``args`` bound, ready to call and named after the check (for pytest ids)."""
    bound = []
    for check in checks:
        fn = functools.partial(check, *args)
        functools.update_wrapper(fn, check)
        bound.append(fn)
    return bound


def failure(kind: str, name: str, registry: Any, check: str, why: str) -> "ConformanceError":
    """The error of one failed check: the plugin of ``kind`` (named as ascbench.kinds names it), its owner, the check."""
    return ConformanceError(f"{BY_NAME[kind].display} {name!r} (plugin {registry.owner(kind, name)!r}) fails {check}: {why}")
