#!/usr/bin/env bash
# Render test of deploy/helm/readmodel (CTest): builds tests/helm/render.go
# with Debian's Go packages (GOPATH mode, offline), renders the chart with
# the default and the production values, checks the manifests and runs
# `readmodel ... --check-config` with every container's arguments and
# environment; lints the values files and the rendered manifests with
# yamllint. Usage: render_test.sh BUILD_DIR (READMODEL_BIN in the environment).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?build dir}" && pwd)
chart=$src/deploy/helm/readmodel
work=$build/helm-render
mkdir -p "$work"
export GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$work/gocache GOFLAGS=
go build -o "$work/render" "$src/tests/helm/render.go"

yamllint -s -c "$src/tests/helm/yamllint.yaml" "$chart/Chart.yaml" "$chart/values.yaml" \
  "$chart/values-production.yaml" "$src/tests/helm/test-secret.yaml"

for v in default production; do
  echo "== values: $v"
  files=()
  expect=""
  if [ "$v" = production ]; then
    files=("$chart/values-production.yaml")
    expect="replicas=3 minAvailable=2"
  fi
  # the default values name no brokers: an operator must give them
  if [ "$v" = default ]; then
    printf 'kafka:\n  brokers: kafka:9092\n' > "$work/brokers.yaml"
    files=("$work/brokers.yaml")
  fi
  RENDER_EXPECT=$expect RENDER_OUT=$work/$v.yaml "$work/render" "$chart" "$src/tests/helm/test-secret.yaml" "${files[@]}"
  # trailing spaces off: Helm's nindent indents blank lines (of the embedded rules)
  yamllint -s -c "$src/tests/helm/yamllint-rendered.yaml" "$work/$v.yaml"
done

# A chart without brokers must refuse to render, naming the value.
if "$work/render" "$chart" "$src/tests/helm/test-secret.yaml" 2> "$work/err.txt"; then
  echo "render without kafka.brokers should have failed" >&2
  exit 1
fi
grep -q "kafka.brokers is required" "$work/err.txt"
echo "helm render test: ok"
