"""`tgt-keras tune` on a text experiment: the search runs on held-out labelled texts and writes a
text hparams file that trains."""

import json
from pathlib import Path

import pytest

from tgt_keras import cli
from tgt_keras.experiments import load_hparams
from tgt_keras.experiments.run_directory import TEXT_SMOKE_HEADER
from tgt_keras.experiments.train import run_experiment
from tgt_keras.tuning.run import check_request
from tgt_keras.tuning.space import default_search_space

RT = Path(__file__).resolve().parents[1] / "hparams" / "rt_text.yaml"


def test_a_text_search_writes_a_text_hparams_file_that_trains(tmp_path, capsys):
    out = tmp_path / "search"
    space = tmp_path / "space.yaml"
    space.write_text("sigma: {min: 0.1, max: 1.0}\nstep_size: {values: [4.0, 16.0]}\n")
    assert cli.main(["tune", "--hparams", str(RT), "--smoke", "--tuner", "random",
                     "--max-trials", "2", "--space", str(space), "--set", "vocabulary_size=256",
                     "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| trial | status | val_balanced_accuracy | best_epoch | sigma | step_size |" in printed
    summary = json.loads((out / "tuning.json").read_text())
    assert summary["objective"] == "val_balanced_accuracy" and summary["completed_trials"] == 2
    assert summary["best_val_balanced_accuracy_reloaded"] == pytest.approx(
        summary["best_val_balanced_accuracy"], abs=1e-6)
    for key in ("best_test_balanced_accuracy", "best_test_accuracy", "best_test_macro_f1"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert not any("shot" in key for key in summary)  # a class-balanced labelled set

    text = (out / "best.yaml").read_text()
    assert text.startswith(TEXT_SMOKE_HEADER) and "held-out training-split texts" in text
    best = load_hparams(out / "best.yaml")
    assert best.name == "rt_text_tuned" and best.dataset == "rotten_tomatoes"
    assert best.step_size in (4.0, 16.0) and best.sequence_length == 32
    metrics = run_experiment(best, tmp_path / "retrain", smoke=True)
    assert metrics["steps"] == 2 and "macro_f1" in metrics


def test_text_datasets_have_a_validation_split_and_their_own_default_space():
    for name in ("rt_text", "yelp5", "amazon5"):
        check_request(load_hparams(RT.parent / f"{name}.yaml"), "bayesian", 3, smoke=False)
    space = default_search_space("gradient", "text")
    assert space.describe("step_size") == "[2, 64] log" and space.describe("num_steps") == "[1, 3]"
    assert "step_size" not in default_search_space("random", "text").knobs
    assert default_search_space() == default_search_space("gradient", "image")
    with pytest.raises(ValueError, match=r"`modality` must be one of \('image', 'text'\)"):
        default_search_space("gradient", "audio")
