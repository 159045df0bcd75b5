#!/usr/bin/env bash
# shardflow run STREAM --flusher postgres:CONNINFO against a real PostgreSQL 15 started here (initdb
# + pg_ctl in a temporary directory, 127.0.0.1 and a free port, as user postgres under root,
# stopped by its PID): every record lands once; kill -9 mid-run and a rerun still leave every record
# exactly once (effectively-once mode); a bad connection string (exit 2), a wrong password and a
# missing table (exit 1) fail before any shard starts, with clear messages, nothing checkpointed.
source "$(dirname "$0")/lib.sh"

PG_BIN=/usr/lib/postgresql/15/bin
PGDIR="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-pg.XXXXXX")"
pg_pid=""
stop_pg() {
  [ -n "$pg_pid" ] || return 0
  kill -INT "$pg_pid" 2>/dev/null || true
  for _ in $(seq 1 1500); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.02; done
  kill -KILL "$pg_pid" 2>/dev/null || true
  pg_pid=""
}
trap 'stop_pg; rm -rf "$PGDIR"; [ "${KEEP:-}" = 1 ] || rm -rf "$WORK"' EXIT

as=()
if [ "$(id -u)" = 0 ]; then chown postgres "$PGDIR"; as=(runuser -u postgres --); fi
echo secret > "$PGDIR/pw"
"${as[@]}" "$PG_BIN/initdb" -D "$PGDIR/data" -U shardflow --auth=scram-sha-256 \
  --pwfile="$PGDIR/pw" -N -E UTF8 --locale=C > "$PGDIR/initdb.log" 2>&1
for attempt in 1 2 3 4 5; do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  if "${as[@]}" "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 30 \
       -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PGDIR" \
       start > /dev/null; then
    pg_pid=$(head -1 "$PGDIR/data/postmaster.pid"); break
  fi
done
[ -n "$pg_pid" ] || { echo "FAILED: PostgreSQL did not start"; cat "$PGDIR/server.log"; exit 1; }
conn="host=127.0.0.1 port=$port user=shardflow password=secret dbname=postgres"
sql() { PGPASSWORD=secret psql -h 127.0.0.1 -p "$port" -U shardflow -d postgres -At -c "$1"; }

records=100000
shards=4
"$SHARDFLOW" generate "$WORK/s" --shards $shards --records $records 2> /dev/null
fresh() { rm -rf "$WORK/$1"; cp -r "$WORK/s" "$WORK/$1"; } # a copy of the stream, no checkpoints
run_args=(--batch-size 1000 --flush-interval 50ms --checkpoint-interval 0 --progress off)

# Exactly once: count(*) and distinct ids are both the number of records.
exactly_once() { # table
  [ "$(sql "select count(*), count(distinct data->>'id') from $1")" = "$records|$records" ]
}
# No shard of stream $1 has a checkpoint.
nothing_checkpointed() {
  local db="$WORK/$1/checkpoints.db"
  [ ! -e "$db" ] || [ "$(sqlite3 "$db" 'select count(*) from checkpoints' 2>/dev/null || echo 0)" = 0 ]
}

# 1. A run from start to end.
fresh a
set +e
"$SHARDFLOW" run "$WORK/a" --flusher "postgres:$conn" --pg-create-table --pg-table t_run \
  "${run_args[@]}" > /dev/null 2> "$WORK/a.err"
code=$?
set -e
check "the run ends with exit 0 ($code)" test $code -eq 0
check "every record is in the table exactly once" exactly_once t_run
check "the rows carry stream, shard and arrival" \
  test "$(sql "select count(distinct shard), min(stream), count(arrival) from t_run")" = "$shards|a|$records"
check "a shard's checkpoint is its file's size" \
  test "$(checkpoint_of "$WORK/a/checkpoints.db" shard-00000)" = "$(stat -c %s "$WORK/a/shard-00000.ndjson")"

# 2. kill -9 mid-run (some batches committed, the checkpoints behind them), then a rerun.
fresh b
sql "create table t_kill (stream text, shard text, sequence numeric, sub_sequence bigint,
     partition_key text, arrival timestamptz, data jsonb, data_raw bytea,
     primary key (stream, shard, sequence, sub_sequence))" > /dev/null
"$SHARDFLOW" run "$WORK/b" --flusher "postgres:$conn" --pg-table t_kill --io-threads 1 \
  "${run_args[@]}" > /dev/null 2>&1 & pid=$!
for _ in $(seq 1 3000); do # at most 60 s
  rows=$(sql "select count(*) from t_kill")
  [ "$rows" -lt 20000 ] && kill -0 $pid 2>/dev/null || break
  sleep 0.02
done
check "the run was killed mid-run (rows: $rows)" kill -9 $pid
wait $pid 2>/dev/null || true
check "the killed run left part of the records" test "$(sql "select count(*) from t_kill")" -lt $records
set +e
"$SHARDFLOW" run "$WORK/b" --flusher "postgres:$conn" --pg-table t_kill "${run_args[@]}" \
  > /dev/null 2> "$WORK/b.err"
code=$?
set -e
check "the rerun ends with exit 0 ($code)" test $code -eq 0
check "after kill -9 and a rerun every record is in the table exactly once" exactly_once t_kill

# 3. Failures before the first record: exit codes, clear messages, nothing checkpointed.
fresh c
set +e
"$SHARDFLOW" run "$WORK/c" --flusher "postgres:host=127.0.0.1 port" --progress off \
  > /dev/null 2> "$WORK/c.err"
code=$?
set -e
check "a bad connection string exits 2 ($code)" test $code -eq 2
check "it says the connection string does not parse" grep -q "not a libpq connection string" "$WORK/c.err"
check "nothing is checkpointed after a bad connection string" nothing_checkpointed c

set +e
"$SHARDFLOW" run "$WORK/c" --flusher "postgres:${conn/password=secret/password=wrong}" \
  --pg-create-table --progress off > /dev/null 2> "$WORK/c.err"
code=$?
set -e
check "a wrong password exits 1 ($code)" test $code -eq 1
check "it says the password was refused" grep -q "password authentication failed" "$WORK/c.err"
check "nothing is checkpointed after a wrong password" nothing_checkpointed c

set +e
"$SHARDFLOW" run "$WORK/c" --flusher "postgres:$conn" --pg-table no_such_table --progress off \
  > /dev/null 2> "$WORK/c.err"
code=$?
set -e
check "a missing table exits 1 ($code)" test $code -eq 1
check "it names the table and --pg-create-table" \
  grep -q "no_such_table: does not exist in database postgres (create it with --pg-create-table)" "$WORK/c.err"
check "nothing is checkpointed after a missing table" nothing_checkpointed c
check "no table was created" test "$(sql "select to_regclass('no_such_table') is null")" = t

finish
