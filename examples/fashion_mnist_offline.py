"""TGT on long-tail Fashion-MNIST with the package's offline teachers (no network needed).

The first run trains and caches the teachers (a few minutes on 2 CPU cores). It runs under
`pick_strategy()` (a TPU, TF_CONFIG multi-worker, several GPUs or the default) and backs up every
epoch to `runs/example_backup`: kill it and run it again, and it continues where it stopped.

    python examples/fashion_mnist_offline.py
"""

import keras
import numpy as np
import tensorflow as tf

import tgt_keras as tk
from tgt_keras.data import (
    balanced_accuracy,
    load_fashion_mnist,
    long_tail_counts,
    long_tail_indices,
)
from tgt_keras.distribute import jit_compile_for, pick_strategy
from tgt_keras.offline import IMAGE_FORMAT, fashion_mnist_teachers

strategy = pick_strategy()

x_train, y_train = load_fashion_mnist("train")
idx = long_tail_indices(y_train, long_tail_counts(10, 500, 100), seed=0)
x = (x_train[idx] / 255.0).astype("float32")[..., None]
ds = tf.data.Dataset.from_tensor_slices((x, y_train[idx])).shuffle(2000).repeat().batch(64)

with strategy.scope():  # teachers, student, distiller and optimizer: created in the scope
    teachers = fashion_mnist_teachers()  # KerasLabeler + HubGenerator loaded with hub.load
    student = keras.Sequential([
        keras.Input(IMAGE_FORMAT.shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ])
    distiller = tk.TGTDistiller(
        student, teachers.labeler, teachers.generator,
        exploration="gradient", sigma=0.5, step_size=1.0, num_steps=3,
        input_format=IMAGE_FORMAT,
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                      jit_compile=jit_compile_for(strategy))
# Epoch backups (student, optimizer state and step counter; the exploration noise is keyed by
# the step). On a restart the shuffled stream starts afresh, so the batches differ from an
# uninterrupted run; `tgt-keras train` also skips the finished epochs' batches.
distiller.fit(ds, steps_per_epoch=200, epochs=5,
              callbacks=[keras.callbacks.BackupAndRestore("runs/example_backup")])

x_test, y_test = load_fashion_mnist("test")
pred = np.argmax(distiller.student.predict(x_test[..., None] / 255.0, verbose=0), -1)
print(f"balanced test accuracy: {balanced_accuracy(y_test, pred, 10):.3f}")
