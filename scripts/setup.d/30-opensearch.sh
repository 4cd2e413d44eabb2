#!/usr/bin/env bash
# The real OpenSearch nodes of the `real` tests (test_opensearch_real,
# test_opensearch_answers): resolves org.opensearch:opensearch with the
# netty4 transport and the common analyzers from Maven Central into ~/.m2
# (tests/support/opensearch-node/pom.xml), and compiles the launcher
# (common/RmNodeLauncher.java, shared, and the version's
# RmOpenSearchNode.java, which makes its Node) against them into
# ~/.cache/readmodel/<node>/:
# classpath.txt (the jars, one Java classpath line), classes/, java_home (the
# JDK that runs it) and version.
#
#   opensearch-node    2.19.6 on Java 17 (the newest that runs on it): needed.
#   opensearch-node-3  3.9.0 on the Temurin 25 JDK, when that JDK is there
#                      (/usr/lib/jvm/temurin-25-jdk-amd64, or
#                      READMODEL_JDK21_HOME): optional, a failure is a warning.
#
# Idempotent: a node whose cache matches its pom and launcher is left alone.
set -euo pipefail

src=$(cd "$(dirname "$0")/../../tests/support/opensearch-node" && pwd)
cache_root=${READMODEL_CACHE:-$HOME/.cache/readmodel}

jars_present() {
  local jar
  [ -s "$1/classpath.txt" ] || return 1
  tr ':' '\n' <"$1/classpath.txt" | while read -r jar; do
    [ -f "$jar" ] || exit 1
  done
}

# build_node NAME VERSION LAUNCHER_DIR JAVA_HOME
build_node() {
  local name=$1 version=$2 launcher=$3 jdk=$4
  local cache=$cache_root/$name stamp
  stamp=$(cat "$src/pom.xml" "$src/common/RmNodeLauncher.java" "$launcher/RmOpenSearchNode.java" |
    sha256sum | cut -c1-16)
  stamp="$stamp $version $jdk"
  if [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] && jars_present "$cache" &&
    [ -f "$cache/classes/RmOpenSearchNode.class" ]; then
    echo "setup: OpenSearch $version node cached in $cache"
    return 0
  fi
  [ -x "$jdk/bin/javac" ] || { echo "setup: OpenSearch $version needs a JDK at $jdk" >&2; return 1; }
  mkdir -p "$cache"
  rm -rf "$cache/classes" "$cache/stamp"
  if ! JAVA_HOME=$jdk mvn -B -q -f "$src/pom.xml" -Dopensearch.version="$version" \
    dependency:build-classpath -Dmdep.outputFile="$cache/classpath.txt" >"$cache/mvn.log" 2>&1; then
    cat "$cache/mvn.log" >&2
    echo "setup: resolving OpenSearch $version from Maven failed" >&2
    return 1
  fi
  "$jdk/bin/javac" -nowarn -d "$cache/classes" -cp "$(cat "$cache/classpath.txt")" \
    "$src/common/RmNodeLauncher.java" "$launcher/RmOpenSearchNode.java"
  echo "$jdk" >"$cache/java_home"
  echo "$version" >"$cache/version"
  echo "$stamp" >"$cache/stamp"
  echo "setup: OpenSearch $version node built in $cache"
}

command -v mvn >/dev/null || { echo "setup: OpenSearch needs Maven (mvn)" >&2; exit 1; }
jdk17=${READMODEL_JDK17_HOME:-}
if [ -z "$jdk17" ]; then
  jdk17=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
fi
build_node opensearch-node 2.19.6 "$src/src" "$jdk17"

jdk21=${READMODEL_JDK21_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
if [ -x "$jdk21/bin/javac" ]; then
  build_node opensearch-node-3 3.9.0 "$src/src3" "$jdk21" ||
    echo "setup: warning: the OpenSearch 3.9.0 node was not built (optional)" >&2
fi
