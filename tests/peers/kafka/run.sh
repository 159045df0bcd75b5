#!/usr/bin/env bash
# tests/peers/kafka/run.sh - the real-broker tier of the Kafka source: run.sh SHARDFLOW [OPTIONS...]
#
# Contract: installs what the cache lacks first (setup.sh; its failure is exit 2, "peer set-up
# failed"), then runs broker_test.py in a network namespace of its own with only loopback up
# (`unshare -n`: the broker's fixed ports cannot clash with another run's, nothing outside
# 127.0.0.0/8 is reachable), under a wall-clock limit of $PEERS_KAFKA_LIMIT seconds (default 300).
# Exit 0 passed, 1 an assertion failed (or the limit passed), 2 set-up failed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHARDFLOW="${1:?usage: $0 path/to/shardflow [OPTIONS...]}"
shift

export PYTHONDONTWRITEBYTECODE=1 # nothing written into the repository
"$HERE/setup.sh" > /dev/null || exit 2
limit="${PEERS_KAFKA_LIMIT:-300}"
unshare -n -- bash -c 'ip link set lo up || { echo "peer set-up failed: cannot bring lo up" >&2; exit 2; }
  exec timeout --signal=TERM --kill-after=30 "$0" python3 "$1"/broker_test.py "${@:2}"' \
  "$limit" "$HERE" --shardflow "$SHARDFLOW" "$@"
status=$?
[ "$status" -eq 124 ] && { echo "FAILED: the kafka broker tier passed the $limit s limit" >&2; exit 1; }
exit "$status"
