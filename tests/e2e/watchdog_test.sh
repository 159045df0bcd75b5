#!/usr/bin/env bash
# --watchdog with --follow: a shard waiting at the end of its followed file is idle, not stuck, so
# the watchdog does not restart it: on a quiet stream the restarts stay 0 over several watchdog
# periods; a record appended later still flows.
source "$(dirname "$0")/lib.sh"

"$SHARDFLOW" generate "$WORK/s" --shards 2 --records 20 2> /dev/null
# A watchdog no longer than the flush interval plus two heartbeats would take a healthy shard holding
# its records until the heartbeat that flushes them (and the next, for a flusher writing in the
# background) for a stuck one: refused, naming the options.
set +e
"$SHARDFLOW" run "$WORK/s" --follow --watchdog 1s --flush-interval 200ms --flusher null \
  --progress off > /dev/null 2> "$WORK/usage.err"
rc=$?
check "a watchdog not longer than the flush interval and two heartbeats is a usage error" \
  test $rc -eq 2
check "... naming the options" grep -q -- "--watchdog 1s must be longer than 2200 ms (--flush-interval 200ms plus twice --heartbeat-interval 1s)" \
  "$WORK/usage.err"
set -e
up=0
serve_run "$WORK/err" "$WORK/s" --follow --watchdog 1s --flush-interval 200ms \
  --heartbeat-interval 100ms --progress off \
  --flusher "file:$WORK/out" --checkpoint-interval 0 && up=1
set +e
check "the run serves its metrics" test $up -eq 1
# Wait (at most 30 s, while the run lives) until every shard's checkpoint has stood still for 4 s:
# four watchdog periods without a record.
quiet=0
for _ in $(seq 1 1500); do
  curl -sf "http://127.0.0.1:$port/metrics" > "$WORK/metrics"
  n=$(awk '/^shardflow_checkpoint_age_seconds\{/ && $2 >= 4 { n++ } END { print n + 0 }' "$WORK/metrics")
  [ "$n" -eq 2 ] && { quiet=1; break; }
  kill -0 $pid 2> /dev/null || break
  sleep 0.05
done
check "the shards stayed quiet for four watchdog periods" test $quiet -eq 1
check "... and none was restarted" \
  test "$(grep -c '^shardflow_restarts_total{.*} 0$' "$WORK/metrics")" -eq 2
check "... nor did the watchdog fire" test "$(grep -c watchdog "$WORK/err")" -eq 0
echo '{"k":"late","d":"late-record"}' >> "$WORK/s/shard-00000.ndjson"
for _ in $(seq 1 1500); do
  grep -q late-record "$WORK"/out/shard-00000-*.ndjson && break
  kill -0 $pid 2> /dev/null || break
  sleep 0.02
done
check "a record appended later still flows" grep -q late-record "$WORK"/out/shard-00000-*.ndjson
kill -TERM $pid
wait $pid
check "the run stops gracefully (exit 0)" test $? -eq 0
set -e
finish
