"""TGTMonitor: scalars and image grids in TensorBoard, step-numbered PNGs, argument checks."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tgt_keras import METRIC_NAMES, TGTDistiller, TGTMonitor

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASS_NAMES = ("zero", "one", "two")


def make_distiller(student, labeler, generator):
    distiller = TGTDistiller(student, labeler, generator, sigma=0.5, step_size=0.5, num_steps=1,
                             seed=1)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    return distiller


def read_events(log_dir):
    """Returns (scalar tags -> steps, image tags -> steps) of every events file under log_dir."""
    scalars, images = {}, {}
    for path in Path(log_dir).rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                target = images if plugin == "images" else scalars
                target.setdefault(value.tag, []).append(event.step)
    return scalars, images


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (24, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 24).astype("int32")
    return x, y


def test_writes_scalars_images_and_pngs(student, labeler, generator, data, tmp_path):
    x, y = data
    distiller = make_distiller(student, labeler, generator)
    monitor = TGTMonitor(tmp_path / "logs", x[:4], every_n_steps=3, class_names=CLASS_NAMES,
                         png_dir=tmp_path / "png")
    distiller.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[monitor])  # 12 steps

    scalars, images = read_events(tmp_path / "logs")
    for name in (*METRIC_NAMES, "accuracy"):
        assert sorted(scalars[f"batch/{name}"]) == list(range(1, 13)), name
    assert sorted(images["samples"]) == [3, 6, 9, 12]

    pngs = sorted(p.name for p in (tmp_path / "png").glob("*.png"))
    assert pngs == [f"samples_step{s:06d}.png" for s in (3, 6, 9, 12)]
    for name in pngs:
        assert (tmp_path / "png" / name).read_bytes().startswith(PNG_SIGNATURE)


def test_pngs_default_to_log_dir_and_last_step_is_drawn(student, labeler, generator, data,
                                                         tmp_path):
    x, y = data
    distiller = make_distiller(student, labeler, generator)
    monitor = TGTMonitor(tmp_path, x[:2], every_n_steps=4)
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[monitor])  # 6 steps
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "samples_step000004.png", "samples_step000006.png"]
    # A second fit continues the global step.
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0, callbacks=[monitor])  # steps 7-12
    assert sorted(p.name for p in tmp_path.glob("*.png"))[-2:] == [
        "samples_step000008.png", "samples_step000012.png"]
    scalars, _ = read_events(tmp_path)
    assert sorted(scalars["batch/loss"]) == list(range(1, 13))


def test_monitoring_does_not_change_training(student, labeler, generator, data, tmp_path):
    x, y = data
    initial = student.get_weights()
    weights = []
    for callbacks in ([], [TGTMonitor(tmp_path, x[:2], every_n_steps=2)]):
        keras.utils.set_random_seed(0)
        student.set_weights(initial)
        distiller = make_distiller(student, labeler, generator)
        distiller.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False,
                      callbacks=callbacks)
        weights.append(student.get_weights())
    for without, with_monitor in zip(*weights, strict=True):
        np.testing.assert_allclose(without, with_monitor, rtol=1e-6, atol=1e-6)


def test_grid_rows_show_teacher_labels(student, labeler, generator, data):
    from tgt_keras.reporting import plots

    x, _ = data
    distiller = make_distiller(student, labeler, generator)
    rows = plots.exploration_grid_rows(distiller, x[:3], CLASS_NAMES)
    assert [name for name, _, _ in rows] == ["real", "reconstructed", "explored"]
    for _, images, labels in rows:
        assert images.shape == (3, 8, 8, 1)
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert set(labels) <= set(CLASS_NAMES)
    expected = np.argmax(labeler.logits(x[:3]), -1)
    assert rows[0][2] == [CLASS_NAMES[i] for i in expected]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every_n_steps": 0}, ValueError,
         r"`every_n_steps` must be >= 1. Received: every_n_steps=0"),
        ({"every_n_steps": 2.5}, TypeError, r"`every_n_steps` must be an integer"),
        ({"images": np.zeros((0, 8, 8, 1))}, ValueError, r"`images` must be a non-empty batch"),
        ({"images": np.zeros((8, 8, 1))}, ValueError, r"Received: shape=\(8, 8, 1\)"),
        ({"class_names": "abc"}, TypeError, r"`class_names` must be a sequence of strings"),
    ],
)
def test_validates_arguments(kwargs, error, match, tmp_path):
    arguments = {"log_dir": tmp_path, "images": np.zeros((2, 8, 8, 1)), **kwargs}
    with pytest.raises(error, match=match):
        TGTMonitor(**arguments)


def test_rejects_a_model_that_is_not_a_distiller(student, data, tmp_path):
    x, y = data
    student.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match=r"monitors a `TGTDistiller`.*Sequential"):
        student.fit(x, y, epochs=1, verbose=0, callbacks=[TGTMonitor(tmp_path, x[:2])])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": np.zeros((2, 4, 4, 1))}, r"`images` must be in the distiller's `input_format`"),
        ({"class_names": ["a", "b"]}, r"`class_names` must name the labeler's 3 classes"),
    ],
)
def test_checks_images_and_class_names_against_the_distiller(kwargs, match, student, labeler,
                                                            generator, data, tmp_path):
    x, y = data
    distiller = make_distiller(student, labeler, generator)
    monitor = TGTMonitor(tmp_path, **{"images": x[:2], **kwargs})
    with pytest.raises(ValueError, match=match):
        distiller.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
