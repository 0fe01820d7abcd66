"""Pareto counts, class orders, class-balanced weights and sampling, scaled shot thresholds."""

import numpy as np
import pytest

from tgt_keras.data import (
    class_balanced_dataset,
    class_balanced_sample_weights,
    counts_by_class,
    long_tail_counts,
    long_tail_indices,
    scaled_shot_thresholds,
    shot_accuracies,
    shuffled_class_order,
)


def test_exponential_is_still_the_default():
    assert (
        long_tail_counts(10, 500, 100).tolist()
        == long_tail_counts(10, 500, 100, "exponential").tolist()
        == [500, 300, 180, 108, 65, 39, 23, 14, 8, 5]
    )


def test_pareto_counts_follow_the_documented_formula():
    counts = long_tail_counts(4, 100, 20, "pareto", alpha=6.0, seed=3)
    draws = np.sort(np.random.default_rng(3).pareto(6.0, 4) + 1.0)[::-1]
    unit = (draws - draws[-1]) / (draws[0] - draws[-1])
    expected = np.round(5.0 + unit * 95.0).astype(int)
    assert counts.tolist() == expected.tolist()
    assert counts[0] == 100 and counts[-1] == 5
    assert counts.dtype == np.int64


def test_pareto_counts_head_tail_monotone_and_seeded():
    counts = long_tail_counts(365, 4980, 996, "pareto", seed=0)
    assert counts[0] == 4980 and counts[-1] == 5 and len(counts) == 365
    assert np.all(np.diff(counts) <= 0)
    np.testing.assert_array_equal(counts, long_tail_counts(365, 4980, 996, "pareto", seed=0))
    assert not np.array_equal(counts, long_tail_counts(365, 4980, 996, "pareto", seed=1))
    # Heavy tail: most classes sit well below the midpoint (an exponential profile would not).
    assert np.median(counts) < 4980 / 4


def test_pareto_ratio_one_gives_equal_counts():
    assert long_tail_counts(3, 7, 1, "pareto").tolist() == [7, 7, 7]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"shape": "zipf"},
            r"`shape` must be one of \('exponential', 'pareto'\). "
            r"Received: shape='zipf'",
        ),
        ({"shape": "pareto", "alpha": 0.0}, r"`alpha` must be > 0. Received: alpha=0.0"),
    ],
)
def test_long_tail_counts_shape_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        long_tail_counts(3, 10, 2, **kwargs)


def test_counts_by_class_and_class_order():
    assert counts_by_class([50, 10, 5], [2, 0, 1]).tolist() == [10, 5, 50]
    assert counts_by_class([50, 10, 5]).tolist() == [50, 10, 5]
    with pytest.raises(ValueError, match=r"`class_order` must be a permutation of range\(3\)"):
        counts_by_class([50, 10, 5], [0, 0, 1])


def test_shuffled_class_order_is_a_seeded_permutation():
    order = shuffled_class_order(10, seed=4)
    assert sorted(order.tolist()) == list(range(10))
    np.testing.assert_array_equal(order, shuffled_class_order(10, seed=4))
    assert not np.array_equal(order, shuffled_class_order(10, seed=5))
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 1"):
        shuffled_class_order(0)


def test_long_tail_indices_with_class_order():
    labels = np.repeat(np.arange(3), 10)
    idx = long_tail_indices(labels, [6, 3, 1], seed=1, class_order=[1, 2, 0])
    # Class 1 is the head (6), class 2 next (3), class 0 the tail (1).
    assert np.bincount(labels[idx], minlength=3).tolist() == [1, 6, 3]
    # Without class_order the old behaviour is unchanged.
    np.testing.assert_array_equal(
        long_tail_indices(labels, [6, 3, 1], seed=1),
        long_tail_indices(labels, [6, 3, 1], seed=1, class_order=[0, 1, 2]),
    )


def test_class_balanced_sample_weights_by_hand():
    weights = class_balanced_sample_weights([0, 0, 0, 1, 2, 2], 4)
    # N = 6, K = 3 classes present: w = 6 / (3 * n_c) -> 2/3, 2, 1.
    np.testing.assert_allclose(weights, [2 / 3, 2 / 3, 2 / 3, 2.0, 1.0, 1.0])
    assert weights.mean() == pytest.approx(1.0)
    per_class_total = [weights[:3].sum(), weights[3:4].sum(), weights[4:].sum()]
    np.testing.assert_allclose(per_class_total, [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"`labels` must be in \[0, 2\)"):
        class_balanced_sample_weights([0, 2], 2)


def test_class_balanced_dataset_samples_classes_uniformly():
    # 90 / 9 / 1 examples: plain sampling would give class 2 about 1% of the draws.
    y = np.repeat(np.arange(3), [90, 9, 1]).astype(np.int64)
    x = np.arange(100, dtype=np.float32)[:, None]
    ds = class_balanced_dataset(x, y, batch_size=100, seed=0)
    batches = list(ds.take(30).as_numpy_iterator())
    xs = np.concatenate([b[0] for b in batches])[:, 0]
    ys = np.concatenate([b[1] for b in batches])
    assert batches[0][0].shape == (100, 1) and len(ys) == 3000
    np.testing.assert_array_equal(y[xs.astype(int)], ys)  # pairs stay together
    freq = np.bincount(ys, minlength=3) / len(ys)
    # Binomial std at p = 1/3, n = 3000 is 0.0086; 0.04 is more than 4 std.
    np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.04)
    assert set(xs[ys == 2].astype(int).tolist()) == {99}


def test_class_balanced_dataset_validation():
    with pytest.raises(ValueError, match="`batch_size` must be >= 1. Received: batch_size=0"):
        class_balanced_dataset(np.zeros((2, 1)), np.array([0, 1]), batch_size=0)
    with pytest.raises(ValueError, match=r"same non-zero length. Received: len\(x\)=2, len\(y\)=3"):
        class_balanced_dataset(np.zeros((2, 1)), np.array([0, 1, 1]), batch_size=2)


def test_scaled_shot_thresholds_by_hand():
    assert scaled_shot_thresholds(1280) == {"many_above": 100, "few_below": 20}
    assert scaled_shot_thresholds(640) == {"many_above": 50, "few_below": 10}
    # 500 / 1280 = 0.390625 -> 39.06 and 7.81.
    assert scaled_shot_thresholds(500) == {"many_above": 39, "few_below": 8}
    assert scaled_shot_thresholds(50, reference_max=100) == {"many_above": 50, "few_below": 10}
    shots = shot_accuracies([1.0, 0.5, 0.0], [51, 10, 9], **scaled_shot_thresholds(640))
    assert shots == {"many": 1.0, "medium": 0.5, "few": 0.0}
    with pytest.raises(ValueError, match="`max_count` must be >= 1. Received: max_count=0"):
        scaled_shot_thresholds(0)
    with pytest.raises(ValueError, match="`reference_max` must be >= 1"):
        scaled_shot_thresholds(10, reference_max=0)
