"""Hyper-parameter search over TGT's knobs with keras-tuner.

- `SearchSpace`, `default_search_space`: which knobs vary, over which values.
- `TGTHyperModel`, `ExperimentHyperModel`: build a compiled `TGTDistiller` per trial.
- `make_tuner`: RandomSearch, BayesianOptimization or Hyperband on `OBJECTIVE` (the student's
  validation balanced accuracy).
- `run_tuning`: `tgt-keras tune`, a resumable search from an hparams file to a new one.
"""

from tgt_keras.tuning.hypermodel import (
    OBJECTIVE,
    TUNERS,
    ExperimentHyperModel,
    TGTHyperModel,
    make_tuner,
)
from tgt_keras.tuning.space import KNOBS, Choice, Range, SearchSpace, default_search_space

__all__ = [
    "KNOBS",
    "OBJECTIVE",
    "TUNERS",
    "Choice",
    "ExperimentHyperModel",
    "Range",
    "SearchSpace",
    "TGTHyperModel",
    "default_search_space",
    "make_tuner",
]
