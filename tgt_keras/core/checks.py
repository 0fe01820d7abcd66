"""Input checks of `TGTDistiller`: what `fit` is given, before and during training.

Two kinds, so that mistakes fail early with a message naming the argument, what was expected
and what was received:
- `check_fit_data` runs once in `fit` / `evaluate`, in Python, on what can be known without
  reading the data: dtypes, shapes, an empty dataset, a global batch that the replicas cannot
  share evenly; and on NumPy inputs also the values.
- `check_batch` runs inside the (compiled) step on each batch: the examples' values (the
  modality's checks: pixel ranges, token ids) and class-index labels (integers, or floats of
  shape `(batch,)` / `(batch, 1)`) inside `[0, num_classes)`. It costs one reduction per batch.
  Under XLA the assertions are compiled out (XLA has no runtime assertions), so jit-compiled
  steps rely on the first kind.
What an example is (its dtype, shape and values) is the modality's to check
(`tgt_keras.core.modality.Modality`); this module checks the rest.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tgt_keras.core.modality import Modality

#: The optional keys of a precomputed `x` (`TGTDistiller.precompute`), besides the examples
#: (`Modality.example_key`: "images", "token_ids"): their latents and teacher logits, so that a
#: step skips the encoder and the labeler on real data.
CACHED_KEYS = ("latents", "teacher_logits")


def _check_label_dtype(dtype: tf.DType) -> None:
    if not (dtype.is_integer or dtype.is_floating):
        raise TypeError(
            "`y` must hold integer class indices or float one-hot / soft labels. "
            f"Received: dtype={dtype.name}"
        )


def split_inputs(x, example_key: str = "images"):
    """`(examples, latents or None, teacher_logits or None)` of a batch's `x`: examples, or a
    dict with the key `example_key` and optionally `CACHED_KEYS`."""
    if not isinstance(x, dict):
        return x, None, None
    _check_precomputed_keys(x.keys(), example_key)
    return x[example_key], x.get("latents"), x.get("teacher_logits")


def _check_precomputed_keys(keys, example_key):
    keys = set(keys)
    if example_key not in keys or keys - {example_key, *CACHED_KEYS}:
        raise ValueError(
            f"A dict `x` must have the key '{example_key}' and may have 'latents' and "
            f"'teacher_logits' (see `TGTDistiller.precompute`). Received: keys={sorted(keys)}"
        )


def check_batch(x, y, modality: Modality, num_classes: int):
    """In-step checks; returns `x` in its compute dtype and `y` unchanged (after the
    assertions)."""
    x, checks = modality.check_batch(x)
    if y is not None:
        y = tf.convert_to_tensor(y)
        _check_label_dtype(y.dtype)
        if _holds_class_indices(y.dtype.is_integer, y.shape.rank,
                                y.shape[-1] if y.shape.rank else None):
            expected = (f"`y` must hold class indices in [0, {num_classes}) (the labeler's "
                        "num_classes)")
            checks = [
                *checks,
                tf.debugging.assert_non_negative(
                    y, message=f"{expected}; a batch has a negative one or a NaN (printed)"),
                tf.debugging.assert_less(
                    y, tf.cast(num_classes, y.dtype),
                    message=f"{expected}; a batch has one >= {num_classes} (printed)"),
            ]
    with tf.control_dependencies(checks):
        x = tf.identity(x)
    return x, y


def check_fit_data(x, y, modality: Modality, num_classes: int, num_replicas: int,
                   batch_size: int | None = None, latent_shape: tuple | None = None) -> None:
    """Checks what is given to `fit`/`evaluate` before any step runs.

    `x` is a `tf.data.Dataset` (of `(x, y)` or `(x, y, sample_weight)`) or an array of examples
    with labels `y`; in both, examples may be a dict of precomputed arrays (`precompute`).
    Other inputs (Python generators, `PyDataset`) are left to Keras and the in-step checks.

    Raises:
        ValueError / TypeError naming the argument, the expectation and what was received.
    """
    key = modality.example_key
    if isinstance(x, tf.data.Dataset):
        _check_dataset(x, modality, num_classes, num_replicas, latent_shape)
    elif isinstance(x, dict) and y is not None:
        _check_precomputed_keys(x.keys(), key)
        arrays = {k: np.asarray(v) for k, v in x.items()}
        _check_precomputed_shapes({k: v.shape for k, v in arrays.items()}, num_classes,
                                  latent_shape)
        for name, value in arrays.items():
            if len(value) != len(arrays[key]):
                raise ValueError(
                    f"`x['{name}']` must have one row per "
                    f"{getattr(modality, 'example_noun', 'example')}. Received: "
                    f"len(x['{name}'])={len(value)}, len(x['{key}'])={len(arrays[key])}")
        _check_arrays(arrays[key], np.asarray(y), modality, num_classes, num_replicas,
                      32 if batch_size is None else batch_size)
    elif isinstance(x, np.ndarray | tf.Tensor) and y is not None:
        _check_arrays(np.asarray(x), np.asarray(y), modality, num_classes, num_replicas,
                      32 if batch_size is None else batch_size)


def _check_precomputed_shapes(shapes: dict, num_classes: int, latent_shape: tuple | None):
    expected = {"latents": latent_shape, "teacher_logits": (num_classes,)}
    for key, rest in expected.items():
        if key not in shapes:
            continue
        shape = tuple(shapes[key])
        if rest is None:
            ok = len(shape) >= 2
        else:
            ok = len(shape) == 1 + len(rest) and all(
                s is None or e is None or s == e for s, e in zip(shape[1:], rest, strict=True))
        if not ok:
            what = ("the labeler's num_classes" if key == "teacher_logits" else
                    "the generator's latent_dim" if rest is not None and len(rest) == 1 else
                    "the generator's latent_shape")
            dims = ", ".join(str(d) for d in (rest or ("...",)))
            raise ValueError(
                f"`x['{key}']` must have shape (batch, {dims}) ({what}). "
                f"Received: shape={shape}")


def _check_dataset(dataset, modality, num_classes, num_replicas, latent_shape=None):
    if int(dataset.cardinality()) == 0:
        raise ValueError("The training dataset is empty: it must yield at least one batch. "
                         "Received: a dataset with cardinality 0")
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            f"The dataset must yield `({modality.example_key}, labels)` or "
            f"`({modality.example_key}, labels, sample_weight)` tuples. Received: "
            f"element_spec={spec}"
        )
    x_spec, y_spec = spec[0], spec[1]
    if isinstance(x_spec, dict):
        _check_precomputed_keys(x_spec.keys(), modality.example_key)
        _check_precomputed_shapes({k: v.shape for k, v in x_spec.items()}, num_classes,
                                  latent_shape)
        x_spec = x_spec[modality.example_key]
    modality.check_spec(tuple(x_spec.shape), x_spec.dtype)
    _check_label_dtype(y_spec.dtype)
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


def check_examples(x: np.ndarray, modality: Modality) -> None:
    """Checks a NumPy array of examples on its own (no labels): not empty, of the modality's
    dtype, shape and values."""
    _check_not_empty(x, modality)
    modality.check_spec(x.shape, tf.as_dtype(x.dtype))
    modality.check_values(x)


def _check_not_empty(x, modality):
    if len(x) == 0:
        noun = getattr(modality, "example_noun", "example")
        raise ValueError(f"`x` is empty: it must hold at least one {noun}. Received: "
                         f"x.shape={x.shape}")


def _check_arrays(x, y, modality, num_classes, num_replicas, batch_size):
    _check_not_empty(x, modality)
    modality.check_spec(x.shape, tf.as_dtype(x.dtype))
    _check_label_dtype(tf.as_dtype(y.dtype))
    _check_label_shape(y.shape, num_classes)
    if len(y) != len(x):
        raise ValueError(f"`x` and `y` must have the same length. Received: len(x)={len(x)}, "
                         f"len(y)={len(y)}")
    modality.check_values(x)
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
