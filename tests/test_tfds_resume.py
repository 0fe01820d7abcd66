"""A TFDS run (`run_experiment` on `tfds.testing.mock_data`, stub teachers, mirrored over two
logical CPUs) killed with SIGKILL mid-epoch and started again trains on the batches of the
uninterrupted run: the same per-epoch losses, test accuracy and student weights. (Mirrored on
purpose: there the old stateful `shuffle(reshuffle_each_iteration=True)` gave the resumed run
other batches.)

Run as a script (`python tests/test_tfds_resume.py OUT MARKER`), this file trains the same run in
`OUT`, writes `MARKER` once `HANG_AT_STEP` steps are done (mid-epoch 2, after the backup of
epoch 1) and sleeps until the test kills it: the kill lands at a known step, not at a race.
"""

import sys
import time
from pathlib import Path
from unittest import mock

import keras
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

sys.path.insert(0, str(Path(__file__).parent))  # for the script run
from conftest import kill_when_ready, mirrored_cpus  # noqa: E402  (two logical CPUs, before TF starts)

from tgt_keras.experiments import load_hparams  # noqa: E402
from tgt_keras.experiments import train as train_module  # noqa: E402

ROOT = Path(__file__).parent.parent
NUM_EXAMPLES, BATCH, EPOCHS = 22, 4, 3
STEPS = -(-NUM_EXAMPLES // BATCH)  # a pass an epoch, rounded up: epochs and passes drift apart
HANG_AT_STEP = STEPS + 2
TIMEOUT_S = 180


def _config():
    # ImageNet-LT uses its TFDS split as is: all the mock examples. Tiny images and student;
    # the teachers' names are never resolved (stub teachers below).
    return load_hparams(ROOT / "hparams" / "imagenet_lt.yaml").replace(
        labeler="savedmodel:/unused", generator="savedmodel:/unused", labeler_image_size=8,
        generator_image_size=8, student_image_size=8, student="small_cnn", student_width=2,
        num_steps=1, batch_size=BATCH, num_epochs=EPOCHS, warmup_epochs=0)


_build_teachers = train_module.build_teachers


def _stub_teachers(config, smoke=False):
    return _build_teachers(config, smoke=True)


class _HangingMonitor(train_module.TGTMonitor):
    marker: Path

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == HANG_AT_STEP:
            self.marker.write_text(str(HANG_AT_STEP))
            while True:
                time.sleep(1)


def _run(out: Path, marker: Path | None = None) -> dict:
    strategy = mirrored_cpus()
    with tfds.testing.mock_data(num_examples=NUM_EXAMPLES), \
            mock.patch.object(train_module, "build_teachers", _stub_teachers), \
            mock.patch.object(train_module, "pick_strategy", lambda tpu=None: strategy):
        if marker is None:
            return train_module.run_experiment(_config(), out)
        _HangingMonitor.marker = marker
        with mock.patch.object(train_module, "TGTMonitor", _HangingMonitor):
            return train_module.run_experiment(_config(), out)


def _student_weights(out: Path):
    return keras.models.load_model(out / "student.keras").get_weights()


def test_a_killed_tfds_run_resumes_on_the_uninterrupted_batches(tmp_path, caplog):
    reference = _run(tmp_path / "reference")

    out, marker = tmp_path / "run", tmp_path / "hung"
    kill_when_ready([sys.executable, __file__, str(out), str(marker)], marker.exists,
                    f"step {HANG_AT_STEP}", cwd=ROOT, timeout=TIMEOUT_S)
    assert not (out / "metrics.json").exists()

    with caplog.at_level("INFO", logger="tgt_keras"):
        metrics = _run(out)
    assert "resuming from epoch 1" in caplog.text
    assert metrics["resumed_from_epoch"] == 1 and metrics["steps"] == EPOCHS * STEPS
    for name in ("loss", "real_loss", "synthetic_loss", "accuracy"):
        np.testing.assert_allclose(metrics["history"][name], reference["history"][name],
                                   rtol=1e-5, err_msg=name)
    # NaN for the classes without test images: assert_array_equal takes NaN == NaN.
    np.testing.assert_array_equal(metrics["per_class_accuracy"], reference["per_class_accuracy"])
    for got, expected in zip(_student_weights(out), _student_weights(tmp_path / "reference"),
                             strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    _run(Path(sys.argv[1]), Path(sys.argv[2]))
