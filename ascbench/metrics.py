"""Classification metrics for one run: overall, per class, per city and per time period."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _sklearn():
    """scikit-learn's metrics, imported when a run is scored: importing it takes a second or more, and the modules
    that import this one (the training loop's validation, the leaderboard) mostly need macro accuracy alone."""
    from sklearn import metrics

    return metrics


def macro_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """The ranking metric: the mean over the classes present in ``truth`` of the share of their clips predicted
    right (scikit-learn's balanced accuracy; DCASE's macro-average accuracy). The one definition in ascbench: the
    validation score each epoch, the test score, the leaderboard's recomputation and its statistics all call it."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def macro_accuracy_of_confusion(matrix: np.ndarray) -> float:
    """:func:`macro_accuracy` from a confusion matrix (rows true classes): classes without clips left out."""
    matrix = np.asarray(matrix, dtype=float)
    totals = matrix.sum(axis=1)
    present = totals > 0
    return float(np.mean(np.diag(matrix)[present] / totals[present]))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes; every class of the dataset has its row and column."""
    return _sklearn().confusion_matrix(y_true, y_pred, labels=np.arange(num_classes)).astype(np.int64)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean F1 over the classes that occur in the truth or the predictions (a class absent from both has no F1)."""
    present = np.union1d(y_true, y_pred)
    return float(_sklearn().f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Cross-entropy of ``probs`` (clips x classes, every class of the dataset a column) against ``y_true``."""
    return float(_sklearn().log_loss(y_true, probs, labels=np.arange(probs.shape[1])))


def _grouped_accuracy(y_true: np.ndarray, y_pred: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    groups = np.asarray(groups)
    return {str(g): float(np.mean(y_pred[groups == g] == y_true[groups == g])) for g in sorted(set(groups))}


def evaluate(
    y_true: np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    cities: Sequence[str] | None = None,
    periods: Sequence[str] | None = None,
) -> dict:
    """All standard metrics for class probabilities ``probs`` (clips x classes) against ``y_true``."""
    y_true = np.asarray(y_true)
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    class_acc = {c: float(cm[i, i] / support[i]) for i, c in enumerate(classes) if support[i] > 0}
    class_loss = {c: log_loss(y_true[y_true == i], probs[y_true == i]) for i, c in enumerate(classes) if support[i] > 0}
    result = {
        "accuracy": float(np.mean(y_pred == y_true)),
        "macro_accuracy": macro_accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred),
        "log_loss": log_loss(y_true, probs),
        "class_accuracy": class_acc,
        "class_log_loss": class_loss,
        "confusion_matrix": cm.tolist(),
        "num_clips": int(len(y_true)),
    }
    if cities is not None:
        result["city_accuracy"] = _grouped_accuracy(y_true, y_pred, cities)
        result["worst_city_accuracy"] = min(result["city_accuracy"].values())
    if periods is not None:
        result["period_accuracy"] = _grouped_accuracy(y_true, y_pred, periods)
        result["worst_period_accuracy"] = min(result["period_accuracy"].values())
    return result
