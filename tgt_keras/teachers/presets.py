"""Named teacher presets: handle, signature names and the declared image formats.

Configs and examples refer to teachers by preset name, never by raw URL, so tests can swap a
local SavedModel in with `handle=...`. The BigBiGAN values below are facts from BigBiGAN's own
TF-Hub documentation (latent 120; `encode` takes 256x256x3 in [-1, 1] and returns `z_sample`;
`generate` returns `default` 128x128x3 or `upsampled` 256x256x3 in [-1, 1]); they are not
settings of the TGT paper.
"""

from __future__ import annotations

from tgt_keras.teachers.image_format import ImageFormat

_BIGBIGAN_OUTPUTS = {
    "default": ImageFormat(128, 128, 3, (-1.0, 1.0)),
    "upsampled": ImageFormat(256, 256, 3, (-1.0, 1.0)),
}

def _bigbigan(handle: str) -> dict:
    return {
        "handle": handle,
        "latent_dim": 120,
        "input_format": ImageFormat(256, 256, 3, (-1.0, 1.0)),
        "encode_signature": "encode",
        "encode_input": "x",
        "encode_output": "z_sample",
        "generate_signature": "generate",
        "generate_input": "z",
    }


GENERATOR_PRESETS: dict[str, dict] = {
    "bigbigan-resnet50": _bigbigan("https://tfhub.dev/deepmind/bigbigan-resnet50/1"),
    "bigbigan-revnet50x4": _bigbigan("https://tfhub.dev/deepmind/bigbigan-revnet50x4/1"),
}


#: TF-Hub image classifiers usable as labelers (TF2 SavedModels called directly, inputs in
#: [0, 1], logits out), with the input size and classes their TF-Hub pages state.
LABELER_PRESETS: dict[str, dict] = {
    "efficientnet-v2-b0-imagenet1k": {
        "handle": "https://tfhub.dev/google/imagenet/efficientnet_v2_imagenet1k_b0/classification/2",
        "input_format": ImageFormat(224, 224, 3, (0.0, 1.0)),
        "num_classes": 1000,
        "outputs": "logits",
    },
    "mobilenet-v2-140-224": {
        "handle": "https://tfhub.dev/google/imagenet/mobilenet_v2_140_224/classification/5",
        "input_format": ImageFormat(224, 224, 3, (0.0, 1.0)),
        "num_classes": 1001,  # index 0 is "background"
        "outputs": "logits",
    },
}


def labeler_preset_kwargs(name: str) -> dict:
    """Returns `HubLabeler` constructor arguments for preset `name`.

    Raises:
        ValueError: for an unknown preset.
    """
    if name not in LABELER_PRESETS:
        raise ValueError(
            f"Unknown labeler preset. Expected one of {sorted(LABELER_PRESETS)}. "
            f"Received: name={name!r}"
        )
    return dict(LABELER_PRESETS[name])


def generator_preset_kwargs(name: str, output: str = "default") -> dict:
    """Returns `HubGenerator` constructor arguments for preset `name`.

    Args:
        name: one of `GENERATOR_PRESETS`.
        output: which decoder output to use: `"default"` (128x128) or `"upsampled"` (256x256).

    Raises:
        ValueError: for an unknown preset or output.
    """
    if name not in GENERATOR_PRESETS:
        raise ValueError(
            f"Unknown generator preset. Expected one of {sorted(GENERATOR_PRESETS)}. "
            f"Received: name={name!r}"
        )
    if output not in _BIGBIGAN_OUTPUTS:
        raise ValueError(
            f"`output` must be one of {sorted(_BIGBIGAN_OUTPUTS)}. Received: output={output!r}"
        )
    kwargs = dict(GENERATOR_PRESETS[name])
    kwargs["generate_output"] = output
    kwargs["output_format"] = _BIGBIGAN_OUTPUTS[output]
    return kwargs
