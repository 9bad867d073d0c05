"""Built-in run loggers: ``csv`` (one row per epoch, written as training goes) and ``tensorboard``.

Both write under ``<log dir>/<run id>/`` (``--log-dir``, default ``<runs dir>/logs``), outside the
run directory, so a run that fails keeps its curves for the post-mortem. The run record holds the
same history whatever the loggers (``metrics["history"]``).
"""

from __future__ import annotations

import csv
import json
from typing import Any

from ascbench import hookimpl
from ascbench.callbacks import LoggerContext, RunLogger
from ascbench.specs import LoggerSpec

COLUMNS = ["stage", "epoch", "loss", "val_accuracy", "val_macro_accuracy", "val_loss", "lr"]


class CsvLogger(RunLogger):
    """``history.csv``: a row per finished epoch, flushed at once (``tail -f`` follows a run)."""

    def __init__(self, ctx: LoggerContext):
        ctx.directory.mkdir(parents=True, exist_ok=True)
        self.path = ctx.directory / "history.csv"
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS, extrasaction="ignore")
        self._writer.writeheader()

    def log_epoch(self, stage: str, record: dict[str, float]) -> None:
        self._writer.writerow({"stage": stage, **record})
        self._file.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        (self.path.parent / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")

    def close(self) -> None:
        self._file.close()


class TensorBoardLogger(RunLogger):
    """Scalars per stage (``train/loss``, ``train/val_macro_accuracy``, ...) by epoch, the run's scores
    under ``test/``, and its config as text."""

    def __init__(self, ctx: LoggerContext):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(ctx.directory))
        self.writer.add_text("config", "```\n" + json.dumps(ctx.config, indent=2, sort_keys=True) + "\n```")

    def log_epoch(self, stage: str, record: dict[str, float]) -> None:
        for key, value in record.items():
            if key != "epoch" and value is not None:
                self.writer.add_scalar(f"{stage}/{key}", value, record["epoch"])
        self.writer.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        for key, value in summary.items():
            if isinstance(value, (int, float)):
                self.writer.add_scalar(f"test/{key}", value, 0)

    def close(self) -> None:
        self.writer.close()


@hookimpl
def ascbench_loggers():
    return [
        LoggerSpec("csv", CsvLogger, "history.csv (a row per epoch) and summary.json under the log dir"),
        LoggerSpec("tensorboard", TensorBoardLogger, "TensorBoard scalars per stage and epoch; view with "
                   "`tensorboard --logdir runs/logs`", requires=("tensorboard",),
                   install="pip install 'ascbench[tensorboard]'"),
    ]
