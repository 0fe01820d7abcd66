"""ImageFormat validation and the conversions between formats."""

import numpy as np
import pytest
import tensorflow as tf

from tgt_keras import ImageFormat, convert_images

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too


def test_value_range_unit_to_symmetric_exact_values():
    src, dst = ImageFormat(1, 3, 1, (0, 1)), ImageFormat(1, 3, 1, (-1, 1))
    images = np.array([0.0, 0.5, 1.0], "float32").reshape(1, 1, 3, 1)
    out = convert_images(images, src, dst).numpy()
    np.testing.assert_array_equal(out.reshape(-1), [-1.0, 0.0, 1.0])


def test_value_range_symmetric_to_byte_range():
    src, dst = ImageFormat(1, 3, 1, (-1, 1)), ImageFormat(1, 3, 1, (0, 255))
    images = np.array([-1.0, 0.0, 1.0], "float32").reshape(1, 1, 3, 1)
    out = convert_images(images, src, dst).numpy()
    np.testing.assert_allclose(out.reshape(-1), [0.0, 127.5, 255.0], rtol=1e-6)


def test_value_range_round_trip():
    a, b = ImageFormat(4, 4, 3, (0, 1)), ImageFormat(4, 4, 3, (-2, 5))
    images = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 3)).astype("float32")
    back = convert_images(convert_images(images, a, b), b, a).numpy()
    np.testing.assert_allclose(back, images, atol=1e-6)


def test_identity_conversion_is_unchanged():
    fmt = ImageFormat(5, 7, 3, (-1, 1))
    images = np.random.default_rng(0).uniform(-1, 1, (2, 5, 7, 3)).astype("float32")
    np.testing.assert_array_equal(convert_images(images, fmt, fmt).numpy(), images)


def test_integer_images_become_float32():
    fmt = ImageFormat(2, 2, 1, (0, 255))
    out = convert_images(np.full((1, 2, 2, 1), 7, "uint8"), fmt, fmt)
    assert out.dtype == tf.float32
    np.testing.assert_array_equal(out.numpy(), 7.0)


def test_grey_to_rgb_repeats_the_channel():
    images = np.random.default_rng(0).uniform(0, 1, (2, 3, 3, 1)).astype("float32")
    out = convert_images(images, ImageFormat(3, 3, 1), ImageFormat(3, 3, 3)).numpy()
    assert out.shape == (2, 3, 3, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], images[..., 0])


def test_rgb_to_grey_uses_luminance():
    pixel = np.array([0.2, 0.6, 0.9], "float32")
    images = np.tile(pixel, (1, 2, 2, 1))
    out = convert_images(images, ImageFormat(2, 2, 3), ImageFormat(2, 2, 1)).numpy()
    assert out.shape == (1, 2, 2, 1)
    expected = 0.2989 * 0.2 + 0.5870 * 0.6 + 0.1140 * 0.9  # ITU-R BT.601 luma
    np.testing.assert_allclose(out, expected, rtol=1e-3)


def test_range_and_channels_together():
    # Grey (0, 1) -> RGB (-1, 1): every channel holds 2x - 1.
    images = np.array([0.0, 0.25, 1.0, 0.5], "float32").reshape(1, 2, 2, 1)
    out = convert_images(images, ImageFormat(2, 2, 1, (0, 1)), ImageFormat(2, 2, 3, (-1, 1)))
    np.testing.assert_allclose(out.numpy(), np.repeat(2 * images - 1, 3, axis=-1), atol=1e-7)


@pytest.mark.parametrize("target_size", [(4, 4), (16, 16), (6, 10)])
def test_resize_shape(target_size):
    images = np.random.default_rng(0).uniform(0, 1, (3, 8, 8, 3)).astype("float32")
    out = convert_images(images, ImageFormat(8, 8, 3), ImageFormat(*target_size, 3))
    assert tuple(out.shape) == (3, *target_size, 3)


def test_resize_keeps_constant_images_constant():
    images = np.full((1, 8, 8, 1), 0.3, "float32")
    for size in (3, 8, 20):
        out = convert_images(images, ImageFormat(8, 8, 1), ImageFormat(size, size, 1)).numpy()
        np.testing.assert_allclose(out, 0.3, atol=1e-6)


def test_shrinking_is_antialiased():
    # A horizontal ramp 16 -> 8 columns. Antialiased bilinear = triangle filter of radius 2 input
    # pixels around each output centre 2k + 0.5: the interior keeps the ramp (2k + 0.5); at the
    # border the filter is cut and renormalised: weights 0.75, 0.75, 0.25 on pixels 0, 1, 2 give
    # (0 * 0.75 + 1 * 0.75 + 2 * 0.25) / 1.75 = 5 / 7 (plain bilinear would give 0.5).
    ramp = np.tile(np.arange(16, dtype="float32"), (1, 4, 1)).reshape(1, 4, 16, 1)
    out = convert_images(ramp, ImageFormat(4, 16, 1, (0, 16)), ImageFormat(4, 8, 1, (0, 16)))
    row = out.numpy()[0, 0, :, 0]
    np.testing.assert_allclose(row[1:7], 2 * np.arange(1, 7) + 0.5, atol=1e-5)
    np.testing.assert_allclose(row[0], 5 / 7, atol=1e-5)
    np.testing.assert_allclose(row[7], 15 - 5 / 7, atol=1e-5)


def test_enlarging_is_plain_bilinear():
    # 2 -> 4 columns: output centres at input coordinates -0.25, 0.25, 0.75, 1.25 (clamped).
    images = np.array([0.0, 1.0], "float32").reshape(1, 1, 2, 1)
    out = convert_images(images, ImageFormat(1, 2, 1), ImageFormat(1, 4, 1)).numpy()
    np.testing.assert_allclose(out.reshape(-1), [0.0, 0.25, 0.75, 1.0], atol=1e-6)


def test_shape_that_contradicts_the_source_format_raises():
    with pytest.raises(ValueError, match=r"Expected images of shape \(batch, 8, 8, 1\)"):
        convert_images(
            np.zeros((2, 8, 8, 3), "float32"), ImageFormat(8, 8, 1), ImageFormat(8, 8, 3)
        )
    with pytest.raises(ValueError, match="as declared by the source format"):
        convert_images(np.zeros((8, 8, 1), "float32"), ImageFormat(8, 8, 1), ImageFormat(4, 4, 1))


def test_shape_property_and_value_range_is_float_tuple():
    fmt = ImageFormat(32, 16, 1, [0, 255])
    assert fmt.shape == (32, 16, 1)
    assert fmt.value_range == (0.0, 255.0)
    assert isinstance(fmt.value_range, tuple)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(height=8, width=8, value_range=(1.0, -1.0)),
            r"`value_range` must satisfy low < high\. Received: value_range=\(1\.0, -1\.0\)",
        ),
        (dict(height=8, width=8, value_range=(0.5, 0.5)), "`value_range` must satisfy low < high"),
        (
            dict(height=8, width=8, value_range=(0, "a")),
            r"`value_range` must be a pair \(low, high\) of numbers",
        ),
        (
            dict(height=8, width=8, value_range=(0, 1, 2)),
            r"`value_range` must be a pair \(low, high\) of numbers",
        ),
        (dict(height=8, width=8, channels=2), r"`channels` must be 1 or 3\. Received: channels=2"),
        (dict(height=0, width=8), r"`height` must be a positive integer\. Received: height=0"),
        (dict(height=8, width=-3), r"`width` must be a positive integer\. Received: width=-3"),
        (dict(height=8.0, width=8), r"`height` must be a positive integer\. Received: height=8\.0"),
        (dict(height=True, width=8), "`height` must be a positive integer"),
    ],
)
def test_validation_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageFormat(**kwargs)


def test_get_config_round_trip():
    fmt = ImageFormat(12, 10, 3, (-1, 1))
    config = fmt.get_config()
    assert config == {"height": 12, "width": 10, "channels": 3, "value_range": [-1.0, 1.0]}
    assert ImageFormat.from_config(config) == fmt


def test_from_shape():
    fmt = ImageFormat.from_shape((None, 28, 20, 1), (0, 1))
    assert fmt == ImageFormat(28, 20, 1, (0.0, 1.0))
    with pytest.raises(ValueError, match="Cannot infer the image format of student"):
        ImageFormat.from_shape((None, None, None, 3), (0, 1), name="student")
    with pytest.raises(ValueError, match="Pass an explicit `ImageFormat`"):
        ImageFormat.from_shape((None, 10), (0, 1))
