"""Labeler adapters: the teacher classifier that gives soft labels."""

from __future__ import annotations

from typing import Any

import keras

from tgt_keras.core.teacher import Labeler, as_labeler  # noqa: F401  (re-exported)
from tgt_keras.teachers import hub_module
from tgt_keras.teachers.image_format import ImageFormat, as_image_format

_OUTPUTS = ("logits", "probabilities")


def _check_outputs(outputs: str) -> str:
    if outputs not in _OUTPUTS:
        raise ValueError(f"`outputs` must be one of {_OUTPUTS}. Received: outputs={outputs!r}")
    return outputs


@keras.saving.register_keras_serializable(package="tgt_keras")
class KerasLabeler(Labeler):
    """A frozen Keras classifier as the teacher labeler.

    Args:
        model: Keras model from images to `[N, num_classes]` scores.
        input_format: the model's input format; inferred from `model.input_shape` and
            `value_range` when omitted.
        value_range: value range of the model's input images (used when `input_format` is None).
        outputs: `"logits"` or `"probabilities"` (what the last layer returns).

    Example:
    >>> net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
    ...                         keras.layers.Dense(3)])
    >>> KerasLabeler(net, value_range=(0, 1)).num_classes
    3
    """

    def __init__(
        self,
        model: keras.Model,
        input_format: ImageFormat | None = None,
        value_range: tuple[float, float] | None = None,
        outputs: str = "logits",
    ):
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"`model` must be a Keras model. Received: model={model!r} "
                f"of type {type(model).__name__}"
            )
        self.model = model
        self.model.trainable = False
        self.outputs = _check_outputs(outputs)
        if input_format is None:
            if value_range is None:
                raise ValueError(
                    "Declare the labeler's input value range: pass `input_format` or "
                    "`value_range`. Received: input_format=None, value_range=None"
                )
            input_format = ImageFormat.from_shape(model.input_shape, value_range, "labeler")
        self.input_format = as_image_format(input_format, "input_format")
        self.value_range = value_range
        out_shape = model.output_shape
        if len(out_shape) != 2 or out_shape[-1] is None:
            raise ValueError(
                "The labeler must return class scores of shape (batch, num_classes). "
                f"Received: output_shape={out_shape}"
            )
        self.num_classes = int(out_shape[-1])

    def _raw(self, images):
        return self.model(images, training=False)

    def get_config(self) -> dict:
        return {
            "model": keras.saving.serialize_keras_object(self.model),
            "input_format": self.input_format.get_config(),
            "value_range": None if self.value_range is None else list(self.value_range),
            "outputs": self.outputs,
        }

    @classmethod
    def from_config(cls, config: dict) -> KerasLabeler:
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tgt_keras")
class HubLabeler(Labeler):
    """A classifier loaded with `hub.load` (a TF-Hub handle or a local SavedModel).

    With `signature=None` the loaded object is called directly (TF2 reusable SavedModels such as
    TF-Hub image classifiers); otherwise `module.signatures[signature](**{input_key: x})`
    is called and `output_key` is read from its result.

    Args:
        handle: TF-Hub URL, SavedModel directory, or a module loaded by `hub.load`.
        input_format: format of the images the classifier consumes.
        num_classes: number of classes it scores.
        outputs: `"logits"` or `"probabilities"`.
        signature / input_key / output_key: how to call a signature (see above).

    Example (needs the handle to be reachable):
    >>> HubLabeler("https://tfhub.dev/google/imagenet/efficientnet_v2_imagenet1k_b0/"
    ...            "classification/2", ImageFormat(224, 224, 3, (0, 1)),
    ...            num_classes=1000)  # doctest: +SKIP
    """

    def __init__(
        self,
        handle: Any,
        input_format: ImageFormat,
        num_classes: int,
        outputs: str = "logits",
        signature: str | None = None,
        input_key: str | None = None,
        output_key: str | None = None,
    ):
        self.handle = handle
        self.input_format = as_image_format(input_format, "input_format")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(
                f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
            )
        self.num_classes = num_classes
        self.outputs = _check_outputs(outputs)
        self.signature, self.input_key, self.output_key = signature, input_key, output_key
        self.module = hub_module.load_module(handle, "handle")
        if signature is None:
            if not callable(self.module):
                raise ValueError(
                    "The labeler module is not callable: name the `signature` to call. "
                    f"Available signatures: {sorted(getattr(self.module, 'signatures', {}))}"
                )
            self._fn = self.module
        else:
            fn = hub_module.get_signature(self.module, signature, "labeler")
            if input_key is None or output_key is None:
                raise ValueError(
                    "`input_key` and `output_key` are required with `signature`. "
                    f"Received: input_key={input_key!r}, output_key={output_key!r}"
                )
            what = f"labeler's `{signature}` signature"
            spec = hub_module.signature_input_spec(fn, input_key, what)
            hub_module.check_image_spec(spec, self.input_format, f"input `{input_key}` of the "
                                        + what)
            out = hub_module.signature_output_spec(fn, output_key, what)
            if out.shape.rank and out.shape[-1] is not None and out.shape[-1] != num_classes:
                raise ValueError(
                    f"The {what} returns {out.shape[-1]} classes under `{output_key}`. "
                    f"Received: num_classes={num_classes}"
                )
            self._fn = lambda x: fn(**{input_key: x})[output_key]

    def _raw(self, images):
        return hub_module.call_module(self._fn, images)

    def get_config(self) -> dict:
        if not isinstance(self.handle, str):
            raise ValueError(
                "Only a HubLabeler built from a handle string can be serialized. "
                f"Received: handle of type {type(self.handle).__name__}"
            )
        return {
            "handle": self.handle,
            "input_format": self.input_format.get_config(),
            "num_classes": self.num_classes,
            "outputs": self.outputs,
            "signature": self.signature,
            "input_key": self.input_key,
            "output_key": self.output_key,
        }
