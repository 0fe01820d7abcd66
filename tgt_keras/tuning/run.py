"""`tgt-keras tune`: a resumable keras-tuner search from an hparams file to a new hparams file.

    <output_dir>/tune.yaml               what is searched (base config, space, tuner): a rerun
                                         with the same settings resumes
    <output_dir>/search/                 keras-tuner's project: oracle, trials, checkpoints
    <output_dir>/tensorboard/            per-trial scalars, and the objective plot
    <output_dir>/trials.csv, trials.md   one row per trial: its knob values and objective
    <output_dir>/objective_vs_knobs.png  validation balanced accuracy against each tuned knob
    <output_dir>/best.yaml               the best trial's configuration, a new hparams file
    <output_dir>/best_student.keras      the best trial's student (its best epoch)
    <output_dir>/tuning.json             summary: trials, the best one, its test metrics

The objective is the student's balanced accuracy on a class-balanced validation set held out
from the training split (`build_data`'s `validation`; for a text experiment, labelled training
texts outside the student's labelled set, `tgt_keras.experiments.text`), never the test set. The
best student is evaluated on the test set once, after the search, for the summary only (for
text also its accuracy and macro-F1).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from pathlib import Path

import keras
import yaml

from tgt_keras.data.long_tail import balanced_accuracy, per_class_accuracy, shot_accuracies
from tgt_keras.distribute import pick_strategy
from tgt_keras.experiments.config import TEXT_DATASETS, ExperimentConfig, is_text
from tgt_keras.experiments.data import _from_arrays, build_data
from tgt_keras.experiments.run_directory import (
    RunDirectoryError,
    _write_atomically,
    config_defaults,
    delete_outputs,
    differences,
    read_saved_settings,
    smoke_header,
    worker_directory,
)
from tgt_keras.experiments.teachers import build_teachers
from tgt_keras.experiments.train import (
    _predict,
    build_distiller,
    check_global_batch,
    training_schedule,
)
from tgt_keras.reporting import plots
from tgt_keras.tuning import plots as tuning_plots
from tgt_keras.tuning.hypermodel import (
    OBJECTIVE,
    TUNERS,
    ExperimentHyperModel,
    _check_positive,
    make_tuner,
)
from tgt_keras.tuning.space import SearchSpace, default_search_space

DEFAULT_MAX_TRIALS = 10
#: Datasets with a validation split here (held-out training-split images or texts).
VALIDATION_DATASETS = ("fashion_mnist_lt", "mnist_lt", *TEXT_DATASETS)
PROJECT = "search"
#: What a search writes into its directory: what `overwrite` deletes.
TUNE_OUTPUTS = ("tune.yaml", PROJECT, "tensorboard", "trials.csv", "trials.md",
                "objective_vs_knobs.png", "best.yaml", "best_student.keras", "tuning.json")

logger = logging.getLogger("tgt_keras")


def run_tuning(config: ExperimentConfig, output_dir: str | Path, *, tuner: str = "bayesian",
               max_trials: int | None = None, search_space: SearchSpace | None = None,
               smoke: bool = False, tpu: str | None = None, strategy=None,
               overwrite: bool = False, smoke_keeps=(), callbacks=()) -> dict:
    """Searches the knobs of `search_space` around `config`; returns (and writes) the summary.

    Each trial trains a fresh student (same initial weights in every trial: the seed is reset
    before it is built) for `config.num_epochs` epochs of `steps_per_epoch` steps ("hyperband":
    at most that many) under `pick_strategy(tpu)`, on the precomputed training set.

    Resuming: started again on `output_dir` with the same config, space, tuner and `smoke`, it
    keeps the finished trials, trains the one that was cut short again from its start, and runs
    trials until `max_trials` have been tried (so a larger `max_trials` extends a search).
    Another config, space or tuner there raises `RunDirectoryError` (nothing is changed) unless
    `overwrite`, which deletes the search's outputs (`TUNE_OUTPUTS`) first.

    Args:
        config: the base experiment; the tuned knobs replace its fields.
        output_dir: the search directory.
        tuner: "random", "bayesian" or "hyperband".
        max_trials: trials of "random" / "bayesian" (default `DEFAULT_MAX_TRIALS`); must be
            None for "hyperband", whose budget is `config.num_epochs`.
        search_space: default `default_search_space(config.exploration, modality)`.
        smoke: random images (token ids) and stub teachers (see `run_experiment`): checks the
            wiring.
        tpu: a TPU name or address for `pick_strategy`.
        strategy: a `tf.distribute.Strategy` to use instead of `pick_strategy(tpu)` (e.g. the
            notebook's, so that a TPU is not initialised twice).
        overwrite: delete a previous search in `output_dir` first.
        smoke_keeps: fields a smoke search takes from `config` (`num_epochs`, `steps_per_epoch`).
        callbacks: more Keras callbacks for every trial's `fit`.

    Raises:
        RunDirectoryError: `output_dir` holds a search of other settings and not `overwrite`.
        ValueError: the dataset has no validation split here, or a bad tuner / budget.
    """
    max_trials = check_request(config, tuner, max_trials, smoke)
    space = search_space or default_search_space(
        config.exploration, "text" if is_text(config) else "image")
    strategy = strategy or pick_strategy(tpu)
    out = worker_directory(Path(output_dir), strategy)
    settings = {"tuner": tuner, "smoke": smoke, "search_space": space.to_dict(),
                "config": config.to_dict()}
    _check_search_directory(out, settings, overwrite)  # changes nothing
    replicas = check_global_batch(config, strategy)
    text_run = None
    if is_text(config):
        from tgt_keras.experiments.text import build_text_run

        text_run = build_text_run(config, smoke, replicas, strategy)
        data = text_run.data
        if data.validation is None:
            raise ValueError(
                f"{config.dataset!r} has no labelled training text outside the labelled set of "
                f"num_labeled={config.num_labeled!r} in some class: no validation set to select "
                "on. Lower `num_labeled` or raise `max_train_texts`."
            )
    else:
        data = build_data(config, smoke, replicas=replicas)
    if overwrite:
        delete_outputs(out / name for name in TUNE_OUTPUTS)
    out.mkdir(parents=True, exist_ok=True)
    _write_atomically(out / "tune.yaml", yaml.safe_dump(settings, sort_keys=False))

    epochs, data = training_schedule(config, data, smoke, smoke_keeps)
    with strategy.scope():
        if text_run is None:
            labeler, generator = build_teachers(config, smoke)
        else:
            labeler, generator = text_run.labeler, text_run.generator
        hypermodel = ExperimentHyperModel(config, labeler, generator, data.input_format,
                                         data.steps_per_epoch, space, strategy)
        # The teachers are frozen and no knob changes them: encode and label the real training
        # images once for all trials.
        base = build_distiller(config, labeler, generator, data.input_format,
                               data.steps_per_epoch, strategy)
    x, y, batch = data.arrays
    train = _from_arrays(base.precompute(x), y, config, batch)
    search = make_tuner(tuner, hypermodel, max_trials=max_trials,
                        max_epochs=epochs if tuner == "hyperband" else None, seed=config.seed,
                        directory=str(out), project_name=PROJECT, overwrite=False,
                        distribution_strategy=strategy)
    start = time.perf_counter()
    search.search(train, validation_data=data.validation, epochs=epochs,
                  steps_per_epoch=data.steps_per_epoch, shuffle=False, verbose=2,
                  callbacks=[keras.callbacks.TensorBoard(str(out / "tensorboard"),
                                                         write_graph=False), *callbacks])
    seconds = time.perf_counter() - start
    return _report(search, hypermodel, config, data, out, tuner, smoke, seconds)


def check_request(config: ExperimentConfig, tuner: str, max_trials: int | None,
                  smoke: bool) -> int | None:
    """Checks a search before anything is built; returns `max_trials` with its default.

    Raises:
        ValueError: an unknown `tuner`, `max_trials` given to "hyperband", or a dataset
            without a validation split here (`VALIDATION_DATASETS`) outside `smoke`.
    """
    if tuner not in TUNERS:
        raise ValueError(f"`tuner` must be one of {TUNERS}. Received: tuner={tuner!r}")
    if tuner == "hyperband" and max_trials is not None:
        raise ValueError(
            "`max_trials` does not apply to the 'hyperband' tuner: its budget is num_epochs "
            f"(the most epochs of a trial). Received: max_trials={max_trials!r}"
        )
    if tuner != "hyperband" and max_trials is None:
        max_trials = DEFAULT_MAX_TRIALS
    if not smoke and config.dataset not in VALIDATION_DATASETS:
        raise ValueError(
            "`tgt-keras tune` selects on a held-out validation set, which is built here for "
            f"{VALIDATION_DATASETS} (and --smoke) only. Received: dataset={config.dataset!r}"
        )
    if max_trials is not None:
        _check_positive("max_trials", max_trials)
    return max_trials


def _check_search_directory(out: Path, settings: dict, overwrite: bool) -> None:
    """Refuses a directory holding a search of other settings (see `run_tuning`)."""
    if overwrite:
        return
    saved = out / "tune.yaml"
    if not saved.exists():
        leftovers = [name for name in TUNE_OUTPUTS if (out / name).exists()]
        if leftovers:
            raise RunDirectoryError(
                f"{out} holds search outputs without their tune.yaml ({', '.join(leftovers)}); "
                "nothing was changed. Pass --overwrite to delete them, or choose another "
                "--output-dir."
            )
        return
    _, before = read_saved_settings(saved, "a search")
    now = yaml.safe_load(yaml.safe_dump(settings))  # the same types as the saved side
    # A config saved before a field existed left it at its default.
    defaults = {f"config.{k}": v for k, v in config_defaults().items()}
    changes = differences({**defaults, **_flat(before)}, _flat(now))
    if changes:
        raise RunDirectoryError(
            f"{out} holds a search with other settings ({changes}), so it cannot "
            "be resumed; nothing was changed. Pass --overwrite to delete it and search afresh, "
            "or choose another --output-dir."
        )


def _flat(settings: dict) -> dict:
    """`{"config": {"sigma": 0.5}}` -> `{"config.sigma": 0.5}` (one level)."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _report(search, hypermodel: ExperimentHyperModel, config: ExperimentConfig, data,
            out: Path, tuner: str, smoke: bool, seconds: float) -> dict:
    """Writes the trial table, the plot, the best config and student, and the summary."""
    space = hypermodel.search_space
    trials = list(search.oracle.trials.values())
    rows = trial_rows(search, space)
    _write_tables(rows, out)
    completed = [t for t in trials if t.status == "COMPLETED" and t.score is not None]
    if not completed:
        raise RuntimeError(f"No trial of the search in {out} completed; see the log above.")
    best_trial = search.oracle.get_best_trials(1)[0]
    values = {k: v for k, v in best_trial.hyperparameters.values.items()
              if k in space.knobs}
    best_config = hypermodel.config_for({**hypermodel.fixed, **values}).replace(
        name=f"{config.name}_tuned",
        description=f"{config.description} (tuned by tgt-keras tune, {tuner})",
    )
    png = tuning_plots.objective_vs_knobs_plot(
        rows, space, out / "objective_vs_knobs.png",
        title=f"{config.name}: {tuner} search, {len(completed)} trials")
    plots.write_png_to_tensorboard(out / "tensorboard", "tuning/objective_vs_knobs", png)

    best = search.get_best_models(1)[0]
    best.student.save(out / "best_student.keras")
    y_val, pred_val = _predict(best.student, data.validation)
    y_test, pred_test = _predict(best.student, data.test)
    per_class = per_class_accuracy(y_test, pred_test, config.num_classes)
    if is_text(config):  # a class-balanced labelled set: no shot groups
        from tgt_keras.experiments.text import classification_scores

        test_scores = {f"best_test_{k}": v for k, v in
                       classification_scores(y_test, pred_test, config.num_classes).items()}
    else:
        test_scores = {f"best_test_{k}_shot_accuracy": v
                       for k, v in shot_accuracies(per_class, data.train_counts).items()}
    header = _best_header(config, tuner, best_trial, len(completed), smoke, space)
    _write_atomically(out / "best.yaml",
                      header + yaml.safe_dump(best_config.to_dict(), sort_keys=False))
    summary = {
        "experiment": config.name,
        "tuner": tuner,
        "smoke": smoke,
        "objective": OBJECTIVE.name,
        "trials": len(trials),
        "completed_trials": len(completed),
        "search_seconds_this_run": seconds,
        "best_trial": best_trial.trial_id,
        "best_values": values,
        "best_val_balanced_accuracy": best_trial.score,
        # The reloaded best checkpoint, evaluated again: equals the trial's score.
        "best_val_balanced_accuracy_reloaded": balanced_accuracy(y_val, pred_val,
                                                                 config.num_classes),
        # Measured once after the search; the search never saw the test set.
        "best_test_balanced_accuracy": balanced_accuracy(y_test, pred_test, config.num_classes),
        **test_scores,
        "trial_table": rows,
    }
    _write_atomically(out / "tuning.json", json.dumps(summary, indent=2))
    return summary


def trial_rows(tuner, space: SearchSpace) -> list[dict]:
    """One dict per trial of `tuner`, in trial order: id, status, objective (None unless
    completed), best epoch, the tuned knobs' values and, for Hyperband, the trial's epochs.

    `trial_table(rows)` prints them; `tuning.plots.objective_vs_knobs_plot(rows, space, ...)`
    plots them.
    """
    rows = []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id)):
        values = trial.hyperparameters.values
        row = {"trial": trial.trial_id, "status": trial.status,
               OBJECTIVE.name: trial.score, "best_epoch": trial.best_step}
        for name in space.tuned:
            row[name] = values.get(name)
        if "tuner/epochs" in values:
            row["epochs"] = values["tuner/epochs"]
        rows.append(row)
    return rows


def _write_tables(rows: list[dict], out: Path) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    _write_atomically(out / "trials.csv", buffer.getvalue())
    _write_atomically(out / "trials.md", trial_table(rows) + "\n")


def trial_table(rows: list[dict]) -> str:
    """A Markdown table of `rows` (dicts), numbers to 4 significant digits, best score bold."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    scores = [r.get(OBJECTIVE.name) for r in rows if r.get(OBJECTIVE.name) is not None]
    top = max(scores) if scores else None
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key in columns:
            value = row.get(key)
            text = "" if value is None else (f"{value:.4g}" if isinstance(value, float)
                                             else str(value))
            if key == OBJECTIVE.name and value is not None and value == top:
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _best_header(config, tuner: str, trial, completed: int, smoke: bool,
                 space: SearchSpace) -> str:
    tuned = ", ".join(space.tuned) or "none"
    lines = [
        f"Written by `tgt-keras tune` ({tuner}, {completed} completed trials) from the "
        f"experiment {config.name}.",
        f"The best trial ({trial.trial_id}) reached validation balanced accuracy "
        f"{trial.score:.4f} on held-out training-split "
        f"{'texts' if is_text(config) else 'images'} (not the test set).",
        f"Tuned knobs: {tuned}. Their values were found by this search; they are not the "
        "paper's.",
    ]
    text = "".join(f"# {line}\n" for line in lines)
    return (smoke_header(config) if smoke else "") + text
