"""Quickstart: TGT with BigBiGAN from TF-Hub, a TF-Hub image classifier and your own student.

Needs tfhub.dev to be reachable (it is not on air-gapped machines; there, see
`examples/fashion_mnist_offline.py`). The labeler handle below is one public TF-Hub ImageNet
classifier; any classifier with a known input size and value range works.

    python examples/quickstart_bigbigan.py
"""

import keras
import tensorflow as tf

import tgt_keras as tk
from tgt_keras.distribute import jit_compile_for, pick_strategy

# A TPU if one is attached or named (TPU_NAME / COLAB_TPU_ADDR), else TF_CONFIG's cluster, else
# several GPUs, else the default strategy. Everything with variables is created in its scope.
strategy = pick_strategy()
with strategy.scope():
    # Teacher generator: BigBiGAN ResNet-50 (encode 256x256 in [-1, 1] -> z, generate 128x128).
    generator = tk.HubGenerator.from_preset("bigbigan-resnet50")
    # Teacher labeler: a TF-Hub classifier taking 224x224 RGB in [0, 1], returning 1001 logits.
    labeler = tk.HubLabeler(
        "https://tfhub.dev/google/imagenet/mobilenet_v2_140_224/classification/5",
        input_format=tk.ImageFormat(224, 224, 3, (0.0, 1.0)),
        num_classes=1001,
    )
    # Your student: anything that maps 64x64 RGB images in [0, 1] to 1001 logits.
    student = keras.applications.MobileNetV3Small(
        input_shape=(64, 64, 3), weights=None, classes=1001, include_preprocessing=False,
        classifier_activation=None,
    )
    distiller = tk.TGTDistiller(
        student, labeler, generator,
        exploration="gradient", sigma=0.5, step_size=1.0, num_steps=3,
        input_format=tk.ImageFormat(64, 64, 3, (0.0, 1.0)),
    )
    distiller.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                      jit_compile=jit_compile_for(strategy))


def your_dataset():
    """Replace with your labelled images: (x [N, 64, 64, 3] in [0, 1], y [N] class ids)."""
    x = tf.random.uniform([64, 64, 64, 3])
    y = tf.random.uniform([64], maxval=1001, dtype=tf.int64)
    # The global batch: it must split evenly over strategy.num_replicas_in_sync replicas.
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(16 * strategy.num_replicas_in_sync)


distiller.fit(your_dataset(), epochs=1)
distiller.student.save("student.keras")
