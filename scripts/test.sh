#!/usr/bin/env bash
# Sets up (idempotently, with the test tools) and runs the lint and the test suite.
# Usage: bash scripts/test.sh [PYTEST_ARGS...]           lint, then pytest in .venv (newest TF)
#        bash scripts/test.sh --tf X.Y [PYTEST_ARGS...]  pytest in .venv-tfX.Y with TensorFlow X.Y
#                                                        (see scripts/setup.sh), no lint
#        e.g. bash scripts/test.sh --tf 2.20 -m compat   (what CI runs on the oldest TF)
set -euo pipefail
cd "$(dirname "$0")/.."
tf=""
case "${1:-}" in
  --tf) tf="${2:?'--tf needs a TensorFlow version, e.g. --tf 2.20'}"; shift 2 ;;
  --tf=*) tf="${1#--tf=}"; shift ;;
esac
bash scripts/setup.sh --test ${tf:+--tf "$tf"}
# TF's own kernels, not oneDNN's: test_distribute's bit-identical SIGKILL-resume test failed
# with oneDNN's here.
export TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-0}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [ -z "$tf" ]; then
  .venv/bin/ruff check tgt_keras tests examples benchmarks scripts
fi
exec ".venv${tf:+-tf$tf}/bin/python" -m pytest "$@"
