#!/usr/bin/env bash
# bench/pg_bench.sh - the PostgreSQL flusher (64 shards, batches of 1,000) against psql's \copy of
# the same rows into the same table, and the effectively-once mode beside the plain mode, in one run
# against one PostgreSQL 15 server started here with its default settings (fsync and
# synchronous_commit on: the baseline and the subject share them).
# Usage: bench/pg_bench.sh SHARDFLOW [RECORDS] [RUNS] [-- EXTRA RUN OPTIONS]   (bench/run.sh calls it)
#
# The server: initdb + pg_ctl in a temporary directory, a Unix socket only (no TCP), as user
# postgres under root; stopped by its PID at the end. Without PostgreSQL's binaries it says so and
# exits 0 without a row (bench/run.sh then expects none).
# Each run of each subject starts from an empty table and checks its outcome: exit 0, count(*) ==
# RECORDS and every shard checkpointed at its file's end; otherwise it says why and exits 1 with a
# FAILED line, no figure. The baseline: the rows the plain run wrote, dumped once by COPY TO (not
# timed), then TRUNCATE and psql's `\copy TABLE FROM FILE` (one connection, one transaction), timed
# and its row count checked. The runs alternate (plain, \copy, effectively-once). Prints the medians
# and two ROW lines: pg-copy (subject: the flusher in plain mode, baseline: \copy; records/s) and
# pg-effectively-once (subject: effectively-once, baseline: plain; records/s).
set -euo pipefail
cli="${1:?usage: bench/pg_bench.sh SHARDFLOW [RECORDS] [RUNS] [-- RUN OPTIONS]}"
records="${2:-1000000}"
runs="${3:-3}"
shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
extra=("$@")
shards=64
pg_bin=/usr/lib/postgresql/15/bin
if [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ] || ! command -v psql > /dev/null \
   || ! command -v sqlite3 > /dev/null; then
  echo "pg bench: skipped: PostgreSQL 15's binaries ($pg_bin/initdb, pg_ctl), psql or sqlite3 not" \
       "found (apt-get install postgresql-15 postgresql-client-15 sqlite3)" >&2
  exit 0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-pg-bench.XXXXXX")"
pg_pid=""
stop_pg() {
  [ -n "$pg_pid" ] || return 0
  kill -INT "$pg_pid" 2> /dev/null || true
  for _ in $(seq 1 3000); do kill -0 "$pg_pid" 2> /dev/null || break; sleep 0.02; done
  kill -KILL "$pg_pid" 2> /dev/null || true
  pg_pid=""
}
trap 'stop_pg; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM HUP PIPE
exec 3>&1 # the FAILED line reaches stdout from inside $(...) too
fail() { # why
  printf 'FAILED\t%s\t%s\n' "${row:-pg-copy}" "$1" >&3
  echo "pg bench: $1; no figure" >&2
  exit 1
}

as=()
chmod 711 "$work"; mkdir -p "$work/pg"
if [ "$(id -u)" = 0 ]; then chown postgres "$work/pg"; as=(runuser -u postgres --); fi
"${as[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U shardflow --auth=trust -N -E UTF8 --locale=C \
  > "$work/initdb.log" 2>&1 || fail "initdb failed: $(tail -1 "$work/initdb.log")"
"${as[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 \
  -o "-c listen_addresses='' -c unix_socket_directories=$work/pg -c max_connections=200" \
  start > /dev/null || fail "PostgreSQL did not start: $(tail -3 "$work/pg/server.log")"
pg_pid=$(head -1 "$work/pg/data/postmaster.pid")
conn="host=$work/pg user=shardflow dbname=postgres"
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
sql() { psql -h "$work/pg" -U shardflow -d postgres -v ON_ERROR_STOP=1 -qAt -c "$1"; }
columns="stream text, shard text, sequence numeric, sub_sequence bigint, partition_key text,
         arrival timestamptz, data jsonb, data_raw bytea"
table() { # with-key|no-key
  sql "DROP TABLE IF EXISTS t; CREATE TABLE t ($columns$([ "$1" = with-key ] &&
       echo ", PRIMARY KEY (stream, shard, sequence, sub_sequence)")); CHECKPOINT"
}

"$cli" generate "$work/s" --shards $shards --records "$records" 2> /dev/null \
  || fail "shardflow generate failed"

# Every shard checkpointed at its file's end.
all_checkpointed() {
  local f n got
  for f in "$work"/s/shard-*.ndjson; do
    n=$(basename "$f" .ndjson)
    got=$(sqlite3 "$work/s/checkpoints.db" "select sequence from checkpoints where shard = '$n'")
    [ "$got" = "$(stat -c %s "$f")" ] || return 1
  done
}

one_run() { # plain|effectively-once -> prints the seconds
  local mode="$1" t0 t1 got
  table "$([ "$mode" = plain ] && echo no-key || echo with-key)"
  rm -f "$work/s/checkpoints.db"*
  t0=$(date +%s.%N)
  if ! "$cli" run "$work/s" --flusher "postgres:$conn" --pg-table t --pg-mode "$mode" \
       --batch-size 1000 --progress off "${extra[@]}" > /dev/null 2> "$work/err"; then
    fail "shardflow run --pg-mode $mode failed: $(tail -1 "$work/err")"
  fi
  t1=$(date +%s.%N)
  got=$(sql "SELECT count(*) FROM t")
  [ "$got" = "$records" ] || fail "--pg-mode $mode wrote $got rows for $records records"
  all_checkpointed || fail "--pg-mode $mode: a shard is not checkpointed at its file's end"
  echo "$t1 - $t0" | bc -l
}

copy_run() { # -> prints the seconds of psql's \copy of the rows dumped in $work/rows.copy
  local t0 t1 got
  sql "TRUNCATE t; CHECKPOINT"
  t0=$(date +%s.%N)
  psql -h "$work/pg" -U shardflow -d postgres -v ON_ERROR_STOP=1 -q \
    -c "\\copy t FROM '$work/rows.copy'" > /dev/null 2> "$work/err" \
    || fail "psql \\copy failed: $(tail -1 "$work/err")"
  t1=$(date +%s.%N)
  got=$(sql "SELECT count(*) FROM t")
  [ "$got" = "$records" ] || fail "psql \\copy wrote $got rows for $records records"
  echo "$t1 - $t0" | bc -l
}

plain=(); copy=(); once=()
for i in $(seq 1 "$runs"); do
  row=pg-copy
  plain+=("$(one_run plain)")
  if [ "$i" = 1 ]; then
    sql "COPY t TO '$work/rows.copy'" 2> /dev/null \
      || psql -h "$work/pg" -U shardflow -d postgres -qAt -c "\\copy t TO '$work/rows.copy'"
  fi
  copy+=("$(copy_run)")
  row=pg-effectively-once
  once+=("$(one_run effectively-once)")
done

median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
rate() { echo "$records / $1" | bc -l; }
spread() { # seconds... -> slowest..fastest as records/s
  printf '%.0f..%.0f' "$(rate "$(printf '%s\n' "$@" | sort -g | tail -1)")" \
    "$(rate "$(printf '%s\n' "$@" | sort -g | head -1)")"
}
pt=$(median "${plain[@]}"); ct=$(median "${copy[@]}"); ot=$(median "${once[@]}")
printf 'pg: %d records, %d shards, batches of 1,000: plain %.2f s (%s), psql \\copy %.2f s (%s), effectively-once %.2f s (%s)\n' \
  "$records" $shards "$pt" "${plain[*]}" "$ct" "${copy[*]}" "$ot" "${once[*]}"
printf 'ROW\tpg-copy\t%.0f\t%.0f\trecords/s, postgres flusher (plain) vs psql \\copy (target >= 0.7x)\t%s\n' \
  "$(rate "$pt")" "$(rate "$ct")" "$(spread "${plain[@]}")"
printf 'ROW\tpg-effectively-once\t%.0f\t%.0f\trecords/s, effectively-once vs plain (its cost)\t%s\n' \
  "$(rate "$ot")" "$(rate "$pt")" "$(spread "${once[@]}")"
