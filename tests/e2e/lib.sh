# tests/e2e/lib.sh - helpers for the end-to-end tests of the shardflow binary (sourced).
set -euo pipefail

SHARDFLOW="${1:?usage: $0 path/to/shardflow}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-e2e.XXXXXX")"
trap '[ "${KEEP:-}" = 1 ] || rm -rf "$WORK"' EXIT
failures=0

check() { # description, command...
  local what="$1"; shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAILED: $what"
    failures=$((failures + 1))
  fi
}

# Succeeds when grep finds nothing (grep's arguments).
not_grep() { ! grep -q "$@"; }

# Polls the command every 10 ms until it succeeds, for up to 30 s (then says so, and fails).
wait_for() { # command...
  local i
  for i in $(seq 3000); do
    "$@" && return 0
    sleep 0.01
  done
  echo "  timed out waiting for: $*"
  return 1
}

finish() {
  if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
  fi
  echo "all checks passed"
}

# Starts `shardflow run ARGS... --metrics 127.0.0.1:PORT` in the background, its stderr into FILE,
# and waits (at most 5 s a try, while it lives) until it answers /healthz; a port taken by someone
# else is retried on another (5 tries, loopback only). Sets $port and $pid; returns 1 when no try
# answered.
serve_run() { # file, run arguments...
  local err="$1" attempt
  shift
  for attempt in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    "$SHARDFLOW" run "$@" --metrics "127.0.0.1:$port" > /dev/null 2> "$err" &
    pid=$!
    for _ in $(seq 1 250); do
      curl -sf "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && return 0
      kill -0 $pid 2> /dev/null || break
      sleep 0.02
    done
    kill $pid 2> /dev/null || true
    wait $pid 2> /dev/null || true
  done
  return 1
}

# The data of every record line in the given files, one per line (the output of a run).
data_of() { cat "$@" | sed -e 's/^.*"d":"//' -e 's/"}$//' ; }

# Lines of the input shard file that a checkpoint at byte offset $2 covers: the lines before the
# offset (a checkpoint is the offset just after its record's line).
covered_lines() { # file offset
  head -c "$2" "$1"
}

# The checkpoint of shard $2 in database $1 (the byte offset after its last durable line; empty
# when none).
checkpoint_of() { sqlite3 "$1" "select sequence from checkpoints where shard = '$2'"; }

# Every line of stdin must occur in the files $@ (as whole lines).
all_present() {
  local missing
  missing=$(comm -23 <(sort -u) <(cat "$@" | sort -u) | wc -l)
  [ "$missing" -eq 0 ] || { echo "  $missing lines missing"; return 1; }
}
