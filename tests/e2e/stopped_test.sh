#!/usr/bin/env bash
# A shard stopped at a bad or incomplete line is reported as stopped, not ended: the table says
# "stopped at FILE:LINE (reason)", the JSON "ended": false, "outcome": "stopped", "stopped_at", the
# store keeps no end marker for it, and the run exits 3. A shard that really reached its end is
# ended with lag 0.
source "$(dirname "$0")/lib.sh"

shard_json() { # json-file shard field
  python3 -c 'import json,sys
d = {s["id"]: s for s in json.load(open(sys.argv[1]))["shards"]}
print(json.dumps(d[sys.argv[2]][sys.argv[3]]))' "$@"
}
ended_of() { sqlite3 "$1" "select ended from checkpoints where shard = '$2'"; }

"$SHARDFLOW" generate "$WORK/s" --shards 2 --records 2000 2> /dev/null
f="$WORK/s/shard-00001.ndjson"
head -n 100 "$f" > "$WORK/head"; tail -n +101 "$f" > "$WORK/tail"
{ cat "$WORK/head"; echo '{"k":"x","d": not json'; cat "$WORK/tail"; } > "$f"
set +e
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off --json "$WORK/sum.json" \
  > /dev/null 2> "$WORK/err"
rc=$?
check "a shard stopped at a bad line makes the run exit 3" test $rc -eq 3
check "the table says where it stopped" \
  grep -q "^shard-00001 .* stopped at .*/s/shard-00001.ndjson:101 (not valid JSON" "$WORK/err"
check "... and that the other shard ended" grep -q "^shard-00000 .* ended$" "$WORK/err"
check "the JSON says it did not end" test "$(shard_json "$WORK/sum.json" shard-00001 ended)" = false
check "... its outcome is stopped" \
  test "$(shard_json "$WORK/sum.json" shard-00001 outcome)" = '"stopped"'
check "... and where (stopped_at)" \
  grep -q 'shard-00001.ndjson:101 (not valid JSON' <(shard_json "$WORK/sum.json" shard-00001 stopped_at)
check "... with the rest of its input as lag" \
  test "$(shard_json "$WORK/sum.json" shard-00001 lag_bytes)" -eq "$(($(wc -c < "$WORK/tail") + 23))"
check "the other shard ended with lag 0" \
  test "$(shard_json "$WORK/sum.json" shard-00000 lag_bytes)" -eq 0 -a \
  "$(shard_json "$WORK/sum.json" shard-00000 stopped_at)" = null
check "the store has no end marker for the stopped shard" \
  test "$(ended_of "$WORK/s/checkpoints.db" shard-00001)" -eq 0
check "... and one for the shard that ended" \
  test "$(ended_of "$WORK/s/checkpoints.db" shard-00000)" -eq 1

# A shard file that ends inside a line (a writer died mid-line): stopped there, not ended.
"$SHARDFLOW" generate "$WORK/i" --shards 1 --records 50 2> /dev/null
printf '{"k":"x","d":"cut in the mid' >> "$WORK/i/shard-00000.ndjson"
"$SHARDFLOW" run "$WORK/i" --flusher "file:$WORK/iout" --progress off --json "$WORK/isum.json" \
  > /dev/null 2> "$WORK/ierr"
rc=$?
check "a shard file ending inside a line makes the run exit 3" test $rc -eq 3
check "... the table says it stopped at line 51" \
  grep -q "^shard-00000 .* stopped at .*/i/shard-00000.ndjson:51 (" "$WORK/ierr"
check "... the JSON says stopped, not ended" \
  test "$(shard_json "$WORK/isum.json" shard-00000 outcome)" = '"stopped"' -a \
  "$(shard_json "$WORK/isum.json" shard-00000 ended)" = false
check "... no end marker" test "$(ended_of "$WORK/i/checkpoints.db" shard-00000)" -eq 0
check "... every whole line before it processed" \
  test "$(cat "$WORK"/iout/*.ndjson | wc -l)" -eq 50

# A checkpoint beyond the end of a truncated file (the store has the end marker of the run before):
# exit 3, the shard stopped at its checkpoint, never "ended" nor "at their end", and no
# --bad-input dead-letter hint (no line is malformed).
"$SHARDFLOW" generate "$WORK/m" --shards 2 --records 200 2> /dev/null
"$SHARDFLOW" run "$WORK/m" --flusher null --progress off 2> /dev/null
truncate -s 500 "$WORK/m/shard-00000.ndjson"
"$SHARDFLOW" run "$WORK/m" --flusher null --progress off --json "$WORK/msum.json" \
  > /dev/null 2> "$WORK/merr"
rc=$?
check "a checkpoint beyond a truncated file makes the run exit 3" test $rc -eq 3
check "... the table says stopped at the file, not ended" \
  grep -q "^shard-00000 .* stopped at .*/m/shard-00000.ndjson (" "$WORK/merr"
check "... the summary counts 1 of 2 at their end, 1 stopped at bad input" \
  grep -q "1 of 2 shards at their end; 1 stopped at bad input" "$WORK/merr"
check "... the JSON says not ended, stopped, where" \
  test "$(shard_json "$WORK/msum.json" shard-00000 ended)" = false -a \
  "$(shard_json "$WORK/msum.json" shard-00000 outcome)" = '"stopped"' -a \
  "$(shard_json "$WORK/msum.json" shard-00000 stopped_at)" != null
check "... no --bad-input dead-letter hint (no line is malformed)" \
  bash -c '! grep -q -- "--bad-input dead-letter" "$1"' _ "$WORK/merr"
check "the bad line's run does offer --bad-input dead-letter" \
  grep -q -- "--bad-input dead-letter" "$WORK/err"
set -e
finish
