"""Generator adapters: the teacher's encoder `x -> z` and decoder `z -> x`.

TGT explores the latent space of a pretrained generator (BigBiGAN in the paper). An adapter hides
where the generator comes from (a TF-Hub module with `encode` / `generate` signatures, or a pair of
Keras models) behind `encode`, `decode`, `latent_dim` and the declared image formats.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tgt_keras.core.teacher import Generator, as_generator  # noqa: F401  (re-exported)
from tgt_keras.teachers import hub_module
from tgt_keras.teachers.image_format import ImageFormat, as_image_format

# Decoded pixels may overshoot the declared range by this fraction of its width before we call the
# declaration wrong (bilinear upsampling inside a generator can overshoot a tanh output slightly).
RANGE_TOLERANCE = 0.05


class ImageGenerator(Generator):
    """Base class of image generator adapters.

    Subclasses implement `encode` and `decode` and set `latent_dim`, `input_format` (what the
    encoder consumes) and `output_format` (what the decoder produces).
    """

    modality = "image"
    latent_dim: int
    input_format: ImageFormat
    output_format: ImageFormat

    def validate(self, num_samples: int = 2, seed: int = 0) -> None:
        """Runs the generator once and checks its declarations.

        Checks that the encoder returns `[N, latent_dim]` latents and that decoded images of
        standard normal latents have the declared shape and stay inside the declared value range.

        Raises:
            ValueError: naming the declaration that does not match what the generator does.
        """
        rng = np.random.default_rng(seed)
        low, high = self.input_format.value_range
        images = rng.uniform(low, high, (num_samples, *self.input_format.shape)).astype("float32")
        latents = self.encode(tf.constant(images))
        if tuple(latents.shape) != (num_samples, self.latent_dim):
            raise ValueError(
                f"The encoder must return latents of shape (batch, latent_dim={self.latent_dim}). "
                f"Received: shape={tuple(latents.shape)}"
            )
        z = tf.constant(rng.standard_normal((num_samples, self.latent_dim)).astype("float32"))
        decoded = self.decode(z)
        if tuple(decoded.shape[1:]) != self.output_format.shape:
            raise ValueError(
                f"The decoder must return images of shape {self.output_format.shape} as declared "
                f"by `output_format`. Received: shape={tuple(decoded.shape[1:])}"
            )
        low, high = self.output_format.value_range
        slack = RANGE_TOLERANCE * (high - low)
        got_low, got_high = float(tf.reduce_min(decoded)), float(tf.reduce_max(decoded))
        if got_low < low - slack or got_high > high + slack:
            raise ValueError(
                f"The decoder's images do not match the declared value range: declared "
                f"output_format.value_range={self.output_format.value_range}, decoded images span "
                f"[{got_low:.3f}, {got_high:.3f}]."
            )


def _format_or_infer(fmt, shape, value_range, name: str) -> ImageFormat:
    if fmt is not None:
        return as_image_format(fmt, name)
    if value_range is None:
        raise ValueError(
            f"Declare the image format: pass `{name}` (an `ImageFormat`) or the value range of "
            f"the images. Received: {name}=None"
        )
    return ImageFormat.from_shape(shape, value_range, name=name)


@keras.saving.register_keras_serializable(package="tgt_keras")
class KerasGenerator(ImageGenerator):
    """A generator made of two Keras models: `encoder(x) -> z` and `decoder(z) -> x`.

    Both models are frozen (`trainable = False`) and called with `training=False`.

    Args:
        encoder: Keras model from images to latents `[N, latent_dim]`.
        decoder: Keras model from latents to images.
        input_format: format of the encoder's input images. Inferred from `encoder.input_shape`
            with `value_range` when omitted.
        output_format: format of the decoder's images. Inferred from `decoder.output_shape` with
            `value_range` when omitted.
        value_range: value range used for the inferred formats.
        validate: run `validate()` once in the constructor.

    Example:
    >>> enc = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                         keras.layers.Dense(4)])
    >>> dec = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, activation="tanh"),
    ...                         keras.layers.Reshape((8, 8, 1))])
    >>> KerasGenerator(enc, dec, value_range=(-1, 1)).latent_dim
    4
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        input_format: ImageFormat | None = None,
        output_format: ImageFormat | None = None,
        value_range: tuple[float, float] | None = None,
        validate: bool = True,
    ):
        for name, model in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(model, keras.Model):
                raise TypeError(
                    f"`{name}` must be a Keras model. Received: {name}={model!r} "
                    f"of type {type(model).__name__}"
                )
        self.encoder = encoder
        self.decoder = decoder
        self.encoder.trainable = False
        self.decoder.trainable = False
        self.input_format = _format_or_infer(
            input_format, encoder.input_shape, value_range, "input_format"
        )
        self.output_format = _format_or_infer(
            output_format, decoder.output_shape, value_range, "output_format"
        )
        latent_shape = decoder.input_shape
        if len(latent_shape) != 2 or latent_shape[-1] is None:
            raise ValueError(
                "`decoder` must take flat latents of shape (batch, latent_dim). "
                f"Received: decoder.input_shape={latent_shape}"
            )
        self.latent_dim = int(latent_shape[-1])
        self.value_range = value_range
        if validate:
            self.validate()

    def encode(self, images):
        return self.encoder(images, training=False)

    def decode(self, latents):
        return self.decoder(latents, training=False)

    def get_config(self) -> dict:
        return {
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "input_format": self.input_format.get_config(),
            "output_format": self.output_format.get_config(),
            "value_range": None if self.value_range is None else list(self.value_range),
        }

    @classmethod
    def from_config(cls, config: dict) -> KerasGenerator:
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tgt_keras")
class HubGenerator(ImageGenerator):
    """A generator loaded with `hub.load` that exposes `encode` and `generate` signatures.

    This is the calling convention of BigBiGAN on TF-Hub (`encode(x=...)["z_sample"]`,
    `generate(z=...)["default"]`); the names are arguments so other modules fit too. The
    project's offline generators are exported in the same format (see `export_hub_generator`).

    Args:
        handle: TF-Hub URL, local SavedModel directory, or a module already loaded by `hub.load`.
        input_format: format of the images `encode` consumes.
        output_format: format of the images `generate` returns under `generate_output`.
        latent_dim: latent size; read from the `generate` signature when omitted.
        encode_signature / generate_signature: signature names.
        encode_input / encode_output: input name and output key of the encode signature.
        generate_input / generate_output: input name and output key of the generate signature.
        validate: run `validate()` once in the constructor.

    Raises:
        ValueError: if a signature, input or output is missing, or a declared size disagrees with
            the signature.

    Example (needs the handle to be reachable):
    >>> gen = HubGenerator.from_preset("bigbigan-resnet50")  # doctest: +SKIP
    >>> gen.latent_dim  # doctest: +SKIP
    120
    """

    def __init__(
        self,
        handle: Any,
        input_format: ImageFormat,
        output_format: ImageFormat,
        latent_dim: int | None = None,
        encode_signature: str = "encode",
        generate_signature: str = "generate",
        encode_input: str = "x",
        encode_output: str = "z_sample",
        generate_input: str = "z",
        generate_output: str = "default",
        validate: bool = True,
    ):
        self.handle = handle
        self.input_format = as_image_format(input_format, "input_format")
        self.output_format = as_image_format(output_format, "output_format")
        self.encode_signature = encode_signature
        self.generate_signature = generate_signature
        self.encode_input = encode_input
        self.encode_output = encode_output
        self.generate_input = generate_input
        self.generate_output = generate_output

        self.module = hub_module.load_module(handle, "handle")
        what_enc = f"generator's `{encode_signature}` signature"
        what_gen = f"generator's `{generate_signature}` signature"
        self._encode_fn = hub_module.get_signature(self.module, encode_signature, "generator")
        self._generate_fn = hub_module.get_signature(self.module, generate_signature, "generator")
        x_spec = hub_module.signature_input_spec(self._encode_fn, encode_input, what_enc)
        hub_module.check_image_spec(x_spec, self.input_format, f"input `{encode_input}` of the "
                                    + what_enc)
        z_out = hub_module.signature_output_spec(self._encode_fn, encode_output, what_enc)
        z_spec = hub_module.signature_input_spec(self._generate_fn, generate_input, what_gen)
        x_out = hub_module.signature_output_spec(self._generate_fn, generate_output, what_gen)
        hub_module.check_image_spec(x_out, self.output_format, f"output `{generate_output}` of "
                                    "the " + what_gen)
        self._encode_dtype = x_spec.dtype
        self._latent_dtype = z_spec.dtype
        known = z_spec.shape[-1] if z_spec.shape.rank else None
        if latent_dim is None:
            if known is None:
                raise ValueError(
                    f"Cannot read the latent size from the {what_gen}: pass `latent_dim`. "
                    "Received: latent_dim=None"
                )
            latent_dim = int(known)
        if known is not None and int(known) != latent_dim:
            raise ValueError(
                f"`latent_dim` does not match the {what_gen}, which takes latents of size "
                f"{int(known)}. Received: latent_dim={latent_dim}"
            )
        encoded = z_out.shape[-1] if z_out.shape.rank else None
        if encoded is not None and int(encoded) != latent_dim:
            raise ValueError(
                f"The {what_enc} returns latents of size {int(encoded)} under "
                f"`{encode_output}`, but the decoder takes latent_dim={latent_dim}."
            )
        self.latent_dim = int(latent_dim)
        if validate:
            self.validate()

    @classmethod
    def from_preset(cls, name: str, handle: Any = None, output: str = "default",
                    **overrides) -> HubGenerator:
        """Builds the generator of a named preset (see `tgt_keras.teachers.presets`).

        Args:
            name: preset name, e.g. `"bigbigan-resnet50"`.
            handle: replaces the preset's TF-Hub URL (a mirror or a local copy).
            output: which decoder output: `"default"` (128x128) or `"upsampled"` (256x256).
            **overrides: replace any other constructor argument of the preset.
        """
        from tgt_keras.teachers.presets import generator_preset_kwargs

        kwargs = generator_preset_kwargs(name, output)
        if handle is not None:
            kwargs["handle"] = handle
        kwargs.update(overrides)
        return cls(**kwargs)

    def encode(self, images):
        images = tf.cast(images, self._encode_dtype)
        out = hub_module.call_module(self._encode_fn, **{self.encode_input: images})
        out = out[self.encode_output]
        return tf.cast(out, tf.float32)

    def decode(self, latents):
        latents = tf.cast(latents, self._latent_dtype)
        out = hub_module.call_module(self._generate_fn, **{self.generate_input: latents})
        out = out[self.generate_output]
        return tf.cast(out, tf.float32)

    def get_config(self) -> dict:
        if not isinstance(self.handle, str):
            raise ValueError(
                "Only a HubGenerator built from a handle string can be serialized. "
                f"Received: handle of type {type(self.handle).__name__}"
            )
        return {
            "handle": self.handle,
            "input_format": self.input_format.get_config(),
            "output_format": self.output_format.get_config(),
            "latent_dim": self.latent_dim,
            "encode_signature": self.encode_signature,
            "generate_signature": self.generate_signature,
            "encode_input": self.encode_input,
            "encode_output": self.encode_output,
            "generate_input": self.generate_input,
            "generate_output": self.generate_output,
        }
