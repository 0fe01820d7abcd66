"""Step throughput of TGT against plain distillation and against this machine's own limits.

What one run measures, in one process, on identical student, labeler and generator:

- **step time and examples/s** (real examples per second) of `keras.distillation.Distiller`
  (KD on real data), TGT-random (with and without `TGTDistiller.precompute`'s cached latents
  and teacher logits) and TGT-gradient with K = 1, 2, 4 ascent steps, each with and without
  `jit_compile` (XLA);
- two references timed in the same rounds: a large fp32 `tf.matmul` (this machine's
  achievable matmul FLOP/s) and one **exploration pass**, the forward and backward (to the
  latents) of decoder + labeler + student on one batch, which is what one ascent step must
  cost at least;
- **FLOPs per step**, counted analytically (documented in `step_flops`) from each model's
  forward FLOPs, which TensorFlow's graph profiler counts on the frozen forward graph;
- **peak memory** of a fresh process that builds and trains only that variant (skip with
  `--no-memory`): peak resident memory on CPU, TensorFlow's peak allocation on a GPU;
- **oneDNN off against on** (`TF_ENABLE_ONEDNN_OPTS`, read once per process, so measured in
  alternating fresh processes; skip with `--no-onednn`).

Timing: the variants (and the references) are timed in turn, `--rounds` times, each a block
of `--block-steps` steps after a warm-up; the table quotes the median block. This VM's CPU is
throttled in bursts (step times come out as multiples of about 21 ms), so only ratios
measured side by side in one run mean anything.

Configurations: `demo` is the offline demo's models (Fashion-MNIST VAE generator loaded from
its TF-Hub-format SavedModel, the CNN labeler, the `small_cnn` student, batch 64); `large`
is a 32x32x3 DCGAN-style conv generator (128 latents), a ResNet-18-style labeler (width 16)
and a ResNet student of half the width, randomly initialised (speed does not depend on the
weights), sized so that the whole run fits in about 10 minutes on 2 CPU cores.

Run: `python benchmarks/step_throughput.py` (about 15 minutes on 2 CPU cores); `--quick` for a
short look at the demo models; `--out` for the JSON (a Markdown copy of the tables is written
next to it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tgt_keras import KerasGenerator, KerasLabeler, TGTDistiller
from tgt_keras.core.losses import kl_divergence
from tgt_keras.experiments.students import resnet, small_cnn
from tgt_keras.teachers.image_format import ImageFormat, convert_images

CONFIGS = ("demo", "large")
#: Tiny untrained models on 8x8x1 images: for the test that keeps this script working.
TEST_CONFIG = "tiny"
#: name -> (exploration, num_steps, precomputed); KD is handled apart.
TGT_VARIANTS = {
    "TGT-random (no cache)": ("random", 0, False),
    "TGT-random": ("random", 0, True),
    "TGT-gradient K=1": ("gradient", 1, True),
    "TGT-gradient K=2": ("gradient", 2, True),
    "TGT-gradient K=4": ("gradient", 4, True),
}
VARIANTS = ("KD", *TGT_VARIANTS)
MATMUL_SIZE = 2048
BATCH_SIZE = 64


# --- models ---------------------------------------------------------------------------------


class Setup:
    """One configuration's models, data and image formats."""

    def __init__(self, name: str, seed: int = 0):
        keras.utils.set_random_seed(seed)
        self.name = name
        if name == "demo":
            from tgt_keras.offline.teachers import IMAGE_FORMAT, fashion_mnist_teachers

            teachers = fashion_mnist_teachers()
            self.labeler, self.generator = teachers.labeler, teachers.generator
            self.input_format = IMAGE_FORMAT
            self.make_student = lambda: small_cnn(IMAGE_FORMAT.shape, 10, width=16)
        elif name == "large":
            self.input_format = ImageFormat(32, 32, 3, (0.0, 1.0))
            self.labeler = KerasLabeler(resnet((32, 32, 3), 10, width=16), value_range=(0, 1))
            self.generator = KerasGenerator(_conv_encoder(), _conv_decoder(), value_range=(-1, 1))
            self.make_student = lambda: resnet((32, 32, 3), 10, width=8)
        elif name == TEST_CONFIG:
            self.input_format = ImageFormat(8, 8, 1, (0.0, 1.0))
            self.labeler = KerasLabeler(small_cnn((8, 8, 1), 10, width=4), value_range=(0, 1))
            self.generator = KerasGenerator(
                keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(4)]),
                keras.Sequential([keras.Input((4,)), keras.layers.Dense(64, activation="tanh"),
                                  keras.layers.Reshape((8, 8, 1))]), value_range=(-1, 1))
            self.make_student = lambda: small_cnn((8, 8, 1), 10, width=2)
        else:
            raise ValueError(f"`config` must be one of {CONFIGS}. Received: config={name!r}")
        rng = np.random.default_rng(seed)
        n = BATCH_SIZE * 8
        self.x = rng.uniform(0, 1, (n, *self.input_format.shape)).astype("float32")
        self.y = rng.integers(0, 10, n).astype("int32")


def _conv_decoder(latent_dim: int = 128) -> keras.Model:
    inputs = keras.Input((latent_dim,))
    h = keras.layers.Dense(4 * 4 * 128, activation="relu")(inputs)
    h = keras.layers.Reshape((4, 4, 128))(h)
    for filters in (64, 32, 16):
        h = keras.layers.Conv2DTranspose(filters, 4, 2, padding="same", activation="relu")(h)
    outputs = keras.layers.Conv2D(3, 3, padding="same", activation="tanh")(h)
    return keras.Model(inputs, outputs, name="conv_decoder")


def _conv_encoder(latent_dim: int = 128) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    h = inputs
    for filters in (16, 32, 64):
        h = keras.layers.Conv2D(filters, 4, 2, padding="same", activation="relu")(h)
    outputs = keras.layers.Dense(latent_dim)(keras.layers.Flatten()(h))
    return keras.Model(inputs, outputs, name="conv_encoder")


def build_trainer(setup: Setup, variant: str, jit: bool):
    """`(trainer, dataset)`: a compiled KD `Distiller` or `TGTDistiller` and its endless data."""
    keras.utils.set_random_seed(0)
    student = setup.make_student()
    x = setup.x
    if variant == "KD":
        trainer = keras.distillation.Distiller(
            teacher=setup.labeler.model, student=student,
            distillation_losses=keras.distillation.LogitsDistillation(
                temperature=1.0, loss=keras.losses.KLDivergence()),
            student_loss_weight=0.5)
        trainer.compile(optimizer="adam", jit_compile=jit,
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        exploration, num_steps, precomputed = TGT_VARIANTS[variant]
        trainer = TGTDistiller(
            student, setup.labeler, setup.generator, exploration=exploration,
            num_steps=num_steps, real_loss_weight=0.5, real_distillation_weight=0.5,
            input_format=setup.input_format, seed=0)
        trainer.compile(optimizer="adam", jit_compile=jit)
        if precomputed:
            x = trainer.precompute(x)
    dataset = tf.data.Dataset.from_tensor_slices((x, setup.y)).repeat().batch(
        BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return trainer, dataset


class StepTimer:
    """Runs a trainer's compiled train function block by block (as `fit` does, minus the
    callbacks) and times each block."""

    def __init__(self, trainer, dataset):
        trainer.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)  # builds and compiles
        self.function = trainer.make_train_function()
        strategy = trainer.distribute_strategy
        self.iterator = iter(strategy.experimental_distribute_dataset(dataset))
        self(1)  # traces for this iterator before anything is timed

    def __call__(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            outputs = self.function(self.iterator)
        if isinstance(outputs, tf.experimental.Optional):
            outputs = outputs.get_value()
        tf.nest.flatten(outputs)[0].numpy()  # waits for the last step
        return (time.perf_counter() - start) / steps


# --- references -----------------------------------------------------------------------------


def matmul_timer(size: int = MATMUL_SIZE):
    """`(timer, flops)`: one `size` x `size` fp32 matmul per call."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size])
    matmul = tf.function(lambda: tf.matmul(a, b))
    matmul().numpy()
    return lambda steps: _seconds_per_call(matmul, steps), 2.0 * size**3


def exploration_pass_timer(setup: Setup, jit: bool):
    """One ascent step's minimum work: decode, label, student forward, backward to `z`."""
    student = setup.make_student()
    gen, labeler, fmt = setup.generator, setup.labeler, setup.input_format
    z = tf.random.normal([BATCH_SIZE, gen.latent_dim])

    @tf.function(jit_compile=jit)
    def step(z):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(z)
            images = gen.decode(z)
            teacher = labeler.logits(convert_images(images, gen.output_format,
                                                    labeler.input_format))
            logits = student(convert_images(images, gen.output_format, fmt), training=False)
            objective = tf.reduce_sum(kl_divergence(teacher, logits))
        return tape.gradient(objective, z)

    step(z).numpy()
    return lambda steps: _seconds_per_call(lambda: step(z), steps)


def _seconds_per_call(fn, calls: int) -> float:
    """Mean wall seconds of `calls` calls of `fn` (a tensor-returning function), waiting for
    the last result."""
    start = time.perf_counter()
    for _ in range(calls):
        out = fn()
    out.numpy()
    return (time.perf_counter() - start) / calls


# --- FLOPs ----------------------------------------------------------------------------------


def forward_flops(fn, spec: tf.TensorSpec) -> int:
    """FLOPs of one call of `fn` on `spec`, counted by TensorFlow's graph profiler on the
    frozen graph (TF-Hub functions inlined). Counts matmuls, convolutions and elementwise ops
    with registered statistics."""
    concrete = tf.function(fn).get_concrete_function(spec)
    graph_def = convert_variables_to_constants_v2(concrete).graph.as_graph_def()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)


def model_flops(setup: Setup) -> dict[str, int]:
    """Forward FLOPs per example of the student, labeler, encoder and decoder."""
    gen, fmt = setup.generator, setup.input_format
    student = setup.make_student()
    image = tf.TensorSpec([1, *fmt.shape])
    return {
        "student": forward_flops(lambda x: student(x, training=False), image),
        "labeler": forward_flops(setup.labeler.logits,
                                 tf.TensorSpec([1, *setup.labeler.input_format.shape])),
        "encoder": forward_flops(gen.encode, tf.TensorSpec([1, *gen.input_format.shape])),
        "decoder": forward_flops(gen.decode, tf.TensorSpec([1, gen.latent_dim])),
    }


def step_flops(variant: str, flops: dict[str, int], batch: int = BATCH_SIZE) -> float:
    """FLOPs of one training step, counted from the models' forward FLOPs `F`.

    Conventions (as in the scaling-law literature): a forward and backward pass that computes
    weight and input gradients costs 3F; a backward pass to the inputs only (exploration,
    where nothing but the latents moves) costs F more, 2F in all.
    - KD: labeler F_l on the real batch, student 3F_s.
    - the exploration pass (the reference): 2(F_d + F_l + F_s).
    - TGT, K ascent steps, real distillation on: [encoder F_e + labeler F_l on real data,
      unless precomputed] + K * 2(F_d + F_l + F_s) + the final decode and label F_d + F_l +
      student 3F_s on real and synthetic examples (2 batches).
    """
    f_s, f_l, f_e, f_d = (flops[k] for k in ("student", "labeler", "encoder", "decoder"))
    if variant == "exploration pass":
        return batch * 2 * (f_d + f_l + f_s)
    if variant == "KD":
        return batch * (f_l + 3 * f_s)
    _, k, precomputed = TGT_VARIANTS[variant]
    per_example = k * 2 * (f_d + f_l + f_s) + f_d + f_l + 2 * 3 * f_s
    if not precomputed:
        per_example += f_e + f_l
    return batch * per_example


# --- memory ---------------------------------------------------------------------------------


def peak_memory_mib(config: str, variant: str, steps: int) -> float:
    """Peak resident memory (MiB) of a fresh process that builds and trains only `variant`."""
    command = [sys.executable, __file__, "--memory-child", config, variant, str(steps)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _memory_child(config: str, variant: str, steps: int) -> None:
    setup = Setup(config)
    timer = StepTimer(*build_trainer(setup, variant, jit=False))
    timer(steps)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        print(tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20)
    else:
        print(_peak_rss_kib() / 1024)


def _peak_rss_kib() -> float:
    """This process's peak resident set (`VmHWM`). Not `getrusage`'s `ru_maxrss`: Linux keeps
    that across `exec`, so a child of a large parent reports the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


# --- oneDNN ---------------------------------------------------------------------------------

ONEDNN_VARIANTS = ("KD", "TGT-gradient K=2")


def onednn_comparison(rounds: int, steps: int) -> dict:
    """Demo-model step times with TensorFlow's oneDNN kernels off and on.

    `TF_ENABLE_ONEDNN_OPTS` is read once per process, so this alternates fresh processes
    (off, on, off, on, ...), each timing `ONEDNN_VARIANTS` in three blocks of `steps`.
    """
    samples = {flag: {v: [] for v in ONEDNN_VARIANTS} for flag in ("0", "1")}
    for r in range(rounds):
        for flag in ("0", "1"):
            print(f"oneDNN comparison: round {r + 1}/{rounds}, TF_ENABLE_ONEDNN_OPTS={flag}",
                  flush=True)
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": flag}
            out = subprocess.run([sys.executable, __file__, "--onednn-child", str(steps)],
                                 env=env, capture_output=True, text=True, check=True)
            for variant, ms in json.loads(out.stdout.strip().splitlines()[-1]).items():
                samples[flag][variant].append(ms)
    return {"off" if flag == "0" else "on": {v: {"step_ms": statistics.median(t), "samples": t}
                                             for v, t in per.items()}
            for flag, per in samples.items()}


def _onednn_child(steps: int) -> None:
    setup = Setup("demo")
    timers = {v: StepTimer(*build_trainer(setup, v, jit=False)) for v in ONEDNN_VARIANTS}
    times = {v: [] for v in ONEDNN_VARIANTS}
    for _ in range(3):
        for variant, timer in timers.items():
            times[variant].append(timer(steps) * 1e3)
    print(json.dumps({v: statistics.median(t) for v, t in times.items()}))


# --- the run --------------------------------------------------------------------------------


def measure(configs, jit_modes, rounds: int, block_steps: dict, memory: bool) -> dict:
    timers, flops, results = {}, {}, {"configs": {}}
    matmul, matmul_flops = matmul_timer()
    for config in configs:
        setup = Setup(config)
        flops[config] = model_flops(setup)
        for jit in jit_modes:
            for variant in VARIANTS:
                print(f"building {config} / {variant} / jit={jit}", flush=True)
                timers[(config, variant, jit)] = StepTimer(*build_trainer(setup, variant, jit))
            timers[(config, "exploration pass", jit)] = exploration_pass_timer(setup, jit)
    names = list(timers)
    samples = {name: [] for name in names}
    matmul_samples = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate the start
        for name in order:
            samples[name].append(timers[name](block_steps[name[0]]))
        matmul_samples.append(matmul(3))
        done = {c: statistics.median(samples[(c, "KD", jit_modes[0])]) * 1e3 for c in configs}
        print(f"round {r + 1}/{rounds}: median KD step so far "
              + ", ".join(f"{c} {t:.1f} ms" for c, t in done.items()), flush=True)
    matmul_rate = matmul_flops / statistics.median(matmul_samples)
    results["matmul"] = {"size": MATMUL_SIZE, "flops_per_second": matmul_rate,
                         "seconds": matmul_samples}
    for config in configs:
        rows = []
        for (c, variant, jit), times in samples.items():
            if c != config:
                continue
            seconds = statistics.median(times)
            row = {"variant": variant, "jit": jit, "step_ms": seconds * 1e3,
                   "examples_per_second": BATCH_SIZE / seconds, "block_ms": [
                       t * 1e3 for t in times]}
            row["gflop_per_step"] = step_flops(variant, flops[config]) / 1e9
            row["fraction_of_matmul"] = row["gflop_per_step"] * 1e9 / seconds / matmul_rate
            rows.append(row)
        results["configs"][config] = {"model_forward_flops_per_example": flops[config],
                                      "batch_size": BATCH_SIZE,
                                      "block_steps": block_steps[config], "rows": rows}
        if memory:
            for row in rows:
                if row["variant"] in VARIANTS and not row["jit"]:
                    print(f"peak memory: {config} / {row['variant']}", flush=True)
                    row["peak_memory_mib"] = peak_memory_mib(config, row["variant"], 3)
    results["targets"] = targets(results, jit_modes)
    return results


def _row(results, config, variant, jit):
    for row in results["configs"][config]["rows"]:
        if row["variant"] == variant and row["jit"] == jit:
            return row
    return None


def targets(results: dict, jit_modes) -> list[dict]:
    """The issue's four targets, each as the measured ratio and whether it is met."""
    out = []
    jit = False if False in jit_modes else jit_modes[0]
    for config in results["configs"]:
        kd, rnd = _row(results, config, "KD", jit), _row(results, config, "TGT-random", jit)
        out.append({"target": "TGT-random examples/s >= 0.5x KD's", "config": config,
                    "jit": jit, "value": rnd["examples_per_second"] / kd["examples_per_second"],
                    "goal": 0.5, "met": rnd["examples_per_second"] >= 0.5 * kd[
                        "examples_per_second"]})
        k1, k4 = (_row(results, config, f"TGT-gradient K={k}", jit) for k in (1, 4))
        marginal = (k4["step_ms"] - k1["step_ms"]) / 3
        ref = _row(results, config, "exploration pass", jit)["step_ms"]
        out.append({"target": "one ascent step <= 1.2x an exploration pass", "config": config,
                    "jit": jit, "value": marginal / ref, "goal": 1.2,
                    "met": marginal <= 1.2 * ref})
        for k in (1, 2, 4):
            row = _row(results, config, f"TGT-gradient K={k}", jit)
            out.append({"target": f"TGT-gradient K={k} >= 60% of matmul FLOP/s",
                        "config": config, "jit": jit, "value": row["fraction_of_matmul"],
                        "goal": 0.6, "met": row["fraction_of_matmul"] >= 0.6})
        if True in jit_modes and False in jit_modes:
            for variant in VARIANTS:
                speedup = (_row(results, config, variant, False)["step_ms"]
                           / _row(results, config, variant, True)["step_ms"])
                out.append({"target": f"XLA >= 1.3x faster ({variant})", "config": config,
                            "jit": True, "value": speedup, "goal": 1.3,
                            "met": speedup >= 1.3})
    return out


def format_tables(results: dict) -> str:
    lines = [f"fp32 matmul {MATMUL_SIZE}x{MATMUL_SIZE}: "
             f"{results['matmul']['flops_per_second'] / 1e9:.1f} GFLOP/s (median)", ""]
    for config, data in results["configs"].items():
        lines += [f"### {config} (batch {data['batch_size']}, median of "
                  f"{len(data['rows'][0]['block_ms'])} blocks of {data['block_steps']} steps)",
                  "",
                  "| variant | XLA | step (ms) | examples/s | vs KD | GFLOP/step "
                  "| % of matmul | peak memory (MiB) |",
                  "|---|---|---|---|---|---|---|---|"]
        kd = {row["jit"]: row for row in data["rows"] if row["variant"] == "KD"}
        for row in data["rows"]:
            flops = row.get("gflop_per_step")
            memory = row.get("peak_memory_mib")
            share = None if flops is None else 100 * row["fraction_of_matmul"]
            lines.append(
                f"| {row['variant']} | {'on' if row['jit'] else 'off'} | {row['step_ms']:.1f} "
                f"| {row['examples_per_second']:.0f} "
                f"| {row['examples_per_second'] / kd[row['jit']]['examples_per_second']:.2f} "
                f"| {'-' if flops is None else f'{flops:.3f}'} "
                f"| {'-' if share is None else f'{share:.1f}'} "
                f"| {'-' if memory is None else f'{memory:.0f}'} |")
        lines.append("")
    if "onednn" in results:
        off, on = results["onednn"]["off"], results["onednn"]["on"]
        lines += ["oneDNN kernels (`TF_ENABLE_ONEDNN_OPTS`), demo models, XLA off, median over "
                  "alternating processes:", "",
                  "| variant | oneDNN off (ms) | oneDNN on (ms) | speed-up |", "|---|---|---|---|"]
        for variant in off:
            a, b = off[variant]["step_ms"], on[variant]["step_ms"]
            lines.append(f"| {variant} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
        lines.append("")
    lines += ["| target | config | XLA | measured | goal | met |", "|---|---|---|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['config']} | {'on' if t['jit'] else 'off'} "
                     f"| {t['value']:.2f} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def machine() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on)")}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS),
                        choices=(*CONFIGS, TEST_CONFIG))
    parser.add_argument("--jit", choices=("both", "on", "off"), default="both")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block-steps", type=int, default=None,
                        help="steps per timed block (default: 10 demo, 2 large)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory processes")
    parser.add_argument("--quick", action="store_true", help="3 rounds, demo only, no memory")
    parser.add_argument("--out", default="runs/benchmarks/step_throughput.json")
    parser.add_argument("--no-onednn", action="store_true",
                        help="skip the oneDNN off/on comparison processes")
    parser.add_argument("--memory-child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--onednn-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("rounds", "block_steps"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"`--{name.replace('_', '-')}` must be >= 1. Received: {value}")
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.memory_child:
        config, variant, steps = args.memory_child
        _memory_child(config, variant, int(steps))
        return None
    if args.onednn_child:
        _onednn_child(args.onednn_child)
        return None
    if args.quick:
        args.rounds, args.configs, args.no_memory, args.no_onednn = 3, ["demo"], True, True
    jit_modes = {"both": [False, True], "on": [True], "off": [False]}[args.jit]
    block_steps = {"demo": 10, "large": 2, TEST_CONFIG: 2}
    if args.block_steps:
        block_steps = dict.fromkeys(block_steps, args.block_steps)
    start = time.perf_counter()
    results = measure(args.configs, jit_modes, args.rounds, block_steps, not args.no_memory)
    if not args.no_onednn:
        results["onednn"] = onednn_comparison(3, 10)
    results["machine"] = machine()
    results["seconds"] = time.perf_counter() - start
    table = format_tables(results)
    print("\n" + table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    out.with_suffix(".md").write_text(table + "\n")
    print(f"\nWrote {out} and {out.with_suffix('.md')} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
