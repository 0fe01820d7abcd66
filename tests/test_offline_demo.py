"""The offline teachers (tiny recipe, cached) and the demo end to end on a few steps."""

import copy
import json

import numpy as np
import pytest

from tgt_keras.apps.long_tail_demo import METHODS, DemoConfig, format_table, run_demo
from tgt_keras.offline import fashion_mnist_teachers
from tgt_keras.offline import teachers as offline_module
from tgt_keras.offline.teachers import RECIPE, fingerprint
from tgt_keras.teachers import HubGenerator, KerasLabeler

TINY = copy.deepcopy(RECIPE)
TINY["train_examples"] = 1024
TINY["labeler"].update(epochs=1, filters=[4, 8], dense=16)
TINY["generator"].update(epochs=1, hidden=[32, 16], latent_dim=4)


@pytest.fixture(scope="module")
def tiny_teachers(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, fashion_mnist_teachers(cache=cache, verbose=0, recipe=TINY)


def test_teachers_are_cached_hub_generators(tiny_teachers, monkeypatch):
    cache, teachers = tiny_teachers
    assert isinstance(teachers.generator, HubGenerator)
    assert isinstance(teachers.labeler, KerasLabeler)
    assert teachers.generator.latent_dim == 4
    assert (teachers.directory / "generator" / "saved_model.pb").is_file()
    report = teachers.report
    for key in ("teacher_test_accuracy", "label_agreement_reconstruction_vs_real"):
        assert 0.0 <= report[key] <= 1.0
    assert teachers.directory.name.endswith(report["fingerprint"])

    # A second call loads from the cache: training again would fail here.
    def no_training(*args, **kwargs):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(offline_module, "_train_labeler", no_training)
    monkeypatch.setattr(offline_module, "_train_generator", no_training)
    again = fashion_mnist_teachers(cache=cache, verbose=0, recipe=TINY)
    assert again.directory == teachers.directory
    assert again.report == report


def test_a_different_recipe_gets_a_different_cache_entry():
    other = copy.deepcopy(TINY)
    other["labeler"]["epochs"] = 2
    assert fingerprint(other) != fingerprint(TINY)


def test_demo_writes_results_table_and_figures(tiny_teachers, tmp_path, capsys):
    _, teachers = tiny_teachers
    config = DemoConfig(steps=4, epochs=2, batch_size=16, num_steps=1,
                        output_dir=str(tmp_path / "demo"))
    results = run_demo(config, teachers=teachers)
    out = tmp_path / "demo"
    saved = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in saved["rows"]][1:] == list(METHODS)
    for row in saved["rows"]:
        assert 0.0 <= row["balanced"] <= 1.0
    assert saved["ordering_holds"] == results["ordering_holds"]
    for name in ("accuracy.png", "samples.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((out / "tensorboard" / "figures").iterdir())
    assert (out / "student_TGT-gradient.keras").is_file()
    printed = capsys.readouterr().out
    assert "| TGT-gradient |" in printed and "Ordering one-hot < KD" in printed


def test_demo_config_validation():
    with pytest.raises(ValueError, match="`steps` must be a positive multiple of `epochs`=5"):
        DemoConfig(steps=7, epochs=5)


def test_format_table_by_hand():
    rows = [{"method": "m", "balanced": 0.5, "many": 0.25, "medium": 0.125, "few": 1.0,
             "seconds": 3.4}]
    assert format_table(rows).splitlines()[-1] == "| m | 0.500 | 0.250 | 0.125 | 1.000 | 3 |"
    rows[0]["seconds"] = np.nan
    assert format_table(rows).splitlines()[-1].endswith("| - |")


def test_mnist_offline_teachers_use_the_same_path(tmp_path):
    from tgt_keras.offline import mnist_teachers
    from tgt_keras.offline.teachers import MNIST_RECIPE

    tiny = copy.deepcopy(MNIST_RECIPE)
    tiny.update(train_examples=512, labeler=TINY["labeler"], generator=TINY["generator"])
    teachers = mnist_teachers(cache=tmp_path, verbose=0, recipe=tiny)
    assert teachers.directory.name.startswith("mnist-")
    assert isinstance(teachers.generator, HubGenerator) and teachers.generator.latent_dim == 4
    assert 0.0 <= teachers.report["teacher_test_accuracy"] <= 1.0


def test_unknown_offline_dataset():
    from tgt_keras.offline import offline_teachers

    with pytest.raises(ValueError, match=r"`dataset` must be one of \['fashion_mnist', 'mnist'\]"):
        offline_teachers("cifar10")
