#!/usr/bin/env bash
# The real OpenSearch node of the `real` tests (test_opensearch_real):
# resolves org.opensearch:opensearch 2.19.x with the netty4 transport and the
# common analyzers from Maven Central into ~/.m2
# (tests/support/opensearch-node/pom.xml), and compiles the launcher
# tests/support/opensearch-node/src/RmOpenSearchNode.java against them into
# ~/.cache/readmodel/opensearch-node/: classpath.txt (the jars, one Java
# classpath line) and classes/. Idempotent: does nothing when the cache
# matches the pom and the launcher. Needs Java 17 and Maven.
set -euo pipefail

src=$(cd "$(dirname "$0")/../../tests/support/opensearch-node" && pwd)
cache=${READMODEL_CACHE:-$HOME/.cache/readmodel}/opensearch-node
stamp=$(cat "$src/pom.xml" "$src/src/RmOpenSearchNode.java" | sha256sum | cut -c1-16)

jars_present() {
  local jar
  [ -s "$cache/classpath.txt" ] || return 1
  tr ':' '\n' <"$cache/classpath.txt" | while read -r jar; do
    [ -f "$jar" ] || exit 1
  done
}

if [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] && jars_present &&
  [ -f "$cache/classes/RmOpenSearchNode.class" ]; then
  echo "setup: OpenSearch $(cat "$cache/version") node cached in $cache"
  exit 0
fi
command -v mvn >/dev/null || { echo "setup: OpenSearch needs Maven (mvn)" >&2; exit 1; }
command -v javac >/dev/null || { echo "setup: OpenSearch needs a JDK 17 (javac)" >&2; exit 1; }
mkdir -p "$cache"
rm -rf "$cache/classes" "$cache/stamp"
mvn -B -q -f "$src/pom.xml" dependency:build-classpath \
  -Dmdep.outputFile="$cache/classpath.txt" >"$cache/mvn.log" 2>&1 ||
  { cat "$cache/mvn.log" >&2; echo "setup: resolving OpenSearch from Maven failed" >&2; exit 1; }
javac -nowarn -d "$cache/classes" -cp "$(cat "$cache/classpath.txt")" "$src/src/RmOpenSearchNode.java"
tr ':' '\n' <"$cache/classpath.txt" | sed -n 's|.*/opensearch-\([0-9][0-9.]*\)\.jar$|\1|p' | head -1 >"$cache/version"
echo "$stamp" >"$cache/stamp"
echo "setup: OpenSearch $(cat "$cache/version") node built in $cache"
