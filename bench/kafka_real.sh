#!/usr/bin/env bash
# Benchmark on a real Apache Kafka broker: installs what is missing (the
# broker's jars with scripts/setup.sh --real), builds, runs
# bench/kafka_real_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --real
bash scripts/build.sh build
exec python3 bench/kafka_real_bench.py "$@"
