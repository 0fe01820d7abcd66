"""The `tgt-keras` command line.

    tgt-keras demo [--steps N] [--output-dir DIR] [--seed S] [--methods ...]
    tgt-keras study sample-size [--hparams FILE] [--sizes 5 10 ...] [--seeds 0 1] [--steps N]
    tgt-keras teachers [--force]
    tgt-keras train --hparams hparams/X.yaml [--set key=value ...] [--smoke] [--output-dir DIR]
                    [--tpu NAME] [--overwrite]
    tgt-keras tune --hparams hparams/X.yaml [--tuner random|bayesian|hyperband] [--max-trials N]
                   [--space FILE] [--set key=value ...] [--smoke] [--output-dir DIR] [--tpu NAME]
                   [--overwrite]

`tune` searches TGT's knobs with keras-tuner (`tgt_keras.tuning.run_tuning`); started again on
the same directory with the same settings it resumes the search.

`train` picks its `tf.distribute` strategy with `tgt_keras.distribute.pick_strategy` and resumes
an interrupted run directory; it exits with status 1 and a message, touching nothing, when the
run directory holds a finished run (or an interrupted run of another config) and `--overwrite` is
not given.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tgt_keras.apps.long_tail_demo import METHODS, DemoConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tgt-keras", description="Teacher Guided Training for Keras 3 / TensorFlow 2."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="one-hot vs KD vs TGT on long-tail Fashion-MNIST (offline, ~10 min on 2 cores)",
    )
    defaults = DemoConfig()
    demo.add_argument("--steps", type=int, default=defaults.steps,
                      help="training steps per method (default %(default)s)")
    demo.add_argument("--epochs", type=int, default=defaults.epochs,
                      help="Keras epochs the steps are split into (default %(default)s)")
    demo.add_argument("--seed", type=int, default=defaults.seed)
    demo.add_argument("--output-dir", default=defaults.output_dir)
    demo.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
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
                       help="a few steps on random images with stub teachers (checks the "
                            "wiring): one epoch of 2 steps, unless num_epochs / steps_per_epoch "
                            "are given with --set")
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
                      help="random images and stub teachers, one epoch of 2 steps per trial")
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
    study.add_argument("--sizes", type=int, nargs="+", default=[5, 10, 25, 50, 100, 250],
                       help="real examples per class (default %(default)s)")
    study.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    study.add_argument("--steps", type=int, default=300, help="training steps per run")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from tgt_keras.apps.long_tail_demo import run_demo

        config = DemoConfig(steps=args.steps, epochs=args.epochs, seed=args.seed,
                            output_dir=args.output_dir)
        run_demo(config, methods=tuple(args.methods))
    elif args.command == "train":
        from tgt_keras.experiments import load_hparams, parse_overrides
        from tgt_keras.experiments.train import RunDirectoryError, run_experiment

        _log_to_stderr()
        config = load_hparams(args.hparams, args.overrides)
        output = args.output_dir or f"runs/{config.name}{'-smoke' if args.smoke else ''}"
        try:
            metrics = run_experiment(config, output, smoke=args.smoke, tpu=args.tpu,
                                     overwrite=args.overwrite,
                                     smoke_keeps=tuple(parse_overrides(args.overrides)))
        except RunDirectoryError as error:
            print(f"tgt-keras train: error: {error}", file=sys.stderr)
            return 1
        print(f"balanced accuracy {metrics['balanced_accuracy']:.3f}; run directory {output}")
    elif args.command == "tune":
        from tgt_keras.experiments import load_hparams, parse_overrides
        from tgt_keras.experiments.train import RunDirectoryError
        from tgt_keras.tuning.run import check_request, run_tuning, trial_table
        from tgt_keras.tuning.space import load_search_space

        _log_to_stderr()
        try:  # a bad file, field, space or budget: a message, no traceback, nothing written
            config = load_hparams(args.hparams, args.overrides)
            space = load_search_space(args.space) if args.space else None
            check_request(config, args.tuner, args.max_trials, args.smoke)
        except (OSError, TypeError, ValueError) as error:
            print(f"tgt-keras tune: error: {error}", file=sys.stderr)
            return 2
        output = args.output_dir or f"runs/tune/{config.name}{'-smoke' if args.smoke else ''}"
        try:
            summary = run_tuning(config, output, tuner=args.tuner, max_trials=args.max_trials,
                                 search_space=space, smoke=args.smoke, tpu=args.tpu,
                                 overwrite=args.overwrite,
                                 smoke_keeps=tuple(parse_overrides(args.overrides)))
        except RunDirectoryError as error:
            print(f"tgt-keras tune: error: {error}", file=sys.stderr)
            return 1
        print(trial_table(summary["trial_table"]))
        print(f"best trial {summary['best_trial']}: validation balanced accuracy "
              f"{summary['best_val_balanced_accuracy']:.3f} (test "
              f"{summary['best_test_balanced_accuracy']:.3f}); best config {output}/best.yaml")
    elif args.command == "study":
        from tgt_keras.apps.sample_size_study import (
            run_sample_size_study,
            study_config_from_experiment,
        )

        config = DemoConfig(steps=args.steps, epochs=1)
        if args.hparams:
            from tgt_keras.experiments import load_hparams

            experiment = load_hparams(args.hparams, args.overrides)
            config = study_config_from_experiment(experiment, args.steps)
        run_sample_size_study(config, sizes=tuple(args.sizes), seeds=tuple(args.seeds),
                              output_dir=args.output_dir)
    elif args.command == "teachers":
        import json

        from tgt_keras.offline import fashion_mnist_teachers

        teachers = fashion_mnist_teachers(force=args.force)
        print(json.dumps({k: v for k, v in teachers.report.items() if k != "recipe"}, indent=2))
        print(f"cached in {teachers.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
