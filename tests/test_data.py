"""Offline data loading, long-tail subsets and the long-tail metrics."""

import numpy as np
import pytest

from tgt_keras.data import (
    balanced_accuracy,
    fashion_mnist,
    load_fashion_mnist,
    long_tail_counts,
    long_tail_indices,
    per_class_accuracy,
    shot_accuracies,
)


def test_fashion_mnist_test_split_is_balanced_uint8():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [1000] * 10


def test_fashion_mnist_unknown_split():
    with pytest.raises(ValueError, match="`split` must be one of .* Received: split='val'"):
        load_fashion_mnist("val")


def test_fashion_mnist_missing_files_say_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "_candidate_dirs", lambda: [tmp_path])
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist("train")


def test_long_tail_counts_imagenet_lt_style():
    counts = long_tail_counts(10, 500, 100)
    assert counts.tolist() == [500, 300, 180, 108, 65, 39, 23, 14, 8, 5]
    assert counts[0] / counts[-1] == 100


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 1, "max_count": 5, "imbalance_ratio": 2}, "num_classes"),
        ({"num_classes": 3, "max_count": 0, "imbalance_ratio": 2}, "max_count"),
        ({"num_classes": 3, "max_count": 5, "imbalance_ratio": 0.5}, "imbalance_ratio"),
    ],
)
def test_long_tail_counts_validation(kwargs, match):
    with pytest.raises(ValueError, match=f"`{match}` must be"):
        long_tail_counts(**kwargs)


def test_long_tail_indices_exact_counts_and_seeded():
    labels = np.repeat(np.arange(3), 10)
    idx = long_tail_indices(labels, [6, 3, 1], seed=1)
    assert np.bincount(labels[idx], minlength=3).tolist() == [6, 3, 1]
    assert len(set(idx.tolist())) == 10
    np.testing.assert_array_equal(idx, long_tail_indices(labels, [6, 3, 1], seed=1))
    assert not np.array_equal(idx, long_tail_indices(labels, [6, 3, 1], seed=2))
    with pytest.raises(ValueError, match="Class 2 has 10 examples, fewer than the 11"):
        long_tail_indices(labels, [1, 1, 11])


def test_balanced_and_shot_accuracy_by_hand():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2])
    per_class = per_class_accuracy(y_true, y_pred, 3)
    np.testing.assert_allclose(per_class, [0.75, 0.5, 1.0])
    assert balanced_accuracy(y_true, y_pred, 3) == pytest.approx((0.75 + 0.5 + 1.0) / 3)
    shots = shot_accuracies(per_class, [150, 20, 19])
    assert shots == {"many": 0.75, "medium": 0.5, "few": 1.0}
    assert np.isnan(shot_accuracies(per_class, [50, 50, 50])["many"])
