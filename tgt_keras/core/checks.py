"""Input checks of `TGTDistiller`: what `fit` is given, before and during training.

Two kinds, so that mistakes fail early with a message naming the argument, what was expected
and what was received:
- `check_fit_data` runs once in `fit` / `evaluate`, in Python, on what can be known without
  reading the data: dtypes, shapes, an empty dataset, a global batch that the replicas cannot
  share evenly; and on NumPy inputs also the values.
- `check_batch` runs inside the (compiled) step on each batch: pixel values inside the declared
  range and class-index labels (integers, or floats of shape `(batch,)` / `(batch, 1)`) inside
  `[0, num_classes)`. It costs one min/max reduction per batch.
  Under XLA the assertions are compiled out (XLA has no runtime assertions), so jit-compiled
  steps rely on the first kind.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tgt_keras.teachers.image_format import ImageFormat

# Pixels may exceed the declared range by this fraction of its width (rounding, resizing).
RANGE_TOLERANCE = 1e-3


def _allowed_range(fmt: ImageFormat) -> tuple[float, float]:
    low, high = fmt.value_range
    slack = RANGE_TOLERANCE * (high - low)
    return low - slack, high + slack


def _check_image_dtype(dtype: tf.DType, fmt: ImageFormat) -> None:
    if not dtype.is_floating:
        raise TypeError(
            f"`x` must hold floating-point images with values in {fmt.value_range} (the "
            f"distiller's `input_format`). Received: dtype={dtype.name}. Integer images (e.g. "
            "uint8 in [0, 255]) must be converted first, e.g. `x / 255`."
        )


def _check_label_dtype(dtype: tf.DType) -> None:
    if not (dtype.is_integer or dtype.is_floating):
        raise TypeError(
            "`y` must hold integer class indices or float one-hot / soft labels. "
            f"Received: dtype={dtype.name}"
        )


#: The keys of a precomputed `x` (`TGTDistiller.precompute`): images plus their latents and
#: teacher logits, so that a step skips the encoder and the labeler on real data.
PRECOMPUTED_KEYS = ("images", "latents", "teacher_logits")


def split_inputs(x):
    """`(images, latents or None, teacher_logits or None)` of a batch's `x`: images, or a dict
    with `PRECOMPUTED_KEYS` ("images" required)."""
    if not isinstance(x, dict):
        return x, None, None
    _check_precomputed_keys(x.keys())
    return x["images"], x.get("latents"), x.get("teacher_logits")


def _check_precomputed_keys(keys):
    keys = set(keys)
    if "images" not in keys or keys - set(PRECOMPUTED_KEYS):
        raise ValueError(
            f"A dict `x` must have the key 'images' and may have 'latents' and "
            f"'teacher_logits' (see `TGTDistiller.precompute`). Received: keys={sorted(keys)}"
        )


def check_batch(x, y, fmt: ImageFormat, num_classes: int):
    """In-step checks; returns `x` as float32 and `y` unchanged (after the assertions)."""
    x = tf.convert_to_tensor(x)
    _check_image_dtype(x.dtype, fmt)
    x = tf.cast(x, tf.float32)
    low, high = _allowed_range(fmt)
    checks = [
        tf.debugging.assert_greater_equal(
            tf.reduce_min(x), tf.constant(low, tf.float32),
            message=f"`x` must have values in the input_format's value_range {fmt.value_range}; "
            "a batch has a smaller value or a NaN (the printed minimum)",
        ),
        tf.debugging.assert_less_equal(
            tf.reduce_max(x), tf.constant(high, tf.float32),
            message=f"`x` must have values in the input_format's value_range {fmt.value_range}; "
            "a batch has a larger value or a NaN (the printed maximum)",
        ),
    ]
    if y is not None:
        y = tf.convert_to_tensor(y)
        _check_label_dtype(y.dtype)
        if _holds_class_indices(y.dtype.is_integer, y.shape.rank,
                                y.shape[-1] if y.shape.rank else None):
            expected = (f"`y` must hold class indices in [0, {num_classes}) (the labeler's "
                        "num_classes)")
            checks += [
                tf.debugging.assert_non_negative(
                    y, message=f"{expected}; a batch has a negative one or a NaN (printed)"),
                tf.debugging.assert_less(
                    y, tf.cast(num_classes, y.dtype),
                    message=f"{expected}; a batch has one >= {num_classes} (printed)"),
            ]
    with tf.control_dependencies(checks):
        x = tf.identity(x)
    return x, y


def check_fit_data(x, y, fmt: ImageFormat, num_classes: int, num_replicas: int,
                   batch_size: int | None = None, latent_dim: int | None = None) -> None:
    """Checks what is given to `fit`/`evaluate` before any step runs.

    `x` is a `tf.data.Dataset` (of `(x, y)` or `(x, y, sample_weight)`) or an array of images
    with labels `y`; in both, images may be a dict of precomputed arrays (`PRECOMPUTED_KEYS`).
    Other inputs (Python generators, `PyDataset`) are left to Keras and the in-step checks.

    Raises:
        ValueError / TypeError naming the argument, the expectation and what was received.
    """
    if isinstance(x, tf.data.Dataset):
        _check_dataset(x, fmt, num_classes, num_replicas, latent_dim)
    elif isinstance(x, dict) and y is not None:
        _check_precomputed_keys(x.keys())
        arrays = {k: np.asarray(v) for k, v in x.items()}
        _check_precomputed_shapes({k: v.shape for k, v in arrays.items()}, num_classes,
                                  latent_dim)
        for key, value in arrays.items():
            if len(value) != len(arrays["images"]):
                raise ValueError(
                    f"`x['{key}']` must have one row per image. Received: "
                    f"len(x['{key}'])={len(value)}, len(x['images'])={len(arrays['images'])}")
        _check_arrays(arrays["images"], np.asarray(y), fmt, num_classes, num_replicas,
                      32 if batch_size is None else batch_size)
    elif isinstance(x, np.ndarray | tf.Tensor) and y is not None:
        _check_arrays(np.asarray(x), np.asarray(y), fmt, num_classes, num_replicas,
                      32 if batch_size is None else batch_size)


def _check_precomputed_shapes(shapes: dict, num_classes: int, latent_dim: int | None):
    expected = {"latents": latent_dim, "teacher_logits": num_classes}
    for key, width in expected.items():
        if key not in shapes:
            continue
        shape = tuple(shapes[key])
        if len(shape) != 2 or (width is not None and shape[1] not in (None, width)):
            raise ValueError(
                f"`x['{key}']` must have shape (batch, {width}) (the "
                f"{'generator' if key == 'latents' else 'labeler'}'s "
                f"{'latent_dim' if key == 'latents' else 'num_classes'}). "
                f"Received: shape={shape}")


def _check_dataset(dataset, fmt, num_classes, num_replicas, latent_dim=None):
    if int(dataset.cardinality()) == 0:
        raise ValueError("The training dataset is empty: it must yield at least one batch. "
                         "Received: a dataset with cardinality 0")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            "The dataset must yield `(images, labels)` or `(images, labels, sample_weight)` "
            f"tuples. Received: element_spec={spec}"
        )
    x_spec, y_spec = spec[0], spec[1]
    if isinstance(x_spec, dict):
        _check_precomputed_keys(x_spec.keys())
        _check_precomputed_shapes({k: v.shape for k, v in x_spec.items()}, num_classes,
                                  latent_dim)
        x_spec = x_spec["images"]
    _check_image_dtype(x_spec.dtype, fmt)
    _check_label_dtype(y_spec.dtype)
    _check_image_shape(tuple(x_spec.shape), fmt)
    _check_label_shape(tuple(y_spec.shape), num_classes)
    batch = x_spec.shape[0]
    if batch is None and num_replicas > 1:
        batch = _inferred_batch_size(dataset)
    if batch is not None and batch % num_replicas:
        raise ValueError(
            f"The global batch size must be divisible by the number of replicas "
            f"({num_replicas}) so that each replica gets the same share. Received: "
            f"batch size {batch}"
        )


def check_images(x: np.ndarray, fmt: ImageFormat) -> None:
    """Checks a NumPy array of images on its own (no labels): not empty, floating point, of
    `fmt`'s shape and inside its value range."""
    _check_not_empty(x)
    _check_image_dtype(tf.as_dtype(x.dtype), fmt)
    _check_image_shape(x.shape, fmt)
    _check_image_values(x, fmt)


def _check_not_empty(x):
    if len(x) == 0:
        raise ValueError("`x` is empty: it must hold at least one image. Received: "
                         f"x.shape={x.shape}")


def _check_image_values(x, fmt):
    low, high = _allowed_range(fmt)
    # Written so that NaN fails too (every comparison with NaN is False).
    if not (x.min() >= low and x.max() <= high):
        nans = int(np.isnan(x).sum())
        received = (f"{nans} NaN value(s)" if nans else
                    f"values in [{x.min():g}, {x.max():g}]")
        raise ValueError(
            f"`x` must have values in the input_format's value_range {fmt.value_range}. "
            f"Received: {received}"
        )


def _check_arrays(x, y, fmt, num_classes, num_replicas, batch_size):
    _check_not_empty(x)
    _check_image_dtype(tf.as_dtype(x.dtype), fmt)
    _check_label_dtype(tf.as_dtype(y.dtype))
    _check_image_shape(x.shape, fmt)
    _check_label_shape(y.shape, num_classes)
    if len(y) != len(x):
        raise ValueError(f"`x` and `y` must have the same length. Received: len(x)={len(x)}, "
                         f"len(y)={len(y)}")
    _check_image_values(x, fmt)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(
            "`y` must hold finite labels. Received: "
            f"{int(np.size(y) - np.isfinite(y).sum())} non-finite value(s) (NaN or inf)"
        )
    indices = _holds_class_indices(np.issubdtype(y.dtype, np.integer), y.ndim, y.shape[-1])
    if indices and not (y.min() >= 0 and y.max() < num_classes):
        raise ValueError(
            f"`y` must hold class indices in [0, {num_classes}) (the labeler's num_classes). "
            f"Received: labels in [{y.min():g}, {y.max():g}]"
        )
    if batch_size % num_replicas:
        raise ValueError(
            f"`batch_size` must be divisible by the number of replicas ({num_replicas}). "
            f"Received: batch_size={batch_size}"
        )


def _holds_class_indices(is_integer: bool, rank: int | None, last_dim: int | None) -> bool:
    """Whether labels are class indices: integers, or floats of shape (batch,) or (batch, 1)
    (as `losses.label_loss` reads them); (batch, num_classes) floats are one-hot / soft labels.
    """
    return is_integer or rank == 1 or (rank == 2 and last_dim == 1)


def _inferred_batch_size(dataset) -> int | None:
    """The batch size of the dataset's last `batch` (as tf.distribute reads it), or None.

    For `dataset.batch(n)` without `drop_remainder` the static batch dimension is None; this
    reads `n` from the dataset graph without reading any data. None when it cannot be found
    (e.g. a `map` after the `batch`).
    """
    try:
        from tensorflow.python.data.experimental.ops.distribute import compute_batch_size

        size = int(compute_batch_size(dataset))
    except Exception:  # a private TF helper: never let it break `fit`
        return None
    return size if size > 0 else None


def _check_image_shape(shape, fmt):
    if len(shape) != 4 or any(s is not None and s != e
                              for s, e in zip(shape[1:], fmt.shape, strict=True)):
        raise ValueError(
            f"`x` must be images of shape (batch, {', '.join(map(str, fmt.shape))}) (the "
            f"distiller's `input_format`). Received: shape={shape}"
        )


def _check_label_shape(shape, num_classes):
    rank = len(shape)
    if rank == 2 and shape[-1] not in (None, 1, num_classes):
        raise ValueError(
            f"`y` must be class indices (batch,) or (batch, 1), or one-hot (batch, "
            f"{num_classes}). Received: shape={shape}"
        )
    if rank not in (1, 2):
        raise ValueError(
            f"`y` must be class indices (batch,) or one-hot (batch, {num_classes}). "
            f"Received: shape={shape}"
        )
