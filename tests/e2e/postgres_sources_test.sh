#!/usr/bin/env bash
# The Kafka and KCL sources into PostgreSQL, against a real PostgreSQL 15 (postgres_lib.sh):
# `shardflow kafka run --flusher postgres:...` on librdkafka's mock cluster (a process of its own,
# on loopback) writes every record put once, with the partition as the shard; `shardflow mld
# --flusher postgres:... --pg-create-table` driven over pipes by a scripted daemon (a KCL 3.x
# session: initialize, processRecords, shutdownRequested) asks for its checkpoint only once the
# batch's rows are committed, and the rows carry the daemon's sequence numbers, arrival times and JSON payloads.
#
#   postgres_sources_test.sh path/to/shardflow path/to/kafka_mock_serve
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh" "$1"
MOCK="${2:?usage: $0 path/to/shardflow path/to/kafka_mock_serve}"

mock_pid=""
run_pid=""
on_exit() {
  [ -z "$run_pid" ] || kill -KILL "$run_pid" 2> /dev/null || true
  [ -z "$mock_pid" ] || { kill -TERM "$mock_pid" 2> /dev/null || true; wait "$mock_pid" 2> /dev/null || true; }
}
source "$here/postgres_lib.sh"

# 1. Kafka: 2,000 records over 4 partitions into a table kafka run creates (--pg-table,
# --pg-create-table: with the key, so the mode is effectively-once).
"$MOCK" events:4 > "$WORK/mock.out" 2> "$WORK/mock.err" &
mock_pid=$!
wait_for test -s "$WORK/mock.out" || true
brokers=$(sed -n 's/^bootstraps //p' "$WORK/mock.out")
check "the mock cluster is up" test -n "$brokers"
X=(-X session.timeout.ms=4000 -X heartbeat.interval.ms=500 -X auto.offset.reset=earliest
   -X log_level=3)
seq 0 1999 | sed 's/.*/{"user":&,"n":"rec-&"}/' > "$WORK/in.ndjson"
"$SHARDFLOW" kafka put --brokers "$brokers" --topic events --key user "${X[@]:6}" \
  "$WORK/in.ndjson" 2> "$WORK/put.err"
"$SHARDFLOW" kafka run --brokers "$brokers" --topic events --group g-pg \
  --flusher "postgres:$conn" --pg-table kafka_events --pg-create-table --flush-interval 100ms \
  --checkpoint-interval 100ms --heartbeat-interval 100ms "${X[@]}" 2> "$WORK/kafka.err" &
run_pid=$!
all_rows() { [ "$(sql "select count(*) from kafka_events" 2> /dev/null || echo 0)" -ge 2000 ]; }
wait_for all_rows || wait_for all_rows || true # at most 60 s
kill -TERM "$run_pid"
rc=0
wait "$run_pid" || rc=$?
run_pid=""
check "kafka run into postgres stops on SIGTERM with exit 0 ($rc)" test $rc -eq 0
check "every record put is in the table once" \
  test "$(sql "select count(*), count(distinct data->>'n') from kafka_events")" = "2000|2000"
check "the shards are the partitions, the stream the group" \
  test "$(sql "select count(distinct shard), min(stream), min(shard) from kafka_events")" \
  = "4|g-pg|events-0"

# 2. KCL: mld writes a batch; shutdownRequested flushes it fully, and the checkpoint request comes
# only after the rows are committed.
python3 - "$SHARDFLOW" "$conn" "$WORK" << 'PY' > "$WORK/mld.log" 2>&1
import base64, json, os, select, subprocess, sys, time
shardflow, conn, work = sys.argv[1:4]
def psql(q):
    return subprocess.run(["psql", conn, "-At", "-c", q], capture_output=True, text=True,
                          env=dict(os.environ, PGPASSWORD="secret")).stdout.strip()
p = subprocess.Popen([shardflow, "mld", "--flusher", "postgres:" + conn, "--pg-create-table",
                      "--pg-table", "t_mld", "--stream-name", "kin", "--checkpoint-interval", "0",
                      "--flush-interval", "0", "--checkpoint-backoff", "0",
                      "--batch-size", "1000000"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(work + "/mld.err", "w"))
def send(msg):
    p.stdin.write((json.dumps(msg) + "\n").encode()); p.stdin.flush()
def expect(action):
    deadline = time.time() + 60
    while time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.time()))
        if not r:
            break
        line = p.stdout.readline()
        if not line:
            break
        msg = json.loads(line)
        if msg.get("action") == action:
            return msg
    print("FAILED: no", action, "from mld"); sys.exit(1)
seqs = ["49590338271490256608559692538361571095921575989136588%03d" % i for i in range(3)]
send({"action": "initialize", "shardId": "shardId-000000000001",
      "sequenceNumber": "TRIM_HORIZON", "subSequenceNumber": 0})
expect("status")
send({"action": "processRecords", "millisBehindLatest": 0, "records": [
    {"action": "record", "data": base64.b64encode(json.dumps({"i": i}).encode()).decode(),
     "partitionKey": "k%d" % i, "sequenceNumber": s, "subSequenceNumber": 0,
     "approximateArrivalTimestamp": 1700000000000 + i} for i, s in enumerate(seqs)]})
expect("status") # the batch is on its way; the flusher's tokens come back once it is committed
send({"action": "shutdownRequested"}) # flush fully, then checkpoint at the last durable record
cp = expect("checkpoint")
print("checkpoint at", cp.get("sequenceNumber"), "rows then", psql("select count(*) from t_mld"))
send({"action": "checkpoint", "sequenceNumber": cp.get("sequenceNumber"), "subSequenceNumber": 0,
      "error": None})
expect("status")
p.stdin.close()
try:
    rc = p.wait(timeout=60)
except subprocess.TimeoutExpired:
    p.kill(); rc = -9
print("exit", rc)
PY
check "the scripted daemon's session ran to its end ($(tail -1 "$WORK/mld.log"))" \
  grep -qx "exit 0" "$WORK/mld.log"
check "mld asked for its checkpoint at the batch's last record, with its rows committed" \
  grep -qx "checkpoint at 49590338271490256608559692538361571095921575989136588002 rows then 3" \
  "$WORK/mld.log"
check "the rows carry the stream name, the shard, the sequence numbers and JSON data" test \
  "$(sql "select count(*), min(stream), min(shard), max(sequence)::text, sum((data->>'i')::int),
          count(arrival) from t_mld")" \
  = "3|kin|shardId-000000000001|49590338271490256608559692538361571095921575989136588002|3|3"

finish
