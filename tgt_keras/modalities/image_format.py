"""Declared image formats and the explicit conversions between them.

TGT chains several models whose input conventions differ (in the paper: BigBiGAN encodes
256x256 images in [-1, 1], generates 128x128 images in [-1, 1], the labeler and the student have
their own sizes). Every adapter declares an `ImageFormat`; `convert_images` maps between two
declared formats and refuses conversions it cannot do faithfully instead of guessing.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ImageFormat:
    """Size, channels and value range of the images a model consumes or produces.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        channels: 1 (grey) or 3 (RGB).
        value_range: `(low, high)` of pixel values, e.g. `(-1.0, 1.0)` or `(0.0, 1.0)`.

    Example:
    >>> ImageFormat(256, 256, 3, (-1.0, 1.0)).shape
    (256, 256, 3)
    """

    height: int
    width: int
    channels: int = 3
    value_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        for name in ("height", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: {name}={value!r}"
                )
        if self.channels not in (1, 3):
            raise ValueError(
                f"`channels` must be 1 or 3. Received: channels={self.channels!r}"
            )
        try:
            low, high = (float(v) for v in self.value_range)
        except (TypeError, ValueError):
            raise ValueError(
                "`value_range` must be a pair (low, high) of numbers. "
                f"Received: value_range={self.value_range!r}"
            ) from None
        if not low < high:
            raise ValueError(
                "`value_range` must satisfy low < high. "
                f"Received: value_range={self.value_range!r}"
            )
        object.__setattr__(self, "value_range", (low, high))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def get_config(self) -> dict:
        return {
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "value_range": list(self.value_range),
        }

    @classmethod
    def from_config(cls, config: dict) -> ImageFormat:
        config = dict(config)
        config["value_range"] = tuple(config["value_range"])
        return cls(**config)

    @classmethod
    def from_shape(
        cls, shape, value_range: tuple[float, float], name: str = "model"
    ) -> ImageFormat:
        """Builds a format from a Keras input shape such as `(None, 28, 28, 1)`.

        Raises:
            ValueError: if the shape is not a fully known image shape.
        """
        dims = tuple(shape)[-3:]
        if len(dims) != 3 or any(d is None for d in dims):
            raise ValueError(
                f"Cannot infer the image format of {name}: expected an input shape "
                f"(batch, height, width, channels) with known sizes. Received: shape={shape}. "
                "Pass an explicit `ImageFormat`."
            )
        return cls(int(dims[0]), int(dims[1]), int(dims[2]), value_range)


def as_image_format(value, name: str) -> ImageFormat:
    """Accepts an `ImageFormat` or its config dict; raises a `TypeError` naming `name`."""
    if isinstance(value, ImageFormat):
        return value
    if isinstance(value, dict):
        return ImageFormat.from_config(value)
    raise TypeError(
        f"`{name}` must be an `ImageFormat`. Received: {name}={value!r} "
        f"of type {type(value).__name__}"
    )


def convert_images(images: tf.Tensor, source: ImageFormat, target: ImageFormat) -> tf.Tensor:
    """Converts a batch of images from `source` to `target` format.

    The value range is mapped linearly, channels go grey->RGB by repetition and RGB->grey by
    luminance, and sizes change by bilinear resizing (antialiased when shrinking). Nothing is done
    for an attribute that already matches, so the identity conversion is free.

    Args:
        images: float tensor `[N, H, W, C]` in the `source` format.
        source: format of `images`.
        target: wanted format.

    Returns:
        A float32 tensor `[N, target.height, target.width, target.channels]`.

    Raises:
        ValueError: if the static shape of `images` does not match `source`.

    Example:
    >>> x = tf.zeros([2, 8, 8, 1])
    >>> convert_images(x, ImageFormat(8, 8, 1, (0, 1)), ImageFormat(4, 4, 3, (-1, 1))).shape
    TensorShape([2, 4, 4, 3])
    """
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        images = tf.cast(images, tf.float32)
    static = images.shape
    if static.rank is not None and (
        static.rank != 4 or any(
            s is not None and s != e for s, e in zip(static[1:], source.shape, strict=True)
        )
    ):
        raise ValueError(
            f"Expected images of shape (batch, {source.height}, {source.width}, "
            f"{source.channels}) as declared by the source format. Received: shape={static}"
        )
    if source.value_range != target.value_range:
        (s_low, s_high), (t_low, t_high) = source.value_range, target.value_range
        scale = (t_high - t_low) / (s_high - s_low)
        images = (images - s_low) * scale + t_low
    if source.channels != target.channels:
        if source.channels == 1:
            images = tf.repeat(images, 3, axis=-1)
        else:
            images = tf.image.rgb_to_grayscale(images)
    if (source.height, source.width) != (target.height, target.width):
        shrinking = target.height < source.height or target.width < source.width
        images = tf.image.resize(
            images, (target.height, target.width), method="bilinear", antialias=shrinking
        )
    return images
