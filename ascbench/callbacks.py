"""Run loggers: what a run reports while it trains, to the run record and to any logger a user names.

The training loop (``fitting.fit``) announces every finished epoch and every finished stage to the
loggers active in the current context; the runner activates them around a run. One logger is always
there: :class:`EpochHistory`, whose per-stage history becomes ``metrics["history"]`` in the run record
(the learning curves of ``ascbench plot``). Others come from logger plugins (``ascbench_loggers``),
chosen with ``--logger NAME`` (built in: ``csv`` and ``tensorboard``).

A logger that fails is reported and dropped for the rest of the run: a broken dashboard must never
cost a finished training run.

Progress is reported here too, so it reads the same everywhere: :class:`EpochLines` (always active) writes one
line per epoch (stage, epoch/max, loss, validation scores, seconds) to the ``ascbench.epochs`` log, which a run's
log.txt receives, and to the stream :func:`epoch_lines_to` names (the CLI: standard output, unless a progress bar
is drawn on that terminal). The progress bars themselves are tqdm's, drawn by the training loop on a terminal.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, TextIO

log = logging.getLogger("ascbench")
# A child of "ascbench": its records reach every handler of the run's log (log.txt); the console gets the
# lines from EpochLines itself, so the console handlers of the root logger are kept from showing them twice.
epoch_log = logging.getLogger("ascbench.epochs")


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

    def start_stage(self, stage: str, epochs: int, first_epoch: int) -> None:
        """A training stage starts (at ``first_epoch`` > 1 when resumed from a checkpoint) for at most ``epochs``."""

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


_console: ContextVar[TextIO | None] = ContextVar("ascbench_epoch_console", default=None)


@dataclass
class EpochLines(RunLogger):
    """One line per finished epoch, to the run's log (log.txt) and to the console stream of
    :func:`epoch_lines_to`: a run piped to a file or in CI is never silent for the minutes a stage takes."""

    _stages: dict[str, tuple[int, float]] = field(default_factory=dict)  # stage -> (max epochs, last epoch's end)

    def start_stage(self, stage: str, epochs: int, first_epoch: int) -> None:
        self._stages[stage] = (epochs, time.perf_counter())

    def log_epoch(self, stage: str, record: dict[str, float]) -> None:
        epochs, since = self._stages.get(stage, (None, None))
        now = time.perf_counter()
        self._stages[stage] = (epochs, now)
        line = epoch_line(stage, record, epochs, None if since is None else now - since)
        epoch_log.info("%s", line)
        stream = _console.get()
        if stream is not None and _is_main_process():
            print(line, file=stream, flush=True)


def epoch_line(stage: str, record: dict[str, float], epochs: int | None, seconds: float | None) -> str:
    """``pretrain embedded-source  epoch 3/20  loss 1.234  val accuracy 45.6 %  val loss 1.187  2.3 s``."""
    from ascbench.formatting import format_float, format_percent, format_seconds

    parts = [stage, f"epoch {record['epoch']}/{epochs}" if epochs else f"epoch {record['epoch']}",
             f"loss {format_float(record['loss'])}"]
    if "val_accuracy" in record:
        parts.append(f"val accuracy {format_percent(record['val_accuracy'], 1)}")
    if "val_macro_accuracy" in record:
        parts.append(f"val macro accuracy {format_percent(record['val_macro_accuracy'], 1)}")
    if "val_loss" in record:
        parts.append(f"val loss {format_float(record['val_loss'])}")
    if seconds is not None:
        parts.append(format_seconds(seconds))
    return "  ".join(parts)


def _is_main_process() -> bool:
    from ascbench import distributed

    return distributed.is_main()


class _NotEpochLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(epoch_log.name)


@contextmanager
def epoch_lines_to(stream: TextIO | None) -> Iterator[None]:
    """Show the epoch lines on ``stream`` (None: nowhere but the run's log) in this context, and keep them off
    the root logger's console handlers, which would show them a second time (or across a progress bar)."""
    token = _console.set(stream)
    keep_off = _NotEpochLines()
    handlers = [h for h in logging.getLogger().handlers if not isinstance(h, logging.FileHandler)]
    for handler in handlers:
        handler.addFilter(keep_off)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep_off)
        _console.reset(token)


_active: ContextVar[tuple[RunLogger, ...]] = ContextVar("ascbench_loggers", default=())


@contextmanager
def logging_to(loggers: list[RunLogger]) -> Iterator[None]:
    """Make ``loggers`` (and an :class:`EpochLines`) receive the epochs and stages trained in this context;
    closes them on the way out."""
    token = _active.set((*loggers, EpochLines()))
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


def stage_start(stage: str, epochs: int, first_epoch: int = 1) -> None:
    for logger in _active.get():
        _guarded(logger, "start_stage", stage, epochs, first_epoch)


def epoch_end(stage: str, record: dict[str, float]) -> None:
    for logger in _active.get():
        _guarded(logger, "log_epoch", stage, record)


def stage_end(stage: str, history: list[dict[str, float]]) -> None:
    for logger in _active.get():
        _guarded(logger, "log_stage", stage, history)


def run_end(summary: dict[str, Any]) -> None:
    for logger in _active.get():
        _guarded(logger, "finish", summary)
