"""The lecture's Pima workload in scikit-learn, as a script.

    python bench/lecture_sklearn.py ../shared/data/pima-indians-diabetes.csv

MLPClassifier 8->12 ReLU ->8 ReLU ->1 logistic, log-loss, Adam lr 0.001, 100 epochs of
sequential batches of 10 (no shuffling, no L2, no early stop), float64 as sklearn reads it;
accuracy on the training set; it also prints the seconds of .fit(). `python -m bench` runs it as
a whole process (1b), reads that .fit() time (1a), and imports `adam_mlp` for its other workloads.
"""

import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor


def adam_mlp(hidden: tuple, batch_size: int, epochs: int, regression: bool = False):
    """An MLP trained like the other systems: Adam lr 1e-3, fixed epochs, sequential batches."""
    cls = MLPRegressor if regression else MLPClassifier
    return cls(hidden_layer_sizes=hidden, activation="relu", solver="adam", learning_rate_init=0.001,
               batch_size=batch_size, max_iter=epochs, shuffle=False, tol=0, n_iter_no_change=10**9,
               alpha=0, early_stopping=False, random_state=0)


def pima_classifier() -> MLPClassifier:
    return adam_mlp((12, 8), batch_size=10, epochs=100)


def fit_quietly(model, X, y):
    """fit() without the ConvergenceWarning that a fixed number of epochs always raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def main(path: str) -> None:
    dataset = np.loadtxt(path, delimiter=",")
    X, y = dataset[:, 0:8], dataset[:, 8]
    model = pima_classifier()
    start = time.perf_counter()
    fit_quietly(model, X, y)
    print(f"Training loop {time.perf_counter() - start:.6f} s")
    print(f"Accuracy {model.score(X, y):.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
