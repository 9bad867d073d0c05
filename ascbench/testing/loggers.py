"""The logger kit: a logger starts from its context, takes every event a run sends (epochs with and without
validation scores, whole stages, an unscored summary) and closes, and it survives a real run without being
switched off. A logger that raises is switched off by the run (the run is kept), which would hide its bug from
the user; these checks make it fail loudly in the plugin's own tests instead."""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

from ascbench.callbacks import LoggerContext
from ascbench.config import RunConfig
from ascbench.registry import Registry, get_registry
from ascbench.testing.kit import ConformanceError, bind

EPOCHS = [{"epoch": 1, "loss": 2.1, "lr": 1e-3, "val_accuracy": 0.3, "val_macro_accuracy": 0.25, "val_loss": 2.0},
          {"epoch": 2, "loss": 1.7, "lr": 5e-4, "val_accuracy": 0.4, "val_macro_accuracy": 0.35, "val_loss": 1.8}]
NO_VALIDATION = [{"epoch": 1, "loss": 2.2, "lr": 1e-3}]  # a stage without validation clips
UNSCORED = {"macro_accuracy": None, "accuracy": None, "macro_f1": None, "log_loss": None}


def _fail(name: str, registry: Registry, check: str, why: str) -> ConformanceError:
    return ConformanceError(f"logger {name!r} (plugin {registry.owner('logger', name)!r}) fails {check}: {why}")


def _needs(name: str, registry: Registry, spec: Any, check: str) -> None:
    missing = [m for m in spec.requires if importlib.util.find_spec(m) is None]
    if missing:
        raise _fail(name, registry, check, f"its package(s) {missing} are not installed "
                    f"({spec.install or 'pip install ' + ' '.join(missing)}); the kit needs them")


def check_logger_takes_every_event(name, registry, spec):
    """Created from a ``LoggerContext``, the logger takes epochs (with and without validation scores), whole
    stages, a scored and an unscored summary, and closes, without raising."""
    _needs(name, registry, spec, "check_logger_takes_every_event")
    for summary in ({"macro_accuracy": 0.5, "accuracy": 0.55, "macro_f1": 0.48, "log_loss": 1.3}, UNSCORED):
        with tempfile.TemporaryDirectory() as tmp:
            step = "create"
            try:
                logger = spec.create(LoggerContext("kit-run", RunConfig().to_dict(), Path(tmp) / "kit-run"))
                step = "log_epoch"
                for stage, records in (("pretrain source", EPOCHS), ("finetune", NO_VALIDATION)):
                    for record in records:
                        logger.log_epoch(stage, dict(record))
                    step = "log_stage"
                    logger.log_stage(stage, [dict(r) for r in records])
                    step = "log_epoch"
                step = "finish"
                logger.finish(dict(summary))
                step = "close"
                logger.close()
            except Exception as exc:
                raise _fail(name, registry, "check_logger_takes_every_event",
                            f"{step} raised {type(exc).__name__}: {exc}") from exc


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check_logger_survives_a_run(name, registry, spec):
    """A one-epoch run on the tiny embedded dataset with ``--logger NAME`` finishes with the logger still on
    (the run would switch off a logger that raises, and say so in a warning)."""
    from ascbench.runner import execute

    _needs(name, registry, spec, "check_logger_survives_a_run")
    handler = _Warnings()
    logging.getLogger("ascbench").addHandler(handler)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = RunConfig(dataset="embedded-tiny", model="context-only", strategy="scratch", epochs=1,
                               loggers=(name,), log_dir=str(Path(tmp) / "logs"))
            execute(config, runs_root=Path(tmp) / "runs", registry=registry, progress=False)
    finally:
        logging.getLogger("ascbench").removeHandler(handler)
    troubles = [m for m in handler.messages if "logger" in m and ("switched off" in m or "could not start" in m)]
    if troubles:
        raise _fail(name, registry, "check_logger_survives_a_run", troubles[0])


LOGGER_CHECKS: tuple[Callable, ...] = (check_logger_takes_every_event, check_logger_survives_a_run)


def logger_checks(name: str, registry: Registry | None = None) -> list[Callable[[], None]]:
    """Each logger check bound to one registered logger."""
    registry = registry or get_registry()
    return bind(LOGGER_CHECKS, name, registry, registry.logger(name))


def check_logger(name: str, registry: Registry | None = None) -> None:
    """Run every logger check; the first failure raises ``ConformanceError``."""
    for check in logger_checks(name, registry):
        check()
