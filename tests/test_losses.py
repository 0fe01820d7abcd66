"""The loss math against NumPy hand computations (and against Keras's own distillation loss)."""

import keras
import numpy as np
import pytest

from tgt_keras.core.losses import distillation_loss, kl_divergence, label_loss, tgt_loss

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

TEACHER = np.array(
    [[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [-2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], "float32"
)
STUDENT = np.array(
    [[0.0, 1.0, 0.0], [1.0, -1.0, 2.0], [0.0, 0.0, 1.0], [3.0, -3.0, 0.0]], "float32"
)
LABELS = np.array([0, 2, 1, 1], "int32")


def np_log_softmax(logits):
    logits = np.asarray(logits, "float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def np_kl(teacher, student, temperature=1.0):
    log_p = np_log_softmax(np.asarray(teacher) / temperature)
    log_q = np_log_softmax(np.asarray(student) / temperature)
    return (np.exp(log_p) * (log_p - log_q)).sum(axis=-1)


def np_ce(labels, logits):
    return -np_log_softmax(logits)[np.arange(len(labels)), labels]


def test_kl_divergence_hand_computed_two_classes():
    # p = softmax([0, 0]) = (1/2, 1/2); q = softmax([log 3, 0]) = (3/4, 1/4):
    # KL = 1/2 log(2/3) + 1/2 log(2) = 1/2 log(4/3).
    kl = kl_divergence([[0.0, 0.0]], [[np.log(3.0), 0.0]])
    np.testing.assert_allclose(kl.numpy(), [0.5 * np.log(4.0 / 3.0)], rtol=1e-6)


def test_kl_divergence_per_example_matches_numpy():
    kl = kl_divergence(TEACHER, STUDENT).numpy()
    assert kl.shape == (4,)
    np.testing.assert_allclose(kl, np_kl(TEACHER, STUDENT), rtol=1e-5)


def test_kl_divergence_is_zero_for_identical_and_shift_invariant_logits():
    np.testing.assert_allclose(kl_divergence(TEACHER, TEACHER).numpy(), 0.0, atol=1e-6)
    np.testing.assert_allclose(kl_divergence(TEACHER, TEACHER + 5.0).numpy(), 0.0, atol=1e-6)


def test_kl_divergence_temperature_divides_logits():
    np.testing.assert_allclose(
        kl_divergence(TEACHER, STUDENT, temperature=3.0).numpy(),
        np_kl(TEACHER / 3.0, STUDENT / 3.0),
        rtol=1e-5,
    )


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_distillation_loss_is_t_squared_times_mean_kl(temperature):
    loss = float(distillation_loss(TEACHER, STUDENT, temperature))
    expected = temperature**2 * np_kl(TEACHER, STUDENT, temperature).mean()
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_distillation_loss_sample_weight_sums_over_batch_size():
    weights = np.array([1.0, 0.0, 2.0, 0.5], "float32")
    loss = float(distillation_loss(TEACHER, STUDENT, 2.0, sample_weight=weights))
    expected = 4.0 * (np_kl(TEACHER, STUDENT, 2.0) * weights).sum() / 4
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_distillation_loss_equals_keras_logits_distillation(temperature):
    reference = keras.distillation.LogitsDistillation(
        temperature=temperature, loss=keras.losses.KLDivergence()
    ).compute_loss(keras.ops.convert_to_tensor(TEACHER), keras.ops.convert_to_tensor(STUDENT))
    ours = distillation_loss(TEACHER, STUDENT, temperature)
    # Keras clips probabilities at 1e-7 before the log; these logits keep p well above that.
    np.testing.assert_allclose(float(ours), float(reference), rtol=1e-4)


def test_label_loss_sparse_int_labels():
    np.testing.assert_allclose(
        float(label_loss(LABELS, STUDENT)), np_ce(LABELS, STUDENT).mean(), rtol=1e-5
    )


def test_label_loss_uniform_logits_is_log_num_classes():
    np.testing.assert_allclose(
        float(label_loss([2, 0], np.zeros((2, 3), "float32"))), np.log(3.0), rtol=1e-6
    )


def test_label_loss_column_int_labels():
    np.testing.assert_allclose(
        float(label_loss(LABELS[:, None], STUDENT)), np_ce(LABELS, STUDENT).mean(), rtol=1e-5
    )


def test_label_loss_one_hot_floats():
    one_hot = np.eye(3, dtype="float32")[LABELS]
    np.testing.assert_allclose(
        float(label_loss(one_hot, STUDENT)), np_ce(LABELS, STUDENT).mean(), rtol=1e-5
    )


def test_label_loss_soft_float_targets():
    soft = np.array([[0.5, 0.5, 0.0], [0.1, 0.2, 0.7], [0, 1, 0], [1 / 3, 1 / 3, 1 / 3]], "float32")
    expected = -(soft * np_log_softmax(STUDENT)).sum(axis=-1).mean()
    np.testing.assert_allclose(float(label_loss(soft, STUDENT)), expected, rtol=1e-5)


def test_label_loss_sample_weight():
    weights = np.array([0.0, 1.0, 3.0, 0.5], "float32")
    expected = (np_ce(LABELS, STUDENT) * weights).sum() / 4
    np.testing.assert_allclose(
        float(label_loss(LABELS, STUDENT, sample_weight=weights)), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(label_loss(LABELS, STUDENT, sample_weight=weights[:, None])), expected, rtol=1e-5
    )


def test_tgt_loss_weighted_sum_of_terms():
    synthetic_teacher = TEACHER[::-1].copy()
    synthetic_student = STUDENT[::-1].copy() * 0.5
    weights = dict(real_loss_weight=0.7, real_distillation_weight=0.2, synthetic_loss_weight=1.5)
    out = tgt_loss(
        y=LABELS,
        student_real_logits=STUDENT,
        student_synthetic_logits=synthetic_student,
        teacher_real_logits=TEACHER,
        teacher_synthetic_logits=synthetic_teacher,
        temperature=2.0,
        **weights,
    )
    real = np_ce(LABELS, STUDENT).mean()
    real_kd = 4.0 * np_kl(TEACHER, STUDENT, 2.0).mean()
    synthetic = 4.0 * np_kl(synthetic_teacher, synthetic_student, 2.0).mean()
    np.testing.assert_allclose(float(out["real"]), real, rtol=1e-5)
    np.testing.assert_allclose(float(out["real_distillation"]), real_kd, rtol=1e-5)
    np.testing.assert_allclose(float(out["synthetic"]), synthetic, rtol=1e-5)
    np.testing.assert_allclose(
        float(out["total"]), 0.7 * real + 0.2 * real_kd + 1.5 * synthetic, rtol=1e-5
    )


def test_tgt_loss_sample_weight_applies_to_real_terms_only():
    weights = np.array([1.0, 0.0, 0.0, 2.0], "float32")
    out = tgt_loss(
        y=LABELS,
        student_real_logits=STUDENT,
        student_synthetic_logits=STUDENT,
        teacher_real_logits=TEACHER,
        teacher_synthetic_logits=TEACHER,
        sample_weight=weights,
        real_distillation_weight=1.0,
    )
    np.testing.assert_allclose(
        float(out["real"]), (np_ce(LABELS, STUDENT) * weights).sum() / 4, rtol=1e-5
    )
    np.testing.assert_allclose(
        float(out["real_distillation"]), (np_kl(TEACHER, STUDENT) * weights).sum() / 4, rtol=1e-5
    )
    np.testing.assert_allclose(float(out["synthetic"]), np_kl(TEACHER, STUDENT).mean(), rtol=1e-5)


def test_tgt_loss_missing_terms_are_zero():
    out = tgt_loss(y=LABELS, student_real_logits=STUDENT, real_loss_weight=2.0)
    assert float(out["real_distillation"]) == 0.0
    assert float(out["synthetic"]) == 0.0
    np.testing.assert_allclose(float(out["total"]), 2.0 * np_ce(LABELS, STUDENT).mean(), rtol=1e-5)
