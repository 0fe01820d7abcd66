"""`WordPieceTokenizer`: texts -> fixed-length rows of ids `[CLS] w1 ... wk [SEP] [PAD]...`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import keras
import numpy as np

from tgt_keras.modalities.text.vocabulary import SPECIAL_TOKENS, Vocabulary, _lookup_table

# tensorflow-text handles a whole batch in one call; chunks bound its memory on big corpora.
_CHUNK = 8192


def _is_punctuation(char: str) -> bool:
    """BERT's basic tokenizer splits on these (ASCII symbols and Unicode punctuation)."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _normalize(token: str) -> str:
    """What BERT's lowercasing does to a word: lowercase, NFD, accents removed."""
    token = unicodedata.normalize("NFD", token.lower())
    return "".join(char for char in token if unicodedata.category(char) != "Mn")


def _non_wordpieces(tokens: Sequence[str], lowercase: bool) -> list[str]:
    """The tokens that BERT's tokenization can never produce, when they betray a vocabulary that
    is not a WordPiece one (words with spaces, punctuation or capitals): any token with a space,
    or more than 1% of the tokens. Real WordPiece vocabularies hold a few such tokens (MiniLM's
    has "..."), which are harmless: they are just never produced."""
    bad = _unreachable(tokens, lowercase)
    if any(any(char.isspace() for char in token) for token in bad):
        return bad
    return bad if len(bad) > 0.01 * len(tokens) else []


def _unreachable(tokens: Sequence[str], lowercase: bool) -> list[str]:
    bad = []
    for token in tokens:
        if token in SPECIAL_TOKENS or re.fullmatch(r"\[[^\[\]\s]+\]", token):
            continue  # reserved tokens ([unused0], ...) are never produced, by design
        piece = token[2:] if token.startswith("##") and len(token) > 2 else token
        if any(char.isspace() for char in piece):
            bad.append(token)
        elif len(piece) > 1 and any(_is_punctuation(char) for char in piece):
            bad.append(token)
        elif lowercase and _normalize(piece) != piece:
            bad.append(token)
    return bad


@keras.saving.register_keras_serializable(package="tgt_keras")
class WordPieceTokenizer:
    """Tokenizes texts into fixed-length rows of ids of a `Vocabulary`.

    The texts go through tensorflow-text's `BertTokenizer` over the base vocabulary (the
    vocabulary itself when it has no base); base ids are mapped into the vocabulary, base tokens
    outside it becoming `[UNK]`. Each row is `[CLS] w1 ... wk [SEP] [PAD] ...`: truncated to
    `sequence_length - 2` WordPieces, padded with `[PAD]`.

    Args:
        vocabulary: the shared `Vocabulary`.
        sequence_length: the row length `L`, >= 3 (`[CLS]`, one WordPiece, `[SEP]`).
        lowercase: lowercase and strip accents first (uncased vocabularies such as MiniLM's).

    Raises:
        TypeError: when `vocabulary` is not a `Vocabulary`.
        ValueError: on a bad `sequence_length`, or a vocabulary without a base whose tokens are
            not WordPieces (BERT's tokenization could never produce them).

    Example:
    ```python
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length=8)
    ids = tokenizer(["A fine film", "dull"])  # np.int32 [2, 8]
    tokenizer.detokenize(ids)  # ["a fine film", "dull"]
    ```
    """

    def __init__(self, vocabulary: Vocabulary, sequence_length: int, lowercase: bool = True):
        if not isinstance(vocabulary, Vocabulary):
            raise TypeError(
                f"`vocabulary` must be a `Vocabulary`. Received: {type(vocabulary).__name__}"
            )
        if (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, (int, np.integer))
            or sequence_length < 3
        ):
            raise ValueError(
                "`sequence_length` must be an int >= 3 ([CLS], at least one WordPiece, [SEP]). "
                f"Received: sequence_length={sequence_length!r}"
            )
        if not isinstance(lowercase, bool):
            raise TypeError(f"`lowercase` must be a bool. Received: lowercase={lowercase!r}")
        if vocabulary.base_tokens is None:
            bad = _non_wordpieces(vocabulary.tokens, lowercase)
            if bad:
                raise ValueError(
                    "A `Vocabulary` without `base_tokens` is tokenized with its own tokens, so "
                    "they must be WordPieces (no spaces, punctuation only alone"
                    + (", lowercase without accents" if lowercase else "")
                    + f"). {len(bad):,} tokens are not, e.g. {bad[:10]}. Pass the full "
                    "WordPiece vocabulary as `base_tokens`, or build the vocabulary with "
                    "`Vocabulary.from_corpus(texts, minilm_vocab_file())`."
                )
        self.vocabulary = vocabulary
        self.sequence_length = int(sequence_length)
        self.lowercase = lowercase
        self._tokenizer = None  # built on first use: TensorFlow resources

    def _bert_tokenizer(self):
        if self._tokenizer is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            base = self.vocabulary.base_tokens or self.vocabulary.tokens
            self._tokenizer = tf_text.BertTokenizer(
                _lookup_table(base), lower_case=self.lowercase, token_out_type=tf.int64
            )
        return self._tokenizer

    @staticmethod
    def _check_texts(texts) -> list[str]:
        if isinstance(texts, (str, bytes)):
            raise TypeError(
                "`texts` must be a sequence of strings, not a single string: wrap it in a list."
            )
        if not isinstance(texts, Iterable):
            raise TypeError(
                f"`texts` must be a sequence of strings. Received: {type(texts).__name__}"
            )
        checked = []
        for index, text in enumerate(texts):
            if isinstance(text, bytes):
                try:
                    text = text.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise ValueError(f"Text {index} is bytes but not UTF-8: {error}") from None
            elif not isinstance(text, str):
                raise TypeError(
                    f"Every text must be a string. Received: texts[{index}]={text!r} of type "
                    f"{type(text).__name__}"
                )
            if not text.strip():
                raise ValueError(f"Text {index} is empty or whitespace-only: {text!r}")
            checked.append(text)
        return checked

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenizes `texts` (strings; UTF-8 bytes are decoded).

        Returns:
            np.int32 `[N, sequence_length]`.

        Raises:
            TypeError: when `texts` is a single string or holds a non-string.
            ValueError: when a text is empty, whitespace-only or yields no WordPiece (the
                message names its index).
        """
        texts = self._check_texts(texts)
        length = self.sequence_length
        vocabulary = self.vocabulary
        ids = np.full((len(texts), length), vocabulary.pad_id, dtype=np.int32)
        if not texts:
            return ids
        ids[:, 0] = vocabulary.cls_id
        tokenizer = self._bert_tokenizer()
        for start in range(0, len(texts), _CHUNK):
            pieces = tokenizer.tokenize(texts[start : start + _CHUNK]).merge_dims(1, 2)
            values = pieces.flat_values.numpy()
            splits = pieces.row_splits.numpy()
            counts = np.diff(splits)
            empty = np.flatnonzero(counts == 0)
            if empty.size:
                index = start + int(empty[0])
                raise ValueError(
                    f"Text {index} has no token (BERT's tokenization drops all its "
                    f"characters): {texts[index]!r}"
                )
            # The lookup's OOV bucket (id base_size) is an unknown WordPiece too.
            unknown = values >= vocabulary.base_size
            mapped = vocabulary.from_base_ids(np.where(unknown, 0, values))
            mapped[unknown] = vocabulary.unk_id
            rows = np.repeat(np.arange(counts.size), counts)
            positions = np.arange(values.size) - splits[rows]
            keep = positions < length - 2
            block = ids[start : start + counts.size]
            block[rows[keep], 1 + positions[keep]] = mapped[keep]
            block[np.arange(counts.size), 1 + np.minimum(counts, length - 2)] = vocabulary.sep_id
        return ids

    tokenize = __call__

    def detokenize(self, ids) -> list[str]:
        """Texts of rows of ids: WordPieces joined with spaces, "##" pieces merged onto the
        previous one, `[PAD]`, `[CLS]`, `[SEP]` and `[MASK]` dropped (`[UNK]` kept, so an
        unknown word stays visible).

        Args:
            ids: integer `[N, L]` (NumPy or a tensor); a single row `[L]` gives one text.

        Returns:
            A list of N strings.

        Raises:
            ValueError: on another rank, a float array, or ids outside the vocabulary.
        """
        ids = np.asarray(ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
            raise ValueError(
                "`ids` must be integer token ids of shape [N, L]. Received: shape "
                f"{ids.shape}, dtype {ids.dtype}"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocabulary.size):
            raise ValueError(
                f"`ids` must be in [0, {self.vocabulary.size}) (the vocabulary). Received: ids "
                f"in [{ids.min()}, {ids.max()}]"
            )
        tokens = self.vocabulary.tokens
        dropped = {
            self.vocabulary.pad_id,
            self.vocabulary.cls_id,
            self.vocabulary.sep_id,
            self.vocabulary.mask_id,
        }
        texts = []
        for row in ids.tolist():
            words: list[str] = []
            for token_id in row:
                if token_id in dropped:
                    continue
                token = tokens[token_id]
                if token.startswith("##") and len(token) > 2 and words:
                    words[-1] += token[2:]
                else:
                    words.append(token)
            texts.append(" ".join(words))
        return texts

    def get_config(self) -> dict:
        return {
            "vocabulary": self.vocabulary.get_config(),
            "sequence_length": self.sequence_length,
            "lowercase": self.lowercase,
        }

    @classmethod
    def from_config(cls, config: dict) -> WordPieceTokenizer:
        config = dict(config)
        vocabulary = config.pop("vocabulary")
        if isinstance(vocabulary, dict):
            vocabulary = Vocabulary.from_config(vocabulary)
        return cls(vocabulary, **config)

    def __repr__(self) -> str:
        return (
            f"WordPieceTokenizer({self.vocabulary!r}, sequence_length={self.sequence_length}, "
            f"lowercase={self.lowercase})"
        )
