"""TGT on long-tail Fashion-MNIST with the package's offline teachers (no network needed).

The first run trains and caches the teachers (a few minutes on 2 CPU cores).

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
from tgt_keras.offline import IMAGE_FORMAT, fashion_mnist_teachers

teachers = fashion_mnist_teachers()  # KerasLabeler + HubGenerator loaded with hub.load

x_train, y_train = load_fashion_mnist("train")
idx = long_tail_indices(y_train, long_tail_counts(10, 500, 100), seed=0)
x = (x_train[idx] / 255.0).astype("float32")[..., None]
ds = tf.data.Dataset.from_tensor_slices((x, y_train[idx])).shuffle(2000).repeat().batch(64)

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
distiller.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
distiller.fit(ds, steps_per_epoch=200, epochs=5)

x_test, y_test = load_fashion_mnist("test")
pred = np.argmax(distiller.student.predict(x_test[..., None] / 255.0, verbose=0), -1)
print(f"balanced test accuracy: {balanced_accuracy(y_test, pred, 10):.3f}")
