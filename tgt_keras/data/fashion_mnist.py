"""Fashion-MNIST from the Debian package `dataset-fashion-mnist` (no download at run time).

`scripts/setup.sh` installs the package (with `apt-get`, or unpacks it into the cache without
root). The loader looks, in order, in `$TGT_KERAS_FASHION_MNIST_DIR`,
`/usr/share/datasets/fashion-mnist` and `<cache>/debian/usr/share/datasets/fashion-mnist`, where
`<cache>` is `$TGT_KERAS_CACHE` or `~/.cache/tgt_keras`.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def cache_dir() -> Path:
    """The project's cache directory: `$TGT_KERAS_CACHE` or `~/.cache/tgt_keras`."""
    return Path(os.environ.get("TGT_KERAS_CACHE", Path.home() / ".cache" / "tgt_keras"))


def _candidate_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("TGT_KERAS_FASHION_MNIST_DIR"):
        dirs.append(Path(os.environ["TGT_KERAS_FASHION_MNIST_DIR"]))
    dirs.append(Path("/usr/share/datasets/fashion-mnist"))
    dirs.append(cache_dir() / "debian" / "usr" / "share" / "datasets" / "fashion-mnist")
    return dirs


def find_fashion_mnist_dir() -> Path:
    """Returns the first directory holding the four Fashion-MNIST files.

    Raises:
        FileNotFoundError: naming the places searched and how to install the data.
    """
    names = [n for pair in _FILES.values() for n in pair]
    for directory in _candidate_dirs():
        if all((directory / n).is_file() for n in names):
            return directory
    searched = ", ".join(str(d) for d in _candidate_dirs())
    raise FileNotFoundError(
        f"Fashion-MNIST not found (searched: {searched}). Install the Debian package "
        "`dataset-fashion-mnist` (`bash scripts/setup.sh` does it) or set "
        "TGT_KERAS_FASHION_MNIST_DIR to a folder with the four idx .gz files."
    )


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load_fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Loads a Fashion-MNIST split as uint8 images `[N, 28, 28]` and int64 labels `[N]`.

    Args:
        split: "train" (60,000 images) or "test" (10,000 images, 1,000 per class).

    Example:
    >>> x, y = load_fashion_mnist("test")  # doctest: +SKIP
    >>> x.shape, y.shape  # doctest: +SKIP
    ((10000, 28, 28), (10000,))
    """
    if split not in _FILES:
        raise ValueError(f"`split` must be one of {sorted(_FILES)}. Received: split={split!r}")
    directory = find_fashion_mnist_dir()
    image_file, label_file = _FILES[split]
    images = _read_idx(directory / image_file, 16).reshape(-1, 28, 28)
    labels = _read_idx(directory / label_file, 8).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(
            f"Corrupt Fashion-MNIST files in {directory}: {len(images)} images but "
            f"{len(labels)} labels."
        )
    return images, labels
