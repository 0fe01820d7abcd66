"""The seam between the training core and a kind of data (images, text, ...).

`TGTDistiller` and `explore` never ask what an example is. A `Modality` answers for them: what
an example looks like and how it is checked, how the teachers' and the student's formats convert,
and what a gradient crosses when the decode is discrete (a *relaxed* decode). One file per
modality under `tgt_keras/modalities/` implements it; `get_modality` picks one by name or from
the generator (`Generator.modality`), as Keras's `get_data_adapter` picks a data adapter.

The core imports no modality: a modality registers itself with `register_modality` when its
module is imported (`import tgt_keras` imports them all).

Example:
>>> from tgt_keras.core.modality import get_modality
>>> import tgt_keras  # registers "image" and "text"
>>> get_modality("image").name
'image'
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import tensorflow as tf

_REGISTRY: dict[str, type[Modality]] = {}


class Modality:
    """What the training core needs to know about one kind of example.

    Every method that involves a teacher or the student takes it as an argument, so a modality
    holds only its own settings (`get_config`) and one instance can serve any teachers.

    Formats: *real* examples are in the student's input format (what `fit` is given); decoded
    examples are in the generator's output format; `to_student` / `to_labeler` convert them.
    A *relaxed* example is what `relaxed_decode` returns: a differentiable stand-in for the
    decoded example that the labeler and the student accept (soft tokens for text; for
    continuous data it is the decoded example itself).
    """

    #: The registry name, also `Generator.modality` of the generators it serves.
    name: ClassVar[str] = ""
    #: The key of the examples in a precomputed `x` dict (`TGTDistiller.precompute`).
    example_key: ClassVar[str] = "examples"
    #: Extra per-step metrics that `exploration_metrics` returns (names stay stable).
    metric_names: ClassVar[tuple[str, ...]] = ()

    # --- construction-time checks ----------------------------------------------------------

    def bind(self, student, labeler, generator) -> Modality:
        """Checks that the student and the teachers fit this modality and each other, and
        returns the modality with what it infers from them filled in (`self` when nothing is
        inferred). Raises `ValueError` / `TypeError` naming what does not match. Called by the
        distiller's constructor."""
        return self

    def num_classes(self, student) -> int:
        """The number of classes the student predicts."""
        return int(student.output_shape[-1])

    # --- input checks ----------------------------------------------------------------------

    def check_spec(self, shape: tuple, dtype: tf.DType, what: str = "x") -> None:
        """Checks the shape (batch first) and dtype of real examples, without reading values."""
        raise NotImplementedError

    def check_values(self, x: np.ndarray, what: str = "x") -> None:
        """Checks the values of a NumPy array of real examples."""
        raise NotImplementedError

    def check_batch(self, x: tf.Tensor) -> tuple[tf.Tensor, list]:
        """In-step checks of a real batch: returns `x` in its compute dtype and the assertion
        ops (compiled out under XLA)."""
        raise NotImplementedError

    def cast_examples(self, x: np.ndarray) -> np.ndarray:
        """A NumPy array of real examples in the dtype the step computes with."""
        return np.asarray(x)

    # --- the teachers and the student ------------------------------------------------------

    def encode(self, generator, x) -> tf.Tensor:
        """`Enc(x)` of real examples."""
        raise NotImplementedError

    def decode(self, generator, latents) -> tf.Tensor:
        """`Dec(z)`: the synthetic examples (generator output format), no gradient needed."""
        raise NotImplementedError

    def relaxed_decode(self, generator, latents) -> tf.Tensor:
        """A decode that a gradient can cross (see the class docstring)."""
        return self.decode(generator, latents)

    def label(self, labeler, generator, examples) -> tf.Tensor:
        """The labeler's logits on decoded (or relaxed) examples."""
        raise NotImplementedError

    def label_real(self, labeler, x) -> tf.Tensor:
        """The labeler's logits on real examples."""
        raise NotImplementedError

    def to_student(self, generator, examples) -> tf.Tensor:
        """Decoded (or relaxed) examples in the student's input format."""
        raise NotImplementedError

    def exploration_metrics(self, source, explored_examples, teacher_logits, y) -> dict:
        """Per-example values of `metric_names` for a synthetic batch (`source`: the real
        examples each synthetic one started from, repeated like the latents; `y`: their labels
        repeated the same way). Empty by default."""
        return {}

    # --- serialization ---------------------------------------------------------------------

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> Modality:
        return cls(**config)


def register_modality(cls: type[Modality]) -> type[Modality]:
    """Class decorator: makes `get_modality(cls.name)` return `cls`."""
    if not cls.name:
        raise ValueError(f"A modality must have a `name`. Received: {cls.__name__}.name=''")
    _REGISTRY[cls.name] = cls
    return cls


def registered_modalities() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def get_modality(value: Any, generator=None, **options) -> Modality:
    """A `Modality` from an instance, a registered name, or (None) the generator's `modality`
    (`options` go to the constructor of a modality given by name).

    Raises:
        ValueError: for an unknown name. TypeError: for anything else.
    """
    if isinstance(value, Modality):
        return value
    if value is None:
        value = getattr(generator, "modality", "image")
    if isinstance(value, str):
        if value not in _REGISTRY:
            raise ValueError(
                f"`modality` must be one of {registered_modalities()} (or a `Modality`). "
                f"Received: modality={value!r}"
            )
        return _REGISTRY[value](**options)
    raise TypeError(
        f"`modality` must be a `Modality`, a registered name {registered_modalities()} or None. "
        f"Received: modality={value!r} of type {type(value).__name__}"
    )


def modality_from_config(config: dict) -> Modality:
    """Rebuilds a modality from `{"name": ..., "config": ...}` (`modality_to_config`)."""
    return _REGISTRY[config["name"]].from_config(config["config"])


def modality_to_config(modality: Modality) -> dict:
    return {"name": modality.name, "config": modality.get_config()}
