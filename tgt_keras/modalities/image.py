"""The image modality: examples are float images `[N, H, W, C]` of a declared `ImageFormat`.

The teachers and the student may each want another size and value range (BigBiGAN decodes
128x128 images in [-1, 1]; a student may read 32x32 in [0, 1]): `convert_images` resizes and
rescales between them. Decoded images are clipped to the generator's declared value range, so
however far exploration goes the student sees images of the declared format. The decode is
continuous: the relaxed decode is the decode.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tgt_keras.core.modality import Modality, register_modality
from tgt_keras.modalities.image_format import ImageFormat, as_image_format, convert_images

# Pixels may exceed the declared range by this fraction of its width (rounding, resizing).
RANGE_TOLERANCE = 1e-3


@register_modality
class ImageModality(Modality):
    """Images in `input_format` (the student's input; default: its input shape in [0, 1]).

    Args:
        input_format: format of the real images given to `fit`, which is also the student's
            input format. None: the student's input shape with values in [0, 1].

    Example:
    >>> ImageModality(ImageFormat(28, 28, 1, (0.0, 1.0))).input_format.shape
    (28, 28, 1)
    """

    name = "image"
    example_key = "images"
    example_noun = "image"

    def __init__(self, input_format: ImageFormat | None = None):
        self.input_format = None if input_format is None else as_image_format(
            input_format, "input_format")

    def bind(self, student, labeler, generator) -> ImageModality:
        try:
            shape = tuple(student.input_shape[1:])
        except (AttributeError, ValueError):
            shape = None
        if self.input_format is None:
            return ImageModality(ImageFormat.from_shape(student.input_shape, (0.0, 1.0),
                                                        name="student"))
        if shape is not None and shape != self.input_format.shape:
            raise ValueError(
                "`input_format` must match the student's input shape "
                f"{shape}. Received: input_format.shape={self.input_format.shape}"
            )
        return self

    # --- input checks ----------------------------------------------------------------------

    def _allowed_range(self) -> tuple[float, float]:
        low, high = self.input_format.value_range
        slack = RANGE_TOLERANCE * (high - low)
        return low - slack, high + slack

    def check_spec(self, shape, dtype, what: str = "x") -> None:
        fmt = self.input_format
        if not tf.as_dtype(dtype).is_floating:
            raise TypeError(
                f"`{what}` must hold floating-point images with values in {fmt.value_range} "
                f"(the distiller's `input_format`). Received: dtype={tf.as_dtype(dtype).name}. "
                "Integer images (e.g. uint8 in [0, 255]) must be converted first, e.g. `x / 255`."
            )
        shape = tuple(shape)
        if len(shape) != 4 or any(s is not None and s != e
                                  for s, e in zip(shape[1:], fmt.shape, strict=True)):
            raise ValueError(
                f"`{what}` must be images of shape (batch, {', '.join(map(str, fmt.shape))}) "
                f"(the distiller's `input_format`). Received: shape={shape}"
            )

    def check_values(self, x: np.ndarray, what: str = "x") -> None:
        low, high = self._allowed_range()
        # Written so that NaN fails too (every comparison with NaN is False).
        if not (x.min() >= low and x.max() <= high):
            nans = int(np.isnan(x).sum())
            received = (f"{nans} NaN value(s)" if nans else
                        f"values in [{x.min():g}, {x.max():g}]")
            raise ValueError(
                f"`{what}` must have values in the input_format's value_range "
                f"{self.input_format.value_range}. Received: {received}"
            )

    def check_batch(self, x):
        x = tf.convert_to_tensor(x)
        self.check_spec(x.shape, x.dtype)
        x = tf.cast(x, tf.float32)
        low, high = self._allowed_range()
        value_range = self.input_format.value_range
        return x, [
            tf.debugging.assert_greater_equal(
                tf.reduce_min(x), tf.constant(low, tf.float32),
                message=f"`x` must have values in the input_format's value_range {value_range}; "
                "a batch has a smaller value or a NaN (the printed minimum)",
            ),
            tf.debugging.assert_less_equal(
                tf.reduce_max(x), tf.constant(high, tf.float32),
                message=f"`x` must have values in the input_format's value_range {value_range}; "
                "a batch has a larger value or a NaN (the printed maximum)",
            ),
        ]

    def cast_examples(self, x):
        return np.asarray(x).astype(np.float32)

    # --- the teachers and the student ------------------------------------------------------

    def encode(self, generator, x):
        return generator.encode(convert_images(x, self.input_format, generator.input_format))

    def decode(self, generator, latents):
        low, high = generator.output_format.value_range
        return tf.clip_by_value(generator.decode(latents), low, high)

    def label(self, labeler, generator, examples):
        return labeler.logits(
            convert_images(examples, generator.output_format, labeler.input_format))

    def label_real(self, labeler, x):
        return labeler.logits(convert_images(x, self.input_format, labeler.input_format))

    def to_student(self, generator, examples):
        return convert_images(examples, generator.output_format, self.input_format)

    def get_config(self) -> dict:
        return {"input_format": None if self.input_format is None
                else self.input_format.get_config()}

    @classmethod
    def from_config(cls, config: dict) -> ImageModality:
        fmt = config.get("input_format")
        return cls(None if fmt is None else ImageFormat.from_config(fmt))
