#!/usr/bin/env bash
# bench/pool_bench.sh - 1,000 shards writing durable files with the file flusher: the shared I/O
# pool (run --detached no: 4 I/O threads write and fdatasync every shard's batches) against a thread
# per shard (run --detached yes: each shard writes and syncs on its own thread), in one run.
# Usage: bench/pool_bench.sh SHARDFLOW [RECORDS] [RUNS]   (bench/run.sh calls it)
#
# Both write the same stream (RECORDS records over 1,000 shards, batches of 100, so every shard
# syncs RECORDS/100,000 times or more) with the CAF threads at their default (the cores); the runs
# alternate, pool first. Each run checks its outcome: exit 0 and every record in the output;
# otherwise it says why and the bench exits 1 without a figure. Prints both medians and a ROW line
# (subject: the pool, baseline: detached; records/s, higher is better) for bench/run.sh.
set -euo pipefail
cli="${1:?usage: bench/pool_bench.sh SHARDFLOW [RECORDS] [RUNS]}"
records="${2:-1000000}"
runs="${3:-3}"
shards=1000
work="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-pool-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$cli" generate "$work/s" --shards $shards --records "$records" 2> /dev/null

one() { # yes|no -> prints the seconds of one run
  rm -rf "$work/out" "$work/s/checkpoints.db"*
  local t0 t1 got
  t0=$(date +%s.%N)
  if ! "$cli" run "$work/s" --flusher "file:$work/out" --batch-size 100 --detached "$1" \
       --progress off > /dev/null 2> "$work/err"; then
    echo "pool bench: run --detached $1 failed: $(tail -1 "$work/err"); no figure" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  got=$(cat "$work"/out/*.ndjson | wc -l)
  if [ "$got" -lt "$records" ]; then
    echo "pool bench: run --detached $1 wrote only $got of $records records; no figure" >&2
    exit 1
  fi
  echo "$t1 - $t0" | bc -l
}

pool=(); detached=()
for _ in $(seq 1 "$runs"); do
  pool+=("$(one no)")
  detached+=("$(one yes)")
done
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
rate() { echo "$records / $1" | bc -l; }
pt=$(median "${pool[@]}"); dt=$(median "${detached[@]}")
plo=$(printf '%s\n' "${pool[@]}" | sort -g | tail -1); phi=$(printf '%s\n' "${pool[@]}" | sort -g | head -1)
printf 'pool: %d records, %d shards, batches of 100: I/O pool %.2f s (%s), detached %.2f s (%s)\n' \
  "$records" $shards "$pt" "${pool[*]}" "$dt" "${detached[*]}"
printf 'ROW\tfile-1000-shards-pool\t%.0f\t%.0f\trecords/s, pool vs thread per shard (higher is better)\t%.0f..%.0f\n' \
  "$(rate "$pt")" "$(rate "$dt")" "$(rate "$plo")" "$(rate "$phi")"
