#!/usr/bin/env bash
# The README's Kubernetes runbook, run as written (CTest helm_runbook,
# labels real and deploy). The `sh` blocks of the section "### Runbook
# (Kubernetes)" are taken from README.md and run in order in one shell, in
# the repository root, with these stand-ins:
#
#   kubectl create secret ...  the real kubectl (kubecheck kubectl, from
#                              k8s.io/kubectl) with --dry-run=client -o yaml:
#                              the Secrets the runbook creates, collected
#   helm upgrade [--install]   the real `helm template` with the same
#                              arguments (--reuse-values: those of the last
#                              install plus the new ones); the release is
#                              then checked by kubecheck against the
#                              collected Secrets (every Secret and key a pod
#                              reads exists) and the built image
#   docker build / push        the build arguments are ARGs of the
#                              Dockerfile, the context has it; push pushes
#                              what was built
#   other kubectl commands     the objects they name exist in the rendered
#                              release (cronjob/, deploy/) or were created
#                              by an earlier command (job/); no `exec` of
#                              verify or rebuild in a serve pod
#
# Every command must use the release's namespace. A command of any other
# kind at the start of a line fails the test, so a new command in the
# runbook needs a stand-in here.
#
# Usage: runbook_test.sh BUILD_DIR (READMODEL_BIN in the environment).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?build dir}" && pwd)
cache=${READMODEL_CACHE:-$HOME/.cache/readmodel}
work=$build/helm-runbook
rm -rf "$work" && mkdir -p "$work"
REAL_HELM=$cache/helm KUBECHECK=$cache/kubecheck
for t in "$REAL_HELM" "$KUBECHECK"; do
  if [ ! -x "$t" ]; then
    echo "FAIL: $t is missing: run bash scripts/setup.sh --real (scripts/setup.d/40-helm.sh builds it)" >&2
    exit 1
  fi
done
export HELM_CACHE_HOME=$work/helm HELM_CONFIG_HOME=$work/helm HELM_DATA_HOME=$work/helm
export KUBECONFIG=/dev/null # nothing here may reach a cluster

# The runbook: sh blocks from the section heading to the next heading.
awk '
  /^### Runbook \(Kubernetes\)$/ { in_section = 1; next }
  in_section && /^##/ { in_section = 0 }
  in_section && /^```sh$/ { in_block = 1; blocks++; next }
  in_section && in_block && /^```$/ { in_block = 0; print ""; next }
  in_section && in_block { print }
  END { if (blocks < 3) exit 1 }
' "$src/README.md" >"$work/runbook.sh" || {
  echo "FAIL: README.md has no section \"### Runbook (Kubernetes)\" with sh blocks" >&2
  exit 1
}

# Only these commands may start a line (continuations and comments aside).
bad=$(sed -e 's/[[:space:]]*#.*$//' "$work/runbook.sh" | awk '
  prev_cont { prev_cont = /\\$/; next }
  { prev_cont = /\\$/ }
  NF == 0 { next }
  $1 ~ /^(kubectl|helm|docker)$/ { next }
  $1 ~ /^[A-Za-z_][A-Za-z0-9_]*=/ { next }
  { print }')
if [ -n "$bad" ]; then
  echo "FAIL: the runbook runs commands this test has no stand-in for:" >&2
  echo "$bad" >&2
  exit 1
fi

# --- stand-ins -------------------------------------------------------------
NS=""            # the namespace of the release
RELEASE_ARGS=()  # arguments of the last helm upgrade --install
BUILT_IMAGE=""   # docker build -t
PUSHED=""        # docker push
JOBS=" "         # created with kubectl create job
RENDERS=0
: >"$work/secrets.yaml"

fail() {
  echo "FAIL: runbook: $*" >&2
  exit 1
}

# namespace ARGS...: the -n/--namespace of a command; all must agree.
namespace() {
  local ns="" a prev=""
  for a in "$@"; do
    case "$prev" in -n | --namespace) ns=$a ;; esac
    case "$a" in --namespace=*) ns=${a#--namespace=} ;; esac
    prev=$a
  done
  [ -n "$ns" ] || fail "no namespace (-n) in: $*"
  [ -z "$NS" ] || [ "$ns" = "$NS" ] || fail "namespace $ns, the release is in $NS: $*"
  NS=$ns
}

# rendered KIND NAME: the last rendered release has that object.
rendered() {
  [ "$RENDERS" -gt 0 ] || fail "$1/$2 named before the release was installed"
  awk -v k="kind: $1" -v n="  name: $2" '
    /^---/ { kind = 0; meta = 0 }
    $0 == k { kind = 1 }
    /^metadata:/ { meta = 1 }
    /^[a-z]/ && !/^metadata:/ { meta = 0 }
    kind && meta && $0 == n { found = 1 }
    END { exit !found }' "$work/release.yaml" || fail "the release has no $1 $2"
}

# words ARGS...: W=ARGS without -n/--namespace and their value.
words() {
  local a prev=""
  W=()
  for a in "$@"; do
    if [ "$a" = -n ] || [ "$a" = --namespace ]; then prev=$a; continue; fi
    if [ "$prev" = -n ] || [ "$prev" = --namespace ]; then prev=""; continue; fi
    case "$a" in --namespace=*) continue ;; esac
    W+=("$a")
  done
}

docker() {
  case "$1" in
    build)
      shift
      local tag="" a prev="" ctx=""
      for a in "$@"; do
        case "$prev" in
          -t | --tag) tag=$a ;;
          --build-arg)
            grep -q "^ARG ${a%%=*}\(=\|$\)" Dockerfile || fail "docker build --build-arg ${a%%=*}: no such ARG in the Dockerfile"
            ;;
        esac
        case "$a" in -*) ;; *) case "$prev" in -t | --tag | --build-arg) ;; *) ctx=$a ;; esac ;; esac
        prev=$a
      done
      [ -n "$tag" ] || fail "docker build without -t"
      [ -f "$ctx/Dockerfile" ] || fail "docker build context $ctx has no Dockerfile"
      BUILT_IMAGE=$tag
      echo "runbook: docker build $tag"
      ;;
    push)
      [ "$2" = "$BUILT_IMAGE" ] || fail "docker push $2, but the build was tagged $BUILT_IMAGE"
      PUSHED=$2
      ;;
    *) fail "docker $1: no stand-in" ;;
  esac
}

helm() {
  local a out=() install=0 reuse=0
  namespace "$@"
  words "$@"
  case "${W[0]}" in
    upgrade)
      # the namespace goes back in: helm template needs it
      for a in "${W[@]:1}" -n "$NS"; do
        case "$a" in
          --install) install=1 ;;
          --reuse-values) reuse=1 ;;
          --atomic | --wait) ;;
          *) out+=("$a") ;;
        esac
      done
      # --timeout takes a value
      local t=() i=0
      while [ $i -lt ${#out[@]} ]; do
        if [ "${out[$i]}" = --timeout ]; then i=$((i + 2)); continue; fi
        t+=("${out[$i]}")
        i=$((i + 1))
      done
      if [ "$install" = 1 ]; then
        RELEASE_ARGS=("${t[@]}")
        render "${t[@]}"
      else
        [ "$reuse" = 1 ] || fail "helm upgrade without --install or --reuse-values would reset the values: $*"
        [ ${#RELEASE_ARGS[@]} -gt 0 ] || fail "helm upgrade --reuse-values before an install"
        RELEASE_ARGS+=("${t[@]:2}")  # after release and chart
        render "${RELEASE_ARGS[@]}"
      fi
      ;;
    status | history | rollback | get)
      [ "$RENDERS" -gt 0 ] || fail "helm $1 before the release was installed"
      ;;
    *) fail "helm ${W[0]}: no stand-in" ;;
  esac
}

# render RELEASE CHART ARGS...: helm template, then the strict checks.
render() {
  local vargs=() prev="" a
  RENDERS=$((RENDERS + 1))
  "$REAL_HELM" template "$@" >"$work/release.yaml" || fail "helm template $*"
  vargs=(-values "$2/values.yaml")
  for a in "$@"; do
    case "$prev" in -f | --values) vargs+=(-values "$a") ;; esac
    prev=$a
  done
  echo "runbook: helm template $* (render $RENDERS)"
  "$KUBECHECK" check "${vargs[@]}" -secrets "$work/secrets.yaml" "$work/release.yaml" >"$work/check-$RENDERS.txt" 2>&1 ||
    { cat "$work/check-$RENDERS.txt" >&2; fail "the release rendered by: helm upgrade $* does not pass kubecheck"; }
  # the image that was built (and pushed) runs in every container
  local images
  images=$(sed -n 's/^[[:space:]]*image: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$work/release.yaml" | sort -u)
  [ -n "$BUILT_IMAGE" ] || fail "the release is installed before the image is built"
  [ "$images" = "$BUILT_IMAGE" ] || fail "the release runs image(s) $images, the runbook built $BUILT_IMAGE"
  [ "$PUSHED" = "$BUILT_IMAGE" ] || fail "the image $BUILT_IMAGE is installed but was not pushed"
}

kubectl() {
  local verb=$1
  case "$*" in
    "create namespace "*)
      NS=$3
      return
      ;;
  esac
  namespace "$@"
  local w a
  words "$@"
  w=("${W[@]}")
  verb=${w[0]}
  case "$verb ${w[1]:-}" in
    "create secret")
      local argv=() f key path
      for a in "$@"; do
        case "$a" in
          --from-file=*=*) # the file is the operator's: a stand-in of it
            f=${a#--from-file=}
            key=${f%%=*} path=${f#*=}
            [ -e "$path" ] || { path=$work/file-$key && echo "stand-in for ${f#*=}" >"$path"; }
            argv+=("--from-file=$key=$path")
            ;;
          *) argv+=("$a") ;;
        esac
      done
      { echo "---" && "$KUBECHECK" kubectl "${argv[@]}" --dry-run=client -o yaml; } >>"$work/secrets.yaml" ||
        fail "kubectl $*"
      echo "runbook: kubectl $verb secret ${w[3]:-}"
      ;;
    "create job")
      local name="" from=""
      for a in "${w[@]:2}"; do
        case "$a" in
          --from=cronjob/*) from=${a#--from=cronjob/} ;;
          -*) ;;
          *) [ -n "$name" ] || name=$a ;;
        esac
      done
      [ -n "$from" ] || fail "kubectl create job without --from=cronjob/...: $*"
      rendered CronJob "$from"
      JOBS="$JOBS$name "
      echo "runbook: job $name from CronJob $from"
      ;;
    "logs "* | "get "* | "wait "* | "describe "* | "delete "*)
      for a in "${w[@]:1}"; do
        case "$a" in
          job/*) [[ "$JOBS" == *" ${a#job/} "* ]] || fail "kubectl $verb $a: no such Job was created" ;;
          deploy/* | deployment/*) rendered Deployment "${a#*/}" ;;
          cronjob/*) rendered CronJob "${a#*/}" ;;
        esac
      done
      ;;
    "rollout status" | "scale "*)
      for a in "${w[@]}"; do
        case "$a" in deploy/* | deployment/*) rendered Deployment "${a#*/}" ;; esac
      done
      ;;
    "exec "*)
      case " ${w[*]} " in
        *" readmodel verify "* | *" readmodel rebuild "*)
          fail "verify and rebuild run as Jobs, not with kubectl exec in a serve pod: $*"
          ;;
      esac
      for a in "${w[@]}"; do
        case "$a" in deploy/* | deployment/*) rendered Deployment "${a#*/}" ;; esac
      done
      ;;
    *) fail "kubectl $verb ${w[1]:-}: no stand-in" ;;
  esac
}

cd "$src"
# shellcheck disable=SC1090
set +u
source "$work/runbook.sh"
set -u

# What the runbook must have done.
[ "$RENDERS" -ge 1 ] || fail "never installs the chart"
grep -q "kind: Secret" "$work/secrets.yaml" || fail "creates no Secret"
[[ "$JOBS" == *" verify-"* ]] || fail "never runs verify as a Job"
[[ "$JOBS" == *" rebuild-"* ]] || fail "never runs rebuild as a Job"
grep -q -- '^ *- "\{0,1\}--allow-truncated-history"\{0,1\}$' "$work/release.yaml" &&
  fail "leaves --allow-truncated-history in the rebuild template"
echo "runbook: $RENDERS renders, Secrets: $(grep -c '^kind: Secret' "$work/secrets.yaml"), Jobs:$JOBS"
echo "helm runbook test: ok"
