"""The default demo: one-hot vs KD vs TGT on long-tail Fashion-MNIST, fully offline.

A long-tail training set (ImageNet-LT-style counts 500 -> 5 per class, imbalance ratio 100,
1,242 images, seeded) trains the same small student four ways:
1. one-hot labels;
2. KD on real data, with `keras.distillation.Distiller` and an explicit
   `keras.losses.KLDivergence()` (the reference implementation of plain distillation);
3. TGT-random: the KD loss plus distillation on teacher-labelled random latent perturbations;
4. TGT-gradient: the same with `num_steps` of gradient ascent on the disagreement.
The teachers are the package's offline Fashion-MNIST labeler and VAE generator
(`tgt_keras.offline`). Every number in the output is measured by the run.

The demo's settings are our defaults, not the paper's (the paper's values are unknown).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tgt_keras.core.distiller import TGTDistiller
from tgt_keras.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from tgt_keras.data.long_tail import (
    balanced_accuracy,
    long_tail_counts,
    long_tail_indices,
    per_class_accuracy,
    shot_accuracies,
)
from tgt_keras.experiments.students import small_cnn
from tgt_keras.offline.teachers import (
    IMAGE_FORMAT,
    fashion_mnist_teachers,
)
from tgt_keras.progress import keras_verbose
from tgt_keras.reporting import plots

METHODS = ("one-hot", "KD", "TGT-random", "TGT-gradient")
#: KD as a careful user runs it: `TGTDistiller` with the synthetic term off, on the teacher's
#: logits cached once by `precompute` (each step equals a KD step; the teacher never runs in
#: it). Not in the demo's default table; the benchmarks and the sample-size study use it.
KD_CACHED = "KD-cached"
ALL_METHODS = (*METHODS, KD_CACHED)


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo (our defaults; none is a value from the paper)."""

    seed: int = 0
    max_count: int = 500
    imbalance_ratio: float = 100.0
    steps: int = 1000
    epochs: int = 5  # `steps` are split into this many Keras epochs (for logs only)
    batch_size: int = 64
    learning_rate: float = 1e-3
    student_width: int = 16  # the small_cnn student: width, 2*width filters
    temperature: float = 1.0
    real_loss_weight: float = 0.5  # as keras Distiller's student_loss_weight=0.5
    real_distillation_weight: float = 0.5
    synthetic_loss_weight: float = 1.0
    sigma: float = 0.5
    step_size: float = 1.0
    num_steps: int = 3
    output_dir: str = "runs/demo"

    def __post_init__(self):
        if self.steps < self.epochs or self.steps % self.epochs:
            raise ValueError(
                f"`steps` must be a positive multiple of `epochs`={self.epochs}. "
                f"Received: steps={self.steps}"
            )


#: `tgt-keras demo --quick`: a few steps per method, to check the pipeline.
QUICK = {"steps": 100, "epochs": 2, "output_dir": "runs/demo_quick"}


def build_student(width: int = 16, num_classes: int = 10) -> keras.Model:
    """The demo student: `small_cnn` on 28x28x1 images in [0, 1], returning logits."""
    return small_cnn(IMAGE_FORMAT.shape, num_classes, width=width)


def train_dataset(x, y, config: DemoConfig) -> tf.data.Dataset:
    """Shuffled, repeated batches of `(x, y)`; `x` is images or `TGTDistiller.precompute`'s
    dict."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(y), seed=config.seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def evaluate_student(student, x_test, y_test, train_counts) -> dict:
    """Balanced, many / medium / few-shot and per-class test accuracy of `student`."""
    logits = student.predict(x_test, batch_size=1000, verbose=0)
    pred = np.argmax(logits, -1)
    per_class = per_class_accuracy(y_test, pred, len(train_counts))
    return {
        "balanced": balanced_accuracy(y_test, pred, len(train_counts)),
        **shot_accuracies(per_class, train_counts),
        "per_class": per_class.tolist(),
    }


def _fit_kwargs(config: DemoConfig, logdir: Path | None) -> dict:
    callbacks = []
    if logdir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(logdir), write_graph=False))
    return {
        "steps_per_epoch": config.steps // config.epochs,
        "epochs": config.epochs,
        "verbose": keras_verbose(),  # bars on a terminal, a line per epoch in a log
        "shuffle": False,  # the tf.data pipeline shuffles (seeded)
        "callbacks": callbacks,
    }


def make_trainer(method: str, student, teachers, config: DemoConfig):
    """The compiled model that trains `student` with `method` (one of `ALL_METHODS`)."""
    optimizer = keras.optimizers.Adam(config.learning_rate)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if method == "one-hot":
        student.compile(optimizer=optimizer, loss=ce, metrics=["accuracy"])
        return student
    if method == "KD":
        trainer = keras.distillation.Distiller(
            teacher=teachers.labeler.model,
            student=student,
            distillation_losses=keras.distillation.LogitsDistillation(
                temperature=config.temperature, loss=keras.losses.KLDivergence()
            ),
            student_loss_weight=config.real_loss_weight,
        )
        trainer.compile(optimizer=optimizer, loss=ce, metrics=["accuracy"])
        return trainer
    trainer = TGTDistiller(
        student,
        teachers.labeler,
        teachers.generator,
        exploration="random" if method == "TGT-random" else "gradient",
        sigma=config.sigma,
        step_size=config.step_size,
        num_steps=config.num_steps,
        real_loss_weight=config.real_loss_weight,
        real_distillation_weight=config.real_distillation_weight,
        synthetic_loss_weight=0.0 if method == KD_CACHED else config.synthetic_loss_weight,
        temperature=config.temperature,
        input_format=IMAGE_FORMAT,
        seed=config.seed,
    )
    trainer.compile(optimizer=optimizer, metrics=["accuracy"])
    return trainer


def build_trainer(method: str, teachers, config: DemoConfig):
    """A fresh demo student seeded by `config.seed` and its compiled trainer for `method`."""
    keras.utils.set_random_seed(config.seed)
    return make_trainer(method, build_student(config.student_width), teachers, config)


def training_inputs(trainer, x):
    """What a trainer fits on: the images, or for a `TGTDistiller` (TGT and KD-cached)
    `precompute`'s cache (the teachers are frozen: encode and label the real images once, not
    at every visit)."""
    return trainer.precompute(x) if isinstance(trainer, TGTDistiller) else x


def train_student(method: str, x, y, teachers, config: DemoConfig, logdir=None, verbose=None):
    """Trains a fresh demo student on `(x, y)` with one of `ALL_METHODS`.

    The student's initialisation and the data order depend only on `config.seed`, so the
    methods are compared on equal terms.

    TGT methods (and KD-cached) train on `TGTDistiller.precompute`'s cached latents and teacher
    logits; the time spent caching counts as training time.

    Returns:
        `(trainer, seconds)`: the model that was fit (the student itself for "one-hot", else a
        distiller whose `.student` is trained) and the training wall time.
    """
    trainer = build_trainer(method, teachers, config)
    kwargs = _fit_kwargs(config, logdir)
    if verbose is not None:
        kwargs["verbose"] = verbose
    start = time.perf_counter()
    trainer.fit(train_dataset(training_inputs(trainer, x), y, config), **kwargs)
    return trainer, time.perf_counter() - start


def _sample_grid(distillers: dict, x_real, path: Path) -> bytes | None:
    """Real images, reconstructions and each TGT row's explored samples, with teacher labels."""
    rows = []
    for method, distiller in distillers.items():
        rows += plots.exploration_grid_rows(
            distiller, x_real, FASHION_MNIST_CLASSES, include_real=not rows,
            explored_name=method.replace("TGT-", "") + "-explored",
        )
    if not rows:
        return None
    return plots.image_grid(rows, path, "Teacher labels on real, reconstructed and explored images")


def run_demo(config: DemoConfig = DemoConfig(), methods=METHODS, teachers=None) -> dict:
    """Runs the demo, prints the results table and writes JSON, PNGs and TensorBoard logs.

    Args:
        config: the demo settings.
        methods: which of `ALL_METHODS` to train (default: `METHODS`).
        teachers: an `OfflineTeachers`; by default the cached Fashion-MNIST teachers (trained
            on first use).

    Returns:
        The results dict (also written to `<output_dir>/results.json`).
    """
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"`methods` must be a subset of {ALL_METHODS}. Received: {unknown}")
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if teachers is None:
        teachers = fashion_mnist_teachers()

    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    counts = long_tail_counts(10, config.max_count, config.imbalance_ratio)
    idx = long_tail_indices(y_train, counts, seed=config.seed)
    x_lt = (x_train[idx].astype("float32") / 255.0)[..., None]
    y_lt = y_train[idx]
    x_eval = (x_test.astype("float32") / 255.0)[..., None]
    print(f"Long-tail training set: {len(idx)} images, per-class counts {counts.tolist()}")

    teacher_pred = np.argmax(teachers.labeler.model.predict(x_eval, 1000, verbose=0), -1)
    teacher_per_class = per_class_accuracy(y_test, teacher_pred, 10)
    rows = [{"method": "teacher (reference, full 60k)",
             "balanced": balanced_accuracy(y_test, teacher_pred, 10),
             **shot_accuracies(teacher_per_class, counts), "seconds": float("nan")}]
    distillers = {}
    for method in methods:
        print(f"\n=== {method} ===", flush=True)
        trainer, seconds = train_student(method, x_lt, y_lt, teachers, config,
                                         out / "tensorboard" / method)
        student = trainer if method == "one-hot" else trainer.student
        result = evaluate_student(student, x_eval, y_test, counts)
        rows.append({"method": method, **result, "seconds": seconds})
        if method.startswith("TGT"):
            distillers[method] = trainer
        student.save(out / f"student_{method}.keras")

    table = format_table(rows)
    print("\n" + table)
    accs = {r["method"]: r["balanced"] for r in rows}
    ordering = [m for m in METHODS if m in accs]
    ordered = all(accs[a] < accs[b] for a, b in zip(ordering, ordering[1:], strict=False))
    print(f"Ordering {' < '.join(ordering)} holds: {ordered}")
    if "KD" in accs and "TGT-gradient" in accs:
        print(f"TGT-gradient - KD = {100 * (accs['TGT-gradient'] - accs['KD']):+.1f} points")

    results = {
        "config": dataclasses.asdict(config),
        "train_counts": counts.tolist(),
        "teachers": teachers.report,
        "rows": rows,
        "ordering_holds": ordered,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    chart = plots.accuracy_bar_chart(
        [r for r in rows if r["method"] in ALL_METHODS], out / "accuracy.png",
        "Long-tail Fashion-MNIST: balanced test accuracy of the student",
    )
    grid = _sample_grid(distillers, x_lt[:10], out / "samples.png")
    plots.write_png_to_tensorboard(out / "tensorboard" / "figures", "accuracy", chart)
    if grid is not None:
        plots.write_png_to_tensorboard(out / "tensorboard" / "figures", "samples", grid)
    print(f"Wrote {out / 'results.json'}, {out / 'accuracy.png'}, {out / 'samples.png'} and "
          f"TensorBoard logs in {out / 'tensorboard'}")
    return results


def format_table(rows) -> str:
    """A Markdown table of balanced / many / medium / few-shot accuracy and wall time."""
    lines = [
        "| method | balanced acc | many-shot | medium-shot | few-shot | train wall time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        seconds = "-" if np.isnan(r["seconds"]) else f"{r['seconds']:.0f}"
        lines.append(
            f"| {r['method']} | {r['balanced']:.3f} | {r['many']:.3f} | {r['medium']:.3f} | "
            f"{r['few']:.3f} | {seconds} |"
        )
    return "\n".join(lines)
