#!/usr/bin/env bash
# tests/peers/kafka/setup.sh - installs the real Kafka broker of the peers stage (Apache Kafka 4.1.1).
#
# Contract: the broker's jars come from Maven Central through tests/peers/kafka/pom.xml, its runtime
# closure resolved flat into CACHE/kafka-jars (CACHE = $SHARDFLOW_PEERS_CACHE, default
# /var/cache/shardflow-peers; Maven's repository is CACHE/m2, shared with tests/peers/setup.sh), never
# into the repository. Jars already installed from the same pom (a stamp file holds its hash) are
# kept; Maven tries offline first, so a warm cache needs no network; a download is retried once.
# Exit 0: installed; exit 2: "peer set-up failed: ..." (distinct from a failed assertion, 1).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${SHARDFLOW_PEERS_CACHE:-/var/cache/shardflow-peers}"
DIR="$CACHE/kafka-jars"
JARS=46 # the runtime closure of kafka_2.13 4.1.1 + log4j-core + log4j-slf4j-impl

fail() {
  echo "peer set-up failed: $*" >&2
  exit 2
}

resolve() { # [-o]
  rm -rf "$DIR.tmp"
  mvn -q -B ${1:-} -f "$HERE/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$DIR.tmp" \
    > "$CACHE/mvn-kafka.log" 2>&1
}

main() {
  local tool stamp count
  for tool in java mvn unshare ip python3; do
    command -v "$tool" > /dev/null || fail "$tool is not installed"
  done
  mkdir -p "$CACHE" || fail "cannot create the cache directory $CACHE (set SHARDFLOW_PEERS_CACHE)"
  stamp="$(sha256sum < "$HERE/pom.xml" | cut -d' ' -f1)"
  if [ "$(cat "$DIR/.stamp" 2> /dev/null)" = "$stamp" ]; then
    echo "setup: kafka jars already in $DIR"
    return 0
  fi
  if ! resolve -o && ! resolve && ! { echo "setup: retrying maven once" >&2; resolve; }; then
    tail -20 "$CACHE/mvn-kafka.log" >&2
    fail "maven could not resolve tests/peers/kafka/pom.xml (log: $CACHE/mvn-kafka.log)"
  fi
  count=$(find "$DIR.tmp" -name '*.jar' | wc -l)
  [ "$count" -eq "$JARS" ] && [ -f "$DIR.tmp/kafka_2.13-4.1.1.jar" ] \
    || fail "tests/peers/kafka/pom.xml gave $count jars (expected $JARS with kafka_2.13-4.1.1.jar)"
  rm -rf "$DIR" && mv "$DIR.tmp" "$DIR" && echo "$stamp" > "$DIR/.stamp" || fail "cannot write $DIR"
  echo "setup: kafka jars installed in $DIR ($count jars)"
}

main "$@"
