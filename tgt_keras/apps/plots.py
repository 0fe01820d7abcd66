"""Figures: accuracy bar charts and image grids, saved as PNG and written to TensorBoard."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def accuracy_bar_chart(rows: Sequence[dict], path: str | Path, title: str) -> bytes:
    """Grouped bars of balanced / many / medium / few-shot accuracy per method.

    Args:
        rows: dicts with keys `method`, `balanced`, `many`, `medium`, `few`.
        path: PNG file to write.
        title: figure title.

    Returns:
        The PNG bytes (for TensorBoard).
    """
    plt = _pyplot()
    groups = ["balanced", "many", "medium", "few"]
    width = 0.8 / max(len(rows), 1)
    figure, axis = plt.subplots(figsize=(8, 4))
    for i, row in enumerate(rows):
        values = [row[g] for g in groups]
        positions = np.arange(len(groups)) + i * width
        bars = axis.bar(positions, values, width, label=row["method"])
        axis.bar_label(bars, fmt="%.2f", fontsize=7)
    axis.set_xticks(np.arange(len(groups)) + width * (len(rows) - 1) / 2)
    axis.set_xticklabels(["balanced", "many-shot", "medium-shot", "few-shot"])
    axis.set_ylabel("test accuracy")
    axis.set_ylim(0, 1)
    axis.set_title(title)
    axis.legend(fontsize=8, loc="lower left")
    data = _png_bytes(figure)
    Path(path).write_bytes(data)
    plt.close(figure)
    return data


def image_grid(rows: Sequence[tuple[str, np.ndarray, Sequence[str]]], path: str | Path,
               title: str = "") -> bytes:
    """A grid with one row per image set, each image titled with its label.

    Args:
        rows: `(row_name, images [N, H, W, C] in [0, 1], labels)` per row.
        path: PNG file to write.
        title: figure title.

    Returns:
        The PNG bytes (for TensorBoard).
    """
    plt = _pyplot()
    num_cols = max(len(images) for _, images, _ in rows)
    figure, axes = plt.subplots(len(rows), num_cols, figsize=(1.3 * num_cols, 1.55 * len(rows)),
                                squeeze=False)
    for r, (name, images, labels) in enumerate(rows):
        for c in range(num_cols):
            axis = axes[r, c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(images):
                axis.axis("off")
                continue
            image = np.clip(images[c], 0.0, 1.0)
            if image.shape[-1] == 1:
                axis.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
            else:
                axis.imshow(image)
            axis.set_title(labels[c], fontsize=7)
            if c == 0:
                axis.set_ylabel(name, fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    data = _png_bytes(figure)
    Path(path).write_bytes(data)
    plt.close(figure)
    return data


def write_png_to_tensorboard(logdir: str | Path, tag: str, png: bytes, step: int = 0) -> None:
    """Writes PNG bytes as an image summary."""
    import tensorflow as tf

    image = tf.image.decode_png(png, channels=4)[None]
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        tf.summary.image(tag, image, step=step)
    writer.flush()
