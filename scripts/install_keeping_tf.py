"""Installs tgt_keras without replacing the runtime's TensorFlow (a Colab TPU's `tensorflow-tpu`).

pip knows packages by distribution name. tgt_keras, tensorflow-text and tf-keras (a dependency of
tensorflow-hub) all require the distribution `tensorflow`, so where the installed TensorFlow
comes from another one (`tensorflow-tpu` on a Colab TPU runtime, `tensorflow-cpu`, ...) a plain
`pip install tgt_keras` adds the `tensorflow` wheel, which overwrites the TPU build: TensorFlow
then falls back to the CPU. This script installs instead:

- no TensorFlow installed: `pip install PACKAGE`, which brings the newest supported `tensorflow`;
- TensorFlow 2.20 or 2.21 from the distribution `tensorflow`: `pip install PACKAGE
  tensorflow==<installed version>`, which keeps it;
- TensorFlow 2.20 or 2.21 from another distribution: PACKAGE without its dependencies, then asks
  pip (`--dry-run --report`) what PACKAGE's requirements need with `tensorflow==X.Y.*` standing
  for the installed build, and installs all of that but `tensorflow` itself, without
  dependencies: tensorflow-text and tf-keras come in the runtime's X.Y;
- any other TensorFlow: stops with a message before installing anything.

It needs only the standard library and pip, because it runs before tgt_keras and its
dependencies exist: the example notebooks' first cell runs it from a clone of the repository.

Usage: python scripts/install_keeping_tf.py [PACKAGE]
    PACKAGE: what pip installs (a folder, a wheel, a `git+https://...` URL); default: the
    repository this script is in.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

#: TensorFlow minor versions tgt_keras supports: setup.py's `tensorflow>=2.20,<2.22`.
SUPPORTED_TF = ("2.20", "2.21")
DISTRIBUTION = "tgt_keras"
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class UnsupportedTensorFlow(RuntimeError):
    """The installed TensorFlow is outside `SUPPORTED_TF`, or installed twice."""


def normalize(name: str) -> str:
    """A distribution name as pip compares it (PEP 503): `TF_Keras` -> `tf-keras`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_tensorflow(distributions: dict[str, str] | None = None) -> tuple[str, str] | None:
    """The distribution and version that provide the module `tensorflow`, or None.

    Args:
        distributions: name -> version of the distributions that provide the module; by default
            found with `importlib.metadata` (tests pass their own).

    Raises:
        UnsupportedTensorFlow: if several distributions provide it (they share one folder, so
            one overwrote the other).
    """
    if distributions is None:
        names = set(importlib.metadata.packages_distributions().get("tensorflow", []))
        distributions = {name: importlib.metadata.version(name) for name in names}
    if len(distributions) > 1:
        listed = ", ".join(f"{name} {version}" for name, version in sorted(distributions.items()))
        raise UnsupportedTensorFlow(
            f"Several TensorFlow distributions are installed: {listed}. They share the folder "
            "`tensorflow`, so one has overwritten the other (an earlier `pip install` replaced "
            "the runtime's own build?). Start from a fresh runtime (Colab: Runtime > Disconnect "
            "and delete runtime) and run this again."
        )
    return next(iter(distributions.items()), None)


def supported_minor(distribution: str, version: str) -> str:
    """The "X.Y" of a supported TensorFlow `version`.

    Raises:
        UnsupportedTensorFlow: for a version outside `SUPPORTED_TF`, with what to do.
    """
    match = re.match(r"(\d+)\.(\d+)", version)
    minor = f"{match.group(1)}.{match.group(2)}" if match else version
    if minor not in SUPPORTED_TF:
        raise UnsupportedTensorFlow(
            f"tgt_keras supports TensorFlow {' and '.join(SUPPORTED_TF)}; this runtime has "
            f"{distribution} {version}. Installing tgt_keras would replace it (on a TPU runtime "
            "by a TensorFlow that cannot see the TPU), so nothing was installed. Use a runtime "
            f"with TensorFlow {' or '.join(SUPPORTED_TF)} (the newest `tensorflow-tpu` on PyPI "
            f"is 2.20), or, without a TPU, install one first: "
            f"pip install 'tensorflow>={SUPPORTED_TF[0]},<{_next_minor(SUPPORTED_TF[-1])}'"
        )
    return minor


def _next_minor(minor: str) -> str:
    major, number = minor.split(".")
    return f"{major}.{int(number) + 1}"


def pip_install(*args: str) -> list[str]:
    """The command `pip install ARGS` for this Python."""
    return [sys.executable, "-m", "pip", "install", "--quiet", *args]


def install_command(tensorflow: tuple[str, str] | None, package: str) -> list[str]:
    """The first pip command: the whole install, or PACKAGE alone around another build.

    Args:
        tensorflow: `installed_tensorflow()`: (distribution, version) or None.
        package: what pip installs.

    Returns:
        `pip install PACKAGE` without TensorFlow; `pip install PACKAGE tensorflow==VERSION` for
        the distribution `tensorflow`; `pip install --no-deps PACKAGE` for any other one (then
        `requirements_for`, `dry_run_command` and `pins_from_report` install the rest).

    Raises:
        UnsupportedTensorFlow: for a TensorFlow outside `SUPPORTED_TF`.
    """
    if tensorflow is None:
        return pip_install(package)
    distribution, version = tensorflow
    supported_minor(distribution, version)
    if normalize(distribution) == "tensorflow":
        return pip_install(package, f"tensorflow=={version}")
    return pip_install("--no-deps", package)


def requirements_for(requires: list[str], minor: str) -> list[str]:
    """PACKAGE's requirements (not its extras'), `tensorflow==MINOR.*` for its TensorFlow one.

    Args:
        requires: `importlib.metadata.requires(DISTRIBUTION)`.
        minor: the installed TensorFlow's "X.Y".
    """
    kept = []
    for requirement in requires:
        if re.search(r"""\bextra\s*==""", requirement.partition(";")[2]):
            continue
        match = _NAME.match(requirement)
        if match and normalize(match.group(1)) == "tensorflow":
            requirement = f"tensorflow=={minor}.*"
        kept.append(requirement)
    return kept


def dry_run_command(requirements: list[str], report: str) -> list[str]:
    """Asks pip what `requirements` need beside what is installed, as a JSON report."""
    return pip_install("--dry-run", "--report", report, *requirements)


def pins_from_report(report: dict) -> list[str]:
    """`name==version` for each distribution pip's report would install, but `tensorflow`."""
    pins = []
    for item in report["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if normalize(name) != "tensorflow":
            pins.append(f"{name}=={version}")
    return pins


def _run(command: list[str]) -> None:
    shown = ["pip", *command[3:]] if command[:3] == [sys.executable, "-m", "pip"] else command
    print("[install]", " ".join(shown), flush=True)
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if len(args) > 1:
        print("usage: python scripts/install_keeping_tf.py [PACKAGE]", file=sys.stderr)
        return 2
    package = args[0] if args else str(Path(__file__).resolve().parent.parent)
    if Path(package).is_dir():  # pip reads a bare `folder` as a name on PyPI
        package = str(Path(package).resolve())
    try:
        tensorflow = installed_tensorflow()
        command = install_command(tensorflow, package)
    except UnsupportedTensorFlow as error:
        print(f"[install] ERROR: {error}", file=sys.stderr)
        return 1
    if tensorflow is None:
        print("[install] No TensorFlow installed: pip brings the `tensorflow` wheel (CPU/GPU; on a "
              "TPU runtime install tensorflow-tpu 2.20 first, then run this again).")
    else:
        print(f"[install] Keeping the runtime's TensorFlow: {tensorflow[0]} {tensorflow[1]}.")
    try:
        _run(command)
        if tensorflow is None or normalize(tensorflow[0]) == "tensorflow":
            return 0
        minor = supported_minor(*tensorflow)
        requirements = requirements_for(importlib.metadata.requires(DISTRIBUTION) or [], minor)
        with tempfile.TemporaryDirectory() as folder:
            report_path = str(Path(folder) / "report.json")
            _run(dry_run_command(requirements, report_path))
            pins = pins_from_report(json.loads(Path(report_path).read_text()))
        if pins:
            _run(pip_install("--no-deps", *pins))
    except subprocess.CalledProcessError as error:
        print(f"[install] ERROR: pip failed (exit status {error.returncode}): see above.",
              file=sys.stderr)
        return 1
    print(f"[install] Done. `pip check` will say that tgt_keras, tensorflow-text and tf-keras "
          f"require `tensorflow`, which is not installed: {tensorflow[0]} {tensorflow[1]} is "
          "that TensorFlow.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
