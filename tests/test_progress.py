"""Progress output: bars on a terminal, one plain line per step anywhere else (logs, CI, tee)."""

import copy
import io
import re
import sys

import numpy as np
import pytest

from tgt_keras.offline import teachers as offline_module
from tgt_keras.progress import Progress, keras_verbose


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_keras_verbose_is_a_bar_on_a_terminal_and_a_line_per_epoch_elsewhere(monkeypatch):
    assert keras_verbose(FakeTerminal()) == 1
    assert keras_verbose(io.StringIO()) == 2
    monkeypatch.setattr(sys, "stdout", FakeTerminal())  # the default is read at call time
    assert keras_verbose() == 1
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert keras_verbose() == 2


def test_progress_off_a_terminal_prints_one_flushed_line_per_update():
    log = io.StringIO()
    with Progress(3, "sample-size study", stream=log) as progress:
        progress.update(n=5, seed=0, method="KD")  # `n=` is shown, not counted
        assert log.getvalue().count("\n") == 1  # written at once, not at close
        progress.update(2)
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"sample-size study: 1/3 \(n=5, seed=0, method=KD\), \d+ s elapsed",
                        lines[0]), lines[0]
    assert re.fullmatch(r"sample-size study: 3/3, \d+ s elapsed", lines[1]), lines[1]


def test_progress_on_a_terminal_draws_a_tqdm_bar():
    terminal = FakeTerminal()
    progress = Progress(2, "sample-size study", stream=terminal)
    progress.update(method="KD")
    progress.update(method="TGT-gradient")
    progress.close()
    progress.close()  # closing twice is harmless
    text = terminal.getvalue()
    assert "\r" in text  # redrawn in place
    assert re.search(r"sample-size study: 100%.*\| 2/2 .*method=TGT-gradient", text), text


def test_progress_validates_total():
    with pytest.raises(ValueError, match=r"`total` must be >= 0. Received: total=-1"):
        Progress(-1, "study", stream=io.StringIO())


def test_offline_teacher_training_logs_one_line_per_epoch_off_a_terminal(
        tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)

    def tiny_splits(dataset):
        def split(n):
            return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)
        return split(64), split(16)

    monkeypatch.setattr(offline_module, "_splits", tiny_splits)
    recipe = copy.deepcopy(offline_module.RECIPE)
    recipe["labeler"].update(epochs=2, filters=[2, 2], dense=4, batch_size=32)
    recipe["generator"].update(epochs=2, hidden=[8, 8], latent_dim=2, batch_size=32)
    offline_module.offline_teachers(cache=tmp_path, recipe=recipe)  # default verbose
    out = capsys.readouterr().out  # captured: not a terminal
    assert out.count("Epoch 2/2") == 2  # the labeler's and the generator's
    assert "\r" not in out and "\b" not in out
