"""`tgt-keras tune`: a resumable search that writes a new hparams file, tables and a plot."""

import csv
import json
import re
from pathlib import Path

import keras
import pytest
import yaml

from tgt_keras import cli
from tgt_keras.experiments import load_hparams
from tgt_keras.experiments.run_directory import RunDirectoryError
from tgt_keras.experiments.train import run_experiment
from tgt_keras.tuning.run import run_tuning
from tgt_keras.tuning.space import SearchSpace

HPARAMS = Path(__file__).resolve().parents[1] / "hparams" / "fashion_mnist_lt.yaml"
SPACE = SearchSpace({"sigma": {"min": 0.1, "max": 1.0}, "num_steps": {"values": [1, 2]},
                     "synthetic_per_real": {"values": [1, 2]},
                     "learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"}})


def _rows(out: Path) -> list[dict]:
    with (out / "trials.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _tune(out, max_trials=2, **kwargs):
    config = kwargs.pop("config", load_hparams(HPARAMS))
    return run_tuning(config, out, tuner=kwargs.pop("tuner", "random"), max_trials=max_trials,
                      search_space=kwargs.pop("search_space", SPACE), smoke=True, **kwargs)


class StopInSecondTrial(keras.callbacks.Callback):
    """Interrupts the search (as Ctrl-C would) in the first batch of the second trial.

    keras-tuner deep-copies callbacks per trial: the count lives on the class.
    """

    trials_started = 0

    def on_train_begin(self, logs=None):
        type(self).trials_started += 1

    def on_train_batch_end(self, batch, logs=None):
        if type(self).trials_started == 2:
            raise KeyboardInterrupt


def test_search_writes_a_new_hparams_file_that_trains(tmp_path):
    out = tmp_path / "search"
    summary = _tune(out)
    for name in ("tune.yaml", "trials.csv", "trials.md", "objective_vs_knobs.png", "best.yaml",
                 "best_student.keras", "tuning.json", "search/oracle.json"):
        assert (out / name).exists(), name
    assert (out / "objective_vs_knobs.png").read_bytes()[:4] == b"\x89PNG"
    rows = _rows(out)
    assert [r["trial"] for r in rows] == ["0", "1"] and {r["status"] for r in rows} == {
        "COMPLETED"}
    scores = [float(r["val_balanced_accuracy"]) for r in rows]
    assert summary["best_val_balanced_accuracy"] == pytest.approx(max(scores))
    # The reloaded best student scores what its trial scored.
    assert summary["best_val_balanced_accuracy_reloaded"] == pytest.approx(
        summary["best_val_balanced_accuracy"], abs=1e-6)
    assert "| trial | status | val_balanced_accuracy |" in (out / "trials.md").read_text()

    best = load_hparams(out / "best.yaml")
    best_row = next(r for r in rows if r["trial"] == summary["best_trial"])
    assert best.name == "fashion_mnist_lt_tuned"
    assert best.sigma == pytest.approx(float(best_row["sigma"]))
    assert best.num_steps == int(best_row["num_steps"])
    assert best.synthetic_per_real == int(best_row["synthetic_per_real"])
    assert best.peak_learning_rate == pytest.approx(float(best_row["learning_rate"]))
    base = load_hparams(HPARAMS)
    assert best.replace(name=base.name, description=base.description, sigma=base.sigma,
                        num_steps=base.num_steps, synthetic_per_real=base.synthetic_per_real,
                        peak_learning_rate=base.peak_learning_rate) == base  # nothing else
    header = (out / "best.yaml").read_text().splitlines()[:4]
    assert any("not the test set" in line for line in header)
    assert any("not the paper's" in line for line in header)

    # The best configuration rebuilds a distiller that trains.
    metrics = run_experiment(best, tmp_path / "retrain", smoke=True)
    assert metrics["steps"] == 2 and metrics["experiment"] == "fashion_mnist_lt_tuned"


def test_search_resumes_extends_and_refuses_other_settings(tmp_path):
    out = tmp_path / "search"
    _tune(out, max_trials=1)
    first = _rows(out)
    summary = _tune(out, max_trials=2)  # a larger budget extends the same search
    rows = _rows(out)
    assert summary["trials"] == 2 and rows[0] == first[0]

    settings = (out / "tune.yaml").read_text()
    config = load_hparams(HPARAMS, ["sigma=0.3"])
    with pytest.raises(RunDirectoryError, match=r"other settings \(config.sigma: saved 0.5, "
                                                r"now 0.3\).*nothing was changed"):
        _tune(out, config=config)
    with pytest.raises(RunDirectoryError, match=r"tuner: saved 'random', now 'bayesian'"):
        _tune(out, tuner="bayesian")
    assert (out / "tune.yaml").read_text() == settings and _rows(out) == rows

    summary = _tune(out, max_trials=1, config=config, overwrite=True)
    assert summary["trials"] == 1 and "0.3" in (out / "tune.yaml").read_text()


def test_an_interrupted_trial_is_trained_again_on_resume(tmp_path):
    out = tmp_path / "search"
    StopInSecondTrial.trials_started = 0
    with pytest.raises(KeyboardInterrupt):
        _tune(out, callbacks=[StopInSecondTrial()])
    trial_0 = json.loads((out / "search" / "trial_0" / "trial.json").read_text())
    assert trial_0["status"] == "COMPLETED"
    summary = _tune(out)
    assert [r["status"] for r in _rows(out)] == ["COMPLETED", "COMPLETED"]
    again = json.loads((out / "search" / "trial_0" / "trial.json").read_text())
    assert again["hyperparameters"]["values"] == trial_0["hyperparameters"]["values"]
    assert summary["completed_trials"] == 2


def test_cli_tune_hyperband_prints_the_table(tmp_path, capsys):
    out = tmp_path / "hb"
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"sigma": {"min": 0.1, "max": 1.0}, "temperature": 2.0}))
    assert cli.main(["tune", "--hparams", str(HPARAMS), "--smoke", "--tuner", "hyperband",
                     "--set", "num_epochs=2", "--space", str(space),
                     "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| trial | status | val_balanced_accuracy | best_epoch | sigma | epochs |" in printed
    assert f"best config {out}/best.yaml" in printed
    assert load_hparams(out / "best.yaml").temperature == 2.0  # fixed by the space
    # Settings changed: exit status 1 and a message, nothing touched.
    assert cli.main(["tune", "--hparams", str(HPARAMS), "--smoke", "--tuner", "random",
                     "--output-dir", str(out)]) == 1
    assert "cannot be resumed" in capsys.readouterr().err


def test_tune_needs_a_validation_split_and_a_valid_budget(tmp_path):
    with pytest.raises(ValueError, match=r"`max_trials` does not apply to the 'hyperband'"):
        _tune(tmp_path / "a", tuner="hyperband", max_trials=3)
    config = load_hparams(Path(HPARAMS).parent / "imagenet_lt.yaml")
    with pytest.raises(ValueError, match=r"held-out validation set.*dataset='imagenet_lt'"):
        run_tuning(config, tmp_path / "b", max_trials=1)


@pytest.mark.parametrize("extra, message", [
    (["--tuner", "hyperband", "--max-trials", "3"], "`max_trials` does not apply"),
    (["--max-trials", "0"], r"`max_trials` must be an integer >= 1. Received: max_trials=0"),
    (["--set", "sgima=1"], r"Unknown field\(s\) \['sgima'\]"),
    (["--space", "SPACE"], r"space.yaml: `sigma` must be >= 0.0. Received: sigma=-1"),
    (["--space", "missing.yaml"], r"No such file or directory"),
])
def test_cli_tune_bad_requests_are_messages_not_tracebacks(extra, message, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("sigma: -1\n")
    extra = [str(space) if item == "SPACE" else item for item in extra]
    out = tmp_path / "out"
    assert cli.main(["tune", "--hparams", str(HPARAMS), "--output-dir", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tgt-keras tune: error: ") and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()  # nothing written


def test_search_under_mirrored_strategy(tmp_path):
    from conftest import mirrored_cpus

    strategy = mirrored_cpus()
    summary = _tune(tmp_path / "search", max_trials=1, strategy=strategy)
    assert summary["completed_trials"] == 1
    # The objective logged under two replicas is the balanced accuracy of the whole
    # validation set: the reloaded student, evaluated outside the strategy, scores the same.
    assert summary["best_val_balanced_accuracy_reloaded"] == pytest.approx(
        summary["best_val_balanced_accuracy"], abs=1e-6)
