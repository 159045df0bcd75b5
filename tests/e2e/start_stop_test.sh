#!/usr/bin/env bash
# The start of a run: the status server answers before the first shard starts (/healthz 200,
# /readyz 503 "not ready: K of N shards started"), a --metrics port that is taken fails the run
# before any work, and a signal while shards are still starting stops the run as a stop on a
# signal: every planned shard has its row (the unstarted ones `not started`, in the table, the
# summary line and the JSON), never "N of N shards at their end", and exit 0 (a graceful stop that
# checkpointed every started shard; a rerun processes the rest, each record once).
source "$(dirname "$0")/lib.sh"

json_field() { # json-file python-expression-on-d
  python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"
}

# -- a taken --metrics port fails at once: nothing processed, nothing checkpointed ------------------
# The holder sets SO_REUSEPORT, as another shardflow's status server did: a listener with it let a
# second one bind the same port (both ran, each answering every other scrape).
"$SHARDFLOW" generate "$WORK/p" --shards 2 --records 2000 2> /dev/null
python3 -c 'import socket,time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(120)' > "$WORK/port" &
holder=$!
wait_for test -s "$WORK/port"
taken=$(cat "$WORK/port")
set +e
"$SHARDFLOW" run "$WORK/p" --flusher "file:$WORK/pout" --progress off \
  --metrics "127.0.0.1:$taken" > /dev/null 2> "$WORK/perr"
rc=$?
set -e
kill "$holder" 2> /dev/null || true
wait "$holder" 2> /dev/null || true
check "a taken --metrics port fails the run (exit 1)" test $rc -eq 1
check "... naming the address and why" \
  grep -q -- "--metrics: cannot listen on 127.0.0.1:$taken: Address already in use" "$WORK/perr"
check "... before any shard ran: no record written" \
  test "$(cat "$WORK"/pout/*.ndjson 2> /dev/null | wc -l)" -eq 0
check "... and nothing checkpointed" \
  test "$(sqlite3 "$WORK/p/checkpoints.db" 'select count(*) from checkpoints' 2> /dev/null || echo 0)" -eq 0

# -- a signal while the shards are starting ----------------------------------------------------------
# 48 shards on one CAF thread start one by one; the status server is up before the first, so the
# first answer of /readyz is a 503 while shards are still to start, and the TERM follows it. The
# start can still win the race on a fast machine (every shard started before the TERM landed): then
# the try is repeated on a fresh stream, at most 5 times, and the check fails if none caught it.
shards=48
caught=0
for attempt in 1 2 3 4 5; do
  s="$WORK/s$attempt"
  "$SHARDFLOW" generate "$s" --shards $shards --records 100000 2> /dev/null
  if ! serve_run "$WORK/err$attempt" "$s" --flusher "file:$WORK/out$attempt" --progress off \
    --threads 1 --json "$WORK/sum$attempt.json"; then
    echo "  try $attempt: the status server never answered /healthz"
    break
  fi
  ready=$(curl -s "http://127.0.0.1:$port/readyz" || true)
  kill -TERM "$pid"
  set +e
  wait "$pid"
  rc=$?
  set -e
  echo "  try $attempt: /readyz said \"$ready\" before the TERM; exit $rc"
  if [ "$(json_field "$WORK/sum$attempt.json" 'd["not_started"]')" -gt 0 ]; then
    caught=$attempt
    break
  fi
done
check "the status server answered during the start (/readyz 503 'not ready: K of $shards')" \
  grep -q "^not ready: [0-9]* of $shards shards started$" <<< "$ready"
check "a TERM landed while shards were still starting (in one of 5 tries)" test "$caught" -gt 0
if [ "$caught" -gt 0 ]; then
  s="$WORK/s$caught"; err="$WORK/err$caught"; sum="$WORK/sum$caught.json"
  ns=$(json_field "$sum" 'd["not_started"]')
  check "a run stopped during its start exits 0 (every started shard checkpointed)" test "$rc" -eq 0
  check "... it says it is stopping" grep -q "stopping: every shard flushes and checkpoints" "$err"
  check "... the table has a row for every planned shard" \
    test "$(grep -c '^shard-000[0-9][0-9] ' "$err")" -eq $shards
  check "... the unstarted ones read 'not started'" \
    test "$(grep -c '^shard-000[0-9][0-9] .* not started$' "$err")" -eq "$ns"
  check "... the summary counts them and says stopped on a signal" \
    grep -q "of $shards shards at their end; $ns not started; stopped on a signal, every started shard checkpointed" "$err"
  check "... never '$shards of $shards shards at their end'" \
    not_grep "$shards of $shards shards at their end" "$err"
  check "the JSON has every planned shard" test "$(json_field "$sum" 'len(d["shards"])')" -eq $shards
  check "... the unstarted ones with outcome not_started, not ended" \
    test "$(json_field "$sum" 'sum(1 for x in d["shards"] if x["outcome"] == "not_started" and not x["ended"])')" -eq "$ns"
  check "... stopped_on_signal and exit_code 0" \
    test "$(json_field "$sum" 'd["stopped_on_signal"] and d["exit_code"] == 0')" = True
  check "... their input counts as lag" test "$(json_field "$sum" 'd["lag_bytes"]')" -gt 0
  set +e
  "$SHARDFLOW" run "$s" --flusher "file:$WORK/out$caught" --progress off --json "$WORK/rerun.json" \
    > /dev/null 2> "$WORK/rerun.err"
  rc=$?
  set -e
  check "the rerun ends every shard (exit 0)" test $rc -eq 0 -a \
    "$(json_field "$WORK/rerun.json" 'd["ended"]')" -eq $shards
  check "... and every record was written once (the output is the input, line for line)" \
    cmp -s <(cat "$s"/shard-*.ndjson | sort) <(cat "$WORK/out$caught"/*.ndjson | sort)
fi
finish
