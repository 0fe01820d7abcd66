"""Offline default teachers the package trains and caches itself (no download needed)."""

from tgt_keras.offline.fashion_mnist import (
    GENERATOR_FORMAT,
    IMAGE_FORMAT,
    OfflineTeachers,
    fashion_mnist_teachers,
)

__all__ = ["GENERATOR_FORMAT", "IMAGE_FORMAT", "OfflineTeachers", "fashion_mnist_teachers"]
