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

`smoke=True` shrinks any experiment to a few steps on random images (random token ids for text)
with tiny stub teachers of the configured sizes, so every file in `hparams/` can be exercised
offline.

A text experiment (`TEXT_DATASETS`, see `tgt_keras.experiments.text`) trains a text student on
the labelled token ids with the text modality, on `precompute`'s cache, and writes the same run
directory except the image grids: `examples.md` instead (real, reconstructed and explored test
texts with the teacher's labels); its `metrics.json` holds the test `accuracy`, `macro_f1` and
`balanced_accuracy` (no shot groups: the labelled set is class-balanced), the validation set's,
and the sizes of its sets.

Data images are fed at the largest size a model of the chain needs (the generator's encoder
input for the paper's experiments: BigBiGAN encodes 256x256), and the student resizes them to
`student_image_size` with a `Resizing` layer at its input, so no real image is upsampled before
the encoder.

The run's parts live beside it: the data in `tgt_keras.experiments.data`, the teachers in
`tgt_keras.experiments.teachers` and the run directory's rules and files in
`tgt_keras.experiments.run_directory`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import yaml

from tgt_keras.core.distiller import TGTDistiller
from tgt_keras.data.long_tail import balanced_accuracy, per_class_accuracy, shot_accuracies
from tgt_keras.distribute import jit_compile_for, pick_strategy, strategy_name
from tgt_keras.experiments.config import ExperimentConfig, is_text
from tgt_keras.experiments.data import (
    ExperimentData,
    _class_names,
    _from_arrays,
    _grid_images,
    build_data,
)
from tgt_keras.experiments.run_directory import (
    _backed_up_epoch,
    _check_run_directory,
    _delete_run_outputs,
    _read_history,
    _truncate_history,
    _write_atomically,
    smoke_header,
    worker_directory,
)
from tgt_keras.experiments.students import build_student, build_text_student
from tgt_keras.experiments.teachers import build_teachers
from tgt_keras.reporting import plots
from tgt_keras.reporting.monitor import TGTMonitor
from tgt_keras.teachers.image_format import ImageFormat

logger = logging.getLogger("tgt_keras")


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


def _student(config: ExperimentConfig, input_format: ImageFormat | None,
             generator=None) -> keras.Model:
    if is_text(config):  # over the generator's vocabulary, shared by every model
        vocabulary = generator.vocabulary
        return build_text_student(config.student, vocabulary.size, config.sequence_length,
                                  config.num_classes, config.student_width, vocabulary.pad_id)
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


def build_distiller(config: ExperimentConfig, labeler, generator,
                    input_format: ImageFormat | None, steps_per_epoch: int, strategy=None,
                    metrics=("accuracy",)) -> TGTDistiller:
    """The compiled `TGTDistiller` of `config`: its student, TGT settings and optimizer.

    `input_format` is the images' (None for text: the generator's vocabulary and the config's
    `sequence_length` make the text student, and the text modality is picked).

    Call it under `strategy.scope()`; `strategy` (default: the current one) picks XLA with
    `jit_compile_for`. The student and the distiller (whose policy makes `compile` wrap the
    optimizer in a `LossScaleOptimizer` for "mixed_float16") take `config.precision`; the
    teachers stay as they were built.
    """
    strategy = strategy or tf.distribute.get_strategy()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        student = _student(config, input_format, generator)
        distiller = TGTDistiller(
            student, labeler, generator,
            exploration=config.exploration, sigma=config.sigma, step_size=config.step_size,
            num_steps=config.num_steps, hold_teacher_output=config.hold_teacher_output,
            real_loss_weight=config.real_loss_weight,
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
        smoke: a short run on random images (token ids) with stub teachers of the configured
            sizes (`SMOKE_STEPS` steps of `SMOKE_BATCH` examples per replica, one epoch).
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
        _write_atomically(out / "config.yaml", (smoke_header(config) if smoke else "") + text)

    keras.utils.set_random_seed(config.seed)
    text_run = None
    if is_text(config):
        from tgt_keras.experiments.text import build_text_run

        text_run = build_text_run(config, smoke, replicas, strategy)
        data = text_run.data
        # The student starts from the same weights whether the teachers were trained in this
        # process (drawing random numbers) or loaded from the cache.
        keras.utils.set_random_seed(config.seed)
    else:
        data = build_data(config, smoke, replicas=replicas)
    epochs, data = training_schedule(config, data, smoke, smoke_keeps)
    with strategy.scope():
        if text_run is None:
            labeler, generator = build_teachers(config, smoke)
        else:
            labeler, generator = text_run.labeler, text_run.generator
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
    callbacks = [
        EpochSeededStudent(distiller.student),
        # Before BackupAndRestore: a row written for an epoch whose backup the kill beat is
        # dropped by `_truncate_history` on resume (no gap, no duplicate).
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        # Before TGTMonitor, which reads the restored step count when training begins.
        # save_freq="epoch" (the default) on purpose: after loading a mid-epoch backup
        # (save_freq=N batches), Keras replays that epoch from its first batch, which
        # would train more steps than the uninterrupted run.
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
    ]
    if text_run is None:  # image grids; a text run writes examples.md at the end instead
        callbacks.append(TGTMonitor(out / "tensorboard", _grid_images(data), png_dir=out,
                                    every_n_steps=max(1, epochs * data.steps_per_epoch // 5),
                                    class_names=_class_names(config)))
    start = time.perf_counter()
    distiller.fit(
        train, epochs=epochs, steps_per_epoch=data.steps_per_epoch, callbacks=callbacks,
        verbose=2,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
    )
    seconds = time.perf_counter() - start

    student = distiller.student
    y_test, pred = _predict(student, data.test)
    per_class = per_class_accuracy(y_test, pred, config.num_classes)
    if text_run is not None:
        return _finish_text_run(config, out, distiller, text_run, smoke, strategy, replicas,
                                resume, initial_epoch, seconds, y_test, pred, per_class)
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


class EpochSeededStudent(keras.callbacks.Callback):
    """Starts every epoch from random state that is a pure function of the epoch: each seed
    generator of the student (its dropout layers') is set to `(its seed, epoch << 20)`.

    `BackupAndRestore` saves the weights and the optimizer, not the seed generators' states, so
    without this a resumed run would draw other dropout masks than the uninterrupted run. A
    student without dropout (the image students) has no seed generator: nothing changes.
    """

    def __init__(self, student: keras.Model):
        super().__init__()
        self._states = [v for v in student.variables if v.name == "seed_generator_state"]
        self._seeds = [int(keras.ops.convert_to_numpy(v)[0]) for v in self._states]

    def on_epoch_begin(self, epoch, logs=None):
        for state, seed in zip(self._states, self._seeds, strict=True):
            state.assign(np.array([seed, (epoch << 20) % 2**32], dtype=state.dtype))


def _finish_text_run(config, out: Path, distiller, text_run, smoke, strategy, replicas, resume,
                     initial_epoch, seconds, y_test, pred, per_class) -> dict:
    """A text run's metrics.json (test accuracy, macro-F1, balanced accuracy, validation's),
    student, per-class plot and examples.md."""
    from tgt_keras.experiments.text import classification_scores, example_table

    num_classes, student = config.num_classes, distiller.student
    validation = None
    if text_run.data.validation is not None:
        y_val, pred_val = _predict(student, text_run.data.validation)
        validation = {**classification_scores(y_val, pred_val, num_classes),
                      "balanced_accuracy": balanced_accuracy(y_val, pred_val, num_classes)}
    train_counts = text_run.data.train_counts
    metrics = {
        "experiment": config.name,
        "smoke": smoke,
        "strategy": strategy_name(strategy),
        "replicas": replicas,
        "precision": config.precision,
        "steps": int(keras.ops.convert_to_numpy(distiller.optimizer.iterations)),
        "resumed_from_epoch": initial_epoch if resume else None,
        "train_seconds": seconds,  # of this process's `fit` only
        # On the test split, measured once after training.
        **classification_scores(y_test, pred, num_classes),
        "balanced_accuracy": balanced_accuracy(y_test, pred, num_classes),
        "validation": validation,
        "per_class_accuracy": per_class.tolist(),
        "class_names": list(text_run.class_names),
        "train_counts": train_counts.tolist(),
        "sizes": text_run.sizes,
        "teachers": text_run.teacher_report,
        "history": _read_history(out / "history.csv"),
    }
    student.save(out / "student.keras")
    plots.per_class_accuracy_plot(
        {"TGT": per_class}, train_counts, out / "per_class_accuracy.png",
        class_names=list(text_run.class_names),
        title=f"{config.name}: test accuracy per class",
    )
    _write_atomically(out / "examples.md",
                      example_table(distiller, text_run, seed=config.seed) + "\n")
    # Last: its existence marks the run finished.
    _write_atomically(out / "metrics.json", json.dumps(metrics, indent=2, default=_json_default))
    return metrics


def _json_default(value):
    """NumPy scalars (in a teacher report) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


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


def _predict(student, test: tf.data.Dataset):
    """Labels and argmax predictions over one pass of the test set, a batch at a time."""
    labels, preds = [], []
    for x, y in test:
        preds.append(np.argmax(student(x, training=False), -1))
        labels.append(np.asarray(y))
    return np.concatenate(labels), np.concatenate(preds)
