"""The sample-size study: does TGT act like more real data?

The paper reports that "TGT effectively increases sample size": with n real examples the
student reaches what the baselines reach with several times more. This study trains the
methods on balanced Fashion-MNIST training sets of n examples per class, for several n and
seeds, each run **to its plateau**, and reports mean and spread of the balanced test accuracy
and the **effective sample-size multiplier**: how many real examples per class KD would need
to match TGT at each n (read off the KD curve, linear in accuracy against log n), divided by n.

- **To its plateau** (`PlateauRule`): every `eval_every` steps the student's balanced
  accuracy on a class-balanced validation set (`VALIDATION_PER_CLASS` images per class of the
  training split that the subset did not pick) is measured; a run stops when `patience`
  evaluations in a row did not beat the best (and it has trained `min_steps`), or at
  `max_steps`. The reported student is the one of the best validation evaluation (its test
  accuracy is measured when it is found). The test set is never used to choose.
- **KD** is KD-cached: `TGTDistiller` with the synthetic term off on the teacher's logits
  cached once, the same update as `keras.distillation.Distiller` at a lower cost per step
  (the KD a careful user runs; see `tgt_keras.apps.long_tail_demo.KD_CACHED`).
- **At equal compute**: the step costs of KD and the TGT methods are measured side by side
  first (`tgt_keras.apps.step_cost`). The KD run of each (n, seed) then trains on past its own
  plateau until it has used the compute of that (n, seed)'s TGT-gradient run (its steps
  trained times the cost ratio); "KD at TGT-x's compute" is its best validation evaluation
  within the compute of the TGT-x run. The plateau row of KD is read off the same run by the
  plateau rule, so both come from one trajectory.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from tgt_keras.apps.long_tail_demo import (
    KD_CACHED,
    DemoConfig,
    build_trainer,
    train_dataset,
    training_inputs,
)
from tgt_keras.apps.step_cost import cost_ratio, demo_step_costs, equal_compute_steps
from tgt_keras.data.fashion_mnist import load_fashion_mnist
from tgt_keras.data.long_tail import balanced_accuracy, held_out_indices, long_tail_indices
from tgt_keras.progress import Progress
from tgt_keras.reporting import plots

DEFAULT_SIZES = (5, 10, 25, 50, 100, 250)
DEFAULT_SEEDS = (0, 1, 2)
#: The methods of the study; the KD one is the reference curve of the multiplier.
STUDY_METHODS = ("one-hot", KD_CACHED, "TGT-random", "TGT-gradient")
#: The study's defaults: the demo's settings (the steps come from the `PlateauRule`).
STUDY_CONFIG = DemoConfig(steps=1, epochs=1)
VALIDATION_PER_CLASS = 50
#: The training set whose steps are timed for the step costs (examples per class).
TIMING_SIZE = 50


@dataclasses.dataclass(frozen=True)
class PlateauRule:
    """When a run has reached its plateau (our settings, not the paper's).

    Attributes:
        eval_every: training steps between two validation evaluations.
        patience: evaluations in a row without a new best that stop a run.
        min_steps: a run trains at least this many steps.
        max_steps: a run stops here whatever its validation accuracy does.
    """

    eval_every: int = 100
    patience: int = 8
    min_steps: int = 500
    max_steps: int = 4000

    def __post_init__(self):
        for name in ("eval_every", "patience", "min_steps", "max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
        if self.max_steps < self.min_steps:
            raise ValueError(f"`max_steps` must be >= min_steps={self.min_steps}. "
                             f"Received: max_steps={self.max_steps}")

    def fires(self, trajectory: Sequence[dict]) -> bool:
        """Whether the rule stops a run at the last evaluation of `trajectory` (dicts with
        `step` and `validation`, in order)."""
        scores = [p["validation"] for p in trajectory]
        since_best = len(scores) - 1 - int(np.argmax(scores))  # argmax: the first best
        step = trajectory[-1]["step"]
        return step >= self.max_steps or (since_best >= self.patience
                                          and step >= self.min_steps)

    def stop_index(self, trajectory: Sequence[dict]) -> int:
        """The index of the evaluation at which the rule stops a run with this trajectory
        (the last one if it never fires)."""
        return next((i for i in range(len(trajectory)) if self.fires(trajectory[:i + 1])),
                    len(trajectory) - 1)


def best_within(trajectory: Sequence[dict], max_step: float) -> dict:
    """The first evaluation with the best validation accuracy among those at `step <=
    max_step` (the first evaluation if none is).

    Example:
    >>> best_within([{"step": 1, "validation": 0.5}, {"step": 2, "validation": 0.7},
    ...              {"step": 3, "validation": 0.7}], 3)["step"]
    2
    """
    best = trajectory[0]
    for point in trajectory:
        if point["step"] > max_step:
            break
        if point["validation"] > best["validation"]:
            best = point
    return best


class ValidationTracker(keras.callbacks.Callback):
    """At the end of each Keras epoch (`eval_every` steps), measures the validation balanced
    accuracy, and the test balanced accuracy whenever the validation one is a new best; stops
    training when the plateau rule fires, or once it has fired and `train_until` steps are
    done (the KD run that continues to an equal-compute budget)."""

    def __init__(self, student, evaluate_validation: Callable, evaluate_test: Callable,
                 rule: PlateauRule, train_until: int | None = None):
        super().__init__()
        self.student, self.rule, self.train_until = student, rule, train_until or 0
        self.evaluate_validation, self.evaluate_test = evaluate_validation, evaluate_test
        self.trajectory: list[dict] = []
        self._plateau = False
        self._start = time.perf_counter()
        self._evaluation_seconds = 0.0

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        point = {"step": (epoch + 1) * self.rule.eval_every,
                 "seconds": now - self._start - self._evaluation_seconds,
                 "validation": self.evaluate_validation(self.student)}
        if all(point["validation"] > p["validation"] for p in self.trajectory):
            point["test"] = self.evaluate_test(self.student)  # a new best
        self.trajectory.append(point)
        self._evaluation_seconds += time.perf_counter() - now
        self._plateau = self._plateau or self.rule.fires(self.trajectory)
        self.model.stop_training = self._plateau and point["step"] >= self.train_until


def effective_sample_size(accuracy: float, sizes, reference_accuracy) -> float | None:
    """The n at which the reference curve reaches `accuracy` (log-linear interpolation).

    Returns None when `accuracy` is above every point of the reference curve (the multiplier is
    then only known to exceed `max(sizes) / n`), and `min(sizes)` or less by extrapolation is not
    attempted: an accuracy at or below the first point returns `sizes[0]`.

    Example:
    >>> effective_sample_size(0.75, [10, 100], [0.7, 0.8])  # half-way in log n: sqrt(10*100)
    31.62...
    """
    sizes = np.asarray(sizes, float)
    # The running maximum makes the curve monotone: noise must not create two crossings.
    reference = np.maximum.accumulate(np.asarray(reference_accuracy, float))
    if accuracy > reference[-1]:
        return None
    if accuracy <= reference[0]:
        return float(sizes[0])
    i = int(np.searchsorted(reference, accuracy))
    a0, a1 = reference[i - 1], reference[i]
    t = 0.0 if a1 == a0 else (accuracy - a0) / (a1 - a0)
    return float(np.exp(np.log(sizes[i - 1]) + t * (np.log(sizes[i]) - np.log(sizes[i - 1]))))


def multipliers(accuracy, sizes, reference) -> list[float | None]:
    """`effective_sample_size(a, sizes, reference) / n` at each n (None above the curve)."""
    return [None if (e := effective_sample_size(a, sizes, reference)) is None else e / n
            for a, n in zip(accuracy, sizes, strict=True)]


def study_config_from_experiment(config) -> DemoConfig:
    """The study's settings from an `ExperimentConfig` of `hparams/` (Fashion-MNIST only).

    Raises:
        ValueError: for a setting the study does not support (it trains the demo's small CNN
            with constant-rate Adam on Fashion-MNIST).
    """
    unsupported = {
        "dataset": (config.dataset, "fashion_mnist_lt"),
        "student": (config.student, "small_cnn"),
        "optimizer": (config.optimizer, "adam"),
        "schedule": (config.schedule, "constant"),
    }
    for name, (value, wanted) in unsupported.items():
        if value != wanted:
            raise ValueError(
                f"The sample-size study supports `{name}`={wanted!r} only. Received: "
                f"{name}={value!r}"
            )
    return DemoConfig(
        seed=config.seed, steps=1, epochs=1, batch_size=config.batch_size,
        learning_rate=config.peak_learning_rate,
        student_width=config.student_width,
        temperature=config.temperature, real_loss_weight=config.real_loss_weight,
        real_distillation_weight=config.real_distillation_weight,
        synthetic_loss_weight=config.synthetic_loss_weight, sigma=config.sigma,
        step_size=config.step_size, num_steps=config.num_steps,
    )


def check_study(sizes, seeds, methods=STUDY_METHODS) -> None:
    """Raises `ValueError` naming the argument for sizes that are not increasing positive
    integers, repeated seeds, or methods without KD-cached (the reference curve)."""
    if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes) \
            or list(sizes) != sorted(set(sizes)):
        raise ValueError(f"`sizes` must be increasing integers >= 1. Received: sizes="
                         f"{list(sizes)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"`seeds` must be distinct integers, at least one. Received: seeds="
                         f"{list(seeds)}")
    if KD_CACHED not in methods or any(m not in STUDY_METHODS for m in methods):
        raise ValueError(f"`methods` must be names from {STUDY_METHODS} including "
                         f"{KD_CACHED!r} (the reference curve). Received: methods="
                         f"{list(methods)}")


def run_sample_size_study(config: DemoConfig = STUDY_CONFIG, sizes=DEFAULT_SIZES,
                          seeds=DEFAULT_SEEDS, methods=STUDY_METHODS, teachers=None,
                          output_dir: str | Path = "runs/sample_size",
                          rule: PlateauRule = PlateauRule(), timing_rounds: int = 5,
                          timing_block_steps: int = 20, data=None,
                          log: Callable[[str], None] = print) -> dict:
    """Runs the study on Fashion-MNIST with the offline teachers; writes JSON, PNG, TensorBoard.

    Args:
        config: the training settings (the demo's; `steps` and `epochs` are not used).
        sizes: real training examples per class.
        seeds: each draws the subsets, the validation set, the initialisation, the data order
            and the noise.
        methods: from `STUDY_METHODS`, KD-cached included.
        teachers: an `OfflineTeachers`; by default the cached Fashion-MNIST teachers.
        output_dir: where `results.json`, `sample_size.png` and TensorBoard logs go.
        rule: when a run has reached its plateau.
        timing_rounds, timing_block_steps: the side-by-side step-cost measurement.
        data: `((x_train, y_train), (x_test, y_test))` as uint8 images and labels (default:
            Fashion-MNIST).
        log: where progress lines go.

    Returns:
        The results dict (also `results.json`).
    """
    sizes, seeds, methods = tuple(sizes), tuple(seeds), tuple(methods)
    check_study(sizes, seeds, methods)
    if teachers is None:
        from tgt_keras.offline import fashion_mnist_teachers

        teachers = fashion_mnist_teachers()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        data = (load_fashion_mnist("train"), load_fashion_mnist("test"))
    (x_all, y_all), (x_test, y_test) = data
    num_classes = int(y_all.max()) + 1
    x_test = (x_test / 255.0).astype("float32")[..., None]

    def images(idx):
        return (x_all[idx] / 255.0).astype("float32")[..., None]

    start = time.perf_counter()
    timing_idx = long_tail_indices(y_all, [min(TIMING_SIZE, max(sizes))] * num_classes,
                                   seed=seeds[0])
    timed = tuple(m for m in methods if m != "one-hot")
    step_costs = demo_step_costs(timed, teachers, images(timing_idx), y_all[timing_idx],
                                 dataclasses.replace(config, seed=seeds[0]),
                                 rounds=timing_rounds, block_steps=timing_block_steps, log=log)
    ratios = {m: cost_ratio(step_costs, m, KD_CACHED) for m in timed}
    log("Step cost in KD-cached steps: " + ", ".join(f"{m} {r:.2f}" for m, r in ratios.items()))

    # TGT first: the KD run needs the TGT runs' compute.
    order = sorted(methods, key=lambda m: not m.startswith("TGT"))
    runs = {m: [[None] * len(seeds) for _ in sizes] for m in methods}
    with Progress(len(sizes) * len(seeds) * len(methods), "sample-size study") as progress:
        for j, seed in enumerate(seeds):
            run_config = dataclasses.replace(config, seed=seed)
            for i, n in enumerate(sizes):
                idx = long_tail_indices(y_all, [n] * num_classes, seed=seed)
                val = held_out_indices(y_all, idx, VALIDATION_PER_CLASS, num_classes,
                                       seed=seed)
                for method in order:
                    budgets = {}
                    if method == KD_CACHED:
                        budgets = {m: equal_compute_steps(runs[m][i][j]["steps"], ratios[m])
                                   for m in methods if m.startswith("TGT")}
                    result = train_to_plateau(method, teachers, run_config,
                                              (images(idx), y_all[idx]),
                                              (images(val), y_all[val]), (x_test, y_test),
                                              rule, budgets)
                    runs[method][i][j] = result
                    progress.update(n=n, seed=seed, method=method,
                                    steps=result["steps"], test=f"{result['test']:.3f}")
    results = summarize(runs, sizes, seeds, methods, ratios, rule, config)
    results.update(step_costs=step_costs, seconds=time.perf_counter() - start)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    png = curves_plot(results, out / "sample_size.png")
    plots.write_png_to_tensorboard(out / "tensorboard", "sample_size", png)
    log(format_study_table(results))
    log(format_steps_table(results))
    return results


def train_to_plateau(method: str, teachers, config: DemoConfig, train, validation, test,
                     rule: PlateauRule, budgets: dict[str, int] | None = None) -> dict:
    """Trains a fresh student with `method` on `train = (x, y)` until `rule` stops it, or, with
    `budgets` (`{name: steps}`), until both the rule has fired and the largest budget is
    trained; returns `summarize_run`'s dict. `validation` and `test` are `(x, y)`."""
    budgets = budgets or {}
    num_classes = int(max(np.max(train[1]), np.max(test[1]))) + 1

    def accuracy(student, data):
        pred = np.argmax(student.predict(data[0], batch_size=1000, verbose=0), -1)
        return balanced_accuracy(data[1], pred, num_classes)

    trainer = build_trainer(method, teachers, config)
    student = trainer if method == "one-hot" else trainer.student
    tracker = ValidationTracker(student, lambda s: accuracy(s, validation),
                                lambda s: accuracy(s, test), rule,
                                train_until=max(budgets.values(), default=None))
    epochs = -(-max([rule.max_steps, *budgets.values()]) // rule.eval_every)
    began = time.perf_counter()
    trainer.fit(train_dataset(training_inputs(trainer, train[0]), train[1], config),
                steps_per_epoch=rule.eval_every, epochs=epochs, verbose=0, shuffle=False,
                callbacks=[tracker])
    return summarize_run(tracker.trajectory, rule, budgets, time.perf_counter() - began)


def summarize_run(trajectory: list[dict], rule: PlateauRule, budgets: dict[str, int],
                  seconds: float) -> dict:
    """One run: where the plateau rule stops it, its best student there, and (for the KD run)
    its best student within each equal-compute budget."""
    stop = rule.stop_index(trajectory)
    best = best_within(trajectory, trajectory[stop]["step"])
    return {
        "steps": trajectory[stop]["step"],  # trained by the rule (what the run costs)
        "best_step": best["step"],
        "capped": trajectory[stop]["step"] >= rule.max_steps,
        "test": best["test"],
        "validation": best["validation"],
        "equal_compute": {m: {"budget": b, **_best_summary(best_within(trajectory, b))}
                          for m, b in budgets.items()},
        "seconds": seconds,
        "trajectory": trajectory,
    }


def _best_summary(point: dict) -> dict:
    return {"best_step": point["step"], "test": point["test"],
            "validation": point["validation"]}


def _mean_std(values) -> tuple[list[float], list[float]]:
    values = np.asarray(values, float)
    return values.mean(1).tolist(), values.std(1).tolist()


def summarize(runs: dict, sizes, seeds, methods, ratios: dict, rule: PlateauRule,
              config: DemoConfig) -> dict:
    """Test accuracy (mean, std, per seed), steps, and the multipliers over KD at its plateau
    and at each TGT method's compute."""
    accuracy = {m: [[r["test"] for r in row] for row in runs[m]] for m in methods}
    tgt = [m for m in methods if m.startswith("TGT")]
    for m in tgt:
        accuracy[f"{KD_CACHED} at {m}'s compute"] = [
            [r["equal_compute"][m]["test"] for r in row] for row in runs[KD_CACHED]]
    mean, std = {}, {}
    for name, values in accuracy.items():
        mean[name], std[name] = _mean_std(values)
    multiplier = {}
    for m in tgt:
        for reference in (KD_CACHED, f"{KD_CACHED} at {m}'s compute"):
            key = f"{m} vs {reference}"
            per_seed = np.asarray(accuracy[m], float).T
            reference_per_seed = np.asarray(accuracy[reference], float).T
            multiplier[key] = {
                "of_means": multipliers(mean[m], sizes, mean[reference]),
                "per_seed": [multipliers(a, sizes, r) for a, r in
                             zip(per_seed, reference_per_seed, strict=True)],
            }
    steps = {m: [[r["steps"] for r in row] for row in runs[m]] for m in methods}
    return {
        "config": dataclasses.asdict(config),
        "rule": dataclasses.asdict(rule),
        "sizes_per_class": list(sizes),
        "seeds": list(seeds),
        "methods": list(methods),
        "step_cost_in_kd_cached_steps": ratios,
        "accuracy": accuracy,
        "mean": mean,
        "std": std,
        "multiplier": multiplier,
        "steps": steps,
        "best_steps": {m: [[r["best_step"] for r in row] for row in runs[m]] for m in methods},
        "capped_runs": {m: int(sum(r["capped"] for row in runs[m] for r in row))
                        for m in methods},
        "runs": runs,
    }


def format_multiplier(entry: dict, i: int, size: int, largest: int) -> str:
    """Mean ± std over the seeds of the multiplier at size index `i`; "≥ x (k/S seeds above
    every KD point)" when some seed's TGT accuracy is above the whole KD curve, where x is the
    smallest seed's value (bounds count as `largest / size`)."""
    values = [seed[i] for seed in entry["per_seed"]]
    above = sum(v is None for v in values)
    if not above:
        return f"{np.mean(values):.1f} ± {np.std(values):.1f}"
    lowest = min(largest / size if v is None else v for v in values)
    return f"≥ {lowest:.1f} ({above}/{len(values)} seeds above every KD point)"


def format_study_table(results: dict) -> str:
    """Markdown: mean ± std of the test accuracy per method and n, and TGT-gradient's
    multiplier over KD at its plateau and at TGT-gradient's compute."""
    sizes = results["sizes_per_class"]
    columns = [m for m in results["mean"]]
    multiplier = results["multiplier"]
    keys = [k for k in multiplier if k.startswith("TGT-gradient vs")]
    header = ("| n / class | " + " | ".join(columns) + " | "
              + " | ".join(f"TGT-gradient = KD with ×n ({_reference_label(k)})" for k in keys)
              + " |")
    lines = [header, "|" + "---|" * (len(columns) + len(keys) + 1)]
    for i, n in enumerate(sizes):
        cells = [f"{results['mean'][m][i]:.3f} ± {results['std'][m][i]:.3f}" for m in columns]
        factors = [format_multiplier(multiplier[k], i, n, sizes[-1]) for k in keys]
        lines.append(f"| {n} | " + " | ".join(cells + factors) + " |")
    return "\n".join(lines)


def _reference_label(key: str) -> str:
    """"plateau" or "equal compute": which KD curve a multiplier key reads."""
    return "equal compute" if key.endswith("compute") else "plateau"


def format_steps_table(results: dict) -> str:
    """Markdown: mean steps trained (the plateau rule's stop) and mean best step per method
    and n, and how many runs reached the step cap."""
    methods = results["methods"]
    lines = ["| n / class | " + " | ".join(methods) + " |",
             "|" + "---|" * (len(methods) + 1)]
    for i, n in enumerate(results["sizes_per_class"]):
        cells = [f"{np.mean(results['steps'][m][i]):.0f} (best "
                 f"{np.mean(results['best_steps'][m][i]):.0f})" for m in methods]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    capped = ", ".join(f"{m} {c}" for m, c in results["capped_runs"].items())
    lines.append(f"\nRuns that reached max_steps={results['rule']['max_steps']}: {capped}.")
    return "\n".join(lines)


def curves_plot(results: dict, path) -> bytes:
    """Test accuracy against n (log axis), one line per method with a ±1 std band, KD at equal
    compute dashed; returns the PNG."""
    sizes = results["sizes_per_class"]
    figure, axis = plots.pyplot().subplots(figsize=(7.5, 4.5))
    for name in results["mean"]:
        m, s = np.asarray(results["mean"][name]), np.asarray(results["std"][name])
        style = "--" if "compute" in name else "-"
        axis.plot(sizes, m, style, marker="o", label=name)
        axis.fill_between(sizes, m - s, m + s, alpha=0.15)
    axis.set_xscale("log")
    axis.set_xticks(list(sizes))
    axis.set_xticklabels([str(n) for n in sizes])
    axis.set_xlabel("real training examples per class")
    axis.set_ylabel("balanced test accuracy")
    seeds = len(results["seeds"])
    axis.set_title("Fashion-MNIST: balanced accuracy vs real examples per class (each run to "
                   f"its plateau, {seeds} seed{'s' if seeds > 1 else ''})", fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    return plots.save_figure(figure, path)
