"""Data: offline dataset loaders, long-tail subsets and long-tail metrics."""

from tgt_keras.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from tgt_keras.data.long_tail import (
    balanced_accuracy,
    long_tail_counts,
    long_tail_indices,
    per_class_accuracy,
    shot_accuracies,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "balanced_accuracy",
    "load_fashion_mnist",
    "long_tail_counts",
    "long_tail_indices",
    "per_class_accuracy",
    "shot_accuracies",
]
