"""Built-in run loggers: ``csv`` (one row per epoch, written as training goes), ``tensorboard`` and ``mlflow``.

Both write under ``<log dir>/<run id>/`` (``--log-dir``, default ``<runs dir>/logs``), outside the
run directory, so a run that fails keeps its curves for the post-mortem. The run record holds the
same history whatever the loggers (``metrics["history"]``).
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from typing import Any

import ascbench.plugin as ap

COLUMNS = ["stage", "epoch", "loss", "val_accuracy", "val_macro_accuracy", "val_loss", "lr", "elapsed_s"]


class CsvLogger(ap.RunLogger):
    """``history.csv``: a row per finished epoch, flushed at once (``tail -f`` follows a run). ``elapsed_s`` is
    the wall time from the logger's start (the run's) to the end of the epoch's validation: what each stage and
    epoch cost, which the run record (deterministic, so free of timings) does not hold."""

    def __init__(self, ctx: ap.LoggerContext):
        self._started = time.perf_counter()
        ctx.directory.mkdir(parents=True, exist_ok=True)
        self.path = ctx.directory / "history.csv"
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS, extrasaction="ignore")
        self._writer.writeheader()

    def log_epoch(self, stage: str, record: dict[str, float]) -> None:
        self._writer.writerow({"stage": stage, **record, "elapsed_s": round(time.perf_counter() - self._started, 3)})
        self._file.flush()

    def finish(self, summary: dict[str, Any]) -> None:
        (self.path.parent / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True), encoding="utf-8")

    def close(self) -> None:
        self._file.close()


class TensorBoardLogger(ap.RunLogger):
    """Scalars per stage (``train/loss``, ``train/val_macro_accuracy``, ...) by epoch, the run's scores
    under ``test/``, and its config as text."""

    def __init__(self, ctx: ap.LoggerContext):
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


class MlflowLogger(ap.RunLogger):
    """An MLflow run per ascbench run: the config as parameters, every epoch's record as metrics
    (``<stage>/<key>`` by epoch), the scores under ``test/``. Logged to ``$MLFLOW_TRACKING_URI`` when set (a
    tracking server, a database), else to a file store under the log dir (``mlflow ui --backend-store-uri
    <log dir>/<run id>/mlruns``); the experiment is ``$ASCBENCH_MLFLOW_EXPERIMENT`` (default ``ascbench``)."""

    def __init__(self, ctx: ap.LoggerContext):
        from mlflow import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # a file store needs no server and no database packages (mlflow-skinny has neither)
            uri = (ctx.directory / "mlruns").resolve().as_uri()
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for this opt-in
        self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("ASCBENCH_MLFLOW_EXPERIMENT", "ascbench")
        found = self.client.get_experiment_by_name(name)
        experiment = found.experiment_id if found else self.client.create_experiment(name)
        self.run = self.client.create_run(experiment, run_name=ctx.run_id, tags={"ascbench.run_id": ctx.run_id}).info.run_id
        for key, value in sorted(_flat(ctx.config).items()):
            self.client.log_param(self.run, key, value)
        self.status = "FAILED"  # until the run's scores arrive

    def log_epoch(self, stage: str, record: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        for key, value in record.items():
            if key != "epoch" and value is not None:
                self.client.log_metric(self.run, _metric_key(f"{stage}/{key}"), float(value), now, record["epoch"])

    def finish(self, summary: dict[str, Any]) -> None:
        for key, value in summary.items():
            if isinstance(value, (int, float)):
                self.client.log_metric(self.run, f"test/{key}", float(value))
        self.status = "FINISHED"

    def close(self) -> None:
        self.client.set_terminated(self.run, self.status)


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"options": {"semi": {"rounds": 2}}}`` -> ``{"options.semi.rounds": "2"}`` (MLflow parameters are flat)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if not isinstance(value, str) else value
    return out


def _metric_key(key: str) -> str:
    """MLflow keys take letters, digits, ``_ - . /`` and spaces: ``finetune (round 1)/loss`` -> ``finetune _round 1_/loss``."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", key)


@ap.hookimpl
def ascbench_loggers():
    return [
        ap.LoggerSpec("csv", CsvLogger, "history.csv (a row per epoch) and summary.json under the log dir"),
        ap.LoggerSpec("tensorboard", TensorBoardLogger, "TensorBoard scalars per stage and epoch; view with "
                      "`tensorboard --logdir runs/logs`", requires=("tensorboard",),
                      install="pip install 'ascbench[tensorboard]'"),
        ap.LoggerSpec("mlflow", MlflowLogger, "an MLflow run: config as parameters, epochs and scores as metrics "
                      "($MLFLOW_TRACKING_URI, else a file store under the log dir)", requires=("mlflow",),
                      install="pip install 'ascbench[mlflow]'"),
    ]
