"""The bad input tour: every mistake fails early, naming what was expected and what was received.

Tested here (`TGTDistiller.fit` / `evaluate` on NumPy arrays and on `tf.data` datasets):
- wrong dtypes: string or uint8 images, bool or string labels;
- images outside the declared value range (NumPy: before training; a dataset: in the step,
  `tf.errors.InvalidArgumentError`, and the student does not move), NaN images;
- an empty dataset, empty arrays;
- labels >= num_classes, negative labels, float class indices out of range, NaN labels;
- a wrong image shape, labels of shape (batch, wrong_num_classes);
- a global batch the replicas cannot share (`MirroredStrategy` over two logical CPUs).

The rest of the tour lives next to the code it exercises:
- student and labeler with different class counts:
  `tests/test_distiller.py::test_labeler_and_student_class_counts_must_agree`;
- an `input_format` that does not match the student:
  `test_distiller.py::test_constructor_validation`;
- a generator without the needed signatures:
  `tests/test_teachers.py::test_hub_generator_without_encode_signature_lists_available`
  (and a labeler without its signature: `test_teachers.py::test_hub_labeler_errors`);
- a latent size mismatch: `test_teachers.py::test_hub_generator_latent_dim_mismatch`,
  `test_teachers.py::test_keras_generator_shape_errors` (encoder and decoder disagree),
  `tests/test_bigbigan_fixture.py::test_preset_real_sizes_do_not_fit_the_fixture`;
- a generator / labeler whose declared image format is wrong:
  `test_teachers.py::test_hub_generator_declared_size_mismatch`,
  `test_teachers.py::test_keras_generator_decoder_outside_declared_range_raises`;
- a hparams file with an unknown field: `tests/test_hparams.py::test_unknown_field_is_named`
  (bad values: `test_hparams.py::test_bad_values_are_clear_errors`);
- bad hyper-parameters of the distiller: `test_distiller.py::test_constructor_validation`.
"""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    IMAGE_SHAPE,
    NUM_CLASSES,
    make_classifier,
    make_decoder,
    make_encoder,
    mirrored_cpus,
)

from tgt_keras import KerasGenerator, KerasLabeler, TGTDistiller
from tgt_keras.core import checks
from tgt_keras.modalities import ImageModality

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

N = 8


def make_distiller(student, labeler, generator):
    distiller = TGTDistiller(student, labeler, generator, num_steps=1, seed=0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    return distiller


def data(n=N, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 0.9, (n, *IMAGE_SHAPE)).astype("float32")
    y = (np.arange(n) % NUM_CLASSES).astype("int32")
    return x, y


def dataset(x, y, batch=4):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def fit(distiller, x, y, as_dataset, **kwargs):
    if as_dataset:
        return distiller.fit(dataset(x, y), epochs=1, verbose=0, shuffle=False, **kwargs)
    return distiller.fit(x, y, batch_size=4, epochs=1, verbose=0, **kwargs)


def weights(model):
    return [w.copy() for w in model.get_weights()]


def assert_unchanged(model, before):
    for b, a in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(b, a)


SOURCES = pytest.mark.parametrize("as_dataset", [False, True], ids=["numpy", "dataset"])


# --- dtypes -----------------------------------------------------------------------------------


@SOURCES
@pytest.mark.parametrize(
    "convert, error, message",
    [
        (
            lambda x, y: (x.astype(str), y),
            TypeError,
            "`x` must hold floating-point images with values in (0.0, 1.0) (the distiller's "
            "`input_format`). Received: dtype=string. Integer images (e.g. uint8 in [0, 255]) "
            "must be converted first, e.g. `x / 255`.",
        ),
        (
            lambda x, y: ((x * 255).astype("uint8"), y),
            TypeError,
            "`x` must hold floating-point images with values in (0.0, 1.0) (the distiller's "
            "`input_format`). Received: dtype=uint8.",
        ),
        (
            lambda x, y: (x, y.astype(bool)),
            TypeError,
            "`y` must hold integer class indices or float one-hot / soft labels. "
            "Received: dtype=bool",
        ),
        (
            lambda x, y: (x, y.astype(str)),
            TypeError,
            "`y` must hold integer class indices or float one-hot / soft labels. "
            "Received: dtype=string",
        ),
    ],
    ids=["string_images", "uint8_images", "bool_labels", "string_labels"],
)
def test_wrong_dtype(student, labeler, generator, as_dataset, convert, error, message):
    distiller = make_distiller(student, labeler, generator)
    x, y = convert(*data())
    with pytest.raises(error, match=re.escape(message)):
        fit(distiller, x, y, as_dataset)


# --- the value range --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, received",
    [(1.5, "values in [0.1"), (-0.5, "values in [-0.5, 0.8"), (np.nan, "1 NaN value(s)")],
    ids=["above", "below", "nan"],
)
def test_numpy_images_outside_the_value_range_fail_before_training(
    student, labeler, generator, value, received
):
    distiller = make_distiller(student, labeler, generator)
    x, y = data()
    x[3, 2, 1, 0] = value
    before = weights(student)
    with pytest.raises(
        ValueError,
        match=re.escape("`x` must have values in the input_format's value_range (0.0, 1.0). "
                        f"Received: {received}"),
    ):
        distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert_unchanged(student, before)
    assert int(distiller.optimizer.iterations) == 0


@pytest.mark.parametrize(
    "value, which",
    [(1.5, "larger value or a NaN (the printed maximum)"),
     (-0.5, "smaller value or a NaN (the printed minimum)")],
    ids=["above", "below"],
)
def test_dataset_images_outside_the_value_range_fail_in_the_step(
    student, labeler, generator, value, which
):
    # A dataset's values are only seen in the step: `check_batch` asserts before the update.
    distiller = make_distiller(student, labeler, generator)
    x, y = data()
    x[1, 4, 4, 0] = value  # in the first batch
    before = weights(student)
    teacher_before = weights(labeler.model)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"(?s)`x` must have values in the input_format\\?'s value_range \(0\.0, 1\.0\); "
        rf"a batch has a {re.escape(which)}.*\[{re.escape(str(value))}\]",
    ):
        distiller.fit(dataset(x, y), epochs=1, verbose=0, shuffle=False)
    assert_unchanged(student, before)
    assert_unchanged(labeler.model, teacher_before)


# --- empty inputs -----------------------------------------------------------------------------


def test_empty_dataset(student, labeler, generator):
    distiller = make_distiller(student, labeler, generator)
    x, y = data()
    empty = tf.data.Dataset.from_tensor_slices((x, y)).take(0).batch(4)
    with pytest.raises(
        ValueError,
        match=re.escape("The training dataset is empty: it must yield at least one batch. "
                        "Received: a dataset with cardinality 0"),
    ):
        distiller.fit(empty, epochs=1, verbose=0)


def test_empty_arrays(student, labeler, generator):
    distiller = make_distiller(student, labeler, generator)
    x, y = data()
    with pytest.raises(
        ValueError,
        match=re.escape("`x` is empty: it must hold at least one image. "
                        "Received: x.shape=(0, 8, 8, 1)"),
    ):
        distiller.fit(x[:0], y[:0], batch_size=4, epochs=1, verbose=0)


# --- labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, received",
    [
        (np.array([0, 1, 2, 3, 0, 1, 2, 0], "int32"), "labels in [0, 3]"),
        (np.array([0, 1, -1, 2, 0, 1, 2, 0], "int64"), "labels in [-1, 2]"),
        (np.array([0, 1, 2, 4, 0, 1, 2, 0], "float32"), "labels in [0, 4]"),
        (np.array([[0], [1], [2], [0], [1], [-2], [2], [0]], "int32"), "labels in [-2, 2]"),
    ],
    ids=["too_large", "negative", "float_indices", "column_of_indices"],
)
def test_numpy_labels_outside_the_classes(student, labeler, generator, labels, received):
    distiller = make_distiller(student, labeler, generator)
    x, _ = data()
    with pytest.raises(
        ValueError,
        match=re.escape("`y` must hold class indices in [0, 3) (the labeler's num_classes). "
                        f"Received: {received}"),
    ):
        distiller.fit(x, labels, batch_size=4, epochs=1, verbose=0)


def test_numpy_labels_outside_the_classes_in_evaluate(student, labeler, generator):
    distiller = make_distiller(student, labeler, generator)
    x, y = data()
    with pytest.raises(ValueError, match=re.escape("Received: labels in [0, 5]")):
        distiller.evaluate(x, np.where(y == 2, 5, y), batch_size=4, verbose=0)


def test_numpy_non_finite_labels(student, labeler, generator):
    distiller = make_distiller(student, labeler, generator)
    x, y = data()
    one_hot = np.eye(NUM_CLASSES, dtype="float32")[y]
    one_hot[2, 1] = np.nan
    one_hot[5, 0] = np.inf
    with pytest.raises(
        ValueError,
        match=re.escape("`y` must hold finite labels. "
                        "Received: 2 non-finite value(s) (NaN or inf)"),
    ):
        distiller.fit(x, one_hot, batch_size=4, epochs=1, verbose=0)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 1, 3, 2, 0, 1, 2, 0], "int32"),
         r"a batch has one >= 3 \(printed\).*\[0 1 3"),
        (np.array([0, -1, 2, 2, 0, 1, 2, 0], "int32"),
         r"a batch has a negative one or a NaN \(printed\).*\[0 -1 2"),
        (np.array([0, 1, 3, 2, 0, 1, 2, 0], "float32"),
         r"a batch has one >= 3 \(printed\).*\[0 1 3"),
    ],
    ids=["too_large", "negative", "float_indices"],
)
def test_dataset_labels_outside_the_classes_fail_in_the_step(
    student, labeler, generator, labels, message
):
    distiller = make_distiller(student, labeler, generator)
    x, _ = data()
    before = weights(student)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"(?s)`y` must hold class indices in \[0, 3\) \(the labeler\\?'s num_classes\); "
        + message,
    ):
        distiller.fit(dataset(x, labels), epochs=1, verbose=0, shuffle=False)
    assert_unchanged(student, before)


# --- shapes -----------------------------------------------------------------------------------


@SOURCES
@pytest.mark.parametrize(
    "convert, message",
    [
        (lambda x, y: (x[:, :4], y),
         "`x` must be images of shape (batch, 8, 8, 1) (the distiller's `input_format`). "
         "Received: shape=({batch}, 4, 8, 1)"),
        (lambda x, y: (np.repeat(x, 3, axis=-1), y),
         "`x` must be images of shape (batch, 8, 8, 1) (the distiller's `input_format`). "
         "Received: shape=({batch}, 8, 8, 3)"),
        (lambda x, y: (x[..., 0], y),
         "`x` must be images of shape (batch, 8, 8, 1) (the distiller's `input_format`). "
         "Received: shape=({batch}, 8, 8)"),
        (lambda x, y: (x, np.eye(5, dtype="float32")[y]),
         "`y` must be class indices (batch,) or (batch, 1), or one-hot (batch, 3). "
         "Received: shape=({batch}, 5)"),
    ],
    ids=["height", "channels", "no_channel_axis", "labels_with_5_classes"],
)
def test_wrong_shape(student, labeler, generator, as_dataset, convert, message):
    distiller = make_distiller(student, labeler, generator)
    x, y = convert(*data())
    batch = "None" if as_dataset else str(N)
    with pytest.raises(ValueError, match=re.escape(message.format(batch=batch))):
        fit(distiller, x, y, as_dataset)


def test_labeler_with_other_classes_than_the_labels(student, generator):
    # Student and labeler must agree (tests/test_distiller.py); the labels are checked against
    # the labeler's class count, the one the synthetic labels have.
    labeler4 = KerasLabeler(make_classifier(num_classes=4, name="teacher4"), value_range=(0, 1))
    student4 = make_classifier(num_classes=4, hidden=4, name="student4")
    distiller = make_distiller(student4, labeler4, generator)
    x, y = data()
    with pytest.raises(ValueError, match=re.escape("one-hot (batch, 4). Received: shape=(8, 3)")):
        distiller.fit(x, np.eye(3, dtype="float32")[y], batch_size=4, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=re.escape("The student and the labeler must predict "
                                                   "the same classes")):
        TGTDistiller(student, labeler4, generator)


# --- replicas ---------------------------------------------------------------------------------


@pytest.fixture
def mirrored():
    return mirrored_cpus()


@pytest.mark.parametrize(
    "make_data, message",
    [
        (lambda x, y: (dataset(x, y, batch=7), None),
         "The global batch size must be divisible by the number of replicas (2) so that each "
         "replica gets the same share. Received: batch size 7"),
        (lambda x, y: (tf.data.Dataset.from_tensor_slices((x, y)).batch(7, drop_remainder=True),
                       None),
         "The global batch size must be divisible by the number of replicas (2) so that each "
         "replica gets the same share. Received: batch size 7"),
        (lambda x, y: (x, y),
         "`batch_size` must be divisible by the number of replicas (2). Received: batch_size=7"),
    ],
    ids=["dataset", "dataset_drop_remainder", "numpy"],
)
def test_global_batch_not_divisible_by_the_replicas(mirrored, make_data, message):
    with mirrored.scope():
        distiller = TGTDistiller(
            make_classifier(hidden=4, name="student"),
            KerasLabeler(make_classifier(name="teacher"), value_range=(0, 1)),
            KerasGenerator(make_encoder(), make_decoder(), value_range=(-1, 1)),
            seed=0,
        )
        distiller.compile(optimizer="sgd")
    assert distiller.distribute_strategy.num_replicas_in_sync == 2
    x, y = make_data(*data(14))
    with pytest.raises(ValueError, match=re.escape(message)):
        if y is None:
            distiller.fit(x, epochs=1, verbose=0)
        else:
            distiller.fit(x, y, batch_size=7, epochs=1, verbose=0)


def test_divisible_batches_pass_the_replica_check(student_format):
    modality = ImageModality(student_format)
    x, y = data(16)
    for good in (dataset(x, y, batch=8), dataset(x, y, batch=8).prefetch(1)):
        checks.check_fit_data(good, None, modality, NUM_CLASSES, num_replicas=2)
    checks.check_fit_data(x, y, modality, NUM_CLASSES, num_replicas=2, batch_size=8)
    # One replica shares any batch; an unknown batch size (a `map` after `batch`) is left to
    # the step.
    checks.check_fit_data(dataset(x, y, batch=7), None, modality, NUM_CLASSES, 1)
    mapped = dataset(x, y, batch=7).map(lambda a, b: (a, b))
    checks.check_fit_data(mapped, None, modality, NUM_CLASSES, num_replicas=2)
