"""`tgt-keras train --smoke` runs every image experiment in hparams/ end to end, offline (the
text ones: test_train_text.py)."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from tgt_keras import cli
from tgt_keras.experiments import is_text, load_hparams
from tgt_keras.experiments.teachers import build_teachers
from tgt_keras.experiments.train import build_optimizer, learning_rate_schedule

# The image experiments (the text ones run in test_train_text.py).
HPARAMS = [p for p in sorted((Path(__file__).parent.parent / "hparams").glob("*.yaml"))
           if not is_text(load_hparams(p))]


@pytest.mark.parametrize("path", HPARAMS, ids=lambda p: p.stem)
def test_smoke_run_writes_the_run_directory(path, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--hparams", str(path), "--smoke", "--output-dir", str(out),
                     "--set", "num_steps=1"]) == 0
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["name"] == path.stem and resolved["num_steps"] == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0
    assert metrics["smoke"] is True
    assert {"loss", "synthetic_loss", "disagreement_after"} <= set(metrics["history"])
    assert metrics["steps"] == 2 and metrics["replicas"] == 1
    assert len(metrics["history"]["loss"]) == 1  # one epoch, read back from history.csv
    assert (out / "history.csv").exists() and not (out / "backup").exists()
    student = keras.models.load_model(out / "student.keras")
    config = load_hparams(path)
    assert student.output_shape[-1] == config.num_classes
    assert any((out / "tensorboard").rglob("*tfevents*"))
    assert (out / "per_class_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    grids = sorted(p.name for p in out.glob("samples_step*.png"))
    # 2 smoke steps, a grid every max(1, steps // 5) = 1 step.
    assert grids == ["samples_step000001.png", "samples_step000002.png"]


@pytest.mark.parametrize("precision, optimizer", [("mixed_bfloat16", "SGD"),
                                                  ("mixed_float16", "LossScaleOptimizer")])
def test_mixed_precision_smoke_run(precision, optimizer, tmp_path, monkeypatch):
    from tgt_keras.experiments import train

    compiled = []
    original = train.TGTDistiller.compile

    def recording_compile(self, *args, **kwargs):
        original(self, *args, **kwargs)
        compiled.append((self.student.compute_dtype, type(self.optimizer).__name__))

    monkeypatch.setattr(train.TGTDistiller, "compile", recording_compile)
    out = tmp_path / "run"
    assert cli.main(["train", "--hparams", str(HPARAMS[0]), "--smoke", "--output-dir", str(out),
                     "--set", f"precision={precision}", "--set", "optimizer=sgd",
                     "--set", "num_steps=1"]) == 0
    assert compiled == [(precision.removeprefix("mixed_"), optimizer)]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["precision"] == precision
    assert np.isfinite(metrics["history"]["loss"]).all()
    assert keras.config.dtype_policy().name == "float32"  # restored for what runs next


def test_cosine_schedule_warms_up_linearly_then_decays():
    config = load_hparams(HPARAMS[0]).replace(
        schedule="cosine", warmup_epochs=1, num_epochs=3, peak_learning_rate=0.4,
        optimizer="sgd")
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    rates = [float(schedule(step)) for step in (0, 5, 10, 20, 30)]
    # Linear warm-up over 10 steps, then cosine over the remaining 20: half-way is half the peak.
    np.testing.assert_allclose(rates, [0.0, 0.2, 0.4, 0.2, 0.0], atol=1e-6)
    assert learning_rate_schedule(config.replace(schedule="constant"), 10) == 0.4
    assert isinstance(build_optimizer(config, 10), keras.optimizers.SGD)
    assert isinstance(build_optimizer(config.replace(optimizer="adam"), 10),
                      keras.optimizers.Adam)


def test_teacher_size_mismatch_is_a_clear_error(monkeypatch):
    from tgt_keras.experiments import teachers

    path = next(p for p in HPARAMS if p.stem == "imagenet_lt")
    config = load_hparams(path, ["labeler_image_size=299"])
    # Stand-ins with the presets' declared sizes (224 labeler, 128 generator) replace the
    # TF-Hub modules, which are not reachable here.
    labeler, generator = teachers._stub_teachers(config.replace(labeler_image_size=224), 3)
    monkeypatch.setattr(teachers, "HubLabeler", lambda **kwargs: labeler)
    monkeypatch.setattr(teachers.HubGenerator, "from_preset", staticmethod(lambda name: generator))
    with pytest.raises(ValueError, match="`labeler_image_size` must match the teacher's "
                                         "declared size 224. Received: labeler_image_size=299"):
        build_teachers(config)


def test_paper_dataset_comes_from_tfds_at_the_encoder_size():
    import tensorflow_datasets as tfds

    from tgt_keras.experiments.data import build_data

    path = next(p for p in HPARAMS if p.stem == "imagenet_lt")
    config = load_hparams(path, ["batch_size=4"])
    with tfds.testing.mock_data(num_examples=8):
        data = build_data(config)
        x, y = next(iter(data.train))
        x_test, _ = next(iter(data.test))
    # BigBiGAN encodes 256x256: real images arrive at that size, the student resizes.
    assert x.shape == (4, 256, 256, 3) and x_test.shape[1:] == (256, 256, 3)
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
    assert data.input_format.shape == (256, 256, 3)
    assert int(np.sum(data.train_counts)) == 8 and data.steps_per_epoch == 2
