"""Every file in hparams/ loads into a valid `ExperimentConfig`; bad fields are clear errors."""

from pathlib import Path

import pytest
import yaml

from tgt_keras.experiments import config_from_dict, load_hparams, parse_overrides

HPARAMS = sorted((Path(__file__).parent.parent / "hparams").glob("*.yaml"))
PAPER_TABLE = ("num_epochs", "optimizer", "schedule", "warmup_epochs", "peak_learning_rate",
               "batch_size", "labeler_image_size", "generator_image_size", "student_image_size",
               "sigma", "step_size", "num_steps")


def test_the_experiments_are_all_there():
    names = {p.stem for p in HPARAMS}
    assert {"imagenet_lt", "sun_lt", "places_lt", "fashion_mnist_lt"} <= names


@pytest.mark.parametrize("path", HPARAMS, ids=lambda p: p.stem)
def test_every_hparams_file_loads_and_is_honest(path):
    config = load_hparams(path)
    assert config.name == path.stem
    raw = yaml.safe_load(path.read_text())
    for field in PAPER_TABLE:  # the paper's table columns are written out, never defaulted
        assert field in raw, f"{path.name} lacks the paper-table field {field}"
    header = path.read_text().split("\nname:")[0].lower()
    assert "our default" in header  # each file says its values are ours, not the paper's


def _valid():
    return yaml.safe_load(HPARAMS[0].read_text())


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
