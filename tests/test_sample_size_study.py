"""The sample-size study: the plateau rule, the effective-sample-size arithmetic and a tiny
end-to-end run."""

import json
import math

import numpy as np
import pytest

from tgt_keras.apps.long_tail_demo import DemoConfig
from tgt_keras.apps.sample_size_study import (
    PlateauRule,
    best_within,
    effective_sample_size,
    format_multiplier,
    format_study_table,
    run_sample_size_study,
    summarize_run,
)


def trajectory(*validation, every=10):
    return [{"step": every * (i + 1), "validation": v, "test": v / 2}
            for i, v in enumerate(validation)]


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


def test_plateau_rule_stops_after_patience_evaluations_without_a_new_best():
    rule = PlateauRule(eval_every=10, patience=2, min_steps=20, max_steps=1000)
    # Best at step 20 (0.6); 0.6 again at 30 is no improvement; 40 is the second miss.
    points = trajectory(0.5, 0.6, 0.6, 0.55, 0.9)
    assert [rule.fires(points[:i + 1]) for i in range(5)] == [False, False, False, True, False]
    assert rule.stop_index(points) == 3
    assert best_within(points, points[3]["step"])["step"] == 20


def test_plateau_rule_min_and_max_steps():
    points = trajectory(0.9, 0.5, 0.5, 0.5)
    assert PlateauRule(eval_every=10, patience=1, min_steps=30, max_steps=100).stop_index(
        points) == 2  # would fire at step 20, but not before min_steps
    assert PlateauRule(eval_every=10, patience=9, min_steps=10, max_steps=20).stop_index(
        trajectory(0.1, 0.2, 0.3)) == 1  # the cap, though still improving
    assert PlateauRule(eval_every=10, patience=9, min_steps=10, max_steps=100).stop_index(
        trajectory(0.1, 0.2)) == 1  # never fires: the last evaluation
    with pytest.raises(ValueError, match=r"`max_steps` must be >= min_steps=50\. Received: "
                                         r"max_steps=40"):
        PlateauRule(min_steps=50, max_steps=40)
    with pytest.raises(ValueError, match=r"`patience` must be an integer >= 1\. Received: "
                                         r"patience=0"):
        PlateauRule(patience=0)


def test_summarize_run_reads_plateau_and_budgets_off_one_trajectory():
    rule = PlateauRule(eval_every=10, patience=1, min_steps=10, max_steps=1000)
    # The rule stops at step 30 (best 20); the equal-compute budgets see further.
    points = trajectory(0.5, 0.6, 0.55, 0.7, 0.65, 0.8)
    run = summarize_run(points, rule, {"TGT-random": 45, "TGT-gradient": 60}, 1.0)
    assert (run["steps"], run["best_step"], run["test"], run["capped"]) == (30, 20, 0.3, False)
    assert run["equal_compute"]["TGT-random"] == {"budget": 45, "best_step": 40, "test": 0.35,
                                                  "validation": 0.7}
    assert run["equal_compute"]["TGT-gradient"]["best_step"] == 60


def test_multiplier_formatting_with_seeds_above_the_curve():
    entry = {"per_seed": [[2.0, 3.0], [4.0, None]]}
    assert format_multiplier(entry, 0, 5, 50) == "3.0 ± 1.0"
    # Seed 2 is above every KD point (at least 50 / 10 = 5), seed 1 gives 3.
    assert format_multiplier(entry, 1, 10, 50) == "≥ 3.0 (1/2 seeds above every KD point)"


def test_table_rows():
    results = {"sizes_per_class": [5, 50],
               "mean": {"KD-cached": [0.5, 0.6], "TGT-gradient": [0.55, 0.7]},
               "std": {"KD-cached": [0.01, 0.02], "TGT-gradient": [0.0, 0.01]},
               "multiplier": {"TGT-gradient vs KD-cached": {"per_seed": [[2.5, None]]}}}
    lines = format_study_table(results).splitlines()
    assert lines[0].endswith("| TGT-gradient = KD with ×n (plateau) |")
    assert lines[2] == "| 5 | 0.500 ± 0.010 | 0.550 ± 0.000 | 2.5 ± 0.0 |"
    assert lines[3] == ("| 50 | 0.600 ± 0.020 | 0.700 ± 0.010 | ≥ 1.0 (1/1 seeds above every "
                        "KD point) |")


def test_tiny_study_end_to_end(tmp_path):
    from tests.test_offline_demo import TINY  # the tiny cached teachers' recipe
    from tgt_keras.offline import fashion_mnist_teachers

    teachers = fashion_mnist_teachers(cache=tmp_path / "cache", verbose=0, recipe=TINY)
    config = DemoConfig(steps=1, epochs=1, batch_size=8, num_steps=1, student_width=2)
    rule = PlateauRule(eval_every=2, patience=1, min_steps=2, max_steps=6)
    results = run_sample_size_study(
        config, sizes=(1, 2), seeds=(3,), methods=("KD-cached", "TGT-gradient"),
        teachers=teachers, output_dir=tmp_path / "study", rule=rule, timing_rounds=1,
        timing_block_steps=2, log=lambda line: None)
    saved = json.loads((tmp_path / "study" / "results.json").read_text())
    assert saved["mean"] == results["mean"]
    assert set(saved["mean"]) == {"KD-cached", "TGT-gradient",
                                  "KD-cached at TGT-gradient's compute"}
    ratio = saved["step_cost_in_kd_cached_steps"]["TGT-gradient"]
    for i in range(2):
        tgt = saved["runs"]["TGT-gradient"][i][0]
        kd = saved["runs"]["KD-cached"][i][0]
        assert tgt["steps"] % 2 == 0 and 2 <= tgt["steps"] <= 6
        budget = max(1, round(tgt["steps"] * ratio))
        assert kd["equal_compute"]["TGT-gradient"]["budget"] == budget
        # The KD run trained past its budget and its own plateau, evaluating every 2 steps.
        steps = [p["step"] for p in kd["trajectory"]]
        assert steps == list(range(2, steps[-1] + 1, 2))
        assert steps[-1] >= max(budget, kd["steps"])
        assert all("test" in p for p in kd["trajectory"]
                   if p["validation"] > max([q["validation"] for q in kd["trajectory"]
                                             if q["step"] < p["step"]], default=-1))
    assert saved["std"]["KD-cached"] == [0.0, 0.0]  # one seed: no spread
    per_seed = saved["multiplier"]["TGT-gradient vs KD-cached"]["per_seed"]
    assert len(per_seed) == 1 and len(per_seed[0]) == 2
    assert np.isfinite(saved["step_costs"]["median_step_seconds"]["TGT-gradient"])
    assert (tmp_path / "study" / "sample_size.png").read_bytes()[:4] == b"\x89PNG"


def test_study_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"`sizes` must be increasing integers >= 1\. "
                                         r"Received: sizes=\[10, 5\]"):
        run_sample_size_study(sizes=(10, 5), teachers=object(), output_dir=tmp_path)
    with pytest.raises(ValueError, match="including 'KD-cached'"):
        run_sample_size_study(methods=("one-hot", "TGT-gradient"), teachers=object(),
                              output_dir=tmp_path)


def test_study_settings_come_from_hparams():
    from pathlib import Path

    from tgt_keras.apps.sample_size_study import study_config_from_experiment
    from tgt_keras.experiments import load_hparams

    hparams = Path(__file__).parent.parent / "hparams"
    experiment = load_hparams(hparams / "fashion_mnist_lt.yaml", ["sigma=0.25", "student_width=8"])
    config = study_config_from_experiment(experiment)
    assert (config.sigma, config.student_width) == (0.25, 8)
    assert config.learning_rate == experiment.peak_learning_rate
    with pytest.raises(ValueError, match="supports `dataset`='fashion_mnist_lt' only. "
                                         "Received: dataset='imagenet_lt'"):
        study_config_from_experiment(load_hparams(hparams / "imagenet_lt.yaml"))
