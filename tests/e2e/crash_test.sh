#!/usr/bin/env bash
# kill -9 at several moments, then rerun to the end: nothing is lost, no checkpoint ever passed a
# record that was not in the output, and duplicates stay within the unflushed window.
source "$(dirname "$0")/lib.sh"

records=800000
shards=4
batch=500
"$SHARDFLOW" generate "$WORK/s" --shards $shards --records $records 2>/dev/null
run_args=(run "$WORK/s" --flusher "file:$WORK/out" --batch-size $batch --checkpoint-interval 0
          --flush-interval 50ms --progress off)

kills=0
window=0 # records in the output beyond the checkpoints, summed over the kills
for threshold in 1000000 6000000 14000000; do
  "$SHARDFLOW" "${run_args[@]}" > /dev/null 2>&1 & pid=$! # the shardflow process itself
  # Wait until the output has grown past the threshold (or the run ended), then kill -9.
  while kill -0 $pid 2>/dev/null && [ "$(cat "$WORK"/out/*.ndjson 2>/dev/null | wc -c)" -lt $threshold ]; do
    sleep 0.02
  done
  if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
  wait $pid 2>/dev/null || true
  # After each kill: every record a checkpoint covers is in the output.
  for f in "$WORK"/s/shard-*.ndjson; do
    shard=$(basename "$f" .ndjson)
    cp=$(checkpoint_of "$WORK/s/checkpoints.db" "$shard")
    if [ -z "$cp" ]; then # no checkpoint yet: everything written so far comes again
      window=$(( window + $( (cat "$WORK"/out/$shard-*.ndjson 2>/dev/null || true) | wc -l) ))
      continue
    fi
    check "after kill $kills, $shard's checkpoint ($cp) covers only records in the output" \
      all_present "$WORK"/out/$shard-*.ndjson < <(covered_lines "$f" "$cp")
    window=$(( window + $(cat "$WORK"/out/$shard-*.ndjson | wc -l) - $(covered_lines "$f" "$cp" | wc -l) ))
  done
done
check "the run was killed at least twice" test $kills -ge 2

"$SHARDFLOW" "${run_args[@]}" > /dev/null 2>&1
check "the final run completes" test $? -eq 0
check "every record is in the output" all_present "$WORK"/out/*.ndjson < <(cat "$WORK"/s/shard-*.ndjson)
duplicates=$(( $(cat "$WORK"/out/*.ndjson | wc -l) - records ))
# A kill can only make the records flushed after the last acknowledged checkpoint come again.
echo "duplicates: $duplicates after $kills kills; unflushed window at the kills: $window records"
check "duplicates come only from the unflushed window" test $duplicates -le $window
finish
