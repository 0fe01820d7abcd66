"""What a training step of each method costs, measured side by side: the unit of equal compute.

Equal compute here means equal wall-clock cost on the machine at hand. This VM's CPU is
throttled in bursts (step times come out as multiples of about 21 ms), so two runs timed
separately are not comparable; step times measured in one process, alternating, and reduced to
medians are. `benchmarks/equal_compute.py` and the sample-size study
(`tgt_keras.apps.sample_size_study`) give a baseline as many steps as a TGT run's cost allows,
with the costs from `demo_step_costs`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import keras

from tgt_keras.apps.long_tail_demo import (
    DemoConfig,
    build_trainer,
    train_dataset,
    training_inputs,
)


class _BatchClock(keras.callbacks.Callback):
    """Records the time at the end of every training step."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


class BlockTimer:
    """One method's trainer on its endless training data; times blocks of `fit` steps."""

    def __init__(self, method: str, teachers, x, y, config: DemoConfig):
        self.trainer = build_trainer(method, teachers, config)
        self.dataset = train_dataset(training_inputs(self.trainer, x), y, config)

    def __call__(self, steps: int) -> float:
        """Seconds of the last `steps - 1` steps of a `steps`-step `fit` (the first step of a
        block also fills the shuffle buffer and is not timed)."""
        clock = _BatchClock()
        self.trainer.fit(self.dataset, steps_per_epoch=steps, epochs=1, verbose=0,
                         shuffle=False, callbacks=[clock])
        return clock.times[-1] - clock.times[0]


def demo_step_costs(methods: Sequence[str], teachers, x, y, config: DemoConfig, *,
                    rounds: int = 5, block_steps: int = 20,
                    log: Callable[[str], None] = print) -> dict:
    """Times the demo trainers of `methods` on `(x, y)` side by side and returns their costs.

    Each trainer is built and warmed up (traced) once, then timed in turn for `rounds` rounds,
    each a block of `block_steps` steps, with a rotating start so that no method always runs
    first after another.

    Returns:
        `{"block_steps", "timed_steps_per_block", "rounds", "order": [[method, ...] per round],
        "block_seconds": {method: [seconds per round]}, "median_step_seconds": {method: s}}`.
    """
    methods = tuple(methods)
    timers = {m: BlockTimer(m, teachers, x, y, config) for m in methods}
    for m in methods:  # warm-up: traces and compiles the train functions
        timers[m](block_steps)
    blocks: dict[str, list[float]] = {m: [] for m in methods}
    orders = []
    timed = block_steps - 1
    for r in range(rounds):
        order = methods[r % len(methods):] + methods[:r % len(methods)]
        orders.append(list(order))
        for m in order:
            blocks[m].append(timers[m](block_steps))
        log(f"timing round {r + 1}/{rounds}: " + ", ".join(
            f"{m} {1000 * blocks[m][-1] / timed:.1f} ms/step" for m in methods))
    return {
        "block_steps": block_steps,
        "timed_steps_per_block": timed,
        "rounds": rounds,
        "order": orders,
        "block_seconds": blocks,
        "median_step_seconds": {m: statistics.median(v) / timed for m, v in blocks.items()},
    }


def cost_ratio(step_costs: dict, method: str, unit: str) -> float:
    """The cost of a `method` step in `unit` steps (median block over median block)."""
    blocks = step_costs["block_seconds"]
    return statistics.median(blocks[method]) / statistics.median(blocks[unit])


def equal_compute_steps(steps: int, ratio: float) -> int:
    """Steps of the unit method that cost as much as `steps` steps of a method `ratio` times
    as expensive.

    Example:
    >>> equal_compute_steps(1000, 4.856)
    4856
    """
    return max(1, round(steps * ratio))
