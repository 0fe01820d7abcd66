"""The step's savings: precomputed teacher outputs, the reused student pass, mixed precision."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import LATENT_DIM, NUM_CLASSES, clone

from tgt_keras import TGTDistiller
from tgt_keras.core import checks
from tgt_keras.core.exploration import explore
from tgt_keras.core.losses import kl_divergence

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too


def make(student, labeler, generator, **kwargs):
    kwargs = {"num_steps": 2, "real_distillation_weight": 0.5, "seed": 3, **kwargs}
    distiller = TGTDistiller(student, labeler, generator, **kwargs)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    return distiller


def ordered(x, y, cached=None):
    """The same batches in the same order, as images or as the precomputed dict."""
    first = x if cached is None else cached
    return tf.data.Dataset.from_tensor_slices((first, y)).batch(8)


# --- precompute ----------------------------------------------------------------------------------


def test_precompute_holds_the_encoder_and_teacher_outputs(student, labeler, generator,
                                                          tiny_data):
    x, _ = tiny_data
    cached = make(student, labeler, generator).precompute(x, batch_size=5)
    assert sorted(cached) == ["images", "latents", "teacher_logits"]
    np.testing.assert_array_equal(cached["images"], x)
    # The student's [0, 1] images are the generator's [-1, 1] and the labeler's [0, 1].
    np.testing.assert_allclose(cached["latents"], generator.encoder(2 * x - 1), atol=1e-6)
    np.testing.assert_allclose(cached["teacher_logits"], labeler.model(x), atol=1e-6)


def test_precompute_without_the_synthetic_term_caches_only_the_teacher(student, labeler,
                                                                      generator, tiny_data):
    # Plain distillation with the teacher's logits cached once (the fair KD baseline of
    # benchmarks/equal_compute.py): nothing is explored, so nothing is encoded.
    x, y = tiny_data
    kd = make(clone(student), labeler, generator, synthetic_loss_weight=0.0)
    kd._encode = lambda images: (_ for _ in ()).throw(AssertionError("encoder called"))
    cached = kd.precompute(x)
    assert sorted(cached) == ["images", "teacher_logits"]
    np.testing.assert_allclose(cached["teacher_logits"], labeler.model(x), atol=1e-6)
    reference = make(clone(student), labeler, generator, synthetic_loss_weight=0.0)
    kd.fit(ordered(x, y, cached), epochs=2, verbose=0)
    reference.fit(ordered(x, y), epochs=2, verbose=0)
    for a, b in zip(kd.student.get_weights(), reference.student.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_training_on_precomputed_inputs_equals_training_on_images(student, labeler, generator,
                                                                  tiny_data):
    x, y = tiny_data
    plain = make(student, labeler, generator)
    fast = make(clone(student), labeler, generator)
    cached = fast.precompute(x)
    # A precomputed step must not run the encoder or the labeler on real data: make both fail.
    # (The labeler still labels the synthetic batch, so only its real-data call is replaced.)
    fast._encode = lambda images: (_ for _ in ()).throw(AssertionError("encoder called"))
    on_real = fast._teacher_on_real

    def given_only(images, teacher_real=None):
        assert teacher_real is not None, "the labeler ran on real data"
        return on_real(images, teacher_real)

    fast._teacher_on_real = given_only
    plain_logs = plain.fit(ordered(x, y), epochs=2, verbose=0).history
    fast_logs = fast.fit(ordered(x, y, cached), epochs=2, verbose=0).history
    for got, want in zip(fast.student.get_weights(), plain.student.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)
    for name in ("loss", "real_distillation_loss", "synthetic_loss", "disagreement_after"):
        np.testing.assert_allclose(fast_logs[name], plain_logs[name], rtol=1e-4)


def test_a_cached_nan_teacher_is_dropped_as_without_the_cache(student, generator, tiny_data):
    """The cache keeps non-finite teacher logits, so the step still drops those examples from
    the real distillation term (zeroed logits with weight 1 would train towards uniform)."""
    from test_numerical_safety import corrupting_labeler

    x, y = tiny_data
    labeler = corrupting_labeler(nan_above=float(np.median(x.mean(axis=(1, 2, 3)))))
    plain = make(student, labeler, generator, exploration="random")
    fast = make(clone(student), labeler, generator, exploration="random")
    cached = fast.precompute(x)
    assert np.isnan(cached["teacher_logits"]).any(axis=1).sum() == 8
    plain_logs = plain.fit(ordered(x, y), epochs=1, verbose=0).history
    fast_logs = fast.fit(ordered(x, y, cached), epochs=1, verbose=0).history
    np.testing.assert_allclose(fast_logs["real_distillation_loss"],
                               plain_logs["real_distillation_loss"], rtol=1e-5)
    for got, want in zip(fast.student.get_weights(), plain.student.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_precomputed_arrays_work_with_fit_and_evaluate(student, labeler, generator, tiny_data):
    x, y = tiny_data
    distiller = make(student, labeler, generator)
    cached = distiller.precompute(x)
    distiller.fit(cached, y, batch_size=8, epochs=1, verbose=0)
    loss = distiller.evaluate(cached, y, batch_size=8, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(
        distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)["loss"])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: {**c, "labels": c["latents"]},
         "A dict `x` must have the key 'images' and may have 'latents' and 'teacher_logits' "
         "(see `TGTDistiller.precompute`). Received: keys=['images', 'labels', 'latents', "
         "'teacher_logits']"),
        (lambda c: {"latents": c["latents"]},
         "A dict `x` must have the key 'images'"),
        (lambda c: {**c, "latents": c["latents"][:, :2]},
         f"`x['latents']` must have shape (batch, {LATENT_DIM}) (the generator's latent_dim). "
         "Received: shape=(16, 2)"),
        (lambda c: {**c, "teacher_logits": c["teacher_logits"][:, None]},
         f"`x['teacher_logits']` must have shape (batch, {NUM_CLASSES}) (the labeler's "
         "num_classes). Received: shape=(16, 1, 3)"),
        (lambda c: {**c, "latents": c["latents"][:4]},
         "`x['latents']` must have one row per image. Received: len(x['latents'])=4, "
         "len(x['images'])=16"),
    ],
)
def test_bad_precomputed_inputs_are_named(student, labeler, generator, tiny_data, change,
                                          message):
    x, y = tiny_data
    distiller = make(student, labeler, generator)
    bad = change(distiller.precompute(x))
    with pytest.raises(ValueError, match=re.escape(message)):
        distiller.fit(bad, y, batch_size=8, verbose=0)
    if len(bad.get("latents", x)) == len(x):  # same-length dicts also fail as a dataset
        with pytest.raises(ValueError, match=re.escape(message.split(" Received")[0])):
            distiller.fit(ordered(x, y, bad), verbose=0)


def test_precompute_rejects_a_bad_batch_size(student, labeler, generator, tiny_data):
    with pytest.raises(ValueError, match=re.escape(
            "`batch_size` must be a positive integer. Received: batch_size=0")):
        make(student, labeler, generator).precompute(tiny_data[0], batch_size=0)


def test_split_inputs_passes_plain_images_through():
    images = tf.zeros([2, 8, 8, 1])
    assert checks.split_inputs(images) == (images, None, None)


# --- the reused student pass ---------------------------------------------------------------------


def test_a_step_runs_the_student_once_outside_exploration(student, labeler, generator,
                                                          tiny_data):
    """Random mode: one student call per step (the training pass); `disagreement_after` is
    measured on it and equals an inference-mode measurement (no dropout or BN here)."""
    calls = []
    original = student.call

    def counting_call(*args, **kwargs):
        calls.append(kwargs.get("training"))
        return original(*args, **kwargs)

    student.call = counting_call
    distiller = make(student, labeler, generator, exploration="random", seed=0)
    x, y = tiny_data
    explored = distiller.explore_batch(x[:8])  # step 0's noise, measured before the update
    expected = float(tf.reduce_mean(explored.disagreement_after))
    calls.clear()
    logs = distiller.train_on_batch(x[:8], y[:8], return_dict=True)
    assert calls == [True]  # traced once: the training pass on real + synthetic
    assert logs["disagreement_after"] == pytest.approx(expected, rel=1e-5)
    assert logs["disagreement_before"] == pytest.approx(expected, rel=1e-5)


# --- mixed precision ----------------------------------------------------------------------------


@pytest.fixture
def policy():
    yield keras.mixed_precision.set_dtype_policy
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("name, optimizer, scale", [
    ("mixed_bfloat16", "SGD", 1.0),
    ("mixed_float16", "LossScaleOptimizer", 1024.0),
])
def test_mixed_precision_students_train(policy, labeler, generator, tiny_data, name, optimizer,
                                        scale):
    policy(name)
    student = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.Flatten(), keras.layers.Dense(NUM_CLASSES, dtype="float32")])
    distiller = make(student, labeler, generator)
    policy("float32")
    assert type(distiller.optimizer).__name__ == optimizer
    assert distiller._exploration_loss_scale() == scale
    teacher = [w.copy() for w in labeler.model.get_weights()]
    before = [w.copy() for w in student.get_weights()]
    x, y = tiny_data
    logs = distiller.fit(x, y, batch_size=8, epochs=2, verbose=0).history
    assert all(np.isfinite(v).all() for v in logs.values())
    assert logs["rejected_steps"] == [0.0, 0.0]
    assert all(w.dtype == np.float32 for w in student.get_weights())
    assert not any(np.allclose(a, b) for a, b in zip(before, student.get_weights(), strict=True))
    for got, want in zip(labeler.model.get_weights(), teacher, strict=True):
        np.testing.assert_array_equal(got, want)


def test_the_exploration_loss_scale_keeps_a_float16_students_gradient():
    """A float16 student whose backward signal is below float16's range: without the scale
    its share of the latent gradient underflows to 0; with it the step follows float32's."""
    rng = np.random.default_rng(0)
    a = tf.constant(rng.normal(size=(4, 6)) * 1e-4, tf.float32)
    b = tf.constant(rng.normal(size=(6, 3)) * 1e-4, tf.float32)
    teacher = tf.constant([[3.0, 0.0, -3.0]])  # constant: all the gradient is the student's

    def student(dtype):
        return lambda z: tf.cast(tf.cast(z, dtype) @ tf.cast(a, dtype) @ tf.cast(b, dtype),
                                 tf.float32)

    z = tf.constant(rng.normal(size=(5, 4)), tf.float32)

    def step(dtype, loss_scale):
        out = explore(z, tf.zeros_like(z), decode=tf.identity,
                      teacher_logits=lambda images: tf.tile(teacher, [5, 1]),
                      student_logits=student(dtype), sigma=0.0, step_size=1.0, num_steps=1,
                      loss_scale=loss_scale)
        return (out.latents - z).numpy()

    reference = step(tf.float32, 1.0)
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, rtol=1e-3)  # a unit step
    np.testing.assert_array_equal(step(tf.float16, 1.0), 0.0)  # underflow: no move
    scaled = step(tf.float16, 1024.0)
    cosine = np.sum(scaled * reference, 1) / np.linalg.norm(scaled, axis=1)
    assert cosine.min() > 0.99


def test_kl_divergence_of_float16_logits_is_float32():
    out = kl_divergence(tf.zeros([2, 3], tf.float16), tf.ones([2, 3], tf.float16))
    assert out.dtype == tf.float32
