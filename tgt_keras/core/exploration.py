"""Latent-space exploration: the part of TGT that finds new inputs for the student.

Paper, step 2. From the encoded latents `z` of a real batch:
- random:   `z' = z + sigma * eps`, `eps ~ N(0, I)`;
- gradient: from `z'`, `num_steps` (K) steps `z <- z + step_size * g(z)` of ascent on the
  student-teacher disagreement `D(h(Dec(z)), f(Dec(z)))`.
Latents may have any shape `[N, ...]` (a vector per image, encoder states `[N, L, d]` per text).

When the decode is discrete (text), the ascent differentiates a *relaxed* decode
(`relaxed_decode`: soft tokens) and the synthetic batch is the hard decode (`decode`), labelled
by the teacher on the hard examples (the modality supplies both; for images they are one).

Choices the paper leaves open, and ours (each an argument of `TGTDistiller`):
- `D` is the per-example KL divergence `KL(softmax(h/T) || softmax(f/T))`, temperature `T`.
- The gradient flows through the decoder, the labeler and the student (all frozen here; only
  the latents move). The student runs in inference mode (`training=False`).
  `hold_teacher_output=True` instead holds the teacher's logits fixed at their value on the
  (hard-decoded) start point of the ascent: no backward pass through the labeler, which is most
  of the cost with a large labeler (text); the paper does not say which it does.
- `g` is each example's gradient divided by its L2 norm over all its entries
  (`normalize_gradient=True`), so `step_size` is a distance in latent space whatever the scale
  of `D`; with `normalize_gradient=False` it is the raw gradient.
- No projection back to a latent ball.
- Numerical safety: a step that produces a non-finite latent (an exploding gradient, a bad
  step size) is rejected for that example, which keeps its previous latent, so a latent falls
  back towards its starting point; the number of rejected steps is reported. An example whose
  final latent, decoded image or teacher logits are still not finite (a bad encoder, an
  exploding decoder or labeler) is dropped: its image and logits are replaced by zeros and
  `valid` is False, so it gets weight 0 in the synthetic loss and never reaches the student.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import tensorflow as tf

from tgt_keras.core.losses import kl_divergence

EXPLORATION_MODES = ("random", "gradient")
# Keeps the normalised gradient finite when an example's gradient is exactly zero.
_NORM_EPSILON = 1e-12


@dataclasses.dataclass
class ExplorationResult:
    """What exploration returns: explored latents, their decoded examples and their labels."""

    latents: tf.Tensor
    examples: tf.Tensor  # hard-decoded, in the generator's output format (images, token ids)
    teacher_logits: tf.Tensor  # labeler logits on `examples`, no gradient
    disagreement_before: tf.Tensor | None  # per-example D at the perturbed start point
    # (None in "random" mode without `measure_after`: it is then `disagreement_after`)
    disagreement_after: tf.Tensor | None  # per-example D at the explored point (see
    # `measure_after`)
    rejected_steps: tf.Tensor  # scalar count of non-finite steps rejected
    valid: tf.Tensor  # per-example bool: False for examples dropped as non-finite

    @property
    def images(self) -> tf.Tensor:
        """`examples`, under the name the image-only versions used."""
        return self.examples


def finite_rows(values: tf.Tensor) -> tf.Tensor:
    """Per-example bool: every entry of the row (all axes but the first) is finite (always
    True for integers, such as token ids)."""
    if not values.dtype.is_floating:
        return tf.ones([tf.shape(values)[0]], tf.bool)
    finite = tf.math.is_finite(values)
    return tf.reduce_all(tf.reshape(finite, [tf.shape(values)[0], -1]), axis=-1)


def normalize_per_example(gradient: tf.Tensor) -> tf.Tensor:
    """Divides each example's gradient (all axes but the first) by its L2 norm."""
    axes = list(range(1, gradient.shape.rank))
    norm = tf.sqrt(tf.reduce_sum(tf.square(gradient), axis=axes, keepdims=True))
    return gradient / (norm + _NORM_EPSILON)


def _rows(mask: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """A per-example bool `[N]` reshaped to broadcast against `like` `[N, ...]`."""
    return tf.reshape(mask, [-1] + [1] * (like.shape.rank - 1))


def explore(
    latents: tf.Tensor,
    noise: tf.Tensor,
    *,
    decode: Callable[[tf.Tensor], tf.Tensor],
    teacher_logits: Callable[[tf.Tensor], tf.Tensor],
    student_logits: Callable[[tf.Tensor], tf.Tensor],
    relaxed_decode: Callable[[tf.Tensor], tf.Tensor] | None = None,
    hold_teacher_output: bool = False,
    mode: str = "gradient",
    sigma: float = 0.5,
    step_size: float = 1.0,
    num_steps: int = 3,
    temperature: float = 1.0,
    normalize_gradient: bool = True,
    measure_after: bool = True,
    loss_scale: float = 1.0,
) -> ExplorationResult:
    """Perturbs `latents` with noise, then (mode "gradient") ascends the disagreement.

    Args:
        latents: `[N, ...]` encoded real examples.
        noise: standard normal noise of the same shape (passed in so the caller owns the RNG).
        decode: latents -> examples (generator output format): the synthetic batch.
        teacher_logits: examples or relaxed examples -> labeler logits.
        student_logits: examples or relaxed examples -> student logits (inference mode).
        relaxed_decode: latents -> relaxed examples that a gradient can cross (soft tokens);
            None: `decode` (continuous data).
        hold_teacher_output: hold the teacher's logits fixed during the ascent at their value
            on the hard decode of the start point (see the module docstring).
        mode: "random" (noise only; `step_size` and `num_steps` unused) or "gradient".
        sigma: noise scale.
        step_size: ascent step size (eta).
        num_steps: number of ascent steps (K); 0 makes "gradient" equal "random".
        temperature: softmax temperature of the disagreement.
        normalize_gradient: L2-normalise each example's gradient before the step.
        measure_after: compute `disagreement_after` with one more student forward pass. The
            distiller passes False and measures it on the student's training forward pass
            instead, which it runs anyway (`disagreement_after` is then None here).
        loss_scale: the objective is multiplied by this before differentiation and the
            gradient divided by it after, so that a float16 student's backward pass does not
            underflow (mixed precision); 1 for float32 and bfloat16.

    Returns:
        An `ExplorationResult`.
    """
    z = latents + sigma * noise
    before = None
    rejected = tf.constant(0, tf.int32)
    steps = num_steps if mode == "gradient" else 0
    relaxed_decode = decode if relaxed_decode is None else relaxed_decode
    held = None
    if steps and hold_teacher_output:
        held = tf.stop_gradient(teacher_logits(decode(z)))
    for _ in range(steps):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(z)
            relaxed = relaxed_decode(z)
            target = held if held is not None else teacher_logits(relaxed)
            disagreement = kl_divergence(target, student_logits(relaxed), temperature)
            # Summing keeps each example's gradient its own: examples do not interact.
            objective = tf.reduce_sum(disagreement)
            if loss_scale != 1.0:
                objective = objective * loss_scale
        gradient = tf.cast(tape.gradient(objective, z), tf.float32)
        if loss_scale != 1.0:
            gradient = gradient / loss_scale
        if before is None:
            before = disagreement
        if normalize_gradient:
            gradient = normalize_per_example(gradient)
        candidate = z + step_size * gradient
        finite = finite_rows(candidate)
        rejected += tf.reduce_sum(tf.cast(~finite, tf.int32))
        z = tf.where(_rows(finite, z), candidate, z)
    z = tf.stop_gradient(z)
    examples = tf.stop_gradient(decode(z))
    labels = tf.stop_gradient(teacher_logits(examples))
    valid = finite_rows(z) & finite_rows(examples) & finite_rows(labels)
    examples = zero_invalid(examples, valid)
    labels = zero_invalid(labels, valid)
    after = None
    if measure_after:
        after = zero_invalid(
            kl_divergence(labels, tf.stop_gradient(student_logits(examples)), temperature), valid)
    if before is None:  # "random" mode: the start point is the explored point.
        before = after
    else:  # zeroed like `after` for dropped examples
        before = zero_invalid(tf.stop_gradient(before), valid)
    return ExplorationResult(
        latents=z,
        examples=examples,
        teacher_logits=labels,
        disagreement_before=before,
        disagreement_after=after,
        rejected_steps=rejected,
        valid=valid,
    )


def zero_invalid(values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """`values` with the rows of examples that are not `valid` replaced by zeros."""
    return tf.where(_rows(valid, values), values, tf.zeros_like(values))
