#!/usr/bin/env bash
# tests/peers/setup.sh - installs the peers stage: the real KCL MultiLangDaemon's jars and the emulators.
#
# Contract: every download goes to the peers cache ($SHARDFLOW_PEERS_CACHE, default
# /var/cache/shardflow-peers), never into the repository. The daemon's jars (KCL 3.1.3 and 2.7.2) come
# from Maven Central through tests/peers/pom.xml resolved flat (one profile each, no transitive
# closure) into CACHE/kcl3-jars and CACHE/kcl2-jars; the emulators (kinesis-local, dynalite) and the
# official Node worker (aws-kcl) come from npm, exactly as package-lock.json pins them, into
# CACHE/npm/node_modules. A part already installed from the same pom or lock (a stamp file holds its
# hash) is kept; Maven tries offline first, so a warm cache needs no network. Each download is retried
# once. Exit 0: installed; exit 2: "peer set-up failed: ..." (distinct from a failed assertion, 1).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${SHARDFLOW_PEERS_CACHE:-/var/cache/shardflow-peers}"
JARS_PER_GENERATION=79

fail() {
  echo "peer set-up failed: $*" >&2
  exit 2
}

# Runs the command; on failure says so and runs it once more.
retry_once() {
  "$@" && return 0
  echo "setup: retrying once: $*" >&2
  "$@"
}

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

require_tools() {
  local tool
  for tool in java mvn node npm curl unshare; do
    command -v "$tool" > /dev/null || fail "$tool is not installed"
  done
  # Every scenario runs in a network namespace of its own: without the right to make one (root,
  # or a container without CAP_SYS_ADMIN) none can run, which is a set-up failure, not a test's.
  unshare -n true 2> /dev/null || fail "cannot make a network namespace (unshare -n): run as root"
  mkdir -p "$CACHE" || fail "cannot create the cache directory $CACHE (set SHARDFLOW_PEERS_CACHE)"
}

# Resolves profile $1 of the pom flat into $2.tmp; $3 = -o resolves offline (from CACHE/m2 only).
resolve_jars() { # profile dir [-o]
  rm -rf "$2.tmp"
  mvn -q -B ${3:-} -f "$HERE/pom.xml" -Dmaven.repo.local="$CACHE/m2" -P "$1" \
    dependency:copy-dependencies -DexcludeTransitive=true -DoutputDirectory="$2.tmp" \
    > "$CACHE/mvn-$1.log" 2>&1
}

install_jars() { # profile
  local dir="$CACHE/$1-jars" stamp count
  stamp="$(stamp_of "$HERE/pom.xml")-$1"
  if [ "$(cat "$dir/.stamp" 2> /dev/null)" = "$stamp" ]; then
    echo "setup: $1 jars already in $dir"
    return 0
  fi
  if ! resolve_jars "$1" "$dir" -o && ! retry_once resolve_jars "$1" "$dir"; then
    tail -20 "$CACHE/mvn-$1.log" >&2
    fail "maven could not resolve the $1 jars of tests/peers/pom.xml (log: $CACHE/mvn-$1.log)"
  fi
  count=$(find "$dir.tmp" -name '*.jar' | wc -l)
  [ "$count" -eq "$JARS_PER_GENERATION" ] \
    || fail "the $1 profile of tests/peers/pom.xml gave $count jars, expected $JARS_PER_GENERATION"
  rm -rf "$dir" && mv "$dir.tmp" "$dir" && echo "$stamp" > "$dir/.stamp" || fail "cannot write $dir"
  echo "setup: $1 jars installed in $dir ($count jars)"
}

install_npm() {
  local dir="$CACHE/npm" stamp pkg
  stamp="$(stamp_of "$HERE/package.json" "$HERE/package-lock.json")"
  if [ "$(cat "$dir/.stamp" 2> /dev/null)" = "$stamp" ] && [ -d "$dir/node_modules" ]; then
    echo "setup: npm packages already in $dir"
    return 0
  fi
  mkdir -p "$dir" && cp "$HERE/package.json" "$HERE/package-lock.json" "$dir/" \
    || fail "cannot write $dir"
  if ! retry_once npm ci --prefix "$dir" --cache "$CACHE/npm-cache" --prefer-offline --no-audit \
    --no-fund > "$CACHE/npm.log" 2>&1; then
    tail -20 "$CACHE/npm.log" >&2
    fail "npm ci of tests/peers/package-lock.json failed (log: $CACHE/npm.log)"
  fi
  for pkg in kinesis-local/main.js kinesis-local/server.json dynalite/cli.js aws-kcl/index.js; do
    [ -f "$dir/node_modules/$pkg" ] || fail "npm installed no $dir/node_modules/$pkg"
  done
  echo "$stamp" > "$dir/.stamp"
  echo "setup: npm packages installed in $dir"
}

main() {
  local start=$SECONDS
  require_tools
  install_jars kcl3
  install_jars kcl2
  install_npm
  echo "setup: done in $((SECONDS - start)) s (cache $CACHE)"
}

main "$@"
