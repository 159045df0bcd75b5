#!/usr/bin/env bash
# SIGTERM stops gracefully: exit 0, every shard checkpointed at its last durable record, and the
# rerun processes nothing twice.
source "$(dirname "$0")/lib.sh"

records=300000
"$SHARDFLOW" generate "$WORK/s" --shards 4 --records $records 2>/dev/null
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --checkpoint-interval 1h \
  --flush-interval 1h --progress off --follow > "$WORK/run.out" 2>&1 & pid=$!
# Wait (at most 30 s, and only while the run lives) until some output is written.
for _ in $(seq 1 1500); do
  kill -0 $pid 2>/dev/null || break
  [ "$(cat "$WORK"/out/*.ndjson 2>/dev/null | wc -c)" -ge 1000000 ] && break
  sleep 0.02
done
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

# A second signal stops at once (exit 130): both arrive while the run is stopped, so the handler sees
# them one after the other however fast the graceful stop would be.
"$SHARDFLOW" generate "$WORK/s2" --shards 2 --records 20000 2>/dev/null
# Runs `run --follow` on s2 into OUT-DIR (stderr to ERR-FILE, more options after) and, once a
# record is out, sends two signals while it is stopped; sets $rc.
second_signal() { # out-dir err-file [options...]
  local out="$1" err="$2"
  shift 2
  "$SHARDFLOW" run "$WORK/s2" --flusher "file:$out" --progress off --follow "$@" \
    > /dev/null 2> "$err" & pid=$!
  for _ in $(seq 1 500); do
    [ "$(cat "$out"/*.ndjson 2>/dev/null | wc -l)" -gt 0 ] && break
    sleep 0.02
  done
  kill -STOP $pid
  kill -INT $pid
  kill -TERM $pid
  kill -CONT $pid
  set +e
  wait $pid
  rc=$?
  set -e
}
second_signal "$WORK/out2" "$WORK/run2.err"
check "a second signal stops at once (exit 130)" test $rc -eq 130
check "... saying so" grep -q "shardflow run: stopping at once" "$WORK/run2.err"
check "... in a log line with its time" \
  grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z error shardflow run: stopping at once' \
  "$WORK/run2.err"
# The same under --log-format json (checkpoints of its own: the rerun below is of the first run):
# the line is a JSON object like every other.
second_signal "$WORK/out2j" "$WORK/run2j.err" --log-format json --checkpoints "$WORK/cp2j.db"
check "under --log-format json too (exit 130)" test $rc -eq 130
every_line_json() {
  python3 -c 'import json,sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
objs = [json.loads(l) for l in lines]
sys.exit(0 if any(o["level"] == "error" and o["message"].startswith("stopping at once")
                  and o["time"].endswith("Z") for o in objs) else 1)' "$1"
}
check "... every line of stderr is JSON, the last saying it stops at once" every_line_json "$WORK/run2j.err"
set +e
"$SHARDFLOW" run "$WORK/s2" --flusher "file:$WORK/out2" --progress off > /dev/null 2> "$WORK/rerun2.err"
rc=$?
set -e
check "... and a rerun resumes and finishes" test $rc -eq 0
check "... with every record in the output" \
  all_present "$WORK"/out2/*.ndjson < <(cat "$WORK"/s2/shard-*.ndjson)
finish
