#!/usr/bin/env bash
# The main job: a small real search on real data, ending in a report.
#   1. set-up (Fashion-MNIST from apt, npm dependencies)
#   2. the base model: the committed experiments/base/resnet20-fmnist, or train it if absent
#   3. the quickstart search (random controller, 50% and 30% FLOPs targets, 2 finalists)
#   4. the report: reports/quickstart/index.html and report.md
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f experiments/base/resnet20-fmnist/model.json ]; then
  npx autoprune train configs/quickstart.yaml
fi
npx autoprune search configs/quickstart.yaml "$@"
npx autoprune report quickstart
