"""What a training step of each text method costs, side by side, and the labeler's share of it.

What one run measures, in one process, on the text demo's student (`TextCNN`, built by
`tgt_keras.apps.text_demo.build_text_student`) and trainers (`make_text_trainer`, the demo's
settings `TextDemoConfig`), batch 32, on the demo's labelled texts:

- **step time** (median milliseconds) of
  - **KD**: `keras.distillation.Distiller`, which runs the labeler on every real batch;
  - **KD-cached**: `TGTDistiller` with `synthetic_loss_weight=0` on `precompute`'s cache (the
    teacher's logits computed once; each step only trains the student): the unit of cost;
  - **TGT-random**, **TGT-gradient K=1** and **K=2**, each gradient variant with
    `hold_teacher_output` False and True ("held teacher"), all on `precompute`'s cache, as the
    demo trains them;
- the **ratio** of each step time to KD-cached's (median over median);
- the **labeler alone** on the same batch: its forward pass on token ids, and its forward and
  backward pass (to the inputs) on soft tokens (the generator's relaxed decode of the batch),
  timed in the same rounds; and from them the **labeler's share** of each step: the labeler
  calls a step makes (KD: one forward on ids; TGT-random: one, on the synthetic ids;
  TGT-gradient: K forward and backward passes on soft tokens plus one forward on the final ids,
  or with a held teacher two forwards on ids, at the start point and on the final ids), costed
  at the labeler-alone times, over the step time. It is an estimate (the sum of costs timed in
  isolation), not a profile of the step: on a noisy CPU a variant that is nearly all labeler
  (KD, the held teacher) can come out above 100%;
- **peak memory** per variant: the peak bytes that TensorFlow's allocator holds during a block
  of steps, above what it held just before (the step's working memory; the resident weights and
  data are not counted). TensorFlow keeps allocator statistics on a GPU, and on CPU only with
  its BFC allocator (`TF_CPU_ALLOCATOR_USE_BFC=true`, read once per process): without them
  (`get_memory_info("CPU:0")` raises "Allocator stats not available"; `getrusage`'s max RSS
  only grows within a process, so its deltas mean nothing here) the memory is measured in one
  fresh process that runs with the BFC allocator, builds every variant and runs one block of
  each, so that the timed process keeps TensorFlow's default allocator. Skip with
  `--no-memory`.

Timing: after a warm-up block each, the variants and the two labeler references are timed in
turn, `--rounds` times, each a block of `--steps-per-round` steps (calls), the start rotating
from round to round; the table quotes the median block. This VM's CPU is throttled in bursts,
so only ratios measured side by side in one run mean anything. XLA is what `compile` resolves
for the demo's trainers (`jit_compile="auto"`: off on CPU); the labeler references follow it.

Teachers: `--teachers offline` (default) are the cached offline text teachers of
`tgt_keras.offline.text_teachers.text_teachers` (MiniLM labeler, small BART generator, the
Rotten Tomatoes vocabulary, length 32; trained on first use, about 15 minutes on 2 cores);
`--teachers tiny` are tiny random teachers (a one-layer BERT and BART, hidden 8, over a
21-token vocabulary, as in `tests/test_text_distiller.py`) at the same batch and length, on
random texts: it runs anywhere in seconds, for the test that keeps this script working.

Run: `python benchmarks/text_step_cost.py` (defaults: offline teachers, 5 rounds of 5 steps);
`--json PATH` writes the results there (and a Markdown copy of the table next to it); nothing is
written without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tgt_keras.apps.text_demo import TextDemoConfig, build_text_student, make_text_trainer
from tgt_keras.core.distiller import TGTDistiller

HERE = Path(__file__).resolve().parent
TEACHERS = ("offline", "tiny")
BATCH_SIZE = 32
SEQUENCE_LENGTH = 32
UNIT = "KD-cached"
#: name -> (text_demo method, changes to `TextDemoConfig`, labeler calls per step as
#: (forward passes on ids, forward and backward passes on soft tokens)).
VARIANTS = {
    "KD": ("KD", {}, (1, 0)),
    UNIT: ("TGT-random", {"synthetic_loss_weight": 0.0}, (0, 0)),
    "TGT-random": ("TGT-random", {}, (1, 0)),
    **{f"TGT-gradient K={k}{' (held teacher)' if hold else ''}": (
        "TGT-gradient", {"num_steps": k, "hold_teacher_output": hold},
        (2, 0) if hold else (1, k))
       for k in (1, 2) for hold in (False, True)},
}
#: The labeler alone on one batch (timed in the same rounds as the steps).
LABELER_FORWARD = "labeler forward (ids)"
LABELER_BACKWARD = "labeler forward + backward (soft tokens)"
REFERENCES = (LABELER_FORWARD, LABELER_BACKWARD)


def _step_throughput():
    """`benchmarks/step_throughput.py` (a script folder, not a package), for its step timer."""
    name = "benchmarks_step_throughput"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "step_throughput.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- teachers and data ----------------------------------------------------------------------


class Setup:
    """The teachers (a `TextTeachers`), the demo config and the labelled ids and labels."""

    def __init__(self, teachers: str, seed: int = 0):
        if teachers not in TEACHERS:
            raise ValueError(f"`teachers` must be one of {TEACHERS}. Received: {teachers!r}")
        self.name = teachers
        self.config = TextDemoConfig(seed=seed, batch_size=BATCH_SIZE)
        if teachers == "offline":
            from tgt_keras.data.rotten_tomatoes import rotten_tomatoes_split
            from tgt_keras.offline.text_teachers import text_teachers

            split = rotten_tomatoes_split(num_labeled=self.config.num_labeled,
                                          labeled_fraction=self.config.labeled_fraction,
                                          seed=seed)
            self.teachers = text_teachers(split, sequence_length=SEQUENCE_LENGTH)
            self.ids = self.teachers.tokenizer(split.labeled_texts)
            self.y = split.labeled_labels.astype(np.int32)
            self.num_classes = split.num_classes
        else:
            self.teachers = tiny_teachers(seed)
            self.ids = random_ids(BATCH_SIZE * 8, seed)
            self.y = (np.arange(len(self.ids)) % 2).astype(np.int32)
            self.num_classes = 2


TINY_WORDS = ("good", "bad", "film", "great", "awful", "plot", "fun", "dull", "cast", "witty",
              "the", "a", "is", "not", "very", "and")
TINY_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS)


def tiny_teachers(seed: int = 0):
    """Random one-layer BERT labeler and BART generator (hidden 8) over `TINY_TOKENS`, as in
    `tests/test_text_distiller.py`, at length `SEQUENCE_LENGTH`."""
    import keras_hub

    from tgt_keras.modalities.text import Vocabulary, WordPieceTokenizer
    from tgt_keras.offline.text_teachers import TextTeachers
    from tgt_keras.teachers.seq2seq_generator import Seq2SeqGenerator
    from tgt_keras.teachers.text_labeler import SoftTokenClassifier, TextLabeler

    keras.utils.set_random_seed(seed)
    vocab = Vocabulary(list(TINY_TOKENS))
    bart = keras_hub.models.BartBackbone(
        vocabulary_size=vocab.size, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, dropout=0.0, max_sequence_length=SEQUENCE_LENGTH)
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=vocab.base_size, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, dropout=0.0, max_sequence_length=SEQUENCE_LENGTH)
    classifier = SoftTokenClassifier(bert, num_classes=2, vocabulary=vocab, dropout=0.0)
    return TextTeachers(vocab, WordPieceTokenizer(vocab, SEQUENCE_LENGTH),
                        TextLabeler(classifier, vocab, SEQUENCE_LENGTH),
                        Seq2SeqGenerator(bart, vocab, SEQUENCE_LENGTH), {"tiny": True})


def random_ids(n: int, seed: int = 0, length: int = SEQUENCE_LENGTH) -> np.ndarray:
    """Rows `[CLS] w.. [SEP] [PAD]..` of 2 to length-2 random `TINY_WORDS`."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, length), np.int32)
    for i in range(n):
        k = rng.integers(2, length - 1)
        rows[i, 0] = 2
        rows[i, 1:k + 1] = rng.integers(5, len(TINY_TOKENS), k)
        rows[i, k + 1] = 3
    return rows


# --- trainers and timers --------------------------------------------------------------------


def build_trainer(setup: Setup, variant: str):
    """`(trainer, dataset)`: the demo's compiled trainer for `variant` and its endless data
    (TGT and KD-cached on `precompute`'s cache)."""
    method, changes, _ = VARIANTS[variant]
    config = dataclasses.replace(setup.config, **changes)
    student = build_text_student(config, setup.teachers, setup.num_classes)
    trainer = make_text_trainer(method, student, setup.teachers, config)
    x = trainer.precompute(setup.ids) if isinstance(trainer, TGTDistiller) else setup.ids
    dataset = tf.data.Dataset.from_tensor_slices((x, setup.y)).repeat().batch(
        BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return trainer, dataset


class LabelerTimer:
    """The labeler alone on the first batch: its forward pass on the ids, or its forward and
    backward pass (gradient to the inputs, as exploration takes it) on the generator's soft
    tokens of the batch. Same protocol as the step timer: `timer(calls)` -> seconds per call."""

    def __init__(self, setup: Setup, backward: bool, jit_compile: bool):
        labeler, generator = setup.teachers.labeler, setup.teachers.generator
        ids = tf.constant(setup.ids[:BATCH_SIZE])
        if backward:
            inputs = tf.constant(generator.decode_soft(generator.encode(ids))[0])

            def call(p):
                with tf.GradientTape() as tape:
                    tape.watch(p)
                    objective = tf.reduce_sum(labeler.logits(p))
                return tf.reduce_sum(tape.gradient(objective, p))
        else:
            inputs = ids

            def call(x):
                return tf.reduce_sum(labeler.logits(x))

        self.inputs = inputs
        self.function = tf.function(call, jit_compile=jit_compile)
        self(1)  # traces before anything is timed

    def __call__(self, calls: int) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            output = self.function(self.inputs)
        output.numpy()  # waits for the last call
        return (time.perf_counter() - start) / calls


def build_timers(setup: Setup, log=print) -> tuple[dict, bool]:
    """`({variant: step timer}, jit_compile)`: every variant's trainer, built and traced, and
    whether `compile` turned XLA on for the TGT trainers."""
    st = _step_throughput()
    timers, jit = {}, False
    for variant in VARIANTS:
        log(f"building {setup.name} / {variant}")
        trainer, dataset = build_trainer(setup, variant)
        timers[variant] = st.StepTimer(trainer, dataset)
        if isinstance(trainer, TGTDistiller):
            jit = jit or bool(trainer.jit_compile)
    return timers, jit


# --- memory ---------------------------------------------------------------------------------


def memory_device() -> str:
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"


def allocator_stats_available(device: str | None = None) -> bool:
    """Whether TensorFlow keeps allocator statistics for `device` in this process."""
    try:
        tf.config.experimental.get_memory_info(device or memory_device())
        return True
    except ValueError:
        return False


def measure_memory(timers: dict, steps: int) -> dict:
    """`{variant: {"peak_mib", "peak_total_mib"}}`: the allocator's peak during one block of
    `steps` steps of each variant, above what it held before the block, and in all."""
    device = memory_device()
    out = {}
    for variant, timer in timers.items():
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
        timer(steps)
        peak = tf.config.experimental.get_memory_info(device)["peak"]
        out[variant] = {"peak_mib": (peak - before) / 2**20, "peak_total_mib": peak / 2**20}
    return out


def memory_in_child(teachers: str, steps: int) -> dict:
    """`measure_memory` in a fresh process with TensorFlow's BFC allocator on CPU."""
    command = [sys.executable, __file__, "--memory-child", "--teachers", teachers,
               "--steps-per-round", str(steps)]
    env = {**os.environ, "TF_CPU_ALLOCATOR_USE_BFC": "true"}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _memory_child(teachers: str, steps: int) -> None:
    timers, _ = build_timers(Setup(teachers), log=lambda line: None)
    print(json.dumps(measure_memory(timers, steps)))


# --- the run --------------------------------------------------------------------------------


def measure(setup: Setup, rounds: int, steps: int, log=print) -> dict:
    timers, jit = build_timers(setup, log)
    for name in REFERENCES:
        timers[name] = LabelerTimer(setup, name == LABELER_BACKWARD, jit)
    names = list(timers)
    for name in names:  # warm-up: the first blocks after building are slower
        timers[name](steps)
    samples = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the start
            samples[name].append(timers[name](steps))
        log(f"timing round {r + 1}/{rounds}: " + ", ".join(
            f"{n} {samples[n][-1] * 1e3:.1f} ms" for n in names))
    median = {name: statistics.median(v) for name, v in samples.items()}
    forward, backward = median[LABELER_FORWARD], median[LABELER_BACKWARD]
    variants = {}
    for variant, (_, _, (forwards, backwards)) in VARIANTS.items():
        labeler_seconds = forwards * forward + backwards * backward
        variants[variant] = {
            "step_seconds": median[variant],
            "block_seconds": samples[variant],
            "ratio_to_kd_cached": median[variant] / median[UNIT],
            "labeler_calls": {"forward_ids": forwards, "forward_backward_soft": backwards},
            "labeler_seconds": labeler_seconds,
            "labeler_share": labeler_seconds / median[variant],
        }
    labeler = {name: {"seconds": median[name], "block_seconds": samples[name]}
               for name in REFERENCES}
    return {"variants": variants, "labeler": labeler, "jit_compile": jit,
            "timers": timers}


def format_table(results: dict) -> str:
    v = results["variants"]
    memory = all("peak_memory_mib" in row for row in v.values())
    lines = [f"Text step cost, `{results['teachers']}` teachers (TextCNN student, batch "
             f"{results['batch_size']}, length {results['sequence_length']}, XLA "
             f"{'on' if results['jit_compile'] else 'off'}, median of {results['rounds']} "
             f"interleaved blocks of {results['steps_per_round']} steps):", "",
             "| variant | step (ms) | vs KD-cached | labeler share |"
             + (" peak memory (MiB) |" if memory else ""),
             "|---|---|---|---|" + ("---|" if memory else "")]
    for name, row in v.items():
        line = (f"| {name} | {row['step_seconds'] * 1e3:.1f} | {row['ratio_to_kd_cached']:.2f} "
                f"| {100 * row['labeler_share']:.0f}% |")
        if memory:
            line += f" {row['peak_memory_mib']:.1f} |"
        lines.append(line)
    lab = results["labeler"]
    lines += ["", f"Labeler alone on the same batch: forward on ids "
              f"{lab[LABELER_FORWARD]['seconds'] * 1e3:.1f} ms, forward + backward on soft "
              f"tokens {lab[LABELER_BACKWARD]['seconds'] * 1e3:.1f} ms. Labeler share: the "
              "step's labeler calls costed at these times, over the step time (an estimate from "
              "separate timings: near or above 100% means the labeler is about the whole "
              "step, within this machine's noise)."]
    if memory:
        lines.append("Peak memory: TensorFlow's allocator peak during a block, above what it "
                     f"held before ({results['memory']['how']}).")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teachers", choices=TEACHERS, default="offline")
    parser.add_argument("--rounds", type=int, default=5, help="timing rounds (default 5)")
    parser.add_argument("--steps-per-round", type=int, default=5,
                        help="steps per timed block (default 5)")
    parser.add_argument("--json", default=None, help="write the results to this JSON file "
                        "(and the table to the same path with .md)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("rounds", "steps_per_round"):
        value = getattr(args, name)
        if value < 1:
            parser.error(f"`--{name.replace('_', '-')}` must be >= 1. Received: {value}")
    return args


def main(argv=None) -> dict | None:
    args = parse_args(argv)
    if args.memory_child:
        _memory_child(args.teachers, args.steps_per_round)
        return None
    start = time.perf_counter()
    setup = Setup(args.teachers)
    measured = measure(setup, args.rounds, args.steps_per_round,
                       log=lambda line: print(line, flush=True))
    timers = measured.pop("timers")
    results = {"settings": vars(args).copy(), "teachers": args.teachers,
               "batch_size": BATCH_SIZE, "sequence_length": SEQUENCE_LENGTH,
               "rounds": args.rounds, "steps_per_round": args.steps_per_round,
               "demo_config": dataclasses.asdict(setup.config), **measured}
    if not args.no_memory:
        print("measuring peak memory", flush=True)
        if allocator_stats_available():
            memory = measure_memory({v: timers[v] for v in VARIANTS}, args.steps_per_round)
            how = f"{memory_device()}, in the timed process"
        else:
            memory = memory_in_child(args.teachers, args.steps_per_round)
            how = "CPU, TF_CPU_ALLOCATOR_USE_BFC=true, in a fresh process"
        results["memory"] = {"how": how, "device": memory_device()}
        for variant, row in memory.items():
            results["variants"][variant]["peak_memory_mib"] = row["peak_mib"]
            results["variants"][variant]["peak_memory_total_mib"] = row["peak_total_mib"]
    results["machine"] = _step_throughput().machine()
    results["seconds"] = time.perf_counter() - start
    results["table"] = format_table(results)
    print("\n" + results["table"])
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2, default=str))
        out.with_suffix(".md").write_text(results["table"] + "\n")
        print(f"\nWrote {out} and {out.with_suffix('.md')} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
