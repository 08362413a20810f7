"""nncli.metrics against scikit-learn's metrics, on seeded random inputs."""

import numpy as np
import pytest
from sklearn import metrics as skm

from nncli import metrics

SEEDS = [0, 1, 2]


def random_probabilities(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """(n, k) rows summing to 1, none below 1e-3 (where log-loss clipping does not matter)."""
    P = rng.dirichlet(np.ones(k), size=n) + 1e-3
    return P / P.sum(axis=1, keepdims=True)


def classification_case(seed: int, k: int, n: int = 300):
    """True classes, and probabilities that agree with them more often than chance."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    P = random_probabilities(rng, n, k)
    P[np.arange(n), y] += rng.uniform(0.0, 0.8, n)
    return y, P / P.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [2, 3, 5])
def test_confusion_matrix(seed, k):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, k, 200), rng.integers(0, k, 200)
    expected = skm.confusion_matrix(y_true, y_pred, labels=range(k))
    np.testing.assert_array_equal(metrics.confusion(y_true, y_pred, k), expected)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_metrics(seed):
    y, P = classification_case(seed, 2)
    pred = P.argmax(axis=1)
    m = metrics.classification(y, P, ["neg", "pos"])
    assert m["n"] == len(y)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, P[:, 1]))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, P, labels=[0, 1]))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    assert m["labels"] == ["neg", "pos"]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_levels", [2, 3, 7])
def test_roc_auc_with_ties(seed, n_levels):
    """Scores drawn from a few values, so most are tied: ties count one half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 150)
    score = rng.integers(0, n_levels, 150) / n_levels + 0.2 * y * rng.integers(0, 2, 150)
    assert len(np.unique(score)) < len(score) // 4  # the case is mostly ties
    assert metrics.roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score))


def test_roc_auc_hand_worked():
    # positives score 0.8 and 0.5, negatives 0.5 and 0.1. Pairs (pos, neg):
    # (0.8,0.5)=1, (0.8,0.1)=1, (0.5,0.5)=1/2 (tie), (0.5,0.1)=1 -> 3.5 / 4 = 0.875
    y = np.array([1, 1, 0, 0])
    assert metrics.roc_auc(y, np.array([0.8, 0.5, 0.5, 0.1])) == pytest.approx(0.875)


def test_roc_auc_single_class_is_nan():
    assert np.isnan(metrics.roc_auc(np.ones(5, dtype=int), np.linspace(0, 1, 5)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [3, 4])
def test_multiclass_metrics(seed, k):
    y, P = classification_case(seed, k)
    pred = P.argmax(axis=1)
    labels = [f"c{i}" for i in range(k)]
    m = metrics.classification(y, P, labels)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, P, labels=range(k)))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=range(k)).tolist()
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred, labels=range(k))
    assert list(m["per_class"]) == labels
    for i, label in enumerate(labels):
        row = m["per_class"][label]
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == support[i]


def test_class_never_predicted_scores_zero_like_sklearn():
    """Class 2 is never predicted: its precision is 0/0, which both call 0."""
    y = np.array([0, 1, 2, 2, 1, 0, 2, 1])
    P = np.full((8, 3), 0.1)
    pred = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    P[np.arange(8), pred] = 0.8
    m = metrics.classification(y, P, ["a", "b", "c"])
    assert m["per_class"]["c"]["precision"] == 0.0
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted", zero_division=0))


def test_class_absent_from_data_and_predictions_is_left_out_of_macro_f1():
    """Evaluating a 3-class model on rows of two classes: the third does not drag macro F1 down."""
    y = np.array([0, 1, 1, 0, 1, 0])
    pred = np.array([0, 1, 0, 0, 1, 1])
    P = np.full((6, 3), 0.1)
    P[np.arange(6), pred] = 0.8
    m = metrics.classification(y, P, ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert m["per_class"]["c"]["support"] == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_log_loss_clips_zero_probabilities(seed):
    """A probability of exactly 0 for the true class is clipped, not an infinite loss."""
    y, P = classification_case(seed, 3, n=20)
    P[0] = 0.0
    P[0, (y[0] + 1) % 3] = 1.0
    loss = metrics.log_loss(y, P)
    assert np.isfinite(loss)
    by_row = -np.log(np.clip(P[np.arange(20), y], 1e-15, 1.0))
    assert loss == pytest.approx(by_row.mean())


@pytest.mark.parametrize("seed", SEEDS)
def test_regression_metrics(seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(10.0, 3.0, 250)
    pred = y + rng.normal(0.0, 1.5, 250)
    m = metrics.regression(y, pred)
    assert m["n"] == 250
    assert m["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred))


def test_r2_of_constant_target_is_nan():
    assert np.isnan(metrics.regression(np.full(4, 2.0), np.array([1.0, 2.0, 3.0, 2.0]))["r2"])


def test_roc_auc_ranks_nan_scores_last_and_tied():
    # negatives sorted: 0.2, NaN. The positive at NaN is above one negative and tied with one
    # (1.5), the positive at 0.5 above one (1): U = 2.5 of 2 x 2 pairs
    y = np.array([1, 0, 1, 0])
    assert metrics.roc_auc(y, np.array([np.nan, np.nan, 0.5, 0.2])) == 0.625
