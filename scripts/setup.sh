#!/usr/bin/env bash
# Idempotent set-up on Debian/Ubuntu: Debian packages (only when missing: the Fashion-MNIST data,
# and PostgreSQL's server for the PostgreSQL store's tests) and the npm dependencies (only when the
# lockfile changed). Safe to run before every command.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || apt_packages+=(dataset-fashion-mnist)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_packages+=(postgresql)
# The dashboard's browser tests (test/serve-browser.test.ts) drive Debian's chromium; playwright-core never downloads one.
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
# PyTorch models for the ONNX import tests and the PyTorch round trip (scripts/torch-fixtures.py, apply_plan.py).
[ -d /usr/lib/python3/dist-packages/torchvision ] || apt_packages+=(python3-torchvision)
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

# The libtorch engine (optional): Debian's libtorch-dev, then the binding in native/torch. A failed
# install or build is not fatal: autoprune then trains on tfjs, and `autoprune doctor` says why.
# AUTOPRUNE_SKIP_TORCH=1 skips this part.
if [ "${AUTOPRUNE_SKIP_TORCH:-0}" != "1" ]; then
  if [ ! -f /usr/include/torch/csrc/api/include/torch/torch.h ] && command -v apt-get >/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing Debian's libtorch-dev (apt-get; ~1 GB)"
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libtorch-dev >/dev/null; } ||
      echo "setup: libtorch-dev could not be installed; training will use tfjs"
  fi
  addon=native/torch/build/Release/autoprune_torch.node
  tstamp=native/torch/build/.sources
  sources="$(cat native/torch/binding.gyp native/torch/binding.cc | sha256sum)"
  if [ -f /usr/include/torch/csrc/api/include/torch/torch.h ] && { [ ! -f "$addon" ] || [ "$(cat "$tstamp" 2>/dev/null)" != "$sources" ]; }; then
    echo "setup: building the libtorch binding (~30 s)"
    # Node's own headers when its package ships them (Debian, NodeSource); else node-gyp downloads them.
    nodedir="$(dirname "$(dirname "$(command -v node)")")"
    [ -f "$nodedir/include/node/node_api.h" ] && export npm_config_nodedir="$nodedir"
    if npm run --silent build:torch >native/torch-build.log 2>&1; then
      echo "$sources" >"$tstamp"
      rm -f native/torch-build.log
    else
      echo "setup: the libtorch binding did not build (see native/torch-build.log); training will use tfjs"
    fi
  fi
fi
