"""`TGTMonitor`: a Keras callback that shows what a `TGTDistiller` trains on."""

from __future__ import annotations

import numbers
import threading
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from tgt_keras.core.distiller import TGTDistiller
from tgt_keras.reporting import plots

# The monitor's events go under `<log_dir>/tgt`, apart from `keras.callbacks.TensorBoard`'s
# `train/` and `validation/` when both share a `log_dir`.
EVENTS_SUBDIR = "tgt"
SCALAR_PREFIX = "batch/"
IMAGE_TAG = "samples"


class TGTMonitor(keras.callbacks.Callback):
    """Logs a `TGTDistiller`'s loss terms and metrics, and grids of its explored samples.

    Teacher Guided Training (Zaheer et al., ICLR 2023, arXiv 2208.06825) trains the student on
    samples explored around the real data; this callback makes them visible during any `fit`:
    - after every training batch, each numeric entry of the logs (`TGTDistiller.METRIC_NAMES`:
      the loss terms, `synthetic_agreement`, `disagreement_before/after`, ... plus the compiled
      metrics) as a TensorBoard scalar `batch/<name>` at the global step (optimizer steps
      done);
    - every `every_n_steps` steps and at the end of training, an image grid of the fixed batch
      `images`: rows real, reconstructed `Dec(Enc(x))` and explored (`explore_batch`), each
      image titled with the teacher's label; written as the TensorBoard image `samples` and as
      `<png_dir>/samples_step{step:06d}.png`.

    Events go to `<log_dir>/tgt`. The batch-end logging is safe for Keras's asynchronous
    callback dispatch (`async_safe`), so it does not hold the training loop on a device-to-host
    copy; the grids are drawn between steps, only every `every_n_steps` steps, and the
    exploration's random state is restored afterwards so monitoring does not change training.

    Args:
        log_dir: TensorBoard log directory.
        images: a small fixed batch of real images `[N, H, W, C]` in the distiller's
            `input_format` (e.g. 8).
        every_n_steps: steps between two image grids.
        class_names: names of the teacher's classes for the titles; by default the index.
        png_dir: directory of the PNG grids; defaults to `log_dir`.

    Raises:
        ValueError: for an `every_n_steps` below 1, an empty or non-image `images` batch.
        TypeError: for a non-integer `every_n_steps`, or (at the start of `fit`) a model that
            is not a `TGTDistiller`.

    Example:
    >>> monitor = TGTMonitor("logs/run1", x_train[:8], every_n_steps=200,
    ...                      class_names=FASHION_MNIST_CLASSES)  # doctest: +SKIP
    >>> distiller.fit(train_ds, epochs=5, callbacks=[monitor])  # doctest: +SKIP
    """

    # Only `on_train_batch_end` runs off the training thread (it writes scalars); the grids are
    # drawn in `on_train_batch_begin`, which Keras always calls on the training thread.
    async_safe = True

    def __init__(
        self,
        log_dir: str | Path,
        images,
        every_n_steps: int = 200,
        class_names: Sequence[str] | None = None,
        png_dir: str | Path | None = None,
    ):
        super().__init__()
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, numbers.Integral):
            raise TypeError(
                "`every_n_steps` must be an integer. "
                f"Received: every_n_steps={every_n_steps!r} of type {type(every_n_steps).__name__}"
            )
        if every_n_steps < 1:
            raise ValueError(
                f"`every_n_steps` must be >= 1. Received: every_n_steps={every_n_steps}"
            )
        images = np.asarray(images, dtype="float32")
        if images.ndim != 4 or images.shape[0] == 0:
            raise ValueError(
                "`images` must be a non-empty batch of images (N, height, width, channels). "
                f"Received: shape={images.shape}"
            )
        if class_names is not None:
            if isinstance(class_names, str) or not isinstance(class_names, Sequence):
                raise TypeError(
                    "`class_names` must be a sequence of strings or None. "
                    f"Received: class_names={class_names!r}"
                )
            class_names = [str(name) for name in class_names]
        self.log_dir = Path(log_dir)
        self.images = images
        self.every_n_steps = int(every_n_steps)
        self.class_names = class_names
        self.png_dir = self.log_dir if png_dir is None else Path(png_dir)
        self._writer = None
        self._lock = threading.Lock()
        self._epoch_start_step = 0
        self._completed_steps = 0
        self._last_grid_step = 0

    # --- Keras callback API --------------------------------------------------------------

    def on_train_begin(self, logs=None):
        distiller = self.model
        if not isinstance(distiller, TGTDistiller):
            raise TypeError(
                "`TGTMonitor` monitors a `TGTDistiller`. Received: a model of type "
                f"{type(distiller).__name__}"
            )
        expected = distiller.input_format.shape
        if self.images.shape[1:] != expected:
            raise ValueError(
                "`images` must be in the distiller's `input_format` "
                f"(batch, {', '.join(map(str, expected))}). Received: shape={self.images.shape}"
            )
        num_classes = distiller.labeler.num_classes
        if self.class_names is not None and len(self.class_names) != num_classes:
            raise ValueError(
                f"`class_names` must name the labeler's {num_classes} classes. "
                f"Received: {len(self.class_names)} names"
            )
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(str(self.log_dir / EVENTS_SUBDIR))
        self.png_dir.mkdir(parents=True, exist_ok=True)
        # One read when training starts, so a resumed `fit` continues the step count.
        iterations = getattr(distiller.optimizer, "iterations", None)
        start = 0 if iterations is None else int(iterations.value.numpy())
        self._epoch_start_step = self._completed_steps = self._last_grid_step = start

    def on_epoch_begin(self, epoch, logs=None):
        # Keras has run every pending batch-end call before an epoch ends.
        self._epoch_start_step = self._completed_steps

    def on_train_batch_begin(self, batch, logs=None):
        step = self._epoch_start_step + batch  # steps done before this batch
        if step // self.every_n_steps > self._last_grid_step // self.every_n_steps:
            self.write_samples(step)

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch_start_step + batch + 1
        with self._lock:
            self._completed_steps = max(self._completed_steps, step)
        if not logs or self._writer is None:
            return
        import tensorflow as tf

        with self._writer.as_default(step=step):
            for name, value in logs.items():
                if np.ndim(value) != 0:
                    continue
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    continue  # not a number (e.g. None): nothing to plot
                tf.summary.scalar(SCALAR_PREFIX + name, value)

    def on_train_end(self, logs=None):
        if self._completed_steps != self._last_grid_step:
            self.write_samples(self._completed_steps)
        if self._writer is not None:
            self._writer.flush()

    # --- the grid --------------------------------------------------------------------------

    def write_samples(self, step: int) -> Path:
        """Draws the grid for `step`, writes its PNG and its TensorBoard image.

        Returns:
            The path of the PNG.
        """
        distiller = self.model
        rows = plots.exploration_grid_rows(distiller, self.images, self.class_names)
        path = self.png_dir / f"samples_step{step:06d}.png"
        png = plots.image_grid(rows, path, f"{distiller.name}: teacher labels, step {step}")
        plots.write_png_to_tensorboard(None, IMAGE_TAG, png, step=step, writer=self._writer)
        self._last_grid_step = step
        return path
