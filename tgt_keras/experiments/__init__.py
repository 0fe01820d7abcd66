"""Experiments: typed configs for the files in `hparams/`."""

from tgt_keras.experiments.config import (
    DATASETS,
    IMAGE_DATASETS,
    TEXT_DATASETS,
    ExperimentConfig,
    config_from_dict,
    is_text,
    load_hparams,
    parse_overrides,
)

__all__ = ["DATASETS", "IMAGE_DATASETS", "TEXT_DATASETS", "ExperimentConfig", "config_from_dict",
           "is_text", "load_hparams", "parse_overrides"]
