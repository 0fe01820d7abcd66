"""TGTDistiller under tf.distribute, the strategy picker, and resuming after SIGKILL.

In-process tests mirror over the two logical CPU devices set up in conftest.py. The
multi-worker and kill tests start `tests/distributed_worker.py` processes (bounded in time,
killed in `finally`).
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_classifier, make_decoder, make_encoder, mirrored_cpus

from tgt_keras import KerasGenerator, KerasLabeler, TGTDistiller
from tgt_keras.distribute import jit_compile_for, pick_strategy, strategy_name

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

WORKER = Path(__file__).parent / "distributed_worker.py"


# --- MirroredStrategy --------------------------------------------------------------------------


def build_distiller(strategy, weights):
    with strategy.scope():
        student = make_classifier(hidden=4, name="student")
        teacher = make_classifier(name="teacher")
        encoder, decoder = make_encoder(), make_decoder()
        for model, w in zip((student, teacher, encoder, decoder), weights, strict=True):
            model.set_weights(w)
        distiller = TGTDistiller(
            student,
            KerasLabeler(teacher, value_range=(0.0, 1.0)),
            KerasGenerator(encoder, decoder, value_range=(-1.0, 1.0)),
            # sigma=0: exploration is deterministic given the batch, so one device and two
            # replicas must explore the same samples and make the same update.
            sigma=0.0, num_steps=2, real_distillation_weight=0.5, seed=0,
        )
        distiller.compile(optimizer=keras.optimizers.SGD(0.5), metrics=["accuracy"],
                          jit_compile=jit_compile_for(strategy))
    return distiller


def test_two_replicas_make_the_same_update_as_one_device(tiny_data):
    weights = [m.get_weights() for m in (make_classifier(hidden=4), make_classifier(),
                                         make_encoder(), make_decoder())]
    dataset = tf.data.Dataset.from_tensor_slices(tiny_data).batch(8)  # 2 steps of 8
    one = build_distiller(tf.distribute.get_strategy(), weights)
    two = build_distiller(mirrored_cpus(), weights)
    assert two.distribute_strategy.num_replicas_in_sync == 2
    history_one = one.fit(dataset, epochs=2, verbose=0).history
    history_two = two.fit(dataset, epochs=2, verbose=0).history
    # The student moved, and by the same amount on both.
    assert not np.allclose(one.student.get_weights()[0], weights[0][0])
    for a, b in zip(one.student.get_weights(), two.student.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # Metrics are aggregated over the global batch: the same logs.
    assert history_one.keys() == history_two.keys()
    for name in history_one:
        np.testing.assert_allclose(history_one[name], history_two[name], atol=1e-5,
                                   err_msg=name)


def test_each_replica_draws_its_own_noise(student, labeler, generator):
    strategy = mirrored_cpus()
    with strategy.scope():
        distiller = TGTDistiller(student, labeler, generator, seed=3)
        distiller.compile(optimizer="sgd")

    @tf.function
    def draw():
        return strategy.run(lambda: distiller._noise([256, 4]))

    first, second = (strategy.experimental_local_results(draw()) for _ in range(2))
    a, b = (t.numpy() for t in first)
    assert not np.allclose(a, b)
    assert abs(a.std() - 1) < 0.1 and abs(b.std() - 1) < 0.1
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.1
    # A pure function of (seed, step, replica): the same step draws the same noise again.
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


def test_global_batch_must_split_evenly_over_replicas(student, labeler, generator, tiny_data):
    with mirrored_cpus().scope():
        distiller = TGTDistiller(student, labeler, generator)
        distiller.compile(optimizer="sgd")
    dataset = tf.data.Dataset.from_tensor_slices(tiny_data).batch(7, drop_remainder=True)
    with pytest.raises(ValueError, match=r"divisible by the number of replicas \(2\).*batch "
                                         r"size 7"):
        distiller.fit(dataset, epochs=1, verbose=0)


# --- the strategy picker ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_default_strategy_on_a_cpu_without_tf_config(monkeypatch, caplog):
    for name in ("TF_CONFIG", "TPU_NAME", "COLAB_TPU_ADDR"):
        monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.INFO, logger="tgt_keras"):
        strategy = pick_strategy()
    assert strategy is tf.distribute.get_strategy()
    assert strategy_name(strategy) == "default"
    assert "default strategy on the CPU" in caplog.text
    assert jit_compile_for(strategy) is False  # XLA is slower on this CPU (see the module)


def test_jit_compile_is_off_for_mirrored_cpus():
    strategy = mirrored_cpus()
    assert jit_compile_for(strategy) is False
    assert strategy_name(strategy) == "MirroredStrategy"


@pytest.mark.parametrize("tpu", ["local", "grpc://127.0.0.1:{port}", "no-such-tpu"])
def test_unreachable_tpu_falls_back_with_a_message(tpu, monkeypatch, caplog):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    tpu = tpu.format(port=free_port())  # nothing listens there
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="tgt_keras"):
        strategy = pick_strategy(tpu=tpu)
    assert time.monotonic() - start < 30
    assert strategy is tf.distribute.get_strategy()
    assert f"TPU {tpu!r} requested but not usable" in caplog.text
    assert "falling back" in caplog.text


def test_tpu_name_from_the_environment_is_tried(monkeypatch, caplog):
    monkeypatch.setenv("TPU_NAME", f"grpc://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="tgt_keras"):
        pick_strategy()
    assert os.environ["TPU_NAME"] in caplog.text


def test_malformed_tf_config_is_an_error(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match=r"`TF_CONFIG` must be JSON.*Received: TF_CONFIG="):
        pick_strategy()


# --- processes: SIGKILL and resume, multi-worker -------------------------------------------


def worker_env(tf_config=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return env


def start_worker(tmp_path, name, backup, env, hang_at=None):
    args = [sys.executable, str(WORKER), "--backup-dir", str(backup),
            "--out", str(tmp_path / f"{name}.npz")]
    if hang_at is not None:
        args += ["--hang-at-step", str(hang_at), "--marker", str(tmp_path / f"{name}.marker")]
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_for(processes, timeout=180):
    deadline = time.monotonic() + timeout
    try:
        for p in processes:
            assert p.wait(timeout=max(deadline - time.monotonic(), 1)) == 0, p.args
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()


def wait_for_file(path: Path, processes, timeout=180):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            for p in processes:
                p.kill()
            pytest.fail(f"{path.name} did not appear (a worker exited or timed out)")
        time.sleep(0.2)


def load(path):
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_sigkill_mid_epoch_then_restart_matches_an_uninterrupted_run(tmp_path):
    env = worker_env()
    wait_for([start_worker(tmp_path, "uninterrupted", tmp_path / "b0", env)])

    # 4 steps an epoch: killed after step 6, in the middle of epoch 2; the backup is epoch 1's.
    killed = start_worker(tmp_path, "killed", tmp_path / "b1", env, hang_at=6)
    try:
        wait_for_file(tmp_path / "killed.marker", [killed])
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        killed.kill()
    assert killed.returncode == -signal.SIGKILL
    assert json.loads((tmp_path / "b1" / "training_metadata.json").read_text())["epoch"] == 1
    wait_for([start_worker(tmp_path, "resumed", tmp_path / "b1", env)])

    expected, resumed = load(tmp_path / "uninterrupted.npz"), load(tmp_path / "resumed.npz")
    assert int(resumed["resumed_from"]) == 1
    assert int(resumed["steps"]) == int(expected["steps"]) == 12
    # Deterministic ops, restored optimizer state and step-keyed noise: bit-identical weights.
    for key in (k for k in expected if k.startswith("w")):
        np.testing.assert_array_equal(resumed[key], expected[key], err_msg=key)
    assert not (tmp_path / "b1").exists()  # a finished run removes its backup


def cluster(n):
    ports = [free_port() for _ in range(n)]
    return {"worker": [f"127.0.0.1:{p}" for p in ports]}


def test_two_workers_survive_a_killed_worker_and_end_identical(tmp_path):
    spec = cluster(2)
    envs = [worker_env({"cluster": spec, "task": {"type": "worker", "index": i}})
            for i in range(2)]
    # Worker 1 stops after step 6 (mid-epoch 2); worker 0 then waits on it in a collective.
    first = [start_worker(tmp_path, "w0_first", tmp_path / "b_w0", envs[0]),
             start_worker(tmp_path, "w1_first", tmp_path / "b_w1", envs[1], hang_at=6)]
    try:
        wait_for_file(tmp_path / "w1_first.marker", first)
        first[1].send_signal(signal.SIGKILL)
        first[1].wait(timeout=30)
    finally:
        for p in first:  # the survivor cannot finish without its peer: the job restarts
            p.kill()
            p.wait(timeout=30)
    assert first[1].returncode == -signal.SIGKILL
    for i in range(2):
        metadata = json.loads((tmp_path / f"b_w{i}" / "training_metadata.json").read_text())
        assert metadata["epoch"] == 1

    spec = cluster(2)  # fresh ports for the restarted job
    envs = [worker_env({"cluster": spec, "task": {"type": "worker", "index": i}})
            for i in range(2)]
    wait_for([start_worker(tmp_path, f"w{i}", tmp_path / f"b_w{i}", envs[i])
              for i in range(2)])
    w0, w1 = load(tmp_path / "w0.npz"), load(tmp_path / "w1.npz")
    assert int(w0["resumed_from"]) == int(w1["resumed_from"]) == 1
    assert int(w0["steps"]) == int(w1["steps"]) == 12
    for key in (k for k in w0 if k.startswith("w")):
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
