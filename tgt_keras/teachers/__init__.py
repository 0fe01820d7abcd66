"""The teachers: generator and labeler adapters, image formats, presets and hub export."""

from tgt_keras.teachers.generator import Generator, HubGenerator, KerasGenerator
from tgt_keras.teachers.hub_export import export_hub_generator
from tgt_keras.teachers.image_format import ImageFormat, convert_images
from tgt_keras.teachers.labeler import HubLabeler, KerasLabeler, Labeler
from tgt_keras.teachers.presets import GENERATOR_PRESETS

__all__ = [
    "GENERATOR_PRESETS",
    "Generator",
    "HubGenerator",
    "HubLabeler",
    "ImageFormat",
    "KerasGenerator",
    "KerasLabeler",
    "Labeler",
    "convert_images",
    "export_hub_generator",
]
