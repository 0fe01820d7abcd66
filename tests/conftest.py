"""Shared fixtures: seeding, tiny teachers and a tiny student (dims 1-16, tests run in seconds)."""

import os
import signal
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so tf.distribute tests can mirror over "CPU:0" and "CPU:1". This must
# happen before TensorFlow initialises its runtime; everything else still runs on CPU:0.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tgt_keras import ImageFormat, KerasGenerator, KerasLabeler  # noqa: E402

NUM_CLASSES = 3
LATENT_DIM = 4
IMAGE_SHAPE = (8, 8, 1)


@pytest.fixture(autouse=True)
def seed_everything():
    """Seeds Python, NumPy, TensorFlow and Keras so every test is reproducible."""
    keras.utils.set_random_seed(0)
    yield


def make_encoder(latent_dim=LATENT_DIM, shape=IMAGE_SHAPE, name="encoder"):
    return keras.Sequential(
        [keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(latent_dim)], name=name
    )


def make_decoder(latent_dim=LATENT_DIM, shape=IMAGE_SHAPE, name="decoder"):
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(int(np.prod(shape)), activation="tanh"),
            keras.layers.Reshape(shape),
        ],
        name=name,
    )


def make_classifier(shape=IMAGE_SHAPE, num_classes=NUM_CLASSES, hidden=8, name="classifier"):
    return keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(num_classes),
        ],
        name=name,
    )


@pytest.fixture
def generator():
    """KerasGenerator: 8x8x1 images in [-1, 1] <-> 4 latents, tanh decoder."""
    return KerasGenerator(make_encoder(), make_decoder(), value_range=(-1.0, 1.0))


@pytest.fixture
def labeler():
    """Teacher KerasLabeler: 8x8x1 images in [0, 1] -> 3 logits."""
    return KerasLabeler(make_classifier(name="teacher"), value_range=(0.0, 1.0))


@pytest.fixture
def student():
    """Student: 8x8x1 images in [0, 1] -> 3 logits (smaller than the teacher)."""
    return make_classifier(hidden=4, name="student")


@pytest.fixture
def tiny_data():
    """16 images 8x8x1 in [0, 1] with integer labels in {0, 1, 2}."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (16, *IMAGE_SHAPE)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, 16).astype("int32")
    return x, y


@pytest.fixture
def student_format():
    return ImageFormat(*IMAGE_SHAPE, (0.0, 1.0))


def mirrored_cpus():
    """MirroredStrategy over the two logical CPU devices (skips the test without them).

    Reductions go through one device rather than collective ops: collective instance keys
    are process-wide, and the many strategies a test session creates can collide there
    ("Shape mismatch in the collective instance"), which a real one-strategy process does not.
    """
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("needs the two logical CPU devices configured in conftest.py")
    return tf.distribute.MirroredStrategy(
        ["CPU:0", "CPU:1"], cross_device_ops=tf.distribute.ReductionToOneDevice())


def clone(model):
    """A copy of `model` with the same weights (to compare against a hand-written update)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def kill_when_ready(command, ready, what: str, *, cwd, timeout: float) -> None:
    """Starts `command` (TF's own kernels, quiet logs), polls `ready()` until it is true and
    kills the process with SIGKILL there; fails if the process ends first, `what` does not happen
    within `timeout` seconds, or it was not SIGKILL that ended it."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, (
                f"the run ended (status {process.returncode}) before {what}: "
                f"{process.stderr.read().decode()[-3000:]}")
            assert time.monotonic() < deadline, f"{what}: not in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=timeout)
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL

