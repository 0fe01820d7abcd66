"""Is TGT worth its cost? KD and TGT on the offline demo task at equal training compute.

The demo (`tgt_keras.apps.long_tail_demo`) compares one-hot, KD and TGT students after the
same number of steps. A TGT step costs more than a KD step (it decodes and labels a synthetic
batch, and TGT-gradient also ascends the disagreement), so equal steps favour TGT. This
benchmark gives KD the same compute instead, on the same long-tail Fashion-MNIST task, with the
same teachers, student, data order and loss settings, on several seeds:

1. **Step cost.** Two KD baselines and the TGT methods are built in one process, warmed up,
   then timed in turn (`tgt_keras.apps.step_cost.demo_step_costs`):
   - **KD-cached**, the KD a careful user runs: the teacher's logits on the training images
     are computed once (`TGTDistiller.precompute` with the synthetic term off) and each step
     only trains the student. It is the unit of compute ("KD-cached steps").
   - **KD**, `keras.distillation.Distiller` as in the demo, which runs the teacher at every
     step (the same update as KD-cached, at a higher cost per step).
   - **TGT-random** and **TGT-gradient** (`TGTDistiller` on `precompute`'s cached latents and
     teacher logits, as `train_student` trains them).
   The cost of a step in a baseline's steps is the median block time over the baseline's.
2. **Training to a budget.** For every seed, each TGT method trains for the demo's `--steps`;
   each baseline trains for as many steps as the most expensive TGT method's compute allows,
   `round(steps * ratio)`, and is evaluated at the demo's steps and at every TGT method's
   budget on the way. Every run is a fresh student seeded as in `train_student`; the seed also
   draws the long-tail subset, the data order and the exploration noise. The balanced / many /
   medium / few-shot test accuracy is evaluated about `--evaluations` times per run, with the
   cumulative training wall time at that point (evaluation time excluded; `precompute` and the
   first step's tracing included, as in `train_student`).
3. **Output.** Mean ± std over the seeds of every row, a plot of balanced accuracy against
   compute and against training seconds, and the JSON with every seed's runs.

The budget comes from the ratio, not from two wall-clock budgets, because only step times
measured side by side are comparable here (see `tgt_keras.apps.step_cost`). The training runs'
own wall times are reported too.

The settings are our demo defaults (`DemoConfig`), not the paper's (the paper's values are
unknown).

Run: `python benchmarks/equal_compute.py` (defaults: 1000 TGT steps, seeds 0 1 2, 5 rounds of
20 steps); `--smoke` for a short end-to-end check; `--out` for the JSON (the PNG and the
Markdown table are written next to it, the PNG also to TensorBoard under
`<out dir>/tensorboard`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import numbers
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tgt_keras.apps.long_tail_demo import (
    KD_CACHED,
    METHODS,
    DemoConfig,
    build_trainer,
    evaluate_student,
    train_dataset,
    training_inputs,
)
from tgt_keras.apps.step_cost import cost_ratio, demo_step_costs, equal_compute_steps
from tgt_keras.data.fashion_mnist import load_fashion_mnist
from tgt_keras.data.long_tail import long_tail_counts, long_tail_indices
from tgt_keras.reporting import plots

TGT_METHODS = tuple(m for m in METHODS if m.startswith("TGT"))
#: The KD baselines; the first is the unit of compute.
BASELINES = (KD_CACHED, "KD")
DEFAULT_OUT = "runs/benchmarks/equal_compute.json"
SMOKE = {"steps": 20, "seeds": (0,), "rounds": 2, "block_steps": 5, "evaluations": 2,
         "out": "runs/benchmarks/equal_compute_smoke.json"}
ACCURACY_KEYS = ("balanced", "many", "medium", "few")


def _check_integer(name: str, value, minimum: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")


def _check_names(name: str, values, known) -> tuple[str, ...]:
    values = tuple(values)
    if not values or len(set(values)) != len(values) or any(v not in known for v in values):
        raise ValueError(f"`{name}` must be distinct names from {known}, at least one. "
                         f"Received: {name}={list(values)}")
    return values


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """Settings of the benchmark.

    `steps` and `seeds` replace the demo's steps and seed; `demo` holds the other settings
    (data, student, losses, exploration), by default the demo's defaults. `demo.steps`,
    `demo.epochs` and `demo.seed` are not used.
    """

    steps: int = DemoConfig.steps  # TGT's training steps (the demo's)
    seeds: tuple[int, ...] = (0, 1, 2)
    rounds: int = 5  # timing rounds
    block_steps: int = 20  # steps per timed block (the first one is not timed)
    evaluations: int = 10  # evaluation points per training run (about)
    methods: tuple[str, ...] = TGT_METHODS
    baselines: tuple[str, ...] = BASELINES  # the first is the unit of compute
    out: str = DEFAULT_OUT
    demo: DemoConfig = DemoConfig()

    def __post_init__(self):
        _check_integer("steps", self.steps, 1)
        seeds = tuple(self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"`seeds` must be distinct integers, at least one. "
                             f"Received: seeds={list(seeds)}")
        for seed in seeds:
            _check_integer("seeds", seed, 0)
        object.__setattr__(self, "seeds", seeds)
        _check_integer("rounds", self.rounds, 1)
        _check_integer("block_steps", self.block_steps, 2)
        _check_integer("evaluations", self.evaluations, 1)
        object.__setattr__(self, "methods", _check_names("methods", self.methods, TGT_METHODS))
        object.__setattr__(self, "baselines",
                           _check_names("baselines", self.baselines, BASELINES))
        if not isinstance(self.demo, DemoConfig):
            raise ValueError(f"`demo` must be a DemoConfig. Received: demo={self.demo!r}")

    @property
    def unit(self) -> str:
        """The baseline whose step is the unit of compute."""
        return self.baselines[0]

    def demo_config(self, seed: int) -> DemoConfig:
        """The demo settings the trainers of `seed` are built with (this benchmark's steps)."""
        return dataclasses.replace(self.demo, steps=self.steps, epochs=1, seed=seed)


class LongTailData(NamedTuple):
    """The long-tail training set, the balanced test set and the per-class training counts."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    counts: np.ndarray


def load_data(demo: DemoConfig) -> LongTailData:
    """Long-tail Fashion-MNIST exactly as `run_demo` builds it (images in [0, 1], 28x28x1)."""
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    counts = long_tail_counts(10, demo.max_count, demo.imbalance_ratio)
    idx = long_tail_indices(y_train, counts, seed=demo.seed)
    return LongTailData((x_train[idx].astype("float32") / 255.0)[..., None], y_train[idx],
                        (x_test.astype("float32") / 255.0)[..., None], y_test, counts)


# --- 1. step cost ---------------------------------------------------------------------------


def measure_step_costs(teachers, data: LongTailData, config: BenchmarkConfig,
                       log: Callable[[str], None] = print) -> dict:
    """Times the baselines and the TGT methods side by side (on the first seed's data).

    Returns:
        `demo_step_costs`'s dict plus `"ratios"`: `{baseline: {method: cost of a method step
        in baseline steps}}` for every TGT method and baseline (a baseline's own is 1).
    """
    methods = (*config.baselines, *config.methods)
    costs = demo_step_costs(methods, teachers, data.x_train, data.y_train,
                            config.demo_config(config.seeds[0]), rounds=config.rounds,
                            block_steps=config.block_steps, log=log)
    costs["ratios"] = {b: {m: cost_ratio(costs, m, b) for m in methods}
                       for b in config.baselines}
    return costs


def budgets_for(steps: int, ratios: dict, config: BenchmarkConfig) -> dict[str, dict[str, int]]:
    """`{baseline: {TGT method: baseline steps of the same compute as `steps` TGT steps}}`."""
    return {b: {m: equal_compute_steps(steps, ratios[b][m]) for m in config.methods}
            for b in config.baselines}


# --- 2. training to a budget ----------------------------------------------------------------


def evaluation_steps(total: int, count: int, extra: Sequence[int] = ()) -> list[int]:
    """About `count` evenly spaced steps in `[1, total]` (ending at `total`), plus `extra`.

    Example:
    >>> evaluation_steps(100, 4, extra=[30])
    [25, 30, 50, 75, 100]
    """
    grid = {max(1, round(total * i / count)) for i in range(1, count + 1)}
    return sorted(grid | {s for s in extra if 1 <= s <= total})


class EvaluationPoints(keras.callbacks.Callback):
    """Evaluates the student at given steps; records the training time so far (evaluation
    time excluded) and the test accuracies."""

    def __init__(self, student, at_steps: Sequence[int], evaluate: Callable, start: float,
                 label: str, log: Callable[[str], None] = print):
        super().__init__()
        self.student, self.evaluate, self.start = student, evaluate, start
        self.at_steps, self.label, self.log = set(at_steps), label, log
        self.total = max(at_steps)
        self.points: list[dict] = []
        self._step = 0
        self._evaluation_seconds = 0.0

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step not in self.at_steps:
            return
        now = time.perf_counter()
        seconds = now - self.start - self._evaluation_seconds
        result = self.evaluate(self.student)
        self._evaluation_seconds += time.perf_counter() - now
        self.points.append({"step": self._step, "seconds": seconds, **result})
        if self._step == self.total or len(self.points) % 5 == 0:
            self.log(f"  {self.label}: step {self._step}/{self.total}, {seconds:.1f} s "
                     f"training, balanced accuracy {result['balanced']:.3f}")


def train_with_evaluations(method: str, total_steps: int, at_steps: Sequence[int], teachers,
                           data: LongTailData, demo: DemoConfig,
                           log: Callable[[str], None] = print) -> list[dict]:
    """Trains a fresh student with `method` for `total_steps`, evaluating at `at_steps`.

    Returns:
        One dict per evaluation point: `step`, `seconds` (training wall time so far),
        `balanced`, `many`, `medium`, `few`, `per_class`.
    """
    trainer = build_trainer(method, teachers, demo)
    student = trainer.student

    def evaluate(model):
        return evaluate_student(model, data.x_test, data.y_test, data.counts)

    start = time.perf_counter()
    inputs = training_inputs(trainer, data.x_train)  # caching counts as training time
    points = EvaluationPoints(student, at_steps, evaluate, start, method, log)
    trainer.fit(train_dataset(inputs, data.y_train, demo), steps_per_epoch=total_steps,
                epochs=1, verbose=0, shuffle=False, callbacks=[points])
    return points.points


def train_seed(teachers, data: LongTailData, config: BenchmarkConfig, seed: int,
               budgets: dict[str, dict[str, int]], log: Callable[[str], None] = print) -> dict:
    """One seed's runs: each baseline to its largest budget, each TGT method to `steps`."""
    demo = config.demo_config(seed)
    runs = {}
    for baseline in config.baselines:
        total = max(config.steps, *budgets[baseline].values())
        log(f"\n=== seed {seed}, {baseline}: {total} steps (evaluated at {config.steps} and at "
            "each TGT budget) ===")
        at = evaluation_steps(total, config.evaluations,
                              [config.steps, *budgets[baseline].values()])
        runs[baseline] = {"steps": total, "points": train_with_evaluations(
            baseline, total, at, teachers, data, demo, log)}
    for method in config.methods:
        log(f"\n=== seed {seed}, {method}: {config.steps} steps ===")
        at = evaluation_steps(config.steps, config.evaluations)
        runs[method] = {"steps": config.steps, "points": train_with_evaluations(
            method, config.steps, at, teachers, data, demo, log)}
    return runs


# --- 3. output ------------------------------------------------------------------------------


def _point_at(points: list[dict], step: int) -> dict:
    return next(p for p in points if p["step"] == step)


def seed_rows(runs: dict, config: BenchmarkConfig, budgets: dict, ratios: dict) -> list[dict]:
    """One seed's rows: each baseline at the demo's steps, then per TGT method each baseline
    at its compute and the method itself. `step_cost` and `compute` are in unit steps."""
    unit = ratios[config.unit]

    def row(name, run, step):
        point = _point_at(runs[run]["points"], step)
        return {"method": name, "steps": step, "step_cost": unit[run],
                "compute": step * unit[run], "seconds": point["seconds"],
                **{k: point[k] for k in ACCURACY_KEYS}}

    rows = [row(f"{b} (demo's steps)", b, config.steps) for b in config.baselines]
    for method in config.methods:
        rows += [row(f"{b} (compute of {method})", b, budgets[b][method])
                 for b in config.baselines]
        rows.append(row(method, method, config.steps))
    return rows


def mean_rows(per_seed: list[list[dict]]) -> list[dict]:
    """Mean and population std over the seeds of each row's seconds and accuracies."""
    rows = []
    for same in zip(*per_seed, strict=True):
        row = {k: same[0][k] for k in ("method", "steps", "step_cost", "compute")}
        for key in ("seconds", *ACCURACY_KEYS):
            values = np.array([r[key] for r in same], float)
            row[key], row[f"{key}_std"] = float(values.mean()), float(values.std())
        rows.append(row)
    return rows


def format_table(rows: list[dict], unit: str, seeds: int) -> str:
    """The Markdown results table (mean ± std over `seeds` seeds)."""
    lines = [f"| method | steps | step cost ({unit} steps) | compute ({unit} steps) | "
             f"train seconds | balanced | many | medium | few |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        accuracies = " | ".join(
            f"{r[k]:.3f} ± {r[k + '_std']:.3f}" if seeds > 1 else f"{r[k]:.3f}"
            for k in ACCURACY_KEYS)
        lines.append(f"| {r['method']} | {r['steps']} | {r['step_cost']:.2f} | "
                     f"{r['compute']:.0f} | {r['seconds']:.1f} | {accuracies} |")
    return "\n".join(lines)


def format_ratios(step_costs: dict, unit: str) -> str:
    """One line: the median step times and the step costs in `unit` steps."""
    median = step_costs["median_step_seconds"]
    parts = [f"{m} {1000 * s:.1f} ms" + ("" if m == unit else
                                          f" = {step_costs['ratios'][unit][m]:.2f} {unit} steps")
             for m, s in median.items()]
    return (f"Step cost, measured side by side (median of {step_costs['rounds']} alternating "
            f"blocks of {step_costs['timed_steps_per_block']} timed steps): " + "; ".join(parts))


def mean_curve(runs_by_seed: list[dict], method: str) -> tuple[list[dict], np.ndarray,
                                                                np.ndarray]:
    """The evaluation points of `method` (first seed's) and the mean and std over the seeds
    of the balanced accuracy at each (every seed is evaluated at the same steps)."""
    points = runs_by_seed[0][method]["points"]
    balanced = np.array([[p["balanced"] for p in runs[method]["points"]]
                         for runs in runs_by_seed], float)
    return points, balanced.mean(0), balanced.std(0)


def plot_curves(runs_by_seed: list[dict], ratios: dict, config: BenchmarkConfig,
                budgets: dict, path: Path) -> bytes:
    """Mean balanced accuracy (band: ± std over the seeds) against training seconds and against
    compute in unit steps, one line per method."""
    plt = plots.pyplot()
    figure, (by_time, by_compute) = plt.subplots(1, 2, figsize=(11, 4))
    unit = ratios[config.unit]
    values = []
    for method in runs_by_seed[0]:
        points, mean, std = mean_curve(runs_by_seed, method)
        seconds = np.mean([[p["seconds"] for p in runs[method]["points"]]
                           for runs in runs_by_seed], 0)
        compute = np.array([p["step"] * unit[method] for p in points])
        for axis, x in ((by_time, seconds), (by_compute, compute)):
            axis.plot(x, mean, marker="o", markersize=3, label=method)
            axis.fill_between(x, mean - std, mean + std, alpha=0.15)
        values += list(mean - std) + list(mean + std)
    for method in config.methods:
        budget = config.steps * unit[method]
        by_compute.axvline(budget, color="0.6", linestyle=":", linewidth=1)
        by_compute.annotate(f"{method} budget", (budget, 0.02), rotation=90, fontsize=7,
                            color="0.4", ha="right", va="bottom",
                            xycoords=("data", "axes fraction"))
    by_time.set_xlabel("training wall time (s, evaluation excluded)")
    by_compute.set_xlabel(f"training compute ({config.unit} steps, from the measured step costs)")
    low = max(0.0, np.floor(20 * np.nanmin(values)) / 20 - 0.05)  # zoomed: the gaps are points
    for axis in (by_time, by_compute):
        axis.set_ylabel("balanced test accuracy")
        axis.set_ylim(low, min(1.0, np.nanmax(values) + 0.05))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="lower center")
    seeds = len(runs_by_seed)
    figure.suptitle("Long-tail Fashion-MNIST: KD vs TGT at equal training compute "
                    f"(mean ± std over {seeds} seed{'s' if seeds > 1 else ''})", fontsize=10)
    return plots.save_figure(figure, path)


def machine() -> dict:
    """Where the numbers were measured."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {"platform": platform.platform(), "processor": platform.processor(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "usable_cpus": usable, "tensorflow": tf.__version__, "keras": keras.__version__,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset)")}


def write_outputs(results: dict, config: BenchmarkConfig, out: Path) -> dict[str, Path]:
    """The JSON, the Markdown table, the PNG, and the PNG in TensorBoard."""
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"json": out, "table": out.with_suffix(".md"), "plot": out.with_suffix(".png"),
             "tensorboard": out.parent / "tensorboard" / out.stem}
    paths["json"].write_text(json.dumps(results, indent=2))
    paths["table"].write_text(results["table"] + "\n\n" + results["ratios_line"] + "\n")
    png = plot_curves([results["runs"][str(s)] for s in config.seeds],
                      results["step_costs"]["ratios"], config, results["budgets"],
                      paths["plot"])
    plots.write_png_to_tensorboard(paths["tensorboard"], "balanced_accuracy_vs_compute", png)
    return paths


# --- the core -------------------------------------------------------------------------------


def run(config: BenchmarkConfig = BenchmarkConfig(), teachers=None,
        data: Callable[[int], LongTailData] | LongTailData | None = None,
        log: Callable[[str], None] = print) -> dict:
    """Measures the step costs, trains to equal compute, prints the table and writes outputs.

    Args:
        config: the benchmark settings.
        teachers: an `OfflineTeachers` (or anything with `.labeler` and `.generator`); by
            default the cached Fashion-MNIST teachers.
        data: the task: a function of the seed, or one `LongTailData` for every seed; by
            default long-tail Fashion-MNIST as in the demo (the seed draws the subset).
        log: where progress lines go.

    Returns:
        The results dict (also written to `config.out`).
    """
    start = time.perf_counter()
    if teachers is None:
        from tgt_keras.offline.teachers import fashion_mnist_teachers

        teachers = fashion_mnist_teachers()
    if data is None:
        data = lambda seed: load_data(config.demo_config(seed))  # noqa: E731
    data_for = data if callable(data) else (lambda seed: data)
    first = data_for(config.seeds[0])
    log(f"Long-tail training set: {len(first.y_train)} images, per-class counts "
        f"{np.asarray(first.counts).tolist()}")
    step_costs = measure_step_costs(teachers, first, config, log)
    log(format_ratios(step_costs, config.unit))
    budgets = budgets_for(config.steps, step_costs["ratios"], config)
    runs, per_seed = {}, []
    for seed in config.seeds:
        seed_data = first if seed == config.seeds[0] else data_for(seed)
        runs[str(seed)] = train_seed(teachers, seed_data, config, seed, budgets, log)
        per_seed.append(seed_rows(runs[str(seed)], config, budgets, step_costs["ratios"]))
    rows = mean_rows(per_seed)
    results = {
        "config": dataclasses.asdict(config),
        "train_counts": np.asarray(first.counts).tolist(),
        "teachers": getattr(teachers, "report", None),
        "machine": machine(),
        "step_costs": step_costs,
        "budgets": budgets,
        "runs": runs,
        "seed_rows": {str(s): r for s, r in zip(config.seeds, per_seed, strict=True)},
        "rows": rows,
        "table": format_table(rows, config.unit, len(config.seeds)),
        "ratios_line": format_ratios(step_costs, config.unit),
    }
    results["seconds"] = time.perf_counter() - start
    paths = write_outputs(results, config, Path(config.out))
    log("\n" + results["table"] + "\n\n" + results["ratios_line"])
    by_name = rows_by_name(rows)
    for method in config.methods:
        for baseline in config.baselines:
            gains = [rows_by_name(r)[method]["balanced"]
                     - rows_by_name(r)[f"{baseline} (compute of {method})"]["balanced"]
                     for r in per_seed]
            log(f"{method} - {baseline} at equal compute ({budgets[baseline][method]} "
                f"{baseline} steps): {100 * np.mean(gains):+.1f} ± {100 * np.std(gains):.1f} "
                f"points balanced accuracy over {len(gains)} seed(s) "
                f"({by_name[method]['balanced']:.3f} vs "
                f"{by_name[f'{baseline} (compute of {method})']['balanced']:.3f})")
    log(f"Wrote {paths['json']}, {paths['table']}, {paths['plot']} and TensorBoard logs in "
        f"{paths['tensorboard']} ({results['seconds']:.0f} s)")
    return results


def rows_by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["method"]: r for r in rows}


# --- CLI ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> BenchmarkConfig:
    """The command line as a `BenchmarkConfig` (exits with a usage error for bad values)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="TGT training steps (default: the demo's, "
                        f"{BenchmarkConfig.steps})")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds (default "
                        f"{' '.join(map(str, BenchmarkConfig.seeds))})")
    parser.add_argument("--rounds", type=int, help=f"timing rounds (default "
                        f"{BenchmarkConfig.rounds})")
    parser.add_argument("--block-steps", type=int, help="steps per timed block, the first not "
                        f"timed (default {BenchmarkConfig.block_steps})")
    parser.add_argument("--evaluations", type=int, help="evaluation points per run (default "
                        f"{BenchmarkConfig.evaluations})")
    parser.add_argument("--methods", nargs="+", help=f"TGT methods, from {TGT_METHODS} "
                        "(default: both)")
    parser.add_argument("--baselines", nargs="+", help=f"KD baselines, from {BASELINES}, the "
                        "first the unit of compute (default: both)")
    parser.add_argument("--out", help=f"results JSON (default {DEFAULT_OUT}; the .md and .png "
                        "go next to it)")
    parser.add_argument("--smoke", action="store_true", help="a short end-to-end check: "
                        + ", ".join(f"{k}={v}" for k, v in SMOKE.items())
                        + " (explicit options win)")
    args = parser.parse_args(argv)
    settings = dict(SMOKE) if args.smoke else {}
    for name in ("steps", "seeds", "rounds", "block_steps", "evaluations", "methods",
                 "baselines", "out"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    try:
        return BenchmarkConfig(**settings)
    except ValueError as error:
        parser.error(str(error))


def main(argv: Sequence[str] | None = None) -> dict:
    return run(parse_args(argv), log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main(sys.argv[1:])
