"""The teachers: generator and labeler adapters for images (Keras models, TF-Hub modules, image
formats, presets, hub export) and for text (a keras-hub BERT-family labeler over soft tokens, a
keras-hub BART generator)."""

from tgt_keras.teachers.generator import Generator, HubGenerator, ImageGenerator, KerasGenerator
from tgt_keras.teachers.hub_export import export_hub_generator
from tgt_keras.teachers.image_format import ImageFormat, convert_images
from tgt_keras.teachers.labeler import HubLabeler, KerasLabeler, Labeler
from tgt_keras.teachers.presets import GENERATOR_PRESETS
from tgt_keras.teachers.seq2seq_generator import Seq2SeqGenerator
from tgt_keras.teachers.text_labeler import SoftTokenClassifier, TextLabeler, minilm_preset_dir

__all__ = [
    "GENERATOR_PRESETS",
    "Generator",
    "HubGenerator",
    "HubLabeler",
    "ImageFormat",
    "ImageGenerator",
    "KerasGenerator",
    "KerasLabeler",
    "Labeler",
    "Seq2SeqGenerator",
    "SoftTokenClassifier",
    "TextLabeler",
    "convert_images",
    "export_hub_generator",
    "minilm_preset_dir",
]
