"""Run loggers: what a run reports while it trains, to the run record and to any logger a user names.

The training loop (``fitting.fit``) announces every finished epoch and every finished stage to the
loggers active in the current context; the runner activates them around a run. One logger is always
there: :class:`EpochHistory`, whose per-stage history becomes ``metrics["history"]`` in the run record
(the learning curves of ``ascbench plot``). Others come from logger plugins (``ascbench_loggers``),
chosen with ``--logger NAME`` (built in: ``csv`` and ``tensorboard``).

A logger that fails is reported and dropped for the rest of the run: a broken dashboard must never
cost a finished training run.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("ascbench")


@dataclass(frozen=True)
class LoggerContext:
    """What a logger is created with: the run's id and config, and the directory it may write to
    (``<log dir>/<run id>``; the log dir defaults to ``<runs dir>/logs``)."""

    run_id: str
    config: dict[str, Any]
    directory: Path


class RunLogger:
    """Base class of loggers; override what you need. Epoch records hold ``epoch``, ``loss`` and ``lr``,
    and with validation clips ``val_accuracy``, ``val_macro_accuracy`` and ``val_loss``."""

    def log_epoch(self, stage: str, record: dict[str, float]) -> None:
        """One finished epoch of training stage ``stage`` (e.g. ``pretrain tau-urban``, ``finetune (round 1)``)."""

    def log_stage(self, stage: str, history: list[dict[str, float]]) -> None:
        """A finished stage with its whole history (also the epochs a resumed run took from its checkpoint)."""

    def finish(self, summary: dict[str, Any]) -> None:
        """The run's scores (``macro_accuracy``, ``accuracy``, ``macro_f1``, ``log_loss``; None when unscored)."""

    def close(self) -> None:
        """Always called last, also when the run failed."""


@dataclass
class EpochHistory(RunLogger):
    """Every stage's complete epoch history, for the run record: a list in training order (the record is
    written with sorted keys, so a mapping would lose the order) of ``{"stage": name, "epochs": [...]}``."""

    stages: list[dict[str, Any]] = field(default_factory=list)

    def log_stage(self, stage: str, history: list[dict[str, float]]) -> None:
        if history:  # an empty one: a cached stage stored before histories were kept
            self.stages.append({"stage": stage, "epochs": [dict(r) for r in history]})


_active: ContextVar[tuple[RunLogger, ...]] = ContextVar("ascbench_loggers", default=())


@contextmanager
def logging_to(loggers: list[RunLogger]) -> Iterator[None]:
    """Make ``loggers`` receive the epochs and stages trained in this context; closes them on the way out."""
    token = _active.set(tuple(loggers))
    try:
        yield
    finally:
        _active.reset(token)
        for logger in loggers:
            _guarded(logger, "close")


def _guarded(logger: RunLogger, method: str, *args: Any) -> None:
    try:
        getattr(logger, method)(*args)
    except Exception as exc:  # noqa: BLE001 - a logger must not end a run
        log.warning("logger %s failed in %s and is switched off for this run: %s: %s",
                    type(logger).__name__, method, type(exc).__name__, exc)
        _active.set(tuple(x for x in _active.get() if x is not logger))


def epoch_end(stage: str, record: dict[str, float]) -> None:
    for logger in _active.get():
        _guarded(logger, "log_epoch", stage, record)


def stage_end(stage: str, history: list[dict[str, float]]) -> None:
    for logger in _active.get():
        _guarded(logger, "log_stage", stage, history)


def run_end(summary: dict[str, Any]) -> None:
    for logger in _active.get():
        _guarded(logger, "finish", summary)
