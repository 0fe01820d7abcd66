"""The training core: the distiller, latent exploration and the loss math."""

from tgt_keras.core.distiller import METRIC_NAMES, TGTDistiller
from tgt_keras.core.exploration import EXPLORATION_MODES, ExplorationResult, explore
from tgt_keras.core.losses import distillation_loss, kl_divergence, label_loss, tgt_loss

__all__ = [
    "EXPLORATION_MODES",
    "METRIC_NAMES",
    "ExplorationResult",
    "TGTDistiller",
    "distillation_loss",
    "explore",
    "kl_divergence",
    "label_loss",
    "tgt_loss",
]
