"""TFDS long-tail pipelines on `tfds.testing.mock_data` only: nothing may download here."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_cpus

tfds = pytest.importorskip("tensorflow_datasets")

from tgt_keras.data import (  # noqa: E402
    LONG_TAIL_DATASETS,
    get_long_tail_dataset,
    load_tfds_long_tail,
    long_tail_train_counts,
    shuffled_class_order,
    tfds_long_tail,
)
from tgt_keras.data.tfds_long_tail import read_labels, tfds_long_tail_batches  # noqa: E402

NUM_EXAMPLES = 24


@pytest.fixture(autouse=True)
def mock_tfds():
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
        yield


def _collect(ds):
    images, labels = zip(*ds.as_numpy_iterator(), strict=True)
    return np.concatenate(images), np.concatenate(labels)


def test_registry_facts():
    assert sorted(LONG_TAIL_DATASETS) == ["imagenet_lt", "places_lt", "sun_lt"]
    places = get_long_tail_dataset("places365_small")
    assert places is LONG_TAIL_DATASETS["places_lt"]
    assert (places.builder, places.num_classes, places.max_count, places.min_count) == (
        "places365_small",
        365,
        4980,
        5,
    )
    assert get_long_tail_dataset("sun397").num_classes == 397
    assert get_long_tail_dataset("imagenet_lt").builtin_long_tail


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match=r"Unknown long-tail dataset 'cifar_lt'. Known: imagenet_lt, places_lt, sun_lt",
    ):
        load_tfds_long_tail("cifar_lt", image_size=8, batch_size=2)


def test_registry_train_counts():
    counts = long_tail_train_counts("places_lt", seed=0)
    assert counts.shape == (365,) and counts[0] == 4980 and counts.min() == 5
    assert np.all(np.diff(counts) <= 0)
    sun = long_tail_train_counts("sun_lt")
    assert sun.shape == (397,) and sun.max() == 500 and sun.min() == 5
    order = shuffled_class_order(365, seed=1)
    shuffled = long_tail_train_counts("places_lt", seed=0, class_order=order)
    np.testing.assert_array_equal(shuffled[order], counts)


def test_places_lt_selection_gives_the_requested_counts():
    labels = read_labels("places365_small", "train")
    assert len(labels) == NUM_EXAMPLES
    available = np.bincount(labels, minlength=365)
    requested = np.minimum(available, 1)
    requested[labels[0]] = available[labels[0]]  # one "head" class keeps all its examples
    ds, counts = load_tfds_long_tail(
        "places_lt", "train", image_size=8, batch_size=5, train_counts=requested, seed=0
    )
    images, got = _collect(ds)
    np.testing.assert_array_equal(counts, requested)
    np.testing.assert_array_equal(np.bincount(got, minlength=365), requested)
    assert images.shape == (requested.sum(), 8, 8, 3)
    assert images.dtype == np.float32 and got.dtype == np.int64
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.5


def test_default_counts_need_more_data_than_the_mock_has():
    with pytest.raises(ValueError, match="fewer than the 4980 requested"):
        load_tfds_long_tail("places_lt", image_size=8, batch_size=2)


def test_bad_train_counts():
    with pytest.raises(ValueError, match="`train_counts` must have 397 entries >= 0"):
        load_tfds_long_tail("sun_lt", image_size=8, batch_size=2, train_counts=[1, 2])


def test_sun_lt_balanced_test_set_resized_to_value_range():
    labels = read_labels("sun397/tfds", "test")
    ds, counts = load_tfds_long_tail(
        "sun_lt",
        "test",
        image_size=(6, 10),
        batch_size=4,
        value_range=(-1.0, 1.0),
        test_per_class=1,
    )
    images, got = _collect(ds)
    expected = np.minimum(np.bincount(labels, minlength=397), 1)
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(np.bincount(got, minlength=397), expected)
    assert images.shape == (expected.sum(), 6, 10, 3)
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.min() < 0.0


def test_imagenet_lt_uses_its_own_split():
    labels = read_labels("imagenet_lt", "train")
    ds, counts = load_tfds_long_tail("imagenet_lt", "train", image_size=4, batch_size=8, seed=3)
    images, got = _collect(ds)
    np.testing.assert_array_equal(counts, np.bincount(labels, minlength=1000))
    assert len(got) == NUM_EXAMPLES and images.shape == (NUM_EXAMPLES, 4, 4, 3)
    assert sorted(got.tolist()) == sorted(labels.tolist())
    # Seeded shuffle: same seed, same order.
    _, again = _collect(load_tfds_long_tail("imagenet_lt", image_size=4, batch_size=8, seed=3)[0])
    np.testing.assert_array_equal(got, again)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "validation"}, r"`split` must be one of \('train', 'test'\)"),
        ({"image_size": 0}, "`image_size` must be a positive int"),
        ({"batch_size": 0}, "`batch_size` must be >= 1"),
        ({"value_range": (1.0, 0.0)}, "`value_range` must be"),
        ({"test_per_class": 0}, "`test_per_class` must be >= 1"),
        ({"shuffle_buffer": 0}, "`shuffle_buffer` must be an int >= 1"),
        ({"passes": 0}, "`passes` must be an int >= 1"),
        ({"start": -1}, "`start` must be an int >= 0"),
    ],
)
def test_argument_validation(kwargs, match):
    args = {"image_size": 8, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        load_tfds_long_tail("imagenet_lt", **args)


# The training stream: 24 examples, batches of 10 (so batches span passes), windows of 7.
STREAM = {"image_size": 4, "batch_size": 10, "seed": 3, "shuffle_buffer": 7}


def _batches(ds, count=None):
    return list((ds if count is None else ds.take(count)).as_numpy_iterator())


def _assert_same_batches(got, expected):
    assert len(got) == len(expected)
    for (x, y), (x_expected, y_expected) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(x, x_expected)
        np.testing.assert_array_equal(y, y_expected)


def test_training_stream_is_a_pure_function_of_the_batch_index():
    # What lets a resumed run start at the batches the interrupted one would have seen.
    batches_from, _ = tfds_long_tail_batches("imagenet_lt", passes=None, **STREAM)
    stream = batches_from()
    first = _batches(stream, 8)  # passes 0, 1, 2 and a third of pass 3
    _assert_same_batches(_batches(stream, 8), first)  # a second iterator of the same dataset
    rebuilt, _ = tfds_long_tail_batches("imagenet_lt", passes=None, **STREAM)
    _assert_same_batches(_batches(rebuilt(), 8), first)
    # Examples 20..29 (across passes 0 and 1), 50.. (pass 2, window 0), 70.. (pass 2, window 3).
    for start in (2, 5, 7):
        _assert_same_batches(_batches(batches_from(start), 8 - start), first[start:])
    strategy = mirrored_cpus()
    distributed = iter(strategy.experimental_distribute_dataset(batches_from(2)))
    for x_expected, y_expected in first[2:4]:
        x, y = next(distributed)
        np.testing.assert_array_equal(np.concatenate([np.asarray(v) for v in x.values]),
                                      x_expected)
        np.testing.assert_array_equal(np.concatenate([np.asarray(v) for v in y.values]),
                                      y_expected)

    # Pass k: the examples in file order, each window of 7 permuted, in a new order each pass.
    labels = read_labels("imagenet_lt", "train")
    passes = np.concatenate([y for _, y in first])[:72].reshape(3, NUM_EXAMPLES)
    for one_pass in passes:
        for window in range(0, NUM_EXAMPLES, 7):
            np.testing.assert_array_equal(np.sort(one_pass[window:window + 7]),
                                          np.sort(labels[window:window + 7]))
    assert not np.array_equal(passes[0], labels)
    assert not np.array_equal(passes[0], passes[1]) and not np.array_equal(passes[1], passes[2])


def test_what_a_start_skips_is_not_decoded_and_skipped_passes_are_not_read(monkeypatch):
    decoded, read = [], []

    def counted(log, value):
        log.append(1)
        return value

    decode_image, records = tf.io.decode_image, tfds_long_tail._records

    def counting_decode_image(contents, **kwargs):
        contents = tf.py_function(lambda c: counted(decoded, c), [contents], tf.string)
        return decode_image(tf.ensure_shape(contents, []), **kwargs)

    def counting_records(*args):
        def count(example):
            label = tf.py_function(lambda v: counted(read, v), [example["label"]], tf.int64)
            return {**example, "label": tf.ensure_shape(label, [])}

        return records(*args).map(count)

    monkeypatch.setattr(tf.io, "decode_image", counting_decode_image)
    monkeypatch.setattr(tfds_long_tail, "_records", counting_records)
    batches_from, _ = tfds_long_tail_batches("imagenet_lt", passes=3, **STREAM)
    read.clear()  # the selection read the labels
    everything = _batches(batches_from())
    assert (len(read), len(decoded)) == (3 * NUM_EXAMPLES, 3 * NUM_EXAMPLES)
    assert [len(y) for _, y in everything] == [10] * 7 + [2]
    for start, skipped in ((5, 50), (7, 70)):
        read.clear()
        decoded.clear()
        _assert_same_batches(_batches(batches_from(start)), everything[start:])
        # Passes 0 and 1 are not read; pass 2 is read, only the examples from `start` decoded.
        assert (len(read), len(decoded)) == (NUM_EXAMPLES, 3 * NUM_EXAMPLES - skipped)
