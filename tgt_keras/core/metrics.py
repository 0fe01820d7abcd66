"""`BalancedAccuracy`: the long-tail benchmarks' headline number as a streaming Keras metric."""

from __future__ import annotations

import numbers

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="tgt_keras")
class BalancedAccuracy(keras.metrics.Metric):
    """Mean over classes of each class's top-1 accuracy (its recall), accumulated over batches.

    Classes with no example seen so far are left out of the mean, as in
    `tgt_keras.data.long_tail.balanced_accuracy`. It keeps per-class hit and example counts,
    so under `tf.distribute` the replicas' counts are summed before the ratio is taken (also
    inside a distributed step, where Keras would otherwise log the mean of the replicas'
    ratios). Labels are class ids `[N]` (or `[N, 1]`); predictions are scores
    `[N, num_classes]` (logits or probabilities: only their argmax counts). Compile a
    `TGTDistiller` with it and `fit` logs `balanced_accuracy` / `val_balanced_accuracy`, the
    objective `tgt_keras.tuning` maximises.

    Example:
    >>> metric = BalancedAccuracy(num_classes=2)
    >>> metric.update_state([0, 0, 0, 1], [[1, 0], [1, 0], [0, 1], [0, 1]])
    >>> round(float(metric.result()), 4)  # class 0: 2/3, class 1: 1/1
    0.8333
    """

    def __init__(self, num_classes: int, name: str = "balanced_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if (isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral)
                or num_classes < 1):
            raise ValueError(
                f"`num_classes` must be an integer >= 1. Received: num_classes={num_classes!r}"
            )
        self.num_classes = int(num_classes)
        self.hits = self.add_variable((self.num_classes,), initializer="zeros", name="hits")
        self.counts = self.add_variable((self.num_classes,), initializer="zeros", name="counts")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        weight = ops.ones_like(labels, dtype=self.dtype) if sample_weight is None else ops.cast(
            ops.reshape(sample_weight, (-1,)), self.dtype)
        per_class = ops.one_hot(labels, self.num_classes, dtype=self.dtype) * weight[:, None]
        hit = ops.cast(ops.equal(predicted, labels), self.dtype)
        self.hits.assign_add(ops.sum(per_class * hit[:, None], axis=0))
        self.counts.assign_add(ops.sum(per_class, axis=0))

    def result(self):
        hits, counts = ops.convert_to_tensor(self.hits), ops.convert_to_tensor(self.counts)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Inside a replica (a distributed step) the variables read as this replica's
            # counts, and Keras logs the mean of the replicas' results: sum the counts first,
            # so the logged value is the balanced accuracy of the whole global batch stream.
            hits, counts = context.all_reduce("SUM", [hits, counts])
        seen = ops.cast(counts > 0, self.dtype)
        recall = ops.divide_no_nan(hits, counts)
        return ops.divide_no_nan(ops.sum(recall * seen), ops.sum(seen))

    def reset_state(self):
        self.hits.assign(ops.zeros_like(self.hits))
        self.counts.assign(ops.zeros_like(self.counts))

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self.dtype}
