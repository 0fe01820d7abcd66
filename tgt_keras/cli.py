"""The `tgt-keras` command line.

    tgt-keras demo [--task image|text] [--quick] [--steps N] [--output-dir DIR] [--seed S]
                   [--methods ...]
    tgt-keras study sample-size [--hparams FILE] [--set key=value ...] [--sizes 5 10 ...]
                                [--seeds 0 1 2] [--eval-every N] [--patience N]
                                [--min-steps N] [--max-steps N] [--output-dir DIR]
    tgt-keras teachers [--force]
    tgt-keras train --hparams hparams/X.yaml [--set key=value ...] [--smoke] [--output-dir DIR]
                    [--tpu NAME] [--overwrite]
    tgt-keras tune --hparams hparams/X.yaml [--tuner random|bayesian|hyperband] [--max-trials N]
                   [--space FILE] [--set key=value ...] [--smoke] [--output-dir DIR] [--tpu NAME]
                   [--overwrite]

`tune` searches TGT's knobs with keras-tuner (`tgt_keras.tuning.run_tuning`); started again on
the same directory with the same settings it resumes the search.

Both run image (long-tail) and text (few-label) experiments: the dataset of the hparams file
decides (`tgt_keras.experiments.config`).

`train` picks its `tf.distribute` strategy with `tgt_keras.distribute.pick_strategy` and resumes
an interrupted run directory; it exits with status 1 and a message, touching nothing, when the
run directory holds a finished run (or an interrupted run of another config) and `--overwrite` is
not given.

A bad request (a missing, unreadable or invalid file, an unknown field, a bad value or type, a
malformed `--set`, options that do not fit together) prints one line, `tgt-keras <command>:
error: <where>: <what>`, `<where>` being the file or the `--set` item the value came from, and
exits with status 2 before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

import yaml

from tgt_keras.apps.long_tail_demo import ALL_METHODS, METHODS, DemoConfig

DEMO_TASKS = ("image", "text")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tgt-keras", description="Teacher Guided Training for Keras 3 / TensorFlow 2."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="one-hot vs KD vs TGT, offline: long-tail Fashion-MNIST (default) or few-label "
             "text classification (--task text)",
    )
    defaults = DemoConfig()
    demo.add_argument("--task", choices=DEMO_TASKS, default="image",
                      help="image: long-tail Fashion-MNIST (~2 min on 2 cores); text: Rotten "
                           "Tomatoes with 2.5%% of the labels (see README)")
    demo.add_argument("--quick", action="store_true",
                      help="a few steps per method: checks the pipeline, not the method")
    demo.add_argument("--steps", type=int, default=None,
                      help=f"training steps per method (default {defaults.steps} for images)")
    demo.add_argument("--epochs", type=int, default=None,
                      help="Keras epochs the steps are split into")
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument("--output-dir", default=None,
                      help=f"default {defaults.output_dir} (images), runs/text_demo (text)")
    demo.add_argument("--methods", nargs="+", default=None, metavar="METHOD",
                      help=f"methods to train; images: {', '.join(ALL_METHODS)} (default "
                           f"{' '.join(METHODS)}; KD-cached is KD on the teacher's logits "
                           "cached once); text: see `tgt_keras.apps.text_demo`")
    train = sub.add_parser(
        "train", help="run one experiment of hparams/",
        description="Run one experiment of hparams/ into a run directory. Started again on the "
                    "run directory of an interrupted run with the same config, it resumes from "
                    "the last finished epoch; on a finished run (metrics.json exists) it refuses "
                    "and changes nothing unless --overwrite is given.",
    )
    train.add_argument("--hparams", required=True, help="an hparams/<experiment>.yaml file")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a field (repeatable)")
    train.add_argument("--smoke", action="store_true",
                       help="a few steps on random images (token ids for text) with stub "
                            "teachers (checks the wiring): one epoch of 2 steps, unless "
                            "num_epochs / steps_per_epoch are given with --set")
    train.add_argument("--output-dir", default=None,
                       help="run directory (default runs/<experiment name>[-smoke]); an "
                            "interrupted run there with the same config is resumed")
    train.add_argument("--tpu", default=None, metavar="NAME",
                       help="TPU name or grpc:// address to train on (default: TPU_NAME / "
                            "COLAB_TPU_ADDR or a local TPU, else several workers from TF_CONFIG, "
                            "several GPUs, or one device); an unusable TPU falls back with a "
                            "warning. batch_size is the global batch over all replicas")
    train.add_argument("--overwrite", action="store_true",
                       help="delete the run directory's outputs (a finished or interrupted run) "
                            "and train from scratch")
    tune = sub.add_parser(
        "tune", help="search TGT's knobs with keras-tuner; write the best as a new hparams file",
        description="Search sigma, step size, steps, loss weights, temperature, synthetic "
                    "examples per real one and the learning rate around an hparams file, "
                    "maximising the student's validation balanced accuracy. Writes "
                    "best.yaml (a new hparams file), trials.csv / trials.md and "
                    "objective_vs_knobs.png. Started again on the same --output-dir with the "
                    "same settings, it resumes (a larger --max-trials extends the search).",
    )
    tune.add_argument("--hparams", required=True, help="the base hparams/<experiment>.yaml")
    tune.add_argument("--tuner", default="bayesian", choices=["random", "bayesian", "hyperband"],
                      help="keras-tuner tuner (default %(default)s)")
    tune.add_argument("--max-trials", type=int, default=None,
                      help="trials of random / bayesian (default 10); hyperband's budget is "
                           "num_epochs instead")
    tune.add_argument("--space", default=None, metavar="FILE",
                      help="YAML search space (default: tgt_keras.tuning.default_search_space)")
    tune.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override a field of --hparams (repeatable)")
    tune.add_argument("--smoke", action="store_true",
                      help="random images (token ids for text) and stub teachers, one epoch "
                           "of 2 steps per trial")
    tune.add_argument("--output-dir", default=None,
                      help="search directory (default runs/tune/<experiment name>[-smoke])")
    tune.add_argument("--tpu", default=None, metavar="NAME", help="as for train")
    tune.add_argument("--overwrite", action="store_true",
                      help="delete a previous search in --output-dir and search afresh")
    study = sub.add_parser("study", help="studies on the offline Fashion-MNIST task")
    study.add_argument("kind", choices=["sample-size"])
    study.add_argument("--hparams", default=None,
                       help="take the TGT settings from this hparams file (fashion_mnist_lt); "
                            "default: the demo's settings")
    study.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a field of --hparams (repeatable)")
    study.add_argument("--sizes", type=int, nargs="+", default=None,
                       help="real examples per class, increasing (default: the study's "
                            "DEFAULT_SIZES, 5 10 25 50 100 250)")
    study.add_argument("--seeds", type=int, nargs="+", default=None,
                       help="seeds (default: the study's DEFAULT_SEEDS, 0 1 2)")
    for name, what in [("eval_every", "training steps between validation evaluations"),
                       ("patience", "evaluations without a new best that stop a run"),
                       ("min_steps", "steps a run trains at least"),
                       ("max_steps", "steps a run trains at most")]:
        study.add_argument(f"--{name.replace('_', '-')}", type=int, default=None,
                           help=f"{what} (default: PlateauRule's)")
    study.add_argument("--output-dir", default="runs/sample_size")
    teachers = sub.add_parser("teachers", help="train (or load) and report the offline teachers")
    teachers.add_argument("--force", action="store_true", help="retrain even if cached")
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is now (pytest swaps it between tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _log_to_stderr() -> None:
    """Shows the package's INFO messages (strategy choice, resuming) on stderr, once."""
    logger = logging.getLogger("tgt_keras")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


class _UserError(Exception):
    """A mistake in the request (a file, a field, an option): one line on stderr, exit status 2."""


def _describe(error: Exception) -> str:
    """`error` as one line (YAML's messages span several)."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return (f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: "
                f"{' '.join(str(error.problem).split())}")
    if isinstance(error, yaml.YAMLError):
        return f"invalid YAML: {' '.join(str(error).split())}"
    return " ".join(str(error).split())


def _user_error(where: str | None, error: Exception) -> _UserError:
    """`error` as a `_UserError` that says where the bad value came from (once: messages of
    `load_hparams` and `load_search_space` may name their file already)."""
    message = _describe(error)
    if not where or message.startswith(where) or f" in {where}." in message:
        return _UserError(message)
    return _UserError(f"{where}: {message}")


@contextlib.contextmanager
def _user_errors(where: str | None = None):
    """Turns the errors of a bad request raised inside into a `_UserError` naming `where`.

    Only around validation: a `ValueError` from training itself stays a traceback.
    """
    try:
        yield
    except (OSError, yaml.YAMLError, ValueError, TypeError) as error:
        raise _user_error(where, error) from None


def _load_experiment(path: str, overrides: list[str], check=None):
    """Loads `--hparams` and applies `--set`, saying which of the two holds a bad value.

    The file is validated alone first, then each `--set` item is parsed; a bad value of the
    result is blamed on the `--set` items that cause it alone, else on all of them. `check(config)`
    is a command's own requirement (the study's supported settings), raising `ValueError`; it is
    blamed on the file when the file fails it the same way.

    Returns:
        `(config, changes)`: the `ExperimentConfig` and the dict of `--set` values.
    """
    from tgt_keras.experiments import config_from_dict, load_hparams, parse_overrides

    source = str(Path(path))  # as `load_hparams` names it in its messages
    with _user_errors(source):
        base = load_hparams(path)
    parsed = []
    for item in overrides:
        with _user_errors(f"--set {item}"):
            parsed.append(parse_overrides([item]))

    def attempt(*changes):
        """`(config, None)`, or `(None, error)` for a bad value."""
        values = base.to_dict()
        for change in changes:
            values.update(change)
        try:
            config = config_from_dict(values, source="--set")
        except (ValueError, TypeError) as error:
            return None, error
        try:
            if check is not None:
                check(config)
        except ValueError as error:  # only: a TypeError from `check` is a bug
            return None, error
        return config, None

    def fails_alike(error, *changes) -> bool:
        other = attempt(*changes)[1]
        return other is not None and str(other) == str(error)

    config, error = attempt(*parsed)
    if error is None:
        return config, {key: value for change in parsed for key, value in change.items()}
    if fails_alike(error):
        where = source
    else:
        culprits = [item for item, change in zip(overrides, parsed, strict=True)
                    if fails_alike(error, change)] or overrides
        where = " ".join(f"--set {item}" for item in culprits)
    raise _user_error(where, error)


def _check_at_least(option: str, value, minimum: int) -> None:
    """Checks an integer option (or each value of a list option) is >= `minimum`."""
    values = value if isinstance(value, list) else [value]
    if any(v < minimum for v in values):
        name = option.removeprefix("--")
        every = "all " if isinstance(value, list) else ""
        raise _UserError(f"{option} {' '.join(map(str, values))}: `{name}` must {every}be >= "
                         f"{minimum}. Received: {name}={value!r}")


def _check_directory(path, where: str) -> None:
    """Refuses a directory that cannot be created: it, or its nearest existing parent, is a
    file, or is not writable."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise _UserError(f"{where}: {existing} exists and is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _UserError(f"{where}: {existing} is not writable")


def _check_output_dir(args, output) -> None:
    given = args.output_dir is not None
    _check_directory(output, f"--output-dir {output}" if given else f"output directory {output}")


def _check_teacher_cache() -> None:
    """The offline teachers' cache must be a directory (it is only read when they are cached,
    so it need not be writable)."""
    from tgt_keras.data.fashion_mnist import cache_dir

    root = cache_dir()
    where = (f"$TGT_KERAS_CACHE={root}" if "TGT_KERAS_CACHE" in os.environ
             else f"cache directory {root}")
    if root.exists() and not root.is_dir():
        raise _UserError(f"{where}: exists and is not a directory")


def _check_run_request(args, config, output) -> None:
    """`train` / `tune`: the output directory can be written, the offline teachers' cache is a
    directory when the run uses them, and a text run's data (and `keras:` labeler) is there."""
    from tgt_keras.experiments.config import OFFLINE_TEACHERS, OFFLINE_TEXT_TEACHERS, is_text

    _check_output_dir(args, output)
    if args.smoke:
        return
    teachers = {config.labeler, config.generator}
    if teachers & {*OFFLINE_TEACHERS, *OFFLINE_TEXT_TEACHERS}:
        _check_teacher_cache()
    if is_text(config):
        from tgt_keras.experiments.text import check_text_request

        try:
            check_text_request(config)
        except (OSError, ImportError) as error:
            raise _UserError(_describe(error)) from None


def _demo_config(args, config_class, quick: dict, methods, all_methods):
    """The demo's config and methods from the options (`None` options keep the defaults)."""
    changes = dict(quick) if args.quick else {}
    for option in ("steps", "epochs", "output_dir"):
        if getattr(args, option) is not None:
            changes[option] = getattr(args, option)
    with _user_errors(f"--steps {args.steps} --epochs {args.epochs}"):
        config = config_class(seed=args.seed, **changes)
    chosen = tuple(args.methods) if args.methods is not None else methods
    unknown = [m for m in chosen if m not in all_methods]
    if unknown:
        raise _UserError(f"--methods {' '.join(chosen)}: `methods` must be among "
                         f"{', '.join(all_methods)} for --task {args.task}. Received: "
                         f"{', '.join(unknown)}")
    return config, chosen


def _demo(args) -> int:
    _check_at_least("--seed", args.seed, 0)
    if args.task == "text":
        from tgt_keras.apps import text_demo

        config, methods = _demo_config(args, text_demo.TextDemoConfig, text_demo.QUICK,
                                       text_demo.ALL_TEXT_METHODS, text_demo.ALL_TEXT_METHODS)
        _check_output_dir(args, config.output_dir)
        _check_teacher_cache()
        text_demo.run_text_demo(config, methods=methods)
        return 0
    from tgt_keras.apps.long_tail_demo import QUICK, run_demo

    config, methods = _demo_config(args, DemoConfig, QUICK, METHODS, ALL_METHODS)
    _check_output_dir(args, config.output_dir)
    _check_teacher_cache()
    run_demo(config, methods=methods)
    return 0


def _train(args) -> int:
    from tgt_keras.experiments.run_directory import RunDirectoryError
    from tgt_keras.experiments.train import run_experiment

    _log_to_stderr()
    config, changes = _load_experiment(args.hparams, args.overrides)
    output = args.output_dir or f"runs/{config.name}{'-smoke' if args.smoke else ''}"
    _check_run_request(args, config, output)
    try:
        metrics = run_experiment(config, output, smoke=args.smoke, tpu=args.tpu,
                                 overwrite=args.overwrite, smoke_keeps=tuple(changes))
    except RunDirectoryError as error:
        print(f"tgt-keras train: error: {error}", file=sys.stderr)
        return 1
    scores = f"balanced accuracy {metrics['balanced_accuracy']:.3f}"
    if "macro_f1" in metrics:  # a text run
        scores = (f"test accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}, "
                  + scores)
    print(f"{scores}; run directory {output}")
    return 0


def _tune(args) -> int:
    from tgt_keras.experiments.run_directory import RunDirectoryError
    from tgt_keras.tuning.run import check_request, run_tuning, trial_table
    from tgt_keras.tuning.space import load_search_space

    _log_to_stderr()
    # The config's part of the request (a validation split unless --smoke), with a tuner and
    # budget that always pass, so that a failure is the file's or --set's.
    config, changes = _load_experiment(
        args.hparams, args.overrides, check=lambda c: check_request(c, "random", 1, args.smoke))
    space = None
    if args.space:
        with _user_errors(str(Path(args.space))):
            space = load_search_space(args.space)
    options = f"--tuner {args.tuner}" + (
        f" --max-trials {args.max_trials}" if args.max_trials is not None else "")
    with _user_errors(options):
        check_request(config, args.tuner, args.max_trials, args.smoke)
    output = args.output_dir or f"runs/tune/{config.name}{'-smoke' if args.smoke else ''}"
    _check_run_request(args, config, output)
    try:
        summary = run_tuning(config, output, tuner=args.tuner, max_trials=args.max_trials,
                             search_space=space, smoke=args.smoke, tpu=args.tpu,
                             overwrite=args.overwrite, smoke_keeps=tuple(changes))
    except RunDirectoryError as error:
        print(f"tgt-keras tune: error: {error}", file=sys.stderr)
        return 1
    print(trial_table(summary["trial_table"]))
    print(f"best trial {summary['best_trial']}: validation balanced accuracy "
          f"{summary['best_val_balanced_accuracy']:.3f} (test "
          f"{summary['best_test_balanced_accuracy']:.3f}); best config {output}/best.yaml")
    return 0


def _study(args) -> int:
    from tgt_keras.apps.sample_size_study import (
        DEFAULT_SEEDS,
        DEFAULT_SIZES,
        STUDY_CONFIG,
        PlateauRule,
        check_study,
        run_sample_size_study,
        study_config_from_experiment,
    )

    given = {name: getattr(args, name) for name in ("eval_every", "patience", "min_steps",
                                                    "max_steps")
             if getattr(args, name) is not None}
    with _user_errors(" ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items())):
        rule = PlateauRule(**given)
    sizes = DEFAULT_SIZES if args.sizes is None else args.sizes
    seeds = DEFAULT_SEEDS if args.seeds is None else args.seeds
    _check_at_least("--sizes", list(sizes), 1)
    _check_at_least("--seeds", list(seeds), 0)
    with _user_errors(f"--sizes {' '.join(map(str, sizes))} --seeds "
                      f"{' '.join(map(str, seeds))}"):
        check_study(sizes, seeds)
    config = STUDY_CONFIG
    if args.hparams:
        experiment, _ = _load_experiment(args.hparams, args.overrides,
                                         check=study_config_from_experiment)
        config = study_config_from_experiment(experiment)
    elif args.overrides:
        raise _UserError(f"--set {args.overrides[0]}: --set overrides a field of --hparams, "
                         "and no --hparams was given")
    _check_output_dir(args, args.output_dir)
    _check_teacher_cache()
    run_sample_size_study(config, sizes=tuple(sizes), seeds=tuple(seeds),
                          output_dir=args.output_dir, rule=rule)
    return 0


def _teachers(args) -> int:
    import json

    from tgt_keras.offline import fashion_mnist_teachers

    _check_teacher_cache()
    teachers = fashion_mnist_teachers(force=args.force)
    print(json.dumps({k: v for k, v in teachers.report.items() if k != "recipe"}, indent=2))
    print(f"cached in {teachers.directory}")
    return 0


_COMMANDS = {"demo": _demo, "train": _train, "tune": _tune, "study": _study,
             "teachers": _teachers}


def main(argv: list[str] | None = None) -> int:
    """Runs a `tgt-keras` command; returns its exit status (2 and one line for a bad request)."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except _UserError as error:
        print(f"tgt-keras {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
