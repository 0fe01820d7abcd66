"""With the synthetic term off, a TGT step is exactly a `keras.distillation.Distiller` step.

This is what lets the demo use Keras's Distiller as the KD reference row.
"""

import keras
import numpy as np
import pytest

import tgt_keras as tk

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too


def _net(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
    )


def _generator():
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(4)])
    decoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, activation="tanh"),
                                keras.layers.Reshape((8, 8, 1))])
    return tk.KerasGenerator(encoder, decoder, value_range=(-1, 1))


def test_one_step_matches_keras_distiller():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 8)
    teacher = _net(1)
    temperature, weight = 2.0, 0.3

    keras_student = _net(2)
    reference = keras.distillation.Distiller(
        teacher=teacher,
        student=keras_student,
        distillation_losses=keras.distillation.LogitsDistillation(
            temperature=temperature, loss=keras.losses.KLDivergence()
        ),
        student_loss_weight=weight,
    )
    reference.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    reference.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    tgt_student = _net(2)
    distiller = tk.TGTDistiller(
        tgt_student, tk.KerasLabeler(teacher, value_range=(0, 1)), _generator(),
        real_loss_weight=weight, real_distillation_weight=1 - weight,
        synthetic_loss_weight=0.0, temperature=temperature,
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    distiller.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    before = _net(2).get_weights()
    moved = max(np.abs(a - b).max() for a, b in zip(before, tgt_student.get_weights(), strict=True))
    assert moved > 1e-3  # the step did something
    pairs = zip(tgt_student.get_weights(), keras_student.get_weights(), strict=True)
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_integer_one_hot_labels_equal_class_indices():
    from tgt_keras.core.losses import label_loss

    logits = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]], "float32")
    one_hot = np.array([[1, 0, 0], [0, 0, 1]], "int64")
    np.testing.assert_allclose(
        float(label_loss(one_hot, logits)), float(label_loss(np.array([0, 2]), logits)), rtol=1e-6
    )
