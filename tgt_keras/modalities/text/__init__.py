"""The text modality's pieces: the shared vocabulary, the tokenizer, the token embedding and the
students (see docs/text_design.md)."""

from tgt_keras.modalities.text.embedding import TokenEmbedding
from tgt_keras.modalities.text.students import TextCNN, TextTransformer
from tgt_keras.modalities.text.tokenizer import WordPieceTokenizer
from tgt_keras.modalities.text.vocabulary import SPECIAL_TOKENS, Vocabulary, minilm_vocab_file

__all__ = [
    "SPECIAL_TOKENS",
    "TextCNN",
    "TextTransformer",
    "TokenEmbedding",
    "Vocabulary",
    "WordPieceTokenizer",
    "minilm_vocab_file",
]
