#!/usr/bin/env bash
# Sets up (idempotently, with the test tools) and runs the lint and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
# TF's own kernels, not oneDNN's: test_distribute's bit-identical SIGKILL-resume test failed
# with oneDNN's here.
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/ruff check tgt_keras tests examples benchmarks
exec .venv/bin/python -m pytest "$@"
