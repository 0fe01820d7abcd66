"""keras-tuner search over TGT's knobs: the metric, the space, the hypermodel, the tuners."""

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from conftest import NUM_CLASSES, make_classifier, mirrored_cpus

from tgt_keras import TGTDistiller
from tgt_keras.core.metrics import BalancedAccuracy
from tgt_keras.data.long_tail import balanced_accuracy, held_out_indices
from tgt_keras.tuning import (
    OBJECTIVE,
    Choice,
    Range,
    SearchSpace,
    TGTHyperModel,
    default_search_space,
    make_tuner,
)
from tgt_keras.tuning.space import config_changes, load_search_space

# --- BalancedAccuracy --------------------------------------------------------------------


@pytest.mark.compat
def test_balanced_accuracy_by_hand():
    metric = BalancedAccuracy(num_classes=3)
    # class 0: 2 of 3 right, class 1: 0 of 1, class 2: no example (left out of the mean).
    metric.update_state([0, 0, 0, 1], [[5, 1, 0], [2, 1, 0], [0, 1, 0], [3, 0, 1]])
    assert float(metric.result()) == pytest.approx((2 / 3 + 0) / 2)
    metric.update_state([[1]], [[0, 9, 0]])  # [N, 1] labels; class 1 now 1 of 2
    assert float(metric.result()) == pytest.approx((2 / 3 + 1 / 2) / 2)
    metric.reset_state()
    assert float(metric.result()) == 0.0


@pytest.mark.compat
def test_balanced_accuracy_sample_weight_and_numpy_agreement():
    metric = BalancedAccuracy(2)
    metric.update_state([0, 0, 1], [[1, 0], [0, 1], [0, 1]], sample_weight=[3.0, 1.0, 0.0])
    # class 0: weight 3 right of 4; class 1: total weight 0, left out.
    assert float(metric.result()) == pytest.approx(0.75)

    rng = np.random.default_rng(1)
    y, scores = rng.integers(0, 5, 200), rng.normal(size=(200, 5))
    streamed = BalancedAccuracy(5)
    for start in range(0, 200, 64):  # batches accumulate
        streamed.update_state(y[start:start + 64], scores[start:start + 64])
    assert float(streamed.result()) == pytest.approx(
        balanced_accuracy(y, scores.argmax(-1), 5), abs=1e-6)


@pytest.mark.compat
def test_balanced_accuracy_config_round_trip_and_bad_classes():
    metric = BalancedAccuracy(4, name="bal")
    again = BalancedAccuracy.from_config(metric.get_config())
    assert (again.num_classes, again.name) == (4, "bal")
    with pytest.raises(ValueError, match=r"`num_classes` must be an integer >= 1. Received: "
                                         r"num_classes=0"):
        BalancedAccuracy(0)


@pytest.mark.compat
def test_balanced_accuracy_of_a_distiller_under_mirrored_strategy(labeler, generator,
                                                                  student_format, tiny_data):
    strategy = mirrored_cpus()
    x, y = tiny_data
    with strategy.scope():
        distiller = TGTDistiller(make_classifier(hidden=4, name="student"), labeler, generator,
                                 input_format=student_format, seed=0)
        distiller.compile(optimizer="adam", metrics=[BalancedAccuracy(NUM_CLASSES)])
    logs = distiller.evaluate(x, y, batch_size=8, return_dict=True, verbose=0)
    predicted = np.argmax(distiller.student.predict(x, verbose=0), -1)
    # The replicas' per-class counts are summed before the ratio.
    assert logs["balanced_accuracy"] == pytest.approx(
        balanced_accuracy(y, predicted, NUM_CLASSES), abs=1e-6)


# --- validation split ----------------------------------------------------------------------


def test_held_out_indices_are_balanced_and_disjoint_from_the_subset():
    labels = np.repeat(np.arange(3), 10)
    exclude = np.arange(0, 30, 2)
    held = held_out_indices(labels, exclude, per_class=4, num_classes=3, seed=0)
    assert not set(held) & set(exclude)
    assert np.bincount(labels[held], minlength=3).tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="Class 0 has 5 examples outside the training subset, "
                                         "fewer than the 6 per class"):
        held_out_indices(labels, exclude, per_class=6, num_classes=3)


# --- SearchSpace ---------------------------------------------------------------------------


def test_search_space_forms_and_round_trip():
    space = SearchSpace({
        "sigma": {"min": 0.1, "max": 1.0, "sampling": "log"},
        "num_steps": [1, 3],
        "temperature": 2,
        "synthetic_per_real": {"min": 1, "max": 3},
    })
    assert space.knobs["sigma"] == Range(0.1, 1.0, "log")
    assert space.knobs["num_steps"] == Choice((1, 3))
    assert space.knobs["temperature"] == 2.0 and isinstance(space.knobs["temperature"], float)
    assert space.tuned == ("sigma", "num_steps", "synthetic_per_real")
    assert SearchSpace(space.to_dict()) == space
    assert space.describe("sigma") == "[0.1, 1] log"
    assert space.describe("num_steps") == "{1, 3}"


def test_search_space_registers_typed_hyperparameters():
    space = SearchSpace({"sigma": {"min": 0.2, "max": 0.8}, "num_steps": {"min": 1, "max": 4},
                         "temperature": {"values": [1.0, 4.0]}, "learning_rate": 0.01})
    hp = keras_tuner.HyperParameters()
    values = space.sample(hp)
    assert values == {"sigma": 0.2, "num_steps": 1, "temperature": 1.0, "learning_rate": 0.01}
    kinds = {h.name: type(h).__name__ for h in hp.space}
    assert kinds == {"sigma": "Float", "num_steps": "Int", "temperature": "Choice",
                     "learning_rate": "Fixed"}
    assert config_changes({**values, "tuner/epochs": 3}) == {
        "sigma": 0.2, "num_steps": 1, "temperature": 1.0, "peak_learning_rate": 0.01}


@pytest.mark.parametrize("knobs, error, message", [
    ({"sgima": 0.5}, ValueError, r"Unknown knob\(s\) \['sgima'\]"),
    ({"sigma": -1}, ValueError, r"`sigma` must be >= 0.0. Received: sigma=-1"),
    ({"temperature": 0}, ValueError, r"`temperature` must be > 0.0. Received: temperature=0"),
    ({"sigma": {"min": 0.0, "max": 0.1, "sampling": "log"}}, ValueError,
     r"`sigma` with sampling=.log. must have min > 0"),
    ({"sigma": {"min": 1.0, "max": 0.5}}, ValueError, r"`sigma` must have min < max"),
    ({"sigma": {"min": 0.1, "max": 0.5, "sampling": "cubic"}}, ValueError,
     r"`sigma` sampling must be one of \('linear', 'log'\)"),
    ({"num_steps": 1.5}, TypeError, r"`num_steps` must be an integer. Received: num_steps=1.5"),
    ({"synthetic_per_real": {"values": [0, 1]}}, ValueError,
     r"`synthetic_per_real` must be >= 1. Received: synthetic_per_real=0"),
    ({"sigma": {"values": []}}, ValueError, r"`sigma` values must be a non-empty list"),
    ({"sigma": {"low": 0.1}}, ValueError, r"`sigma` must be a number, \{values: \[...\]\} or"),
    ({"sigma": "big"}, TypeError, r"`sigma` must be a number. Received: sigma='big'"),
])
def test_bad_search_spaces_are_clear_errors(knobs, error, message):
    with pytest.raises(error, match=message):
        SearchSpace(knobs)


def test_search_space_file_errors_name_the_file(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("sigma: {min: 0.1, max: 1.0}\nnum_steps: [1, 2]\n")
    assert load_search_space(path).tuned == ("sigma", "num_steps")
    path.write_text("temperature: -1\n")
    with pytest.raises(ValueError, match=r"space.yaml: `temperature` must be > 0.0"):
        load_search_space(path)
    path.write_text("- sigma\n")
    with pytest.raises(ValueError, match=r"space.yaml must hold a mapping.*Received: list"):
        load_search_space(path)


def test_default_search_space_drops_the_ascent_knobs_for_random_exploration():
    assert set(default_search_space().tuned) == {
        "sigma", "step_size", "num_steps", "real_loss_weight", "real_distillation_weight",
        "synthetic_loss_weight", "temperature", "synthetic_per_real", "learning_rate"}
    assert not {"step_size", "num_steps"} & set(default_search_space("random").tuned)


# --- TGTHyperModel and the tuners ----------------------------------------------------------

SPACE = SearchSpace({"sigma": {"min": 0.1, "max": 1.0}, "num_steps": {"values": [1, 2]},
                     "learning_rate": {"min": 1e-3, "max": 1e-2, "sampling": "log"}})


def _hypermodel(labeler, generator, student_format, **kwargs):
    return TGTHyperModel(lambda: make_classifier(hidden=4, name="student"), labeler, generator,
                         SPACE, input_format=student_format, **kwargs)


def test_hypermodel_builds_a_compiled_distiller_with_the_trial_values(labeler, generator,
                                                                       student_format):
    hypermodel = _hypermodel(labeler, generator, student_format,
                             fixed={"temperature": 2.0, "sigma": 9.0})
    hp = keras_tuner.HyperParameters()
    hp.values = {"sigma": 0.3, "num_steps": 2, "learning_rate": 0.005}
    distiller = hypermodel.build(hp)
    assert isinstance(distiller, TGTDistiller)
    # The space wins over `fixed`; `fixed` over the defaults; defaults for the rest.
    assert (distiller.sigma, distiller.num_steps, distiller.temperature) == (0.3, 2, 2.0)
    assert distiller.synthetic_per_real == 1 and distiller.real_loss_weight == 1.0
    assert float(distiller.optimizer.learning_rate) == pytest.approx(0.005)
    assert any(isinstance(m, BalancedAccuracy) for m in distiller._compile_metrics._user_metrics)
    # Each trial gets a new student.
    assert hypermodel.build(hp).student is not distiller.student


def test_hypermodel_bad_arguments_are_clear_errors(labeler, generator):
    for not_a_builder in (make_classifier(), "small_cnn"):
        with pytest.raises(TypeError, match="`student_fn` must be a function returning a new"):
            TGTHyperModel(not_a_builder, labeler, generator)
    with pytest.raises(ValueError, match=r"`exploration` must be one of .*exploration='ascent'"):
        TGTHyperModel(make_classifier, labeler, generator, exploration="ascent")
    with pytest.raises(ValueError, match=r"Unknown knob\(s\) \['eta'\]"):
        TGTHyperModel(make_classifier, labeler, generator, fixed={"eta": 1.0})


@pytest.mark.parametrize("kind, budget, message", [
    ("grid", {"max_trials": 2}, r"`kind` must be one of \('random', 'bayesian', 'hyperband'\)"),
    ("hyperband", {"max_trials": 2, "max_epochs": 2}, "`max_trials` does not apply"),
    ("hyperband", {}, r"`max_epochs` must be an integer >= 1. Received: max_epochs=None"),
    ("random", {"max_trials": 0}, r"`max_trials` must be an integer >= 1. Received: "
                                  r"max_trials=0"),
])
def test_make_tuner_bad_budgets(labeler, generator, student_format, tmp_path, kind, budget,
                                message):
    with pytest.raises(ValueError, match=message):
        make_tuner(kind, _hypermodel(labeler, generator, student_format), directory=tmp_path,
                   **budget)


def _search(kind, labeler, generator, student_format, tiny_data, tmp_path, strategy=None,
            trials=2, epochs=2):
    x, y = tiny_data
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    budget = {"max_epochs": epochs} if kind == "hyperband" else {"max_trials": trials}
    tuner = make_tuner(kind, _hypermodel(labeler, generator, student_format), seed=1,
                       directory=str(tmp_path), project_name=kind,
                       distribution_strategy=strategy, **budget)
    tuner.search(train, validation_data=train, epochs=epochs, shuffle=False, verbose=0)
    return tuner, train


@pytest.mark.parametrize("kind", ["random", "bayesian", "hyperband"])
def test_two_trials_and_the_best_model_reloads(kind, labeler, generator, student_format,
                                               tiny_data, tmp_path):
    tuner, val = _search(kind, labeler, generator, student_format, tiny_data, tmp_path)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) >= 2 and all(t.status == "COMPLETED" for t in trials)
    assert len({t.hyperparameters.values["sigma"] for t in trials}) >= 2  # really searched
    best_trial = tuner.oracle.get_best_trials(1)[0]
    assert best_trial.score == max(t.score for t in trials)
    labeler_weights = [w.copy() for w in labeler.model.get_weights()]
    best = tuner.get_best_models(1)[0]
    # The reloaded checkpoint is the best epoch of the best trial: same objective again.
    logs = best.evaluate(val, return_dict=True, verbose=0)
    assert logs["balanced_accuracy"] == pytest.approx(best_trial.score, abs=1e-6)
    assert best.sigma == best_trial.hyperparameters.values["sigma"]
    if kind != "hyperband":  # (a continued Hyperband trial also counts its parent's steps)
        # The optimizer state reloads too: the step count of the best epoch (2 steps/epoch).
        assert int(best.optimizer.iterations) == 2 * (best_trial.best_step + 1)
    # The teacher is frozen: no trial (nor the reload) moved it.
    for before, after in zip(labeler_weights, labeler.model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)


def test_search_runs_under_a_distribution_strategy(labeler, generator, student_format,
                                                   tiny_data, tmp_path):
    strategy = mirrored_cpus()
    tuner, val = _search("random", labeler, generator, student_format, tiny_data, tmp_path,
                         strategy=strategy, trials=1, epochs=1)
    best = tuner.get_best_models(1)[0]
    assert best.distribute_strategy is strategy
    assert isinstance(best.student.trainable_variables[0].value,
                      tf.distribute.DistributedValues)  # mirrored over the two CPUs
    logs = best.evaluate(val, return_dict=True, verbose=0)
    assert logs["balanced_accuracy"] == pytest.approx(tuner.oracle.get_best_trials(1)[0].score,
                                                      abs=1e-6)


def test_objective_is_validation_balanced_accuracy():
    assert (OBJECTIVE.name, OBJECTIVE.direction) == ("val_balanced_accuracy", "max")
