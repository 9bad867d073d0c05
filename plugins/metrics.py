"""The built-in metrics, computed with scikit-learn on every scored run's test predictions (``metrics.json:
scores``): an implementation independent of ascbench's own, so the two cross-check each other.

``macro-accuracy`` is the challenge's and DCASE Task 1's ranking metric (the mean of class-wise accuracies,
scikit-learn's balanced accuracy over the classes present in the test side).

scikit-learn is imported by each metric when it scores (``_sklearn``), not with the plugin: importing it takes
seconds, and every command (``ascbench list``, a config error) loads the plugins.
"""

import numpy as np

from ascbench import hookimpl
from ascbench.specs import MetricSpec


def _sklearn():
    from sklearn import metrics

    return metrics


def _macro_accuracy(y_true, probs, classes):
    return _sklearn().balanced_accuracy_score(y_true, probs.argmax(axis=1))


def _accuracy(y_true, probs, classes):
    return _sklearn().accuracy_score(y_true, probs.argmax(axis=1))


def _macro_f1(y_true, probs, classes):
    predicted = probs.argmax(axis=1)
    present = np.union1d(y_true, predicted)  # classes absent from both sides are left out, as ascbench's own
    return _sklearn().f1_score(y_true, predicted, labels=present, average="macro", zero_division=0)


def _log_loss(y_true, probs, classes):
    return _sklearn().log_loss(y_true, probs, labels=np.arange(len(classes)))


def _top2_accuracy(y_true, probs, classes):
    return _sklearn().top_k_accuracy_score(y_true, probs, k=2, labels=np.arange(len(classes)))


@hookimpl
def ascbench_metrics():
    return [
        MetricSpec("macro-accuracy", _macro_accuracy, True, "mean of class-wise accuracies (the ranking metric)"),
        MetricSpec("accuracy", _accuracy, True, "share of test clips right (micro)"),
        MetricSpec("macro-f1", _macro_f1, True, "mean F1 over the classes present"),
        MetricSpec("log-loss", _log_loss, False, "cross-entropy of the predicted probabilities"),
        MetricSpec("top-2-accuracy", _top2_accuracy, True, "the true class among the two most probable"),
    ]
