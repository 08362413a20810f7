"""Evaluation metrics in plain numpy (the tests check them against scikit-learn).

Inputs: integer class indices y_true, y_pred (n,) and probabilities P (n, K) for classification;
float values for regression. Binary metrics treat class index 1 (the second label in sorted
order) as positive.
"""

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """C[i, j] = rows of true class i predicted as class j."""
    cell = y_true.astype(np.intp) * k + y_pred
    return np.bincount(cell, minlength=k * k).astype(np.int64).reshape(k, k)


def _ratio(num, den):
    return float(num / den) if den else 0.0


def per_class(C: np.ndarray) -> dict:
    tp = np.diag(C).astype(float)
    precision = np.array([_ratio(tp[i], C[:, i].sum()) for i in range(len(C))])
    recall = np.array([_ratio(tp[i], C[i, :].sum()) for i in range(len(C))])
    f1 = np.array([_ratio(2 * p * r, p + r) for p, r in zip(precision, recall)])
    return {"precision": precision, "recall": recall, "f1": f1, "support": C.sum(axis=1)}


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic, ties counted half.

    U counts, for every positive, the negatives scored below it and half those scored the same:
    two binary searches of the positives' scores among the sorted negatives' (NaN sorts last and
    ties with NaN). Every count is whole, so U is exact."""
    pos = y_true == 1
    positives, negatives = np.sort(score[pos]), np.sort(score[~pos])
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    twice_u = sum(int(np.searchsorted(negatives, positives, side).sum()) for side in ("left", "right"))
    return twice_u / 2 / (len(positives) * len(negatives))


def log_loss(y_true: np.ndarray, P: np.ndarray, eps: float = 1e-15) -> float:
    p = P[np.arange(len(y_true)), y_true]
    np.clip(p, eps, 1.0, out=p)
    return float(-np.mean(np.log(p, out=p)))


def classification(y_true: np.ndarray, P: np.ndarray, labels: list) -> dict:
    """Metrics for class indices y_true and probabilities P (n, K)."""
    k = P.shape[1]
    y_pred = P.argmax(axis=1)
    C = confusion(y_true, y_pred, k)
    pc = per_class(C)
    out = {"n": int(len(y_true)), "accuracy": float(np.mean(y_pred == y_true)), "log_loss": log_loss(y_true, P)}
    if k == 2:
        out.update(precision=float(pc["precision"][1]), recall=float(pc["recall"][1]), f1=float(pc["f1"][1]),
                   roc_auc=roc_auc(y_true, P[:, 1]))
    else:
        support = pc["support"]
        # as scikit-learn: a class neither in the data nor predicted does not count in the mean
        seen = (support > 0) | (C.sum(axis=0) > 0)
        out.update(macro_f1=float(pc["f1"][seen].mean()),
                   weighted_f1=float((pc["f1"] * support).sum() / max(support.sum(), 1)))
        out["per_class"] = {
            str(label): {"precision": float(pc["precision"][i]), "recall": float(pc["recall"][i]),
                         "f1": float(pc["f1"][i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        }
    out["labels"] = [str(x) for x in labels]
    out["confusion_matrix"] = C.tolist()
    return out


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    r = y_pred - y_true
    mse = float(np.mean(r * r))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    return {"n": int(len(y_true)), "mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(r))),
            "r2": 1.0 - float(np.sum(r * r)) / ss_tot if ss_tot > 0 else float("nan")}
