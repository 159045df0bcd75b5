#!/usr/bin/env bash
# tests/peers/run.sh - runs one scenario of the peers stage: run.sh SHARDFLOW SCENARIO [OPTIONS...]
#
# Contract: checks the set-up first (tests/peers/setup.sh: installs what the cache lacks; its
# failure is exit 2, "peer set-up failed"), then runs scenarios.py SCENARIO in a new network
# namespace with only the loopback interface up (`unshare -n`: the emulators bind every interface
# and nothing outside 127.0.0.0/8 is reachable), under a wall-clock limit of $PEERS_LIMIT seconds
# (default 840). Exit 0 passed, 1 an assertion failed (or the limit passed), 2 set-up failed.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHARDFLOW="${1:?usage: $0 path/to/shardflow SCENARIO [OPTIONS...]}"
shift
SCENARIO="${1:?usage: $0 path/to/shardflow SCENARIO [OPTIONS...]}"
shift

export PYTHONDONTWRITEBYTECODE=1 # nothing written into the repository
"$HERE/setup.sh" > /dev/null || exit 2
command -v ip > /dev/null || { echo "peer set-up failed: ip (iproute2) is not installed" >&2; exit 2; }
# A stale aws-kcl daemon of another run would hold no port here: every run has its own namespace.
unshare -n -- bash -c 'ip link set lo up || { echo "peer set-up failed: cannot bring lo up" >&2; exit 2; }
  exec timeout --signal=TERM --kill-after=30 "$0" python3 "$1"/scenarios.py "${@:2}"' \
  "${PEERS_LIMIT:-840}" "$HERE" "$SCENARIO" --shardflow "$SHARDFLOW" "$@"
status=$?
[ "$status" -eq 124 ] && { echo "FAILED: $SCENARIO passed the ${PEERS_LIMIT:-840} s limit" >&2; exit 1; }
exit "$status"
