"""Amazon US reviews (TFDS `amazon_us_reviews`) as a 5-class star-rating task.

Each TFDS config is one product category ("Books_v1_00", "Electronics_v1_00", ...). A review's
text is "headline. body" (`data/review_headline`, `data/review_body`, joined as the Amazon-5 CSV
files join title and text; see `review_csv.join_title`), its label `data/star_rating` 1..5 mapped to
0..4. Reviews with neither headline nor body are skipped.

The builder has a `train` split only, so the test split is carved from it, the same for every
`seed`: the split is read in file order (`shuffle_files=False`), the first `max_test` usable
reviews are the test set and the next `max_train` the training set. TFDS writes a split's records
in an order shuffled by a hash of their keys, so both are random samples with the category's
natural star distribution (mostly 5 stars), and only `max_test + max_train` records are read
(Books_v1_00 alone holds about 10 million). The labelled set is a class-balanced subsample of the
training set (`num_labeled // 5` per class), drawn with `seed` and nested in `num_labeled`.

Nothing here downloads: `tfds.load` needs the prepared dataset in `data_dir`. Amazon has taken its
source files offline, so prepare it where you still have them (`tfds.builder(
"amazon_us_reviews/Books_v1_00", data_dir=...).download_and_prepare()`), or use the Amazon-5 CSV
files with `tgt_keras.data.load_review_csv`. Tests use `tfds.testing.mock_data`.
"""

from __future__ import annotations

import os

import numpy as np

from tgt_keras.data.review_csv import build_review_split, join_title
from tgt_keras.data.rotten_tomatoes import (
    TextClassificationSplit,
    _labels,
    _texts,
    check_int,
    check_seed,
)

BUILDER = "amazon_us_reviews"
DEFAULT_MAX_TRAIN = 100_000
DEFAULT_MAX_TEST = 10_000
_READ_BATCH = 4096


def read_tfds_reviews(config: str = "Books_v1_00", count: int | None = None,
                      data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` usable reviews of `amazon_us_reviews/<config>`'s train split in file
    order (all when None): object texts `[N]` and int64 labels 0..4 `[N]`.

    Raises:
        ValueError: for a star rating outside 1..5, naming the record.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if data_dir is not None:
        data_dir = os.path.expanduser(str(data_dir))
    ds = tfds.load(f"{BUILDER}/{config}", split="train", data_dir=data_dir,
                   shuffle_files=False)
    ds = ds.map(lambda ex: (ex["data"]["star_rating"], ex["data"]["review_headline"],
                            ex["data"]["review_body"]), num_parallel_calls=tf.data.AUTOTUNE)
    texts, labels = [], []
    record = 0
    for stars, headlines, bodies in ds.batch(_READ_BATCH).as_numpy_iterator():
        for star, headline, body in zip(stars.tolist(), headlines, bodies, strict=True):
            if not 1 <= star <= 5:
                raise ValueError(
                    f"{BUILDER}/{config} train record {record}: `data/star_rating` must be in "
                    f"1..5. Received: {star}"
                )
            record += 1
            text = join_title(headline.decode("utf-8", "replace"),
                              body.decode("utf-8", "replace"))
            if text:
                texts.append(text)
                labels.append(star - 1)
                if count is not None and len(texts) == count:
                    return _texts(texts), _labels(labels)
    return _texts(texts), _labels(labels)


def load_tfds_reviews(
    config: str = "Books_v1_00",
    num_labeled: int = 2500,
    max_train: int | None = DEFAULT_MAX_TRAIN,
    max_test: int = DEFAULT_MAX_TEST,
    seed: int = 0,
    data_dir: str | None = None,
) -> TextClassificationSplit:
    """An `amazon_us_reviews` category as a 5-class student split (see the module docstring).

    Args:
        config: the TFDS config (product category), e.g. "Books_v1_00".
        num_labeled: labelled examples, a class-balanced subsample of the training set.
        max_train: training reviews read after the test reviews (None: the rest of the split;
            costly for the large categories).
        max_test: test reviews, the first of the split.
        seed: seed of the labelled subsample (train and test never depend on it).
        data_dir: TFDS data directory.

    Returns:
        A `TextClassificationSplit` with class names "1 star" .. "5 stars"; `unlabeled_texts`
        and `generator_texts` are the training texts.

    Raises:
        ValueError: for a bad argument, a star rating outside 1..5, a split with no more than
            `max_test` usable reviews, or a class too rare for the balanced subsample.

    Example:
    >>> split = load_tfds_reviews("Books_v1_00", data_dir="~/tensorflow_datasets")  # doctest: +SKIP
    >>> split.sizes()  # doctest: +SKIP
    {'train': 100000, 'labeled': 2500, 'unlabeled': 100000, 'test': 10000, 'generator': 100000}
    """
    if not isinstance(config, str) or not config:
        raise ValueError(f"`config` must be a non-empty string. Received: config={config!r}")
    num_labeled = check_int("num_labeled", num_labeled, 1)
    max_test = check_int("max_test", max_test, 1)
    if max_train is not None:
        max_train = check_int("max_train", max_train, 1)
    seed = check_seed(seed)
    total = None if max_train is None else max_test + max_train
    texts, labels = read_tfds_reviews(config, total, data_dir)
    if len(texts) <= max_test:
        raise ValueError(
            f"{BUILDER}/{config} has {len(texts):,} usable reviews, not more than "
            f"max_test={max_test:,}: nothing is left for training. Lower `max_test`."
        )
    return build_review_split(
        texts[max_test:], labels[max_test:], texts[:max_test], labels[:max_test],
        num_labeled=num_labeled, seed=seed, name=f"{BUILDER}/{config}",
        source=f"the training set ({len(texts) - max_test:,} reviews of {BUILDER}/{config})",
    )
