"""Classification metrics for one run: overall, per class, per city and per time period."""

from __future__ import annotations

from typing import Sequence

import numpy as np

EPS = 1e-15  # probability clip for log loss, as scikit-learn uses for float64


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over classes that occur in the truth or the predictions (classes absent from both are skipped)."""
    tp = np.diag(cm).astype(float)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1[present].mean()) if present.any() else 0.0


def macro_accuracy(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean over the classes present in ``truth`` of the fraction predicted right (scikit-learn's balanced accuracy)."""
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))


def log_loss(y_true: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(probs, EPS, 1 - EPS)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y_true)), y_true])))


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
        # The DCASE convention: mean of class-wise accuracies, robust to class imbalance.
        "macro_accuracy": float(np.mean(list(class_acc.values()))),
        "macro_f1": macro_f1(cm),
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
