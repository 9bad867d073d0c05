"""The metric kit: a metric gives one finite number for any scored test side (a class absent from it, a single
clip), the same number for the same predictions in any order without changing them, and ranks confident right
predictions above confident wrong ones in the direction it declares (``higher_is_better``)."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ascbench.registry import Registry, get_registry
from ascbench.testing.kit import bind, failure

CLASSES = ["a", "b", "c", "d"]


def _sample(seed: int = 0, clips: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(true classes, probabilities) of a middling model on a test side where class 'd' has no clip."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, size=clips)
    logits = rng.normal(size=(clips, len(CLASSES))) + 1.5 * np.eye(len(CLASSES))[y_true]
    return y_true, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _confident(y_true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Probabilities putting 0.97 on ``predicted`` and the rest spread evenly."""
    probs = np.full((len(y_true), len(CLASSES)), 0.01)
    probs[np.arange(len(y_true)), predicted] = 1 - 0.01 * (len(CLASSES) - 1)
    return probs


def _score(name: str, registry: Registry, spec: Any, check: str, y_true: np.ndarray, probs: np.ndarray) -> float:
    try:
        value = spec.compute(y_true, probs, list(CLASSES))
    except Exception as exc:
        raise failure("metric", name, registry, check, f"compute raised {type(exc).__name__}: {exc}") from exc
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
        raise failure("metric", name, registry, check, f"compute must return a finite number, got {value!r}")
    return float(value)


def check_metric_gives_a_finite_number(name, registry, spec):
    """A number for a usual test side (one class without clips), for a single clip, and for all-wrong predictions."""
    y_true, probs = _sample()
    check = "check_metric_gives_a_finite_number"
    _score(name, registry, spec, check, y_true, probs)
    _score(name, registry, spec, check, y_true[:1], probs[:1])
    _score(name, registry, spec, check, y_true, _confident(y_true, (y_true + 1) % len(CLASSES)))


def check_metric_is_a_function_of_the_predictions(name, registry, spec):
    """The same predictions, in another order, give the same number, and compute leaves its inputs unchanged
    (every metric is handed the same arrays)."""
    check = "check_metric_is_a_function_of_the_predictions"
    y_true, probs = _sample()
    kept = (y_true.copy(), probs.copy())
    first = _score(name, registry, spec, check, y_true, probs)
    if not (np.array_equal(y_true, kept[0]) and np.array_equal(probs, kept[1])):
        raise failure("metric", name, registry, check, "compute changed the arrays it was given")
    order = np.random.default_rng(1).permutation(len(y_true))
    again = _score(name, registry, spec, check, y_true[order], probs[order])
    if not math.isclose(first, again, rel_tol=1e-9, abs_tol=1e-12):
        raise failure("metric", name, registry, check, f"gives {first} and, for the same clips reordered, {again}")


def check_metric_ranks_the_way_it_declares(name, registry, spec):
    """Confident right predictions score better than confident wrong ones, 'better' being ``higher_is_better``."""
    check = "check_metric_ranks_the_way_it_declares"
    y_true, _ = _sample()
    right = _score(name, registry, spec, check, y_true, _confident(y_true, y_true))
    wrong = _score(name, registry, spec, check, y_true, _confident(y_true, (y_true + 1) % len(CLASSES)))
    better = right > wrong if spec.higher_is_better else right < wrong
    if not better:
        direction = "higher" if spec.higher_is_better else "lower"
        raise failure("metric", name, registry, check, f"declares {direction} is better, but right predictions score "
                      f"{right} and wrong ones {wrong}")


METRIC_CHECKS: tuple[Callable, ...] = (check_metric_gives_a_finite_number, check_metric_is_a_function_of_the_predictions,
                                       check_metric_ranks_the_way_it_declares)


def metric_checks(name: str, registry: Registry | None = None) -> list[Callable[[], None]]:
    """Each metric check bound to one registered metric."""
    registry = registry or get_registry()
    return bind(METRIC_CHECKS, name, registry, registry.metric(name))


def check_metric(name: str, registry: Registry | None = None) -> None:
    """Run every metric check; the first failure raises ``ConformanceError``."""
    for check in metric_checks(name, registry):
        check()
