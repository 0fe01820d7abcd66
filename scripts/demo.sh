#!/usr/bin/env bash
# Sets up (idempotently) and runs the default demo on offline long-tail Fashion-MNIST.
# Extra arguments go to `tgt-keras demo` (e.g. --steps 400 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# TensorFlow's oneDNN CPU kernels (its default on x86) made the demo's steps 1.5-1.9x faster
# here (benchmarks/step_throughput.py, README "Performance"); say so explicitly.
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-1}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/tgt-keras demo "$@"
