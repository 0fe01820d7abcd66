"""Every file in hparams/ loads into a valid `ExperimentConfig`; bad fields are clear errors."""

import json
import re
from pathlib import Path

import pytest
import yaml

from tgt_keras.experiments import config_from_dict, is_text, load_hparams, parse_overrides

ROOT = Path(__file__).parent.parent
HPARAMS = sorted((ROOT / "hparams").glob("*.yaml"))
COMMON_TABLE = ("num_epochs", "optimizer", "schedule", "warmup_epochs", "peak_learning_rate",
                "batch_size", "sigma", "step_size", "num_steps")
PAPER_TABLE = (*COMMON_TABLE, "labeler_image_size", "generator_image_size",
               "student_image_size")
# A text file writes out the table's columns that apply, plus the text sizes.
TEXT_TABLE = (*COMMON_TABLE, "sequence_length", "vocabulary_size")


def test_the_experiments_are_all_there():
    names = {p.stem for p in HPARAMS}
    assert {"imagenet_lt", "sun_lt", "places_lt", "fashion_mnist_lt"} <= names
    assert {"rt_text", "amazon5", "yelp5"} <= names


@pytest.mark.parametrize("path", HPARAMS, ids=lambda p: p.stem)
def test_every_hparams_file_loads_and_is_honest(path):
    config = load_hparams(path)
    assert config.name == path.stem
    raw = yaml.safe_load(path.read_text())
    for field in TEXT_TABLE if is_text(config) else PAPER_TABLE:
        # the paper's table columns are written out, never defaulted
        assert field in raw, f"{path.name} lacks the paper-table field {field}"
    header = path.read_text().split("\nname:")[0].lower()
    assert "our default" in header  # each file says its values are ours, not the paper's
    if is_text(config):  # the text files state their exact command
        assert f"command: tgt-keras train --hparams hparams/{path.name}" in header
    measured = json.loads((ROOT / "docs" / "train_results.json").read_text())
    if path.stem not in measured:  # no run of it is on record: it quotes no result
        assert not re.search(r"accuracy (of )?0\.\d", header), header
        if is_text(config):
            assert "not yet measured" in header


def _valid():
    return yaml.safe_load((ROOT / "hparams" / "fashion_mnist_lt.yaml").read_text())


def _text():
    return yaml.safe_load((ROOT / "hparams" / "rt_text.yaml").read_text())


def test_unknown_field_is_named():
    values = dict(_valid(), sgima=0.5)
    with pytest.raises(ValueError, match=r"Unknown field\(s\) \['sgima'\] in x.yaml"):
        config_from_dict(values, source="x.yaml")


def test_missing_field_is_named():
    values = _valid()
    del values["sigma"]
    with pytest.raises(ValueError, match=r"Missing field\(s\) \['sigma'\]"):
        config_from_dict(values)


@pytest.mark.parametrize(
    "field, value, error, match",
    [
        ("sigma", -1.0, ValueError, r"`sigma` must be >= 0. Received: sigma=-1.0"),
        ("sigma", "big", TypeError, r"`sigma` must be float. Received: sigma='big'"),
        ("batch_size", 0, ValueError, r"`batch_size` must be >= 1. Received: batch_size=0"),
        ("batch_size", 6.5, TypeError, r"`batch_size` must be int"),
        ("num_steps", True, TypeError, r"`num_steps` must be int"),
        ("optimizer", "rmsprop", ValueError, r"`optimizer` must be one of \('sgd', 'adam'\)"),
        ("exploration", "walk", ValueError, r"`exploration` must be one of"),
        ("dataset", "cifar", ValueError, r"`dataset` must be one of"),
        ("peak_learning_rate", 0.0, ValueError, r"`peak_learning_rate` must be > 0"),
        ("warmup_epochs", 1000, ValueError, r"`warmup_epochs` must be <= num_epochs"),
        ("labeler", "gpt", ValueError, r"`labeler` must be a preset name"),
        ("generator", "savedmodel:", ValueError, r"`generator` must be a preset name"),
        ("long_tail_max_count", None, ValueError, r"set together or not at all"),
        ("precision", "float16", ValueError,
         r"`precision` must be one of \('float32', 'mixed_bfloat16', 'mixed_float16'\)"),
    ],
)
def test_bad_values_are_clear_errors(field, value, error, match):
    with pytest.raises(error, match=match):
        config_from_dict(dict(_valid(), **{field: value}))


def test_overrides_are_yaml_scalars_and_validated():
    assert parse_overrides(["sigma=0.25", "optimizer=sgd", "steps_per_epoch=null"]) == {
        "sigma": 0.25, "optimizer": "sgd", "steps_per_epoch": None}
    path = next(p for p in HPARAMS if p.stem == "fashion_mnist_lt")
    config = load_hparams(path, ["sigma=0.25", "num_steps=1"])
    assert (config.sigma, config.num_steps) == (0.25, 1)
    with pytest.raises(ValueError, match="key=value. Received: 'sigma'"):
        load_hparams(path, ["sigma"])
    with pytest.raises(ValueError, match=r"Unknown field\(s\) \['eta'\]"):
        load_hparams(path, ["eta=1"])


def test_config_is_frozen_and_replace_validates():
    config = config_from_dict(_valid())
    with pytest.raises(AttributeError):
        config.sigma = 2.0
    assert config.replace(sigma=2.0).sigma == 2.0
    with pytest.raises(ValueError, match="`sigma` must be >= 0"):
        config.replace(sigma=-2.0)


@pytest.mark.parametrize(
    "changes, error, match",
    [
        # image fields on a text dataset, text fields on an image one: named, both ways
        ({"labeler_image_size": 224}, ValueError,
         r"`labeler_image_size` applies to image datasets only \(dataset='rotten_tomatoes' is a "
         r"text dataset\); remove it. Received: labeler_image_size=224"),
        ({"long_tail_max_count": 10, "long_tail_imbalance_ratio": 10.0}, ValueError,
         r"`long_tail_max_count` applies to image datasets only"),
        ({"sequence_length": None}, ValueError,
         r"`sequence_length` is required: dataset='rotten_tomatoes' is a text dataset"),
        ({"sequence_length": 2}, ValueError, r"`sequence_length` must be >= 3"),
        ({"sequence_length": 32.5}, TypeError, r"`sequence_length` must be int or None"),
        ({"vocabulary_size": 3}, ValueError, r"`vocabulary_size` must be >= 6"),
        ({"num_labeled": 0}, ValueError, r"`num_labeled` must be >= 1. Received: num_labeled=0"),
        ({"max_train_texts": 1000}, ValueError,
         r"`max_train_texts` does not apply to dataset='rotten_tomatoes'"),
        ({"soft_temperature": 0.0}, ValueError, r"`soft_temperature` must be > 0"),
        ({"hold_teacher_output": "yes"}, TypeError, r"`hold_teacher_output` must be bool"),
        ({"num_classes": 5}, ValueError,
         r"`num_classes` must be 2 for dataset='rotten_tomatoes'. Received: num_classes=5"),
        ({"student": "small_cnn"}, ValueError,
         r"`student` must be one of \('text_cnn', 'text_transformer'\) for the text dataset "
         r"'rotten_tomatoes'. Received: student='small_cnn'"),
        ({"student": "text_transformer", "student_width": 30}, ValueError,
         r"`student_width` must be a multiple of 4"),
        ({"labeler": "fashion-mnist-offline"}, ValueError,
         r"`labeler` of the text dataset 'rotten_tomatoes' must be 'rotten-tomatoes-offline' "
         r"or 'preset:<...>' or 'keras:<...>'. Received: labeler='fashion-mnist-offline'"),
        ({"labeler": "yelp5-offline"}, ValueError,
         r"\('yelp5-offline' is trained on dataset='yelp5'\)"),
        ({"generator": "keras:/x.keras"}, ValueError,
         r"`generator` of the text dataset 'rotten_tomatoes' must be 'rotten-tomatoes-offline' "
         r"or 'preset:<...>'"),
        ({"labeler": "preset:"}, ValueError, r"`labeler` of the text dataset"),
    ],
)
def test_bad_text_fields_are_clear_errors(changes, error, match):
    with pytest.raises(error, match=match):
        config_from_dict(dict(_text(), **changes))


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"sequence_length": 32}, r"`sequence_length` applies to text datasets only "
                                  r"\(dataset='fashion_mnist_lt' is an image dataset\); remove "
                                  r"it. Received: sequence_length=32"),
        ({"num_labeled": 100}, r"`num_labeled` applies to text datasets only"),
        ({"soft_temperature": 1.0}, r"`soft_temperature` applies to text datasets only"),
        ({"student_image_size": None}, r"`student_image_size` is required: "
                                       r"dataset='fashion_mnist_lt' is an image dataset"),
        ({"student": "text_cnn"}, r"`student` must be one of \('small_cnn', 'resnet'\) for the "
                                  r"image dataset 'fashion_mnist_lt'"),
        ({"labeler": "rotten-tomatoes-offline"}, r"`labeler` must be a preset name"),
        ({"generator": "preset:/x"}, r"`generator` must be a preset name"),
    ],
)
def test_text_fields_on_an_image_dataset_are_clear_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        config_from_dict(dict(_valid(), **changes))


def test_an_image_file_without_an_image_size_names_it():
    values = _valid()
    del values["labeler_image_size"]
    with pytest.raises(ValueError, match=r"`labeler_image_size` is required"):
        config_from_dict(values, source="x.yaml")


def test_text_configs_take_every_teacher_form_and_their_defaults():
    config = config_from_dict(_text())
    assert is_text(config) and not is_text(config_from_dict(_valid()))
    assert (config.labeler_image_size, config.long_tail_max_count) == (None, None)
    assert config.hold_teacher_output is False and config.num_labeled is None
    for labeler in ("keras:/models/rt.keras", "preset:bert_tiny_en_uncased"):
        assert config.replace(labeler=labeler).labeler == labeler
    assert config.replace(generator="preset:/presets/bart").generator == "preset:/presets/bart"
    yelp = load_hparams(ROOT / "hparams" / "yelp5.yaml", ["max_train_texts=null"])
    assert (yelp.num_classes, yelp.max_train_texts, yelp.num_labeled) == (5, None, 2500)
    assert config_from_dict(dict(_valid(), hold_teacher_output=True)).hold_teacher_output
