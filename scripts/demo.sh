#!/usr/bin/env bash
# Sets up (idempotently) and runs the default demo on offline long-tail Fashion-MNIST.
# Extra arguments go to `tgt-keras demo` (e.g. --steps 400 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# oneDNN's kernels are 2x slower than TF's own for these small CPU models (measured here).
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/tgt-keras demo "$@"
