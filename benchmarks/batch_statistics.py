"""Batch-norm students: "joint" against "separate" batch statistics, in cost and in accuracy.

`TGTDistiller(batch_statistics=...)` decides how a student's batch-norm layers see the real and
the synthetic examples of a step (a choice the paper leaves open):
- "joint" (the default): one training-mode pass on the real and the synthetic batch together;
  batch norm normalises both with the statistics of the mixed batch, and its moving statistics
  (what the student uses at inference) follow the mixed data;
- "separate": two passes, each batch normalised with its own statistics; the moving statistics
  follow the real batches only (the synthetic pass's update is undone).

Two measurements, in one run:
1. **Step cost** on `benchmarks/step_throughput.py`'s `large` configuration (32x32x3 conv
   generator, ResNet-18-style labeler, half-width ResNet student, batch 64, random weights):
   KD, TGT-random and TGT-gradient K=2 in both modes, XLA off, timed side by side in
   alternating rounds after a warm-up block each (median block).
2. **Accuracy** where it can be measured offline: `hparams/fashion_mnist_lt.yaml` (the
   offline teachers, 1,000 steps of TGT-gradient) with the `resnet` student (batch norm after
   every convolution) instead of the small CNN, in both modes, plus the same student trained
   with the synthetic term off (KD on cached teacher logits) for reference, on several seeds
   (`tgt-keras train` runs, via `run_experiment`).

Run: `python benchmarks/batch_statistics.py` (defaults: 5 timing rounds of 5-step blocks after a
warm-up block, seeds 0 1 2, ResNet width 8); `--no-accuracy` / `--no-timing` for one half;
`--smoke` for a short end-to-end check.
Writes `<out>.json`, `<out>.md`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tgt_keras import TGTDistiller
from tgt_keras.experiments import load_hparams
from tgt_keras.experiments.train import run_experiment

HERE = Path(__file__).resolve().parent
HPARAMS = HERE.parent / "hparams" / "fashion_mnist_lt.yaml"
DEFAULT_OUT = "runs/benchmarks/batch_statistics.json"
MODES = ("joint", "separate")
#: name -> (exploration, num_steps, batch_statistics); KD is timed as the reference.
TIMED = {f"{name} ({mode})": (exploration, steps, mode)
         for name, exploration, steps in (("TGT-random", "random", 0),
                                          ("TGT-gradient K=2", "gradient", 2))
         for mode in MODES}
ACCURACY_KEYS = ("balanced_accuracy", "many_shot_accuracy", "medium_shot_accuracy",
                 "few_shot_accuracy")


def _step_throughput():
    """`benchmarks/step_throughput.py` (a script folder, not a package), for its `large`
    configuration and its step timer."""
    name = "benchmarks_step_throughput"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "step_throughput.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def build_timed(setup, variant: str):
    """A compiled trainer and its data for `variant` (KD or a key of `TIMED`), XLA off."""
    st = _step_throughput()
    if variant == "KD":
        return st.build_trainer(setup, "KD", jit=False)
    exploration, num_steps, mode = TIMED[variant]
    keras.utils.set_random_seed(0)
    trainer = TGTDistiller(setup.make_student(), setup.labeler, setup.generator,
                           exploration=exploration, num_steps=num_steps, real_loss_weight=0.5,
                           real_distillation_weight=0.5, batch_statistics=mode,
                           input_format=setup.input_format, seed=0)
    trainer.compile(optimizer="adam", jit_compile=False)
    x = trainer.precompute(setup.x)
    dataset = tf.data.Dataset.from_tensor_slices((x, setup.y)).repeat().batch(
        st.BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return trainer, dataset


def measure_step_costs(config: str, rounds: int, block_steps: int) -> dict:
    """Median step milliseconds of KD and each `TIMED` variant, timed in alternating rounds."""
    st = _step_throughput()
    setup = st.Setup(config)
    names = ("KD", *TIMED)
    timers = {}
    for name in names:
        print(f"building {config} / {name}", flush=True)
        timers[name] = st.StepTimer(*build_timed(setup, name))
    for timer in timers.values():  # warm-up: the first blocks after building are slower
        timer(block_steps)
    samples = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(timers[name](block_steps) * 1e3)
        print(f"timing round {r + 1}/{rounds}: " + ", ".join(
            f"{n} {samples[n][-1]:.0f} ms" for n in names), flush=True)
    return {"config": config, "batch_size": st.BATCH_SIZE, "block_steps": block_steps,
            "rounds": rounds, "samples_ms": samples,
            "step_ms": {n: statistics.median(v) for n, v in samples.items()}}


def measure_accuracy(seeds, width: int, out_dir: Path, smoke: bool) -> dict:
    """`tgt-keras train` runs of fashion_mnist_lt with a ResNet student: KD (synthetic term
    off) and TGT-gradient in both modes, per seed. Returns their metrics."""
    base = load_hparams(HPARAMS).replace(student="resnet", student_width=width)
    variants = {"KD (synthetic term off)": {"synthetic_loss_weight": 0.0},
                **{f"TGT-gradient ({mode})": {"batch_statistics": mode} for mode in MODES}}
    runs = {name: {} for name in variants}
    for seed in seeds:
        for name, changes in variants.items():
            config = base.replace(seed=seed, **changes)
            tag = name.split(" (")[0].lower() + "-" + changes.get("batch_statistics", "kd")
            directory = out_dir / f"{tag}-seed{seed}"
            print(f"=== {name}, seed {seed} -> {directory} ===", flush=True)
            metrics = run_experiment(config, directory, smoke=smoke, overwrite=True)
            runs[name][seed] = {k: metrics[k] for k in (*ACCURACY_KEYS, "train_seconds",
                                                       "steps")}
    summary = {}
    for name, per_seed in runs.items():
        summary[name] = {}
        for key in (*ACCURACY_KEYS, "train_seconds"):
            values = np.array([r[key] for r in per_seed.values()], float)
            summary[name][key] = {"mean": float(values.mean()), "std": float(values.std())}
    return {"hparams": str(HPARAMS.relative_to(HERE.parent)), "student": "resnet",
            "student_width": width, "seeds": list(seeds), "runs": runs, "summary": summary}


def format_tables(results: dict) -> str:
    lines = []
    if "timing" in results:
        t = results["timing"]
        lines += [f"Step cost, `{t['config']}` configuration (batch {t['batch_size']}, XLA off, "
                  f"median of {t['rounds']} alternating blocks of {t['block_steps']} steps):",
                  "", "| variant | step (ms) | vs KD | separate / joint |", "|---|---|---|---|"]
        ms = t["step_ms"]
        for name, value in ms.items():
            ratio = "-"
            if name.endswith("(separate)"):
                ratio = f"{value / ms[name.replace('separate', 'joint')]:.2f}"
            lines.append(f"| {name} | {value:.1f} | {value / ms['KD']:.2f} | {ratio} |")
        lines.append("")
    if "accuracy" in results:
        a = results["accuracy"]
        seeds = len(a["seeds"])
        lines += [f"Fashion-MNIST-LT (`{a['hparams']}`) with the `resnet` student (width "
                  f"{a['student_width']}), mean ± std over {seeds} seed(s):", "",
                  "| method | balanced | many | medium | few | train s |",
                  "|---|---|---|---|---|---|"]
        for name, summary in a["summary"].items():
            cells = " | ".join(f"{summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}"
                               for k in ACCURACY_KEYS)
            lines.append(f"| {name} | {cells} | {summary['train_seconds']['mean']:.0f} |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (default 5)")
    parser.add_argument("--block-steps", type=int, default=5,
                        help="steps per timed block (default 5)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--width", type=int, default=8,
                        help="ResNet student width of the accuracy runs (default 8)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--no-accuracy", action="store_true")
    parser.add_argument("--smoke", action="store_true",
                        help="the tiny timing config and `--smoke` training runs, one seed")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for name in ("rounds", "block_steps", "width"):
        value = getattr(args, name)
        if value < 1:
            parser.error(f"`--{name.replace('_', '-')}` must be >= 1. Received: {value}")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"`--seeds` must be distinct. Received: {args.seeds}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    out = Path(args.out)
    results = {"settings": {k: v for k, v in vars(args).items()}}
    if not args.no_timing:
        config = _step_throughput().TEST_CONFIG if args.smoke else "large"
        results["timing"] = measure_step_costs(config, args.rounds, args.block_steps)
    if not args.no_accuracy:
        seeds = args.seeds[:1] if args.smoke else args.seeds
        results["accuracy"] = measure_accuracy(seeds, args.width, out.parent / out.stem,
                                               args.smoke)
    results["machine"] = _step_throughput().machine()
    results["seconds"] = time.perf_counter() - start
    results["table"] = format_tables(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    out.with_suffix(".md").write_text(results["table"] + "\n")
    print("\n" + results["table"])
    print(f"\nWrote {out} and {out.with_suffix('.md')} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
