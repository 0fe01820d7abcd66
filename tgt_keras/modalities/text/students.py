"""Text students: `TextCNN` and `TextTransformer`, classifiers over token ids or soft tokens.

Both embed with a `TokenEmbedding` (ids -> lookup, soft tokens -> `p @ E`), so a one-hot soft
row gives exactly the id row's logits, and both mask padding: a position is padding when its id
is `pad_id`, or, for soft tokens, when its most probable token is `pad_id`. Padding positions do
not change the logits (the CNN zeroes their embeddings and pools over the other positions; the
transformer's attention ignores them and it mean-pools over the other positions).
"""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf
from keras import ops

from tgt_keras.modalities.text.embedding import TokenEmbedding, check_int, input_kind


def _check_dropout(dropout) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be a float in [0, 1). Received: dropout={dropout!r}")
    return float(dropout)


class _TextStudent(keras.Model):
    """What both students share: argument checks, the input check, the padding mask, eager
    building and the config of the common arguments."""

    def __init__(self, vocabulary_size, sequence_length, num_classes, dropout, pad_id, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = check_int("vocabulary_size", vocabulary_size, 1)
        self.sequence_length = check_int("sequence_length", sequence_length, 1)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.dropout = _check_dropout(dropout)
        self.pad_id = check_int("pad_id", pad_id, 0)
        if self.pad_id >= self.vocabulary_size:
            raise ValueError(
                f"`pad_id` must be < vocabulary_size={self.vocabulary_size}. "
                f"Received: pad_id={pad_id}"
            )

    def build(self, input_shape=None):
        # One forward pass on ids creates every weight, so `count_params()`, `summary()` and
        # loading weights work right after construction.
        if self.built:
            return
        self.call(ops.zeros((1, self.sequence_length), "int32"), training=False)

    def _embed(self, inputs):
        """`(embeddings [N, L, d] from self.embedding, mask [N, L] bool: not padding)`."""
        inputs = tf.convert_to_tensor(inputs)  # also reads a tf.Variable of soft tokens
        kind = input_kind(inputs, self.vocabulary_size, self.sequence_length, type(self).__name__)
        if kind == "ids":
            mask = ops.not_equal(inputs, ops.cast(self.pad_id, inputs.dtype))
        else:
            mask = ops.not_equal(ops.argmax(inputs, axis=-1), self.pad_id)
        return self.embedding(inputs), mask

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "sequence_length": self.sequence_length,
                "num_classes": self.num_classes,
                "dropout": self.dropout,
                "pad_id": self.pad_id,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="tgt_keras")
class TextCNN(_TextStudent):
    """A convolutional text classifier (Kim, 2014) over token ids or soft tokens.

    Embeddings (padding zeroed) -> one `Conv1D` + ReLU per kernel size -> max over the
    non-padding positions -> concatenation -> dropout -> logits.

    Args:
        vocabulary_size: `V`, the shared vocabulary's size.
        sequence_length: `L`, the length of every row.
        num_classes: `C`, >= 2.
        embedding_dim: the token embedding size.
        filters: the filters per kernel size.
        kernel_sizes: the convolutions' widths.
        dropout: the dropout rate before the logits.
        pad_id: the padding token's id (`Vocabulary.pad_id`).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: int ids `[N, L]` or float soft tokens `[N, L, V]`.
        training: whether dropout is active.

    Returns:
        Logits `[N, C]`.

    Raises:
        ValueError: on a bad argument; in `call`, on inputs of another shape or dtype.

    Example:
    ```python
    student = TextCNN(vocabulary_size=vocabulary.size, sequence_length=32, num_classes=2)
    logits = student(tokenizer(["a fine film"]))  # [1, 2]
    soft = keras.ops.one_hot(tokenizer(["a fine film"]), vocabulary.size)
    np.testing.assert_allclose(student(soft), logits, atol=1e-5)
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        num_classes: int,
        embedding_dim: int = 64,
        filters: int = 64,
        kernel_sizes=(3, 4, 5),
        dropout: float = 0.1,
        pad_id: int = 0,
        **kwargs,
    ):
        super().__init__(vocabulary_size, sequence_length, num_classes, dropout, pad_id, **kwargs)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, 1)
        self.filters = check_int("filters", filters, 1)
        if isinstance(kernel_sizes, int) or not kernel_sizes:
            raise ValueError(
                "`kernel_sizes` must be a non-empty sequence of ints >= 1. "
                f"Received: kernel_sizes={kernel_sizes!r}"
            )
        self.kernel_sizes = tuple(check_int("kernel_sizes", size, 1) for size in kernel_sizes)
        self.embedding = TokenEmbedding(
            self.vocabulary_size, self.embedding_dim, name="token_embedding"
        )
        self.convolutions = [
            keras.layers.Conv1D(
                self.filters, size, padding="same", activation="relu", name=f"conv_{index}"
            )
            for index, size in enumerate(self.kernel_sizes)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout)
        self.classifier = keras.layers.Dense(self.num_classes, name="logits")
        self.build((None, self.sequence_length))

    def call(self, inputs, training=None):
        embeddings, mask = self._embed(inputs)
        mask = ops.cast(mask, embeddings.dtype)[..., None]
        embeddings = embeddings * mask
        # Features are >= 0 after ReLU, so zeroing padding positions before the max leaves the
        # max over the other positions (and 0 for a row of padding only).
        pooled = [ops.max(conv(embeddings) * mask, axis=1) for conv in self.convolutions]
        features = pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)
        return self.classifier(self.dropout_layer(features, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "embedding_dim": self.embedding_dim,
                "filters": self.filters,
                "kernel_sizes": list(self.kernel_sizes),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="tgt_keras")
class TextTransformer(_TextStudent):
    """A small transformer encoder classifier over token ids or soft tokens.

    Token + position embeddings -> layer norm -> dropout -> `num_layers` keras-hub
    `TransformerEncoder` blocks (padding masked) -> mean over the non-padding positions ->
    dropout -> logits.

    Args:
        vocabulary_size: `V`, the shared vocabulary's size.
        sequence_length: `L`, the length of every row.
        num_classes: `C`, >= 2.
        hidden_dim: the model width; a multiple of `num_heads`.
        num_layers: the encoder blocks.
        num_heads: the attention heads.
        intermediate_dim: the feed-forward width.
        dropout: the dropout rate (embeddings, blocks, before the logits).
        pad_id: the padding token's id (`Vocabulary.pad_id`).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        inputs: int ids `[N, L]` or float soft tokens `[N, L, V]`.
        training: whether dropout is active.

    Returns:
        Logits `[N, C]`.

    Raises:
        ValueError: on a bad argument; in `call`, on inputs of another shape or dtype.

    Example:
    ```python
    student = TextTransformer(vocabulary_size=vocabulary.size, sequence_length=32, num_classes=2)
    logits = student(tokenizer(["a fine film"]))  # [1, 2]
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        sequence_length: int,
        num_classes: int,
        hidden_dim: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
        intermediate_dim: int = 128,
        dropout: float = 0.1,
        pad_id: int = 0,
        **kwargs,
    ):
        super().__init__(vocabulary_size, sequence_length, num_classes, dropout, pad_id, **kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, 1)
        self.num_layers = check_int("num_layers", num_layers, 1)
        self.num_heads = check_int("num_heads", num_heads, 1)
        self.intermediate_dim = check_int("intermediate_dim", intermediate_dim, 1)
        if self.hidden_dim % self.num_heads:
            raise ValueError(
                "`hidden_dim` must be a multiple of `num_heads`. "
                f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
            )
        self.embedding = TokenEmbedding(
            self.vocabulary_size, self.hidden_dim, name="token_embedding"
        )
        self.position_embedding = keras_hub.layers.PositionEmbedding(
            self.sequence_length, name="position_embedding"
        )
        self.embedding_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="embedding_norm")
        self.embedding_dropout = keras.layers.Dropout(self.dropout)
        self.encoder_blocks = [
            keras_hub.layers.TransformerEncoder(
                self.intermediate_dim,
                self.num_heads,
                dropout=self.dropout,
                name=f"encoder_{index}",
            )
            for index in range(self.num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout)
        self.classifier = keras.layers.Dense(self.num_classes, name="logits")
        self.build((None, self.sequence_length))

    def call(self, inputs, training=None):
        embeddings, mask = self._embed(inputs)
        hidden = embeddings + self.position_embedding(embeddings)
        hidden = self.embedding_dropout(self.embedding_norm(hidden), training=training)
        for block in self.encoder_blocks:
            hidden = block(hidden, padding_mask=mask, training=training)
        weights = ops.cast(mask, hidden.dtype)[..., None]
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        pooled = ops.sum(hidden * weights, axis=1) / count
        return self.classifier(self.dropout_layer(pooled, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
            }
        )
        return config
