"""Offline default teachers the package trains and caches itself (no download needed)."""

from tgt_keras.offline.teachers import (
    GENERATOR_FORMAT,
    IMAGE_FORMAT,
    OfflineTeachers,
    fashion_mnist_teachers,
    mnist_teachers,
    offline_teachers,
)

__all__ = [
    "GENERATOR_FORMAT",
    "IMAGE_FORMAT",
    "OfflineTeachers",
    "fashion_mnist_teachers",
    "mnist_teachers",
    "offline_teachers",
]
