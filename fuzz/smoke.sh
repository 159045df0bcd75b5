#!/usr/bin/env bash
# fuzz/smoke.sh - runs one harness: replays its regression inputs, then fuzzes from its seed corpus.
#
#   smoke.sh BINARY FUZZ_DIR NAME SECONDS [DICT]
#
# Fails (non-zero) when a regression input or a fuzzing run breaks a property or a sanitizer fires;
# a crashing input is left in the working directory as crash-*/leak-*/timeout-* (move it to
# fuzz/regressions/NAME/ once understood). New corpus entries go to a scratch directory, unless
# SHARDFLOW_FUZZ_CORPUS_ROOT names a directory to keep them in, under NAME/ (./build.sh fuzz does).
set -euo pipefail
bin="$1" dir="$2" name="$3" seconds="$4" dict="${5:-}"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/shardflow-fuzz-$name.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
corpus="$scratch"
[ -z "${SHARDFLOW_FUZZ_CORPUS_ROOT:-}" ] || corpus="$SHARDFLOW_FUZZ_CORPUS_ROOT/$name"
mkdir -p "$corpus"

regressions=("$dir/regressions/$name"/*)
if [ -e "${regressions[0]}" ]; then
  echo "== $name: replaying ${#regressions[@]} regression inputs"
  "$bin" -rss_limit_mb=2048 "${regressions[@]}"
fi

args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1)
[ -n "$dict" ] && args+=(-dict="$dict")
echo "== $name: fuzzing for $seconds s from $dir/corpus/$name"
log="$scratch/log"
if ! "$bin" "${args[@]}" "$corpus" "$dir/corpus/$name" >"$log" 2>&1; then
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -n 100
  echo "== $name: FAILED"
  exit 1
fi
grep -E '^(INFO: (Loaded|seed corpus)|Done|stat::)' "$log" || true
