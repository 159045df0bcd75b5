#!/usr/bin/env bash
# What operators expect of `run`: /healthz and /readyz beside /metrics, a shardflow_build_info metric
# with the version, lag 0 on /metrics once everything is durable under --follow, and a progress line
# that fits the terminal's width (cut, never wrapped).
source "$(dirname "$0")/lib.sh"

version=$(sed -n 's/^project(shardflow VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../../CMakeLists.txt")
"$SHARDFLOW" generate "$WORK/m" --shards 3 --records 3000 2> /dev/null
# Loopback only; a port taken by someone else is retried on another.
up=0
serve_run "$WORK/run.err" "$WORK/m" --flusher null --follow --progress off \
  --checkpoint-interval 0 && up=1
curl -sf "http://127.0.0.1:$port/healthz" > "$WORK/healthz" || true
url="http://127.0.0.1:$port"
set +e
check "/healthz answers 200 ok" grep -qx ok "$WORK/healthz"
# /readyz: 200 once every shard started (at most 10 s, while the run lives).
code=0
for _ in $(seq 1 500); do
  code=$(curl -s -o "$WORK/readyz" -w '%{http_code}' "$url/readyz" || true)
  [ "$code" = 200 ] && break
  kill -0 $pid 2> /dev/null || break
  sleep 0.02
done
check "/readyz answers 200 once every shard started" test "$code" = 200
check "... saying so" grep -qx "ready: 3 shards started" "$WORK/readyz"
curl -sf "$url/metrics" > "$WORK/metrics" || true
check "/metrics has shardflow_build_info with the version ($version)" \
  grep -qx "shardflow_build_info{version=\"$version\"} 1" "$WORK/metrics"
# Lag reaches 0 once every record is durable: the checkpoint is the bytes done (at most 30 s).
zero=0
for _ in $(seq 1 1500); do
  curl -sf "$url/metrics" > "$WORK/metrics" || true
  lags=$(grep -c '^shardflow_checkpoint_lag_bytes{' "$WORK/metrics" || true)
  zeros=$(grep -c '^shardflow_checkpoint_lag_bytes{.*} 0$' "$WORK/metrics" || true)
  [ "$lags" -eq 3 ] && [ "$zeros" -eq 3 ] && { zero=1; break; }
  kill -0 $pid 2> /dev/null || break
  sleep 0.02
done
[ $zero -eq 1 ] || grep '^shardflow_checkpoint_lag_bytes' "$WORK/metrics"
check "shardflow_checkpoint_lag_bytes reaches 0 for every shard under --follow" test $zero -eq 1
kill -TERM $pid
wait $pid
check "the run stops gracefully (exit 0)" test $? -eq 0

# The progress line on a 40-column terminal (a pty from script(1)): every line at most 40 wide.
"$SHARDFLOW" generate "$WORK/p" --shards 3 --records 300 2> /dev/null
script -qfec "stty cols 40 rows 10 && exec '$SHARDFLOW' run '$WORK/p' --follow --flusher null \
  --progress tty" /dev/null > "$WORK/tty.out" 2>&1 < /dev/null & spid=$!
# Wait (at most 30 s, while it lives) for three progress lines.
for _ in $(seq 1 1500); do
  [ "$(grep -o 'records' "$WORK/tty.out" | wc -l)" -ge 3 ] && break
  kill -0 $spid 2> /dev/null || break
  sleep 0.02
done
rpid=$(sed -n 's/^pid //p' "$WORK/p/shard-00000.lock")
[ -n "$rpid" ] && kill -INT "$rpid"
wait $spid
check "the progress line never passes the terminal's 40 columns" python3 -c '
import sys
text = open(sys.argv[1], "rb").read().decode("utf-8")
lines = [s[3:] for s in text.split("\r") if s.startswith("\x1b[K[")]
assert len(lines) >= 2, lines
assert all(len(l) <= 40 for l in lines), [l for l in lines if len(l) > 40]
' "$WORK/tty.out"
set -e
finish
