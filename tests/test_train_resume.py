"""`tgt-keras train`: strategy choice, and a run directory that resumes and never overwrites.

All runs are `--smoke` runs (stub teachers, random images), offline. One run of 4 epochs is
shared: it is the uninterrupted reference that a killed-and-resumed run must reproduce.
"""

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import kill_when_ready, mirrored_cpus

from tgt_keras import cli
from tgt_keras.experiments import data as data_module
from tgt_keras.experiments import load_hparams
from tgt_keras.experiments import run_directory as run_directory_module
from tgt_keras.experiments import train as train_module

ROOT = Path(__file__).parent.parent
HPARAMS = str(ROOT / "hparams" / "fashion_mnist_lt.yaml")
EPOCHS, STEPS = 4, 10  # ~1 s an epoch on 2 CPU cores, after ~5 s of tracing
RUN = ["train", "--hparams", HPARAMS, "--smoke", "--set", "num_steps=1",
       "--set", f"num_epochs={EPOCHS}", "--set", f"steps_per_epoch={STEPS}"]
TIMEOUT_S = 120


def _history_epochs(out: Path) -> list[int]:
    with (out / "history.csv").open(newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The 4-epoch smoke run, uninterrupted, asking for a TPU that nobody serves."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main([*RUN, "--output-dir", str(out), "--tpu", "grpc://127.0.0.1:1"]) == 0
    return out


def test_unreachable_tpu_falls_back_to_the_default_strategy(finished_run):
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert metrics["strategy"] == "default"
    assert metrics["replicas"] == 1
    assert metrics["steps"] == EPOCHS * STEPS
    assert _history_epochs(finished_run) == list(range(EPOCHS))
    assert len(metrics["history"]["loss"]) == EPOCHS
    assert not any(k.startswith("val_") for k in metrics["history"])
    assert not (finished_run / "backup").exists()  # BackupAndRestore deletes it at the end


def test_a_finished_run_is_never_trained_over(finished_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert cli.main([*RUN, "--output-dir", str(out)]) == 1
    error = capsys.readouterr().err
    assert "holds a finished run" in error and "--overwrite" in error and "--output-dir" in error
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    # --overwrite deletes the old outputs and trains afresh (the default smoke: 1 epoch, 2 steps).
    (out / "notes.txt").write_text("not a run output")
    assert cli.main(["train", "--hparams", HPARAMS, "--smoke", "--set", "num_steps=1",
                     "--output-dir", str(out), "--overwrite"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == data_module.SMOKE_STEPS
    assert _history_epochs(out) == [0]
    assert sorted(p.name for p in out.glob("samples_step*.png")) == [
        "samples_step000001.png", "samples_step000002.png"]  # the old run's grids are gone
    assert (out / "notes.txt").read_text() == "not a run output"


def test_an_interrupted_run_of_another_config_is_not_resumed(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    # What an interrupted smoke run leaves: its config.yaml (and maybe backup/), no metrics.json.
    config = load_hparams(HPARAMS, ["num_steps=1"])
    saved = run_directory_module.SMOKE_HEADER + yaml.safe_dump(config.to_dict(), sort_keys=False)
    (out / "config.yaml").write_text(saved)
    assert cli.main(["train", "--hparams", HPARAMS, "--smoke", "--set", "num_steps=2",
                     "--set", "sigma=0.25", "--output-dir", str(out)]) == 1
    error = capsys.readouterr().err
    assert "interrupted run of a different config" in error
    assert "num_steps: saved 1, now 2" in error and "sigma: saved 0.5, now 0.25" in error
    assert "--overwrite" in error
    # A real run on the same config is also not a smoke run of it.
    assert cli.main(["train", "--hparams", HPARAMS, "--set", "num_steps=1",
                     "--output-dir", str(out)]) == 1
    assert "smoke: saved True, now False" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["config.yaml"]
    assert (out / "config.yaml").read_text() == saved

    # Without its config.yaml, a run's leftovers (a backup/ would be restored) are not reused.
    (out / "config.yaml").unlink()
    (out / "backup").mkdir()
    assert cli.main(["train", "--hparams", HPARAMS, "--smoke", "--output-dir", str(out)]) == 1
    assert "without its config.yaml (backup)" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["backup"]


def test_global_batch_must_split_over_the_replicas(tmp_path, monkeypatch):
    strategy = mirrored_cpus()
    monkeypatch.setattr(train_module, "pick_strategy", lambda tpu=None: strategy)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"`batch_size` is the global batch and must be a "
                                         r"multiple of the 2 replicas of MirroredStrategy\. "
                                         r"Received: batch_size=3"):
        cli.main(["train", "--hparams", HPARAMS, "--smoke", "--set", "batch_size=3",
                  "--output-dir", str(out)])
    assert not out.exists()


def test_a_killed_run_resumes_where_it_stopped(finished_run, tmp_path, capsys):
    out = tmp_path / "run"
    metadata = out / "backup" / "training_metadata.json"

    def an_epoch_is_backed_up():
        try:
            return json.loads(metadata.read_text())["epoch"] >= 1
        except (OSError, ValueError):  # not there yet, or being written
            return False

    kill_when_ready([sys.executable, "-m", "tgt_keras.cli", *RUN, "--output-dir", str(out)],
                    an_epoch_is_backed_up, "an epoch was backed up", cwd=ROOT,
                    timeout=TIMEOUT_S)
    assert not (out / "metrics.json").exists()
    resumed_from = json.loads(metadata.read_text())["epoch"]
    assert 1 <= resumed_from <= EPOCHS

    capsys.readouterr()
    assert cli.main([*RUN, "--output-dir", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"resuming from epoch {resumed_from}" in captured.err
    assert "Epoch 1/" not in captured.out  # the finished epochs are not trained again
    assert _history_epochs(out) == list(range(EPOCHS))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == EPOCHS * STEPS
    assert metrics["resumed_from_epoch"] == resumed_from
    assert not (out / "backup").exists()
    # The same weights, optimizer state, noise and batches as the uninterrupted run.
    reference = json.loads((finished_run / "metrics.json").read_text())
    for name in ("loss", "real_loss", "synthetic_loss", "accuracy"):
        np.testing.assert_allclose(metrics["history"][name], reference["history"][name],
                                   rtol=1e-4, err_msg=name)
    assert metrics["per_class_accuracy"] == reference["per_class_accuracy"]


def test_training_stream_is_a_pure_function_of_the_batch_index():
    # What lets a resumed run skip to the batches the interrupted one would have seen: any
    # reader of `data.train`, distributed or not, gets the same stream.
    config = load_hparams(HPARAMS)
    data = data_module.build_data(config, smoke=True, replicas=2)

    def images(dataset, count):
        return [np.asarray(x) for x, _ in dataset.take(count)]

    first = images(data.train, 6)
    np.testing.assert_array_equal(images(data.train, 6), first)  # a second reader
    np.testing.assert_array_equal(images(data.train.skip(3), 3), first[3:])
    strategy = mirrored_cpus()
    distributed = iter(strategy.experimental_distribute_dataset(data.train.skip(3)))
    for expected in first[3:]:
        x, _ = next(distributed)
        np.testing.assert_array_equal(np.concatenate([np.asarray(v) for v in x.values]),
                                      expected)
    # Every pass over the examples is a permutation.
    per_pass = data_module.SMOKE_STEPS
    labels = [np.sort(np.concatenate([np.asarray(y) for _, y in data.train.skip(k).take(
        per_pass)])) for k in (0, per_pass, 5 * per_pass)]
    np.testing.assert_array_equal(labels[1], labels[0])
    np.testing.assert_array_equal(labels[2], labels[0])


@pytest.mark.parametrize(("task_type", "task_id", "cluster", "expected"), [
    ("worker", 0, {"worker": ["a", "b"]}, ""),  # worker 0 is the chief when there is none
    ("worker", 1, {"worker": ["a", "b"]}, "workers/worker_1"),
    ("chief", 0, {"chief": ["a"], "worker": ["b"]}, ""),
    ("worker", 0, {"chief": ["a"], "worker": ["b"]}, "workers/worker_0"),
    (None, None, {}, ""),
])
def test_only_the_chief_writes_the_run_directory(task_type, task_id, cluster, expected):
    assert run_directory_module._worker_subdirectory(task_type, task_id, cluster) == expected


def test_two_workers_train_one_run_directory(tmp_path):
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in (a, b)]
    out = tmp_path / "run"
    processes = []
    try:
        for index in range(2):
            tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker",
                                                                  "index": index}}
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3",
                   "TF_CONFIG": json.dumps(tf_config)}
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "tgt_keras.cli", "train", "--hparams", HPARAMS,
                 "--smoke", "--set", "num_steps=1", "--output-dir", str(out)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for p in processes:
            _, err = p.communicate(timeout=TIMEOUT_S)
            assert p.returncode == 0, err.decode()[-3000:]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    chief = json.loads((out / "metrics.json").read_text())
    other = json.loads((out / "workers" / "worker_1" / "metrics.json").read_text())
    assert chief["strategy"] == "MultiWorkerMirroredStrategy" and chief["replicas"] == 2
    assert chief["steps"] == other["steps"] == data_module.SMOKE_STEPS
    assert chief["per_class_accuracy"] == other["per_class_accuracy"]  # the same student
