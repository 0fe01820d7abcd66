"""Long-tail subsets and the long-tail evaluation metrics.

Counts follow the exponential profile of ImageNet-LT-style benchmarks (Liu et al., 2019; Cui et
al., 2019): class `i` of `C` gets `round(max_count * imbalance_ratio ** (-i / (C - 1)))` images,
so the head has `max_count` and the tail `max_count / imbalance_ratio`.
Shot groups use the usual thresholds: many-shot > 100, medium 20-100, few-shot < 20 training
images per class.
"""

from __future__ import annotations

import numpy as np

MANY_SHOT_ABOVE = 100
FEW_SHOT_BELOW = 20


def long_tail_counts(num_classes: int, max_count: int, imbalance_ratio: float) -> np.ndarray:
    """Per-class counts decaying exponentially from `max_count` to `max_count/imbalance_ratio`.

    Example:
    >>> long_tail_counts(10, 500, 100).tolist()
    [500, 300, 180, 108, 65, 39, 23, 14, 8, 5]
    """
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    if max_count < 1:
        raise ValueError(f"`max_count` must be >= 1. Received: max_count={max_count!r}")
    if imbalance_ratio < 1:
        raise ValueError(
            f"`imbalance_ratio` must be >= 1. Received: imbalance_ratio={imbalance_ratio!r}"
        )
    exponents = np.arange(num_classes) / (num_classes - 1)
    counts = np.round(max_count * float(imbalance_ratio) ** (-exponents)).astype(np.int64)
    return np.maximum(counts, 1)


def long_tail_indices(labels: np.ndarray, counts, seed: int = 0) -> np.ndarray:
    """Picks `counts[c]` random examples of each class `c`; returns shuffled indices.

    Raises:
        ValueError: if a class has fewer examples than requested.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen = []
    for c, n in enumerate(counts):
        pool = np.flatnonzero(labels == c)
        if len(pool) < n:
            raise ValueError(
                f"Class {c} has {len(pool)} examples, fewer than the {n} requested."
            )
        chosen.append(rng.choice(pool, size=int(n), replace=False))
    indices = np.concatenate(chosen)
    rng.shuffle(indices)
    return indices


def per_class_accuracy(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Accuracy of each class (NaN for a class absent from `y_true`)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    acc = np.full(num_classes, np.nan)
    for c in range(num_classes):
        mask = y_true == c
        if mask.any():
            acc[c] = float(np.mean(y_pred[mask] == c))
    return acc


def balanced_accuracy(y_true, y_pred, num_classes: int) -> float:
    """Mean of the per-class accuracies (top-1)."""
    return float(np.nanmean(per_class_accuracy(y_true, y_pred, num_classes)))


def shot_accuracies(per_class: np.ndarray, train_counts, many_above: int = MANY_SHOT_ABOVE,
                    few_below: int = FEW_SHOT_BELOW) -> dict[str, float]:
    """Mean accuracy of the many-, medium- and few-shot classes (NaN for an empty group).

    Example:
    >>> shot_accuracies(np.array([1.0, 0.5, 0.0]), [500, 50, 5])
    {'many': 1.0, 'medium': 0.5, 'few': 0.0}
    """
    per_class, counts = np.asarray(per_class, float), np.asarray(train_counts)
    groups = {
        "many": counts > many_above,
        "medium": (counts >= few_below) & (counts <= many_above),
        "few": counts < few_below,
    }
    return {
        name: float(np.nanmean(per_class[mask])) if mask.any() else float("nan")
        for name, mask in groups.items()
    }
