#!/usr/bin/env bash
# Replay benchmark: installs what is missing, builds, runs bench/replay_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh build
exec python3 bench/replay_bench.py "$@"
