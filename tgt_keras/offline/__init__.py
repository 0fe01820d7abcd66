"""Offline default teachers the package trains and caches itself (no download needed):
images (Fashion-MNIST, MNIST) and text (Rotten Tomatoes: a MiniLM labeler, a BART generator)."""

from tgt_keras.offline.teachers import (
    GENERATOR_FORMAT,
    IMAGE_FORMAT,
    OfflineTeachers,
    fashion_mnist_teachers,
    mnist_teachers,
    offline_teachers,
)
from tgt_keras.offline.text_generator import (
    MASK_ONLY_RECIPE,
    TEXT_GENERATOR_RECIPE,
    OfflineTextGenerator,
    offline_text_generator,
)
from tgt_keras.offline.text_labeler import (
    TEXT_LABELER_RECIPE,
    finetune_minilm_classifier,
    offline_text_labeler,
    offline_text_labeler_for_split,
)

# `text_teachers()` is not re-exported here: it would shadow its module `offline.text_teachers`.
from tgt_keras.offline.text_teachers import TextTeachers

__all__ = [
    "GENERATOR_FORMAT",
    "IMAGE_FORMAT",
    "MASK_ONLY_RECIPE",
    "TEXT_GENERATOR_RECIPE",
    "TEXT_LABELER_RECIPE",
    "OfflineTeachers",
    "OfflineTextGenerator",
    "TextTeachers",
    "fashion_mnist_teachers",
    "finetune_minilm_classifier",
    "mnist_teachers",
    "offline_teachers",
    "offline_text_generator",
    "offline_text_labeler",
    "offline_text_labeler_for_split",
]
