"""The scripts in `benchmarks/` on tiny teachers and data (seconds, not the real benchmark)."""

import importlib.util
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_classifier, make_decoder, make_encoder

from tgt_keras import KerasGenerator, KerasLabeler
from tgt_keras.apps.long_tail_demo import DemoConfig
from tgt_keras.data.long_tail import long_tail_counts
from tgt_keras.offline.teachers import OfflineTeachers

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(name: str):
    """Imports `benchmarks/<name>.py` (a script folder, not a package)."""
    module_name = f"benchmarks_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[module_name]


# --- equal_compute.py -----------------------------------------------------------------------

DEMO_SHAPE = (28, 28, 1)  # the demo's student and trainers are built for 28x28x1 images


def tiny_demo_teachers(tmp_path) -> OfflineTeachers:
    """Untrained 10-class teachers on 28x28x1 images (the demo's format)."""
    labeler = KerasLabeler(make_classifier(DEMO_SHAPE, 10, hidden=8, name="teacher"),
                           value_range=(0.0, 1.0))
    generator = KerasGenerator(make_encoder(4, DEMO_SHAPE), make_decoder(4, DEMO_SHAPE),
                               value_range=(-1.0, 1.0))
    return OfflineTeachers(labeler, generator, tmp_path, {"stub": True})


def tiny_long_tail_data(equal_compute):
    """About 50 long-tail training images and 40 test images, 10 classes."""
    rng = np.random.default_rng(0)
    counts = long_tail_counts(10, 10, 5)
    y_train = np.repeat(np.arange(10), counts).astype("int64")
    y_test = np.repeat(np.arange(10), 4).astype("int64")
    x_train = rng.uniform(0, 1, (len(y_train), *DEMO_SHAPE)).astype("float32")
    x_test = rng.uniform(0, 1, (len(y_test), *DEMO_SHAPE)).astype("float32")
    return equal_compute.LongTailData(x_train, y_train, x_test, y_test, counts)


def test_equal_compute_smoke_budgets_points_table_and_plot(tmp_path):
    # One TGT method and two seeds keep this short (each trainer's first step traces for
    # seconds); the rows of both methods are checked by hand below.
    equal_compute = load_benchmark("equal_compute")
    out = tmp_path / "equal_compute.json"
    config = equal_compute.BenchmarkConfig(
        steps=6, seeds=(0, 1), rounds=2, block_steps=3, evaluations=2,
        methods=("TGT-gradient",), out=str(out),
        demo=DemoConfig(batch_size=8, student_width=2, num_steps=1))
    lines = []
    results = equal_compute.run(config, teachers=tiny_demo_teachers(tmp_path),
                                data=tiny_long_tail_data(equal_compute), log=lines.append)

    saved = json.loads(out.read_text())
    blocks = saved["step_costs"]["block_seconds"]
    assert set(blocks) == {"KD-cached", "KD", "TGT-gradient"}
    assert all(len(v) == 2 and min(v) > 0 for v in blocks.values())
    budgets = {}
    for baseline in ("KD-cached", "KD"):
        ratio = statistics.median(blocks["TGT-gradient"]) / statistics.median(blocks[baseline])
        budgets[baseline] = max(1, round(6 * ratio))
        assert saved["step_costs"]["ratios"][baseline]["TGT-gradient"] == pytest.approx(ratio)
    assert saved["budgets"] == {b: {"TGT-gradient": n} for b, n in budgets.items()}
    assert sorted(saved["runs"]) == ["0", "1"]
    for runs in saved["runs"].values():
        for baseline, budget in budgets.items():
            assert runs[baseline]["steps"] == max(6, budget)
        assert runs["TGT-gradient"]["steps"] == 6
        for run in runs.values():
            steps = [p["step"] for p in run["points"]]
            seconds = [p["seconds"] for p in run["points"]]
            assert steps == sorted(set(steps)) and steps[-1] == run["steps"]
            assert all(b > a for a, b in zip(seconds, seconds[1:], strict=False))
            assert all(0.0 <= p["balanced"] <= 1.0 for p in run["points"])

    # The table is the mean and std over the seeds of each seed's row.
    rows = {r["method"]: r for r in saved["rows"]}
    name = "KD-cached (compute of TGT-gradient)"
    per_seed = [{r["method"]: r for r in saved["seed_rows"][s]}[name]["balanced"]
                for s in ("0", "1")]
    assert rows[name]["steps"] == budgets["KD-cached"]
    assert rows[name]["balanced"] == pytest.approx(np.mean(per_seed))
    assert rows[name]["balanced_std"] == pytest.approx(np.std(per_seed))
    assert rows["TGT-gradient"]["step_cost"] == pytest.approx(
        saved["step_costs"]["ratios"]["KD-cached"]["TGT-gradient"])
    assert table_methods(results["table"]) == [
        "KD-cached (demo's steps)", "KD (demo's steps)", name,
        "KD (compute of TGT-gradient)", "TGT-gradient"]
    assert " ± " in results["table"]
    assert any(line.startswith("TGT-gradient - KD-cached at equal compute") for line in lines)
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((tmp_path / "tensorboard" / "equal_compute").iterdir())
    assert saved["machine"]["cpu_count"] >= 1 and "TF_ENABLE_ONEDNN_OPTS" in saved["machine"]
    assert saved["config"]["steps"] == 6 and saved["teachers"] == {"stub": True}


def table_methods(table: str) -> list[str]:
    return [line.split(" | ")[0].lstrip("| ") for line in table.splitlines()[2:]]


def test_equal_compute_table_rows_for_both_tgt_methods():
    equal_compute = load_benchmark("equal_compute")

    def points(*steps, offset=0.0):
        return [{"step": s, "seconds": s / 10, "balanced": s / 100 + offset, "many": 0.0,
                 "medium": 0.0, "few": 0.0} for s in steps]

    config = equal_compute.BenchmarkConfig(steps=10, seeds=(0, 1), baselines=("KD-cached",))
    ratios = {"KD-cached": {"KD-cached": 1.0, "TGT-random": 1.5, "TGT-gradient": 2.5}}
    budgets = equal_compute.budgets_for(10, ratios, config)
    assert budgets == {"KD-cached": {"TGT-random": 15, "TGT-gradient": 25}}
    per_seed = [equal_compute.seed_rows(
        {"KD-cached": {"steps": 25, "points": points(10, 15, 25, offset=offset)},
         "TGT-random": {"steps": 10, "points": points(5, 10, offset=offset)},
         "TGT-gradient": {"steps": 10, "points": points(5, 10, offset=offset)}},
        config, budgets, ratios) for offset in (0.0, 0.02)]
    table = equal_compute.format_table(equal_compute.mean_rows(per_seed), "KD-cached", 2)
    assert table_methods(table) == [
        "KD-cached (demo's steps)", "KD-cached (compute of TGT-random)", "TGT-random",
        "KD-cached (compute of TGT-gradient)", "TGT-gradient"]
    assert table.splitlines()[3] == (
        "| KD-cached (compute of TGT-random) | 15 | 1.00 | 15 | 1.5 | 0.160 ± 0.010 | "
        "0.000 ± 0.000 | 0.000 ± 0.000 | 0.000 ± 0.000 |")
    assert table.splitlines()[6].startswith("| TGT-gradient | 10 | 2.50 | 25 | 1.0 | 0.110 ± ")


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "`steps` must be >= 1. Received: steps=0"),
    (["--block-steps", "1"], "`block_steps` must be >= 2. Received: block_steps=1"),
    (["--rounds", "-3"], "`rounds` must be >= 1. Received: rounds=-3"),
    (["--seeds", "1", "1"], "`seeds` must be distinct integers, at least one. Received: "
                            "seeds=[1, 1]"),
    (["--methods", "KD"], "`methods` must be distinct names from ('TGT-random', 'TGT-gradient')"),
    (["--baselines", "TGT-random"], "`baselines` must be distinct names from ('KD-cached', "
                                    "'KD')"),
])
def test_equal_compute_cli_rejects_bad_arguments(argv, message, capsys):
    equal_compute = load_benchmark("equal_compute")
    with pytest.raises(SystemExit) as exit_info:
        equal_compute.parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_equal_compute_config_validation_and_smoke_settings():
    equal_compute = load_benchmark("equal_compute")
    with pytest.raises(ValueError, match=r"`steps` must be >= 1\. Received: steps=0"):
        equal_compute.BenchmarkConfig(steps=0)
    with pytest.raises(ValueError, match=r"`steps` must be an integer\. Received: steps=2\.5"):
        equal_compute.BenchmarkConfig(steps=2.5)
    smoke = equal_compute.parse_args(["--smoke", "--steps", "8"])
    assert smoke.steps == 8 and smoke.rounds == equal_compute.SMOKE["rounds"]
    assert smoke.seeds == (0,) and smoke.unit == "KD-cached"
    assert smoke.demo_config(3).steps == 8 and smoke.demo_config(3).seed == 3
    assert equal_compute.evaluation_steps(10, 3, extra=[4, 99]) == [3, 4, 7, 10]


# --- step_throughput.py ---------------------------------------------------------------------


def test_forward_flops_counts_matmuls_and_convolutions_by_hand():
    import keras
    import tensorflow as tf

    step = load_benchmark("step_throughput")
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, use_bias=False)])
    assert step.forward_flops(dense, tf.TensorSpec([1, 4])) == 2 * 4 * 3
    conv = keras.Sequential([keras.Input((6, 6, 2)),
                             keras.layers.Conv2D(5, 3, padding="same", use_bias=False)])
    assert step.forward_flops(conv, tf.TensorSpec([1, 6, 6, 2])) == 2 * 3 * 3 * 2 * 5 * 6 * 6


def test_step_flops_follow_the_documented_counts():
    step = load_benchmark("step_throughput")
    f = {"student": 10, "labeler": 100, "encoder": 7, "decoder": 30}
    assert step.step_flops("KD", f, batch=2) == 2 * (100 + 3 * 10)
    assert step.step_flops("exploration pass", f, batch=2) == 2 * 2 * (30 + 100 + 10)
    synthetic = 30 + 100 + 2 * 3 * 10  # final decode + label, student on 2 batches
    assert step.step_flops("TGT-random", f, batch=2) == 2 * synthetic
    assert step.step_flops("TGT-random (no cache)", f, batch=2) == 2 * (synthetic + 7 + 100)
    assert step.step_flops("TGT-gradient K=4", f, batch=2) == 2 * (4 * 2 * 140 + synthetic)


def test_targets_are_the_measured_ratios():
    step = load_benchmark("step_throughput")
    ms = {"KD": 10.0, "TGT-random (no cache)": 25.0, "TGT-random": 16.0,
          "TGT-gradient K=1": 30.0, "TGT-gradient K=2": 40.0, "TGT-gradient K=4": 60.0,
          "exploration pass": 8.0}
    rows = [{"variant": v, "jit": jit, "step_ms": t / (2 if jit else 1),
             "examples_per_second": 64e3 / (t / (2 if jit else 1)), "fraction_of_matmul": 0.7}
            for v, t in ms.items() for jit in (False, True)]
    results = {"configs": {"demo": {"rows": rows}}}
    targets = {t["target"]: t for t in step.targets(results, [False, True])}
    assert targets["TGT-random examples/s >= 0.5x KD's"]["value"] == pytest.approx(10 / 16)
    # (60 - 30) / 3 = 10 ms per ascent step against an 8 ms exploration pass.
    ascent = targets["one ascent step <= 1.2x an exploration pass"]
    assert ascent["value"] == pytest.approx(1.25) and not ascent["met"]
    assert targets["XLA >= 1.3x faster (KD)"]["value"] == pytest.approx(2.0)
    assert targets["TGT-gradient K=4 >= 60% of matmul FLOP/s"]["met"]


def test_step_throughput_rejects_bad_arguments(capsys):
    step = load_benchmark("step_throughput")
    with pytest.raises(SystemExit):
        step.parse_args(["--rounds", "0"])
    assert "`--rounds` must be >= 1. Received: 0" in capsys.readouterr().err


def test_step_throughput_runs_end_to_end_on_tiny_models(tmp_path):
    step = load_benchmark("step_throughput")
    out = tmp_path / "step.json"
    results = step.main(["--configs", "tiny", "--jit", "off", "--rounds", "2", "--no-memory",
                         "--no-onednn", "--out", str(out)])
    assert json.loads(out.read_text())["configs"].keys() == {"tiny"}
    rows = results["configs"]["tiny"]["rows"]
    assert [r["variant"] for r in rows] == [*step.VARIANTS, "exploration pass"]
    for row in rows:
        assert len(row["block_ms"]) == 2 and row["step_ms"] == pytest.approx(
            statistics.median(row["block_ms"]))
        assert row["examples_per_second"] == pytest.approx(step.BATCH_SIZE / row["step_ms"] * 1e3)
        assert 0 < row["fraction_of_matmul"]
    assert {t["target"] for t in results["targets"]} >= {
        "TGT-random examples/s >= 0.5x KD's", "one ascent step <= 1.2x an exploration pass"}
    table = out.with_suffix(".md").read_text()
    assert "| TGT-gradient K=4 | off |" in table and "| target |" in table


# --- tuning_overhead.py ---------------------------------------------------------------------


def test_tuning_overhead_runs_end_to_end_on_the_smoke_config(tmp_path, capsys):
    bench = load_benchmark("tuning_overhead")
    out = tmp_path / "overhead.json"
    assert bench.main(["--config", "tiny", "--steps", "2", "--rounds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {k: len(v) for k, v in result["seconds"].items()} == {
        "plain_fit": 1, "trial": 1, "reload": 1}
    median = result["median_s"]
    assert result["trial_over_plain"] == pytest.approx(median["trial"] / median["plain_fit"])
    printed = capsys.readouterr().out
    assert f"| keras-tuner trial (same work) | {median['trial']:.2f} | " in printed
    assert "| precompute of the 8 training images (once per search) |" in printed


def test_tuning_overhead_rejects_bad_arguments(capsys):
    bench = load_benchmark("tuning_overhead")
    with pytest.raises(SystemExit):
        bench.main(["--steps", "0"])
    assert "must be an integer >= 1. Received: 0" in capsys.readouterr().err


# --- batch_statistics.py --------------------------------------------------------------------


def test_batch_statistics_timing_smoke(tmp_path):
    bench = load_benchmark("batch_statistics")
    out = tmp_path / "bs.json"
    results = bench.main(["--smoke", "--no-accuracy", "--rounds", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert set(saved["timing"]["step_ms"]) == {"KD", *bench.TIMED}
    assert all(len(v) == 1 and v[0] > 0 for v in saved["timing"]["samples_ms"].values())
    assert "accuracy" not in saved and results["table"] == saved["table"]
    assert out.with_suffix(".md").read_text().startswith("Step cost, `tiny` configuration")


def test_batch_statistics_tables_by_hand():
    bench = load_benchmark("batch_statistics")
    ms = {"KD": 10.0, "TGT-random (joint)": 20.0, "TGT-random (separate)": 25.0}
    summary = {"balanced_accuracy": {"mean": 0.8, "std": 0.01},
               **{f"{k}_shot_accuracy": {"mean": 0.5, "std": 0.0}
                  for k in ("many", "medium", "few")},
               "train_seconds": {"mean": 12.4, "std": 1.0}}
    table = bench.format_tables({
        "timing": {"config": "large", "batch_size": 64, "rounds": 5, "block_steps": 2,
                   "step_ms": ms},
        "accuracy": {"hparams": "hparams/x.yaml", "student_width": 8, "seeds": [0, 1],
                     "summary": {"TGT-gradient (joint)": summary}}}).splitlines()
    assert "| TGT-random (separate) | 25.0 | 2.50 | 1.25 |" in table
    assert "| TGT-random (joint) | 20.0 | 2.00 | - |" in table
    assert ("| TGT-gradient (joint) | 0.800 ± 0.010 | 0.500 ± 0.000 | 0.500 ± 0.000 | "
            "0.500 ± 0.000 | 12 |") in table
