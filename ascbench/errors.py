"""Exceptions a user can act on. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

from typing import Any, Callable, Iterable


class AscbenchError(Exception):
    """Base class: the message alone must tell the user what went wrong and where."""


class UnknownNameError(AscbenchError):
    def __init__(self, kind: str, name: str, valid: Iterable[str]):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        super().__init__(f"unknown {kind} {name!r}; valid {plural}: {', '.join(self.valid) or '(none registered)'}")


class PluginError(AscbenchError):
    """A plugin failed to import, registered something invalid, or raised while running."""


class DataError(AscbenchError):
    """A dataset, its metadata or one of its audio files is unusable."""


class ConfigError(AscbenchError):
    """An invalid combination of run options."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (``ascbench.cli.main`` turns the signal into it), so that every clean-up
    Ctrl-C runs (a run's staging folder, a publish's records, a half-generated dataset) runs for it too."""


def raise_terminated(signum: int, frame: object) -> None:
    """The SIGTERM handler the CLI and a sweep install: the signal as :class:`Terminated` in the main thread."""
    raise Terminated()


class RunInterrupted(AscbenchError):
    """A run was stopped (Ctrl-C) after its last epoch checkpoint; the message says how to resume it."""


def call_plugin(what: str, fn: Callable[..., Any], *args: Any, returns: type | tuple[type, ...] | None = None,
                expected: str | None = None, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, a plugin's code, with its faults pinned on it: anything it raises but an
    ascbench error (already a message for the user) or an interrupt, and a result that is not a ``returns``
    (``None`` included), become one ``PluginError`` naming ``what`` (``strategy 'x' (plugin 'y')``) and only it.
    ``expected`` says in words what it should return (default: the type's name)."""
    try:
        result = fn(*args, **kwargs)
    except (AscbenchError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise PluginError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    return check_returned(what, result, returns, expected) if returns is not None else result


def check_returned(what: str, result: Any, returns: type | tuple[type, ...], expected: str | None = None) -> Any:
    """``result`` if it is a ``returns``; else a ``PluginError`` naming ``what``, the plugin that returned it."""
    if not isinstance(result, returns):
        wanted = expected or (returns.__name__ if isinstance(returns, type) else " or ".join(t.__name__ for t in returns))
        raise PluginError(f"{what} returned {'None' if result is None else type(result).__name__}, not {wanted}; "
                          "the plugin must be fixed (`ascbench plugins` shows where it comes from)")
    return result
