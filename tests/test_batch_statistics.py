"""Batch-norm students: no synthetic pass when the synthetic term is off, and the two ways
(`batch_statistics`) a batch-norm student can see the real and the synthetic batch."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import IMAGE_SHAPE, NUM_CLASSES, clone, mirrored_cpus

import tgt_keras as tk
from tgt_keras.core.losses import tgt_loss

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too


def bn_student(seed=2):
    """A student with batch normalization (its statistics depend on the whole batch)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(IMAGE_SHAPE), keras.layers.Flatten(), keras.layers.Dense(6),
        keras.layers.BatchNormalization(momentum=0.5), keras.layers.ReLU(),
        keras.layers.Dense(NUM_CLASSES),
    ], name="bn_student")


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(0, 1, (n, *IMAGE_SHAPE)).astype("float32"),
            rng.integers(0, NUM_CLASSES, n).astype("int32"))


def moving_statistics(model):
    return [v.numpy() for v in model.non_trainable_variables]


def max_difference(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b, strict=True))


def test_no_synthetic_term_equals_keras_distiller_for_a_batch_norm_student(labeler, generator):
    x, y = batch()
    temperature, weight = 2.0, 0.3
    keras_student = bn_student()
    reference = keras.distillation.Distiller(
        teacher=labeler.model, student=keras_student,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=temperature, loss=keras.losses.KLDivergence()),
        student_loss_weight=weight)
    reference.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    reference.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    student = bn_student()
    before = [w.copy() for w in student.get_weights()]
    distiller = tk.TGTDistiller(student, labeler, generator, real_loss_weight=weight,
                                real_distillation_weight=1 - weight, synthetic_loss_weight=0.0,
                                temperature=temperature)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    distiller.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    assert max_difference(before, student.get_weights()) > 1e-3  # the step did something
    # Weights and moving statistics: the synthetic images never reached the batch norm.
    for ours, theirs in zip(student.get_weights(), keras_student.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_no_synthetic_term_skips_exploration(student, labeler, generator):
    distiller = tk.TGTDistiller(student, labeler, generator, synthetic_loss_weight=0.0)

    def fail(*args, **kwargs):
        raise AssertionError("explored although the synthetic term is off")

    distiller.explore_batch = fail
    distiller.compile(optimizer="sgd")
    logs = distiller.train_on_batch(*batch(), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert logs["synthetic_loss"] == 0.0 and logs["disagreement_after"] == 0.0


def test_the_synthetic_term_explores(student, labeler, generator):
    # The other side of the test above: with the term on, the replaced method is called.
    distiller = tk.TGTDistiller(student, labeler, generator, synthetic_loss_weight=1.0)
    distiller.explore_batch = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("explored"))
    distiller.compile(optimizer="sgd")
    with pytest.raises(RuntimeError, match="explored"):
        distiller.train_on_batch(*batch(), return_dict=True)


def _step_by_hand(student, distiller, x, y, learning_rate, separate):
    """One SGD step of `tgt_loss` with the real and synthetic logits of the given passes."""
    explored = distiller.explore_batch(x, measure_after=False)  # the noise of step 0
    synthetic = explored.images * 0.5 + 0.5  # generator [-1, 1] -> student [0, 1]
    model = clone(student)
    with tf.GradientTape() as tape:
        if separate:
            kept = moving_statistics(model)
            synthetic_logits = model(synthetic, training=True)
            for variable, value in zip(model.non_trainable_variables, kept, strict=True):
                variable.assign(value)  # the real batch's update only
            real_logits = model(x, training=True)
        else:
            logits = model(tf.concat([x, synthetic], 0), training=True)
            real_logits, synthetic_logits = logits[:len(x)], logits[len(x):]
        loss = tgt_loss(y=y, student_real_logits=real_logits,
                        student_synthetic_logits=synthetic_logits,
                        teacher_synthetic_logits=explored.teacher_logits,
                        synthetic_weight=tf.cast(explored.valid, tf.float32))["total"]
    gradients = tape.gradient(loss, model.trainable_variables)
    for variable, gradient in zip(model.trainable_variables, gradients, strict=True):
        variable.assign_sub(learning_rate * gradient)
    return model


@pytest.mark.parametrize("mode", ["joint", "separate"])
def test_step_equals_the_step_by_hand(labeler, generator, mode):
    x, y = batch()
    student = bn_student()
    distiller = tk.TGTDistiller(student, labeler, generator, num_steps=1, seed=3,
                                batch_statistics=mode)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    expected = _step_by_hand(student, distiller, x, y, 0.5, separate=mode == "separate")
    distiller.train_on_batch(x, y)
    for ours, theirs in zip(student.get_weights(), expected.get_weights(), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_separate_keeps_the_moving_statistics_of_the_real_batch(labeler, generator):
    x, y = batch()
    students = {mode: bn_student() for mode in ("joint", "separate")}
    real_only = bn_student()
    real_only(x, training=True)
    for mode, student in students.items():
        distiller = tk.TGTDistiller(student, labeler, generator, num_steps=1, seed=3,
                                    batch_statistics=mode)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5))
        distiller.train_on_batch(x, y)
    np.testing.assert_allclose(moving_statistics(students["separate"])[0],
                               moving_statistics(real_only)[0], rtol=1e-5, atol=1e-6)
    # Joint mixes the synthetic images into them (so the test above can tell the two apart).
    assert max_difference(moving_statistics(students["joint"]),
                          moving_statistics(real_only)) > 1e-3


def test_joint_and_separate_agree_without_batch_norm(student, labeler, generator):
    x, y = batch()
    students = {mode: clone(student) for mode in ("joint", "separate")}
    for mode, model in students.items():
        distiller = tk.TGTDistiller(model, labeler, generator, num_steps=1, seed=3,
                                    batch_statistics=mode)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5))
        distiller.train_on_batch(x, y)
    assert max_difference(student.get_weights(), students["joint"].get_weights()) > 1e-3
    for a, b in zip(students["joint"].get_weights(), students["separate"].get_weights(),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_separate_keeps_real_moving_statistics_under_mirrored_strategy(labeler, generator):
    x, y = batch(16)
    with mirrored_cpus().scope():
        plain = bn_student()  # Keras's own fit on the real batch: the reference
        plain.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        student = bn_student()
        gen = tk.KerasGenerator(clone(generator.encoder), clone(generator.decoder),
                                value_range=(-1.0, 1.0))
        distiller = tk.TGTDistiller(
            student, tk.KerasLabeler(clone(labeler.model), value_range=(0, 1)), gen,
            num_steps=1, seed=3, batch_statistics="separate")
        distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    plain.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    distiller.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    # However Keras combines the replicas' moving statistics, the synthetic pass left no trace.
    for ours, theirs in zip(moving_statistics(student), moving_statistics(plain), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert max_difference(moving_statistics(student), moving_statistics(bn_student())) > 1e-3


def test_batch_statistics_is_checked_and_serialized(student, labeler, generator):
    with pytest.raises(ValueError, match=r"`batch_statistics` must be one of \('joint', "
                                         r"'separate'\). Received: batch_statistics='split'"):
        tk.TGTDistiller(student, labeler, generator, batch_statistics="split")
    distiller = tk.TGTDistiller(student, labeler, generator, batch_statistics="separate")
    config = distiller.get_config()
    assert config["batch_statistics"] == "separate"
    assert tk.TGTDistiller.from_config(config).batch_statistics == "separate"
