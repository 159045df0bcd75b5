#!/usr/bin/env bash
# Lag reaches 0: a local record's checkpoint is the byte offset just after its line, so once every
# record is durable each shard's checkpoint is its file's size. While following, /metrics shows lag 0
# (and again after more records are put); after the run the database holds the file sizes, and a
# rerun takes nothing twice. Dead letters keep their context beside the raw line.
source "$(dirname "$0")/lib.sh"

# Checks that each shard of stream $1 is checkpointed at its file's size in the database ($2: when).
check_checkpoints_are_sizes() {
  local f shard
  for f in "$1"/shard-*.ndjson; do
    shard=$(basename "$f" .ndjson)
    check "$shard's checkpoint is its file's size $2" \
      test "$(checkpoint_of "$1/checkpoints.db" "$shard")" = "$(stat -c %s "$f")"
  done
}

"$SHARDFLOW" generate "$WORK/s" --shards 2 --records 1000 2> /dev/null

# -- a finite run: every checkpoint is the size of its shard file -----------------------------------
set +e
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off > /dev/null 2> "$WORK/run.err"
rc=$?
set -e
check "the run exits 0" test $rc -eq 0
check_checkpoints_are_sizes "$WORK/s" "(lag 0)"
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off > /dev/null 2>&1
check "a rerun takes nothing twice" test "$(cat "$WORK"/out/*.ndjson | wc -l)" -eq 1000

# -- following: lag 0 on /metrics, and again after a put -------------------------------------------
"$SHARDFLOW" generate "$WORK/f" --shards 2 --records 1000 2> /dev/null
pid=
up=0
serve_run "$WORK/follow.err" "$WORK/f" --flusher null --follow --progress off \
  --checkpoint-interval 0 --flush-interval 100ms && up=1
curl -sf "http://127.0.0.1:$port/metrics" > "$WORK/metrics.txt" || up=0
check "the metrics endpoint answers" test $up -eq 1
lag_zero() { # every shard at lag 0, its checkpoint the size of its file
  curl -sf "http://127.0.0.1:$port/metrics" > "$WORK/metrics.txt" || return 1
  for f in "$WORK"/f/shard-*.ndjson; do
    local shard
    shard=$(basename "$f" .ndjson)
    grep -qx "shardflow_checkpoint_lag_bytes{shard=\"$shard\"} 0" "$WORK/metrics.txt" || return 1
    grep -qx "shardflow_checkpoint_offset_bytes{shard=\"$shard\"} $(stat -c %s "$f")" \
      "$WORK/metrics.txt" || return 1
  done
}
wait_lag_zero() {
  for _ in $(seq 1 1500); do # 30 s at most
    lag_zero && return 0
    kill -0 $pid 2> /dev/null || return 1
    sleep 0.02
  done
  return 1
}
check "a follower whose records are all durable shows lag 0" wait_lag_zero
for i in $(seq 1 50); do printf '{"user":"late-%d"}\n' "$i"; done |
  "$SHARDFLOW" put "$WORK/f" --key user 2> /dev/null
check "... and lag 0 again once the records put later are durable" wait_lag_zero
kill -TERM $pid
set +e
wait $pid
rc=$?
set -e
check "the follower stops gracefully (0)" test $rc -eq 0
check_checkpoints_are_sizes "$WORK/f" "after following"

# -- dead letters: the raw line as it was, and its context beside it --------------------------------
printf '{"k":"a","d":"one"}\n[1,2]\n{"k":"a","d":"two"}\n' > "$WORK/lines"
"$SHARDFLOW" put "$WORK/d" --shards 1 < /dev/null 2> /dev/null
cat "$WORK/lines" > "$WORK/d/shard-00000.ndjson"
set +e
"$SHARDFLOW" run "$WORK/d" --flusher "file:$WORK/dout" --bad-input dead-letter --progress off \
  > /dev/null 2> "$WORK/dead.err"
rc=$?
set -e
check "under dead-letter the run finishes (0)" test $rc -eq 0
check "the dead-letter file holds the raw line unchanged" \
  test "$(cat "$WORK/d/dead-letter/shard-00000.ndjson")" = "[1,2]"
check "its context names the file, offset, line, reason, length and copy" \
  grep -qxF "{\"file\":\"$WORK/d/shard-00000.ndjson\",\"offset\":20,\"line\":2,\"reason\":\"not a JSON object\",\"bytes\":5,\"copy\":\"shard-00000.ndjson\",\"at\":0}" \
  "$WORK/d/dead-letter/shard-00000.context.ndjson"
finish
