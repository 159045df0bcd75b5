#!/usr/bin/env bash
# SIGTERM stops gracefully: exit 0, every shard checkpointed at its last durable record, and the
# rerun processes nothing twice.
source "$(dirname "$0")/lib.sh"

records=300000
"$SHARDFLOW" generate "$WORK/s" --shards 4 --records $records 2>/dev/null
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --checkpoint-interval 1h \
  --flush-interval 1h --progress off --follow > "$WORK/run.out" 2>&1 & pid=$!
while [ "$(cat "$WORK"/out/*.ndjson 2>/dev/null | wc -c)" -lt 1000000 ]; do sleep 0.02; done
kill -TERM $pid
set +e
wait $pid
rc=$?
set -e
check "a graceful stop exits 0" test $rc -eq 0
check "the summary says it stopped on a signal" grep -q "stopped on a signal" "$WORK/run.out"
for f in "$WORK"/s/shard-*.ndjson; do
  shard=$(basename "$f" .ndjson)
  cp=$(checkpoint_of "$WORK/s/checkpoints.db" "$shard")
  if [ -n "$cp" ]; then
    # The checkpoint is at the last record written: exactly the covered lines are in the output.
    check "$shard is checkpointed at its last durable record" \
      test "$(covered_lines "$f" "$cp" | wc -l)" -eq "$(cat "$WORK"/out/$shard-*.ndjson | wc -l)"
  fi
done
set +e
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off > /dev/null 2> "$WORK/rerun.err"
rc=$?
set -e
[ $rc -eq 0 ] || cat "$WORK/rerun.err"
check "the rerun finishes" test $rc -eq 0
check "nothing was processed twice" test "$(cat "$WORK"/out/*.ndjson | wc -l)" -eq $records
check "every record is in the output" all_present "$WORK"/out/*.ndjson < <(cat "$WORK"/s/shard-*.ndjson)
finish
