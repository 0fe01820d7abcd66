"""What does a keras-tuner trial cost beyond its training? A trial against a plain fit.

For the same knob values (a search space with every knob fixed at the config's values) and the
same number of training steps, timed in one process, alternating, `--rounds` times:

- **plain fit**: `ExperimentHyperModel.build_distiller` + `fit` for `--steps` steps +
  `evaluate` on the validation set: what any trial has to do (including building the model and
  tracing its step);
- **keras-tuner trial**: a one-trial `RandomSearch` of the same hypermodel on the same data
  (keras-tuner builds the distiller, fits it with its callbacks, checkpoints the best epoch and
  saves the oracle and the trial);
- **best-model reload**: `tuner.get_best_models(1)` after that trial (rebuild + load weights).

and once: **precompute**, `TGTDistiller.precompute` of the training set, which `run_tuning` does
once per search (all trials share the frozen teachers' latents and logits) instead of once per
trial. The table gives medians and the trial / plain-fit ratio (the overhead of the tuning
machinery per trial).

Configurations: `demo` (hparams/fashion_mnist_lt.yaml: the offline teachers and `small_cnn`)
and `tiny` (its smoke version: stub teachers, random images; for the test).

Run: `python benchmarks/tuning_overhead.py [--config demo] [--steps 100] [--rounds 3]
[--out runs/benchmarks/tuning_overhead.json]` (prints a Markdown table, writes JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from tgt_keras.experiments import load_hparams
from tgt_keras.experiments.data import _from_arrays, build_data
from tgt_keras.experiments.teachers import build_teachers
from tgt_keras.experiments.train import build_distiller
from tgt_keras.tuning import ExperimentHyperModel, SearchSpace, make_tuner
from tgt_keras.tuning.space import KNOBS

HPARAMS = Path(__file__).resolve().parents[1] / "hparams" / "fashion_mnist_lt.yaml"
CONFIGS = ("demo", "tiny")
DEFAULT_OUT = "runs/benchmarks/tuning_overhead.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=CONFIGS, default="demo")
    parser.add_argument("--steps", type=_positive, default=100,
                        help="training steps of each fit / trial (default %(default)s)")
    parser.add_argument("--rounds", type=_positive, default=3,
                        help="alternating rounds (default %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON output (default %(default)s)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1. Received: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1. Received: {value}")
    return value


def measure(config_name: str = "demo", steps: int = 100, rounds: int = 3) -> dict:
    """Times precompute once, then plain fits, trials and reloads, alternating; returns the
    per-round seconds and their medians."""
    smoke = config_name == "tiny"
    config = load_hparams(HPARAMS)
    data = build_data(config, smoke)
    labeler, generator = build_teachers(config, smoke)
    values = {knob: getattr(config, field) for knob, (field, _, _) in KNOBS.items()}
    hypermodel = ExperimentHyperModel(config, labeler, generator, data.input_format, steps,
                                      SearchSpace(values))
    x, y, batch = data.arrays
    base = build_distiller(config, labeler, generator, data.input_format, steps)
    base.precompute(x[:batch])  # warm-up: trace the teachers' calls once
    start = time.perf_counter()
    cache = base.precompute(x)
    precompute_s = time.perf_counter() - start
    train = _from_arrays(cache, y, config, batch)

    def plain() -> float:  # (build_distiller seeds the student, as in every trial)
        start = time.perf_counter()
        distiller = hypermodel.build_distiller(values)
        distiller.fit(train, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        distiller.evaluate(data.validation, verbose=0)
        return time.perf_counter() - start

    def trial(directory: str) -> tuple[float, float]:
        start = time.perf_counter()
        tuner = make_tuner("random", hypermodel, max_trials=1, directory=directory,
                           project_name="trial", overwrite=True)
        tuner.search(train, validation_data=data.validation, epochs=1, steps_per_epoch=steps,
                     verbose=0, shuffle=False)
        searched = time.perf_counter() - start
        start = time.perf_counter()
        tuner.get_best_models(1)
        return searched, time.perf_counter() - start

    times = {"plain_fit": [], "trial": [], "reload": []}
    with tempfile.TemporaryDirectory() as root:
        plain()  # warm-up: the first model of the process pays one-off costs
        for index in range(rounds):
            order = ("plain", "trial") if index % 2 == 0 else ("trial", "plain")
            for kind in order:
                if kind == "plain":
                    times["plain_fit"].append(plain())
                else:
                    searched, reloaded = trial(os.path.join(root, f"round{index}"))
                    times["trial"].append(searched)
                    times["reload"].append(reloaded)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "config": config_name, "steps": steps, "rounds": rounds, "precompute_s": precompute_s,
        "train_images": int(len(y)), "seconds": times, "median_s": medians,
        "trial_over_plain": medians["trial"] / medians["plain_fit"],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "tensorflow": tf.__version__, "keras": keras.__version__,
                    "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")},
    }


def table(result: dict) -> str:
    """The Markdown table of `measure`'s result."""
    median = result["median_s"]
    lines = [
        f"Tuning overhead, config `{result['config']}`, {result['steps']} steps per fit, "
        f"median of {result['rounds']} alternating rounds:",
        "",
        "| what | seconds | vs plain fit |",
        "|---|---|---|",
        f"| plain fit (build + fit + validation) | {median['plain_fit']:.2f} | 1.00 |",
        f"| keras-tuner trial (same work) | {median['trial']:.2f} | "
        f"{result['trial_over_plain']:.2f} |",
        f"| best-model reload (`get_best_models`) | {median['reload']:.2f} | "
        f"{median['reload'] / median['plain_fit']:.2f} |",
        f"| precompute of the {result['train_images']} training images (once per search) | "
        f"{result['precompute_s']:.2f} | {result['precompute_s'] / median['plain_fit']:.2f} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    result = measure(args.config, args.steps, args.rounds)
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
