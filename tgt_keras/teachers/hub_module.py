"""Loading TF-Hub modules (handles or local SavedModels) and checking their signatures."""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf


def call_module(fn, *args, **kwargs):
    """Calls a function of a loaded module from any `tf.distribute` context.

    A module loaded with `hub.load` inside a strategy's scope holds distributed variables, and
    TensorFlow's loader only lets its functions run in a replica context (from cross-replica
    context they fail with "Trying to access a placeholder that is not supposed to be
    executed"). Training steps run in replica context; for the other calls (validation probes,
    plots, `explore_batch` from user code) this runs `fn` on every replica with the same
    inputs and returns the first replica's result.
    """
    if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
        strategy = tf.distribute.get_strategy()
        result = strategy.run(fn, args=args, kwargs=kwargs)
        return tf.nest.map_structure(lambda v: strategy.experimental_local_results(v)[0], result)
    return fn(*args, **kwargs)


def load_module(handle: Any, name: str = "handle") -> Any:
    """Loads a TF-Hub handle or a local SavedModel directory with `hub.load`.

    An already loaded module (anything with `.signatures`) is returned as it is.

    Raises:
        TypeError: if `handle` is neither a string, a path nor a loaded module.
        ValueError: if a local path does not exist.
    """
    if hasattr(handle, "signatures"):
        return handle
    if not isinstance(handle, str | os.PathLike):
        raise TypeError(
            f"`{name}` must be a TF-Hub handle, a SavedModel directory or a module loaded with "
            f"`hub.load`. Received: {name}={handle!r} of type {type(handle).__name__}"
        )
    handle = os.fspath(handle)
    if "://" not in handle and not os.path.isdir(handle):
        raise ValueError(
            f"`{name}` is neither a URL nor an existing SavedModel directory. "
            f"Received: {name}={handle!r}"
        )
    import tensorflow_hub as hub

    return hub.load(handle)


def get_signature(module: Any, signature: str, what: str):
    """Returns `module.signatures[signature]`; a `ValueError` lists the available ones."""
    signatures = getattr(module, "signatures", {}) or {}
    if signature not in signatures:
        raise ValueError(
            f"The {what} has no `{signature}` signature. "
            f"Available signatures: {sorted(signatures)}"
        )
    return signatures[signature]


def signature_input_spec(fn, key: str, what: str) -> tf.TensorSpec:
    """Returns the `TensorSpec` of the keyword input `key` of a signature function."""
    _, kwargs = fn.structured_input_signature
    if key not in kwargs:
        raise ValueError(
            f"The {what} has no input named `{key}`. Available inputs: {sorted(kwargs)}"
        )
    return kwargs[key]


def signature_output_spec(fn, key: str, what: str) -> tf.TensorSpec:
    """Returns the `TensorSpec` of the output `key` of a signature function."""
    outputs = fn.structured_outputs
    if not isinstance(outputs, dict) or key not in outputs:
        available = sorted(outputs) if isinstance(outputs, dict) else type(outputs).__name__
        raise ValueError(f"The {what} has no output named `{key}`. Available outputs: {available}")
    spec = outputs[key]
    return tf.TensorSpec(spec.shape, spec.dtype) if hasattr(spec, "shape") else spec


def check_image_spec(spec: tf.TensorSpec, image_format, what: str) -> None:
    """Checks that the known dimensions of an image `TensorSpec` match a declared format."""
    shape = spec.shape
    if shape.rank is None:
        return
    if shape.rank != 4:
        raise ValueError(f"The {what} must be a 4-D image batch. Received: shape={shape}")
    for got, declared in zip(shape[1:], image_format.shape, strict=True):
        if got is not None and got != declared:
            raise ValueError(
                f"The {what} has shape {shape}, which does not match the declared format "
                f"{image_format.shape}. Declare the format the module really uses."
            )
