"""The sample-size study: the effective-sample-size arithmetic and a tiny end-to-end run."""

import json
import math

import pytest

from tgt_keras.apps.long_tail_demo import DemoConfig
from tgt_keras.apps.sample_size_study import (
    effective_sample_size,
    format_study_table,
    run_sample_size_study,
)


def test_effective_sample_size_interpolates_in_log_n():
    sizes, kd = [10, 100, 1000], [0.6, 0.7, 0.8]
    assert effective_sample_size(0.7, sizes, kd) == pytest.approx(100)
    assert effective_sample_size(0.65, sizes, kd) == pytest.approx(math.sqrt(10 * 100))
    assert effective_sample_size(0.775, sizes, kd) == pytest.approx(10 ** 2.75)
    assert effective_sample_size(0.5, sizes, kd) == 10  # at or below the first point
    assert effective_sample_size(0.81, sizes, kd) is None  # above the whole curve


def test_effective_sample_size_ignores_a_noisy_dip():
    # The dip at n=100 must not create a second crossing: the running maximum is used.
    assert effective_sample_size(0.69, [10, 100, 1000], [0.6, 0.7, 0.65]) == pytest.approx(
        10 ** (1 + 0.9))


def test_table_reports_lower_bounds_above_the_curve():
    results = {"sizes_per_class": [5, 50], "mean": {"KD": [0.5, 0.6], "TGT-gradient": [0.55, 0.7]},
               "std": {"KD": [0.01, 0.02], "TGT-gradient": [0.0, 0.01]},
               "multiplier_vs_KD": {"TGT-gradient": [2.5, None]}}
    lines = format_study_table(results).splitlines()
    assert lines[2] == "| 5 | 0.500 ± 0.010 | 0.550 ± 0.000 | 2.5 |"
    assert lines[3] == "| 50 | 0.600 ± 0.020 | 0.700 ± 0.010 | > 1.0 |"


def test_tiny_study_end_to_end(tmp_path):
    from tests.test_offline_demo import TINY  # the tiny cached teachers' recipe
    from tgt_keras.offline import fashion_mnist_teachers

    teachers = fashion_mnist_teachers(cache=tmp_path / "cache", verbose=0, recipe=TINY)
    config = DemoConfig(steps=2, epochs=1, batch_size=8, num_steps=1)
    results = run_sample_size_study(config, sizes=(1, 2), seeds=(3,),
                                    methods=("KD", "TGT-gradient"), teachers=teachers,
                                    output_dir=tmp_path / "study")
    saved = json.loads((tmp_path / "study" / "results.json").read_text())
    assert saved["mean"] == results["mean"]
    assert len(saved["accuracy"]["KD"]) == 2 and len(saved["accuracy"]["KD"][0]) == 1
    assert saved["std"]["KD"] == [0.0, 0.0]  # one seed: no spread
    assert len(saved["multiplier_vs_KD"]["TGT-gradient"]) == 2
    assert (tmp_path / "study" / "sample_size.png").read_bytes()[:4] == b"\x89PNG"


def test_study_settings_come_from_hparams():
    from pathlib import Path

    from tgt_keras.apps.sample_size_study import study_config_from_experiment
    from tgt_keras.experiments import load_hparams

    hparams = Path(__file__).parent.parent / "hparams"
    experiment = load_hparams(hparams / "fashion_mnist_lt.yaml", ["sigma=0.25", "student_width=8"])
    config = study_config_from_experiment(experiment, steps=40)
    assert (config.sigma, config.student_width, config.steps) == (0.25, 8, 40)
    assert config.learning_rate == experiment.peak_learning_rate
    with pytest.raises(ValueError, match="supports `dataset`='fashion_mnist_lt' only. "
                                         "Received: dataset='imagenet_lt'"):
        study_config_from_experiment(load_hparams(hparams / "imagenet_lt.yaml"), steps=40)
