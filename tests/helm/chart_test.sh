#!/usr/bin/env bash
# Chart test of deploy/helm/readmodel with the real helm (CTest helm_chart,
# labels real and deploy). helm and the checker (tests/helm/kubecheck) are
# built by scripts/setup.d/40-helm.sh into ~/.cache/readmodel/.
#
#   helm lint --strict, with the default and the production values;
#   helm template with each, then kubecheck: every manifest decoded strictly
#   into the Kubernetes API types, selectors, probes, Secret keys, and
#   `readmodel ... --check-config` with every container's arguments and
#   environment; yamllint on the values files and the rendered manifests;
#   a chart without kafka.brokers and misspelt or mistyped values refused
#   (values.schema.json); the chart README up to date with values.yaml;
#   NOTES.txt rendered and checked; the packaged chart complete.
#
# Usage: chart_test.sh BUILD_DIR (READMODEL_BIN in the environment).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?build dir}" && pwd)
cache=${READMODEL_CACHE:-$HOME/.cache/readmodel}
chart=$src/deploy/helm/readmodel
work=$build/helm-chart
rm -rf "$work" && mkdir -p "$work"

helm=$cache/helm kubecheck=$cache/kubecheck
for t in "$helm" "$kubecheck"; do
  if [ ! -x "$t" ]; then
    echo "FAIL: $t is missing: run bash scripts/setup.sh --real (scripts/setup.d/40-helm.sh builds it)" >&2
    exit 1
  fi
done
# A checker older than its sources would test the old checks.
hash=$(cat "$src"/tests/helm/kubecheck/go.mod "$src"/tests/helm/kubecheck/go.sum "$src"/tests/helm/kubecheck/*.go | sha256sum | cut -c1-16)
if [ "$(readlink "$kubecheck")" != "$cache/kubecheck-$hash/kubecheck" ]; then
  echo "FAIL: $kubecheck is not built from the current tests/helm/kubecheck: run bash scripts/setup.sh --real" >&2
  exit 1
fi
# helm keeps its own state out of $HOME
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
echo "$("$helm" version --short)"

yamllint -s -c "$src/tests/helm/yamllint.yaml" "$chart/Chart.yaml" "$chart/values.yaml" \
  "$chart/values-production.yaml" "$src/tests/helm/test-secret.yaml"

# the default values name no brokers: an operator must give them
printf 'kafka:\n  brokers: kafka:9092\n' >"$work/brokers.yaml"
# numbers of a million and more: helm reads them as float64, which its
# quote and toString print as 1e+06 (readmodel refuses that)
cat >"$work/numbers.yaml" <<'EOF2'
serve: {cachePractitioners: 2000000, maxBatch: 1000000}
opensearch: {url: "http://opensearch:9200", bulkBytes: 10485760, bulkDocs: 100000}
rebuild: {leaseTtlMs: 1200000}
prometheusRule: {enabled: true, runbookBaseUrl: "https://git.example.com/platform/readmodel/"}
EOF2
# the values of the Helm ecosystem's conventions
cat >"$work/polish.yaml" <<'EOF2'
serviceAccount:
  annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::123456789012:role/readmodel"}
extraEnv:
  - {name: TZ, value: UTC}
extraEnvFrom:
  - secretRef: {name: readmodel-credentials}
    prefix: EXTRA_
priorityClassName: readmodel-critical
podAnnotations: {example.com/team: booking}
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
  - maxSkew: 2
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: DoNotSchedule
    labelSelector: {matchLabels: {app.kubernetes.io/name: readmodel, app.kubernetes.io/component: serve}}
verify: {enabled: true}
EOF2

# Redis over TLS with a client certificate from a mounted Secret: the
# files the pod would see under /etc/readmodel/redis-tls, real PEM files
# made here, stand under $work/mnt for readmodel --check-config.
cat >"$work/redistls.yaml" <<'EOF2'
redis:
  url: rediss://clustercfg.redis.example:6379
  tls: {secretName: redis-tls, caKey: ca.crt, certKey: tls.crt, keyKey: tls.key, serverName: redis.example}
EOF2
mkdir -p "$work/mnt/etc/readmodel/redis-tls"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=redis-test -days 2 \
  -keyout "$work/mnt/etc/readmodel/redis-tls/tls.key" -out "$work/mnt/etc/readmodel/redis-tls/tls.crt" 2>/dev/null
cp "$work/mnt/etc/readmodel/redis-tls/tls.crt" "$work/mnt/etc/readmodel/redis-tls/ca.crt"

for v in default production numbers polish redistls; do
  echo "== values: $v"
  expect=""
  case $v in
    default) files=("$work/brokers.yaml") ;;
    production)
      files=("$chart/values-production.yaml")
      expect="replicas=3 minAvailable=2"
      ;;
    numbers) files=("$work/brokers.yaml" "$work/numbers.yaml") ;;
    redistls) files=("$work/brokers.yaml" "$work/redistls.yaml") ;;
    polish)
      files=("$work/brokers.yaml" "$work/polish.yaml")
      expect="priorityClassName=readmodel-critical podAnnotation=example.com/team"
      expect+=" saAnnotation=eks.amazonaws.com/role-arn spread=2 envFrom=2 env=TZ"
      ;;
  esac
  fargs=()
  for f in "${files[@]}"; do fargs+=(-f "$f"); done
  "$helm" lint --strict "$chart" "${fargs[@]}"
  "$helm" template readmodel "$chart" --namespace booking "${fargs[@]}" >"$work/rendered-$v.yaml"
  vargs=(-values "$chart/values.yaml")
  for f in "${files[@]}"; do vargs+=(-values "$f"); done
  "$kubecheck" check "${vargs[@]}" -secrets "$src/tests/helm/test-secret.yaml" \
    -secrets "$src/tests/helm/test-kafka-ca.yaml" -secrets "$src/tests/helm/test-redis-tls.yaml" \
    -mount-root "$work/mnt" -readme "$src/README.md" -expect "$expect" "$work/rendered-$v.yaml"
  # trailing spaces off: helm's nindent indents blank lines (of the embedded rules)
  yamllint -s -c "$src/tests/helm/yamllint-rendered.yaml" "$work/rendered-$v.yaml"
done

# refuse: helm template must fail, naming the cause
refuse() {
  local why=$1 want=$2
  shift 2
  if "$helm" template readmodel "$chart" "$@" >/dev/null 2>"$work/err.txt"; then
    echo "FAIL: helm template accepted $why" >&2
    exit 1
  fi
  if ! grep -q -- "$want" "$work/err.txt"; then
    echo "FAIL: $why: helm's error does not say \"$want\":" >&2
    cat "$work/err.txt" >&2
    exit 1
  fi
  echo "refused as it should: $why"
}
refuse "no kafka.brokers" "kafka.brokers is required"
# values.schema.json: a misspelt key, a wrong type, a value out of its set
refuse "a misspelt value (serve.wokers)" "additional properties 'wokers' not allowed" \
  -f "$work/brokers.yaml" --set serve.wokers=3
refuse "a misspelt top-level value (replicaCont)" "additional properties 'replicaCont' not allowed" \
  -f "$work/brokers.yaml" --set replicaCont=3
refuse "a string for serve.workers" "got string, want integer" -f "$work/brokers.yaml" --set serve.workers=two
refuse "log.format yaml" "value must be one of" -f "$work/brokers.yaml" --set log.format=yaml
refuse "rebuild.target everything" "value must be one of" -f "$work/brokers.yaml" --set rebuild.target=everything

# The chart's README is what values.yaml's comments give.
if ! "$kubecheck" values-doc "$chart" | diff -u "$chart/README.md" - >"$work/readme.diff"; then
  cat "$work/readme.diff" >&2
  echo "FAIL: deploy/helm/readmodel/README.md is out of date: regenerate it with" >&2
  echo "  ~/.cache/readmodel/kubecheck values-doc deploy/helm/readmodel > deploy/helm/readmodel/README.md" >&2
  exit 1
fi
echo "chart README: up to date with values.yaml"

# NOTES.txt (helm template does not render it): rendered through tpl in a
# copy of the chart, for the production values; it must name the objects
# the release has and check the release without kubectl exec.
rm -rf "$work/notes-chart" && cp -r "$chart" "$work/notes-chart"
mv "$work/notes-chart/templates/NOTES.txt" "$work/notes-chart/files/notes.txt"
printf '%s\n' 'notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}' >"$work/notes-chart/templates/zz-notes.yaml"
"$helm" template readmodel "$work/notes-chart" --namespace booking -f "$chart/values-production.yaml" \
  --show-only templates/zz-notes.yaml | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()[len("---\n# Source: readmodel/templates/zz-notes.yaml\nnotes: "):]))' >"$work/notes.txt"
cat "$work/notes.txt"
for want in "rollout status deploy/readmodel" "create job --from=cronjob/readmodel-verify" \
  "create job --from=cronjob/readmodel-rebuild" "/readyz" "PrometheusRule readmodel" "#alerts"; do
  grep -qF -- "$want" "$work/notes.txt" || { echo "FAIL: NOTES.txt does not say: $want" >&2; exit 1; }
done
if grep -Eq "^ *kubectl .*\<exec\>" "$work/notes.txt"; then
  echo "FAIL: NOTES.txt runs kubectl exec" >&2
  exit 1
fi
# The packaged chart (what a chart repository serves) has its schema, README
# and rules file, and renders as the directory does.
"$helm" package "$chart" -d "$work/pkg" >/dev/null
tgz=$(ls "$work"/pkg/readmodel-*.tgz)
tar -tzf "$tgz" >"$work/pkg/list.txt"
for f in values.schema.json README.md files/readmodel-rules.yaml templates/NOTES.txt; do
  grep -qx "readmodel/$f" "$work/pkg/list.txt" || { echo "FAIL: the packaged chart lacks $f" >&2; exit 1; }
done
"$helm" template readmodel "$tgz" --namespace booking -f "$chart/values-production.yaml" >"$work/rendered-package.yaml"
cmp -s "$work/rendered-package.yaml" "$work/rendered-production.yaml" ||
  { echo "FAIL: the packaged chart renders differently from the directory" >&2; exit 1; }
echo "helm chart test: ok"
