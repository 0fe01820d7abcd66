"""Long-tail subsets, class-balanced sampling and the long-tail evaluation metrics.

Two count profiles (see `long_tail_counts`):
- "exponential" (Cui et al., 2019): class `i` of `C` gets
  `round(max_count * imbalance_ratio ** (-i / (C - 1)))` images, so the head has `max_count` and
  the tail `max_count / imbalance_ratio`;
- "pareto": sorted Pareto draws rescaled to the same head and tail, an approximation of the
  ImageNet-LT / Places-LT protocol of Liu et al. (2019).
Which classes form the head and which the tail is class 0 first by default; `class_order` (e.g.
`shuffled_class_order(num_classes, seed)`) randomizes it.

Shot groups use the usual thresholds for ImageNet-LT (head 1,280 images): many-shot > 100,
medium 20-100, few-shot < 20 training images per class. On a smaller dataset those absolute
thresholds put every class in one group; `scaled_shot_thresholds(max_count)` scales both in
proportion to the head size (e.g. head 500 -> many > 39, few < 8).
"""

from __future__ import annotations

import numpy as np

MANY_SHOT_ABOVE = 100
FEW_SHOT_BELOW = 20
SHOT_REFERENCE_MAX = 1280  # ImageNet-LT's head class, for which 100 / 20 were defined.
COUNT_SHAPES = ("exponential", "pareto")


def long_tail_counts(
    num_classes: int,
    max_count: int,
    imbalance_ratio: float,
    shape: str = "exponential",
    *,
    alpha: float = 6.0,
    seed: int = 0,
) -> np.ndarray:
    """Per-class counts, largest first, from `max_count` down to `max_count / imbalance_ratio`.

    Args:
        num_classes: number of classes `C` (>= 2).
        max_count: images of the head class.
        imbalance_ratio: head count / tail count (>= 1).
        shape: "exponential": `round(max_count * imbalance_ratio ** (-i / (C - 1)))` for class
            `i`. "pareto": draw `s_i = 1 + Lomax(alpha)` (a Pareto sample with scale 1, numpy's
            `rng.pareto(alpha) + 1`) for every class, sort descending, and rescale linearly
            `round(tail + (s_i - s_min) / (s_max - s_min) * (max_count - tail))` with
            `tail = max_count / imbalance_ratio`, so the head is exactly `max_count` and the tail
            `round(tail)`. This approximates the OLTR protocol of Liu et al. (2019), who sample
            ImageNet-LT / Places-LT class sizes from a Pareto distribution with alpha = 6; their
            exact per-class counts come from their own split files, not from this formula.
        alpha: Pareto shape (> 0); only used by "pareto". Larger alpha -> more classes near the
            tail. With alpha = 6, 1,000 classes and 1,280 -> 5 the mean is 89-105 per class
            for seeds 0-2 (ImageNet-LT has 115.8).
        seed: seed of the Pareto draws; only used by "pareto".

    Returns:
        int64 array `[C]`, non-increasing, every entry >= 1.

    Raises:
        ValueError: for a bad `num_classes`, `max_count`, `imbalance_ratio`, `shape` or `alpha`.

    Example:
    >>> long_tail_counts(10, 500, 100).tolist()
    [500, 300, 180, 108, 65, 39, 23, 14, 8, 5]
    >>> c = long_tail_counts(10, 500, 100, "pareto", seed=0)
    >>> int(c[0]), int(c[-1])
    (500, 5)
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
    if shape not in COUNT_SHAPES:
        raise ValueError(f"`shape` must be one of {COUNT_SHAPES}. Received: shape={shape!r}")
    if shape == "exponential":
        exponents = np.arange(num_classes) / (num_classes - 1)
        counts = np.round(max_count * float(imbalance_ratio) ** (-exponents)).astype(np.int64)
        return np.maximum(counts, 1)
    if not alpha > 0:
        raise ValueError(f"`alpha` must be > 0. Received: alpha={alpha!r}")
    draws = np.sort(np.random.default_rng(seed).pareto(alpha, num_classes) + 1.0)[::-1]
    tail = max_count / float(imbalance_ratio)
    spread = draws[0] - draws[-1]
    unit = (draws - draws[-1]) / spread if spread > 0 else np.zeros(num_classes)
    counts = np.round(tail + unit * (max_count - tail)).astype(np.int64)
    return np.maximum(counts, 1)


def shuffled_class_order(num_classes: int, seed: int = 0) -> np.ndarray:
    """A seeded permutation of the class ids: entry `i` is the class that gets the `i`-th count.

    Pass it as `class_order` to `long_tail_indices` / `counts_by_class` to randomize which
    classes are head and which are tail.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be an integer >= 1. Received: num_classes={num_classes!r}"
        )
    return np.random.default_rng(seed).permutation(num_classes).astype(np.int64)


def counts_by_class(counts, class_order=None) -> np.ndarray:
    """Re-indexes sorted counts by class id: `result[class_order[i]] = counts[i]`.

    With `class_order=None` the counts are returned unchanged (class `i` gets `counts[i]`).

    Raises:
        ValueError: if `class_order` is not a permutation of `range(len(counts))`.

    Example:
    >>> counts_by_class([50, 10, 5], class_order=[2, 0, 1]).tolist()
    [10, 5, 50]
    """
    counts = np.asarray(counts, np.int64)
    if class_order is None:
        return counts
    order = np.asarray(class_order)
    if order.shape != counts.shape or not np.array_equal(np.sort(order), np.arange(len(counts))):
        raise ValueError(
            f"`class_order` must be a permutation of range({len(counts)}). "
            f"Received: class_order={order.tolist()!r}"
        )
    result = np.empty_like(counts)
    result[order] = counts
    return result


def long_tail_indices(labels: np.ndarray, counts, seed: int = 0, class_order=None) -> np.ndarray:
    """Picks `counts[i]` random examples of class `class_order[i]`; returns shuffled indices.

    Args:
        labels: integer labels `[N]`.
        counts: how many examples to keep, in head-to-tail order (e.g. `long_tail_counts`).
        seed: seed of the choice and of the final shuffle.
        class_order: optional permutation of the class ids (e.g. `shuffled_class_order`);
            `None` gives `counts[c]` to class `c`.

    Raises:
        ValueError: if a class has fewer examples than requested, or `class_order` is not a
            permutation.
    """
    labels = np.asarray(labels)
    counts = counts_by_class(counts, class_order)
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


def held_out_indices(labels: np.ndarray, exclude, per_class: int, num_classes: int,
                     seed: int = 0) -> np.ndarray:
    """A class-balanced sample of `per_class` examples of each class, outside `exclude`.

    The validation set of a long-tail subset: examples of the same split that the subset did
    not pick, so it overlaps neither the training subset nor the test split.

    Raises:
        ValueError: if a class has fewer than `per_class` examples outside `exclude`.

    Example:
    >>> held_out_indices(np.array([0, 0, 1, 1, 1]), exclude=[2], per_class=1, num_classes=2)
    array([1, 4])
    """
    labels = np.asarray(labels)
    free = np.ones(len(labels), bool)
    free[np.asarray(exclude, dtype=np.int64)] = False
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(num_classes):
        pool = np.flatnonzero((labels == c) & free)
        if len(pool) < per_class:
            raise ValueError(
                f"Class {c} has {len(pool)} examples outside the training subset, fewer than "
                f"the {per_class} per class of the validation set."
            )
        chosen.append(rng.choice(pool, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def class_balanced_sample_weights(labels, num_classes: int) -> np.ndarray:
    """Per-example inverse-frequency weights, normalised to mean 1 over the examples.

    Example `i` gets `N / (K * n[y_i])`, with `n[c]` the examples of class `c` and `K` the
    number of classes present, so every present class carries the same total weight `N / K`.
    Pass the result as `sample_weight` to `Model.fit`.

    Raises:
        ValueError: if a label is outside `[0, num_classes)`.

    Example:
    >>> class_balanced_sample_weights([0, 0, 0, 1], 2).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`labels` must be in [0, {num_classes}). Received labels from {labels.min()} "
            f"to {labels.max()}"
        )
    freq = np.bincount(labels, minlength=num_classes)
    present = int(np.count_nonzero(freq))
    return len(labels) / (present * freq[labels].astype(np.float64))


def class_balanced_dataset(x, y, batch_size: int, seed: int = 0):
    """An endless `tf.data.Dataset` of `(x, y)` batches whose classes are drawn uniformly.

    One shuffled, repeated dataset per class present in `y`, mixed with
    `tf.data.Dataset.sample_from_datasets` with equal weights: every batch element picks a class
    uniformly, then an example of that class (class-balanced sampling). The dataset never ends:
    give `Model.fit` a `steps_per_epoch`.

    Args:
        x: array of examples `[N, ...]`.
        y: integer labels `[N]`.
        batch_size: examples per batch (>= 1).
        seed: seed of the per-class shuffles and of the class draws.

    Raises:
        ValueError: for `batch_size < 1` or mismatched lengths.
    """
    import tensorflow as tf

    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size!r}")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(
            f"`x` and `y` must have the same non-zero length. Received: len(x)={len(x)}, "
            f"len(y)={len(y)}"
        )
    classes = np.unique(y)
    per_class = [
        tf.data.Dataset.from_tensor_slices((x[y == c], y[y == c]))
        .shuffle(int(np.sum(y == c)), seed=seed + int(i), reshuffle_each_iteration=True)
        .repeat()
        for i, c in enumerate(classes)
    ]
    weights = [1.0 / len(classes)] * len(classes)
    mixed = tf.data.Dataset.sample_from_datasets(per_class, weights=weights, seed=seed)
    return mixed.batch(batch_size)


def scaled_shot_thresholds(max_count: int, reference_max: int = SHOT_REFERENCE_MAX) -> dict:
    """Many/few-shot thresholds scaled from ImageNet-LT's (head 1,280) to a head of `max_count`.

    `many_above = round(100 * max_count / reference_max)` and
    `few_below = round(20 * max_count / reference_max)`; the result plugs into `shot_accuracies`
    as keyword arguments. A scaled report is not comparable to published many/medium/few numbers;
    say so when reporting it.

    Raises:
        ValueError: if `max_count` or `reference_max` is < 1.

    Example:
    >>> scaled_shot_thresholds(640)
    {'many_above': 50, 'few_below': 10}
    >>> shot_accuracies([1.0, 0.5, 0.0], [100, 20, 5], **scaled_shot_thresholds(640))
    {'many': 1.0, 'medium': 0.5, 'few': 0.0}
    """
    if max_count < 1:
        raise ValueError(f"`max_count` must be >= 1. Received: max_count={max_count!r}")
    if reference_max < 1:
        raise ValueError(
            f"`reference_max` must be >= 1. Received: reference_max={reference_max!r}"
        )
    scale = max_count / reference_max
    return {
        "many_above": int(round(MANY_SHOT_ABOVE * scale)),
        "few_below": int(round(FEW_SHOT_BELOW * scale)),
    }


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
