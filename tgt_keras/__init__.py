"""tgt_keras: Teacher Guided Training (Zaheer et al., ICLR 2023) for Keras 3 / TensorFlow 2.

Public API:
- `TGTDistiller`: the `keras.Model` whose `fit` runs TGT.
- Teachers: images: `HubGenerator` / `KerasGenerator`, `HubLabeler` / `KerasLabeler`,
  `ImageFormat`, `export_hub_generator`; text: `Seq2SeqGenerator` (keras-hub BART),
  `TextLabeler` / `SoftTokenClassifier` (a keras-hub BERT-family classifier over soft tokens).
- Modalities: `ImageModality`, `TextModality`; text pieces: `Vocabulary`, `WordPieceTokenizer`,
  `TextCNN`, `TextTransformer`.
- `explore`, `tgt_loss`: the exploration and the loss math, usable on their own.
- `TGTMonitor`: a callback logging the loss terms and grids of the explored samples.
"""

from tgt_keras.core import EXPLORATION_MODES, METRIC_NAMES, TGTDistiller, explore, tgt_loss
from tgt_keras.modalities import ImageModality, TextModality  # registers the modalities
from tgt_keras.modalities.text import TextCNN, TextTransformer, Vocabulary, WordPieceTokenizer
from tgt_keras.reporting.monitor import TGTMonitor
from tgt_keras.teachers import (
    GENERATOR_PRESETS,
    Generator,
    HubGenerator,
    HubLabeler,
    ImageFormat,
    KerasGenerator,
    KerasLabeler,
    Labeler,
    Seq2SeqGenerator,
    SoftTokenClassifier,
    TextLabeler,
    convert_images,
    export_hub_generator,
)

__version__ = "0.1.0"

__all__ = [
    "EXPLORATION_MODES",
    "GENERATOR_PRESETS",
    "METRIC_NAMES",
    "Generator",
    "HubGenerator",
    "HubLabeler",
    "ImageFormat",
    "KerasGenerator",
    "KerasLabeler",
    "ImageModality",
    "Labeler",
    "Seq2SeqGenerator",
    "SoftTokenClassifier",
    "TGTDistiller",
    "TGTMonitor",
    "TextCNN",
    "TextLabeler",
    "TextModality",
    "TextTransformer",
    "Vocabulary",
    "WordPieceTokenizer",
    "__version__",
    "convert_images",
    "explore",
    "export_hub_generator",
    "tgt_loss",
]
