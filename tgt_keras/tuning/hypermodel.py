"""`TGTHyperModel`: a `keras_tuner.HyperModel` that builds a compiled `TGTDistiller` per trial.

The objective is the student's balanced accuracy on the validation data
(`OBJECTIVE`, logged by the `BalancedAccuracy` metric every distiller is compiled with), so any
keras-tuner tuner works: `make_tuner("random" | "bayesian" | "hyperband", hypermodel, ...)`.
Pass `distribution_strategy=` to the tuner to train each trial under a `tf.distribute`
strategy (build the teachers in its scope too). The teachers are shared by all trials (they
are frozen), and so can be `TGTDistiller.precompute`d data: latents and teacher logits do not
depend on any knob.

Reloading: a `TGTDistiller` is built when it is constructed (its student is), so
`tuner.get_best_models()` needs no build config (`get_build_config` is None): keras-tuner
rebuilds the trial's distiller from its knob values and loads the checkpoint of its best epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import keras
import keras_tuner

from tgt_keras.core.distiller import TGTDistiller
from tgt_keras.core.exploration import EXPLORATION_MODES
from tgt_keras.core.metrics import BalancedAccuracy
from tgt_keras.teachers.image_format import ImageFormat
from tgt_keras.teachers.labeler import as_labeler
from tgt_keras.tuning.space import KNOBS, SearchSpace, config_changes, default_search_space

#: What every tuner maximises: the student's balanced accuracy on `validation_data`.
OBJECTIVE = keras_tuner.Objective("val_balanced_accuracy", direction="max")
TUNERS = ("random", "bayesian", "hyperband")
#: The values of the knobs that a space leaves out: `TGTDistiller`'s defaults and Adam's 1e-3.
DEFAULT_KNOB_VALUES = {
    "sigma": 0.5, "step_size": 1.0, "num_steps": 3, "real_loss_weight": 1.0,
    "real_distillation_weight": 0.0, "synthetic_loss_weight": 1.0, "temperature": 1.0,
    "synthetic_per_real": 1, "learning_rate": 1e-3,
}


class TGTHyperModel(keras_tuner.HyperModel):
    """Builds a `TGTDistiller` from the knob values of a trial (see `tgt_keras.tuning.space`).

    Args:
        student_fn: returns a fresh, untrained student (called once per trial).
        labeler, generator: the frozen teachers, shared by all trials.
        search_space: the knobs to vary (default `default_search_space(exploration)`).
        fixed: values of knobs the space leaves out (default `DEFAULT_KNOB_VALUES`).
        exploration: "gradient" or "random".
        input_format: format of the real images (see `TGTDistiller`).
        optimizer_fn: `learning_rate -> optimizer` (default Adam).
        seed: the distillers' exploration seed.
        jit_compile: passed to `compile`.

    Example:
    >>> hypermodel = TGTHyperModel(make_student, labeler, generator)  # doctest: +SKIP
    >>> tuner = make_tuner("bayesian", hypermodel, max_trials=10,
    ...                    directory="runs/tune", project_name="search")  # doctest: +SKIP
    >>> tuner.search(train_ds, validation_data=val_ds, epochs=5)  # doctest: +SKIP
    >>> best = tuner.get_best_models(1)[0]  # a trained TGTDistiller  # doctest: +SKIP
    """

    def __init__(self, student_fn: Callable[[], keras.Model], labeler, generator,
                 search_space: SearchSpace | None = None, *,
                 fixed: Mapping[str, float | int] | None = None, exploration: str = "gradient",
                 input_format: ImageFormat | None = None,
                 optimizer_fn: Callable[[float], keras.optimizers.Optimizer] | None = None,
                 seed: int = 0, jit_compile="auto", name: str | None = None,
                 tunable: bool = True):
        super().__init__(name=name, tunable=tunable)
        if isinstance(student_fn, keras.Model) or not callable(student_fn):
            raise TypeError(
                "`student_fn` must be a function returning a new, untrained student (each "
                "trial trains its own; a model instance would carry weights from trial to "
                f"trial). Received: student_fn={student_fn!r}"
            )
        if exploration not in EXPLORATION_MODES:
            raise ValueError(
                f"`exploration` must be one of {EXPLORATION_MODES}. "
                f"Received: exploration={exploration!r}"
            )
        if search_space is None:
            search_space = default_search_space(exploration)
        if not isinstance(search_space, SearchSpace):
            search_space = SearchSpace(search_space)
        self.student_fn = student_fn
        self.labeler = as_labeler(labeler)
        self.generator = generator
        self.search_space = search_space
        # Validated like a space's fixed values.
        self.fixed = {**DEFAULT_KNOB_VALUES, **SearchSpace(dict(fixed or {})).knobs}
        self.exploration = exploration
        self.input_format = input_format
        self.optimizer_fn = optimizer_fn or (lambda rate: keras.optimizers.Adam(rate))
        self.seed = seed
        self.jit_compile = jit_compile

    def values(self, hp) -> dict[str, float | int]:
        """All knob values of a trial: the fixed ones, overridden by the space's."""
        return {**self.fixed, **self.search_space.sample(hp)}

    def build(self, hp) -> TGTDistiller:
        distiller = self.build_distiller(self.values(hp))
        # Create the optimizer's state now: a trial's checkpoint then reloads it too (the best
        # model, or a Hyperband trial that continues another one keeps its step count and
        # moments, hence its exploration-noise stream), instead of Keras skipping it.
        distiller.optimizer.build(distiller.student.trainable_variables)
        return distiller

    def build_distiller(self, values: Mapping[str, float | int]) -> TGTDistiller:
        """A compiled distiller with these knob values."""
        knobs = dict(values)
        rate = knobs.pop("learning_rate")
        distiller = TGTDistiller(
            self.student_fn(), self.labeler, self.generator, exploration=self.exploration,
            input_format=self.input_format, seed=self.seed, **knobs,
        )
        distiller.compile(optimizer=self.optimizer_fn(rate),
                          metrics=[BalancedAccuracy(self.labeler.num_classes), "accuracy"],
                          jit_compile=self.jit_compile)
        return distiller


class ExperimentHyperModel(TGTHyperModel):
    """`TGTHyperModel` for an `ExperimentConfig`: the knobs replace its fields, the rest
    (student, optimizer and schedule, precision, exploration, seed) comes from the config.
    The seed is reset before each trial's student is built, so all trials start from the same
    weights.

    `config_for(values)` is the configuration of a trial: what `tgt-keras tune` writes as the
    best hparams file.
    """

    def __init__(self, config, labeler, generator, input_format: ImageFormat,
                 steps_per_epoch: int, search_space: SearchSpace | None = None,
                 strategy=None):
        fixed = {knob: getattr(config, field) for knob, (field, _, _) in KNOBS.items()}
        # `student_fn` is unused: `build_distiller` builds the config's student.
        super().__init__(lambda: None, labeler, generator, search_space, fixed=fixed,
                         exploration=config.exploration, input_format=input_format,
                         seed=config.seed)
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.strategy = strategy

    def config_for(self, values: Mapping[str, float | int]):
        return self.config.replace(**config_changes(values))

    def build_distiller(self, values: Mapping[str, float | int]) -> TGTDistiller:
        from tgt_keras.experiments.train import build_distiller

        # As `run_experiment` does: every trial's student starts from the same seeded weights.
        keras.utils.set_random_seed(self.config.seed)
        return build_distiller(self.config_for(values), self.labeler, self.generator,
                               self.input_format, self.steps_per_epoch, self.strategy,
                               metrics=(BalancedAccuracy(self.config.num_classes), "accuracy"))


def make_tuner(kind: str, hypermodel: keras_tuner.HyperModel, *, max_trials: int | None = None,
               max_epochs: int | None = None, seed: int = 0, **kwargs) -> keras_tuner.Tuner:
    """A keras-tuner tuner of `kind` maximising `OBJECTIVE`.

    Args:
        kind: "random" (`RandomSearch`), "bayesian" (`BayesianOptimization`) or "hyperband".
        hypermodel: e.g. a `TGTHyperModel`.
        max_trials: trials of "random" and "bayesian" (required there, unused by "hyperband").
        max_epochs: the most epochs a "hyperband" trial trains (required there).
        seed: the tuner's seed.
        **kwargs: to the tuner (`directory`, `project_name`, `overwrite`,
            `distribution_strategy`, ...).

    Raises:
        ValueError: for an unknown `kind`, or a missing or invalid budget.
    """
    if kind not in TUNERS:
        raise ValueError(f"`kind` must be one of {TUNERS}. Received: kind={kind!r}")
    common = {"objective": OBJECTIVE, "seed": seed, **kwargs}
    if kind == "hyperband":
        if max_trials is not None:
            raise ValueError(
                "`max_trials` does not apply to the 'hyperband' tuner: its budget is "
                f"`max_epochs` (and the bracket factor). Received: max_trials={max_trials!r}"
            )
        _check_positive("max_epochs", max_epochs)
        return keras_tuner.Hyperband(hypermodel, max_epochs=max_epochs, **common)
    _check_positive("max_trials", max_trials)
    tuner_class = (keras_tuner.RandomSearch if kind == "random"
                   else keras_tuner.BayesianOptimization)
    return tuner_class(hypermodel, max_trials=max_trials, **common)


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
