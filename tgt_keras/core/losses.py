"""The loss math of TGT, shared by `TGTDistiller.train_step` and `test_step`.

Paper, step 5: the student minimises `CE(f(x), y)` on real data (optionally plus distillation on
real data) `+ CE(f(x~), p)` on the synthetic batch, `p` the teacher's soft labels. The weights of
the terms are not given in the paper (open); ours are arguments with documented defaults.

Soft-label terms are written as `T^2 * KL(softmax(t/T) || softmax(s/T))`, the convention of
Hinton et al. and of `keras.distillation.LogitsDistillation(loss=keras.losses.KLDivergence())`.
KL differs from the soft cross-entropy by the teacher's entropy, a constant for the student, so
the gradient is the same and a student that matches the teacher has loss 0.
"""

from __future__ import annotations

import tensorflow as tf


def kl_divergence(teacher_logits, student_logits, temperature: float = 1.0) -> tf.Tensor:
    """Per-example `KL(softmax(t/T) || softmax(s/T))`, shape `[N]`."""
    t = tf.cast(teacher_logits, tf.float32) / temperature
    s = tf.cast(student_logits, tf.float32) / temperature
    log_p = tf.nn.log_softmax(t, axis=-1)
    log_q = tf.nn.log_softmax(s, axis=-1)
    return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def distillation_loss(teacher_logits, student_logits, temperature: float = 1.0,
                      sample_weight=None) -> tf.Tensor:
    """Scalar `T^2 * mean_i w_i KL_i` (Keras's "sum over batch size" reduction)."""
    per_example = kl_divergence(teacher_logits, student_logits, temperature)
    return temperature**2 * _weighted_mean(per_example, sample_weight)


def label_loss(y, student_logits, sample_weight=None) -> tf.Tensor:
    """Scalar cross-entropy against hard labels.

    `y` holds class indices (`[N]` or `[N, 1]`) or one-hot / soft targets (`[N, C]`).
    """
    logits = tf.cast(student_logits, tf.float32)
    y = tf.convert_to_tensor(y)
    if y.shape.rank == logits.shape.rank and y.shape[-1] == logits.shape[-1] != 1:
        per_example = tf.nn.softmax_cross_entropy_with_logits(tf.cast(y, tf.float32), logits)
    else:
        labels = tf.reshape(tf.cast(y, tf.int32), [-1])
        per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    return _weighted_mean(per_example, sample_weight)


def _weighted_mean(per_example, sample_weight):
    if sample_weight is None:
        return tf.reduce_mean(per_example)
    weights = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
    return tf.reduce_mean(per_example * weights)


def tgt_loss(
    *,
    y,
    student_real_logits,
    student_synthetic_logits=None,
    teacher_real_logits=None,
    teacher_synthetic_logits=None,
    sample_weight=None,
    synthetic_weight=None,
    teacher_real_weight=None,
    real_loss_weight: float = 1.0,
    real_distillation_weight: float = 0.0,
    synthetic_loss_weight: float = 1.0,
    temperature: float = 1.0,
) -> dict[str, tf.Tensor]:
    """Computes every TGT loss term and their weighted sum.

    `total = real_loss_weight * real + real_distillation_weight * real_distillation
    + synthetic_loss_weight * synthetic`. A term whose inputs are None is 0. `sample_weight`
    weights the real examples, `synthetic_weight` the synthetic ones (0 drops an example, as
    exploration does for non-finite samples) and `teacher_real_weight` multiplies
    `sample_weight` in the real distillation term only (0 for real examples whose teacher logits
    are not finite).

    Returns:
        dict with scalar tensors `total`, `real`, `real_distillation`, `synthetic`.

    Example:
    >>> out = tgt_loss(y=[0], student_real_logits=[[0.0, 0.0]])
    >>> round(float(out["real"]), 4)  # log(2)
    0.6931
    """
    zero = tf.constant(0.0)
    real = label_loss(y, student_real_logits, sample_weight)
    real_kd = zero
    if teacher_real_logits is not None:
        kd_weight = sample_weight
        if teacher_real_weight is not None:
            kd_weight = teacher_real_weight if sample_weight is None else (
                tf.reshape(tf.cast(sample_weight, tf.float32), [-1]) * teacher_real_weight)
        real_kd = distillation_loss(teacher_real_logits, student_real_logits, temperature,
                                    kd_weight)
    synthetic = zero
    if teacher_synthetic_logits is not None and student_synthetic_logits is not None:
        synthetic = distillation_loss(
            teacher_synthetic_logits, student_synthetic_logits, temperature, synthetic_weight
        )
    total = (
        real_loss_weight * real
        + real_distillation_weight * real_kd
        + synthetic_loss_weight * synthetic
    )
    return {
        "total": total,
        "real": real,
        "real_distillation": real_kd,
        "synthetic": synthetic,
    }
