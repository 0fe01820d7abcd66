"""Figures: accuracy bar charts and image grids, saved as PNG and written to TensorBoard."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | Path) -> bytes:
    """Writes `figure` to `path` as PNG, closes it and returns the PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(figure)
    data = buffer.getvalue()
    Path(path).write_bytes(data)
    return data


def accuracy_bar_chart(rows: Sequence[dict], path: str | Path, title: str) -> bytes:
    """Grouped bars of balanced / many / medium / few-shot accuracy per method.

    Args:
        rows: dicts with keys `method`, `balanced`, `many`, `medium`, `few`.
        path: PNG file to write.
        title: figure title.

    Returns:
        The PNG bytes (for TensorBoard).
    """
    plt = pyplot()
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
    return save_figure(figure, path)


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
    plt = pyplot()
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
    return save_figure(figure, path)


def write_png_to_tensorboard(logdir: str | Path | None, tag: str, png: bytes, step: int = 0,
                             writer=None) -> None:
    """Writes PNG bytes as an image summary.

    Args:
        logdir: directory of a new file writer; ignored when `writer` is given.
        tag: summary tag.
        png: the PNG bytes.
        step: the summary step.
        writer: an existing `tf.summary` file writer to reuse (one events file per run
            instead of one per image).
    """
    import tensorflow as tf

    image = tf.image.decode_png(png, channels=4)[None]
    if writer is None:
        writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        tf.summary.image(tag, image, step=step)
    writer.flush()


def exploration_grid_rows(distiller, images, class_names: Sequence[str] | None = None, *,
                          include_real: bool = True, explored_name: str = "explored",
                          seed: int = 0) -> list[tuple[str, np.ndarray, list[str]]]:
    """The rows of `image_grid` that show what a `TGTDistiller` trains on.

    Rows: the real images, their reconstructions `Dec(Enc(x))` and the samples explored around
    them (`distiller.explore_batch`), each image titled with the labeler's (teacher's) label.
    All images are shown in the distiller's input size and channels, in [0, 1].

    The explored row uses fixed noise (`seed`), so it does not advance the distiller's noise
    generator: drawing grids during `fit` leaves training unchanged.

    Args:
        distiller: a `TGTDistiller`.
        images: real images `[N, H, W, C]` in `distiller.input_format`.
        class_names: names of the labeler's classes; by default the class index.
        include_real: include the "real" and "reconstructed" rows (False returns only the
            explored row, e.g. to stack several distillers' explored rows under one real row).
        explored_name: name of the explored row.
        seed: seed of the exploration noise of the explored row.

    Returns:
        A list of `(row_name, images [N, H, W, C] in [0, 1], labels)`.
    """
    import tensorflow as tf

    from tgt_keras.teachers.image_format import ImageFormat, convert_images

    source = distiller.input_format
    display = ImageFormat(source.height, source.width, source.channels, (0.0, 1.0))
    generator, labeler = distiller.generator, distiller.labeler
    x = tf.cast(tf.convert_to_tensor(images), tf.float32)

    def label_names(logits):
        indices = np.argmax(np.asarray(logits), axis=-1)
        if class_names is None:
            return [str(int(i)) for i in indices]
        return [str(class_names[int(i)]) for i in indices]

    def teacher_labels(batch, batch_format):
        return label_names(labeler.logits(convert_images(batch, batch_format,
                                                         labeler.input_format)))

    def to_display(batch, batch_format):
        return convert_images(batch, batch_format, display).numpy()

    rows = []
    if include_real:
        rows.append(("real", to_display(x, source), teacher_labels(x, source)))
        reconstructed = generator.decode(
            generator.encode(convert_images(x, source, generator.input_format))
        )
        rows.append(("reconstructed", to_display(reconstructed, generator.output_format),
                     teacher_labels(reconstructed, generator.output_format)))
    explored = distiller.explore_batch(x, seed=seed)
    # With synthetic_per_real > 1 each real latent is repeated: show the first copy of each.
    step = getattr(distiller, "synthetic_per_real", 1)
    rows.append((explored_name, to_display(explored.images[::step], generator.output_format),
                 label_names(explored.teacher_logits[::step])))
    return rows


def classes_by_frequency(train_counts) -> np.ndarray:
    """Class indices ordered by training count, most frequent first (ties by class index).

    Example:
    >>> classes_by_frequency([5, 50, 5, 20]).tolist()
    [1, 3, 0, 2]
    """
    counts = np.asarray(train_counts)
    if counts.ndim != 1:
        raise ValueError(
            f"`train_counts` must be a 1-D sequence of per-class counts. "
            f"Received: shape={counts.shape}"
        )
    return np.argsort(-counts, kind="stable")


def per_class_accuracy_plot(per_class_acc, train_counts, path: str | Path,
                            class_names: Sequence[str] | None = None,
                            title: str = "Per-class test accuracy, classes by training count"
                            ) -> bytes:
    """Accuracy of each class, classes ordered by training frequency (most frequent first).

    One line per method on the left axis; the training count of each class as grey bars on a
    secondary (right) axis, in log scale when the counts span more than a factor of 20, so the
    long tail is visible.

    Args:
        per_class_acc: `{method: accuracy per class [num_classes]}`, or one array.
        train_counts: training examples per class `[num_classes]`.
        path: PNG file to write.
        class_names: tick labels (by default the class index); shown for up to 50 classes.
        title: figure title.

    Returns:
        The PNG bytes (for TensorBoard).

    Raises:
        ValueError: if the arrays do not all have one entry per class.
    """
    if not isinstance(per_class_acc, dict):
        per_class_acc = {"accuracy": per_class_acc}
    if not per_class_acc:
        raise ValueError("`per_class_acc` must hold at least one method. Received: {}")
    counts = np.asarray(train_counts, dtype=float)
    order = classes_by_frequency(counts)
    num_classes = len(counts)
    series = {}
    for method, values in per_class_acc.items():
        values = np.asarray(values, dtype=float)
        if values.shape != (num_classes,):
            raise ValueError(
                f"Each accuracy array must have one entry per class ({num_classes}, from "
                f"`train_counts`). Received: {method!r} with shape {values.shape}"
            )
        series[method] = values[order]
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"`class_names` must have one name per class ({num_classes}). "
            f"Received: {len(class_names)} names"
        )

    plt = pyplot()
    positions = np.arange(num_classes)
    figure, axis = plt.subplots(figsize=(max(6.0, min(0.45 * num_classes, 16.0)), 4))
    count_axis = axis.twinx()
    count_axis.bar(positions, counts[order], width=0.8, color="0.85", label="train count")
    if counts.min() > 0 and counts.max() / counts.min() > 20:
        count_axis.set_yscale("log")
    count_axis.set_ylabel("training examples (bars)")
    # Lines above the bars: the primary axis is drawn last, with a transparent background.
    axis.set_zorder(count_axis.get_zorder() + 1)
    axis.patch.set_visible(False)
    for method, values in series.items():
        axis.plot(positions, values, marker="o", markersize=3, label=method)
    axis.set_ylim(0, 1)
    axis.set_ylabel("test accuracy")
    axis.set_xlim(-0.6, num_classes - 0.4)
    if num_classes <= 50:
        names = [str(i) for i in range(num_classes)] if class_names is None else class_names
        axis.set_xticks(positions)
        axis.set_xticklabels([str(names[i]) for i in order], rotation=45, ha="right",
                             fontsize=7)
    axis.set_xlabel("class (most to least frequent in training)")
    axis.set_title(title)
    axis.legend(fontsize=8, loc="lower left")
    return save_figure(figure, path)
