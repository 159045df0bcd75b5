#!/usr/bin/env bash
# put -> run: the output holds every input record, each shard's checkpoint is its last record, and a
# rerun does nothing twice.
source "$(dirname "$0")/lib.sh"

for i in $(seq 1 3000); do
  printf '{"user":"u%d","n":%d,"text":"line \\"%d\\" \\\\ tab\\there"}\n' $((i % 37)) "$i" "$i"
done > "$WORK/input.ndjson"
printf 'plain text line %d\n' 1 2 3 > "$WORK/input.txt"

"$SHARDFLOW" put "$WORK/s" "$WORK/input.ndjson" --shards 3 --key user 2> "$WORK/put.log"
check "put reports the records" grep -q "put: 3000 records" "$WORK/put.log"
"$SHARDFLOW" put "$WORK/s" --format text < "$WORK/input.txt" 2>/dev/null
check "the stream has 3003 records" test "$(cat "$WORK"/s/shard-*.ndjson | wc -l)" -eq 3003
check "records of one key share a shard" \
  test "$(grep -l '\\"user\\":\\"u5\\"' "$WORK"/s/shard-*.ndjson | wc -l)" -eq 1

"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --json > "$WORK/run.json" 2> "$WORK/run.log"
check "run exits 0" test $? -eq 0
check "the JSON summary counts every record" grep -q '"records":3003' "$WORK/run.json"
check "every input record is in the output" all_present "$WORK"/out/*.ndjson < <(cat "$WORK"/s/shard-*.ndjson)
check "no record is in the output twice" \
  test "$(cat "$WORK"/out/*.ndjson | sort | uniq -d | wc -l)" -eq 0
for f in "$WORK"/s/shard-*.ndjson; do
  shard=$(basename "$f" .ndjson)
  last=$(( $(stat -c %s "$f") - $(tail -n 1 "$f" | wc -c) ))
  check "$shard is checkpointed at its last record ($last)" \
    test "$(checkpoint_of "$WORK/s/checkpoints.db" "$shard")" = "$last"
done

"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --json > "$WORK/rerun.json" 2>/dev/null
check "a rerun processes nothing" grep -q '"records":0,' "$WORK/rerun.json"
check "a rerun writes nothing" test "$(cat "$WORK"/out/*.ndjson | wc -l)" -eq 3003
finish
