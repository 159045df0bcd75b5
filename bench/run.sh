#!/usr/bin/env bash
# bench/run.sh - runs every benchmark on a release build and reports one table, a JSON file and a
# chart. Usage: bench/run.sh BUILD_DIR [OUT_DIR]   (./build.sh bench builds and calls it)
#
# Each benchmark checks its outcome (every shard checkpointed at its last record, every record
# durable, the expected checkpoints) and prints no figure when its subject failed: it prints a
# `FAILED<TAB>row<TAB>why` line instead and exits non-zero. This script runs every benchmark even
# so; a row without a figure (a FAILED line, or a benchmark that died before its ROW line) reads
# FAILED in the table, the JSON and the chart, and the script exits 1 at the end.
# Each benchmark measures its subject and its baseline in the same run and prints `ROW` lines
# (row, subject, baseline, unit and target, spread of the subject over its runs); this script adds
# the `run` row (shardflow run with the file flusher vs. writing the same bytes with one
# write + fdatasync per 1,000 lines), prints the table, writes OUT_DIR/results.json and, with
# gnuplot, OUT_DIR/actors.png (records/s against shards, actors and the direct loop).
set -uo pipefail
build="${1:?usage: bench/run.sh BUILD_DIR [OUT_DIR]}"
here="$(cd "$(dirname "$0")" && pwd)"
out="${2:-$here/out}"
mkdir -p "$out"
log="$out/raw.txt"
: > "$log"

# Every row the table must have; one that no benchmark printed is FAILED.
expected=(processor actors-64 actors-1k actors-1k-start actors-10k actors-10k-start mld mld-kpl
          mld-kpl-100 memory-idle memory-slow-sink memory-slow-sink-large run
          kafka-consume kafka-produce kafka-slow-sink)
expected+=(startup-10k) # actors_bench: parallel_start against one handshake at a time
if [ -x "$here/pool_bench.sh" ]; then expected+=(file-1000-shards-pool); fi
# FAILED "skipped: ..." without node or aws-kcl
expected+=(mld-node-500 mld-node-10k mld-node-floor-500 mld-node-floor-10k)
# The postgres rows need PostgreSQL 15's binaries (pg_bench.sh says so and prints none without them).
if [ -x /usr/lib/postgresql/15/bin/initdb ] && command -v psql > /dev/null && command -v sqlite3 > /dev/null; then
  expected+=(pg-copy pg-effectively-once)
fi

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# bench NAME COMMAND...: runs one benchmark into the log; a non-zero exit is noted, not fatal.
exited=()
bench() {
  local name="$1"; shift
  if ! "$@" | tee -a "$log" >&2; then
    exited+=("$name")
    echo "bench: $name exited non-zero (its rows without a figure read FAILED)" >&2
  fi
}

step "processor: batch processor vs. an erlmld-style ordered map"
bench processor_bench "$build/bench/processor_bench" 7
step "actors: 1 source -> 1/64/1,024/10,000 shard actors vs. the direct loop"
bench actors_bench "$build/bench/actors_bench" 4000000 3
step "mld: the worker path vs. JSON parsing alone"
bench mld_bench "$build/bench/mld_bench" 5
step "mld-node: shardflow mld vs. the Node worker (aws-kcl from the peers cache), over pipes"
bench mld_node_bench "$build/bench/mld_node_bench" "$build/apps/shardflow/shardflow" \
  "${SHARDFLOW_PEERS_CACHE:-/var/cache/shardflow-peers}/npm/node_modules/aws-kcl" 3
step "memory: idle shards, and a slow sink"
bench memory_bench "$build/bench/memory_bench" all 10000000
step "memory: a slow sink with 256 KiB records, credit in bytes vs. in records only"
bench memory_bench "$build/bench/memory_bench" slow-large 16000
bench memory_bench "$build/bench/memory_bench" slow-large-records-only 16000
subject=$(awk -F'\t' '$1 == "FIGURE" && $2 == "memory-slow-sink-large" { print $3 }' "$log")
baseline=$(awk -F'\t' '$1 == "FIGURE" && $2 == "memory-slow-sink-large-baseline" { print $3 }' "$log")
if [ -n "$subject" ] && [ -n "$baseline" ]; then
  printf 'ROW\tmemory-slow-sink-large\t%s\t%s\tMiB peak RSS, 8 shards of 256 KiB records (lower is better)\t-\n' \
    "$subject" "$baseline" >> "$log"
fi

step "kafka: consume through shard actors vs. a plain consumer loop; the Kafka flusher vs. plain producers; a slow sink (librdkafka's mock cluster)"
bench kafka_bench "$build/bench/kafka_bench" consume 3
bench kafka_bench "$build/bench/kafka_bench" produce 5
bench kafka_bench "$build/bench/kafka_bench" slow-sink

step "pool: 1,000 shards writing files, the I/O pool vs. a thread per shard (--detached yes)"
bench pool_bench "$here/pool_bench.sh" "$build/apps/shardflow/shardflow" 1000000 3

step "postgres: the PostgreSQL flusher (64 shards, batches of 1,000) vs. psql's \\copy; effectively-once vs. plain"
bench pg_bench "$here/pg_bench.sh" "$build/apps/shardflow/shardflow" 1000000 3

step "run: shardflow run (file flusher, batch 1,000) vs. write + fdatasync per 1,000 lines"
work="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
# run_row: the `run` row, or a FAILED line saying why there is no figure.
run_row() {
  local cli="$build/apps/shardflow/shardflow" records=1000000 bytes got t0 t1 bt
  local run_times=() base_times=()
  if ! "$cli" generate "$work/s" --shards 4 --records $records 2> /dev/null; then
    printf 'FAILED\trun\tshardflow generate failed\n' >> "$log"; return 1
  fi
  bytes=$(cat "$work"/s/shard-*.ndjson | wc -c)
  for i in 1 2 3; do
    rm -rf "$work/out" "$work/base" "$work/s/checkpoints.db"*
    t0=$(date +%s.%N)
    if ! "$cli" run "$work/s" --flusher "file:$work/out" --batch-size 1000 --progress off > /dev/null; then
      printf 'FAILED\trun\tshardflow run failed (run %d)\n' "$i" >> "$log"; return 1
    fi
    t1=$(date +%s.%N)
    # The subject's outcome: every record reached the output (else no figure).
    got=$(cat "$work"/out/*.ndjson | wc -l)
    if [ "$got" -lt $(( records )) ]; then
      printf 'FAILED\trun\tshardflow run wrote only %s of %s records\n' "$got" "$records" >> "$log"
      return 1
    fi
    run_times+=("$(echo "$t1 - $t0" | bc -l)")
    if ! bt=$("$build/bench/write_baseline" "$work/s" "$work/base"); then
      printf 'FAILED\trun\tthe write + fdatasync baseline failed\n' >> "$log"; return 1
    fi
    base_times+=("$bt")
  done
  local rt bt lo hi
  rt=$(median "${run_times[@]}"); bt=$(median "${base_times[@]}")
  lo=$(printf '%s\n' "${run_times[@]}" | sort -g | tail -1); hi=$(printf '%s\n' "${run_times[@]}" | sort -g | head -1)
  printf 'run: %d records (%d bytes): shardflow run %.2f s (%s), baseline %.2f s (%s)\n' \
    $records "$bytes" "$rt" "${run_times[*]}" "$bt" "${base_times[*]}" | tee -a "$log" >&2
  printf 'ROW\trun\t%.1f\t%.1f\tMB/s vs. write + fdatasync of the same bytes (target >= 0.9x)\t%.1f..%.1f\n' \
    "$(echo "$bytes / $rt / 1000000" | bc -l)" "$(echo "$bytes / $bt / 1000000" | bc -l)" \
    "$(echo "$bytes / $lo / 1000000" | bc -l)" "$(echo "$bytes / $hi / 1000000" | bc -l)" >> "$log"
}
run_row || echo "run: no figure: $(awk -F'\t' '$1 == "FAILED" && $2 == "run" { print $3 }' "$log")" >&2

# Rows without a figure (expected, or named by a FAILED line): FAILED, with the benchmark's reason.
mapfile -t named < <(awk -F'\t' '$1 == "FAILED" { print $2 }' "$log" | sort -u)
for row in "${expected[@]}" "${named[@]}"; do
  if ! awk -F'\t' -v r="$row" '$1 == "ROW" && $2 == r { found = 1 } END { exit !found }' "$log"; then
    why=$(awk -F'\t' -v r="$row" '$1 == "FAILED" && $2 == r { print $3; exit }' "$log")
    printf 'ROW\t%s\tFAILED\t-\t%s\t-\n' "$row" "${why:-no figure (see raw.txt)}" >> "$log"
  fi
done
failed=$(awk -F'\t' '$1 == "ROW" && $3 == "FAILED" { print $2 }' "$log")

# The table.
number() { [[ "$1" =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
{
  printf 'row\tsubject\tbaseline\tratio\tunit (target)\tsubject spread\n'
  grep '^ROW' "$log" | while IFS=$'\t' read -r _ row subject baseline unit spread; do
    ratio="-"
    if number "$subject" && number "$baseline"; then
      ratio=$(printf '%.2fx' "$(echo "$subject / $baseline" | bc -l)")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$subject" "$baseline" "$ratio" "$unit" "$spread"
  done
} > "$out/table.tsv"
echo
column -t -s $'\t' "$out/table.tsv"

# JSON: a row without a figure has "subject": null and "failed": true.
{
  printf '{"machine":"%s cores, %s","date":"%s","rows":[' "$(nproc)" "$(uname -m)" "$(date -u +%FT%TZ)"
  tail -n +2 "$out/table.tsv" | awk -F'\t' 'BEGIN{first=1}
    function num(x) { return x ~ /^[0-9]+(\.[0-9]+)?$/ ? x : "null" }
    { gsub(/\\/, "&&", $5); gsub(/"/, "\\\"", $5)
      printf "%s{\"row\":\"%s\",\"subject\":%s,\"baseline\":%s,\"ratio\":\"%s\",\"unit\":\"%s\",\"spread\":\"%s\",\"failed\":%s}",
        (first ? "" : ","), $1, num($2), num($3), $4, $5, $6, ($2 == "FAILED" ? "true" : "false"); first=0 }'
  printf '],"actors":['
  grep '^POINT' "$log" | awk -F'\t' 'BEGIN{first=1} {
    printf "%s{\"shards\":%s,\"actors\":%s,\"direct\":%s}", (first ? "" : ","), $2, $3, $4; first=0 }'
  printf ']}\n'
} > "$out/results.json"
echo "results: $out/results.json"

# The chart: points of the shard counts that passed; a failed actors row is named on it.
if command -v gnuplot > /dev/null; then
  grep '^POINT' "$log" | cut -f2- > "$out/actors.dat"
  labels=""; y=0.95
  for row in $failed; do
    case "$row" in
      actors-*) labels+="set label \"$row: FAILED (no figure)\" at graph 0.02, graph $y tc rgb \"red\""$'\n'
                y=$(echo "$y - 0.05" | bc -l) ;;
    esac
  done
  gnuplot <<GP
set terminal pngcairo size 900,520 font ",11"
set output "$out/actors.png"
set title "records/s through shard actors (1 source, batches of 500, null flusher, $(nproc) cores)"
set xlabel "shards"; set ylabel "million records/s"
set logscale x; set grid; set key top right
set yrange [0:*]
$labels
plot "$out/actors.dat" using 1:2 with linespoints lw 2 pt 7 title "shard actors (runtime)", \
     "$out/actors.dat" using 1:3 with linespoints lw 2 pt 5 title "direct loop (no actors)"
GP
  echo "chart: $out/actors.png"
else
  echo "gnuplot not found: no chart (apt-get install gnuplot-nox)"
fi

if [ -n "$failed" ] || [ ${#exited[@]} -gt 0 ]; then
  echo "bench: FAILED (no figure): $(echo $failed); exited non-zero: ${exited[*]:-none}" >&2
  exit 1
fi
