"""The `tgt-keras` command line: argument handling (the demo itself is in test_offline_demo)."""

import pytest

from tgt_keras import cli


def test_demo_rejects_steps_not_divisible_by_epochs():
    with pytest.raises(ValueError, match="`steps` must be a positive multiple of `epochs`=5"):
        cli.main(["demo", "--steps", "7", "--epochs", "5"])


def test_unknown_method_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["demo", "--methods", "TGT-magic"])
    assert excinfo.value.code == 2
    assert "invalid choice: 'TGT-magic'" in capsys.readouterr().err


def test_demo_passes_its_options_to_run_demo(monkeypatch, tmp_path):
    seen = {}

    def fake_run_demo(config, methods):
        seen.update(config=config, methods=methods)

    import tgt_keras.apps.long_tail_demo as demo

    monkeypatch.setattr(demo, "run_demo", fake_run_demo)
    assert cli.main(["demo", "--steps", "20", "--epochs", "2", "--seed", "3",
                     "--output-dir", str(tmp_path), "--methods", "KD", "TGT-gradient"]) == 0
    config = seen["config"]
    assert (config.steps, config.epochs, config.seed) == (20, 2, 3)
    assert config.output_dir == str(tmp_path)
    assert seen["methods"] == ("KD", "TGT-gradient")
