"""Is TGT worth its cost? KD and TGT on the offline demo task at equal training compute.

The demo (`tgt_keras.apps.long_tail_demo`) compares one-hot, KD and TGT students after the
same number of steps. A TGT step costs more than a KD step (it decodes and labels a synthetic
batch, and TGT-gradient also ascends the disagreement), so equal steps favour TGT. This
benchmark gives KD the same compute instead, on the same long-tail Fashion-MNIST task, with the
same teachers, student, data order and loss settings:

1. **Step cost.** KD (`keras.distillation.Distiller`, as the demo builds it), TGT-random and
   TGT-gradient (`TGTDistiller`, trained on `TGTDistiller.precompute`'s cached latents and
   teacher logits, as `train_student` does) are built in one process, warmed up, then timed in
   turn for `--rounds` rounds, each a block of `--block-steps` steps of `fit` (the first step of
   each block, which also fills the shuffle buffer, is not timed). The cost of a TGT step in
   KD steps is the median TGT block time over the median KD block time.
2. **Training to a budget.** Each TGT method trains for the demo's `--steps`; KD trains for
   `round(steps * ratio)` steps, the same compute, and the same KD run is also evaluated at
   `steps` (the demo's equal-steps comparison). Every run is a fresh, seeded student, as in
   `train_student`. The balanced / many / medium / few-shot test accuracy is evaluated about
   `--evaluations` times per run, with the cumulative training wall time at that point
   (evaluation time excluded; TGT's `precompute` and the first step's tracing included, as in
   `train_student`).

Why a measured ratio and not two wall-clock budgets: equal compute here means equal wall-clock
cost on this machine. This VM's CPU is throttled in bursts (step times come out as multiples of
about 21 ms), so two runs timed separately are not comparable; step times measured side by
side, alternating, and reduced to medians are. The training runs' own wall times are reported
too, but the budget comes from the ratio.

The settings are our demo defaults (`DemoConfig`), not the paper's (the paper's values are
unknown).

Run: `python benchmarks/equal_compute.py` (defaults: 1000 TGT steps, 5 rounds of 20 steps);
`--smoke` for a short end-to-end check; `--out` for the JSON (the PNG and the Markdown table
are written next to it, the PNG also to TensorBoard under `<out dir>/tensorboard`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import numbers
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tgt_keras.apps import plots
from tgt_keras.apps.long_tail_demo import (
    METHODS,
    DemoConfig,
    build_student,
    evaluate_student,
    make_trainer,
    train_dataset,
)
from tgt_keras.core.distiller import TGTDistiller
from tgt_keras.data.fashion_mnist import load_fashion_mnist
from tgt_keras.data.long_tail import long_tail_counts, long_tail_indices

TGT_METHODS = tuple(m for m in METHODS if m.startswith("TGT"))
DEFAULT_OUT = "runs/benchmarks/equal_compute.json"
SMOKE = {"steps": 20, "rounds": 2, "block_steps": 5, "evaluations": 2,
         "out": "runs/benchmarks/equal_compute_smoke.json"}
ACCURACY_KEYS = ("balanced", "many", "medium", "few")


def _check_integer(name: str, value, minimum: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value!r}")


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """Settings of the benchmark.

    `steps` and `seed` replace the demo's; `demo` holds the other settings (data, student,
    losses, exploration), by default the demo's defaults. `demo.steps`, `demo.epochs` and
    `demo.seed` are not used.
    """

    steps: int = DemoConfig.steps  # TGT's training steps (the demo's)
    seed: int = DemoConfig.seed
    rounds: int = 5  # timing rounds
    block_steps: int = 20  # steps per timed block (the first one is not timed)
    evaluations: int = 10  # evaluation points per training run (about)
    methods: tuple[str, ...] = TGT_METHODS
    out: str = DEFAULT_OUT
    demo: DemoConfig = DemoConfig()

    def __post_init__(self):
        _check_integer("steps", self.steps, 1)
        _check_integer("seed", self.seed, 0)
        _check_integer("rounds", self.rounds, 1)
        _check_integer("block_steps", self.block_steps, 2)
        _check_integer("evaluations", self.evaluations, 1)
        methods = tuple(self.methods)
        distinct = len(set(methods)) == len(methods)
        if not methods or not distinct or any(m not in TGT_METHODS for m in methods):
            raise ValueError(f"`methods` must be distinct names from {TGT_METHODS}, at least "
                             f"one. Received: methods={list(methods)}")
        object.__setattr__(self, "methods", methods)
        if not isinstance(self.demo, DemoConfig):
            raise ValueError(f"`demo` must be a DemoConfig. Received: demo={self.demo!r}")

    def demo_config(self) -> DemoConfig:
        """The demo settings the trainers are built with (this benchmark's steps and seed)."""
        return dataclasses.replace(self.demo, steps=self.steps, epochs=1, seed=self.seed)


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


def build_trainer(method: str, teachers, demo: DemoConfig):
    """A fresh seeded student and its trainer, exactly as `train_student` builds them."""
    keras.utils.set_random_seed(demo.seed)
    return make_trainer(method, build_student(demo.student_width), teachers, demo)


def training_inputs(trainer, x: np.ndarray):
    """What `train_student` fits on: the images for KD, `precompute`'s dict for TGT."""
    return trainer.precompute(x) if isinstance(trainer, TGTDistiller) else x


# --- 1. step cost ---------------------------------------------------------------------------


class _BatchClock(keras.callbacks.Callback):
    """Records the time at the end of every training step."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


class BlockTimer:
    """One method's trainer on a repeated dataset; times blocks of `fit` steps."""

    def __init__(self, method: str, teachers, data: LongTailData, demo: DemoConfig):
        self.trainer = build_trainer(method, teachers, demo)
        inputs = training_inputs(self.trainer, data.x_train)
        self.dataset = train_dataset(inputs, data.y_train, demo)

    def __call__(self, steps: int) -> float:
        """Seconds of the last `steps - 1` steps of a `steps`-step `fit`."""
        clock = _BatchClock()
        self.trainer.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0,
                         shuffle=False, callbacks=[clock])
        return clock.times[-1] - clock.times[0]


def ratios_from_blocks(block_seconds: dict[str, list[float]]) -> dict[str, float]:
    """Median block time of each TGT method over KD's (the cost of a step in KD steps)."""
    kd = statistics.median(block_seconds["KD"])
    return {m: statistics.median(v) / kd for m, v in block_seconds.items() if m != "KD"}


def measure_step_costs(teachers, data: LongTailData, config: BenchmarkConfig,
                       log: Callable[[str], None] = print) -> dict:
    """Times KD and each TGT method side by side, alternating, and returns their step costs.

    Returns:
        `{"block_steps", "timed_steps_per_block", "rounds", "order": [[method, ...] per
        round], "block_seconds": {method: [seconds per round]}, "median_step_seconds":
        {method: s}, "ratios": {tgt method: median TGT block / median KD block}}`.
    """
    demo = config.demo_config()
    methods = ("KD", *config.methods)
    timers = {m: BlockTimer(m, teachers, data, demo) for m in methods}
    for m in methods:  # warm-up: traces and compiles the train functions
        timers[m](config.block_steps)
    blocks: dict[str, list[float]] = {m: [] for m in methods}
    orders = []
    timed = config.block_steps - 1
    for r in range(config.rounds):
        order = methods[r % len(methods):] + methods[:r % len(methods)]
        orders.append(list(order))
        for m in order:
            blocks[m].append(timers[m](config.block_steps))
        log(f"timing round {r + 1}/{config.rounds}: " + ", ".join(
            f"{m} {1000 * blocks[m][-1] / timed:.1f} ms/step" for m in methods))
    return {
        "block_steps": config.block_steps,
        "timed_steps_per_block": timed,
        "rounds": config.rounds,
        "order": orders,
        "block_seconds": blocks,
        "median_step_seconds": {m: statistics.median(v) / timed for m, v in blocks.items()},
        "ratios": ratios_from_blocks(blocks),
    }


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
        self.log(f"  {self.label}: step {self._step}/{self.total}, {seconds:.1f} s training, "
                 f"balanced accuracy {result['balanced']:.3f}")


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
    inputs = training_inputs(trainer, data.x_train)  # TGT's caching counts as training time
    points = EvaluationPoints(student, at_steps, evaluate, start, method, log)
    trainer.fit(train_dataset(inputs, data.y_train, demo), steps_per_epoch=total_steps,
                epochs=1, verbose=0, shuffle=False, callbacks=[points])
    return points.points


def kd_budgets(steps: int, ratios: dict[str, float]) -> dict[str, int]:
    """KD steps of the same compute as `steps` steps of each TGT method."""
    return {m: max(1, round(steps * ratio)) for m, ratio in ratios.items()}


def train_all(teachers, data: LongTailData, config: BenchmarkConfig, budgets: dict[str, int],
              log: Callable[[str], None] = print) -> dict:
    """The KD run (to the largest budget) and one run per TGT method (to `steps`)."""
    demo = config.demo_config()
    kd_total = max(config.steps, *budgets.values())
    runs = {}
    log(f"\n=== KD: {kd_total} steps (evaluated at {config.steps} and at each TGT budget) ===")
    kd_at = evaluation_steps(kd_total, config.evaluations, [config.steps, *budgets.values()])
    runs["KD"] = {"steps": kd_total,
                  "points": train_with_evaluations("KD", kd_total, kd_at, teachers, data, demo,
                                                   log)}
    for method in config.methods:
        log(f"\n=== {method}: {config.steps} steps ===")
        at = evaluation_steps(config.steps, config.evaluations)
        runs[method] = {"steps": config.steps,
                        "points": train_with_evaluations(method, config.steps, at, teachers,
                                                         data, demo, log)}
    return runs


# --- 3. output ------------------------------------------------------------------------------


def _point_at(points: list[dict], step: int) -> dict:
    return next(p for p in points if p["step"] == step)


def table_rows(runs: dict, steps: int, budgets: dict[str, int], ratios: dict[str, float]
               ) -> list[dict]:
    """KD at the demo's steps, then per TGT method: KD at its compute, the method itself."""

    def row(name, run, step, cost):
        point = _point_at(runs[run]["points"], step)
        return {"method": name, "steps": step, "step_cost": cost, "compute": step * cost,
                "seconds": point["seconds"], **{k: point[k] for k in ACCURACY_KEYS}}

    rows = [row("KD (demo's steps)", "KD", steps, 1.0)]
    for method, budget in budgets.items():
        rows.append(row(f"KD (compute of {method})", "KD", budget, 1.0))
        rows.append(row(method, method, steps, ratios[method]))
    return rows


def format_table(rows: list[dict]) -> str:
    """The Markdown results table."""
    lines = ["| method | steps | step-cost (KD steps) | compute (KD steps) | train seconds | "
             "balanced | many | medium | few |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['steps']} | {r['step_cost']:.2f} | "
                     f"{r['compute']:.0f} | {r['seconds']:.1f} | {r['balanced']:.3f} | "
                     f"{r['many']:.3f} | {r['medium']:.3f} | {r['few']:.3f} |")
    return "\n".join(lines)


def format_ratios(step_costs: dict) -> str:
    """One line: the median step times and the measured step-cost ratios."""
    median = step_costs["median_step_seconds"]
    parts = [f"KD {1000 * median['KD']:.1f} ms"] + [
        f"{m} {1000 * median[m]:.1f} ms = {ratio:.2f} KD steps"
        for m, ratio in step_costs["ratios"].items()]
    return (f"Step cost, measured side by side (median of {step_costs['rounds']} alternating "
            f"blocks of {step_costs['timed_steps_per_block']} timed steps): " + "; ".join(parts))


def plot_curves(runs: dict, ratios: dict[str, float], path: Path) -> bytes:
    """Balanced accuracy vs training seconds and vs compute in KD steps, one line per method."""
    plt = plots.pyplot()
    figure, (by_time, by_compute) = plt.subplots(1, 2, figsize=(11, 4))
    for method, run in runs.items():
        cost = 1.0 if method == "KD" else ratios[method]
        points = run["points"]
        balanced = [p["balanced"] for p in points]
        by_time.plot([p["seconds"] for p in points], balanced, marker="o", markersize=3,
                     label=method)
        by_compute.plot([p["step"] * cost for p in points], balanced, marker="o",
                        markersize=3, label=method)
    for method in ratios:
        budget = runs[method]["steps"] * ratios[method]
        by_compute.axvline(budget, color="0.6", linestyle=":", linewidth=1)
        by_compute.annotate(f"{method} budget", (budget, 0.02), rotation=90, fontsize=7,
                            color="0.4", ha="right", va="bottom",
                            xycoords=("data", "axes fraction"))
    by_time.set_xlabel("training wall time (s, evaluation excluded)")
    by_compute.set_xlabel("training compute (KD steps, from the measured step-cost ratio)")
    values = [p["balanced"] for run in runs.values() for p in run["points"]]
    low = max(0.0, np.floor(20 * np.nanmin(values)) / 20 - 0.05)  # zoomed: the gaps are points
    for axis in (by_time, by_compute):
        axis.set_ylabel("balanced test accuracy")
        axis.set_ylim(low, min(1.0, np.nanmax(values) + 0.05))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper left")
    figure.suptitle("Long-tail Fashion-MNIST: KD vs TGT at equal training compute", fontsize=10)
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


def write_outputs(results: dict, out: Path) -> dict[str, Path]:
    """The JSON, the Markdown table, the PNG, and the PNG in TensorBoard."""
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"json": out, "table": out.with_suffix(".md"), "plot": out.with_suffix(".png"),
             "tensorboard": out.parent / "tensorboard" / out.stem}
    paths["json"].write_text(json.dumps(results, indent=2))
    paths["table"].write_text(results["table"] + "\n\n" + results["ratios_line"] + "\n")
    png = plot_curves(results["runs"], results["step_costs"]["ratios"], paths["plot"])
    plots.write_png_to_tensorboard(paths["tensorboard"], "balanced_accuracy_vs_compute", png)
    return paths


# --- the core -------------------------------------------------------------------------------


def run(config: BenchmarkConfig = BenchmarkConfig(), teachers=None,
        data: LongTailData | None = None, log: Callable[[str], None] = print) -> dict:
    """Measures the step costs, trains to equal compute, prints the table and writes outputs.

    Args:
        config: the benchmark settings.
        teachers: an `OfflineTeachers` (or anything with `.labeler` and `.generator`); by
            default the cached Fashion-MNIST teachers.
        data: the task; by default long-tail Fashion-MNIST as in the demo.
        log: where progress lines go.

    Returns:
        The results dict (also written to `config.out`).
    """
    start = time.perf_counter()
    if teachers is None:
        from tgt_keras.offline.teachers import fashion_mnist_teachers

        teachers = fashion_mnist_teachers()
    if data is None:
        data = load_data(config.demo_config())
    log(f"Long-tail training set: {len(data.y_train)} images, per-class counts "
        f"{np.asarray(data.counts).tolist()}")
    step_costs = measure_step_costs(teachers, data, config, log)
    log(format_ratios(step_costs))
    budgets = kd_budgets(config.steps, step_costs["ratios"])
    runs = train_all(teachers, data, config, budgets, log)
    rows = table_rows(runs, config.steps, budgets, step_costs["ratios"])
    results = {
        "config": dataclasses.asdict(config),
        "train_counts": np.asarray(data.counts).tolist(),
        "teachers": getattr(teachers, "report", None),
        "machine": machine(),
        "step_costs": step_costs,
        "kd_budgets": budgets,
        "runs": runs,
        "rows": rows,
        "table": format_table(rows),
        "ratios_line": format_ratios(step_costs),
    }
    results["seconds"] = time.perf_counter() - start
    paths = write_outputs(results, Path(config.out))
    log("\n" + results["table"] + "\n\n" + results["ratios_line"])
    for method, budget in budgets.items():
        gain = rows_by_name(rows)[method]["balanced"] - rows_by_name(rows)[
            f"KD (compute of {method})"]["balanced"]
        log(f"{method} - KD at equal compute ({budget} KD steps): {100 * gain:+.1f} points "
            "balanced accuracy")
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
    parser.add_argument("--rounds", type=int, help=f"timing rounds (default "
                        f"{BenchmarkConfig.rounds})")
    parser.add_argument("--block-steps", type=int, help="steps per timed block, the first not "
                        f"timed (default {BenchmarkConfig.block_steps})")
    parser.add_argument("--evaluations", type=int, help="evaluation points per run (default "
                        f"{BenchmarkConfig.evaluations})")
    parser.add_argument("--methods", nargs="+", help=f"TGT methods, from {TGT_METHODS} "
                        "(default: both)")
    parser.add_argument("--seed", type=int, help=f"seed (default {BenchmarkConfig.seed})")
    parser.add_argument("--out", help=f"results JSON (default {DEFAULT_OUT}; the .md and .png "
                        "go next to it)")
    parser.add_argument("--smoke", action="store_true", help="a short end-to-end check: "
                        + ", ".join(f"{k}={v}" for k, v in SMOKE.items())
                        + " (explicit options win)")
    args = parser.parse_args(argv)
    settings = dict(SMOKE) if args.smoke else {}
    for name in ("steps", "rounds", "block_steps", "evaluations", "methods", "seed", "out"):
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
