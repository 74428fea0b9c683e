"""Validation metrics computed by the training loop (NumPy only; same definitions as sklearn)."""

from __future__ import annotations

import numpy as np

__all__ = ["accuracy", "r2", "weighted_mean"]


def _weighs_nothing(sample_weight: np.ndarray | None) -> bool:
    """Whether the rows' weights sum to zero (or NaN): such rows have no score."""
    return sample_weight is not None and not np.sum(sample_weight, dtype=np.float64) != 0


def weighted_mean(values: np.ndarray, sample_weight: np.ndarray | None) -> float:
    """``np.average(values, weights=sample_weight)``, NaN where the weights sum to zero (held-out
    rows that all weigh nothing have no score; NumPy would raise ZeroDivisionError)."""
    if _weighs_nothing(sample_weight):
        return float("nan")
    return float(np.average(values, weights=sample_weight))


def accuracy(p: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Accuracy of network outputs ``p`` against 2-D targets ``y``.

    One output column: threshold 0.5. Several columns with one-hot ``y``: arg-max.
    Several columns otherwise (multilabel): exact-match (subset) accuracy, as in scikit-learn.
    """
    if p.shape[1] > 1 and np.all(y.sum(axis=1) == 1):
        correct = p.argmax(axis=1) == y.argmax(axis=1)
    else:
        correct = np.all((p > 0.5) == (y > 0.5), axis=1)
    return weighted_mean(correct, sample_weight)


def r2(p: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Coefficient of determination, uniformly averaged over outputs (scikit-learn's default)."""
    if _weighs_nothing(sample_weight):
        return float("nan")
    weights = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    weights = weights[:, None]
    y = y.astype(np.float64, copy=False)
    residual = (weights * (y - p) ** 2).sum(axis=0)
    mean = (weights * y).sum(axis=0) / weights.sum()
    total = (weights * (y - mean) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1), 0.0)
    scores = np.where((total == 0) & (residual == 0), 1.0, scores)
    return float(scores.mean())
