"""The teacher interfaces the training core calls: a `Labeler` and a `Generator`.

Adapters for where teachers come from (Keras models, TF-Hub modules, keras-hub presets) and for
each kind of data live in `tgt_keras.teachers`; the core knows only these two interfaces.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

# Probabilities are turned into logits with log(p); this floor keeps log(0) finite.
_PROB_FLOOR = 1e-7


class Labeler:
    """Base class of labeler adapters: `logits(x)`, the teacher's logits on examples.

    Subclasses implement `_raw(x)` and set `num_classes` and `outputs` ("logits" or
    "probabilities"), plus what their modality needs (`input_format` for images, `vocabulary`
    for text).
    """

    num_classes: int
    outputs: str

    def _raw(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def logits(self, x: tf.Tensor) -> tf.Tensor:
        """Returns float32 logits `[N, num_classes]` (log-probabilities for probability outputs)."""
        out = tf.cast(self._raw(x), tf.float32)
        if self.outputs == "probabilities":
            out = tf.math.log(tf.maximum(out, _PROB_FLOOR))
        return out

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Labeler:
        return cls(**config)


class Generator:
    """Base class of generator adapters: the teacher's encoder `x -> z` and decoder `z -> x`.

    Subclasses implement `encode`, `decode` and `validate`, and set `modality` (the name of
    the `tgt_keras.core.modality.Modality` whose examples they encode and decode) and the
    shape of their latents (`latent_dim` for vectors, or `latent_shape`).
    """

    #: The modality of the examples it encodes and decodes (`tgt_keras.core.modality`).
    modality: str = "image"
    latent_dim: int | None = None

    def encode(self, x: tf.Tensor) -> tf.Tensor:
        """Maps examples to latents `[N, ...]`."""
        raise NotImplementedError

    def decode(self, latents: tf.Tensor) -> tf.Tensor:
        """Maps latents to examples."""
        raise NotImplementedError

    def validate(self, num_samples: int = 2, seed: int = 0) -> None:
        """Runs the generator once and checks its declarations (raises `ValueError`)."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Generator:
        return cls(**config)


def as_labeler(value: Any) -> Labeler:
    """Returns `value` if it is a `Labeler` adapter, else raises a `TypeError` with advice."""
    if isinstance(value, Labeler):
        return value
    if isinstance(value, keras.Model):
        raise TypeError(
            "`labeler` must be a `Labeler` adapter. Wrap the Keras model with "
            "`KerasLabeler(model, value_range=...)` to declare its input value range."
        )
    raise TypeError(
        f"`labeler` must be a `Labeler` adapter (`KerasLabeler` or `HubLabeler`). "
        f"Received: labeler={value!r} of type {type(value).__name__}"
    )


def as_generator(value: Any) -> Generator:
    """Returns `value` if it is a `Generator` adapter, else raises a `TypeError` with advice."""
    if isinstance(value, Generator):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        raise TypeError(
            "`generator` must be a `Generator` adapter. Wrap an (encoder, decoder) pair with "
            "`KerasGenerator(encoder, decoder, value_range=...)` to declare its image format."
        )
    has_sigs = hasattr(value, "signatures")
    hint = (
        "Wrap a loaded hub module with `HubGenerator(module, input_format=..., output_format=...)`."
        if has_sigs
        else "Use `HubGenerator` (TF-Hub `encode`/`generate` signatures) or `KerasGenerator`."
    )
    raise TypeError(
        f"`generator` must be a `Generator` adapter. Received: generator={value!r} of type "
        f"{type(value).__name__}. {hint}"
    )
