"""Run records checked before anything ranks them, and what makes two records the same experiment.

A leaderboard row is only as good as the records under it, so each record is read and checked first:

* a record file that is not JSON (a torn copy, a bad hand edit) is reported by name and left out, never a
  traceback that takes the whole leaderboard down;
* its metrics are recomputed from its stored per-clip predictions (or, for records made before those were
  stored, from its confusion matrix) and must agree with what it states;
* the results-table row (``results.jsonl``, or a published record's ``row``) must agree with the run's
  metrics: a hand-edited row is reported and not ranked.

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

from ascbench.metrics import confusion_matrix, macro_accuracy, macro_f1

# Plugins that decide what a run computes; loggers only watch it.
_NOT_COMPUTING = {"logger"}
# Scores a results row repeats from its run's metrics.json: the two must agree.
ROW_METRICS = ("accuracy", "macro_accuracy", "macro_f1", "log_loss", "worst_city_accuracy", "worst_period_accuracy")
TOLERANCE = 1e-6  # stored values are full-precision JSON floats; this only absorbs summation order


def read_json(path: Path, what: str) -> tuple[Any, str | None]:
    """(content, None), or (None, one line naming the file and what is wrong with it): the store's own reader
    (``results.read_record_file``), with its refusal returned rather than raised so one bad file is listed
    beside the others."""
    from ascbench.errors import DataError
    from ascbench.results import read_record_file

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


def _same(a: Any, b: Any) -> bool:
    """Equal scores: both missing (None or NaN), or within TOLERANCE."""
    missing = [v is None or (isinstance(v, float) and math.isnan(v)) for v in (a, b)]
    if any(missing):
        return all(missing)
    try:
        return abs(float(a) - float(b)) <= TOLERANCE
    except (TypeError, ValueError):
        return False


def verify(row: dict, metrics: dict, where: str) -> list[str]:
    """Every disagreement of a record with itself, one line each naming ``where`` and the metric: the row
    against the metrics (a score the row states must be in the metrics too), the metrics against their
    recomputation from the per-clip predictions. Empty: it checks out."""
    if not isinstance(metrics, dict):
        return [f"{where}: the run's metrics are not a JSON object"]
    problems = [f"{where}: {key} is {_shown(row.get(key))} in the results row but {_shown(metrics.get(key))} in the "
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

