#!/usr/bin/env bash
# The real Helm 3 CLI and the manifest checker of the chart test
# (tests/helm/), both built with the machine's Go (/usr/local/go, Go 1.26;
# on a machine without a Go new enough, one fetched from the module proxy)
# from the Go module proxy. Idempotent: what is built is cached under
# ~/.cache/readmodel/ (keyed by version, or by the checker's sources), the
# modules in the Go module cache; a second run builds nothing.
#
#   ~/.cache/readmodel/helm-$HELM_VERSION/helm    helm.sh/helm/v3/cmd/helm
#   ~/.cache/readmodel/kubecheck-$HASH/kubecheck  tests/helm/kubecheck
#   ~/.cache/readmodel/helm, ~/.cache/readmodel/kubecheck   links to them
#
# The chart test (tests/helm/chart_test.sh) finds them there, or fails
# naming this script's caller, `bash scripts/setup.sh --real`.
set -euo pipefail

HELM_VERSION=v3.22.0

src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${READMODEL_CACHE:-$HOME/.cache/readmodel}
mkdir -p "$cache"
# The machine's Go (/usr/local/go, or go on PATH) when it is 1.24 or newer
# (helm's go.mod); otherwise Go $GO_FALLBACK, fetched once from the Go module
# proxy as the module golang.org/toolchain (what GOTOOLCHAIN does, for a
# machine whose Go is too old to do it: Debian bookworm's is 1.19).
GO_FALLBACK=1.26.8
go_ok() {
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  [ "${v%%.*}" -gt 1 ] || { v=${v#1.}; [ "${v%%.*}" -ge 24 ]; }
}
go=/usr/local/go/bin/go
if ! go_ok "$go"; then
  go=$(command -v go || true)
  if [ -z "$go" ] || ! go_ok "$go"; then
    goroot=$cache/go-$GO_FALLBACK
    if [ ! -x "$goroot/bin/go" ]; then
      proxy=${GOPROXY:-https://proxy.golang.org}
      proxy=${proxy%%,*}
      mod="golang.org/toolchain@v0.0.1-go$GO_FALLBACK.linux-amd64"
      echo "40-helm: fetching Go $GO_FALLBACK from $proxy" >&2
      rm -rf "$goroot.tmp" && mkdir -p "$goroot.tmp"
      curl -fsSL -o "$goroot.tmp/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_FALLBACK.linux-amd64.zip"
      unzip -q "$goroot.tmp/go.zip" -d "$goroot.tmp"
      mv "$goroot.tmp/$mod" "$goroot"
      rm -rf "$goroot.tmp"
    fi
    go=$goroot/bin/go
    go_ok "$go" || { echo "40-helm: no usable Go (1.24 or newer) in $goroot" >&2; exit 1; }
  fi
fi
# Reproducible, module-mode builds whatever the caller's environment says.
export GO111MODULE=on GOFLAGS=-mod=readonly CGO_ENABLED=0

start=$(date +%s)
built=()

helm_dir=$cache/helm-$HELM_VERSION
if [ ! -x "$helm_dir/helm" ]; then
  rm -rf "$helm_dir.tmp" && mkdir -p "$helm_dir.tmp"
  # Stamped as helm's own Makefile does: the version, and the Kubernetes
  # version of the client-go helm is built with (the cluster version that
  # `helm lint` and `helm template` assume; unstamped it would be 1.20).
  gomod=$(GOFLAGS= "$go" mod download -json "helm.sh/helm/v3@$HELM_VERSION" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  kminor=$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod")
  [ -n "$kminor" ] || { echo "40-helm: no k8s.io/client-go version in $gomod" >&2; exit 1; }
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in pkg/lint/rules pkg/chartutil; do
    ldflags+=" -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$kminor"
  done
  GOBIN=$helm_dir.tmp GOFLAGS= "$go" install -trimpath -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  rm -rf "$helm_dir" && mv "$helm_dir.tmp" "$helm_dir"
  built+=("helm $HELM_VERSION")
fi
ln -sfn "$helm_dir/helm" "$cache/helm"

# The checker: its sources, go.mod and go.sum decide the cache key.
checker=$src/tests/helm/kubecheck
hash=$(cat "$checker"/go.mod "$checker"/go.sum "$checker"/*.go | sha256sum | cut -c1-16)
check_dir=$cache/kubecheck-$hash
if [ ! -x "$check_dir/kubecheck" ]; then
  rm -rf "$check_dir.tmp" && mkdir -p "$check_dir.tmp"
  (cd "$checker" && "$go" build -trimpath -o "$check_dir.tmp/kubecheck" .)
  rm -rf "$check_dir" && mv "$check_dir.tmp" "$check_dir"
  built+=("kubecheck $hash")
fi
ln -sfn "$check_dir/kubecheck" "$cache/kubecheck"
# checkers of older sources are of no use
for d in "$cache"/kubecheck-*; do
  [ "$d" = "$check_dir" ] || rm -rf "$d"
done

if [ ${#built[@]} -eq 0 ]; then
  echo "40-helm: cached: $("$cache/helm" version --short) and kubecheck $hash in $cache"
else
  echo "40-helm: built ${built[*]} in $(($(date +%s) - start)) s into $cache ($("$cache/helm" version --short))"
fi
