#!/usr/bin/env bash
# Apache Kafka for the tests labelled `real` (tests/support/kafka_real.c):
# resolves org.apache.kafka:kafka_2.13 and its runtime dependencies from
# Maven Central into ~/.m2 with the small pom in scripts/setup.d/kafka/, and
# caches the Java classpath of each version in
# ~/.cache/readmodel/kafka-VERSION.classpath. kafka.classpath (what the tests
# use unless RM_KAFKA_VERSION names another) is the newest 4.x that resolves
# and starts on this machine's Java. Idempotent: a cached classpath whose
# jars are all present is kept, and Maven resolves from ~/.m2 offline.
#
#   RM_KAFKA_VERSIONS="4.4.0 3.9.1"   the versions tried, newest 4.x first
#                                      (the README's compatibility table)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/readmodel
mkdir -p "$cache"
versions=${RM_KAFKA_VERSIONS:-"4.4.0 3.9.1"}

command -v java >/dev/null || { echo "20-kafka: java missing (OpenJDK 17)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "20-kafka: mvn missing (Maven)" >&2; exit 1; }

# True when every jar of the classpath file $1 exists.
complete() {
  [ -s "$1" ] || return 1
  local jar
  while IFS= read -r jar; do
    [ -f "$jar" ] || return 1
  done < <(tr ':' '\n' <"$1")
}

# Resolves version $1 into ~/.m2 and writes its classpath file. 1 when it
# does not resolve.
resolve() {
  local v=$1 out=$cache/kafka-$1.classpath log
  if complete "$out"; then
    return 0
  fi
  log=$(mktemp)
  if ! mvn -B -q -f "$here/kafka/pom.xml" -Dkafka.version="$v" \
    dependency:build-classpath -Dmdep.includeScope=runtime \
    -Dmdep.outputFile="$out.tmp" >"$log" 2>&1; then
    tail -5 "$log" >&2
    rm -f "$log" "$out.tmp"
    return 1
  fi
  rm -f "$log"
  mv "$out.tmp" "$out"
}

# True when the broker's main class loads on this Java (a version built for
# a newer class file format fails here, not in the middle of a test).
runs() {
  java -cp "$(cat "$cache/kafka-$1.classpath")" kafka.tools.StorageTool random-uuid >/dev/null 2>&1
}

default=""
have=()
for v in $versions; do
  if resolve "$v" && runs "$v"; then
    have+=("$v")
    case "$v" in 4.*) [ -n "$default" ] || default=$v ;; esac
  else
    echo "20-kafka: Apache Kafka $v does not resolve or run on $(java -version 2>&1 | head -1)" >&2
  fi
done
[ -n "$default" ] || { echo "20-kafka: no Kafka 4.x resolved" >&2; exit 1; }
cp "$cache/kafka-$default.classpath" "$cache/kafka.classpath.tmp"
mv "$cache/kafka.classpath.tmp" "$cache/kafka.classpath"
echo "$default" >"$cache/kafka.version"
echo "20-kafka: Apache Kafka ${have[*]} in ~/.m2; tests use $default ($cache/kafka.classpath)"
