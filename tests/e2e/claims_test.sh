#!/usr/bin/env bash
# One owner per shard: a second `run` on shards another run owns exits 4 at once naming the shard
# and the owner; runs on disjoint --shards work side by side; after kill -9 of the owner a rerun
# takes its shards over at once (the claim is an OS lock that dies with the process).
source "$(dirname "$0")/lib.sh"

"$SHARDFLOW" generate "$WORK/s" --shards 4 --records 4000 2> /dev/null
"$SHARDFLOW" run "$WORK/s" --shards 0,1 --follow --flusher "file:$WORK/out" --progress off \
  > /dev/null 2> "$WORK/owner.err" & owner=$!
# Wait (at most 30 s, while the owner lives) until it has claimed its shards: its pid in the lock.
for _ in $(seq 1 1500); do
  kill -0 $owner 2> /dev/null || break
  grep -qsx "pid $owner" "$WORK/s/shard-00001.lock" && break
  sleep 0.02
done
check "the owner claimed its shards" grep -qsx "pid $owner" "$WORK/s/shard-00001.lock"

set +e
timeout 60 "$SHARDFLOW" run "$WORK/s" --shards 1-2 --flusher "file:$WORK/out2" --progress off \
  > /dev/null 2> "$WORK/second.err"
rc=$?
check "a second run on an owned shard exits 4 at once" test $rc -eq 4
check "... naming the shard and its owner" grep -q "shard-00001.*pid $owner" "$WORK/second.err"
check "... having processed nothing (no output)" test ! -e "$WORK/out2"
check "... nor taken shard 2 (all or none)" test -z "$(checkpoint_of "$WORK/s/checkpoints.db" shard-00002)"

timeout 60 "$SHARDFLOW" run "$WORK/s" --shards 2,3 --flusher "file:$WORK/out" --progress off \
  > /dev/null 2> "$WORK/disjoint.err"
rc=$?
[ $rc -eq 0 ] || cat "$WORK/disjoint.err"
check "a run on disjoint shards works beside the owner (exit 0)" test $rc -eq 0
check "... with all its records" \
  all_present "$WORK"/out/shard-0000[23]-*.ndjson < <(cat "$WORK"/s/shard-0000[23].ndjson)
check "the owner still runs" kill -0 $owner

kill -KILL $owner
wait $owner 2> /dev/null
timeout 60 "$SHARDFLOW" run "$WORK/s" --shards 0,1 --flusher "file:$WORK/out" --progress off \
  > /dev/null 2> "$WORK/takeover.err"
rc=$?
[ $rc -eq 0 ] || cat "$WORK/takeover.err"
check "after kill -9 of the owner a rerun takes over at once (exit 0)" test $rc -eq 0
check "... and finishes its shards" \
  all_present "$WORK"/out/shard-0000[01]-*.ndjson < <(cat "$WORK"/s/shard-0000[01].ndjson)
set -e
finish
