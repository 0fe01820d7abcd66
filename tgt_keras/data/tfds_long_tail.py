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

Training order and resuming (`tfds_long_tail_batches`): batch `i` is a pure function of `i`
(given the data and the arguments), whichever iterator reads it, so a resumed run trains on the
batches of the uninterrupted one. The stream is passes 0, 1, ... over the n selected examples,
back to back; pass `k` reads the split in file order and cuts the selected examples into windows
of `shuffle_buffer`, each permuted by `tf.random.experimental.stateless_shuffle` keyed by
`(seed, k, window)`. Starting at batch `start` is index arithmetic: the passes before it are not
read, the records of its pass before its window are read and parsed but not kept, and images are
decoded after the skip, so none before `start` is.

The trade-off: the permutation is window-limited, not uniform over the pass. A uniform per-pass
permutation needs random access or all the encoded images at hand. TFDS prepares these datasets
as TFRecord files, read in sequence; it offers random access (`tfds.data_source`) only for
ArrayRecord files, which `download_and_prepare()` does not write by default (and ImageNet-LT's
manual download makes re-preparing it costly); holding ImageNet-LT's encoded images takes about
13 GB. So the windows keep their file order from pass to pass, an example moves fewer than
`shuffle_buffer` places within its pass, and the examples that share a window share it in every
pass (in a new order each time). What keeps this close to a full shuffle is that TFDS writes a
split's records in an order shuffled by a hash of their keys (none of these three builders turns
that off), so a window is a class-mixed sample of the split, not a run of one class.
`shuffle_buffer >= n` gives a uniform permutation per pass. Memory: two to three windows of
encoded images (the one read out, the next one, a copy while it is permuted); ImageNet JPEGs
average about 110 kB, so 2.2-3.3 GB at the default 10,000. Under a multi-worker strategy every
worker reads and decodes the whole stream and keeps its share of each batch
(`AutoShardPolicy.DATA`): sharding by file would give each worker other file positions than the
ones the selection is indexed by.

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


def _records(builder: str, split: str, data_dir: str | None):
    """The split's records in file order, images left encoded: the one reader of the module, so
    record `i` of the training stream is label `i` of `read_labels`."""
    import tensorflow_datasets as tfds

    return tfds.load(
        builder,
        split=split,
        data_dir=data_dir,
        shuffle_files=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )


def read_labels(builder: str, split: str, data_dir: str | None = None) -> np.ndarray:
    """All labels of a TFDS split, in file order, as int64 `[N]`.

    Makes one pass over the split with image decoding skipped: cheap on mock data, but on real
    data it reads every record (Places365-small train: 1.8M records, about 25 GB; ImageNet-LT
    train: 116k records) and takes minutes. Cache the result when you call it often.
    """
    ds = _records(builder, split, data_dir)
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


def _check_min(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}. Received: {name}={value!r}")


def _encoded_stream(records, rank: np.ndarray, *, seed: int, window: int, shuffle: bool,
                    passes: int | None, first: int):
    """Encoded `(image, label)` of the stream from its position `first` on (see the module
    docstring); `rank[i]` is record `i`'s place among the selected records in file order, -1
    if it is not selected."""
    import tensorflow as tf

    n = int(rank.max()) + 1
    first_pass, first_in_pass = divmod(first, n)
    window = min(window, n) if shuffle else 1
    rank = tf.constant(rank, tf.int64)
    seed = tf.constant(seed, tf.int64)

    def permute(k, j, image, label):
        key = tf.random.experimental.stateless_fold_in(tf.stack([seed, k]), j)
        order = tf.random.experimental.stateless_shuffle(
            tf.range(tf.shape(label, out_type=tf.int64)[0]), seed=key)
        return tf.gather(image, order), tf.gather(label, order)

    def one_pass(k):
        begin = tf.where(k == first_pass, tf.constant(first_in_pass, tf.int64), 0)
        # The first kept record starts `begin`'s window: earlier records are read, not kept.
        kept_from = begin // window * window
        ds = records.enumerate().filter(lambda i, ex: tf.gather(rank, i) >= kept_from)
        ds = ds.map(lambda i, ex: (ex["image"], ex["label"]))
        if shuffle:
            ds = ds.batch(window).enumerate(kept_from // window)
            # prefetch: the next window is read while this one is read out, not after it.
            ds = ds.map(lambda j, ex: permute(k, j, *ex)).prefetch(1).unbatch()
        return ds.skip(begin - kept_from)  # before decoding: what is skipped is not decoded

    if passes is None:
        return tf.data.Dataset.counter(first_pass).flat_map(one_pass)
    return tf.data.Dataset.range(first_pass, passes).flat_map(one_pass)


def tfds_long_tail_batches(
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
    passes: int | None = 1,
):
    """The batches of one long-tail benchmark split from any batch on, plus its per-class counts.

    Batch `i` is a pure function of `i` and the arguments: pass `k` over the selected examples is
    in file order, cut into windows of `shuffle_buffer` examples that are each permuted by a
    stateless shuffle keyed by `(seed, k, window)` (see the module docstring for why windows),
    and the passes follow each other without a gap, so a batch can span two passes.

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
        shuffle_buffer: examples per shuffle window: an example moves fewer places than this
            from its file-order position within a pass, and two to three windows of encoded
            images are held in memory (see the module docstring).
        passes: passes over the examples (None: endless, for training). Endless batches all
            have `batch_size` examples; otherwise the last one may be smaller.

    Returns:
        `(batches_from, counts)`: `batches_from(start=0)` builds the `tf.data.Dataset` of the
        batches `start, start + 1, ...` of `(image float32 [B, H, W, 3], label int64 [B])`
        without decoding an image of the skipped ones (whole skipped passes are not read; in
        the pass `start` falls in, the records before its window are read, not kept); `counts`
        are the int64 per-class counts `[num_classes]` of the examples a pass holds.

    Raises:
        ValueError: for an unknown name or split, a bad `train_counts`, `image_size`,
            `batch_size`, `shuffle_buffer` or `passes`, a selection without examples, or a
            class with fewer examples than requested.

    Cost: the selection needs the split's labels, read once with `read_labels` (see there);
    `batches_from` reuses them.

    Example:
    >>> batches_from, counts = tfds_long_tail_batches(  # doctest: +SKIP
    ...     "imagenet_lt", image_size=64, batch_size=256, passes=None)
    >>> resumed = batches_from(10 * 453)  # epoch 10 on, exactly (453 batches an epoch)
    """
    import tensorflow as tf

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
    _check_min("shuffle_buffer", shuffle_buffer, 1)
    if passes is not None:
        _check_min("passes", passes, 1)
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
    if len(indices) == 0:
        raise ValueError(f"The {split!r} selection of {name!r} holds no examples.")
    counts = np.bincount(labels[indices], minlength=info.num_classes).astype(np.int64)
    rank = np.full(len(labels), -1, np.int64)
    rank[np.sort(indices)] = np.arange(len(indices))
    records = _records(info.builder, tfds_split, data_dir)

    def preprocess(encoded, label):
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        image = low + tf.clip_by_value(image, 0.0, 255.0) * ((high - low) / 255.0)
        return image, tf.cast(label, tf.int64)

    def batches_from(start: int = 0):
        _check_min("start", start, 0)
        ds = _encoded_stream(records, rank, seed=seed, window=shuffle_buffer, shuffle=shuffle,
                             passes=passes, first=start * batch_size)
        ds = ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(batch_size, drop_remainder=passes is None).prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()
        # Order is the point: parallel decoding keeps it, and a multi-worker strategy shards
        # the batches of this one stream rather than giving each worker its own files.
        options.deterministic = True
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        return ds.with_options(options)

    return batches_from, counts


def load_tfds_long_tail(name: str, split: str = "train", *, start: int = 0, **kwargs):
    """`(dataset, counts)`: the batches of `tfds_long_tail_batches(name, split, **kwargs)` from
    batch `start` on, and the per-class counts (one pass unless `passes` says otherwise).

    Example:
    >>> ds, counts = load_tfds_long_tail(  # doctest: +SKIP
    ...     "places_lt", image_size=64, batch_size=128, data_dir="~/tensorflow_datasets")
    """
    batches_from, counts = tfds_long_tail_batches(name, split, **kwargs)
    return batches_from(start), counts
