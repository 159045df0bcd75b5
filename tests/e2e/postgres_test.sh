#!/usr/bin/env bash
# shardflow run STREAM --flusher postgres:CONNINFO against a real PostgreSQL 15 started here (initdb
# + pg_ctl in a temporary directory, 127.0.0.1 and a free port, as user postgres under root,
# stopped by its PID): every record lands once; kill -9 mid-run and a rerun still leave every record
# exactly once (effectively-once mode); the server restarted under a running job is ridden out;
# a bad connection string (exit 2), a wrong password, a missing table and a column mismatch
# (exit 1) fail before any shard starts, with clear messages, nothing checkpointed; --pg-columns
# renames and picks the columns written.
source "$(dirname "$0")/lib.sh"

pid="" # the shardflow run in the background, if any
on_exit() { [ -z "$pid" ] || kill -9 "$pid" 2> /dev/null || true; }
source "$(dirname "$0")/postgres_lib.sh"

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
check "the start says which mode it runs in" \
  grep -q "postgres table t_run: effectively-once (a unique key on (stream, shard, sequence, sub_sequence))" "$WORK/a.err"
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
partly_written() { # 20,000 rows in, or the run already over
  [ "$(sql "select count(*) from t_kill")" -ge 20000 ] || ! kill -0 $pid 2> /dev/null
}
wait_for partly_written || true
check "the run was killed mid-run (rows: $(sql "select count(*) from t_kill"))" kill -9 $pid
wait $pid 2>/dev/null || true
check "the killed run left part of the records" test "$(sql "select count(*) from t_kill")" -lt $records
set +e
"$SHARDFLOW" run "$WORK/b" --flusher "postgres:$conn" --pg-table t_kill "${run_args[@]}" \
  > /dev/null 2> "$WORK/b.err"
code=$?
set -e
check "the rerun ends with exit 0 ($code)" test $code -eq 0
check "after kill -9 and a rerun every record is in the table exactly once" exactly_once t_kill

# 3. The server restarted under a running job: records that arrive while it is down are retried on
# new connections and land once it is back; the job rides it out (no restart, exit 0 on SIGTERM).
fresh r
"$SHARDFLOW" generate "$WORK/more" --shards $shards --records 20000 2> /dev/null
"$SHARDFLOW" run "$WORK/r" --follow --flusher "postgres:$conn" --pg-create-table \
  --pg-table t_restart "${run_args[@]}" > "$WORK/r.out" 2> "$WORK/r.err" & pid=$!
rows_are() { # table count: whether the table has that many rows
  [ "$(sql "select count(*) from $1" 2> /dev/null || echo 0)" = "$2" ]
}
check "the running job wrote every record" wait_for rows_are t_restart $records
old_port=$port
stop_pg
for i in $(seq 0 $((shards - 1))); do # records arrive while the server is down
  f=$(printf 'shard-%05d.ndjson' "$i")
  cat "$WORK/more/$f" >> "$WORK/r/$f"
done
check "the flusher retries while the server is down" \
  wait_for grep -q "writing the batch of .* records again" "$WORK/r.err"
start_pg
check "the server came back on its port" test "$port" = "$old_port"
check "the records that arrived meanwhile land once it is back" \
  wait_for rows_are t_restart $((records + 20000))
kill -TERM $pid
set +e
wait $pid
code=$?
set -e
check "the job rode out the restart: exit 0 on SIGTERM ($code)" test $code -eq 0
check "no shard restarted" grep -q "; 0 restarts;" "$WORK/r.err"
check "every record is in the table once" \
  test "$(sql "select count(distinct (shard, sequence)) from t_restart")" = $((records + 20000))
check "what libpq heard from the stopping server went to the log, not raw to stderr" \
  bash -c '! grep -E "^(FATAL|ERROR|WARNING|server closed)" "$1"' _ "$WORK/r.err"

# 4. Failures before the first record: exit codes, clear messages, nothing checkpointed.
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

# 5. --pg-columns: a table whose columns do not match fails before the first record (exit 1);
# a list that names no role exits 2; the columns named are the ones written.
sql "create table t_cols (stream text, shard text, seq bigint, body bytea)" > /dev/null
set +e
"$SHARDFLOW" run "$WORK/c" --flusher "postgres:$conn" --pg-table t_cols \
  --pg-columns stream,shard,sequence=seq,data=body --pg-data bytea --progress off \
  > /dev/null 2> "$WORK/c.err"
code=$?
set -e
check "a column mismatch exits 1 ($code)" test $code -eq 1
check "it names the column and both types" grep -q "column seq is bigint, not numeric" "$WORK/c.err"
check "nothing is checkpointed after a column mismatch" nothing_checkpointed c
set +e
"$SHARDFLOW" run "$WORK/c" --flusher "postgres:$conn" --pg-columns stream,sequnce --progress off \
  > /dev/null 2> "$WORK/c.err"
code=$?
set -e
check "a --pg-columns without such a role exits 2 ($code)" test $code -eq 2
check "it names the unknown role" grep -q 'no column role "sequnce"' "$WORK/c.err"
sql "alter table t_cols alter column seq type numeric" > /dev/null
fresh d
set +e
"$SHARDFLOW" run "$WORK/d" --flusher "postgres:$conn" --pg-table t_cols \
  --pg-columns stream,shard,sequence=seq,data=body --pg-data bytea --pg-copy binary "${run_args[@]}" \
  > /dev/null 2> "$WORK/d.err"
code=$?
set -e
check "a run into the renamed columns ends with exit 0 ($code)" test $code -eq 0
check "every record is in the renamed columns, data as bytea" test \
  "$(sql "select count(*), count(distinct convert_from(body, 'UTF8')::jsonb->>'id') from t_cols")" \
  = "$records|$records"

# 6. What the start checks besides the table: effectively-once needs the right to make the
# temporary staging table (else exit 1 before the first record, naming the GRANT, not a failure at
# the first replay); plain mode on a table with another unique key warns that a replay would fail;
# --pg-data bytea takes the default columns without data_raw.
sql "create role nt login password 'nt'; revoke temporary on database postgres from public;
     grant insert on t_run to nt" > /dev/null
fresh e
set +e
"$SHARDFLOW" run "$WORK/e" --flusher "postgres:host=127.0.0.1 port=$port user=nt password=nt dbname=postgres" \
  --pg-table t_run --progress off > /dev/null 2> "$WORK/e.err"
code=$?
set -e
check "effectively-once without the TEMPORARY privilege exits 1 ($code)" test $code -eq 1
check "... naming the grant" grep -q "may not create one in database postgres (GRANT TEMPORARY ON DATABASE postgres" "$WORK/e.err"
check "... before anything is checkpointed" nothing_checkpointed e
sql "grant temporary on database postgres to public" > /dev/null
sql "create table t_uq (stream text, shard text, sequence numeric, sub_sequence bigint,
     partition_key text, arrival timestamptz, data jsonb, data_raw bytea, unique (shard, sequence))" > /dev/null
fresh u
set +e
"$SHARDFLOW" run "$WORK/u" --flusher "postgres:$conn" --pg-table t_uq "${run_args[@]}" \
  > /dev/null 2> "$WORK/u.err"
code=$?
set -e
check "a table without the record key runs in plain mode ($code)" test $code -eq 0
check "... saying so" grep -q "postgres table t_uq: plain (no unique key on exactly" "$WORK/u.err"
check "... and warning that its other unique index fails a replay" \
  grep -q "a replayed row violates its unique index (CREATE UNIQUE INDEX t_uq_shard_sequence_key" "$WORK/u.err"
sql "create table t_id (id bigserial primary key, stream text, shard text, sequence numeric,
     sub_sequence bigint, partition_key text, arrival timestamptz, data jsonb, data_raw bytea)" > /dev/null
fresh i
"$SHARDFLOW" run "$WORK/i" --flusher "postgres:$conn" --pg-table t_id "${run_args[@]}" \
  > /dev/null 2> "$WORK/i.err"
check "a unique key on a column the flusher does not write (a bigserial id) draws no warning" \
  bash -c '! grep -q "violates its unique index" "$1"' _ "$WORK/i.err"
fresh b
set +e
"$SHARDFLOW" run "$WORK/b" --flusher "postgres:$conn" --pg-create-table --pg-table t_bytea \
  --pg-data bytea "${run_args[@]}" > /dev/null 2> "$WORK/b.err"
code=$?
set -e
[ $code -eq 0 ] || cat "$WORK/b.err"
check "--pg-data bytea alone takes the default columns without data_raw ($code)" test $code -eq 0
check "... every record in the table" test "$(sql "select count(*) from t_bytea")" = $records

finish
