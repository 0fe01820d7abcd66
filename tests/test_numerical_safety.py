"""Non-finite values made on purpose never reach the student.

`tgt_keras.core.exploration` (module docstring) promises: a non-finite ascent step is rejected
per example (counted in `rejected_steps`); an example whose final latent, decoded image or
teacher logits are not finite is dropped (`valid` False, zeroed, weight 0, counted in
`dropped_synthetic`). Here labelers, decoders and step sizes produce NaN / inf on purpose.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import IMAGE_SHAPE, clone, make_classifier, make_decoder, make_encoder

from tgt_keras import KerasGenerator, KerasLabeler, TGTDistiller
from tgt_keras.core.exploration import explore

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

LATENT, CLASSES = 4, 3


def data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(0, 1, (n, *IMAGE_SHAPE)).astype("float32"),
        (np.arange(n) % CLASSES).astype("int32"),
    )


def assert_all_finite(model):
    for w in model.get_weights():
        assert np.all(np.isfinite(w))


def np_kl(teacher, student, temperature=1.0):
    def log_softmax(a):
        a = np.asarray(a, "float64") / temperature
        a = a - a.max(-1, keepdims=True)
        return a - np.log(np.exp(a).sum(-1, keepdims=True))

    log_p, log_q = log_softmax(teacher), log_softmax(student)
    return (np.exp(log_p) * (log_p - log_q)).sum(-1)


def corrupting_labeler(nan_above=None, inf_below=None):
    """A teacher whose logits are NaN for images of mean pixel > `nan_above` and +inf for
    images of mean pixel < `inf_below` (8x8x1 images in [0, 1], 3 classes)."""
    images = keras.Input(IMAGE_SHAPE)
    logits = make_classifier(name="teacher")(images)

    def corrupt(args):
        x, z = args
        mean = tf.reduce_mean(x, axis=[1, 2, 3])[:, None]
        if nan_above is not None:
            z = tf.where(mean > nan_above, tf.constant(np.nan, z.dtype), z)
        if inf_below is not None:
            z = tf.where(mean < inf_below, tf.constant(np.inf, z.dtype), z)
        return z

    model = keras.Model(images, keras.layers.Lambda(corrupt)([images, logits]))
    return KerasLabeler(model, value_range=(0, 1))


def reconstructions(generator, x):
    """Dec(Enc(x)) in the student's format: the synthetic batch of sigma = 0, no ascent."""
    return ((generator.decoder(generator.encoder(2.0 * x - 1.0)) + 1.0) / 2.0).numpy()


# --- a labeler that returns NaN / inf ---------------------------------------------------------


def test_non_finite_teacher_logits_are_dropped_from_the_update(student, generator):
    # sigma = 0, no ascent: the synthetic batch is the reconstructions; the teacher returns NaN
    # on the brightest two and inf on the darkest two. The step must equal a hand-written step
    # whose synthetic loss sees only the four others (mean over the whole batch, weight 0 for
    # the dropped: `distillation_loss`'s "sum over batch size").
    x, y = data(8)
    synthetic = reconstructions(generator, x)
    means = np.sort(synthetic.mean(axis=(1, 2, 3)))
    labeler = corrupting_labeler(nan_above=(means[5] + means[6]) / 2,
                                 inf_below=(means[1] + means[2]) / 2)
    teacher = labeler.model(synthetic).numpy()
    valid = np.all(np.isfinite(teacher), axis=-1)
    assert valid.sum() == 4 and np.isnan(teacher).any() and np.isinf(teacher).any()

    reference = clone(student)
    distiller = TGTDistiller(student, labeler, generator, exploration="random", sigma=0.0,
                             real_loss_weight=0.0, temperature=2.0, seed=0)
    distiller.compile(optimizer=keras.optimizers.SGD(1.0))
    logs = distiller.train_on_batch(x, y, return_dict=True)

    def loss():
        s = reference(synthetic[valid], training=True) / 2.0
        p = tf.nn.softmax(teacher[valid] / 2.0)
        kl = tf.reduce_sum(p * (tf.math.log(p) - tf.nn.log_softmax(s)), axis=-1)
        return 4.0 * tf.reduce_sum(kl) / 8.0

    with tf.GradientTape() as tape:
        expected_loss = loss()
    grads = tape.gradient(expected_loss, reference.trainable_variables)
    for v, g, got in zip(reference.trainable_variables, grads, student.trainable_variables,
                         strict=True):
        np.testing.assert_allclose(got.numpy(), (v - g).numpy(), atol=1e-6)
    assert_all_finite(student)
    assert logs["dropped_synthetic"] == 4.0
    np.testing.assert_allclose(logs["synthetic_loss"], float(expected_loss), rtol=1e-5)
    for name, value in logs.items():
        assert np.isfinite(value), name


def test_fit_with_a_nan_labeler_keeps_the_student_finite(student, generator, tiny_data):
    # Gradient exploration: NaN teacher logits make the disagreement and its gradient NaN, so
    # those ascent steps are rejected, and the examples still NaN at the end are dropped.
    labeler = corrupting_labeler(nan_above=0.5)
    before = [w.copy() for w in student.get_weights()]
    distiller = TGTDistiller(student, labeler, generator, sigma=0.5, num_steps=2, seed=0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    history = distiller.fit(*tiny_data, batch_size=8, epochs=2, verbose=0).history
    assert_all_finite(student)
    assert all(not np.array_equal(b, a) for b, a in zip(before, student.get_weights(),
                                                        strict=True))
    assert min(history["dropped_synthetic"]) > 0
    assert min(history["rejected_steps"]) > 0
    # The exploration metrics are means over the valid examples: finite, and not all zero.
    for name, values in history.items():
        assert np.all(np.isfinite(values)), name
    assert min(history["disagreement_after"]) > 0
    assert 0.0 <= min(history["synthetic_agreement"]) <= max(history["synthetic_agreement"]) <= 1


def test_every_synthetic_example_dropped_is_a_real_only_step(student, generator):
    # A teacher that is always NaN: the update is exactly the plain cross-entropy step on the
    # real batch, and the exploration metrics (means over no valid example) are 0, not NaN.
    reference = clone(student)
    distiller = TGTDistiller(student, corrupting_labeler(nan_above=-1.0), generator,
                             sigma=0.5, num_steps=2, seed=0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.5))
    x, y = data(8)
    logs = distiller.train_on_batch(x, y, return_dict=True)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = ce(y, reference(x, training=True))
    grads = tape.gradient(loss, reference.trainable_variables)
    for v, g, got in zip(reference.trainable_variables, grads, student.trainable_variables,
                         strict=True):
        np.testing.assert_allclose(got.numpy(), (v - 0.5 * g).numpy(), atol=1e-6)
    assert logs["dropped_synthetic"] == 8.0
    assert logs["rejected_steps"] == 8.0 * 2
    assert logs["synthetic_loss"] == 0.0
    for name in ("disagreement_before", "disagreement_after", "synthetic_agreement"):
        assert logs[name] == 0.0, name
    np.testing.assert_allclose(logs["loss"], float(loss), rtol=1e-5)


# --- an absurd step size ----------------------------------------------------------------------


def amplified_gradient(scale):
    """Identity in the forward pass; multiplies the gradient of row i by `scale[i]`."""
    scale = tf.constant(np.asarray(scale, "float32")[:, None])

    @tf.custom_gradient
    def amplify(z):
        return tf.identity(z), lambda dy: dy * scale

    return amplify


def test_absurd_step_size_is_rejected_per_example():
    # Raw gradients and step_size = 1e38: rows 1 and 3 have gradients of ~1e6, so every step
    # overflows and is rejected; rows 0 and 2 have an exactly zero gradient, so their steps are
    # finite (accepted, not counted) and leave them in place. No row moves.
    rng = np.random.default_rng(4)
    tea = rng.standard_normal((LATENT, CLASSES)).astype("float32")
    stu = rng.standard_normal((LATENT, CLASSES)).astype("float32")
    latents = rng.standard_normal((4, LATENT)).astype("float32")
    noise = rng.standard_normal((4, LATENT)).astype("float32")
    amplify = amplified_gradient([0.0, 1e6, 0.0, 1e6])
    out = explore(
        tf.constant(latents), tf.constant(noise),
        decode=lambda z: amplify(z),
        teacher_logits=lambda x: tf.matmul(x, tea),
        student_logits=lambda x: tf.matmul(x, stu),
        mode="gradient", sigma=0.5, step_size=1e38, num_steps=3, normalize_gradient=False,
    )
    start = latents + np.float32(0.5) * noise
    assert int(out.rejected_steps) == 2 * 3
    np.testing.assert_array_equal(out.latents.numpy(), start)
    np.testing.assert_array_equal(out.valid.numpy(), [True] * 4)
    np.testing.assert_array_equal(out.images.numpy(), start)
    np.testing.assert_allclose(out.teacher_logits.numpy(), start @ tea, rtol=1e-6)
    kl = np_kl(start @ tea, start @ stu)
    np.testing.assert_allclose(out.disagreement_after.numpy(), kl, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.disagreement_before.numpy(), kl, rtol=1e-5, atol=1e-7)


class AmplifiedGradient(keras.layers.Layer):
    """Identity whose gradient is multiplied by 1e6: an exploding decoder gradient."""

    def call(self, x):
        return amplified_gradient(np.full(1, 1e6))(x)


def test_absurd_step_size_in_fit_equals_random_exploration(student, labeler, tiny_data):
    # Every ascent step overflows and is rejected, so each latent stays at its perturbed start:
    # the student must train exactly as with random exploration (the same noise: the noise of
    # step t is a function of (seed, t)), and stay finite.
    def train(**kwargs):
        decoder = make_decoder()
        decoder = keras.Sequential([keras.Input((LATENT,)), AmplifiedGradient(), decoder])
        generator = KerasGenerator(make_encoder(), decoder, value_range=(-1, 1))
        model = clone(student)
        distiller = TGTDistiller(model, labeler, generator, sigma=0.5, seed=3, **kwargs)
        distiller.compile(optimizer=keras.optimizers.SGD(0.5))
        logs = distiller.fit(*tiny_data, batch_size=8, epochs=1, verbose=0, shuffle=False)
        return model, logs.history

    keras.utils.set_random_seed(1)
    absurd, absurd_logs = train(step_size=1e38, num_steps=2, normalize_gradient=False)
    keras.utils.set_random_seed(1)
    random, random_logs = train(exploration="random")
    assert absurd_logs["rejected_steps"] == [8.0 * 2]
    assert absurd_logs["dropped_synthetic"] == [0.0]
    assert_all_finite(absurd)
    for a, b in zip(absurd.get_weights(), random.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for name in ("loss", "synthetic_loss", "disagreement_before", "disagreement_after"):
        np.testing.assert_allclose(absurd_logs[name], random_logs[name], rtol=1e-5)


# --- explore: a decoder that returns NaN for one example --------------------------------------


@pytest.mark.parametrize("mode", ["random", "gradient"])
def test_an_example_decoded_to_nan_is_dropped_and_zeroed(mode):
    rng = np.random.default_rng(5)
    dec = rng.standard_normal((LATENT, 6)).astype("float32")
    tea = rng.standard_normal((6, CLASSES)).astype("float32")
    stu = rng.standard_normal((6, CLASSES)).astype("float32")
    bias = np.float32([1.0, -1.0, 0.5])  # the student disagrees with the zeroed labels on 0
    latents = rng.standard_normal((4, LATENT)).astype("float32")
    noise = rng.standard_normal((4, LATENT)).astype("float32")
    poison = tf.constant([[0.0], [np.nan], [0.0], [0.0]], tf.float32)

    def run(rows, decode):
        return explore(
            tf.constant(latents[rows]), tf.constant(noise[rows]),
            decode=decode,
            teacher_logits=lambda x: tf.matmul(x, tea),
            student_logits=lambda x: tf.matmul(x, stu) + bias,
            mode=mode, sigma=0.3, step_size=0.2, num_steps=2,
        )

    out = run([0, 1, 2, 3], lambda z: tf.matmul(z, dec) + poison)  # row 1 is NaN, whatever z
    np.testing.assert_array_equal(out.valid.numpy(), [True, False, True, True])
    for field in ("images", "teacher_logits"):
        value = getattr(out, field).numpy()
        assert np.all(np.isfinite(value)), field
        np.testing.assert_array_equal(value[1], 0.0)
    for field in ("disagreement_before", "disagreement_after"):
        value = getattr(out, field).numpy()
        assert np.all(np.isfinite(value)), field
        assert value[1] == 0.0, field
    # Row 1's NaN gradient is rejected at every step (it keeps its start); in random mode
    # there are no steps.
    assert int(out.rejected_steps) == (2 if mode == "gradient" else 0)
    np.testing.assert_allclose(out.latents.numpy()[1], latents[1] + np.float32(0.3) * noise[1])
    # The other examples are untouched by row 1: the same as exploring them alone.
    alone = run([0, 2, 3], lambda z: tf.matmul(z, dec))
    assert alone.valid.numpy().all()
    for field in ("latents", "images", "teacher_logits", "disagreement_before",
                  "disagreement_after"):
        np.testing.assert_allclose(getattr(out, field).numpy()[[0, 2, 3]],
                                   getattr(alone, field).numpy(), rtol=1e-5, atol=1e-6)


# --- the real-data distillation term and unbounded decoders ---------------------------------


def test_non_finite_teacher_logits_on_real_images_get_no_distillation_term(student, generator):
    # The teacher is NaN on the brightest real images; real_distillation_weight > 0. Those
    # examples keep their cross-entropy term and lose only their distillation term.
    x, y = data(8)
    bright = x.mean(axis=(1, 2, 3)) > np.median(x.mean(axis=(1, 2, 3)))
    labeler = corrupting_labeler(nan_above=float(np.median(x.mean(axis=(1, 2, 3)))))
    assert np.isnan(labeler.model(x).numpy()[bright]).all()
    expected_model = clone(student)
    distiller = TGTDistiller(student, labeler, generator, sigma=0.0, num_steps=0,
                             exploration="random", real_distillation_weight=1.0,
                             synthetic_loss_weight=0.0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    assert_all_finite(student)
    # By hand: mean CE over all 8 + mean KL over the batch with weight 0 on the bright ones.
    teacher = np.nan_to_num(labeler.model(x).numpy(), nan=0.0)
    with tf.GradientTape() as tape:
        logits = expected_model(x, training=True)
        ce = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        log_p = tf.nn.log_softmax(teacher)
        kl = tf.reduce_sum(tf.exp(log_p) * (log_p - tf.nn.log_softmax(logits)), -1)
        loss = ce + tf.reduce_mean(kl * (~bright).astype("float32"))
    grads = tape.gradient(loss, expected_model.trainable_variables)
    keras.optimizers.SGD(0.1).apply(grads, expected_model.trainable_variables)
    for a, b in zip(student.get_weights(), expected_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.isfinite(logs["real_distillation_loss"])


def test_explored_images_stay_in_the_declared_range_with_an_unbounded_decoder(student, labeler):
    # A linear decoder (no tanh) that declares [-1, 1]; a huge step size sends the latents far
    # away with finite values, so nothing is rejected: the images are clipped to the range.
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(64),
                                keras.layers.Reshape(IMAGE_SHAPE)])
    generator = KerasGenerator(make_encoder(), decoder, value_range=(-1.0, 1.0), validate=False)
    distiller = TGTDistiller(student, labeler, generator, sigma=0.5, step_size=1e30,
                             num_steps=2, seed=0)
    x, y = data(8)
    explored = distiller.explore_batch(x, seed=0)
    images = explored.images.numpy()
    assert np.all(np.isfinite(images)) and images.min() >= -1.0 and images.max() <= 1.0
    assert np.abs(images).max() == 1.0  # far outside without the clip
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    distiller.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert_all_finite(student)
