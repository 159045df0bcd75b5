#!/usr/bin/env bash
# bench/run.sh - runs every benchmark on a release build and reports one table, a JSON file and a
# chart. Usage: bench/run.sh BUILD_DIR [OUT_DIR]   (./build.sh bench builds and calls it)
#
# Each benchmark checks its outcome (every shard checkpointed at its last record) and exits non-zero
# without a figure when its subject failed; the script stops there (set -e, pipefail).
# Each benchmark measures its subject and its baseline in the same run and prints `ROW` lines
# (row, subject, baseline, unit and target, spread of the subject over its runs); this script adds
# the `run` row (shardflow run with the file flusher vs. writing the same bytes with one
# write + fdatasync per 1,000 lines), prints the table, writes OUT_DIR/results.json and, with
# gnuplot, OUT_DIR/actors.png (records/s against shards, actors and the direct loop).
set -euo pipefail
build="${1:?usage: bench/run.sh BUILD_DIR [OUT_DIR]}"
here="$(cd "$(dirname "$0")" && pwd)"
out="${2:-$here/out}"
mkdir -p "$out"
log="$out/raw.txt"
: > "$log"

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

step "processor: batch processor vs. an erlmld-style ordered map"
"$build/bench/processor_bench" 7 | tee -a "$log" >&2
step "actors: 1 source -> 1/64/1,024/10,000 shard actors vs. the direct loop"
"$build/bench/actors_bench" 4000000 3 | tee -a "$log" >&2
step "mld: the worker path vs. JSON parsing alone"
"$build/bench/mld_bench" 5 | tee -a "$log" >&2
step "memory: idle shards, and a slow sink"
"$build/bench/memory_bench" all 10000000 | tee -a "$log" >&2
step "memory: a slow sink with 256 KiB records, credit in bytes vs. in records only"
"$build/bench/memory_bench" slow-large 16000 | tee -a "$log" >&2
"$build/bench/memory_bench" slow-large-records-only 16000 | tee -a "$log" >&2
subject=$(awk -F'\t' '$1 == "FIGURE" && $2 == "memory-slow-sink-large" { print $3 }' "$log")
baseline=$(awk -F'\t' '$1 == "FIGURE" && $2 == "memory-slow-sink-large-baseline" { print $3 }' "$log")
if [ -n "$subject" ] && [ -n "$baseline" ]; then
  printf 'ROW\tmemory-slow-sink-large\t%s\t%s\tMiB peak RSS, 8 shards of 256 KiB records (lower is better)\t-\n' \
    "$subject" "$baseline" >> "$log"
fi

step "pool: 1,000 shards writing files, the I/O pool vs. a thread per shard (--detached yes)"
"$here/pool_bench.sh" "$build/apps/shardflow/shardflow" 1000000 3 | tee -a "$log" >&2

step "run: shardflow run (file flusher, batch 1,000) vs. write + fdatasync per 1,000 lines"
work="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cli="$build/apps/shardflow/shardflow"
records=1000000
"$cli" generate "$work/s" --shards 4 --records $records 2> /dev/null
bytes=$(cat "$work"/s/shard-*.ndjson | wc -c)
run_times=(); base_times=()
for i in 1 2 3; do
  rm -rf "$work/out" "$work/base" "$work/s/checkpoints.db"*
  t0=$(date +%s.%N)
  "$cli" run "$work/s" --flusher "file:$work/out" --batch-size 1000 --progress off > /dev/null
  t1=$(date +%s.%N)
  # The subject's outcome: every record reached the output (else no figure).
  got=$(cat "$work"/out/*.ndjson | wc -l)
  if [ "$got" -lt $(( records )) ]; then
    echo "run: shardflow run wrote only $got of $records records; no figure" >&2
    exit 1
  fi
  run_times+=("$(echo "$t1 - $t0" | bc -l)")
  base_times+=("$("$build/bench/write_baseline" "$work/s" "$work/base")")
done
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
rt=$(median "${run_times[@]}"); bt=$(median "${base_times[@]}")
lo=$(printf '%s\n' "${run_times[@]}" | sort -g | tail -1); hi=$(printf '%s\n' "${run_times[@]}" | sort -g | head -1)
printf 'run: %d records (%d bytes): shardflow run %.2f s (%s), baseline %.2f s (%s)\n' \
  $records "$bytes" "$rt" "${run_times[*]}" "$bt" "${base_times[*]}" | tee -a "$log" >&2
printf 'ROW\trun\t%.1f\t%.1f\tMB/s (target >= 0.5x)\t%.1f..%.1f\n' \
  "$(echo "$bytes / $rt / 1000000" | bc -l)" "$(echo "$bytes / $bt / 1000000" | bc -l)" \
  "$(echo "$bytes / $lo / 1000000" | bc -l)" "$(echo "$bytes / $hi / 1000000" | bc -l)" >> "$log"

# The table.
{
  printf 'row\tsubject\tbaseline\tratio\tunit (target)\tsubject spread\n'
  grep '^ROW' "$log" | while IFS=$'\t' read -r _ row subject baseline unit spread; do
    ratio="-"
    if [ "$baseline" != "-" ]; then ratio=$(printf '%.2fx' "$(echo "$subject / $baseline" | bc -l)"); fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$subject" "$baseline" "$ratio" "$unit" "$spread"
  done
} > "$out/table.tsv"
echo
column -t -s $'\t' "$out/table.tsv"

# JSON.
{
  printf '{"machine":"%s cores, %s","date":"%s","rows":[' "$(nproc)" "$(uname -m)" "$(date -u +%FT%TZ)"
  tail -n +2 "$out/table.tsv" | awk -F'\t' 'BEGIN{first=1} {
    printf "%s{\"row\":\"%s\",\"subject\":%s,\"baseline\":%s,\"ratio\":\"%s\",\"unit\":\"%s\",\"spread\":\"%s\"}",
      (first ? "" : ","), $1, $2, ($3 == "-" ? "null" : $3), $4, $5, $6; first=0 }'
  printf '],"actors":['
  grep '^POINT' "$log" | awk -F'\t' 'BEGIN{first=1} {
    printf "%s{\"shards\":%s,\"actors\":%s,\"direct\":%s}", (first ? "" : ","), $2, $3, $4; first=0 }'
  printf ']}\n'
} > "$out/results.json"
echo "results: $out/results.json"

# The chart.
if command -v gnuplot > /dev/null; then
  grep '^POINT' "$log" | cut -f2- > "$out/actors.dat"
  gnuplot <<GP
set terminal pngcairo size 900,520 font ",11"
set output "$out/actors.png"
set title "records/s through shard actors (1 source, batches of 500, null flusher, $(nproc) cores)"
set xlabel "shards"; set ylabel "million records/s"
set logscale x; set grid; set key top right
set yrange [0:*]
plot "$out/actors.dat" using 1:2 with linespoints lw 2 pt 7 title "shard actors (runtime)", \
     "$out/actors.dat" using 1:3 with linespoints lw 2 pt 5 title "direct loop (no actors)"
GP
  echo "chart: $out/actors.png"
else
  echo "gnuplot not found: no chart (apt-get install gnuplot-nox)"
fi
