"""Export an (encoder, decoder) pair as a TF-Hub-format SavedModel with BigBiGAN's signatures."""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from tgt_keras.teachers.image_format import ImageFormat


class _HubGeneratorModule(tf.Module):
    def __init__(self, encoder: keras.Model, decoder: keras.Model, latent_dim: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim


def export_hub_generator(
    encoder: keras.Model,
    decoder: keras.Model,
    path: str | os.PathLike,
    input_format: ImageFormat,
    sample_latents: bool = True,
) -> str:
    """Saves a generator as a SavedModel loadable with `hub.load` like BigBiGAN.

    Signatures (names as in BigBiGAN on TF-Hub):
    - `encode(x)`: `x` `[N, H, W, C]` in `input_format`; returns `z_mean` and `z_sample`.
      The encoder may return the latent directly, or `(z_mean, z_log_var)` (a VAE), in which
      case `z_sample = z_mean + exp(z_log_var / 2) * eps` when `sample_latents`.
    - `generate(z)`: `z` `[N, latent_dim]`; returns `default`, the decoder's images.

    Args:
        encoder: Keras encoder.
        decoder: Keras decoder taking `[N, latent_dim]`.
        path: output directory.
        input_format: format of the encoder's input images.
        sample_latents: whether `z_sample` adds posterior noise (VAE encoders only).

    Returns:
        The path, as a string.
    """
    latent_dim = int(decoder.input_shape[-1])
    module = _HubGeneratorModule(encoder, decoder, latent_dim)

    @tf.function(input_signature=[tf.TensorSpec([None, *input_format.shape], tf.float32)])
    def encode(x):
        out = encoder(x, training=False)
        if isinstance(out, list | tuple):
            z_mean, z_log_var = out
            z_sample = z_mean
            if sample_latents:
                eps = tf.random.normal(tf.shape(z_mean))
                z_sample = z_mean + tf.exp(0.5 * z_log_var) * eps
        else:
            z_mean = z_sample = out
        return {"z_mean": z_mean, "z_sample": z_sample}

    @tf.function(input_signature=[tf.TensorSpec([None, latent_dim], tf.float32)])
    def generate(z):
        return {"default": decoder(z, training=False)}

    module.encode = encode
    module.generate = generate
    path = os.fspath(path)
    tf.saved_model.save(module, path, signatures={"encode": encode, "generate": generate})
    return path
