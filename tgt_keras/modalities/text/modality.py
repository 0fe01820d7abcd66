"""The text modality: examples are fixed-length rows of token ids `[N, L]` over one vocabulary.

Generator, labeler and student share one `Vocabulary`, so a distribution over tokens (a *soft
token*) can flow into every model (`p @ E`). Exploration moves the generator's encoder states;
its gradient crosses the discrete decode through the soft tokens of `Seq2SeqGenerator.decode_soft`
(the relaxation, with its temperature `soft_temperature`, is documented there), while the
synthetic batch is the hard decode (token ids), labelled by the teacher on those ids: soft tokens
are off the labeler's training manifold, so they never reach the loss.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tgt_keras.core.modality import Modality, register_modality
from tgt_keras.modalities.text.vocabulary import Vocabulary


def _attribute(model, name: str):
    return getattr(model, name, None)


@register_modality
class TextModality(Modality):
    """Token ids `[N, sequence_length]` over `vocabulary`, shared by every model.

    Both arguments are read from the generator when omitted; the distiller checks that the
    labeler and the student agree with it.

    Args:
        vocabulary: the shared `Vocabulary`.
        sequence_length: tokens per example, `[CLS]` and `[SEP]` included.

    Example:
    >>> TextModality().example_key
    'token_ids'
    """

    name = "text"
    example_key = "token_ids"
    example_noun = "text"
    metric_names = ("synthetic_changed", "synthetic_label_flips")

    def __init__(self, vocabulary: Vocabulary | None = None, sequence_length: int | None = None):
        if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
            raise TypeError(
                "`vocabulary` must be a `Vocabulary`. "
                f"Received: vocabulary={vocabulary!r} of type {type(vocabulary).__name__}")
        if sequence_length is not None and (
                isinstance(sequence_length, bool) or not isinstance(sequence_length, int)
                or sequence_length < 3):
            raise ValueError(
                "`sequence_length` must be an integer >= 3 ([CLS], a token, [SEP]). "
                f"Received: sequence_length={sequence_length!r}")
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length

    # --- construction-time checks ----------------------------------------------------------

    def bind(self, student, labeler, generator) -> TextModality:
        vocabulary = self.vocabulary or _attribute(generator, "vocabulary")
        if vocabulary is None:
            raise ValueError(
                "The text modality needs the shared vocabulary: pass "
                "`TextModality(vocabulary=...)` or a generator with a `vocabulary`. "
                f"Received: generator={generator!r}")
        reference = "modality" if self.vocabulary is not None else "generator"
        for what, model in (("generator", generator), ("labeler", labeler),
                            ("student", student)):
            other = _attribute(model, "vocabulary")
            if isinstance(other, Vocabulary) and what != reference:
                other.check_same(vocabulary, what, reference)
            size = _attribute(model, "vocabulary_size")
            if size is not None and int(size) != vocabulary.size:
                raise ValueError(
                    f"The {what} must read the shared vocabulary of {vocabulary.size:,} tokens "
                    f"(fingerprint {vocabulary.fingerprint}). Received: {what}.vocabulary_size="
                    f"{int(size):,}")
        length = self.sequence_length or _attribute(generator, "sequence_length")
        for what, model in (("generator", generator), ("labeler", labeler),
                            ("student", student)):
            other = _attribute(model, "sequence_length")
            if length is None:
                length = other
            elif other is not None and int(other) != int(length):
                raise ValueError(
                    f"The {what}'s sequence_length must match the examples' "
                    f"({length}). Received: {what}.sequence_length={other}")
        if length is None:
            raise ValueError(
                "The text modality needs the sequence length: pass "
                "`TextModality(sequence_length=...)` or teachers with a `sequence_length`.")
        return TextModality(vocabulary, int(length))

    def num_classes(self, student) -> int:
        classes = _attribute(student, "num_classes")
        return int(classes) if classes is not None else int(student.output_shape[-1])

    # --- input checks ----------------------------------------------------------------------

    def check_spec(self, shape, dtype, what: str = "x") -> None:
        dtype = tf.as_dtype(dtype)
        if not dtype.is_integer:
            raise TypeError(
                f"`{what}` must hold integer token ids (tokenize texts with "
                f"`WordPieceTokenizer`). Received: dtype={dtype.name}")
        shape = tuple(shape)
        if len(shape) != 2 or shape[1] not in (None, self.sequence_length):
            raise ValueError(
                f"`{what}` must be token ids of shape (batch, {self.sequence_length}) (the "
                f"sequence_length of the teachers and the student). Received: shape={shape}")

    def check_values(self, x: np.ndarray, what: str = "x") -> None:
        size = self.vocabulary.size
        low, high = int(x.min()), int(x.max())
        if low < 0 or high >= size:
            raise ValueError(
                f"`{what}` must hold token ids in [0, {size}) (the shared vocabulary). "
                f"Received: ids in [{low}, {high}]")
        special = np.isin(x, np.asarray(self.vocabulary.special_ids))
        empty = np.flatnonzero(special.all(axis=1))
        if len(empty):
            raise ValueError(
                f"`{what}` must hold non-empty texts: row {int(empty[0])} has only special "
                f"tokens ({len(empty)} such row(s)). Received: "
                f"{what}[{int(empty[0])}]={x[empty[0]].tolist()}")

    def check_batch(self, x):
        x = tf.convert_to_tensor(x)
        self.check_spec(x.shape, x.dtype)
        x = tf.cast(x, tf.int32)
        size = self.vocabulary.size
        return x, [
            tf.debugging.assert_non_negative(
                x, message="`x` must hold token ids >= 0; a batch has a negative one"),
            tf.debugging.assert_less(
                x, tf.constant(size, tf.int32),
                message=f"`x` must hold token ids < {size} (the shared vocabulary); a batch "
                "has a larger one"),
        ]

    def cast_examples(self, x):
        return np.asarray(x).astype(np.int32)

    # --- the teachers and the student ------------------------------------------------------

    def encode(self, generator, x):
        return generator.encode(x)

    def decode(self, generator, latents):
        return generator.decode(latents)

    def relaxed_decode(self, generator, latents):
        soft, _ = generator.decode_soft(latents)
        return soft

    def label(self, labeler, generator, examples):
        return labeler.logits(examples)

    def label_real(self, labeler, x):
        return labeler.logits(x)

    def to_student(self, generator, examples):
        return examples

    def exploration_metrics(self, source, explored_examples, teacher_logits, y) -> dict:
        changed = tf.reduce_any(
            tf.not_equal(tf.cast(source, tf.int32), tf.cast(explored_examples, tf.int32)),
            axis=-1)
        flips = tf.not_equal(tf.cast(tf.argmax(teacher_logits, -1), tf.int32), y)
        return {"synthetic_changed": tf.cast(changed, tf.float32),
                "synthetic_label_flips": tf.cast(flips, tf.float32)}

    # --- serialization ---------------------------------------------------------------------

    def get_config(self) -> dict:
        return {"vocabulary": None if self.vocabulary is None else self.vocabulary.get_config(),
                "sequence_length": self.sequence_length}

    @classmethod
    def from_config(cls, config: dict) -> TextModality:
        vocabulary = config.get("vocabulary")
        return cls(None if vocabulary is None else Vocabulary.from_config(vocabulary),
                   config.get("sequence_length"))
