"""The built-in metrics, computed on every scored run's test predictions (``metrics.json: scores``).

``macro-accuracy`` is the challenge's and DCASE Task 1's ranking metric (the mean of class-wise accuracies over the
classes present in the test side). It, ``macro-f1`` and ``log-loss`` are ascbench's own definitions (the ones in
``metrics.json``'s top level, ``ascbench.plugin.macro_accuracy`` and friends), so a score has one value wherever
it is shown; the rest come from scikit-learn.

scikit-learn is imported by each metric when it scores (``_sklearn``), not with the plugin: importing it takes
seconds, and every command (``ascbench list``, a config error) loads the plugins.
"""

import numpy as np

import ascbench.plugin as ap


def _sklearn():
    from sklearn import metrics

    return metrics


def _macro_accuracy(y_true, probs, classes):
    return ap.macro_accuracy(y_true, probs.argmax(axis=1))


def _accuracy(y_true, probs, classes):
    return _sklearn().accuracy_score(y_true, probs.argmax(axis=1))


def _macro_f1(y_true, probs, classes):
    return ap.macro_f1(y_true, probs.argmax(axis=1))


def _log_loss(y_true, probs, classes):
    return ap.log_loss(y_true, probs)


def _top2_accuracy(y_true, probs, classes):
    return _sklearn().top_k_accuracy_score(y_true, probs, k=2, labels=np.arange(len(classes)))


@ap.hookimpl
def ascbench_metrics():
    return [
        ap.MetricSpec("macro-accuracy", _macro_accuracy, True, "mean of class-wise accuracies (the ranking metric)"),
        ap.MetricSpec("accuracy", _accuracy, True, "share of test clips right (micro)"),
        ap.MetricSpec("macro-f1", _macro_f1, True, "mean F1 over the classes present"),
        ap.MetricSpec("log-loss", _log_loss, False, "cross-entropy of the predicted probabilities"),
        ap.MetricSpec("top-2-accuracy", _top2_accuracy, True, "the true class among the two most probable"),
    ]
