"""Yelp-5 and Amazon-5 (the paper's text datasets) from their standard CSV files.

The files are those of Zhang, Zhao and LeCun (2015), "Character-level convolutional networks
for text classification": `yelp_review_full_csv.tar.gz` (650,000 train / 50,000 test reviews) and
`amazon_review_full_csv.tar.gz` (3,000,000 / 650,000), also mirrored by fast.ai as `.tgz`.
Nothing is downloaded here: unpack them so that the folders look like this (the defaults of
`load_review_csv(directory=None, ...)`):

    ~/data/yelp_review_full_csv/train.csv
    ~/data/yelp_review_full_csv/test.csv
    ~/data/amazon_review_full_csv/train.csv
    ~/data/amazon_review_full_csv/test.csv

Format: no header, every field quoted, quotes inside a field doubled (`""`); Yelp rows are
`label,text`, Amazon rows `label,title,text`; labels are 1..5 stars, mapped to 0..4. Inside a text
a newline is written as the two characters `\\n` and a quote sometimes as `\\"`: both are
unescaped. An Amazon text is "title. text" (no period added when the title already ends in . ! or
?; just the text when the title is empty). Rows whose text is empty are skipped.

Reading is one pass of Python's `csv` module: about 1 s per 100,000 rows; Amazon's 3,000,000
training rows take roughly half a minute and a few GB of memory as Python strings (`max_train`
caps that).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from tgt_keras.data.rotten_tomatoes import (
    TEST_SPLIT_SEED,
    TextClassificationSplit,
    _labels,
    _texts,
    check_int,
    check_seed,
    stratified_counts,
    take_stratified,
)

REVIEW_CLASSES = ("1 star", "2 stars", "3 stars", "4 stars", "5 stars")
#: dataset -> (default folder, columns of a row, archive the folder comes from).
REVIEW_CSV_DATASETS = {
    "yelp5": ("~/data/yelp_review_full_csv", ("label", "text"), "yelp_review_full_csv.tar.gz"),
    "amazon5": ("~/data/amazon_review_full_csv", ("label", "title", "text"),
                "amazon_review_full_csv.tar.gz"),
}


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace('\\"', '"').strip()


def join_title(title: str, text: str) -> str:
    """"title. text" (no period added after . ! or ?; `text` alone for an empty title)."""
    title, text = title.strip(), text.strip()
    if not title:
        return text
    if not text:
        return title
    return f"{title} {text}" if title[-1] in ".!?" else f"{title}. {text}"


def read_review_csv(path: str | os.PathLike, dataset: str = "yelp5") -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """Reads one CSV file of `dataset`: object texts `[N]` and int64 labels 0..4 `[N]`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: for a row with the wrong number of fields or a label outside 1..5, naming the
            file and the line.
    """
    columns = _columns(dataset)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{dataset} file not found: {path}")
    texts, labels = [], []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        line = 1  # the line a row starts on (a quoted field may span lines)
        try:
            for row in reader:
                if len(row) != len(columns):
                    other = [d for d, (_, c, _) in REVIEW_CSV_DATASETS.items()
                             if len(c) == len(row)]
                    hint = f" (is this a {other[0]} file?)" if other else ""
                    raise ValueError(
                        f"{path} line {line}: expected {len(columns)} fields "
                        f"({','.join(columns)}) for dataset={dataset!r}, got {len(row)}{hint}."
                    )
                label = row[0].strip()
                if label not in ("1", "2", "3", "4", "5"):
                    raise ValueError(
                        f"{path} line {line}: the label must be a star rating in 1..5. "
                        f"Received: {label!r}"
                    )
                if len(columns) == 3:
                    text = join_title(_unescape(row[1]), _unescape(row[2]))
                else:
                    text = _unescape(row[1])
                if text:
                    texts.append(text)
                    labels.append(int(label) - 1)
                line = reader.line_num + 1
        except csv.Error as error:
            raise ValueError(f"{path} line {line}: malformed CSV ({error}).") from error
    return _texts(texts), _labels(labels)


def _columns(dataset: str) -> tuple[str, ...]:
    if dataset not in REVIEW_CSV_DATASETS:
        raise ValueError(
            f"`dataset` must be one of {tuple(REVIEW_CSV_DATASETS)}. Received: dataset={dataset!r}"
        )
    return REVIEW_CSV_DATASETS[dataset][1]


def _stratified_subsample(labels: np.ndarray, size: int | None, num_classes: int) -> np.ndarray:
    """Sorted positions of a class-proportional sample of `size` (all when None or larger),
    drawn with `TEST_SPLIT_SEED`: the same whatever the caller's seed."""
    if size is None or size >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    counts = stratified_counts(size, np.bincount(labels, minlength=num_classes))
    return take_stratified(labels, counts, num_classes, TEST_SPLIT_SEED, "The subsample")


def balanced_labeled_indices(labels: np.ndarray, num_labeled: int, num_classes: int, seed: int,
                             source: str) -> np.ndarray:
    """Sorted positions of a class-balanced sample of `num_labeled` (`stratified_counts` with
    equal weights: `n // C` per class, the first `n % C` classes one more), nested in
    `num_labeled` for one `seed`.

    Raises:
        ValueError: naming `source` when a class has too few examples.
    """
    counts = stratified_counts(num_labeled, np.ones(num_classes, np.int64))
    available = np.bincount(labels, minlength=num_classes)
    short = np.flatnonzero(available < counts)
    if len(short):
        c = int(short[0])
        raise ValueError(
            f"A class-balanced subsample of num_labeled={num_labeled:,} needs {counts[c]:,} "
            f"examples of class {c}, but {source} has only {available[c]:,} "
            f"(examples per class: {available.tolist()}). Lower `num_labeled`."
        )
    return take_stratified(labels, counts, num_classes, seed, "The labelled subset")


def build_review_split(train_texts, train_labels, test_texts, test_labels, *, num_labeled: int,
                       seed: int, name: str, source: str) -> TextClassificationSplit:
    """The `TextClassificationSplit` of a review dataset: the labelled set a class-balanced
    subsample of the training split, unlabelled and generator texts the whole training split."""
    train_texts, train_labels = _texts(train_texts), _labels(train_labels)
    labeled = balanced_labeled_indices(train_labels, num_labeled, len(REVIEW_CLASSES), seed,
                                       source)
    return TextClassificationSplit(
        train_texts=train_texts,
        train_labels=train_labels,
        labeled_texts=train_texts[labeled],
        labeled_labels=train_labels[labeled],
        labeled_indices=labeled,
        unlabeled_texts=train_texts,
        test_texts=test_texts,
        test_labels=test_labels,
        generator_texts=train_texts,
        class_names=REVIEW_CLASSES,
        name=name,
    )


def load_review_csv(
    directory: str | os.PathLike | None = None,
    dataset: str = "yelp5",
    num_labeled: int = 2500,
    seed: int = 0,
    max_test: int | None = None,
    *,
    max_train: int | None = None,
) -> TextClassificationSplit:
    """Yelp-5 or Amazon-5 from `train.csv` / `test.csv` as a student split (5 classes, 0..4).

    - train / unlabelled / generator texts: all of `train.csv` (or a class-proportional
      subsample of `max_train` rows, drawn with a fixed seed), in file order;
    - labelled: a class-balanced subsample of `num_labeled` training rows drawn with `seed`
      (500 per class by default: the paper's 2.5k labels), nested in `num_labeled`;
    - test: all of `test.csv`, or a class-proportional subsample of `max_test` rows drawn with a
      fixed seed (the same for every `seed`), in file order.

    Args:
        directory: the folder holding `train.csv` and `test.csv` (`~` is expanded); default
            `~/data/yelp_review_full_csv` or `~/data/amazon_review_full_csv` (see the module
            docstring for the layout).
        dataset: "yelp5" (rows `label,text`) or "amazon5" (rows `label,title,text`).
        num_labeled: labelled examples, >= 1.
        seed: seed of the labelled subsample.
        max_test: cap on the test rows (None: all).
        max_train: cap on the training rows (None: all).

    Raises:
        FileNotFoundError: when the folder or a file is missing, saying where to put what.
        ValueError: for a bad argument, a malformed row or a label outside 1..5 (naming the
            file and line), or too few examples of a class for the balanced subsample.

    Example:
    >>> split = load_review_csv("~/data/yelp_review_full_csv", "yelp5")  # doctest: +SKIP
    >>> split.sizes()  # doctest: +SKIP
    {'train': 650000, 'labeled': 2500, 'unlabeled': 650000, 'test': 50000, 'generator': 650000}
    """
    _columns(dataset)
    num_labeled = check_int("num_labeled", num_labeled, 1)
    seed = check_seed(seed)
    if max_test is not None:
        max_test = check_int("max_test", max_test, 1)
    if max_train is not None:
        max_train = check_int("max_train", max_train, 1)
    default_dir, _, archive = REVIEW_CSV_DATASETS[dataset]
    folder = Path(os.path.expanduser(str(directory if directory is not None else default_dir)))
    layout = (f"Download the standard `{archive}` (Zhang et al. 2015) and unpack it so that "
              f"{folder}/train.csv and {folder}/test.csv exist, or pass `directory`.")
    if not folder.is_dir():
        raise FileNotFoundError(f"No {dataset} data: the folder {folder} does not exist. {layout}")
    for file in ("train.csv", "test.csv"):
        if not (folder / file).is_file():
            raise FileNotFoundError(
                f"No {dataset} data: {folder / file} does not exist. {layout}"
            )
    num_classes = len(REVIEW_CLASSES)
    train_texts, train_labels = read_review_csv(folder / "train.csv", dataset)
    keep = _stratified_subsample(train_labels, max_train, num_classes)
    train_texts, train_labels = train_texts[keep], train_labels[keep]
    test_texts, test_labels = read_review_csv(folder / "test.csv", dataset)
    keep = _stratified_subsample(test_labels, max_test, num_classes)
    return build_review_split(
        train_texts, train_labels, test_texts[keep], test_labels[keep],
        num_labeled=num_labeled, seed=seed, name=dataset,
        source=f"{folder / 'train.csv'}" + (f" (max_train={max_train:,})" if max_train else ""),
    )
