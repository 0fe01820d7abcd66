"""TGTDistiller: validation, frozen teachers, serialization, metrics and the exact update math."""

import re
import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import clone, make_classifier, make_decoder

from tgt_keras import (
    METRIC_NAMES,
    ImageFormat,
    KerasGenerator,
    KerasLabeler,
    TGTDistiller,
)

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0, 1, (n, 8, 8, 1)).astype("float32"),
        rng.integers(0, 3, n).astype("int32"),
    )


def sgd_update(model, loss_fn, learning_rate):
    """One manual SGD step `w <- w - lr * dL/dw`; returns the new weights."""
    with tf.GradientTape() as tape:
        loss = loss_fn()
    grads = tape.gradient(loss, model.trainable_variables)
    return [
        (v - learning_rate * g).numpy()
        for v, g in zip(model.trainable_variables, grads, strict=True)
    ]


def kd_loss(teacher_logits, student_logits, temperature):
    """Hand-written T^2 * mean KL(softmax(t/T) || softmax(s/T))."""
    p = tf.nn.softmax(teacher_logits / temperature)
    log_q = tf.nn.log_softmax(student_logits / temperature)
    kl = tf.reduce_sum(p * (tf.math.log(p) - log_q), axis=-1)
    return temperature**2 * tf.reduce_mean(kl)


def assert_weights_close(model, expected, atol=1e-6):
    for got, want in zip(model.trainable_variables, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, atol=atol)


# --- constructor validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(sigma=-1), ValueError, "`sigma` must be >= 0. Received: sigma=-1"),
        (dict(step_size=-0.5), ValueError, "`step_size` must be >= 0. Received: step_size=-0.5"),
        (
            dict(num_steps=1.5),
            TypeError,
            "`num_steps` must be an integer. Received: num_steps=1.5 of type float",
        ),
        (dict(num_steps=-1), ValueError, "`num_steps` must be >= 0. Received: num_steps=-1"),
        (
            dict(exploration="adversarial"),
            ValueError,
            "`exploration` must be one of ('random', 'gradient'). "
            "Received: exploration='adversarial'",
        ),
        (dict(temperature=0), ValueError, "`temperature` must be > 0. Received: temperature=0"),
        (
            dict(synthetic_per_real=0),
            ValueError,
            "`synthetic_per_real` must be >= 1. Received: synthetic_per_real=0",
        ),
        (dict(synthetic_per_real=2.0), TypeError, "`synthetic_per_real` must be an integer"),
        (
            dict(sigma="0.5"),
            TypeError,
            "`sigma` must be a number. Received: sigma='0.5' of type str",
        ),
        (dict(sigma=True), TypeError, "`sigma` must be a number"),
        (dict(real_loss_weight=-1.0), ValueError, "`real_loss_weight` must be >= 0"),
        (
            dict(real_distillation_weight=-1.0),
            ValueError,
            "`real_distillation_weight` must be >= 0",
        ),
        (dict(synthetic_loss_weight=-1.0), ValueError, "`synthetic_loss_weight` must be >= 0"),
        (dict(normalize_gradient=1), TypeError, "`normalize_gradient` must be a bool"),
        (
            dict(input_format=ImageFormat(16, 16, 1)),
            ValueError,
            "`input_format` must match the student's input shape (8, 8, 1). "
            "Received: input_format.shape=(16, 16, 1)",
        ),
    ],
)
def test_constructor_validation(student, labeler, generator, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        TGTDistiller(student, labeler, generator, **kwargs)


def test_labeler_and_student_class_counts_must_agree(labeler, generator):
    four_classes = make_classifier(num_classes=4, name="student4")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The student and the labeler must predict the same classes: the labeler has "
            "num_classes=3, the student returns 4"
        ),
    ):
        TGTDistiller(four_classes, labeler, generator)


def test_generator_must_be_an_adapter(student, labeler, generator):
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`generator` must be a `Generator` adapter. Wrap an (encoder, decoder) pair with "
            "`KerasGenerator(encoder, decoder, value_range=...)`"
        ),
    ):
        TGTDistiller(student, labeler, (generator.encoder, generator.decoder))
    with pytest.raises(
        TypeError,
        match=r"`generator` must be a `Generator` adapter\. Received: "
        r"generator=.* of type Sequential\. Use `HubGenerator`",
    ):
        TGTDistiller(student, labeler, generator.decoder)


def test_labeler_must_be_an_adapter(student, labeler, generator):
    with pytest.raises(
        TypeError,
        match=re.escape(
            "`labeler` must be a `Labeler` adapter. Wrap the Keras model with "
            "`KerasLabeler(model, value_range=...)`"
        ),
    ):
        TGTDistiller(student, labeler.model, generator)
    with pytest.raises(
        TypeError,
        match=r"`labeler` must be a `Labeler` adapter \(`KerasLabeler` "
        r"or `HubLabeler`\)\. Received: labeler='teacher'",
    ):
        TGTDistiller(student, "teacher", generator)


def test_student_must_be_a_keras_model(labeler, generator):
    with pytest.raises(TypeError, match="`student` must be a Keras model"):
        TGTDistiller(lambda x: x, labeler, generator)


def test_defaults(student, labeler, generator):
    distiller = TGTDistiller(student, labeler, generator)
    assert distiller.exploration == "gradient"
    assert (distiller.sigma, distiller.step_size, distiller.num_steps) == (0.5, 1.0, 3)
    assert (
        distiller.real_loss_weight,
        distiller.real_distillation_weight,
        distiller.synthetic_loss_weight,
    ) == (1.0, 0.0, 1.0)
    assert distiller.temperature == 1.0 and distiller.synthetic_per_real == 1
    assert distiller.input_format == ImageFormat(8, 8, 1, (0.0, 1.0))


# --- frozen teachers --------------------------------------------------------------------------


def test_teachers_stay_frozen_while_the_student_learns(student, tiny_data):
    # BatchNorm and Dropout inside the teachers would change or randomise them if they ran in
    # training mode.
    teacher = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3),
        ]
    )
    encoder = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(4),
        ]
    )
    labeler = KerasLabeler(teacher, value_range=(0, 1))
    generator = KerasGenerator(encoder, make_decoder(), value_range=(-1, 1))
    teacher_models = (teacher, encoder, generator.decoder)
    before = [[w.copy() for w in m.get_weights()] for m in teacher_models]
    student_before = [w.copy() for w in student.get_weights()]
    distiller = TGTDistiller(student, labeler, generator, real_distillation_weight=0.5, seed=0)
    distiller.compile(optimizer=keras.optimizers.Adam(0.01))
    assert {id(v) for v in distiller.trainable_variables} == {
        id(v) for v in student.trainable_variables
    }
    distiller.fit(*tiny_data, batch_size=8, epochs=2, verbose=0)
    for model, weights in zip(teacher_models, before, strict=True):
        assert model.trainable is False
        for b, a in zip(weights, model.get_weights(), strict=True):
            np.testing.assert_array_equal(b, a)
    for b, a in zip(student_before, student.get_weights(), strict=True):
        assert not np.array_equal(b, a)


# --- the update math --------------------------------------------------------------------------


def test_real_loss_only_step_equals_plain_student_step(student, labeler, generator):
    reference = clone(student)
    distiller = TGTDistiller(
        student,
        labeler,
        generator,
        real_loss_weight=1.0,
        real_distillation_weight=0.0,
        synthetic_loss_weight=0.0,
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = batch(8)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = sgd_update(reference, lambda: ce(y, reference(x, training=True)), 0.5)
    expected_loss = float(ce(y, reference(x)))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["real_loss"], expected_loss, rtol=1e-5)
    assert_weights_close(student, expected)
    assert not np.allclose(student.get_weights()[0], reference.get_weights()[0])


def test_sample_weight_reaches_the_real_loss(student, labeler, generator):
    reference = clone(student)
    distiller = TGTDistiller(student, labeler, generator, synthetic_loss_weight=0.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = batch(8)
    w = np.array([1, 0, 2, 0, 1, 3, 0, 1], "float32")
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = sgd_update(reference, lambda: ce(y, reference(x), sample_weight=w), 0.5)
    distiller.fit(x, y, sample_weight=w, batch_size=8, epochs=1, verbose=0)
    assert_weights_close(student, expected)


def test_real_distillation_only_step_equals_manual_kd_step(student, labeler, generator):
    reference = clone(student)
    distiller = TGTDistiller(
        student,
        labeler,
        generator,
        real_loss_weight=0.0,
        real_distillation_weight=1.0,
        synthetic_loss_weight=0.0,
        temperature=2.0,
    )
    distiller.compile(optimizer=keras.optimizers.SGD(1.0))
    x, y = batch(8)
    teacher = labeler.model(x)  # student and labeler share the (8, 8, 1) [0, 1] format
    expected = sgd_update(reference, lambda: kd_loss(teacher, reference(x), 2.0), 1.0)
    expected_loss = float(kd_loss(teacher, reference(x), 2.0))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["real_distillation_loss"], expected_loss, rtol=1e-5)
    np.testing.assert_allclose(logs["loss"], expected_loss, rtol=1e-5)
    assert_weights_close(student, expected)
    assert not np.allclose(student.get_weights()[0], reference.get_weights()[0])


def test_synthetic_only_step_equals_manual_step_on_reconstructions(student, labeler, generator):
    # sigma = 0 and no ascent: the synthetic batch is Dec(Enc(x)), converted between formats.
    reference = clone(student)
    distiller = TGTDistiller(
        student,
        labeler,
        generator,
        exploration="random",
        sigma=0.0,
        real_loss_weight=0.0,
        synthetic_loss_weight=1.0,
        temperature=1.5,
    )
    distiller.compile(optimizer=keras.optimizers.SGD(1.0))
    x, y = batch(8)
    decoded = generator.decoder(generator.encoder(2.0 * x - 1.0))  # [0,1] -> [-1,1] and back
    synthetic = (decoded + 1.0) / 2.0
    teacher = labeler.model(synthetic)
    expected = sgd_update(reference, lambda: kd_loss(teacher, reference(synthetic), 1.5), 1.0)
    expected_loss = float(kd_loss(teacher, reference(synthetic), 1.5))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["synthetic_loss"], expected_loss, rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], expected_loss, rtol=1e-4)
    assert logs["real_loss"] > 0  # computed and logged even with weight 0
    assert_weights_close(student, expected, atol=1e-5)


def test_total_loss_is_the_weighted_sum(student, labeler, generator):
    distiller = TGTDistiller(
        student,
        labeler,
        generator,
        real_loss_weight=0.5,
        real_distillation_weight=0.25,
        synthetic_loss_weight=2.0,
        temperature=3.0,
        num_steps=1,
    )
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = batch(8)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    real = float(ce(y, student(x)))
    real_kd = float(kd_loss(labeler.model(x), student(x), 3.0))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["real_loss"], real, rtol=1e-5)
    np.testing.assert_allclose(logs["real_distillation_loss"], real_kd, rtol=1e-5)
    np.testing.assert_allclose(
        logs["loss"], 0.5 * real + 0.25 * real_kd + 2.0 * logs["synthetic_loss"], rtol=1e-5
    )


# --- what the student sees: noise, synthetic_per_real, seed -----------------------------------


class Recorder(keras.layers.Layer):
    """Identity layer that keeps a copy of its training-mode inputs (run eagerly)."""

    def __init__(self, sink, **kwargs):
        super().__init__(**kwargs)
        self.sink = sink

    def call(self, x, training=None):
        if training:
            self.sink.batches.append(keras.ops.convert_to_numpy(x))
        return x


def identity_generator():
    """Latents are the pixels in [-1, 1]: z' - z is exactly the exploration's offset."""
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten()])
    decoder = keras.Sequential([keras.Input((64,)), keras.layers.Reshape((8, 8, 1))])
    return KerasGenerator(encoder, decoder, value_range=(-1, 1), validate=False)


def recording_student(sink):
    return keras.Sequential(
        [keras.Input((8, 8, 1)), Recorder(sink), keras.layers.Flatten(), keras.layers.Dense(3)]
    )


@pytest.mark.parametrize("synthetic_per_real", [1, 2])
def test_student_sees_real_then_synthetic_with_noise_sigma(labeler, synthetic_per_real):
    sink = types.SimpleNamespace(batches=[])
    distiller = TGTDistiller(
        recording_student(sink),
        labeler,
        identity_generator(),
        exploration="random",
        sigma=0.2,
        synthetic_per_real=synthetic_per_real,
        seed=1,
    )
    distiller.compile(optimizer="sgd", run_eagerly=True)
    x, y = batch(16)
    distiller.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    assert len(sink.batches) == 2
    first, second = sink.batches
    assert first.shape == (16 * (1 + synthetic_per_real), 8, 8, 1)
    np.testing.assert_array_equal(first[:16], x)
    # Student pixels are (gen + 1) / 2, so the latent offset is 2 * (synthetic - x).
    offset = 2.0 * (first[16:] - np.repeat(x, synthetic_per_real, axis=0))
    assert abs(offset.std() - 0.2) < 0.02
    assert abs(offset.mean()) < 0.02
    # Fresh noise at each step.
    assert not np.allclose(first[16:], second[16:])


def test_sigma_zero_random_exploration_reconstructs_the_batch(labeler):
    sink = types.SimpleNamespace(batches=[])
    distiller = TGTDistiller(
        recording_student(sink),
        labeler,
        identity_generator(),
        exploration="random",
        sigma=0.0,
        synthetic_per_real=3,
    )
    distiller.compile(optimizer="sgd", run_eagerly=True)
    x, y = batch(4)
    distiller.train_on_batch(x, y)
    np.testing.assert_allclose(sink.batches[0][4:], np.repeat(x, 3, axis=0), atol=1e-6)


def test_seed_makes_training_reproducible(student, labeler, generator, tiny_data):
    def train(seed):
        model = clone(student)
        distiller = TGTDistiller(model, labeler, generator, sigma=1.0, num_steps=1, seed=seed)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5), run_eagerly=True)
        distiller.train_on_batch(*tiny_data)
        distiller.train_on_batch(*tiny_data)
        return model.get_weights()[0]

    np.testing.assert_array_equal(train(3), train(3))
    assert not np.allclose(train(3), train(4))


def test_explore_batch_with_a_seed_is_fixed_and_leaves_training_noise_alone(labeler):
    def distiller():
        return TGTDistiller(make_classifier(hidden=4), labeler, identity_generator(),
                            exploration="random", sigma=1.0, seed=5)

    x, _ = batch(4)
    looked_at, untouched = distiller(), distiller()
    fixed = looked_at.explore_batch(x, seed=11).images.numpy()
    np.testing.assert_array_equal(fixed, looked_at.explore_batch(x, seed=11).images.numpy())
    assert not np.allclose(fixed, looked_at.explore_batch(x, seed=12).images.numpy())
    # The seeded calls did not advance the distiller's own noise: its next draw is the first
    # draw of an identical distiller that was never looked at.
    np.testing.assert_array_equal(looked_at.explore_batch(x).images.numpy(),
                                  untouched.explore_batch(x).images.numpy())


# --- Keras API: metrics, jit, evaluate, predict, save -----------------------------------------


def test_fit_returns_the_stable_metric_names_plus_compiled_ones(
    student, labeler, generator, tiny_data
):
    distiller = TGTDistiller(student, labeler, generator)
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    history = distiller.fit(
        *tiny_data, batch_size=8, epochs=2, verbose=0, validation_data=batch(8, seed=1)
    )
    assert set(history.history) == set(METRIC_NAMES) | {
        "accuracy",
        "val_loss",
        "val_real_loss",
        "val_accuracy",
    }
    assert all(len(v) == 2 and np.all(np.isfinite(v)) for v in history.history.values())
    assert 0.0 <= history.history["synthetic_agreement"][-1] <= 1.0
    assert history.history["rejected_steps"] == [0.0, 0.0]


def test_metric_names_are_stable():
    assert METRIC_NAMES == (
        "loss",
        "real_loss",
        "real_distillation_loss",
        "synthetic_loss",
        "synthetic_agreement",
        "disagreement_before",
        "disagreement_after",
        "rejected_steps",
        "dropped_synthetic",
    )


def test_evaluate_returns_loss_real_loss_accuracy(student, labeler, generator):
    distiller = TGTDistiller(student, labeler, generator)
    distiller.compile(optimizer="adam", metrics=["accuracy"])
    x, y = batch(16, seed=5)
    results = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert set(results) == {"loss", "real_loss", "accuracy"}
    logits = student(x).numpy()
    ce = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits))
    np.testing.assert_allclose(results["loss"], ce, rtol=1e-5)
    np.testing.assert_allclose(results["real_loss"], ce, rtol=1e-5)
    np.testing.assert_allclose(results["accuracy"], np.mean(logits.argmax(-1) == y), atol=1e-6)


def test_evaluate_weights_the_real_loss(student, labeler, generator):
    distiller = TGTDistiller(student, labeler, generator, real_loss_weight=0.5)
    distiller.compile(optimizer="adam")
    x, y = batch(8)
    results = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], 0.5 * results["real_loss"], rtol=1e-6)


def test_predict_is_the_student(student, labeler, generator):
    distiller = TGTDistiller(student, labeler, generator)
    x, _ = batch(8)
    np.testing.assert_allclose(distiller.predict(x, verbose=0), student(x).numpy(), rtol=1e-6)


def test_jit_compiled_fit_matches_graph_fit(student, labeler, generator, tiny_data):
    # sigma = 0 keeps the step deterministic: the stateless RNG draws different noise under XLA.
    def train(jit):
        model = clone(student)
        distiller = TGTDistiller(
            model,
            labeler,
            generator,
            sigma=0.0,
            num_steps=2,
            synthetic_per_real=2,
            real_distillation_weight=0.5,
        )
        distiller.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=jit)
        history = distiller.fit(*tiny_data, batch_size=8, epochs=1, verbose=0, shuffle=False)
        return model.get_weights(), history.history

    (jit_weights, jit_logs), (weights, logs) = train(True), train(False)
    assert set(jit_logs) == set(METRIC_NAMES)
    for a, b in zip(jit_weights, weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(jit_logs[name], logs[name], rtol=1e-4, atol=1e-6)


def test_jit_compiled_fit_with_noise(student, labeler, generator, tiny_data):
    distiller = TGTDistiller(student, labeler, generator, sigma=0.5, num_steps=1, seed=0)
    distiller.compile(optimizer="adam", jit_compile=True, metrics=["accuracy"])
    history = distiller.fit(*tiny_data, batch_size=8, epochs=1, verbose=0)
    assert set(history.history) == set(METRIC_NAMES) | {"accuracy"}
    assert all(np.all(np.isfinite(v)) for v in history.history.values())
    assert history.history["rejected_steps"] == [0.0]
    assert history.history["synthetic_loss"][0] > 0


def test_synthetic_per_real_two_trains(student, labeler, generator, tiny_data):
    distiller = TGTDistiller(student, labeler, generator, synthetic_per_real=2, num_steps=1)
    distiller.compile(optimizer="adam")
    history = distiller.fit(*tiny_data, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["synthetic_loss"][0])
    assert history.history["synthetic_loss"][0] > 0


def test_student_save_and_load(student, labeler, generator, tiny_data, tmp_path):
    distiller = TGTDistiller(student, labeler, generator)
    distiller.compile(optimizer="adam")
    distiller.fit(*tiny_data, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "s.keras"
    distiller.student.save(path)
    loaded = keras.models.load_model(path)
    x, _ = batch(8, seed=9)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), student.predict(x, verbose=0), rtol=1e-6
    )


# --- serialization ----------------------------------------------------------------------------


HYPER_PARAMETERS = dict(
    exploration="random",
    sigma=0.25,
    step_size=0.5,
    num_steps=2,
    normalize_gradient=False,
    real_loss_weight=0.75,
    real_distillation_weight=0.5,
    synthetic_loss_weight=1.5,
    temperature=2.0,
    synthetic_per_real=2,
    seed=7,
)


def test_get_config_from_config_round_trip(student, labeler, generator, tiny_data):
    distiller = TGTDistiller(student, labeler, generator, name="my_tgt", **HYPER_PARAMETERS)
    config = distiller.get_config()
    for key, value in HYPER_PARAMETERS.items():
        assert config[key] == value, key
    rebuilt = TGTDistiller.from_config(config)
    assert rebuilt.name == "my_tgt"
    for key, value in HYPER_PARAMETERS.items():
        assert getattr(rebuilt, key) == value, key
    assert rebuilt.input_format == distiller.input_format
    assert isinstance(rebuilt.labeler, KerasLabeler)
    assert isinstance(rebuilt.generator, KerasGenerator)
    assert rebuilt.labeler.input_format == labeler.input_format
    assert rebuilt.generator.output_format == generator.output_format
    assert rebuilt.get_config() == config
    rebuilt.compile(optimizer="adam")
    history = rebuilt.fit(*tiny_data, batch_size=8, epochs=1, verbose=0)
    assert all(np.isfinite(v[0]) for v in history.history.values())


def test_saved_distiller_keeps_the_teacher_weights(
    student, labeler, generator, tiny_data, tmp_path
):
    distiller = TGTDistiller(student, labeler, generator)
    distiller.compile(optimizer="adam")
    distiller.fit(*tiny_data, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "distiller.keras"
    distiller.save(path)
    loaded = keras.models.load_model(path)
    x, _ = batch(8, seed=3)
    z = np.random.default_rng(0).standard_normal((4, 4)).astype("float32")
    np.testing.assert_allclose(loaded.student(x).numpy(), student(x).numpy(), rtol=1e-6)
    # A reloaded distiller must distil from the same teacher, not a freshly initialised one.
    np.testing.assert_allclose(
        loaded.labeler.logits(x).numpy(), labeler.logits(x).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        loaded.generator.decode(z).numpy(), generator.decode(z).numpy(), rtol=1e-6
    )


def test_saved_distiller_restores_the_optimizer_state(
    student, labeler, generator, tiny_data, tmp_path
):
    distiller = TGTDistiller(student, labeler, generator)
    distiller.compile(optimizer=keras.optimizers.Adam(0.01))
    distiller.fit(*tiny_data, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "distiller.keras"
    distiller.save(path)
    loaded = keras.models.load_model(path)
    # Resuming training needs Adam's step count and moments back.
    assert int(loaded.optimizer.iterations) == int(distiller.optimizer.iterations) == 2
    for got, want in zip(loaded.optimizer.variables, distiller.optimizer.variables, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
