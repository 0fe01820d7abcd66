"""Which `tf.distribute` strategy to train under, and whether to compile the step with XLA.

`pick_strategy()` is what the CLI and the examples use:

1. a TPU, if one is named (`tpu=` or the `TPU_NAME` / `COLAB_TPU_ADDR` environment variables)
   or attached locally, and its cluster resolves;
2. else `MultiWorkerMirroredStrategy` if `TF_CONFIG` describes a cluster of several tasks;
3. else `MirroredStrategy` over the visible GPUs if there are several;
4. else the default strategy (one GPU or the CPU).

It logs its choice, and why a TPU that was asked for is not used.

`jit_compile_for(strategy)` is our explicit XLA choice per strategy and device:

- TPU: True. TPUs run XLA programs only.
- Default strategy on a GPU: True. One device, and XLA fuses the exploration's many small ops.
- Default strategy, CPU only: False. Measured 4x slower with XLA on a 2-core CPU (343 against
  87 ms a step).
- Mirrored / MultiWorkerMirrored: False. On CPU devices a jit-compiled step fails ("Trying to
  access resource ... located in device CPU:1 from device CPU:0"); on GPUs Keras's own
  `jit_compile="auto"` also turns XLA off under `tf.distribute`. Not measured on several GPUs.

Example:
>>> strategy = pick_strategy()  # doctest: +SKIP
>>> with strategy.scope():  # doctest: +SKIP
...     distiller = TGTDistiller(student, labeler, generator)
...     distiller.compile(optimizer="adam", jit_compile=jit_compile_for(strategy))
"""

from __future__ import annotations

import json
import logging
import os
import socket

import tensorflow as tf

logger = logging.getLogger("tgt_keras")

TPU_ENV_VARS = ("TPU_NAME", "COLAB_TPU_ADDR")


def _requested_tpu(tpu: str | None) -> str | None:
    if tpu is not None:
        return tpu
    for name in TPU_ENV_VARS:
        if os.environ.get(name):
            return os.environ[name]
    if tf.config.list_physical_devices("TPU"):
        return "local"
    return None


def _tf_config_tasks() -> int:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(
            "`TF_CONFIG` must be JSON with a `cluster` and a `task`. "
            f"Received: TF_CONFIG={raw!r}"
        ) from error
    return sum(len(tasks) for tasks in cluster.values())


def _check_reachable(master: str, timeout_s: float = 10.0) -> None:
    """Fails fast where TensorFlow would wait forever on an address nobody listens at."""
    address = master.removeprefix("grpc://")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise ConnectionError(f"nothing answers at {master} ({error})") from error


def connect_tpu(tpu: str) -> tf.distribute.Strategy:
    """Resolves, connects and initialises the TPU system `tpu`; returns a `TPUStrategy`."""
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu="" if tpu == "local" else tpu)
    if tpu != "local":
        _check_reachable(resolver.master())
        tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def pick_strategy(tpu: str | None = None) -> tf.distribute.Strategy:
    """Picks the strategy for this machine (see the module docstring) and logs the choice.

    Args:
        tpu: a TPU name or `grpc://` address, "local" for an attached TPU, or None to look at
            `TPU_NAME` / `COLAB_TPU_ADDR` and the local devices.
    """
    requested = _requested_tpu(tpu)
    if requested is not None:
        try:
            strategy = connect_tpu(requested)
        except Exception as error:  # noqa: BLE001 - any failure to reach a TPU falls back
            logger.warning("TPU %r requested but not usable (%s: %s); falling back.",
                           requested, type(error).__name__, str(error).splitlines()[0])
        else:
            logger.info("Using TPUStrategy on %r with %d replicas.", requested,
                        strategy.num_replicas_in_sync)
            return strategy
    if _tf_config_tasks() > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        logger.info("Using MultiWorkerMirroredStrategy from TF_CONFIG (%d replicas).",
                    strategy.num_replicas_in_sync)
        return strategy
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy([g.name for g in gpus])
        logger.info("Using MirroredStrategy over %d GPUs.", len(gpus))
        return strategy
    logger.info("Using the default strategy on %s.", "one GPU" if gpus else "the CPU")
    return tf.distribute.get_strategy()


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """A readable name: "TPUStrategy", "MultiWorkerMirroredStrategy", "MirroredStrategy" or
    "default" (TensorFlow's own class names are private for the default and multi-worker ones).
    """
    for kind, name in ((tf.distribute.TPUStrategy, "TPUStrategy"),
                       (tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
                       (tf.distribute.MirroredStrategy, "MirroredStrategy")):
        if isinstance(strategy, kind):
            return name
    return "default" if strategy is tf.distribute.get_strategy() else type(strategy).__name__


def jit_compile_for(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Our XLA choice for `strategy` (default: the current one); see the module table."""
    strategy = tf.distribute.get_strategy() if strategy is None else strategy
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    if strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, tf.distribute.MirroredStrategy | tf.distribute.MultiWorkerMirroredStrategy
    ):
        return False
    return bool(tf.config.list_logical_devices("GPU"))
