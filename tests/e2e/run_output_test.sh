#!/usr/bin/env bash
# What `run` writes where: with --flusher stdout the data alone is on stdout (the summary table on
# stderr); --json FILE writes the JSON summary to FILE, `--json -` (or a bare --json) to stdout,
# refused beside --flusher stdout; --checkpoints DIR/x.db creates DIR as file:DIR does.
source "$(dirname "$0")/lib.sh"

"$SHARDFLOW" generate "$WORK/s" --shards 2 --records 1001 2> /dev/null
set +e
"$SHARDFLOW" run "$WORK/s" --flusher stdout --progress off > "$WORK/data" 2> "$WORK/err"
rc=$?
check "run --flusher stdout exits 0" test $rc -eq 0
check "stdout has exactly as many lines as the input" \
  test "$(wc -l < "$WORK/data")" -eq "$(cat "$WORK"/s/shard-*.ndjson | wc -l)"
check "... every input record" all_present "$WORK/data" < <(cat "$WORK"/s/shard-*.ndjson)
check "... and nothing but records (every line a record line)" \
  test "$(grep -cv '^{"k":' "$WORK/data")" -eq 0
check "the summary table is on stderr" grep -q "shards at their end" "$WORK/err"

"$SHARDFLOW" run "$WORK/s" --flusher stdout --progress off --json "$WORK/sum.json" \
  --checkpoints "$WORK/cp2.db" > "$WORK/data2" 2> "$WORK/err2"
rc=$?
check "run --flusher stdout --json FILE exits 0" test $rc -eq 0
check "... the JSON file parses" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["records"] == 1001' \
  "$WORK/sum.json"
check "... stdout is only the records" test "$(wc -l < "$WORK/data2")" -eq 1001
check "... the table is on stderr" grep -q "shards at their end" "$WORK/err2"

"$SHARDFLOW" --log-format json run "$WORK/s" --flusher null --progress off \
  --checkpoints "$WORK/cpj.db" > /dev/null 2> "$WORK/errj"
rc=$?
check "under --log-format json, run exits 0" test $rc -eq 0
summary_as_json() { # every line one JSON object; a line per shard, then the totals
  python3 -c 'import json,sys
objs = [json.loads(l) for l in open(sys.argv[1])]
shards = [o for o in objs if o.get("shard") and "; ended" in o["message"]]
last = objs[-1]["message"]
sys.exit(0 if len(shards) == 2 and "1001 records" in last and "2 of 2 shards at their end" in last
         else 1)' "$1"
}
check "... the summary is JSON log lines (no table): one per shard, then the totals" \
  summary_as_json "$WORK/errj"

"$SHARDFLOW" run "$WORK/s" --flusher stdout --progress off --json - --checkpoints "$WORK/cp3.db" \
  > /dev/null 2> "$WORK/err3"
rc=$?
check "--json - beside --flusher stdout is a usage error (2)" test $rc -eq 2
check "... saying why" grep -q -- "--json -: the records are on stdout" "$WORK/err3"

"$SHARDFLOW" run "$WORK/s" --flusher null --progress off --json - --checkpoints "$WORK/cp4.db" \
  > "$WORK/sum4.json" 2> "$WORK/err4"
rc=$?
check "--json - with another flusher puts the JSON alone on stdout" \
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["exit_code"] == 0' \
  "$WORK/sum4.json"
"$SHARDFLOW" run "$WORK/s" --flusher null --progress off --checkpoints "$WORK/cp5.db" --json \
  > "$WORK/sum5.json" 2> /dev/null
check "a bare --json is --json -" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' \
  "$WORK/sum5.json"
"$SHARDFLOW" run "$WORK/s" --flusher null --progress off --json "$WORK/no/such/dir/x.json" \
  --checkpoints "$WORK/cp6.db" > /dev/null 2> "$WORK/err6"
rc=$?
check "an unwritable --json FILE fails (1)" test $rc -eq 1
check "... naming it" grep -q "no/such/dir/x.json" "$WORK/err6"

"$SHARDFLOW" run "$WORK/s" --flusher null --progress off --checkpoints "$WORK/new/dir/x.db" \
  > /dev/null 2> "$WORK/err7"
rc=$?
[ $rc -eq 0 ] || cat "$WORK/err7"
check "--checkpoints DIR/x.db creates DIR" test $rc -eq 0 -a -d "$WORK/new/dir"
check "... and the database in it" test "$(sqlite3 "$WORK/new/dir/x.db" \
  'select count(*) from checkpoints where ended = 1')" -eq 2
touch "$WORK/afile"
"$SHARDFLOW" run "$WORK/s" --flusher null --progress off --checkpoints "$WORK/afile/x.db" \
  > /dev/null 2> "$WORK/err8"
rc=$?
check "--checkpoints under a regular file fails (1)" test $rc -eq 1
check "... naming the directory" grep -q "afile" "$WORK/err8"

# One stream, however it is spelled: "t/", "t" and "t/." are the same stream (its checkpoints'
# key) with the default output beside it, t.out, never inside it.
"$SHARDFLOW" generate "$WORK/t" --shards 2 --records 300 2> /dev/null
(cd "$WORK" && "$SHARDFLOW" run t/ --flusher file --progress off > /dev/null 2>&1)
rc=$?
check "run t/ exits 0" test $rc -eq 0
check "... its output is t.out, beside the stream" test -d "$WORK/t.out" -a ! -e "$WORK/t/.out"
(cd "$WORK" && "$SHARDFLOW" run t --flusher file --progress off > /dev/null 2>&1)
(cd "$WORK/t" && "$SHARDFLOW" run . --flusher file --progress off > /dev/null 2>&1)
rc=$?
check "run . inside it exits 0" test $rc -eq 0
check "... and t, t/ and . wrote each record once" \
  test "$(cat "$WORK"/t.out/*.ndjson | wc -l)" -eq 300
check "... under one stream name" test "$(sqlite3 "$WORK/t/checkpoints.db" \
  'select count(distinct stream) from checkpoints')" -eq 1
set -e
finish
