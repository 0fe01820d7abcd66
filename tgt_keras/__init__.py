"""tgt_keras: Teacher Guided Training (Zaheer et al., ICLR 2023) for Keras 3 / TensorFlow 2.

Public API:
- `TGTDistiller`: the `keras.Model` whose `fit` runs TGT.
- Teachers: `HubGenerator` / `KerasGenerator`, `HubLabeler` / `KerasLabeler`, `ImageFormat`,
  `export_hub_generator`.
- `explore`, `tgt_loss`: the exploration and the loss math, usable on their own.
- `TGTMonitor`: a callback logging the loss terms and grids of the explored samples.
"""

import tgt_keras.modalities  # noqa: F401  (registers the modalities with the core)
from tgt_keras.core import EXPLORATION_MODES, METRIC_NAMES, TGTDistiller, explore, tgt_loss
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
    "Labeler",
    "TGTDistiller",
    "TGTMonitor",
    "__version__",
    "convert_images",
    "explore",
    "export_hub_generator",
    "tgt_loss",
]
