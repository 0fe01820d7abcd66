"""`tgt-keras train` on the text experiments of hparams/: smoke runs, resuming, bad text fields,
the data path of a real run (tiny CSV files, tiny teachers) and the teacher forms."""

import csv
import json
import re
from pathlib import Path

import keras
import keras_hub
import numpy as np
import pytest
import yaml

from tgt_keras import cli
from tgt_keras.experiments import load_hparams
from tgt_keras.experiments import text as text_module
from tgt_keras.experiments.run_directory import TEXT_SMOKE_HEADER
from tgt_keras.experiments.train import run_experiment
from tgt_keras.modalities.text import SPECIAL_TOKENS, Vocabulary, WordPieceTokenizer

ROOT = Path(__file__).resolve().parents[1]
RT = ROOT / "hparams" / "rt_text.yaml"
YELP = ROOT / "hparams" / "yelp5.yaml"
WORDS = ["good", "bad", "film", "great", "awful", "plot", "fun", "dull", "cast", "witty", "the",
         "food", "slow", "nice", "rude", "tasty"]


def _smoke(out, *sets):
    argv = ["train", "--hparams", str(RT), "--smoke", "--output-dir", str(out)]
    for item in sets:
        argv += ["--set", item]
    return cli.main(argv)


@pytest.mark.parametrize("path", [RT, YELP, ROOT / "hparams" / "amazon5.yaml"],
                         ids=lambda p: p.stem)
def test_smoke_run_writes_the_text_run_directory(path, tmp_path, capsys):
    out = tmp_path / "run"
    # A smaller vocabulary than the files' 8,192 keeps the soft tokens small.
    assert cli.main(["train", "--hparams", str(path), "--smoke", "--output-dir", str(out),
                     "--set", "vocabulary_size=512"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    saved = (out / "config.yaml").read_text()
    assert saved.startswith(TEXT_SMOKE_HEADER)
    assert yaml.safe_load(saved)["name"] == path.stem
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "balanced_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(metrics["validation"]) == {"accuracy", "macro_f1", "balanced_accuracy"}
    assert metrics["smoke"] is True and metrics["steps"] == 2
    assert {"loss", "synthetic_loss", "synthetic_changed", "synthetic_label_flips"} <= set(
        metrics["history"])
    config = load_hparams(path)
    assert len(metrics["per_class_accuracy"]) == config.num_classes
    assert metrics["sizes"] == {"labeled": 8, "validation": 8, "test": 8}
    student = keras.models.load_model(out / "student.keras")
    assert (student.num_classes, student.sequence_length) == (config.num_classes,
                                                              config.sequence_length)
    examples = (out / "examples.md").read_text().splitlines()
    assert examples[0] == "| real | reconstruction | explored |" and len(examples) == 2 + 8
    assert (out / "per_class_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("samples_step*.png")) and not (out / "backup").exists()


class Interrupted(Exception):
    """Stands for a kill right after an epoch was backed up."""


def test_a_run_interrupted_after_an_epoch_resumes_to_the_same_result(tmp_path, monkeypatch,
                                                                    capsys):
    sets = ("num_epochs=3", "vocabulary_size=256")
    reference = tmp_path / "reference"
    assert _smoke(reference, *sets) == 0
    expected = json.loads((reference / "metrics.json").read_text())

    out = tmp_path / "run"
    original = keras.callbacks.BackupAndRestore.on_epoch_end

    def backup_then_die(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise Interrupted

    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", backup_then_die)
    with pytest.raises(Interrupted):
        _smoke(out, *sets)
    assert not (out / "metrics.json").exists() and (out / "backup").exists()
    monkeypatch.setattr(keras.callbacks.BackupAndRestore, "on_epoch_end", original)

    capsys.readouterr()
    assert _smoke(out, *sets) == 0
    assert "resuming from epoch 1" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from_epoch"] == 1 and metrics["steps"] == expected["steps"] == 6
    for name in ("loss", "real_loss", "synthetic_loss", "accuracy"):
        np.testing.assert_allclose(metrics["history"][name], expected["history"][name],
                                   rtol=1e-4, err_msg=name)
    for key in ("accuracy", "macro_f1", "balanced_accuracy", "per_class_accuracy"):
        assert metrics[key] == expected[key], key


@pytest.mark.parametrize("hparams, item, message", [
    (RT, "labeler_image_size=224",
     "error: --set labeler_image_size=224: `labeler_image_size` applies to image datasets only "
     "(dataset='rotten_tomatoes' is a text dataset); remove it."),
    (RT, "sequence_length=null", "error: --set sequence_length=null: `sequence_length` is "
                                 "required: dataset='rotten_tomatoes' is a text dataset"),
    (RT, "labeler=mnist-offline", "`labeler` of the text dataset 'rotten_tomatoes' must be"),
    (RT, "student=resnet", "for the text dataset 'rotten_tomatoes'. Received: student='resnet'"),
    (ROOT / "hparams" / "fashion_mnist_lt.yaml", "sequence_length=32",
     "error: --set sequence_length=32: `sequence_length` applies to text datasets only"),
])
@pytest.mark.parametrize("command", ["train", "tune"])
def test_a_bad_text_field_is_a_one_line_error(command, hparams, item, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([command, "--hparams", str(hparams), "--smoke", "--set", item,
                     "--output-dir", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"tgt-keras {command}: error: ") and captured.out == ""
    assert captured.err.count("\n") == 1 and message in captured.err, captured.err
    assert not out.exists()


def test_missing_review_files_are_a_one_line_error(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["train", "--hparams", str(YELP), "--set", f"data_dir={tmp_path / 'none'}",
                     "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(r"No yelp5 data: .*none/train.csv does not exist",
                                              err), err
    assert not out.exists()


# --- a real (not smoke) run's data path: tiny Yelp-5 CSV files, tiny teachers ---------------

def _write_yelp(folder: Path, per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "file.csv").open("w", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_ALL)
        for i in range(per_class * 5):
            writer.writerow([str(i % 5 + 1), " ".join(rng.choice(WORDS, rng.integers(2, 6)))])


def _yelp_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "yelp"
    _write_yelp(folder, 20, 0)
    (folder / "file.csv").rename(folder / "train.csv")
    _write_yelp(folder, 5, 1)
    (folder / "file.csv").rename(folder / "test.csv")
    return folder


def _tiny_teachers(config, split):
    vocabulary = Vocabulary([*SPECIAL_TOKENS, *WORDS])
    stub = text_module.stub_text_teachers(config, vocabulary)
    assert isinstance(stub.tokenizer, WordPieceTokenizer)
    return stub


def test_a_yelp_run_tokenizes_holds_out_validation_and_evaluates(tmp_path, monkeypatch):
    monkeypatch.setattr(text_module, "build_text_teachers", _tiny_teachers)
    config = load_hparams(YELP, [f"data_dir={_yelp_dir(tmp_path)}", "num_labeled=10",
                                 "sequence_length=8", "max_train_texts=null", "batch_size=4",
                                 "steps_per_epoch=2", "num_epochs=1", "warmup_epochs=0",
                                 "student_width=8"])
    split = text_module.load_text_split(config)
    validation = text_module._validation_indices(split, config.seed)
    assert not set(validation) & set(split.labeled_indices)  # held out of the labelled set
    assert np.bincount(split.train_labels[validation]).tolist() == [18] * 5  # 20 - 2 labelled

    metrics = run_experiment(config, tmp_path / "run")
    assert metrics["smoke"] is False and metrics["steps"] == 2
    assert metrics["sizes"] == {"labeled": 10, "validation": 90, "test": 25, "train_split": 100}
    assert metrics["train_counts"] == [2] * 5
    assert metrics["class_names"] == ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"]
    assert 0.0 <= metrics["macro_f1"] <= 1.0
    real = (tmp_path / "run" / "examples.md").read_text().splitlines()[2].split(" | ")[0]
    assert set(re.sub(r"\*\(.*?\)\*", "", real).strip("| ").split()) <= set(WORDS)


def test_keras_labeler_and_preset_generator_share_the_labelers_vocabulary(tmp_path):
    from tgt_keras.teachers.text_labeler import SoftTokenClassifier

    vocabulary, length = Vocabulary([*SPECIAL_TOKENS, *WORDS]), 8
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary.size, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, dropout=0.0, max_sequence_length=16)
    classifier = SoftTokenClassifier(bert, num_classes=5, vocabulary=vocabulary, dropout=0.0,
                                     sequence_length=length)
    classifier.save(tmp_path / "labeler.keras")
    bart = keras_hub.models.BartBackbone(
        vocabulary_size=vocabulary.size, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, dropout=0.0, max_sequence_length=16)
    bart.save_to_preset(str(tmp_path / "bart"))

    config = load_hparams(YELP, [f"labeler=keras:{tmp_path / 'labeler.keras'}",
                                 f"generator=preset:{tmp_path / 'bart'}", "sequence_length=8",
                                 "vocabulary_size=null", "soft_temperature=2.0"])
    teachers = text_module.build_text_teachers(config, split=None)
    assert teachers.vocabulary == vocabulary == teachers.generator.vocabulary
    assert teachers.generator.soft_temperature == 2.0
    assert teachers.labeler.num_classes == 5 and teachers.tokenizer.sequence_length == length
    ids = teachers.tokenizer(["good film", "rude slow food"])
    assert np.asarray(teachers.labeler.logits(ids)).shape == (2, 5)

    with pytest.raises(ValueError, match=r"`vocabulary_size` must be the vocabulary of the "
                                         r"labeler .*\(21 tokens\) or None"):
        text_module.build_text_teachers(config.replace(vocabulary_size=999), split=None)


def test_a_preset_labeler_is_fine_tuned_on_the_training_split(monkeypatch):
    from tgt_keras.offline import text_labeler, text_teachers

    seen = {}
    vocabulary = Vocabulary([*SPECIAL_TOKENS, *WORDS])
    monkeypatch.setattr(text_teachers, "corpus_vocabulary",
                        lambda texts, size, name: seen.update(size=size, name=name) or vocabulary)

    def fine_tune(split, vocab, tokenizer, recipe=None):
        seen.update(recipe=recipe)
        raise StopIteration  # far enough: what it would train is recorded

    monkeypatch.setattr(text_labeler, "offline_text_labeler_for_split", fine_tune)

    class Split:
        name, generator_texts = "yelp5", ["good film"]

    config = load_hparams(YELP, ["labeler=preset:bert_tiny_en_uncased"])
    with pytest.raises(StopIteration):
        text_module.build_text_teachers(config, Split())
    assert seen == {"size": 8192, "name": "yelp5",
                    "recipe": {"preset": "bert_tiny_en_uncased",
                               "backbone": "keras-hub preset bert_tiny_en_uncased"}}
