#!/usr/bin/env bash
# --stop-timeout bounds the graceful stop: a run whose flusher cannot finish (stdout into a pipe
# nobody reads, so its writes block for ever; detached, so only its own thread is stuck) stops at
# once after the timeout, as a second signal does: exit 130, saying so; a rerun resumes from the
# checkpoints.
source "$(dirname "$0")/lib.sh"

# Whether the pipe $1 is full: the bytes waiting in it (FIONREAD) reach its capacity
# (F_GETPIPE_SZ). Opening it does not block: bash holds it open for reading and writing.
pipe_full() {
  python3 -c 'import fcntl, os, struct, sys, termios
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)
waiting = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
sys.exit(0 if waiting >= fcntl.fcntl(fd, 1032) else 1)' "$1"
}

# Waits (at most 30 s, while process $2 lives) until pipe $1 is full; returns whether it is.
wait_full() { # pipe pid
  for _ in $(seq 1 1500); do
    pipe_full "$1" && return 0
    kill -0 "$2" 2> /dev/null || return 1
    sleep 0.02
  done
  return 1
}

# Waits (at most 30 s) for process $1 to end, kills it after that; its exit code in $rc.
wait_end() { # pid
  for _ in $(seq 1 1500); do
    kill -0 "$1" 2> /dev/null || break
    sleep 0.02
  done
  kill -0 "$1" 2> /dev/null && { echo "  still running: killing it"; kill -KILL "$1"; }
  wait "$1"
  rc=$?
}

"$SHARDFLOW" generate "$WORK/s" --shards 2 --records 4000 2> /dev/null
mkfifo "$WORK/pipe"
exec 3<> "$WORK/pipe"
"$SHARDFLOW" run "$WORK/s" --follow --flusher stdout --detached yes --progress off --stop-timeout 1s \
  > "$WORK/pipe" 2> "$WORK/err" & pid=$!
set +e
check "the flusher filled the pipe" wait_full "$WORK/pipe" $pid # it is stuck
kill -INT $pid
wait_end $pid # the stop cannot finish; the timeout must end the run
exec 3<&-
check "a stop that takes longer than --stop-timeout ends at once with exit 130" test $rc -eq 130
check "... saying so" grep -q "the stop took longer than --stop-timeout 1s: stopping at once" "$WORK/err"
check "... after saying the stop is bounded" grep -q "at most --stop-timeout 1s" "$WORK/err"
# The same with the shards on the actor system's threads (--detached no, more shards than threads):
# every thread blocks in the flusher, so the main thread may be stuck starting shards; the deadline
# runs from the signal on a thread of its own all the same.
"$SHARDFLOW" generate "$WORK/k" --shards 8 --records 400000 2> /dev/null
mkfifo "$WORK/pipe2"
exec 4<> "$WORK/pipe2"
"$SHARDFLOW" run "$WORK/k" --flusher stdout --detached no --threads 2 --progress off \
  --stop-timeout 1s > "$WORK/pipe2" 2> "$WORK/err2" & pid=$!
check "the flusher on an actor thread filled the pipe" wait_full "$WORK/pipe2" $pid
kill -TERM $pid
wait_end $pid
exec 4<&-
check "... the first signal's stop is bounded by --stop-timeout: exit 130" test $rc -eq 130
check "... saying so" grep -q "the stop took longer than --stop-timeout 1s: stopping at once" \
  "$WORK/err2"
"$SHARDFLOW" run "$WORK/s" --flusher "file:$WORK/out" --progress off > /dev/null 2> "$WORK/rerun.err"
rc=$?
[ $rc -eq 0 ] || cat "$WORK/rerun.err"
check "a rerun resumes and finishes" test $rc -eq 0
"$SHARDFLOW" run "$WORK/s" --stop-timeout soon --progress off > /dev/null 2> "$WORK/bad.err"
check "a bad --stop-timeout is a usage error (2)" test $? -eq 2
set -e
finish
