"""A text generator adapter over a keras-hub BART encoder-decoder (`BartBackbone`).

TGT explores the continuous encoder space of an encoder-decoder language model: `z = Enc(x)` are
the encoder states `[N, L, d]` of a token row, and `Dec(z)` decodes them back to a token row. The
decode is discrete, so exploration's gradient crosses a relaxation, the *soft tokens*
`softmax(logits / soft_temperature)` `[N, L, V]` (see `docs/text_design.md`).

The encoder and the cross-attention see every position (the padding mask is all ones): a text's
padding is part of the example, so the decoder decides where the text ends.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from tgt_keras.modalities.text.vocabulary import Vocabulary
from tgt_keras.teachers.generator import Generator

DECODINGS = ("parallel", "greedy")


def _import_keras_hub():
    try:
        import keras_hub
    except ImportError as error:  # pragma: no cover - keras-hub is installed with the text extra
        raise ImportError(
            "`Seq2SeqGenerator` needs keras-hub: `pip install keras-hub`."
        ) from error
    return keras_hub


def _embed_tokens(backbone, inputs):
    """Token embeddings of ids `[N, L]` (a lookup) or of soft tokens `[N, L, V]` (`p @ E`)."""
    inputs = ops.convert_to_tensor(inputs)
    if "int" in str(inputs.dtype):
        return backbone.token_embedding(inputs)
    table = ops.cast(backbone.token_embedding.embeddings, backbone.compute_dtype)
    return ops.matmul(ops.cast(inputs, backbone.compute_dtype), table)


def bart_encode(backbone, inputs, training: bool = False):
    """The encoder states `[N, L, d]` of ids `[N, L]` or soft tokens `[N, L, V]`.

    The layers are the backbone's own, called as `BartBackbone` calls them, with no padding mask
    (every position is attended to), so for ids this equals the backbone's
    `encoder_sequence_output` with `encoder_padding_mask` all ones.
    """
    tokens = _embed_tokens(backbone, inputs)
    positions = backbone.encoder_position_embedding(tokens)
    x = backbone.encoder_embeddings_add((tokens, positions))
    x = backbone.encoder_embeddings_layer_norm(x)
    x = backbone.encoder_embeddings_dropout(x, training=training)
    for layer in backbone.encoder_transformer_layers:
        x = layer(x, training=training)
    return x


def bart_decoder_logits(backbone, latents, decoder_ids, causal: bool, training: bool = False):
    """Vocabulary logits `[N, L, V]` of one decoder pass over `decoder_ids` `[N, L]`.

    Cross-attention reads all of `latents` (`[N, L_enc, d]`); self-attention is causal (BART's
    autoregressive decoder) or bidirectional (`causal=False`, the parallel decoder). The logits
    use the tied token embedding (`token_embedding(h, reverse=True)`), as `BartSeq2SeqLM` does.
    """
    latents = ops.cast(latents, backbone.compute_dtype)
    tokens = backbone.token_embedding(decoder_ids)
    positions = backbone.decoder_position_embedding(tokens)
    x = backbone.decoder_embeddings_add((tokens, positions))
    x = backbone.decoder_embeddings_layer_norm(x)
    x = backbone.decoder_embeddings_dropout(x, training=training)
    for layer in backbone.decoder_transformer_layers:
        x = layer(decoder_sequence=x, encoder_sequence=latents, use_causal_mask=causal,
                  training=training)
    return backbone.token_embedding(x, reverse=True)


@keras.saving.register_keras_serializable(package="tgt_keras")
class Seq2SeqGenerator(Generator):
    """A text generator over a keras-hub `BartBackbone` whose vocabulary is the shared one.

    `encode(x) -> z`: ids `[N, L]` (or soft tokens `[N, L, V]`) to the encoder states
    `[N, L, d]`. `decode(z) -> ids [N, L]` (int32). `decode_soft(z) -> (soft [N, L, V], ids)`:
    the relaxation exploration differentiates through; gradients flow into `z`.

    Decoding:
    - `"parallel"` (the offline default, non-autoregressive): the decoder's input is `[MASK]` at
      every position, its self-attention is bidirectional, and one pass gives the logits of all
      positions; `ids = argmax(logits)`. The model must be trained that way
      (`tgt_keras.offline.text_generator` does).
    - `"greedy"` (a real BART): autoregressive argmax from `start_id` (BART's decoder starts with
      `</s>`, here `[SEP]`); positions after the first `[SEP]` are `[PAD]`, as keras-hub's
      `generate` pads after a stop token. The soft tokens are the softmax of one teacher-forced
      pass along the greedy path (one-hot `[PAD]` after the end), so their argmax is the greedy
      ids (up to floating-point ties between the cached greedy steps and the full pass).
    Soft tokens are `softmax(logits / soft_temperature)`; the hard ids do not depend on it.

    The backbone is frozen (`trainable = False`) and always called with `training=False`. It is
    exposed as `backbone` and as `encoder` (the Keras model the distiller tracks; `decoder` is
    None since both halves live in the one backbone). `latent_shape = (L, d)`; `latent_dim` is
    None (the latents are not flat vectors).

    `get_config` stores the backbone's architecture (like `KerasGenerator`, weights travel with
    Keras saving of the model that tracks `encoder`, or through a preset: `from_preset`).

    Args:
        backbone: a `keras_hub.models.BartBackbone` over the shared vocabulary
            (`backbone.vocabulary_size == vocabulary.size`).
        vocabulary: the shared `Vocabulary`.
        sequence_length: `L`, the length of every token row (at most the backbone's
            `max_sequence_length`).
        decoding: `"parallel"` or `"greedy"`.
        soft_temperature: temperature of the soft tokens, > 0.
        start_id: the greedy decoder's first input token; default `vocabulary.sep_id`.
        validate: run `validate()` once in the constructor.

    Raises:
        TypeError: if `backbone` is not a `BartBackbone` or `vocabulary` not a `Vocabulary`.
        ValueError: for a vocabulary size mismatch, a too long `sequence_length`, an unknown
            `decoding`, a non-positive `soft_temperature` or an out-of-range `start_id`.

    Example:
    >>> gen = Seq2SeqGenerator.from_preset("/path/to/bart_preset", vocabulary,
    ...                                    sequence_length=32)  # doctest: +SKIP
    >>> ids = gen.decode(gen.encode(tokenizer(["A witty film."])))  # doctest: +SKIP
    """

    modality = "text"
    latent_dim = None
    input_format = None
    output_format = None

    def __init__(
        self,
        backbone,
        vocabulary: Vocabulary,
        sequence_length: int,
        decoding: str = "parallel",
        soft_temperature: float = 1.0,
        start_id: int | None = None,
        validate: bool = True,
    ):
        keras_hub = _import_keras_hub()
        if not isinstance(backbone, keras_hub.models.BartBackbone):
            raise TypeError(
                "`backbone` must be a `keras_hub.models.BartBackbone`. Received: "
                f"backbone of type {type(backbone).__name__}"
            )
        if not isinstance(vocabulary, Vocabulary):
            raise TypeError(
                "`vocabulary` must be a `tgt_keras.modalities.text.Vocabulary`. Received: "
                f"vocabulary of type {type(vocabulary).__name__}"
            )
        backbone_size = int(backbone.token_embedding.input_dim)
        if backbone_size != vocabulary.size:
            raise ValueError(
                f"The BART backbone's vocabulary ({backbone_size:,} tokens, "
                f"backbone.vocabulary_size) differs from the shared vocabulary "
                f"({vocabulary.size:,} tokens, fingerprint {vocabulary.fingerprint}): the "
                "generator must decode into the vocabulary the labeler and the student read."
            )
        if not isinstance(sequence_length, int | np.integer) or sequence_length < 1:
            raise ValueError(
                f"`sequence_length` must be a positive int. Received: "
                f"sequence_length={sequence_length!r}"
            )
        if sequence_length > backbone.max_sequence_length:
            raise ValueError(
                f"`sequence_length` must be at most the backbone's max_sequence_length="
                f"{backbone.max_sequence_length}. Received: sequence_length={sequence_length}"
            )
        if decoding not in DECODINGS:
            raise ValueError(
                f"`decoding` must be one of {DECODINGS}. Received: decoding={decoding!r}"
            )
        if not soft_temperature > 0:
            raise ValueError(
                f"`soft_temperature` must be > 0. Received: soft_temperature={soft_temperature!r}"
            )
        start_id = vocabulary.sep_id if start_id is None else int(start_id)
        if not 0 <= start_id < vocabulary.size:
            raise ValueError(
                f"`start_id` must be a token id in [0, {vocabulary.size}). Received: "
                f"start_id={start_id}"
            )
        self.backbone = backbone
        self.backbone.trainable = False
        self.encoder = backbone
        self.decoder = None
        self.vocabulary = vocabulary
        self.sequence_length = int(sequence_length)
        self.decoding = decoding
        self.soft_temperature = float(soft_temperature)
        self.start_id = start_id
        self.latent_shape = (self.sequence_length, int(backbone.hidden_dim))
        if validate:
            self.validate()

    @classmethod
    def from_preset(cls, preset: str, vocabulary: Vocabulary, sequence_length: int,
                    decoding: str = "parallel", soft_temperature: float = 1.0,
                    start_id: int | None = None, validate: bool = True,
                    **backbone_kwargs) -> Seq2SeqGenerator:
        """Loads `keras_hub.models.BartBackbone.from_preset(preset)` and wraps it.

        Args:
            preset: a local preset directory (as written by `backbone.save_to_preset(dir)`, e.g.
                the offline generator's), or a keras-hub preset name such as `"bart_base_en"`;
                a name is downloaded, which needs the network (and a vocabulary that lists that
                model's tokens in its id order).
            vocabulary, sequence_length, decoding, soft_temperature, start_id, validate: as in
                the constructor.
            **backbone_kwargs: passed to `BartBackbone.from_preset` (e.g. `dtype`).
        """
        keras_hub = _import_keras_hub()
        backbone = keras_hub.models.BartBackbone.from_preset(str(preset), **backbone_kwargs)
        return cls(backbone, vocabulary, sequence_length, decoding=decoding,
                   soft_temperature=soft_temperature, start_id=start_id, validate=validate)

    # --- the generator --------------------------------------------------------------------

    def _check_rows(self, inputs, what: str):
        shape = tuple(inputs.shape)
        if len(shape) not in (2, 3) or (shape[1] is not None and shape[1] != self.sequence_length):
            raise ValueError(
                f"`{what}` must be token ids of shape (batch, sequence_length="
                f"{self.sequence_length}) or soft tokens (batch, {self.sequence_length}, "
                f"{self.vocabulary.size}). Received: shape={shape}"
            )
        if len(shape) == 3 and shape[2] is not None and shape[2] != self.vocabulary.size:
            raise ValueError(
                f"Soft tokens must have one probability per vocabulary token "
                f"({self.vocabulary.size}). Received: shape={shape}"
            )

    def _check_latents(self, latents):
        latents = ops.convert_to_tensor(latents, "float32")
        shape = tuple(latents.shape)
        if len(shape) != 3 or any(
            got is not None and got != want
            for got, want in zip(shape[1:], self.latent_shape, strict=True)
        ):
            raise ValueError(
                f"Latents must have shape (batch, *latent_shape={self.latent_shape}). "
                f"Received: shape={shape}"
            )
        return latents

    def encode(self, inputs):
        """Encoder states `[N, L, d]` (float32) of ids `[N, L]` or soft tokens `[N, L, V]`."""
        inputs = ops.convert_to_tensor(inputs)
        self._check_rows(inputs, "inputs")
        return ops.cast(bart_encode(self.backbone, inputs, training=False), "float32")

    def logits(self, latents, decoder_ids=None):
        """Vocabulary logits `[N, L, V]` (float32) of the decoder for `latents`.

        `decoder_ids` None: the parallel decoder's input (`[MASK]` everywhere, bidirectional).
        Otherwise the causal decoder's input (teacher forcing: `start_id` then the path).
        """
        latents = self._check_latents(latents)
        if decoder_ids is None:
            decoder_ids = ops.full(
                (ops.shape(latents)[0], self.sequence_length), self.vocabulary.mask_id, "int32")
            out = bart_decoder_logits(self.backbone, latents, decoder_ids, causal=False)
        else:
            out = bart_decoder_logits(self.backbone, latents, decoder_ids, causal=True)
        return ops.cast(out, "float32")

    def decode(self, latents):
        """Token ids `[N, L]` (int32) decoded from latents `[N, L, d]`."""
        if self.decoding == "parallel":
            return ops.cast(ops.argmax(self.logits(latents), axis=-1), "int32")
        return self._greedy_ids(self._check_latents(latents))

    def decode_soft(self, latents):
        """`(soft [N, L, V] float32, ids [N, L] int32)`: soft tokens differentiable w.r.t. z.

        `argmax(soft, -1) == ids` (see the class docstring for greedy decoding).
        """
        latents = self._check_latents(latents)
        if self.decoding == "parallel":
            logits = self.logits(latents)
            ids = ops.cast(ops.argmax(logits, axis=-1), "int32")
            return ops.softmax(logits / self.soft_temperature, axis=-1), ids
        ids = self._greedy_ids(latents)
        start = ops.full((ops.shape(ids)[0], 1), self.start_id, "int32")
        decoder_ids = ops.concatenate([start, ids[:, :-1]], axis=1)
        soft = ops.softmax(self.logits(latents, decoder_ids) / self.soft_temperature, axis=-1)
        ended = self._after_end(ids)
        pad = ops.one_hot(ops.full_like(ids, self.vocabulary.pad_id), self.vocabulary.size)
        return ops.where(ended[..., None], pad, soft), ids

    def _after_end(self, ids):
        """True at the positions after each row's first `[SEP]`."""
        is_sep = ops.cast(ops.equal(ids, self.vocabulary.sep_id), "int32")
        return ops.cumsum(is_sep, axis=1) - is_sep > 0

    def _greedy_ids(self, latents):
        """Autoregressive argmax decode with key/value caches (fixed shapes, traceable)."""
        bb = self.backbone
        latents = ops.cast(latents, bb.compute_dtype)
        batch = tf.shape(latents)[0]
        length = self.sequence_length
        layers = bb.decoder_transformer_layers
        head_dim = bb.hidden_dim // bb.num_heads
        self_cache = tf.zeros(
            [batch, len(layers), 2, length, bb.num_heads, head_dim], bb.compute_dtype)
        cross_cache = tf.zeros(
            [batch, len(layers), 2, tf.shape(latents)[1], bb.num_heads, head_dim],
            bb.compute_dtype)

        def step(token, index, self_cache, cross_cache, cross_index):
            tokens = bb.token_embedding(token)
            positions = bb.decoder_position_embedding(tokens, start_index=index)
            x = bb.decoder_embeddings_add((tokens, positions))
            x = bb.decoder_embeddings_layer_norm(x)
            new_self, new_cross = [], []
            for i, layer in enumerate(layers):
                x, layer_self, layer_cross = layer(
                    decoder_sequence=x, encoder_sequence=latents,
                    self_attention_cache=self_cache[:, i],
                    self_attention_cache_update_index=index,
                    cross_attention_cache=cross_cache[:, i],
                    cross_attention_cache_update_index=cross_index,
                    training=False,
                )
                new_self.append(layer_self)
                new_cross.append(layer_cross)
            logits = bb.token_embedding(x, reverse=True)[:, 0]
            return (tf.argmax(logits, axis=-1, output_type=tf.int32),
                    tf.stack(new_self, axis=1), tf.stack(new_cross, axis=1))

        pad_id, sep_id = self.vocabulary.pad_id, self.vocabulary.sep_id
        start = tf.fill([batch, 1], self.start_id)
        # The first step fills the cross-attention cache; later steps read it.
        first, self_cache, cross_cache = step(start, 0, self_cache, cross_cache, 0)
        ids = tf.concat([first[:, None], tf.fill([batch, length - 1], pad_id)], axis=1)
        ended = tf.equal(first, sep_id)

        def body(index, ids, self_cache, ended):
            previous = tf.gather(ids, index - 1, axis=1)[:, None]
            token, self_cache, _ = step(previous, index, self_cache, cross_cache, None)
            token = tf.where(ended, pad_id, token)
            ids = tf.where(tf.range(length)[None, :] == index, token[:, None], ids)
            return index + 1, ids, self_cache, tf.logical_or(ended, tf.equal(token, sep_id))

        _, ids, _, _ = tf.while_loop(
            lambda index, *_: index < length, body, (tf.constant(1), ids, self_cache, ended),
            maximum_iterations=length - 1,
        )
        return tf.ensure_shape(ids, [None, length])

    # --- checks and serialization ---------------------------------------------------------

    def validate(self, num_samples: int = 2, seed: int = 0) -> None:
        """Runs encode / decode / decode_soft once and checks shapes, dtypes and the vocabulary.

        Raises:
            ValueError: naming what does not match.
        """
        vocab = self.vocabulary
        rng = np.random.default_rng(seed)
        ids = np.full((num_samples, self.sequence_length), vocab.pad_id, "int32")
        ids[:, 0] = vocab.cls_id
        words = min(self.sequence_length - 2, 4)
        ids[:, 1:1 + words] = rng.integers(0, vocab.size, (num_samples, words))
        ids[:, 1 + words] = vocab.sep_id
        latents = self.encode(ids)
        want = (num_samples, *self.latent_shape)
        if tuple(latents.shape) != want:
            raise ValueError(
                f"The encoder must return latents of shape {want}. "
                f"Received: shape={tuple(latents.shape)}"
            )
        decoded = self.decode(latents)
        soft, soft_ids = self.decode_soft(latents)
        if tuple(decoded.shape) != ids.shape or decoded.dtype != tf.int32:
            raise ValueError(
                f"The decoder must return int32 token ids of shape {ids.shape}. Received: "
                f"shape={tuple(decoded.shape)}, dtype={decoded.dtype}"
            )
        if tuple(soft.shape) != (*ids.shape, vocab.size):
            raise ValueError(
                f"The soft tokens must have shape {(*ids.shape, vocab.size)} (one probability "
                f"per token of the shared vocabulary). Received: shape={tuple(soft.shape)}"
            )
        decoded = np.asarray(decoded)
        if decoded.min() < 0 or decoded.max() >= vocab.size:
            raise ValueError(
                f"The decoder returned ids outside the vocabulary [0, {vocab.size}): "
                f"[{decoded.min()}, {decoded.max()}]"
            )
        sums = np.asarray(ops.sum(soft, axis=-1))
        if not np.allclose(sums, 1.0, atol=1e-3):
            raise ValueError(
                "The soft tokens must be probability distributions (rows summing to 1). "
                f"Received row sums in [{sums.min():.4f}, {sums.max():.4f}]"
            )
        if not np.array_equal(np.asarray(soft_ids), decoded):
            raise ValueError("`decode_soft` and `decode` returned different ids.")

    def get_config(self) -> dict:
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "vocabulary": self.vocabulary.get_config(),
            "sequence_length": self.sequence_length,
            "decoding": self.decoding,
            "soft_temperature": self.soft_temperature,
            "start_id": self.start_id,
        }

    @classmethod
    def from_config(cls, config: dict) -> Seq2SeqGenerator:
        _import_keras_hub()  # registers BartBackbone for deserialization
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["vocabulary"] = Vocabulary.from_config(config["vocabulary"])
        return cls(**config)
