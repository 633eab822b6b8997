#!/usr/bin/env bash
# The test command (README set-up, and exactly what .ci/run calls): install what the tests need,
# start a private PostgreSQL server on loopback for the PostgreSQL store's tests (stopped on exit),
# then `npm test`. A server the caller already points AUTOPRUNE_TEST_PG at is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -z "${AUTOPRUNE_TEST_PG:-}" ]; then
  AUTOPRUNE_TEST_PG="$(bash scripts/pg-local.sh start)"
  export AUTOPRUNE_TEST_PG
  trap 'bash scripts/pg-local.sh stop || true' EXIT
fi
npm run lint
npm test
