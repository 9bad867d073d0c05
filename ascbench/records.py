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

from ascbench.metrics import macro_accuracy, macro_accuracy_of_confusion

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


def recomputed_scores(metrics: dict) -> tuple[dict[str, float], str]:
    """Macro and micro accuracy recomputed from a record's per-clip predictions (else its confusion matrix),
    and what they came from ('' when the record holds neither)."""
    stored = metrics.get("test_predictions")
    if stored and len(stored.get("true") or []):
        true, predicted = np.asarray(stored["true"]), np.asarray(stored["predicted"])
        return ({"macro_accuracy": macro_accuracy(true, predicted), "accuracy": float(np.mean(predicted == true))},
                "per-clip predictions")
    matrix = np.asarray(metrics.get("confusion_matrix") or [], dtype=float)
    if matrix.ndim == 2 and matrix.size and matrix.sum() > 0:
        return ({"macro_accuracy": macro_accuracy_of_confusion(matrix),
                 "accuracy": float(np.trace(matrix) / matrix.sum())}, "confusion matrix")
    return {}, ""


def _shown(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) and not math.isnan(value) else repr(value)


def verify(row: dict, metrics: dict, where: str) -> list[str]:
    """Every disagreement of a record with itself, one line each naming ``where`` and the metric: the row
    against the metrics, the metrics against their recomputation from the predictions. Empty: it checks out."""
    if not isinstance(metrics, dict):
        return [f"{where}: the run's metrics are not a JSON object"]
    problems = [f"{where}: {key} is {_shown(row.get(key))} in the results row but {_shown(metrics.get(key))} in the "
                "run's metrics (the row was edited or belongs to another run)"
                for key in ROW_METRICS if key in row and key in metrics and not _same(row[key], metrics[key])]
    if metrics.get("accuracy") is None and metrics.get("macro_accuracy") is None:
        return problems  # an unscored run (a protocol without a test side): nothing to recompute
    scores, source = recomputed_scores(metrics)
    if not source:
        return problems + [f"{where}: its scores cannot be verified (no per-clip predictions and no confusion "
                           "matrix in its metrics)"]
    problems += [f"{where}: {key} is stored as {_shown(metrics.get(key))} but its {source} give {_shown(value)}"
                 for key, value in scores.items() if not _same(metrics.get(key), value)]
    return problems
