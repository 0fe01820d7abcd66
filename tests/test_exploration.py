"""Latent exploration: the noise, the ascent steps, their normalisation and the rejection rule."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tgt_keras.core.exploration import explore

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

LATENT, PIXELS, CLASSES = 4, 6, 3


@pytest.fixture
def linear_models():
    """Linear decoder, teacher and student as matrices, with their NumPy float64 twins."""
    rng = np.random.default_rng(1)
    dec = rng.standard_normal((LATENT, PIXELS)).astype("float32")
    tea = rng.standard_normal((PIXELS, CLASSES)).astype("float32")
    stu = rng.standard_normal((PIXELS, CLASSES)).astype("float32")
    fns = dict(
        decode=lambda z: tf.matmul(z, dec),
        teacher_logits=lambda x: tf.matmul(x, tea),
        student_logits=lambda x: tf.matmul(x, stu),
    )
    return fns, (dec.astype("float64"), tea.astype("float64"), stu.astype("float64"))


def np_disagreement(z, mats, temperature=1.0):
    dec, tea, stu = mats
    x = z @ dec

    def log_softmax(a):
        a = a / temperature
        a = a - a.max(-1, keepdims=True)
        return a - np.log(np.exp(a).sum(-1, keepdims=True))

    log_p, log_q = log_softmax(x @ tea), log_softmax(x @ stu)
    return (np.exp(log_p) * (log_p - log_q)).sum(-1)


def np_gradient(z, mats, eps=1e-6):
    """Central finite differences of the per-example disagreement, float64."""
    z = np.asarray(z, "float64")
    grad = np.zeros_like(z)
    for j in range(z.shape[1]):
        step = np.zeros_like(z)
        step[:, j] = eps
        grad[:, j] = (np_disagreement(z + step, mats) - np_disagreement(z - step, mats)) / (2 * eps)
    return grad


def start(batch=8, seed=2):
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((batch, LATENT)).astype("float32")
    noise = rng.standard_normal((batch, LATENT)).astype("float32")
    return latents, noise


def test_random_mode_adds_exactly_sigma_times_noise(linear_models):
    fns, _ = linear_models
    latents, noise = start()
    out = explore(
        tf.constant(latents), tf.constant(noise), mode="random", sigma=0.3, num_steps=5, **fns
    )
    np.testing.assert_allclose(out.latents.numpy() - latents, 0.3 * noise, atol=1e-6)
    assert int(out.rejected_steps) == 0


def test_random_mode_noise_std_is_sigma_on_a_large_batch(linear_models):
    fns, _ = linear_models
    latents = np.zeros((20000, LATENT), "float32") + 3.0
    # The distiller draws its noise this way; the offset z' - z must have std sigma, mean 0.
    noise = keras.random.normal((20000, LATENT), seed=keras.random.SeedGenerator(0))
    out = explore(tf.constant(latents), noise, mode="random", sigma=0.7, **fns)
    offset = out.latents.numpy() - latents
    assert abs(offset.std() - 0.7) < 0.01
    assert abs(offset.mean()) < 0.01


def test_sigma_zero_keeps_latents(linear_models):
    fns, _ = linear_models
    latents, noise = start()
    out = explore(tf.constant(latents), tf.constant(noise), mode="random", sigma=0.0, **fns)
    np.testing.assert_array_equal(out.latents.numpy(), latents)


def test_gradient_mode_with_zero_steps_equals_random_mode(linear_models):
    fns, _ = linear_models
    latents, noise = start()
    kwargs = dict(sigma=0.5, step_size=2.0, **fns)
    rand = explore(tf.constant(latents), tf.constant(noise), mode="random", **kwargs)
    grad = explore(tf.constant(latents), tf.constant(noise), mode="gradient", num_steps=0, **kwargs)
    for field in (
        "latents",
        "images",
        "teacher_logits",
        "disagreement_before",
        "disagreement_after",
    ):
        np.testing.assert_array_equal(getattr(grad, field).numpy(), getattr(rand, field).numpy())
    assert int(grad.rejected_steps) == int(rand.rejected_steps) == 0


def test_outputs_are_consistent_with_the_models(linear_models):
    fns, mats = linear_models
    latents, noise = start()
    out = explore(
        tf.constant(latents),
        tf.constant(noise),
        mode="gradient",
        sigma=0.5,
        step_size=0.1,
        num_steps=2,
        **fns,
    )
    z = out.latents.numpy().astype("float64")
    dec, tea, _ = mats
    np.testing.assert_allclose(out.images.numpy(), z @ dec, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.teacher_logits.numpy(), z @ dec @ tea, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        out.disagreement_after.numpy(), np_disagreement(z, mats), rtol=1e-4, atol=1e-6
    )
    # "before" is measured at the perturbed start point z + sigma * eps.
    z0 = latents.astype("float64") + 0.5 * noise.astype("float64")
    np.testing.assert_allclose(
        out.disagreement_before.numpy(), np_disagreement(z0, mats), rtol=1e-4, atol=1e-6
    )


def test_one_normalised_step_follows_the_disagreement_gradient(linear_models):
    fns, mats = linear_models
    latents, noise = start()
    out = explore(
        tf.constant(latents),
        tf.constant(noise),
        mode="gradient",
        sigma=0.5,
        step_size=0.25,
        num_steps=1,
        normalize_gradient=True,
        **fns,
    )
    z0 = latents.astype("float64") + 0.5 * noise.astype("float64")
    moved = out.latents.numpy() - z0
    np.testing.assert_allclose(np.linalg.norm(moved, axis=-1), 0.25, rtol=1e-5)
    grad = np_gradient(z0, mats)
    expected = 0.25 * grad / np.linalg.norm(grad, axis=-1, keepdims=True)
    np.testing.assert_allclose(moved, expected, atol=1e-4)


def test_one_raw_step_is_step_size_times_gradient(linear_models):
    fns, mats = linear_models
    latents, noise = start()
    out = explore(
        tf.constant(latents),
        tf.constant(noise),
        mode="gradient",
        sigma=0.5,
        step_size=0.1,
        num_steps=1,
        normalize_gradient=False,
        **fns,
    )
    z0 = latents.astype("float64") + 0.5 * noise.astype("float64")
    np.testing.assert_allclose(
        out.latents.numpy() - z0, 0.1 * np_gradient(z0, mats), rtol=1e-3, atol=1e-5
    )


def test_normalised_steps_move_each_latent_by_at_most_k_step_sizes(linear_models):
    fns, _ = linear_models
    latents, noise = start(batch=16)
    out = explore(
        tf.constant(latents),
        tf.constant(noise),
        mode="gradient",
        sigma=0.0,
        step_size=0.2,
        num_steps=3,
        **fns,
    )
    distance = np.linalg.norm(out.latents.numpy() - latents, axis=-1)
    assert np.all(distance <= 0.6 + 1e-5)
    assert np.all(distance > 0.2)  # more than one step: the later steps moved too


def test_gradient_steps_raise_the_disagreement(linear_models):
    fns, _ = linear_models
    latents, noise = start(batch=64)
    out = explore(
        tf.constant(latents),
        tf.constant(noise),
        mode="gradient",
        sigma=0.3,
        step_size=0.05,
        num_steps=4,
        **fns,
    )
    before, after = out.disagreement_before.numpy(), out.disagreement_after.numpy()
    # Small ascent steps on a smooth objective: every example's disagreement goes up.
    assert np.all(after > before)
    assert after.mean() > before.mean() + 1e-3


def test_temperature_changes_the_step_direction_consistently(linear_models):
    fns, mats = linear_models
    latents, noise = start()
    out = explore(
        tf.constant(latents),
        tf.constant(noise),
        mode="gradient",
        sigma=0.0,
        step_size=0.1,
        num_steps=1,
        temperature=3.0,
        **fns,
    )
    z0 = latents.astype("float64")
    eps = 1e-6
    grad = np.zeros_like(z0)
    for j in range(LATENT):
        step = np.zeros_like(z0)
        step[:, j] = eps
        grad[:, j] = (
            np_disagreement(z0 + step, mats, 3.0) - np_disagreement(z0 - step, mats, 3.0)
        ) / (2 * eps)
    expected = 0.1 * grad / np.linalg.norm(grad, axis=-1, keepdims=True)
    np.testing.assert_allclose(out.latents.numpy() - z0, expected, atol=1e-4)


def test_non_finite_steps_are_rejected_and_counted(linear_models):
    fns, _ = linear_models
    dec = fns["decode"]

    def decode(z):
        # d/dz sqrt(|z_0|) is not finite at z_0 = 0: those examples get a NaN gradient.
        return dec(z) * tf.sqrt(tf.abs(z[:, :1]))

    latents, _ = start(batch=5)
    latents[[1, 3], 0] = 0.0
    out = explore(
        tf.constant(latents),
        tf.zeros_like(latents),
        mode="gradient",
        sigma=0.0,
        step_size=0.1,
        num_steps=3,
        decode=decode,
        teacher_logits=fns["teacher_logits"],
        student_logits=fns["student_logits"],
    )
    z = out.latents.numpy()
    assert int(out.rejected_steps) == 2 * 3
    np.testing.assert_array_equal(z[[1, 3]], latents[[1, 3]])
    assert np.all(np.isfinite(z))
    moved = np.linalg.norm(z[[0, 2, 4]] - latents[[0, 2, 4]], axis=-1)
    assert np.all(moved > 0.1)


def test_infinite_images_are_rejected(linear_models):
    fns, _ = linear_models

    def decode(z):
        # Every image overflows to inf: no step is finite.
        return fns["decode"](z) * np.float32(np.inf)

    latents, noise = start(batch=3)
    out = explore(
        tf.constant(latents),
        tf.constant(noise),
        mode="gradient",
        sigma=0.5,
        step_size=0.1,
        num_steps=2,
        decode=decode,
        teacher_logits=fns["teacher_logits"],
        student_logits=fns["student_logits"],
    )
    assert int(out.rejected_steps) == 3 * 2
    np.testing.assert_allclose(out.latents.numpy(), latents + 0.5 * noise, atol=1e-6)
