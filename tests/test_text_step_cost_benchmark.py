"""`benchmarks/text_step_cost.py` on its tiny random teachers (seconds, not the real benchmark)."""

import importlib.util
import json
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "text_step_cost.py"


def load_text_step_cost():
    """Imports `benchmarks/text_step_cost.py` (a script folder, not a package)."""
    name = "benchmarks_text_step_cost"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARK)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


EXPECTED_VARIANTS = [
    "KD", "KD-cached", "TGT-random",
    "TGT-gradient K=1", "TGT-gradient K=1 (held teacher)",
    "TGT-gradient K=2", "TGT-gradient K=2 (held teacher)",
]


def test_tiny_run_prints_every_variant_and_writes_seconds(tmp_path, capsys):
    bench = load_text_step_cost()
    assert list(bench.VARIANTS) == EXPECTED_VARIANTS
    out = tmp_path / "text_step_cost.json"
    results = bench.main(["--teachers", "tiny", "--rounds", "1", "--steps-per-round", "2",
                          "--json", str(out)])
    printed = capsys.readouterr().out

    # The table: a header with the ratio column, then one row per variant, in order.
    lines = printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| variant |"))
    assert "| vs KD-cached |" in lines[header] and "| labeler share |" in lines[header]
    rows = [line.split(" | ") for line in lines[header + 2:header + 2 + len(EXPECTED_VARIANTS)]]
    assert [row[0].lstrip("| ") for row in rows] == EXPECTED_VARIANTS
    ratios = {row[0].lstrip("| "): float(row[2]) for row in rows}
    assert ratios["KD-cached"] == 1.0
    assert all(r > 0 for r in ratios.values())
    assert "Labeler alone on the same batch" in printed

    saved = json.loads(out.read_text())
    assert out.with_suffix(".md").read_text().strip() == saved["table"]
    assert saved["teachers"] == "tiny"
    assert (saved["batch_size"], saved["sequence_length"]) == (32, 32)
    assert (saved["rounds"], saved["steps_per_round"]) == (1, 2)
    assert list(saved["variants"]) == EXPECTED_VARIANTS
    for name, row in saved["variants"].items():
        # Seconds, not milliseconds: a tiny step is well under a second.
        assert 0 < row["step_seconds"] < 5, name
        assert len(row["block_seconds"]) == 1, name
        assert 0 <= row["labeler_share"], name
        assert row["step_seconds"] == results["variants"][name]["step_seconds"]
    unit = saved["variants"]["KD-cached"]["step_seconds"]
    for name, row in saved["variants"].items():
        assert abs(row["ratio_to_kd_cached"] - row["step_seconds"] / unit) < 1e-9, name
    assert saved["variants"]["KD-cached"]["labeler_share"] == 0
    assert saved["variants"]["TGT-gradient K=2"]["labeler_calls"] == {
        "forward_ids": 1, "forward_backward_soft": 2}
    assert saved["variants"]["TGT-gradient K=2 (held teacher)"]["labeler_calls"] == {
        "forward_ids": 2, "forward_backward_soft": 0}
    for name in ("labeler forward (ids)", "labeler forward + backward (soft tokens)"):
        assert 0 < saved["labeler"][name]["seconds"] < 5, name
    # Peak memory: measured (a fresh BFC-allocator process on CPU) for every variant.
    assert all(row["peak_memory_mib"] > 0 for row in saved["variants"].values())
    assert "peak memory (MiB)" in lines[header]
