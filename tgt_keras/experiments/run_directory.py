"""A run directory: which process writes where, whether a run there resumes, what
`overwrite` deletes, and the files (`config.yaml`, `history.csv`) read and written atomically.

See `tgt_keras.experiments.train` for the layout of a run directory and
`tgt_keras.experiments.train.run_experiment` for the rules on resuming and overwriting.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from pathlib import Path

import tensorflow as tf
import yaml

from tgt_keras.experiments.config import ExperimentConfig

#: First line of a smoke run's config.yaml (a YAML comment: the file still loads as hparams).
SMOKE_HEADER = "# smoke run (tgt-keras train --smoke): stub teachers, random images\n"
#: The same for a text experiment.
TEXT_SMOKE_HEADER = "# smoke run (tgt-keras train --smoke): stub teachers, random token ids\n"
_SMOKE_PREFIX = "# smoke run (tgt-keras train --smoke)"
#: What a run writes into its directory (plus samples_step*.png): what `overwrite` deletes.
RUN_OUTPUTS = ("metrics.json", "history.csv", "backup", "tensorboard", "student.keras",
               "per_class_accuracy.png", "examples.md", "config.yaml")


def smoke_header(config: ExperimentConfig) -> str:
    """`SMOKE_HEADER`, or `TEXT_SMOKE_HEADER` for a text experiment."""
    from tgt_keras.experiments.config import is_text

    return TEXT_SMOKE_HEADER if is_text(config) else SMOKE_HEADER


class RunDirectoryError(Exception):
    """The run directory holds a finished run, or an interrupted run of another config."""


def worker_directory(out: Path, strategy) -> Path:
    """Where this process writes: `out` for the chief, `out/workers/<type>_<id>` otherwise.

    Under `MultiWorkerMirroredStrategy` every worker trains the same model; only the chief
    (the `chief` task, or worker 0 when there is none) writes the run directory, and each other
    worker keeps its own backup and outputs in a subdirectory, so workers never write the same
    file and each can resume from its own backup.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return out
    return out / _worker_subdirectory(resolver.task_type, resolver.task_id,
                                      resolver.cluster_spec().as_dict())


def _worker_subdirectory(task_type: str | None, task_id: int | None, cluster: dict) -> str:
    """"" for the chief, else "workers/<type>_<id>"."""
    chief = task_type == "chief" or (task_type == "worker" and not task_id
                                     and "chief" not in cluster)
    return "" if chief or task_type is None else f"workers/{task_type}_{task_id}"


def _check_run_directory(out: Path, config: ExperimentConfig, smoke: bool,
                         overwrite: bool) -> bool:
    """Whether to resume the run in `out` (see `run_experiment`); reads, never writes."""
    if overwrite:
        return False
    if (out / "metrics.json").exists():
        raise RunDirectoryError(
            f"{out} holds a finished run ({out / 'metrics.json'} exists); nothing was changed. "
            "Pass --overwrite to delete its outputs and train again, or choose another "
            "--output-dir."
        )
    saved = out / "config.yaml"
    if not saved.exists():
        leftovers = [name for name in RUN_OUTPUTS if (out / name).exists()]
        if leftovers:  # a backup/ there would be restored into a run of any config
            raise RunDirectoryError(
                f"{out} holds outputs of a run without its config.yaml ({', '.join(leftovers)})"
                "; nothing was changed. Pass --overwrite to delete them and start fresh, or "
                "choose another --output-dir."
            )
        return False
    text, values = read_saved_settings(saved, "an interrupted run")
    before = {**config_defaults(), **values, "smoke": text.startswith(_SMOKE_PREFIX)}
    # Through YAML, as the saved side went: the same types on both sides.
    now = {**yaml.safe_load(yaml.safe_dump(config.to_dict())), "smoke": smoke}
    changes = differences(before, now)
    if changes:
        raise RunDirectoryError(
            f"{out} holds an interrupted run of a different config, so it cannot be resumed "
            f"(differing fields: {changes}). Pass --overwrite to discard it and start fresh, "
            "or choose another --output-dir."
        )
    return True


def config_defaults() -> dict:
    """The defaults of `ExperimentConfig`'s fields: what a config saved before a field existed
    meant by leaving it out."""
    return {f.name: f.default for f in dataclasses.fields(ExperimentConfig)
            if f.default is not dataclasses.MISSING}


def read_saved_settings(saved: Path, what: str) -> tuple[str, dict]:
    """The text of a saved YAML mapping (a run's config.yaml, a search's tune.yaml) and the
    mapping; `RunDirectoryError` naming `what` the directory holds when it cannot be read."""
    text = saved.read_text()
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        values = error
    if not isinstance(values, dict):
        raise RunDirectoryError(
            f"{saved.parent} holds {what} whose {saved.name} cannot be read ({values!r}). "
            "Pass --overwrite to discard it and start fresh, or choose another --output-dir."
        )
    return text, values


def differences(before: dict, now: dict) -> str:
    """`"key: saved X, now Y; ..."` for every key whose value differs ("" if none does)."""
    return "; ".join(f"{k}: saved {before.get(k)!r}, now {now.get(k)!r}"
                     for k in dict.fromkeys([*now, *before]) if before.get(k) != now.get(k))


def delete_outputs(paths) -> None:
    """Deletes these files and directories (a symlink itself, never its target)."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _delete_run_outputs(out: Path) -> None:
    """Deletes what a run writes (`RUN_OUTPUTS`, `samples_step*.png`) and nothing else."""
    delete_outputs([*(out / name for name in RUN_OUTPUTS), *out.glob("samples_step*.png")])


def _backed_up_epoch(out: Path) -> int:
    """Epochs finished according to BackupAndRestore's metadata (0 without a backup)."""
    path = out / "backup" / "training_metadata.json"
    if not path.exists():
        return 0
    return int(json.loads(path.read_text())["epoch"])


def _truncate_history(path: Path, epochs: int) -> None:
    """Keeps the header and the rows of the first `epochs` epochs of a `CSVLogger` file.

    A row written for an epoch that the backup does not hold (killed in between), or a row cut
    short by the kill, is dropped: that epoch is trained, and logged, again.
    """
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    if not lines:
        return
    fields = len(next(csv.reader(lines[:1])))
    kept = lines[:1]
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        if (line.endswith("\n") and len(row) == fields and row[0].isdigit()
                and int(row[0]) < epochs):
            kept.append(line)
    if kept != lines:
        _write_atomically(path, "".join(kept))


def _read_history(path: Path) -> dict[str, list[float]]:
    """`{metric: [one value per epoch]}` from a `CSVLogger` file (all epochs, across restarts)."""
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in (rows[0] if rows else {}) if k != "epoch"]
    # CSVLogger adds a `val_` column per metric even without validation data: all "NA".
    return {k: [_float(row[k]) for row in rows] for k in keys
            if any(row[k] != "NA" for row in rows)}


def _float(value: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # CSVLogger writes "NA" for a missing value
        return float("nan")


def _write_atomically(path: Path, text: str) -> None:
    """Writes `text` to `path` through a temporary file, so a kill leaves old or new, not half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
