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
set -e
finish
