"""The sample-size study: does TGT act like more real data?

The paper reports that "TGT effectively increases sample size": with n real examples the
student reaches what the baselines reach with several times more. This study trains the demo's
four methods on balanced training sets of n examples per class for several n and seeds,
reports mean and spread of the balanced test accuracy, plots the curves, and computes the
effective sample-size multiplier: how many real examples per class KD would need to match TGT at
each n (read off the KD curve, linear in accuracy against log n), divided by n.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from tgt_keras.apps import plots
from tgt_keras.apps.long_tail_demo import METHODS, DemoConfig, train_student
from tgt_keras.data.fashion_mnist import load_fashion_mnist
from tgt_keras.data.long_tail import balanced_accuracy, long_tail_indices

DEFAULT_SIZES = (5, 10, 25, 50, 100, 250)
#: The study's defaults: the demo's settings, 300 steps a run.
STUDY_CONFIG = DemoConfig(steps=300, epochs=1)


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


def study_config_from_experiment(config, steps: int) -> DemoConfig:
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
        seed=config.seed, steps=steps, epochs=1, batch_size=config.batch_size,
        learning_rate=config.peak_learning_rate,
        student_width=config.student_width,
        temperature=config.temperature, real_loss_weight=config.real_loss_weight,
        real_distillation_weight=config.real_distillation_weight,
        synthetic_loss_weight=config.synthetic_loss_weight, sigma=config.sigma,
        step_size=config.step_size, num_steps=config.num_steps,
    )


def run_sample_size_study(config: DemoConfig = STUDY_CONFIG,
                          sizes=DEFAULT_SIZES, seeds=(0, 1), methods=METHODS, teachers=None,
                          output_dir: str | Path = "runs/sample_size") -> dict:
    """Runs the study on Fashion-MNIST with the offline teachers; writes JSON, PNG, TensorBoard.

    Each run trains for `config.steps` steps whatever n, so the methods see the same number of
    updates. Returns the results dict.
    """
    from tqdm.auto import tqdm

    if teachers is None:
        from tgt_keras.offline import fashion_mnist_teachers

        teachers = fashion_mnist_teachers()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train = load_fashion_mnist("train")
    x_test, y_test = load_fashion_mnist("test")
    x_eval = (x_test / 255.0).astype("float32")[..., None]

    accuracy = {m: np.zeros((len(sizes), len(seeds))) for m in methods}
    progress = tqdm(total=len(sizes) * len(seeds) * len(methods), desc="sample-size study")
    for j, seed in enumerate(seeds):
        run_config = dataclasses.replace(config, seed=seed)
        for i, n in enumerate(sizes):
            idx = long_tail_indices(y_train, [n] * 10, seed=seed)
            x = (x_train[idx] / 255.0).astype("float32")[..., None]
            for method in methods:
                progress.set_postfix(n=n, seed=seed, method=method)
                trainer, _ = train_student(method, x, y_train[idx], teachers, run_config,
                                           verbose=0)
                student = trainer if method == "one-hot" else trainer.student
                pred = np.argmax(student.predict(x_eval, batch_size=1000, verbose=0), -1)
                accuracy[method][i, j] = balanced_accuracy(y_test, pred, 10)
                progress.update()
    progress.close()

    mean = {m: accuracy[m].mean(1) for m in methods}
    std = {m: accuracy[m].std(1) for m in methods}
    multipliers = {}
    if "KD" in methods:
        for m in methods:
            if m.startswith("TGT"):
                multipliers[m] = [
                    None if (e := effective_sample_size(a, sizes, mean["KD"])) is None else e / n
                    for a, n in zip(mean[m], sizes, strict=True)
                ]
    results = {
        "config": dataclasses.asdict(config),
        "sizes_per_class": list(sizes),
        "seeds": list(seeds),
        "accuracy": {m: accuracy[m].tolist() for m in methods},
        "mean": {m: mean[m].tolist() for m in methods},
        "std": {m: std[m].tolist() for m in methods},
        "multiplier_vs_KD": multipliers,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    png = curves_plot(
        sizes, mean, std, out / "sample_size.png",
        title=f"Fashion-MNIST: balanced accuracy vs real examples per class ({len(seeds)} seeds)",
    )
    plots.write_png_to_tensorboard(out / "tensorboard", "sample_size", png)
    print(format_study_table(results))
    return results


def curves_plot(sizes, mean: dict, std: dict, path, title: str) -> bytes:
    """Accuracy against n (log axis), one line per method with a ±1 std band; returns PNG."""
    figure, axis = plots.pyplot().subplots(figsize=(7, 4))
    for method in mean:
        m, s = np.asarray(mean[method]), np.asarray(std[method])
        axis.plot(sizes, m, marker="o", label=method)
        axis.fill_between(sizes, m - s, m + s, alpha=0.2)
    axis.set_xscale("log")
    axis.set_xticks(list(sizes))
    axis.set_xticklabels([str(n) for n in sizes])
    axis.set_xlabel("real training examples per class")
    axis.set_ylabel("balanced test accuracy")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    return plots.save_figure(figure, path)


def format_study_table(results: dict) -> str:
    """Markdown: mean ± std per method and n, and TGT-gradient's multiplier over KD."""
    methods = list(results["mean"])
    header = "| n / class | " + " | ".join(methods) + " | TGT-gradient as KD with ×n |"
    lines = [header, "|" + "---|" * (len(methods) + 2)]
    mult = results["multiplier_vs_KD"].get("TGT-gradient")
    largest = results["sizes_per_class"][-1]
    for i, n in enumerate(results["sizes_per_class"]):
        cells = [f"{results['mean'][m][i]:.3f} ± {results['std'][m][i]:.3f}" for m in methods]
        if mult is None:
            factor = "-"
        elif mult[i] is None:
            factor = f"> {largest / n:.1f}"
        else:
            factor = f"{mult[i]:.1f}"
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {factor} |")
    return "\n".join(lines)
