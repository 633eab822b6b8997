#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu: Debian packages (only when missing: the Fashion-MNIST data,
# and PostgreSQL's server for the PostgreSQL store's tests) and the npm dependencies (only when the
# lockfile changed). Safe to run before every command.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || apt_packages+=(dataset-fashion-mnist)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_packages+=(postgresql)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian's ${apt_packages[*]} (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# onnxruntime-node (a later dependency) would fetch CUDA parts at install time; never here.
export ONNXRUNTIME_NODE_INSTALL=skip
stamp=node_modules/.autoprune-lock
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm ci (builds better-sqlite3 from source when no prebuilt binary fits: ~1-2 min)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
