"""The `tgt-keras` command line.

    tgt-keras demo [--steps N] [--output-dir DIR] [--seed S] [--methods ...]
    tgt-keras study sample-size [--hparams FILE] [--sizes 5 10 ...] [--seeds 0 1] [--steps N]
    tgt-keras teachers [--force]
    tgt-keras train --hparams hparams/X.yaml [--set key=value ...] [--smoke] [--output-dir DIR]
"""

from __future__ import annotations

import argparse
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
    train = sub.add_parser("train", help="run one experiment of hparams/")
    train.add_argument("--hparams", required=True, help="an hparams/<experiment>.yaml file")
    train.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a field (repeatable)")
    train.add_argument("--smoke", action="store_true",
                       help="a few steps on random images with stub teachers (checks the wiring)")
    train.add_argument("--output-dir", default=None,
                       help="run directory (default runs/<experiment name>[-smoke])")
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from tgt_keras.apps.long_tail_demo import run_demo

        config = DemoConfig(steps=args.steps, epochs=args.epochs, seed=args.seed,
                            output_dir=args.output_dir)
        run_demo(config, methods=tuple(args.methods))
    elif args.command == "train":
        from tgt_keras.experiments import load_hparams
        from tgt_keras.experiments.train import run_experiment

        config = load_hparams(args.hparams, args.overrides)
        output = args.output_dir or f"runs/{config.name}{'-smoke' if args.smoke else ''}"
        metrics = run_experiment(config, output, smoke=args.smoke)
        print(f"balanced accuracy {metrics['balanced_accuracy']:.3f}; run directory {output}")
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
