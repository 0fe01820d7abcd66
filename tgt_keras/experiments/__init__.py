"""Experiments: typed configs for the files in `hparams/`."""

from tgt_keras.experiments.config import (
    DATASETS,
    ExperimentConfig,
    config_from_dict,
    load_hparams,
    parse_overrides,
)

__all__ = ["DATASETS", "ExperimentConfig", "config_from_dict", "load_hparams", "parse_overrides"]
