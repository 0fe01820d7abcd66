"""`TokenEmbedding`: one embedding matrix for token ids and for soft tokens."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def check_int(name: str, value, minimum: int) -> int:
    """`value` as an int; `ValueError` unless it is an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def input_kind(inputs, vocabulary_size: int, sequence_length: int | None, owner: str) -> str:
    """`"ids"` for int `[N, L]`, `"soft"` for float `[N, L, V]`; `ValueError` for anything else
    (another rank or dtype, a last dimension != V, a length != `sequence_length`)."""
    shape = tuple(inputs.shape)
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    expected = (
        f"{owner} takes token ids (int [N, L]) or soft tokens (float [N, L, V] with "
        f"V = vocabulary_size = {vocabulary_size})"
    )
    if len(shape) == 2 and ("int" in dtype):
        kind = "ids"
    elif len(shape) == 3 and "float" in dtype:
        if shape[-1] is not None and shape[-1] != vocabulary_size:
            raise ValueError(
                f"{expected}. Received: soft tokens whose last dimension is {shape[-1]} "
                f"(shape {shape}), expected {vocabulary_size}"
            )
        kind = "soft"
    else:
        raise ValueError(f"{expected}. Received: shape {shape}, dtype {dtype}")
    if sequence_length is not None and shape[1] is not None and shape[1] != sequence_length:
        raise ValueError(
            f"{owner} takes rows of sequence_length={sequence_length} tokens. "
            f"Received: {kind} of shape {shape}"
        )
    return kind


@keras.saving.register_keras_serializable(package="tgt_keras")
class TokenEmbedding(keras.layers.Layer):
    """Embeds token ids by lookup and soft tokens by `p @ E`, with the same matrix `E`.

    A soft token is a probability distribution over the vocabulary; a one-hot soft row gives
    exactly the embedding of its id, and gradients flow into the probabilities (the relaxation
    that gradient exploration needs through a discrete decode).

    Args:
        vocabulary_size: `V`, the number of tokens (rows of `E`).
        output_dim: the embedding size (columns of `E`).
        embeddings_initializer: the initializer of `E`.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: int ids `[N, L]` or float soft tokens `[N, L, V]`.

    Returns:
        `[N, L, output_dim]`.

    Raises:
        ValueError: on a bad argument, an input of another rank or dtype, soft tokens whose last
            dimension is not `V`, or (eagerly) ids outside `[0, V)`.

    Example:
    ```python
    embedding = TokenEmbedding(vocabulary_size=100, output_dim=8)
    ids = np.array([[2, 7, 3, 0]])
    soft = keras.ops.one_hot(ids, 100)
    np.testing.assert_allclose(embedding(ids), embedding(soft))
    ```
    """

    def __init__(
        self, vocabulary_size: int, output_dim: int, embeddings_initializer="uniform", **kwargs
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size, 1)
        self.output_dim = check_int("output_dim", output_dim, 1)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.vocabulary_size, self.output_dim),
            initializer=self.embeddings_initializer,
        )

    def call(self, inputs):
        inputs = tf.convert_to_tensor(inputs)  # also reads a tf.Variable of soft tokens
        kind = input_kind(inputs, self.vocabulary_size, None, "TokenEmbedding")
        embeddings = ops.convert_to_tensor(self.embeddings)
        if kind == "soft":
            return ops.matmul(ops.cast(inputs, embeddings.dtype), embeddings)
        if tf.executing_eagerly() and ops.size(inputs) > 0:
            # Out-of-range ids fail on CPU but silently give zeros on GPU: check when we can.
            low, high = int(ops.min(inputs)), int(ops.max(inputs))
            if low < 0 or high >= self.vocabulary_size:
                raise ValueError(
                    f"Token ids must be in [0, {self.vocabulary_size}) (vocabulary_size). "
                    f"Received: ids in [{low}, {high}]"
                )
        return ops.take(embeddings, ops.cast(inputs, "int32"), axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "output_dim": self.output_dim,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
            }
        )
        return config
