"""Run records checked before anything ranks them, and what makes two records the same experiment.

A leaderboard row is only as good as the records under it, so each record is read and checked first:

* a record file that is not JSON (a torn copy, a bad hand edit) is reported by name and left out, never a
  traceback that takes the whole leaderboard down;
* its metrics are recomputed from its stored per-clip predictions (or, for records made before those were
  stored, from its confusion matrix) and must agree with what it states;
* the results-table row (``results.jsonl``, or a published record's ``row``) must have the type the store
  writes in every field, and agree with the run's config (model, strategy, protocol, dataset, seed, fold, ...)
  and metrics (scores, complexity, fingerprints): a hand-edited or copied row is reported and not ranked.

The identity of an experiment includes what produced its numbers: the source of every plugin the run used
(model, strategy, dataset, protocol, ...) and the dataset's content fingerprint. A plugin fixed and re-run
under the same config is a new identity, so its newer record is never hidden behind the older one.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ascbench.config import RunConfig
from ascbench.errors import AscbenchError, DataError
from ascbench.metrics import confusion_matrix, macro_accuracy, macro_f1
from ascbench.results import ROW_METRICS, read_record_file, row_type_problems, shown_briefly

# Plugins that decide what a run computes; loggers only watch it.
_NOT_COMPUTING = {"logger"}
TOLERANCE = 1e-6  # stored values are full-precision JSON floats; this only absorbs summation order


def read_json(path: Path, what: str) -> tuple[Any, str | None]:
    """(content, None), or (None, one line naming the file and what is wrong with it): the store's own reader
    (``results.read_record_file``), with its refusal returned rather than raised so one bad file is listed
    beside the others."""
    try:
        return read_record_file(path, what), None
    except DataError as exc:
        return None, str(exc)


def code_digest(plugins: Iterable[dict]) -> str:
    """A short digest of the source of every plugin that computed a run (kind, name, package version and
    source hash; loggers aside): it changes when any of them is edited."""
    used = sorted((str(p.get("kind")), str(p.get("name")), str(p.get("version")), str(p.get("source_sha256")))
                  for p in plugins if p.get("kind") not in _NOT_COMPUTING)
    return hashlib.sha256(json.dumps(used).encode()).hexdigest()[:12] if used else ""


def provenance_key(row: dict, metrics: dict | None) -> str:
    """The code and data a record was made with: its plugins' sources and its dataset's fingerprint."""
    plugins = ((metrics or {}).get("provenance") or {}).get("plugins") or []
    return f"{code_digest(plugins)}/{row.get('dataset_fingerprint') or ''}"


def _number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _table_of_numbers(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _number_or_none(v) for k, v in value.items())


def _history_ok(value: Any) -> bool:
    """A list of stages, each an object whose ``epochs`` is a list of objects of numbers (``epoch``, ``loss``, ...)."""
    return isinstance(value, list) and all(
        isinstance(stage, dict) and isinstance(stage.get("epochs"), list)
        and all(isinstance(e, dict) and all(_number_or_none(v) for v in e.values()) for e in stage["epochs"])
        for stage in value)


def _whole_numbers(value: Any, limit: int) -> bool:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < limit
                                           for v in value)


def _predictions_ok(value: Any) -> bool:
    """Per-clip predictions: class indices (whole numbers, one per clip, as many as the truths), the clips' rows
    in the dataset and their groups. Fractional or huge labels would be truncated or overflow when recounted."""
    if not isinstance(value, dict):
        return False
    true, predicted = value.get("true", []), value.get("predicted", [])
    return (_whole_numbers(true, 100_000) and _whole_numbers(predicted, 100_000) and len(true) == len(predicted)
            and _whole_numbers(value.get("row", []), 2**53) and isinstance(value.get("group", []), list)
            and all(isinstance(g, str) for g in value.get("group", [])))


def _provenance_ok(value: Any) -> bool:
    plugins = value.get("plugins", []) if isinstance(value, dict) else None
    return isinstance(plugins, list) and all(isinstance(p, dict) for p in plugins)


# The parts of metrics.json that commands read (export, plot, the leaderboard, rerun), with the form each must have.
# Checked before any of them is used, so a damaged part is named, not met as a generic error deep in a command.
_METRICS_FORM = {
    "complexity": (lambda v: isinstance(v, dict) and all(_number_or_none(v.get(k)) for k in
                                                        ("params", "macs", "macs_per_second", "param_kb", "latency_ms")),
                   "an object whose params, macs, param_kb and latency_ms are numbers"),
    "history": (_history_ok, "a list of stages, each with a list of epochs of numbers"),
    "city_accuracy": (_table_of_numbers, "an object of numbers"),
    "period_accuracy": (_table_of_numbers, "an object of numbers"),
    "class_accuracy": (_table_of_numbers, "an object of numbers"),
    "class_log_loss": (_table_of_numbers, "an object of numbers"),
    "timings": (_table_of_numbers, "an object of numbers"),
    "scores": (_table_of_numbers, "an object of numbers"),
    "confusion_matrix": (lambda v: isinstance(v, list) and all(
        isinstance(r, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in r) for r in v),
                         "a list of rows of whole numbers"),
    "test_predictions": (_predictions_ok, "an object of per-clip class indices (whole numbers), rows and groups"),
    "provenance": (_provenance_ok, "an object whose plugins are a list of objects"),
    **{key: (lambda v: isinstance(v, dict), "an object") for key in ("split", "metadata_ceiling", "compute", "features",
                                                                     "recipe")},
}


def metrics_form_problems(metrics: dict) -> list[str]:
    """Each part of ``metrics`` that is there but not of the form ascbench writes (``null`` counts as absent)."""
    return [f"{key} is {shown_briefly(metrics[key])}, not {what}" for key, (ok, what) in _METRICS_FORM.items()
            if metrics.get(key) is not None and not ok(metrics[key])]


def derived_row_fields(config: dict | None, metrics: dict | None) -> dict[str, Any]:
    """The row fields a run's own files determine: its identity from config.json (as ``_result_row`` copies it),
    its complexity, split and fingerprints from metrics.json. A key its files do not hold (a record made before
    that field existed) is left out, so it is not compared."""
    config, metrics = config if isinstance(config, dict) else {}, metrics if isinstance(metrics, dict) else {}
    found = {key: config[key] for key in ("model", "strategy", "semi", "dataset", "protocol", "labeled", "seed", "quick")
             if key in config}
    if "folds" in config and "fold" in config:
        folds, fold = config["folds"], config["fold"]
        found["fold"] = f"{fold + 1}/{folds}" if folds and isinstance(fold, int) else None
    complexity = metrics.get("complexity")
    if isinstance(complexity, dict):
        found.update({key: complexity[key] for key in ("params", "macs", "macs_per_second", "param_kb", "latency_ms")
                      if key in complexity})
    split = metrics.get("split")
    if isinstance(split, dict) and "group_by" in split:
        found["group_by"] = split["group_by"]
    ceiling = metrics.get("metadata_ceiling")
    if isinstance(ceiling, dict) and "best" in ceiling:
        found["metadata_ceiling"] = ceiling["best"]
    for key in ("dataset_fingerprint", "split_fingerprint"):
        if key in metrics:
            found[key] = metrics[key]
    compute = metrics.get("compute")
    if isinstance(compute, dict) and "precision" in compute:
        found["precision"] = compute["precision"]
    return found


def identity_problems(row: dict, config: dict | None, metrics: dict | None, where: str) -> list[str]:
    """Every field of ``row`` that disagrees with what the run's config and metrics say it must be."""
    problems = []
    for key, expected in derived_row_fields(config, metrics).items():
        if key in row and not _same_value(row[key], expected):
            source = "config" if key in ("model", "strategy", "semi", "dataset", "protocol", "labeled", "seed", "quick",
                                         "fold") else "metrics"
            problems.append(f"{where}: {key} is {shown_briefly(row[key])} in the results row but "
                            f"{shown_briefly(expected)} in the run's {source} (the row was edited or belongs to "
                            "another run)")
    return problems


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (not isinstance(a, bool) and not isinstance(b, bool)) and _same(a, b)
    return type(a) is type(b) and a == b


def _same(a: Any, b: Any) -> bool:
    """Equal scores: both missing (None or NaN), or within TOLERANCE."""
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in (a, b)]
    if any(missing):
        return all(missing)
    try:
        return abs(float(a) - float(b)) <= TOLERANCE
    except (TypeError, ValueError):
        return False


def verify(row: dict, metrics: dict, where: str, config: dict | None = None) -> list[str]:
    """Every disagreement of a record with itself, one line each naming ``where`` and the field: the row's form
    (:func:`row_type_problems`), the row against the run's ``config`` and metrics (identity, complexity,
    fingerprints, and every score the row states), the metrics against their recomputation from the per-clip
    predictions. Empty: it checks out."""
    malformed = row_type_problems(row)
    if malformed:
        return [f"{where}: its results row is malformed: {'; '.join(malformed)}"]
    if not isinstance(metrics, dict):
        return [f"{where}: the run's metrics are not a JSON object"]
    if config is not None and not isinstance(config, dict):
        return [f"{where}: the run's config is not a JSON object"]
    damaged = metrics_form_problems(metrics)
    if damaged:
        return [f"{where}: the run's metrics are damaged: {'; '.join(damaged)}"]
    if config is not None:
        try:  # what the leaderboard, rerun and sweep read it as: a config that does not load is named here
            RunConfig.from_stored(config)
        except AscbenchError as exc:
            return [f"{where}: the run's config.json is not a valid run config ({exc})"]
    problems = identity_problems(row, config, metrics, where)
    problems += [f"{where}: {key} is {_shown(row.get(key))} in the results row but {_shown(metrics.get(key))} in the "
                 "run's metrics (the row was edited or belongs to another run)"
                 for key in ROW_METRICS if key in row and not _same(row.get(key), metrics.get(key))]
    if metrics.get("accuracy") is None and metrics.get("macro_accuracy") is None and not metrics.get("test_predictions"):
        return problems  # an unscored run (a protocol without a test side), the row agreeing: nothing to recompute
    try:
        scores = recomputed_scores(metrics)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return problems + [f"{where}: its per-clip predictions are damaged ({type(exc).__name__}: {exc}); the record "
                           "cannot be verified"]
    if not scores:
        return problems + [f"{where}: its scores cannot be verified: no per-clip predictions in its metrics "
                           "(every scored run stores them; this record was edited or truncated)"]
    for key, value in scores.items():
        if key == "confusion_matrix":
            if np.asarray(metrics.get(key) or []).tolist() != value:
                problems.append(f"{where}: confusion_matrix disagrees with its per-clip predictions")
        elif not _same(metrics.get(key), value):
            problems.append(f"{where}: {key} is stored as {_shown(metrics.get(key))} but its per-clip predictions give "
                            f"{_shown(value)}")
    return problems


def recomputed_scores(metrics: dict) -> dict[str, Any]:
    """What a record's per-clip predictions determine — macro and micro accuracy, macro F1, the clip count and
    the confusion matrix — recomputed; empty when the record holds no predictions. (Log loss needs the
    probabilities, which are not stored; it is checked against the results row only.)"""
    stored = metrics.get("test_predictions") or {}
    true, predicted = np.asarray(stored.get("true") or [], dtype=np.int64), np.asarray(stored.get("predicted") or [], dtype=np.int64)
    if not len(true):
        return {}
    if true.shape != predicted.shape:
        raise ValueError(f"{len(true)} true labels but {len(predicted)} predictions")
    classes = len(metrics.get("confusion_matrix") or []) or int(max(true.max(), predicted.max())) + 1
    return {"macro_accuracy": macro_accuracy(true, predicted), "accuracy": float(np.mean(predicted == true)),
            "macro_f1": macro_f1(true, predicted), "num_clips": int(len(true)),
            "confusion_matrix": confusion_matrix(true, predicted, classes).tolist()}


def _shown(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) and not math.isnan(value) else repr(value)

