"""The notebooks' runtime helper: mode resolution, its errors, the accelerator, Fashion-MNIST."""

import dataclasses
import shutil
import sys

import keras
import pytest
import tensorflow as tf

from tgt_keras.apps import notebook
from tgt_keras.apps.notebook import MODE_ENV_VAR, Runtime, resolve_mode, runtime
from tgt_keras.data.fashion_mnist import find_fashion_mnist_dir


@pytest.fixture(autouse=True)
def no_mode_env(monkeypatch):
    monkeypatch.delenv(MODE_ENV_VAR, raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


def test_the_argument_wins_over_the_environment_and_colab(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "full")
    assert resolve_mode("offline", colab=True) == "offline"
    assert resolve_mode("full", colab=False) == "full"


def test_the_environment_variable_wins_over_colab(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "offline")
    assert resolve_mode(colab=True) == "offline"
    monkeypatch.setenv(MODE_ENV_VAR, "full")
    assert resolve_mode(colab=False) == "full"


def test_default_is_full_in_colab_and_offline_elsewhere(monkeypatch):
    assert resolve_mode(colab=True) == "full"
    assert resolve_mode(colab=False) == "offline"
    assert resolve_mode() == "offline"  # not in Colab here
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    assert notebook.in_colab()
    assert resolve_mode() == "full"


def test_an_empty_environment_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "")
    assert resolve_mode(colab=False) == "offline"


def test_a_bad_mode_argument_is_a_value_error():
    with pytest.raises(ValueError, match=r"^`mode` must be one of \('offline', 'full'\)\. "
                                         r"Received: mode='x'$"):
        resolve_mode("x")
    with pytest.raises(ValueError, match="Received: mode='Offline'"):
        runtime("Offline")


def test_a_non_string_mode_is_a_type_error():
    with pytest.raises(TypeError, match="`mode` must be a string.*Received: mode=1 of type int"):
        resolve_mode(1)


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match=r"^`TGT_KERAS_NOTEBOOK_MODE` must be one of "
                                         r"\('offline', 'full'\)\. "
                                         r"Received: TGT_KERAS_NOTEBOOK_MODE='gpu'$"):
        runtime()


def test_runtime_here_is_offline_on_the_cpu_with_the_default_strategy(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "offline")
    rt = runtime()
    assert (rt.mode, rt.accelerator, rt.in_colab, rt.replicas) == ("offline", "CPU", False, 1)
    assert rt.strategy is tf.distribute.get_strategy()
    assert str(rt) == ("mode=offline, accelerator=CPU, strategy=default (1 replicas), "
                       "in_colab=False")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt.mode = "full"
    assert isinstance(rt, Runtime)


def test_ensure_fashion_mnist_finds_the_installed_files(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("must not download installed data")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    assert notebook.ensure_fashion_mnist() == find_fashion_mnist_dir()


def test_ensure_fashion_mnist_downloads_where_nothing_is_installed(monkeypatch, tmp_path):
    installed = find_fashion_mnist_dir()
    target = tmp_path / "datasets" / "fashion-mnist"
    calls = []

    def fake_get_file(fname, origin, cache_subdir):
        calls.append((origin, cache_subdir))
        target.mkdir(parents=True, exist_ok=True)
        return str(shutil.copy(installed / fname, target / fname))

    def missing():
        raise FileNotFoundError("Fashion-MNIST not found.")

    monkeypatch.delenv("TGT_KERAS_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    # Not installed at first; after the download the real lookup must find the folder through
    # TGT_KERAS_FASHION_MNIST_DIR, which comes first in its search order.
    lookups = iter([missing, find_fashion_mnist_dir])
    monkeypatch.setattr(notebook, "find_fashion_mnist_dir", lambda: next(lookups)())
    assert notebook.ensure_fashion_mnist() == target
    assert len(calls) == 4
    assert all(origin.startswith("https://storage.googleapis.com/") for origin, _ in calls)
    assert calls[0][1].endswith("fashion-mnist")


def test_ensure_fashion_mnist_says_when_the_download_fails(monkeypatch):
    def missing():
        raise FileNotFoundError("Fashion-MNIST not found.")

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(notebook, "find_fashion_mnist_dir", missing)
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError, match="not found.*Downloading it from .* failed too "
                                                r"\(OSError: no network\)"):
        notebook.ensure_fashion_mnist()
