"""The teachers of an experiment: the configured labeler and generator (stubs for smoke runs)."""

from __future__ import annotations

import keras

from tgt_keras.experiments.config import OFFLINE_TEACHERS, SAVEDMODEL_PREFIX, ExperimentConfig
from tgt_keras.experiments.data import _channels, _data_size
from tgt_keras.teachers.generator import HubGenerator, KerasGenerator
from tgt_keras.teachers.image_format import ImageFormat
from tgt_keras.teachers.labeler import HubLabeler, KerasLabeler
from tgt_keras.teachers.presets import GENERATOR_PRESETS, LABELER_PRESETS, labeler_preset_kwargs


def _stub_teachers(config: ExperimentConfig, channels: int):
    """Tiny random teachers with the configured image sizes (for `smoke` runs)."""
    enc_size = _data_size(config)
    gen_size, lab_size, latent = config.generator_image_size, config.labeler_image_size, 8
    labeler_model = keras.Sequential([
        keras.Input((lab_size, lab_size, channels)),
        keras.layers.AveragePooling2D(max(1, lab_size // 4)),
        keras.layers.Flatten(),
        keras.layers.Dense(config.num_classes),
    ])
    labeler = KerasLabeler(labeler_model, value_range=(0.0, 1.0))
    encoder = keras.Sequential([
        keras.Input((enc_size, enc_size, channels)),
        keras.layers.AveragePooling2D(max(1, enc_size // 4)),
        keras.layers.Flatten(),
        keras.layers.Dense(latent),
    ])
    side = max(1, gen_size // 4)
    decoder = keras.Sequential([
        keras.Input((latent,)),
        keras.layers.Dense(4 * 4 * channels, activation="tanh"),
        keras.layers.Reshape((4, 4, channels)),
        keras.layers.Resizing(gen_size, gen_size) if gen_size % 4 else
        keras.layers.UpSampling2D(side, interpolation="bilinear"),
    ])
    generator = KerasGenerator(encoder, decoder, value_range=(-1.0, 1.0))
    return labeler, generator


def build_teachers(config: ExperimentConfig, smoke: bool = False):
    """Resolves the configured labeler and generator (stubs of the same sizes when `smoke`).

    Raises:
        ValueError: when a teacher's declared size differs from the config's image sizes.
    """
    channels = _channels(config)
    if smoke:
        return _stub_teachers(config, channels)
    offline_names = {config.labeler, config.generator} & set(OFFLINE_TEACHERS)
    if len(offline_names) > 1:
        raise ValueError(
            "`labeler` and `generator` must come from the same offline teachers. "
            f"Received: labeler={config.labeler!r}, generator={config.generator!r}"
        )
    if offline_names:
        from tgt_keras.offline import offline_teachers

        name = offline_names.pop()
        offline = offline_teachers(name.removesuffix("-offline").replace("-", "_"))
    if config.labeler in OFFLINE_TEACHERS:
        labeler = offline.labeler
    elif config.labeler in LABELER_PRESETS:
        labeler = HubLabeler(**labeler_preset_kwargs(config.labeler))
    else:
        size = config.labeler_image_size
        labeler = HubLabeler(config.labeler[len(SAVEDMODEL_PREFIX):],
                             ImageFormat(size, size, channels, (0.0, 1.0)), config.num_classes)
    if config.generator in OFFLINE_TEACHERS:
        generator = offline.generator
    elif config.generator in GENERATOR_PRESETS:
        generator = HubGenerator.from_preset(config.generator)
    else:
        size, enc = config.generator_image_size, _data_size(config)
        generator = HubGenerator(config.generator[len(SAVEDMODEL_PREFIX):],
                                 ImageFormat(enc, enc, channels, (-1.0, 1.0)),
                                 ImageFormat(size, size, channels, (-1.0, 1.0)))
    for name, declared, wanted in (
        ("labeler_image_size", labeler.input_format.height, config.labeler_image_size),
        ("generator_image_size", generator.output_format.height, config.generator_image_size),
    ):
        if declared != wanted:
            raise ValueError(
                f"`{name}` must match the teacher's declared size {declared}. "
                f"Received: {name}={wanted}"
            )
    return labeler, generator
