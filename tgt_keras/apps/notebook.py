"""What every example notebook calls first: its run mode, the accelerator and the strategy.

The notebooks in `examples/` run in one of two modes:
- "full": the settings meant for a Colab accelerator (TF-Hub teachers, the demo's defaults);
  needs the network.
- "offline": small settings on the package's offline teachers; runs on a CPU without network in
  a minute or two (what the tests execute).

The mode is the `mode` argument, else `$TGT_KERAS_NOTEBOOK_MODE`, else "full" inside Colab and
"offline" elsewhere.

Example:
>>> from tgt_keras.apps.notebook import runtime
>>> rt = runtime("offline")
>>> rt.mode, rt.accelerator, rt.replicas  # on a machine without GPU or TPU
('offline', 'CPU', 1)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path

import tensorflow as tf

from tgt_keras.data.fashion_mnist import find_fashion_mnist_dir
from tgt_keras.distribute import pick_strategy, strategy_name

logger = logging.getLogger("tgt_keras")

MODES = ("offline", "full")
MODE_ENV_VAR = "TGT_KERAS_NOTEBOOK_MODE"
ACCELERATORS = ("TPU", "GPU", "CPU")
# The URL and file names of `keras.datasets.fashion_mnist`, the same idx files as Debian's.
_FASHION_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Where a notebook runs.

    Attributes:
        mode: "offline" (small settings, no network) or "full" (the settings for an
            accelerator).
        accelerator: "TPU", "GPU" or "CPU": what `strategy` trains on.
        strategy: the `tf.distribute.Strategy` from `pick_strategy()`.
        in_colab: whether the notebook runs in Google Colab.
    """

    mode: str
    accelerator: str
    strategy: tf.distribute.Strategy
    in_colab: bool

    @property
    def replicas(self) -> int:
        """Replicas in sync: a global batch must be a multiple of it."""
        return self.strategy.num_replicas_in_sync

    def __str__(self) -> str:
        return (f"mode={self.mode}, accelerator={self.accelerator}, "
                f"strategy={strategy_name(self.strategy)} ({self.replicas} replicas), "
                f"in_colab={self.in_colab}")


def in_colab() -> bool:
    """Whether this Python runs in Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def resolve_mode(mode: str | None = None, colab: bool | None = None) -> str:
    """The run mode: `mode`, else `$TGT_KERAS_NOTEBOOK_MODE`, else by where it runs.

    Args:
        mode: "offline", "full" or None.
        colab: whether it runs in Colab (None: `in_colab()`); decides when neither `mode` nor
            the environment variable does: "full" in Colab, "offline" elsewhere.

    Raises:
        TypeError: for a `mode` that is not a string.
        ValueError: for a `mode` or an environment variable value not in `MODES`.
    """
    if mode is not None:
        if not isinstance(mode, str):
            raise TypeError(f"`mode` must be a string, one of {MODES}. "
                            f"Received: mode={mode!r} of type {type(mode).__name__}")
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
        return mode
    from_env = os.environ.get(MODE_ENV_VAR, "")
    if from_env:
        if from_env not in MODES:
            raise ValueError(f"`{MODE_ENV_VAR}` must be one of {MODES}. "
                             f"Received: {MODE_ENV_VAR}={from_env!r}")
        return from_env
    return "full" if (in_colab() if colab is None else colab) else "offline"


def accelerator_of(strategy: tf.distribute.Strategy) -> str:
    """What `strategy` trains on: "TPU" (a `TPUStrategy`), else "GPU" if TF sees one, or "CPU"."""
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "TPU"
    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def runtime(mode: str | None = None) -> Runtime:
    """Resolves the notebook's mode and picks the strategy (a TPU, several GPUs, or default).

    Args:
        mode: "offline", "full", or None to read `$TGT_KERAS_NOTEBOOK_MODE`, else "full" in
            Colab and "offline" elsewhere.

    Returns:
        A `Runtime`; create every model, the teachers included, in `runtime.strategy.scope()`.

    Raises:
        TypeError, ValueError: see `resolve_mode`.
    """
    colab = in_colab()
    resolved = resolve_mode(mode, colab)
    strategy = pick_strategy()
    return Runtime(mode=resolved, accelerator=accelerator_of(strategy), strategy=strategy,
                   in_colab=colab)


def ensure_fashion_mnist() -> Path:
    """Returns the folder of the Fashion-MNIST files, downloading them where none is installed.

    The package reads Fashion-MNIST from the Debian package `dataset-fashion-mnist` (see
    `tgt_keras.data.fashion_mnist`). Where it is missing (Colab), this downloads the same four
    idx files from Keras's mirror with `keras.utils.get_file` (into `~/.keras/datasets`, where
    `keras.datasets.fashion_mnist` keeps them) and points `TGT_KERAS_FASHION_MNIST_DIR` there.

    Raises:
        FileNotFoundError: if the files are not installed and cannot be downloaded.
    """
    try:
        return find_fashion_mnist_dir()
    except FileNotFoundError as not_installed:
        import keras

        try:
            paths = [keras.utils.get_file(name, origin=_FASHION_MNIST_URL + name,
                                          cache_subdir=os.path.join("datasets", "fashion-mnist"))
                     for name in _FASHION_MNIST_FILES]
        except Exception as error:  # noqa: BLE001 - any download failure gets one message
            raise FileNotFoundError(
                f"{not_installed} Downloading it from {_FASHION_MNIST_URL} failed too "
                f"({type(error).__name__}: {error})."
            ) from error
    directory = Path(paths[0]).parent
    os.environ["TGT_KERAS_FASHION_MNIST_DIR"] = str(directory)
    logger.info("Fashion-MNIST downloaded to %s.", directory)
    return find_fashion_mnist_dir()
