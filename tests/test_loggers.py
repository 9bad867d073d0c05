"""Run loggers: the epoch history in every run record, the csv, tensorboard and mlflow loggers, a logger plugin
that fails, and a logger whose package is missing."""

import csv
import json
import logging
import types

import pytest

from ascbench import hookimpl
from ascbench.callbacks import RunLogger
from ascbench.cli import main
from ascbench.config import RunConfig
from ascbench.errors import ConfigError
from ascbench.registry import build_registry
from ascbench.results import load_rows
from ascbench.runner import execute
from ascbench.specs import LoggerSpec

TINY = ["run", "--dataset", "embedded-tiny", "--model", "context-only", "--strategy", "scratch", "--epochs", "3",
        "--no-progress"]


def _record(runs):
    (row,) = load_rows(runs)
    return row, json.loads((runs / row["run_id"] / "metrics.json").read_text())


def test_history_is_in_the_record_and_the_csv_logger_writes_it_live(runs):
    assert main(TINY + ["--logger", "csv"]) == 0
    row, metrics = _record(runs)
    (entry,) = metrics["history"]
    stage, history = entry["stage"], entry["epochs"]
    assert stage == "scratch" and [r["epoch"] for r in history] == [1, 2, 3]
    assert all({"loss", "lr", "val_accuracy", "val_macro_accuracy"} <= set(r) for r in history)
    with open(runs / "logs" / row["run_id"] / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["stage"], int(r["epoch"])) for r in rows] == [("scratch", 1), ("scratch", 2), ("scratch", 3)]
    assert [float(r["loss"]) for r in rows] == pytest.approx([r["loss"] for r in history])
    elapsed = [float(r["elapsed_s"]) for r in rows]  # the wall time the record leaves out, growing epoch by epoch
    assert 0 < elapsed[0] < elapsed[1] < elapsed[2] and all("elapsed_s" not in r for r in history)
    summary = json.loads((runs / "logs" / row["run_id"] / "summary.json").read_text())
    assert summary["macro_accuracy"] == pytest.approx(metrics["macro_accuracy"])
    # Loggers only watch: the experiment is the same with or without them.
    config = RunConfig.from_stored(json.loads((runs / row["run_id"] / "config.json").read_text()))
    assert config.loggers == ("csv",) and config.experiment_digest() == config.replace(loggers=()).experiment_digest()


def test_tensorboard_logger_writes_scalars_tensorboard_reads_back(runs, tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    assert main(TINY + ["--logger", "tensorboard", "--log-dir", str(tmp_path / "tb")]) == 0
    row, metrics = _record(runs)
    events = event_accumulator.EventAccumulator(str(tmp_path / "tb" / row["run_id"]))
    events.Reload()
    losses = events.Scalars("scratch/loss")
    assert [e.step for e in losses] == [1, 2, 3]
    assert [e.value for e in losses] == pytest.approx([r["loss"] for r in metrics["history"][0]["epochs"]], rel=1e-6)
    assert events.Scalars("test/macro_accuracy")[0].value == pytest.approx(metrics["macro_accuracy"], rel=1e-6)


def test_mlflow_logger_writes_a_run_mlflow_reads_back(runs, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")  # the test extra installs mlflow-skinny
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # what the logger sets for its own file store
    assert main(TINY + ["--logger", "mlflow", "--log-dir", str(tmp_path / "ml"), "--set", "semi=pseudo-label",
                        "--set", "semi.rounds=1"]) == 0
    row, metrics = _record(runs)
    client = mlflow.MlflowClient(tracking_uri=(tmp_path / "ml" / row["run_id"] / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("ascbench").experiment_id])
    assert run.info.run_name == row["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["model"] == "context-only" and run.data.params["options.semi.rounds"] == "1"
    stage = metrics["history"][0]["stage"]  # "scratch (labeled)": parentheses are not valid in MLflow keys
    losses = client.get_metric_history(run.info.run_id, stage.replace("(", "_").replace(")", "_") + "/loss")
    assert [m.step for m in losses] == [r["epoch"] for r in metrics["history"][0]["epochs"]]
    assert [m.value for m in losses] == pytest.approx([r["loss"] for r in metrics["history"][0]["epochs"]])
    assert run.data.metrics["test/macro_accuracy"] == pytest.approx(metrics["macro_accuracy"])


class _Exploding(RunLogger):
    def __init__(self, ctx):
        self.epochs = 0

    def log_epoch(self, stage, record):
        raise RuntimeError("dashboard unreachable")


def test_a_failing_logger_is_switched_off_and_the_run_is_kept(tmp_path, caplog):
    plugin = types.SimpleNamespace(ascbench_loggers=hookimpl(lambda: [LoggerSpec("flaky", _Exploding)]))
    registry = build_registry([("flaky-logger", plugin)])
    with caplog.at_level(logging.WARNING, logger="ascbench"):
        record = execute(RunConfig(dataset="embedded-tiny", model="context-only", strategy="scratch", epochs=2,
                                   loggers=("flaky",)), registry=registry, runs_root=tmp_path, progress=False)
    assert [r["epoch"] for r in record.metrics["history"][0]["epochs"]] == [1, 2]
    assert sum("switched off" in m and "dashboard unreachable" in m for m in caplog.messages) == 1
    assert load_rows(tmp_path)[0]["run_id"] == record.run_id


def test_a_logger_without_its_package_fails_before_any_work(tmp_path):
    plugin = types.SimpleNamespace(ascbench_loggers=hookimpl(
        lambda: [LoggerSpec("wandb-ish", RunLogger, requires=("no_such_package_xyz",), install="pip install xyz")]))
    registry = build_registry([("needs-package", plugin)])
    with pytest.raises(ConfigError, match=r"--logger wandb-ish needs the no_such_package_xyz package: pip install xyz"):
        execute(RunConfig(dataset="embedded-tiny", loggers=("wandb-ish",)), registry=registry, runs_root=tmp_path,
                progress=False)
    with pytest.raises(Exception, match="unknown logger 'nope'"):
        execute(RunConfig(dataset="embedded-tiny", loggers=("nope",)), runs_root=tmp_path, progress=False)
    assert not (tmp_path / "results.jsonl").exists()


def test_plot_draws_the_learning_curves_of_every_stage(runs, tmp_path):
    assert main(TINY + ["--strategy", "finetune", "--pretrain-epochs", "2", "--model", "mobileascnet-tiny"]) == 0
    row, metrics = _record(runs)
    stages = [entry["stage"] for entry in metrics["history"]]
    assert stages == ["pretrain embedded-tiny-source", "finetune"]  # in training order
    assert main(["plot", row["run_id"], "--output", str(tmp_path)]) == 0
    svg = (tmp_path / "learning_curves.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and all(f"{stage}: train" in svg for stage in stages)
