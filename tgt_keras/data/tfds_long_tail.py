"""TFDS pipelines for the paper's long-tail benchmarks: ImageNet-LT, Places-LT and SUN-LT.

Datasets are referred to by name through `LONG_TAIL_DATASETS` (name -> TFDS builder, classes,
splits, long-tail counts), so configs never carry builder names or counts.

- ImageNet-LT: the TFDS builder `imagenet_lt` already holds the long-tailed train split of Liu
  et al. (2019) (115,846 images, 1,280 -> 5 per class) and the balanced test split (50 per
  class); it is used as is.
- Places-LT: built here from `places365_small` by picking Pareto-shaped per-class counts
  (4,980 -> 5, `long_tail_counts(..., shape="pareto")`) from the train split with
  `long_tail_indices`. This approximates Liu et al.'s split files, it does not reproduce them.
  The balanced test set is a per-class capped sample (100 per class) of the validation split
  (the TFDS test split of Places365 has no labels).
- SUN-LT: built the same way from `sun397`. Its counts (500 -> 5) and its test cap (50 per class
  of the test split) are our stand-in values: the standard protocol's exact numbers are not
  known to us.

Nothing here downloads in tests: use `tfds.testing.mock_data(num_examples=...)`. On real data,
`tfds.load` needs the prepared dataset in `data_dir` (download it once with `tfds.builder(...)
.download_and_prepare()` on a machine with internet access).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tgt_keras.data.long_tail import counts_by_class, long_tail_counts, long_tail_indices

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class LongTailDatasetInfo:
    """Facts about one long-tail benchmark.

    Attributes:
        builder: TFDS builder name (with config where needed).
        num_classes: number of classes.
        train_split / test_split: the TFDS splits used for the benchmark's train and test sets.
        builtin_long_tail: True when the TFDS train split is already long-tailed.
        max_count / min_count: head and tail class sizes of the train set.
        test_per_class: cap per class of the balanced test set (`None`: the whole split).
        note: where the numbers come from.
    """

    builder: str
    num_classes: int
    train_split: str
    test_split: str
    builtin_long_tail: bool
    max_count: int
    min_count: int
    test_per_class: int | None
    note: str


LONG_TAIL_DATASETS = {
    "imagenet_lt": LongTailDatasetInfo(
        builder="imagenet_lt",
        num_classes=1000,
        train_split="train",
        test_split="test",
        builtin_long_tail=True,
        max_count=1280,
        min_count=5,
        test_per_class=None,
        note="Liu et al. 2019 split files, shipped by TFDS.",
    ),
    "places_lt": LongTailDatasetInfo(
        builder="places365_small",
        num_classes=365,
        train_split="train",
        test_split="validation",
        builtin_long_tail=False,
        max_count=4980,
        min_count=5,
        test_per_class=100,
        note="Counts 4,980 -> 5 as in Liu et al. 2019; Pareto-shaped approximation of the split.",
    ),
    "sun_lt": LongTailDatasetInfo(
        builder="sun397/tfds",
        num_classes=397,
        train_split="train",
        test_split="test",
        builtin_long_tail=False,
        max_count=500,
        min_count=5,
        test_per_class=50,
        note="Our stand-in values (500 -> 5, 50 test images per class): the protocol's exact "
        "numbers are not known to us.",
    ),
}
_ALIASES = {"places365_small": "places_lt", "sun397": "sun_lt"}


def get_long_tail_dataset(name: str) -> LongTailDatasetInfo:
    """Returns the registry entry of `name` (a benchmark name or its TFDS builder name).

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = _ALIASES.get(name, name)
    if key not in LONG_TAIL_DATASETS:
        raise ValueError(
            f"Unknown long-tail dataset {name!r}. Known: {', '.join(sorted(LONG_TAIL_DATASETS))}"
            f" (or the TFDS builder names {', '.join(sorted(_ALIASES))})."
        )
    return LONG_TAIL_DATASETS[key]


def long_tail_train_counts(name: str, *, seed: int = 0, class_order=None) -> np.ndarray:
    """Per-class train counts (indexed by class id) of the benchmark `name`.

    Pareto-shaped counts from the registry's `max_count` down to `min_count`
    (`long_tail_counts(..., shape="pareto", seed=seed)`), assigned to classes by `class_order`
    (class 0 is the head when `None`). For ImageNet-LT the loader returns the true counts of the
    TFDS split instead; this is only their approximation.
    """
    info = get_long_tail_dataset(name)
    counts = long_tail_counts(
        info.num_classes, info.max_count, info.max_count / info.min_count, "pareto", seed=seed
    )
    return counts_by_class(counts, class_order)


def read_labels(builder: str, split: str, data_dir: str | None = None) -> np.ndarray:
    """All labels of a TFDS split, in file order, as int64 `[N]`.

    Makes one pass over the split with image decoding skipped: cheap on mock data, but on real
    data it reads every record (Places365-small train: 1.8M records, about 25 GB; ImageNet-LT
    train: 116k records) and takes minutes. Cache the result when you call it often.
    """
    import tensorflow_datasets as tfds

    ds = tfds.load(
        builder,
        split=split,
        data_dir=data_dir,
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    return np.fromiter(ds.map(lambda ex: ex["label"]).as_numpy_iterator(), np.int64)


def _capped_indices(labels: np.ndarray, num_classes: int, cap: int, seed: int) -> np.ndarray:
    available = np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes]
    return long_tail_indices(labels, np.minimum(available, cap), seed=seed)


def _image_size(image_size) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(
            "`image_size` must be a positive int or a (height, width) pair. "
            f"Received: image_size={image_size!r}"
        )
    return size


def load_tfds_long_tail(
    name: str,
    split: str = "train",
    *,
    image_size,
    batch_size: int,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    shuffle: bool | None = None,
    data_dir: str | None = None,
    train_counts=None,
    class_order=None,
    test_per_class: int | None = None,
    shuffle_buffer: int = 10_000,
):
    """A batched `tf.data.Dataset` of one long-tail benchmark split, plus its per-class counts.

    Args:
        name: "imagenet_lt", "places_lt" or "sun_lt" (or the TFDS builder names
            "places365_small", "sun397").
        split: "train" (the long-tailed train set) or "test" (the balanced test set).
        image_size: output size, an int or `(height, width)`; images are resized with
            `tf.image.resize` (bilinear).
        batch_size: examples per batch.
        value_range: `(low, high)` the pixel values 0..255 are mapped to linearly.
        seed: seed of the Pareto counts, of the choice of examples and of the shuffle.
        shuffle: shuffle the examples (default: True for "train", False for "test").
        data_dir: TFDS data directory.
        train_counts: per-class train counts `[num_classes]` (zeros allowed) overriding the
            registry's Pareto counts; for ImageNet-LT it sub-samples the built-in split.
        class_order: permutation of the class ids deciding which classes get the largest
            Pareto counts (see `shuffled_class_order`); only used without `train_counts`.
        test_per_class: cap per class of the test set, overriding the registry's.
        shuffle_buffer: largest shuffle buffer.

    Returns:
        `(dataset, counts)`: batches of `(image float32 [B, H, W, 3], label int64 [B])` and the
        int64 per-class counts `[num_classes]` of the examples the dataset holds.

    Raises:
        ValueError: for an unknown name or split, a bad `train_counts` or `image_size`, or a
            class with fewer examples than requested.

    Cost: the selection needs the split's labels, read once with `read_labels` (see there).

    Example:
    >>> ds, counts = load_tfds_long_tail(  # doctest: +SKIP
    ...     "places_lt", image_size=64, batch_size=128, data_dir="~/tensorflow_datasets")
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    info = get_long_tail_dataset(name)
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}. Received: split={split!r}")
    height, width = _image_size(image_size)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1. Received: batch_size={batch_size!r}")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(
            f"`value_range` must be (low, high) with high > low. "
            f"Received: value_range={value_range!r}"
        )
    if test_per_class is not None and test_per_class < 1:
        raise ValueError(
            f"`test_per_class` must be >= 1. Received: test_per_class={test_per_class!r}"
        )
    if shuffle is None:
        shuffle = split == "train"

    tfds_split = info.train_split if split == "train" else info.test_split
    labels = read_labels(info.builder, tfds_split, data_dir)
    if split == "train" and train_counts is not None:
        counts = np.asarray(train_counts, np.int64)
        if counts.shape != (info.num_classes,) or (counts < 0).any():
            raise ValueError(
                f"`train_counts` must have {info.num_classes} entries >= 0 for {name!r}. "
                f"Received shape {counts.shape}"
            )
        indices = long_tail_indices(labels, counts, seed=seed)
    elif split == "train" and not info.builtin_long_tail:
        counts = long_tail_train_counts(name, seed=seed, class_order=class_order)
        indices = long_tail_indices(labels, counts, seed=seed)
    elif split == "test" and (test_per_class or info.test_per_class):
        indices = _capped_indices(
            labels, info.num_classes, test_per_class or info.test_per_class, seed
        )
    else:
        indices = np.flatnonzero(labels >= 0)
    counts = np.bincount(labels[indices], minlength=info.num_classes).astype(np.int64)

    keep = np.zeros(len(labels), bool)
    keep[indices] = True
    keep = tf.constant(keep)
    # Same file order as `read_labels` (shuffle_files=False), so position i is label i.
    ds = tfds.load(
        info.builder,
        split=tfds_split,
        data_dir=data_dir,
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    ds = ds.enumerate().filter(lambda i, ex: keep[i]).map(lambda i, ex: (ex["image"], ex["label"]))
    if shuffle:
        # Shuffling encoded bytes before decoding keeps the buffer small.
        ds = ds.shuffle(
            min(shuffle_buffer, len(indices)) or 1, seed=seed, reshuffle_each_iteration=True
        )

    def preprocess(encoded, label):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        image = low + tf.clip_by_value(image, 0.0, 255.0) * ((high - low) / 255.0)
        return image, tf.cast(label, tf.int64)

    ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE), counts
