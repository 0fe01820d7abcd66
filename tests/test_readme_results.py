"""The README's result tables agree with the committed `docs/*.json` they were printed from.

Each table is printed again from its JSON by the code that printed it (or, for the tables the
README assembles by hand, from the JSON's numbers), and every line must be in README.md; the
numbers quoted in hparams headers must be the JSON's too. So a rerun that updates a JSON but not
the README (or the other way round) fails here.
"""

import importlib.util
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def load(name: str) -> dict:
    return json.loads((ROOT / "docs" / name).read_text())


def benchmark(name: str):
    module_name = f"benchmarks_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name,
                                                      ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]


def assert_in_readme(table: str) -> None:
    missing = [line for line in table.splitlines()
               if line.startswith("|") and line not in README]
    assert not missing, "README.md lacks these lines of the results JSON:\n" + "\n".join(missing)


def test_demo_table():
    from tgt_keras.apps.long_tail_demo import format_table

    assert_in_readme(format_table(load("demo_results.json")["rows"]))


def test_equal_compute_table_and_gains():
    results = load("equal_compute.json")
    assert_in_readme(results["table"])
    for method in results["config"]["methods"]:
        unit = results["config"]["baselines"][0]
        gains = [next(r for r in rows if r["method"] == method)["balanced"]
                 - next(r for r in rows if r["method"] == f"{unit} (compute of {method})")[
                     "balanced"] for rows in results["seed_rows"].values()]
        quoted = f"{100 * np.mean(gains):.1f} ± {100 * np.std(gains):.1f} points"
        assert quoted in README, f"README does not quote {method}'s gain: {quoted}"


def test_sample_size_tables():
    from tgt_keras.apps.sample_size_study import format_steps_table, format_study_table

    results = load("sample_size_results.json")
    assert_in_readme(format_study_table(results))
    assert_in_readme(format_steps_table(results))


def test_step_throughput_tables():
    results = load("step_throughput.json")
    tables = benchmark("step_throughput").format_tables(results)
    # The README states the targets in prose: their measured ratios must be the JSON's.
    assert_in_readme(tables.split("| target |")[0])
    for target in results["targets"]:
        if target["target"].startswith(("TGT-random examples/s", "one ascent step")):
            assert f"{target['value']:.2f}x" in README, target


def test_batch_statistics_tables():
    assert_in_readme(benchmark("batch_statistics").format_tables(load("batch_statistics.json")))


def test_tuning_tables():
    overhead = load("tuning_overhead.json")
    median, plain = overhead["median_s"], overhead["median_s"]["plain_fit"]
    for name, key in (("plain fit (build + fit + validation)", "plain_fit"),
                      ("keras-tuner trial (same work)", "trial"),
                      ("best-model reload (`get_best_models`)", "reload")):
        assert_in_readme(f"| {name} | {median[key]:.2f} | {median[key] / plain:.2f} |")
    retrain = load("tuning_fashion_mnist_lt.json")["retrain"]
    for runs in retrain.values():
        balanced = [f"{r['balanced_accuracy']:.3f}" for r in runs]
        mean = np.mean([r["balanced_accuracy"] for r in runs])
        shots = " / ".join(f"{np.mean([r[f'{k}_shot_accuracy'] for r in runs]):.3f}"
                           for k in ("many", "medium", "few"))
        seconds = np.mean([r["train_seconds"] for r in runs])
        row = f"| {' | '.join(balanced)} | **{mean:.3f}** | {shots} | {seconds:.0f} |"
        assert row in README, f"README lacks the tuning retrain row {row}"


def test_train_table_and_hparams_headers():
    results = load("train_results.json")
    for name, run in results.items():
        row = (f"| {run['balanced_accuracy']:.3f} | {run['many_shot_accuracy']:.3f} | "
               f"{run['medium_shot_accuracy']:.3f} | {run['few_shot_accuracy']:.3f} | "
               f"{run['train_seconds']:.0f} | {run['wall_seconds']:.0f}")
        assert f"`{run['command']}` |" in README and row in README, (
            f"README's tgt-keras train row of {name} does not match docs/train_results.json")
        header = (ROOT / "hparams" / f"{name}.yaml").read_text().split("\nname:")[0]
        quoted = re.findall(r"balanced accuracy (0\.\d{3})", header)
        assert quoted == [f"{run['balanced_accuracy']:.3f}"], (
            f"hparams/{name}.yaml quotes {quoted}, its run measured "
            f"{run['balanced_accuracy']:.3f}")
        table = (ROOT / "hparams" / "README.md").read_text()
        assert f"balanced {run['balanced_accuracy']:.3f}" in table


@pytest.mark.parametrize("line", ["| one | 0.5 |"])
def test_a_missing_line_is_reported(line):
    with pytest.raises(AssertionError, match=re.escape(line)):
        assert_in_readme(line)


def test_text_seeds_table_and_targets():
    results = load("text_results.json")
    seeds = benchmark("text_seeds")
    assert_in_readme(seeds.format_summary(results["summary"]))
    for name, value in results["targets"].items():
        if "(points)" in name:
            quoted = f"{value:+.1f} points"
            assert quoted in README, f"README does not quote {name}: {quoted}"


def test_text_step_cost_table():
    variants = load("text_step_cost.json")["variants"]
    for name, label in (("KD-cached", "KD-cached (teacher logits cached once)"),
                        ("TGT-random", "TGT-random"), ("TGT-gradient K=1", "TGT-gradient K=1"),
                        ("TGT-gradient K=1 (held teacher)", "TGT-gradient K=1, teacher held")):
        entry = variants[name]
        line = (f"| {label} | {1000 * entry['step_seconds']:,.0f} | "
                f"{entry['ratio_to_kd_cached']:.0f} | {entry['peak_memory_mib']:.0f} |")
        assert line in README, f"README lacks the step-cost line: {line}"
