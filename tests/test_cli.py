"""The `tgt-keras` command line: argument handling and bad requests (the demo itself is in
test_offline_demo, training in test_train_experiments, searches in test_tune_command)."""

from pathlib import Path

import pytest

import tgt_keras.apps.long_tail_demo as demo_module
import tgt_keras.apps.sample_size_study as study_module
import tgt_keras.experiments.train as train_module
import tgt_keras.offline as offline_package
import tgt_keras.tuning.run as tuning_module
from tgt_keras import cli

HPARAMS = Path(__file__).parents[1] / "hparams"
GOOD = (HPARAMS / "fashion_mnist_lt.yaml").read_text()


def _never_called(*args, **kwargs):
    raise AssertionError("ran although the request was refused")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory with hparams files good and bad, where nothing may run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TGT_KERAS_CACHE", str(tmp_path / "cache"))
    for module, name in [(demo_module, "run_demo"), (train_module, "run_experiment"),
                         (tuning_module, "run_tuning"), (study_module, "run_sample_size_study"),
                         (offline_package, "fashion_mnist_teachers")]:
        monkeypatch.setattr(module, name, _never_called)
    files = {
        "good.yaml": GOOD,
        "imagenet.yaml": (HPARAMS / "imagenet_lt.yaml").read_text(),
        "typo.yaml": GOOD + "sgima: 0.3\n",
        "negative.yaml": GOOD.replace("\nsigma:", "\nsigma: -1\nold_sigma:"),
        "text.yaml": GOOD.replace("\nsigma:", "\nsigma: abc\nold_sigma:"),
        "broken.yaml": "sigma: [0.5\nstep_size: 1\n",
        "list.yaml": "- sigma\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text.replace("\nold_sigma:", "\n# was:"))
    (tmp_path / "folder.yaml").mkdir()
    return tmp_path


def _refused(capsys, workdir, argv, message):
    """Asserts `argv` exits with status 2, one line naming `message`, and writes nothing."""
    before = sorted(p.name for p in workdir.iterdir())
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"tgt-keras {argv[0]}: error: "), captured.err
    assert captured.err.count("\n") == 1, captured.err
    assert message in captured.err, captured.err
    assert sorted(p.name for p in workdir.iterdir()) == before  # no runs/, no cache/


def test_the_fixture_files_are_what_the_tests_say(workdir):
    from tgt_keras.experiments import load_hparams

    assert load_hparams(workdir / "good.yaml").sigma == 0.5
    with pytest.raises(ValueError, match=r"`sigma` must be >= 0. Received: sigma=-1"):
        load_hparams(workdir / "negative.yaml")


@pytest.mark.parametrize("argv, message", [
    (["--steps", "7", "--epochs", "5"],
     "error: --steps 7 --epochs 5: `steps` must be a positive multiple of `epochs`=5. "
     "Received: steps=7"),
    (["--seed", "-1"], "error: --seed -1: `seed` must be >= 0. Received: seed=-1"),
    (["--output-dir", "good.yaml/demo"],
     "error: --output-dir good.yaml/demo: good.yaml exists and is not a directory"),
    (["--methods", "TGT-magic"], "error: --methods TGT-magic: `methods` must be among "
     "one-hot, KD, TGT-random, TGT-gradient, KD-cached for --task image. Received: TGT-magic"),
    (["--task", "text", "--methods", "KD-cached"], "for --task text. Received: KD-cached"),
    (["--task", "text", "--steps", "7", "--epochs", "5"],
     "error: --steps 7 --epochs 5: `steps` must be a positive multiple of `epochs`=5."),
])
def test_demo_bad_requests(argv, message, workdir, capsys):
    _refused(capsys, workdir, ["demo", *argv], message)


def test_the_text_demo_gets_its_options_and_quick_settings(monkeypatch, tmp_path):
    from tgt_keras.apps import text_demo

    seen = {}
    monkeypatch.setattr(text_demo, "run_text_demo",
                        lambda config, methods: seen.update(config=config, methods=methods))
    assert cli.main(["demo", "--task", "text", "--quick", "--seed", "2",
                     "--output-dir", str(tmp_path), "--methods", "KD", "TGT-gradient"]) == 0
    config = seen["config"]
    assert (config.steps, config.epochs, config.seed) == (text_demo.QUICK["steps"],
                                                          text_demo.QUICK["epochs"], 2)
    assert config.output_dir == str(tmp_path)
    assert seen["methods"] == ("KD", "TGT-gradient")


def test_demo_passes_its_options_to_run_demo(monkeypatch, tmp_path):
    seen = {}

    def fake_run_demo(config, methods):
        seen.update(config=config, methods=methods)

    monkeypatch.setattr(demo_module, "run_demo", fake_run_demo)
    assert cli.main(["demo", "--steps", "20", "--epochs", "2", "--seed", "3",
                     "--output-dir", str(tmp_path), "--methods", "KD", "TGT-gradient"]) == 0
    config = seen["config"]
    assert (config.steps, config.epochs, config.seed) == (20, 2, 3)
    assert config.output_dir == str(tmp_path)
    assert seen["methods"] == ("KD", "TGT-gradient")


@pytest.mark.parametrize("argv, message", [
    # The file: missing, not a file, not YAML, not a mapping, a bad field, value or type.
    (["--hparams", "missing.yaml"], "error: missing.yaml: No such file or directory"),
    (["--hparams", "folder.yaml"], "error: folder.yaml: Is a directory"),
    (["--hparams", "broken.yaml"],
     "error: broken.yaml: invalid YAML at line 2, column 10: expected ',' or ']'"),
    (["--hparams", "list.yaml"],
     "error: list.yaml must hold a mapping of fields. Received: list"),
    (["--hparams", "typo.yaml"], "Unknown field(s) ['sgima'] in typo.yaml"),
    (["--hparams", "negative.yaml", "--set", "num_steps=1"],
     "error: negative.yaml: `sigma` must be >= 0. Received: sigma=-1"),
    (["--hparams", "text.yaml"],
     "error: text.yaml: `sigma` must be float. Received: sigma='abc' of type str"),
    # --set: malformed, not YAML, an unknown field, a bad value or type.
    (["--hparams", "good.yaml", "--set", "sigma"],
     "error: --set sigma: An override must look like key=value. Received: 'sigma'"),
    (["--hparams", "good.yaml", "--set", "sigma=[0.5"], "error: --set sigma=[0.5: invalid YAML"),
    (["--hparams", "good.yaml", "--set", "sgima=0.3"],
     "error: --set sgima=0.3: Unknown field(s) ['sgima'] in --set."),
    (["--hparams", "good.yaml", "--set", "num_steps=1", "--set", "sigma=-1"],
     "error: --set sigma=-1: `sigma` must be >= 0. Received: sigma=-1"),
    (["--hparams", "good.yaml", "--set", "sigma=abc"],
     "error: --set sigma=abc: `sigma` must be float. Received: sigma='abc' of type str"),
    # Two items that are fine alone but not together: both are named.
    (["--hparams", "good.yaml", "--set", "num_epochs=1", "--set", "warmup_epochs=3"],
     "error: --set num_epochs=1 --set warmup_epochs=3: `warmup_epochs` must be <= "
     "num_epochs=1. Received: warmup_epochs=3"),
    (["--hparams", "good.yaml", "--output-dir", "good.yaml"],
     "error: --output-dir good.yaml: good.yaml exists and is not a directory"),
])
def test_train_bad_requests_say_what_and_where(argv, message, workdir, capsys):
    _refused(capsys, workdir, ["train", *argv], message)


def test_train_passes_the_overridden_config_on(workdir, monkeypatch, capsys):
    seen = {}

    def fake_run_experiment(config, output, **kwargs):
        seen.update(config=config, output=output, **kwargs)
        return {"balanced_accuracy": 0.5}

    monkeypatch.setattr(train_module, "run_experiment", fake_run_experiment)
    assert cli.main(["train", "--hparams", "good.yaml", "--smoke", "--set", "sigma=0.25",
                     "--set", "num_steps=2"]) == 0
    assert (seen["config"].sigma, seen["config"].num_steps) == (0.25, 2)
    assert seen["output"] == f"runs/{seen['config'].name}-smoke"
    assert seen["smoke_keeps"] == ("sigma", "num_steps")


def test_errors_inside_training_stay_tracebacks(workdir, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not a bad request")

    monkeypatch.setattr(train_module, "run_experiment", broken)
    with pytest.raises(ValueError, match="a bug, not a bad request"):
        cli.main(["train", "--hparams", "good.yaml", "--smoke"])


@pytest.mark.parametrize("argv, message", [
    (["--hparams", "broken.yaml"], "error: broken.yaml: invalid YAML at line 2"),
    (["--hparams", "good.yaml", "--set", "sgima=1"],
     "error: --set sgima=1: Unknown field(s) ['sgima'] in --set."),
    (["--hparams", "imagenet.yaml"],
     "error: imagenet.yaml: `tgt-keras tune` selects on a held-out validation set"),
    (["--hparams", "good.yaml", "--set", "dataset=imagenet_lt"],
     "error: --set dataset=imagenet_lt: `tgt-keras tune` selects on a held-out validation set"),
    (["--hparams", "good.yaml", "--tuner", "hyperband", "--max-trials", "3"],
     "error: --tuner hyperband --max-trials 3: `max_trials` does not apply"),
    (["--hparams", "good.yaml", "--space", "broken.yaml"],
     "error: broken.yaml: invalid YAML at line 2"),
])
def test_tune_bad_requests_say_what_and_where(argv, message, workdir, capsys):
    _refused(capsys, workdir, ["tune", *argv], message)


@pytest.mark.parametrize("argv, message", [
    (["--hparams", "missing.yaml"], "error: missing.yaml: No such file or directory"),
    (["--hparams", "good.yaml", "--set", "sigma=-1"],
     "error: --set sigma=-1: `sigma` must be >= 0. Received: sigma=-1"),
    (["--hparams", "imagenet.yaml"],
     "error: imagenet.yaml: The sample-size study supports `dataset`='fashion_mnist_lt' only. "
     "Received: dataset='imagenet_lt'"),
    (["--hparams", "good.yaml", "--set", "optimizer=sgd"],
     "error: --set optimizer=sgd: The sample-size study supports `optimizer`='adam' only."),
    (["--set", "sigma=0.3"], "error: --set sigma=0.3: --set overrides a field of --hparams, "
                             "and no --hparams was given"),
    (["--sizes", "5", "0"], "error: --sizes 5 0: `sizes` must all be >= 1. "
                            "Received: sizes=[5, 0]"),
    (["--seeds", "-1"], "error: --seeds -1: `seeds` must all be >= 0. Received: seeds=[-1]"),
    (["--sizes", "10", "5", "--seeds", "1", "1"],
     "error: --sizes 10 5 --seeds 1 1: `sizes` must be increasing integers >= 1. "
     "Received: sizes=[10, 5]"),
    (["--seeds", "1", "1"], "`seeds` must be distinct integers, at least one. "
                            "Received: seeds=[1, 1]"),
    (["--max-steps", "0"],
     "error: --max-steps 0: `max_steps` must be an integer >= 1. Received: max_steps=0"),
    (["--min-steps", "50", "--max-steps", "40"],
     "error: --min-steps 50 --max-steps 40: `max_steps` must be >= min_steps=50."),
])
def test_study_bad_requests_say_what_and_where(argv, message, workdir, capsys):
    _refused(capsys, workdir, ["study", "sample-size", *argv], message)


def test_study_passes_the_overridden_config_on(workdir, monkeypatch):
    seen = {}

    def fake_study(config, sizes, seeds, output_dir, rule):
        seen.update(config=config, sizes=sizes, seeds=seeds, output_dir=output_dir, rule=rule)

    monkeypatch.setattr(study_module, "run_sample_size_study", fake_study)
    assert cli.main(["study", "sample-size", "--hparams", "good.yaml", "--set", "sigma=0.25",
                     "--max-steps", "600", "--sizes", "5", "10"]) == 0
    assert seen["config"].sigma == 0.25
    assert seen["rule"] == study_module.PlateauRule(max_steps=600)
    assert seen["sizes"] == (5, 10) and seen["seeds"] == study_module.DEFAULT_SEEDS
    assert seen["output_dir"] == "runs/sample_size"


def test_teachers_refuse_a_cache_that_is_a_file(workdir, monkeypatch, capsys):
    monkeypatch.setenv("TGT_KERAS_CACHE", "good.yaml")
    _refused(capsys, workdir, ["teachers"],
             "error: $TGT_KERAS_CACHE=good.yaml: exists and is not a directory")


def test_a_type_error_of_a_command_check_stays_a_traceback(workdir, monkeypatch):
    def broken(config):
        raise TypeError("a bug in the check")

    monkeypatch.setattr(study_module, "study_config_from_experiment", broken)
    with pytest.raises(TypeError, match="a bug in the check"):
        cli.main(["study", "sample-size", "--hparams", "good.yaml"])
