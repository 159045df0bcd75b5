#!/usr/bin/env bash
# Bad input, an unknown flusher, an unwritable output and a corrupt checkpoint database: a clear
# error, a non-zero exit, nothing lost.
source "$(dirname "$0")/lib.sh"

"$SHARDFLOW" generate "$WORK/s" --shards 2 --records 2000 2>/dev/null
f="$WORK/s/shard-00001.ndjson"
head -n 100 "$f" > "$WORK/head"; tail -n +101 "$f" > "$WORK/tail"
{ cat "$WORK/head"; echo '{"k":"x","d": not json'; cat "$WORK/tail"; } > "$f"

set +e
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off > "$WORK/out1" 2> "$WORK/err1"
rc=$?
set -e
check "bad input stops with exit 3" test $rc -eq 3
check "the error names the file and line" grep -q "shard-00001.ndjson:101: not valid JSON" "$WORK/err1"
check "the lines before it were processed" \
  all_present "$WORK"/out/shard-00001-*.ndjson < "$WORK/head"
check "the bad line was not checkpointed past" \
  test "$(checkpoint_of "$WORK/s/checkpoints.db" shard-00001)" -le "$(stat -c %s "$WORK/head")"
check "the other shard finished" all_present "$WORK"/out/shard-00000-*.ndjson < "$WORK/s/shard-00000.ndjson"

set +e
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --bad-input dead-letter --progress off > /dev/null 2> "$WORK/err2"
rc=$?
set -e
[ $rc -eq 0 ] || cat "$WORK/err2"
check "with --bad-input dead-letter the run finishes" test $rc -eq 0
check "the bad line is in the dead-letter file" grep -q 'not json' "$WORK/s/dead-letter/shard-00001.ndjson"
check "the lines after it were processed" all_present "$WORK"/out/shard-00001-*.ndjson < "$WORK/tail"

set +e
"$SHARDFLOW" run "$WORK/s" --flusher bogus > /dev/null 2> "$WORK/err3"; rc=$?
check "an unknown flusher is a usage error (2)" test $rc -eq 2
check "it says which flushers exist" grep -q "choose null, stdout or file:DIR" "$WORK/err3"
mkdir -p "$WORK/ro"; touch "$WORK/ro/out"
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/ro/out/x" > /dev/null 2> "$WORK/err4"; rc=$?
check "an unusable output directory fails with 1" test $rc -eq 1
check "it names the directory" grep -q "cannot write to the output directory" "$WORK/err4"
echo "this is not a database, not at all, just some text" > "$WORK/bad.db"
"$SHARDFLOW" run "$WORK/s" --checkpoints "$WORK/bad.db" > /dev/null 2> "$WORK/err5"; rc=$?
check "a corrupt checkpoint database fails with 1" test $rc -eq 1
check "it says what is wrong" grep -q "bad.db: file is not a database" "$WORK/err5"
# Lax JSON that a parser visiting only known fields would take: two records on one line (the second
# would be lost), invalid values in unknown fields. Each is bad input; dead-lettered whole.
"$SHARDFLOW" put "$WORK/lax" --shards 1 < /dev/null 2> /dev/null
printf '%s\n' '{"k":"a","d":"one"}' '{"k":"a","d":"two"}{"k":"b","d":"three"}' '{"k":"a","d":"x","u":tru}' \
  '{"k":"a","d":"x","u":01}' '{"k":"a","d":"four"}' >> "$WORK/lax/shard-00000.ndjson"
"$SHARDFLOW" run "$WORK/lax" --flusher "file:$WORK/laxout" --progress off > /dev/null 2> "$WORK/errlax"; rc=$?
check "two records on one line are bad input (3)" test $rc -eq 3
check "... named with their line" grep -q "shard-00000.ndjson:2: content after the JSON object" "$WORK/errlax"
"$SHARDFLOW" run "$WORK/lax" --flusher "file:$WORK/laxout" --bad-input dead-letter --progress off \
  > /dev/null 2> "$WORK/errlax2"; rc=$?
check "with --bad-input dead-letter the lax lines go aside (exit 0)" test $rc -eq 0
check "... all three of them, whole" test "$(wc -l < "$WORK/lax/dead-letter/shard-00000.ndjson")" -eq 3
check "... the records of the good lines are in the output" \
  test "$(cat "$WORK"/laxout/*.ndjson | grep -c -e '"d":"one"' -e '"d":"four"')" -eq 2
"$SHARDFLOW" run "$WORK/nothing" > /dev/null 2> "$WORK/err6"; rc=$?
check "a missing stream is bad input (3)" test $rc -eq 3
"$SHARDFLOW" run "$WORK/s" --flush-interval 5parsecs > /dev/null 2> "$WORK/err7"; rc=$?
check "a bad duration is a usage error (2)" test $rc -eq 2
# In a network namespace of its own where possible: should the check fail, nothing binds outside.
netns=(); unshare -n true 2> /dev/null && netns=(unshare -n)
"${netns[@]}" "$SHARDFLOW" run "$WORK/s" --flusher null --metrics 0.0.0.0:9464 > /dev/null 2> "$WORK/err7b"; rc=$?
check "--metrics on a non-loopback address is refused (2)" test $rc -eq 2
check "... saying why" grep -q "not a loopback address" "$WORK/err7b"
"$SHARDFLOW" put "$WORK/new" < /dev/null > /dev/null 2> "$WORK/err8"; rc=$?
check "put to a missing stream without --shards fails" test $rc -eq 3
printf '{"a":1}\nnot json\n' | "$SHARDFLOW" put "$WORK/p" --shards 2 > /dev/null 2> "$WORK/err9"; rc=$?
check "put names the bad input line" grep -q "<stdin>:2: not a JSON object" "$WORK/err9"
check "put keeps the lines before it" test "$(cat "$WORK"/p/shard-*.ndjson | wc -l)" -eq 1
set -e
finish
