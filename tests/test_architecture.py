"""The folder layout is the architecture: no module imports from a layer above its own.

From the bottom: the training core (distiller, exploration, losses, the modality seam and the
teacher interfaces), the modalities, the teacher adapters, the data loaders, the teachers the
package trains itself, reporting (plots, the monitor callback), experiments, tuning, the
applications (demos, studies) and the command line (`cli`, `__main__`). `progress` and
`distribute` are utilities that import nothing of ours.
"""

import ast
from pathlib import Path

import pytest

import tgt_keras

ROOT = Path(tgt_keras.__file__).parent
LAYERS = ("core", "modalities", "teachers", "data", "offline", "reporting", "experiments",
          "tuning", "apps", "cli", "__main__")
UTILITIES = ("progress", "distribute")


def _layer(module: str) -> int | None:
    """The layer of a dotted `tgt_keras...` module; None for the package root."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if parts[1] in UTILITIES:
        return -1
    return LAYERS.index(parts[1])


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(relative.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        yield name, path


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


@pytest.mark.parametrize("name, path", list(_modules()), ids=lambda v: str(v))
def test_no_module_imports_from_a_higher_layer(name, path):
    own = _layer(name)
    if own is None:  # tgt_keras/__init__.py gathers the public API from every layer
        return
    upward = [f"line {line}: {module}" for module, line in _imports(path)
              if module.startswith("tgt_keras.") and (_layer(module) or 0) > own]
    assert not upward, f"{name} (layer {LAYERS[own] if own >= 0 else 'utility'}) imports " \
                       f"from a higher layer: {upward}"


def test_every_package_has_a_layer():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in ROOT.glob("*.py")} - {"__init__"}
    assert packages | modules <= set(LAYERS) | set(UTILITIES)
