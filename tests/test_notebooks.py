"""Every notebook in `examples/`: committed clean, and it runs end to end in offline mode.

Each `examples/*.ipynb` is picked up automatically. The execution test starts a Jupyter kernel
(nbclient + ipykernel) on the Python that runs pytest, with `TGT_KERAS_NOTEBOOK_MODE=offline` and
a `tmp_path` as the working directory, so the notebook's relative outputs land there. A cell
prepended to the in-memory copy checks which Python, folder and mode the kernel got. The offline
teachers come from the cache (`~/.cache/tgt_keras`); on first use they are trained, which takes
minutes, hence the generous per-cell timeout.
"""

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
CELL_TIMEOUT_S = 900

#: Files (relative to the working directory) a notebook must write in offline mode. A notebook
#: without an entry must still run without error; add one to check what it writes.
EXPECTED_FILES = {
    "quickstart_tpu": [
        "runs/notebooks/quickstart_tpu/explored.png",
        "runs/notebooks/quickstart_tpu/student.keras",
    ],
    "long_tail_benchmark": [
        "runs/notebooks/long_tail_benchmark/results.json",
        "runs/notebooks/long_tail_benchmark/accuracy.png",
        "runs/notebooks/long_tail_benchmark/per_class_accuracy.png",
        "runs/notebooks/long_tail_benchmark/samples.png",
    ],
    "tuning": [
        "runs/notebooks/tuning/library_api_objective.png",
        "runs/notebooks/tuning/library_api_best_student.keras",
        "runs/notebooks/tuning/tgt_keras_tune/best.yaml",
        "runs/notebooks/tuning/tgt_keras_tune/trials.md",
        "runs/notebooks/tuning/tgt_keras_tune/objective_vs_knobs.png",
    ],
}

# An absolute path: /work, /home, ... not inside a word, URL or relative path; or a drive letter.
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~/:-])/(?:work|home|tmp|root|Users|mnt|opt|var|usr)\b|(?<![A-Za-z])[A-Za-z]:\\"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

KERNEL_CHECK = """\
import json, os, sys
from tgt_keras.apps.notebook import resolve_mode
print(json.dumps({"prefix": sys.prefix, "executable": sys.executable, "cwd": os.getcwd(),
                  "mode": resolve_mode()}))"""


def _strings(value):
    """Every string in a JSON-like value (cell sources, metadata, ...)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_there_are_notebooks():
    assert {"quickstart_tpu", "long_tail_benchmark", "tuning"} <= {path.stem for path in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code_cells
    for index, cell in enumerate(code_cells):
        assert cell.outputs == [], f"code cell {index} has outputs: clear them before committing"
        assert cell.execution_count is None, f"code cell {index} has an execution count"
    found = sorted({match.group(0) for text in _strings(nb) for match in
                    ABSOLUTE_PATH.finditer(text)})
    assert not found, f"absolute paths in {path.name}: {found}; write relative paths"


def test_the_absolute_path_pattern():
    for text in ("/work/main", "open('/home/me/x')", "cd /tmp", "C:\\Users\\me"):
        assert ABSOLUTE_PATH.search(text), text
    for text in ("runs/notebooks/x", "https://github.com/tgt-keras/tgt_keras", "~/.cache/tgt_keras",
                 "tests/test_notebooks.py", "hparams/imagenet_lt.yaml", "a/tmp/b"):
        assert not ABSOLUTE_PATH.search(text), text


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs_offline(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TGT_KERAS_NOTEBOOK_MODE", "offline")  # the kernel inherits it
    nb = nbformat.read(path, as_version=4)
    check = nbformat.v4.new_code_cell(KERNEL_CHECK)
    check.pop("id", None)
    nb.cells.insert(0, check)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=120,
                            kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, if any cell raises
    print(f"{path.name}: executed offline in {time.perf_counter() - start:.0f} s")

    kernel = json.loads(nb.cells[0].outputs[0]["text"])
    assert kernel["prefix"] == sys.prefix, "the kernel must run the Python that runs pytest"
    assert kernel["executable"] == sys.executable
    assert Path(kernel["cwd"]).resolve() == tmp_path.resolve()
    assert kernel["mode"] == "offline"
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells)
    assert not [out for cell in code_cells for out in cell.outputs if out.output_type == "error"]

    for name in EXPECTED_FILES.get(path.stem, []):
        assert (tmp_path / name).is_file(), f"{path.name} did not write {name}"
        assert (tmp_path / name).stat().st_size > 0, f"{name} is empty"
    for png in tmp_path.rglob("*.png"):
        assert png.read_bytes().startswith(PNG_SIGNATURE), f"{png} is not a PNG"
    if path.stem in EXPECTED_FILES:
        shown = [out for cell in code_cells for out in cell.outputs
                 if "image/png" in out.get("data", {})]
        assert shown, f"{path.name} displayed no image"
