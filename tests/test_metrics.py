import numpy as np
import pytest
from sklearn import metrics as skm

from ascbench.metrics import evaluate


@pytest.fixture
def predictions():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=300)
    logits = rng.normal(size=(300, 5)) + 2.0 * np.eye(5)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    cities = rng.choice(["A", "B", "C"], size=300)
    periods = rng.choice(["night", "morning"], size=300)
    return y, probs, cities, periods


def test_against_scikit_learn(predictions):
    y, probs, cities, periods = predictions
    classes = list("abcde")
    m = evaluate(y, probs, classes, cities, periods)
    pred = probs.argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=range(5)))
    assert np.array_equal(np.array(m["confusion_matrix"]), skm.confusion_matrix(y, pred, labels=range(5)))
    recalls = skm.recall_score(y, pred, average=None)
    assert [m["class_accuracy"][c] for c in classes] == pytest.approx(list(recalls))
    assert m["macro_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))


def test_per_city_and_period_by_hand(predictions):
    y, probs, cities, periods = predictions
    m = evaluate(y, probs, list("abcde"), cities, periods)
    pred = probs.argmax(1)
    for city in "ABC":
        hits = sum(1 for t, p, c in zip(y, pred, cities) if c == city and t == p)
        total = sum(1 for c in cities if c == city)
        assert m["city_accuracy"][city] == pytest.approx(hits / total)
    assert m["worst_city_accuracy"] == min(m["city_accuracy"].values())
    assert set(m["period_accuracy"]) == {"night", "morning"}


def test_absent_class_and_missing_prediction():
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.7, 0.3, 0.0], [0.1, 0.9, 0.0]])
    m = evaluate(y, probs, ["x", "y", "z"])
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, probs.argmax(1), average="macro"))
    assert "z" not in m["class_accuracy"]
    assert np.isfinite(m["log_loss"])
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, probs, labels=[0, 1, 2]))


def test_class_wise_log_loss_against_scikit_learn(predictions):
    y, probs, cities, periods = predictions
    m = evaluate(y, probs, list("abcde"))
    for i, c in enumerate("abcde"):
        assert m["class_log_loss"][c] == pytest.approx(skm.log_loss(y[y == i], probs[y == i], labels=range(5)))


def test_metrics_against_hand_counts():
    """Five classes: 0-2 in the truth, 3 only predicted, 4 in neither (it has no F1 and no class accuracy)."""
    from ascbench.metrics import confusion_matrix, log_loss, macro_accuracy, macro_accuracy_of_confusion, macro_f1

    y_true, y_pred = np.array([0, 0, 0, 1, 1, 2]), np.array([0, 0, 1, 1, 3, 2])
    cm = confusion_matrix(y_true, y_pred, 5)
    assert cm.tolist() == [[2, 1, 0, 0, 0], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0] * 5, [0] * 5]
    assert macro_accuracy(y_true, y_pred) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert macro_accuracy_of_confusion(cm) == macro_accuracy(y_true, y_pred)
    # F1 = 2 tp / (support + predicted): 4/5, 2/4, 2/2, 0/1; class 4 is in neither side and left out
    assert macro_f1(y_true, y_pred) == pytest.approx((0.8 + 0.5 + 1.0 + 0.0) / 4)
    probs = np.array([[0.5, 0.5, 0, 0, 0], [0.25, 0.75, 0, 0, 0]])
    assert log_loss(np.array([0, 1]), probs) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2)
    m = evaluate(y_true, np.eye(5)[y_pred] * 0.9 + 0.02, list("abcde"))
    assert m["macro_accuracy"] == macro_accuracy(y_true, y_pred) and set(m["class_accuracy"]) == {"a", "b", "c"}


def test_one_macro_accuracy_everywhere(predictions):
    """The leaderboard's recomputation and the metric plugins give the one definition's number, to the last bit."""
    from ascbench.metrics import macro_accuracy, macro_accuracy_of_confusion
    from ascbench.records import recomputed_scores
    from ascbench.registry import get_registry

    y, probs, _, _ = predictions
    pred = probs.argmax(1)
    expected = macro_accuracy(y, pred)
    stored = {"test_predictions": {"true": y.tolist(), "predicted": pred.tolist()}}
    assert recomputed_scores(stored)["macro_accuracy"] == expected
    assert macro_accuracy_of_confusion(evaluate(y, probs, list("abcde"))["confusion_matrix"]) == pytest.approx(expected, abs=1e-15)
    assert get_registry().metric("macro-accuracy").compute(y, probs, list("abcde")) == expected
