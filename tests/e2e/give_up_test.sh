#!/usr/bin/env bash
# A shard whose flusher always fails (a FIFO where its output file must go: its first sync fails with
# EINVAL, in every incarnation; batches stay below a pipe's buffer so no write blocks) gives up after its
# restarts, with backoff; it is isolated: the other shards finish all their records (and, under
# --follow, go on taking new ones while /readyz says 503 naming the shard); the run exits 1 naming it.
source "$(dirname "$0")/lib.sh"

restarts=(--intensity 3 --backoff-min 20ms --backoff-max 100ms --batch-size 100)
"$SHARDFLOW" generate "$WORK/s" --shards 3 --records 3000 2> /dev/null
mkdir -p "$WORK/out"; mkfifo "$WORK/out/shard-00001-000001.ndjson"
set +e
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" "${restarts[@]}" --progress off \
  --json "$WORK/sum.json" > /dev/null 2> "$WORK/run.err"
rc=$?
check "a run with a shard that gave up exits 1" test $rc -eq 1
check "... naming the shard" grep -q "shard shard-00001 gave up" "$WORK/run.err"
check "... which restarted with backoff until its intensity was spent, then gave up" python3 -c '
import json, sys
d = {s["id"]: s for s in json.load(open(sys.argv[1]))["shards"]}
assert d["shard-00001"]["outcome"] == "gave_up", d["shard-00001"]
assert d["shard-00001"]["restarts"] == 3, d["shard-00001"]
assert d["shard-00000"]["outcome"] == "ended" and d["shard-00002"]["outcome"] == "ended", d
' "$WORK/sum.json"
check "the other shards finished all their records" \
  all_present "$WORK"/out/shard-0000[02]-*.ndjson < <(cat "$WORK"/s/shard-0000[02].ndjson)
check "... each once" test "$(cat "$WORK"/out/shard-0000[02]-*.ndjson | wc -l)" \
  -eq "$(cat "$WORK"/s/shard-0000[02].ndjson | wc -l)"
check "... and their ends are checkpointed" \
  test "$(sqlite3 "$WORK/s/checkpoints.db" "select count(*) from checkpoints where ended = 1")" -eq 2

# Under --follow the run goes on without the shard that gave up; /readyz says why it is not ready.
"$SHARDFLOW" generate "$WORK/f" --shards 3 --records 300 2> /dev/null
mkdir -p "$WORK/fout"; mkfifo "$WORK/fout/shard-00001-000001.ndjson"
up=0
serve_run "$WORK/follow.err" "$WORK/f" --follow --flusher "file:$WORK/fout" "${restarts[@]}" \
  --progress off --checkpoint-interval 0 && up=1
# Wait (at most 30 s, while the run lives) until /readyz says the shard gave up.
code=0
for _ in $(seq 1 1500); do
  code=$(curl -s -o "$WORK/readyz" -w '%{http_code}' "http://127.0.0.1:$port/readyz")
  grep -q "gave up" "$WORK/readyz" 2> /dev/null && break
  kill -0 $pid 2> /dev/null || break
  sleep 0.02
done
check "/readyz answers 503 once a shard gave up" test "$code" = 503
check "... naming it" grep -qx "not ready: shard shard-00001 gave up after its restarts" "$WORK/readyz"
check "the run goes on after the give-up" kill -0 $pid
echo '{"k":"late","d":"late-record-0"}' >> "$WORK/f/shard-00000.ndjson"
echo '{"k":"late","d":"late-record-2"}' >> "$WORK/f/shard-00002.ndjson"
for _ in $(seq 1 1500); do
  [ "$(cat "$WORK"/fout/shard-0000[02]-*.ndjson | grep -c late-record)" -eq 2 ] && break
  kill -0 $pid 2> /dev/null || break
  sleep 0.02
done
check "... the other shards take records appended after it" \
  test "$(cat "$WORK"/fout/shard-0000[02]-*.ndjson | grep -c late-record)" -eq 2
kill -TERM $pid
wait $pid
rc=$?
check "stopped on a signal, the run exits 1 (a shard gave up)" test $rc -eq 1
check "... naming the shard" grep -q "shard shard-00001 gave up" "$WORK/follow.err"

# A feeder that fails (its dead-letter file cannot be opened) restarts its group with the same
# backoff: three restarts wait at least 100 + 200 + 200 ms (they came 1-2 ms apart before).
printf '{"k":"a","d":"1"}\nnot json\n' > "$WORK/s/shard-00000.ndjson"
rm -f "$WORK"/s/checkpoints.db*
start=$(date +%s%N)
"$SHARDFLOW" run "$WORK/s" --flusher null --bad-input dead-letter --dead-letter /proc/nope \
  --intensity 3 --backoff-min 100ms --backoff-max 200ms --progress off 2> "$WORK/dl.err"
rc=$?
took=$(( ($(date +%s%N) - start) / 1000000 ))
check "a feeder that keeps failing makes the run exit 1" test $rc -eq 1
check "... after its restarts" grep -q "its feeder failed (io_failed): cannot open the dead-letter file" "$WORK/dl.err"
check "... waited out with backoff ($took ms)" test "$took" -ge 450
set -e
finish
