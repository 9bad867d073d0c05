"""Exceptions a user can act on. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations

from typing import Iterable


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


class RunInterrupted(AscbenchError):
    """A run was stopped (Ctrl-C) after its last epoch checkpoint; the message says how to resume it."""
