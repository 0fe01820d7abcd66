"""A tiny TGT training process for the fault-tolerance and multi-worker tests.

Run as a script (never collected by pytest). It trains a TGTDistiller on fixed tiny data under
`tgt_keras.distribute.pick_strategy()` (MultiWorkerMirroredStrategy when `TF_CONFIG` names a
cluster), with `keras.callbacks.BackupAndRestore`, then writes the student's weights and the
step counter to `--out`. `--hang-at-step N` writes `--marker` once N steps are done and then
sleeps, so a test can SIGKILL the process mid-epoch at a known point.

The training stream is one seeded, shuffled, repeated dataset; a resumed run skips the batches
of the epochs it restored, so it sees the batches the uninterrupted run saw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
sys.path.insert(0, str(Path(__file__).parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

STEPS_PER_EPOCH = 4
GLOBAL_BATCH = 8


class HangAtStep(keras.callbacks.Callback):
    """After `step` optimizer steps: write `marker`, then sleep until killed."""

    def __init__(self, step: int, marker: str):
        super().__init__()
        self.step, self.marker = step, marker

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            Path(self.marker).write_text(str(self.step))
            while True:
                time.sleep(1)


def restored_epoch(backup_dir: str) -> int:
    """The epoch Keras' BackupAndRestore will resume from (0 without a backup)."""
    path = Path(backup_dir) / "training_metadata.json"
    return json.loads(path.read_text())["epoch"] if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backup-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hang-at-step", type=int, default=None)
    parser.add_argument("--marker", default=None)
    args = parser.parse_args()

    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    from conftest import IMAGE_SHAPE, NUM_CLASSES, make_classifier, make_decoder, make_encoder

    from tgt_keras import KerasGenerator, KerasLabeler, TGTDistiller
    from tgt_keras.distribute import jit_compile_for, pick_strategy

    strategy = pick_strategy()
    with strategy.scope():
        distiller = TGTDistiller(
            make_classifier(hidden=4, name="student"),
            KerasLabeler(make_classifier(name="teacher"), value_range=(0.0, 1.0)),
            KerasGenerator(make_encoder(), make_decoder(), value_range=(-1.0, 1.0)),
            sigma=0.5, num_steps=2, seed=7,
        )
        distiller.compile(optimizer=keras.optimizers.Adam(0.01),
                          jit_compile=jit_compile_for(strategy))

    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (32, *IMAGE_SHAPE)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, 32).astype("int32")
    skip = restored_epoch(args.backup_dir) * STEPS_PER_EPOCH
    dataset = (tf.data.Dataset.from_tensor_slices((x, y))
               .shuffle(32, seed=1).repeat().batch(GLOBAL_BATCH).skip(skip))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)

    callbacks = [keras.callbacks.BackupAndRestore(args.backup_dir)]
    if args.hang_at_step is not None:
        callbacks.append(HangAtStep(args.hang_at_step, args.marker))
    distiller.fit(dataset, epochs=args.epochs, steps_per_epoch=STEPS_PER_EPOCH,
                  callbacks=callbacks, verbose=0)
    weights = {f"w{i}": w for i, w in enumerate(distiller.student.get_weights())}
    np.savez(args.out, steps=int(distiller.optimizer.iterations.numpy()),
             resumed_from=skip // STEPS_PER_EPOCH, **weights)


if __name__ == "__main__":
    main()
