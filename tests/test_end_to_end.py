"""One short TGT run on real data: scikit-learn's 8x8 digits (1,797 images, 10 classes).

A teacher labeler and an autoencoder generator are trained on 1,200 images; the student then
gets only 50 labelled images (5 per class) plus TGT's synthetic examples, and is scored on the
597 held-out images. Calibration (CPU, seeds 0-5): teacher ~0.93-0.95, student 0.86-0.89
(a linear student on the 50 images alone reaches ~0.84); chance is 0.10. Runtime ~15 s.
"""

import keras
import numpy as np
import pytest

from tgt_keras import KerasGenerator, KerasLabeler, TGTDistiller

CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype("float32")[..., None]  # 0..16 -> [0, 1]
    y = data.target.astype("int32")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:1200], y[:1200]), (x[1200:], y[1200:])


@pytest.mark.slow
@pytest.mark.compat  # the one end-to-end fit CI also runs on the oldest supported TF
def test_tgt_on_digits_with_fifty_labels(digits):
    (x_train, y_train), (x_test, y_test) = digits

    teacher = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    teacher.compile(optimizer="adam", loss=CE, metrics=["accuracy"])
    teacher.fit(x_train, y_train, epochs=12, batch_size=64, verbose=0)
    teacher_accuracy = teacher.evaluate(x_test, y_test, verbose=0)[1]
    assert teacher_accuracy > 0.85

    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(8),
        ]
    )
    decoder = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="tanh"),
            keras.layers.Reshape((8, 8, 1)),
        ]
    )
    autoencoder = keras.Sequential([encoder, decoder])
    autoencoder.compile(optimizer="adam", loss="mse")
    signed = 2.0 * x_train - 1.0  # the generator works in [-1, 1]
    mse = autoencoder.fit(signed, signed, epochs=25, batch_size=64, verbose=0).history["loss"]
    assert mse[-1] < 0.5 * mse[0]

    generator = KerasGenerator(encoder, decoder, value_range=(-1.0, 1.0))
    labeler = KerasLabeler(teacher, value_range=(0.0, 1.0))
    few = np.concatenate([np.flatnonzero(y_train == c)[:5] for c in range(10)])
    student = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
    )
    distiller = TGTDistiller(
        student,
        labeler,
        generator,
        exploration="gradient",
        sigma=0.5,
        step_size=0.5,
        num_steps=1,
        synthetic_per_real=4,
        seed=0,
    )
    distiller.compile(optimizer=keras.optimizers.Adam(0.01), metrics=["accuracy"])
    history = distiller.fit(x_train[few], y_train[few], epochs=30, batch_size=10, verbose=0)
    logs = {name: values[-1] for name, values in history.history.items()}

    assert logs["rejected_steps"] == 0
    assert logs["synthetic_agreement"] > 0.8
    assert logs["disagreement_after"] > logs["disagreement_before"]
    assert history.history["synthetic_loss"][-1] < history.history["synthetic_loss"][0]
    results = distiller.evaluate(x_test, y_test, verbose=0, return_dict=True)
    assert results["accuracy"] > 0.75, results
