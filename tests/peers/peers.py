"""tests/peers/peers.py - the harness of the peers stage: emulators, the real daemon, observable state.

Contract: runs inside a loopback-only network namespace (run.sh enters it with `unshare -n` and
brings `lo` up); every address it talks to is 127.0.0.1. Every process it starts is recorded and
ended by its PID (then its process group, the daemon's workers) when the harness exits, however it
exits. Every wait polls observable state (an HTTP answer, the lease table, output files) against a
deadline; none is a fixed sleep. A failed assertion raises `Failed` (exit 1); a peer that cannot be
started raises `SetupError` (exit 2, "peer set-up failed").
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

KINESIS = "http://127.0.0.1:4568"
DYNAMO = "http://127.0.0.1:4569"
POLL = 0.2  # seconds between two looks at observable state
DAEMON_MAIN = "software.amazon.kinesis.multilang.MultiLangDaemon"


class Failed(Exception):
    """An assertion of a scenario failed."""


class SetupError(Exception):
    """A peer (emulator, daemon) could not be started or reached."""


def wait_for(what, deadline_s, probe):
    """Polls probe() until it returns a true value (returned) or deadline_s pass (Failed)."""
    end = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < end:
        last = probe()
        if last:
            return last
        time.sleep(POLL)
    raise Failed(f"timed out after {deadline_s} s waiting for {what}")


def aws_call(endpoint, target, body, content_type):
    """One AWS JSON request (the emulators check only that the signature headers are present)."""
    data = json.dumps(body).encode()
    headers = {
        "Content-Type": content_type,
        "X-Amz-Target": target,
        "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20261202/us-east-1/x/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00",
    }
    req = urllib.request.Request(endpoint, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=90) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise Failed(f"{target} -> HTTP {err.code}: {err.read()[:400]!r}") from None


def kinesis(op, body):
    return aws_call(KINESIS, f"Kinesis_20131202.{op}", body, "application/x-amz-json-1.1")


def dynamo(op, body):
    return aws_call(DYNAMO, f"DynamoDB_20120810.{op}", body, "application/x-amz-json-1.0")


def reachable(call):
    try:
        call()
        return True
    except (OSError, Failed):
        return False


class Processes:
    """The processes the harness started, each ended by its PID (and its group) at close()."""

    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, name, argv, env=None, cwd=None):
        log = open(os.path.join(self.work, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)
        log.close()
        proc.peers_name = name
        self.procs.append(proc)
        return proc

    def stop(self, proc, sig=signal.SIGTERM, grace_s=30):
        """Sends sig to the PID, waits up to grace_s, then SIGKILLs the PID and its group."""
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group is this PID's: leftover workers
        except ProcessLookupError:
            pass
        return proc.returncode

    def kill_alone(self, proc):
        """SIGKILL of the PID only (not its group), waited for."""
        proc.kill()
        proc.wait(timeout=30)

    def group_alive(self, proc):
        """Whether any process is left in the group of proc (its children)."""
        try:
            os.killpg(proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def close(self, grace_s=10):
        """SIGTERM to every process at once, then up to grace_s in all for them to exit, then
        SIGKILL of each PID and its group (bounded: run.sh's limit SIGKILLs the harness 30 s
        after its SIGTERM, and a process left then would outlive the run)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + grace_s
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self.stop(proc, sig=signal.SIGKILL, grace_s=5)
        self.procs = []


def start_emulators(procs, modules, shards, streams):
    """dynalite on 4569, kinesis-local on 4568 with each of `streams` of `shards` shards, all
    answering (one pair of emulators serves every scenario of a run: each has its own
    application, so its own lease tables)."""
    guard = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dynalite_guard.js")
    procs.start("dynalite", ["node", "--require", guard, f"{modules}/dynalite/cli.js", "--host",
                             "127.0.0.1", "--port",
                             "4569", "--createTableMs", "50", "--updateTableMs", "50",
                             "--deleteTableMs", "50"])
    env = dict(os.environ, KINESIS_MOCK_PLAIN_PORT="4568", KINESIS_MOCK_TLS_PORT="4566",
               KINESIS_MOCK_CERT_PATH=f"{modules}/kinesis-local/server.json",
               INITIALIZE_STREAMS=",".join(f"{s}:{shards}" for s in streams),
               CREATE_STREAM_DURATION="50ms", SPLIT_SHARD_DURATION="50ms",
               LOG_LEVEL="WARN")
    procs.start("kinesis-local", ["node", f"{modules}/kinesis-local/main.js"], env=env)
    try:
        wait_for("dynalite to answer", 30, lambda: reachable(lambda: dynamo("ListTables", {})))
        for stream in streams:
            wait_for(f"stream {stream} to be ACTIVE", 60, lambda: stream_active(stream))
    except Failed as err:
        raise SetupError(str(err)) from None


def stream_active(stream):
    try:
        summary = kinesis("DescribeStreamSummary", {"StreamName": stream})
    except (OSError, Failed):
        return False
    return summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def create_kcl3_lease_table(app):
    """The lease table with the GSI KCL 3 needs (dynalite cannot add it by UpdateTable)."""
    dynamo("CreateTable", {
        "TableName": app,
        "KeySchema": [{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "leaseKey", "AttributeType": "S"},
                                 {"AttributeName": "leaseOwner", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [{
            "IndexName": "LeaseOwnerToLeaseKeyIndex",
            "KeySchema": [{"AttributeName": "leaseOwner", "KeyType": "HASH"},
                          {"AttributeName": "leaseKey", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"}}]})

    def active():
        table = dynamo("DescribeTable", {"TableName": app})["Table"]
        return table["TableStatus"] == "ACTIVE" and all(
            i.get("IndexStatus") == "ACTIVE" for i in table.get("GlobalSecondaryIndexes", []))
    wait_for(f"lease table {app} and its index to be ACTIVE", 30, active)


def create_table(name, key):
    """A PAY_PER_REQUEST table with the string hash key `key`, waited for until ACTIVE."""
    dynamo("CreateTable", {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
                           "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
                           "AttributeDefinitions": [{"AttributeName": key, "AttributeType": "S"}]})
    wait_for(f"table {name} to be ACTIVE", 30,
             lambda: dynamo("DescribeTable", {"TableName": name})["Table"]["TableStatus"] == "ACTIVE")


def create_kcl3_side_tables(app):
    """KCL 3's coordinator-state and worker-metrics tables: made by the daemon, each is followed by
    a 20 s wait for ACTIVE (its waiter's first delay); made here, the daemon only describes them."""
    create_table(f"{app}-CoordinatorState", "key")
    create_table(f"{app}-WorkerMetricStats", "wid")


def leases(app):
    """{leaseKey: item} of the lease table, {} while it does not exist."""
    try:
        items, start = [], None
        while True:
            body = {"TableName": app}
            if start:
                body["ExclusiveStartKey"] = start
            page = dynamo("Scan", body)
            items += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    except Failed as err:
        if "ResourceNotFoundException" in str(err):
            return {}
        raise
    return {i["leaseKey"]["S"]: {k: list(v.values())[0] for k, v in i.items()} for i in items}


def shards_of(stream):
    """[(shardId, starting hash key, ending hash key)] of the stream."""
    listed = kinesis("ListShards", {"StreamName": stream})["Shards"]
    return [(s["ShardId"], int(s["HashKeyRange"]["StartingHashKey"]),
             int(s["HashKeyRange"]["EndingHashKey"])) for s in listed]


def shard_for(shards, partition_key):
    """The shard whose hash range holds the MD5 of the partition key (Kinesis' own mapping)."""
    key = int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")
    for shard_id, low, high in shards:
        if low <= key <= high:
            return shard_id
    raise Failed(f"no shard holds the hash of {partition_key!r}")


def put_batch(stream, batch):
    """PutRecords of [(index, partition key, data)], retrying failed entries: [(index, shard, seq)]."""
    placed = []
    for attempt in range(20):
        try:
            reply = kinesis("PutRecords", {"StreamName": stream, "Records": [
                {"PartitionKey": k, "Data": base64.b64encode(d).decode()} for _, k, d in batch]})
        except OSError as err:  # an overloaded kinesis-local drops the connection: try again
            if attempt >= 3:
                raise Failed(f"PutRecords to {stream} failed {attempt + 1} times: {err}") from None
            continue
        retry = []
        for entry, result in zip(batch, reply["Records"]):
            if "SequenceNumber" in result:
                placed.append((entry[0], result["ShardId"], int(result["SequenceNumber"])))
            else:
                retry.append(entry)
        if not retry:
            return placed
        batch = retry
    raise Failed(f"PutRecords kept failing {len(batch)} records")


def put_records(stream, entries, parallel=2, per_call=500):
    """Puts [(partition key, data bytes)], per_call a call, `parallel` calls at a time
    (kinesis-local takes about a second for 500): [(shard, sequence number)] of each entry, in the
    entries' order. Only one call at a time while a daemon reads the stream: kinesis-local 0.6.2
    can make a call's records readable after a later call's, which a reader then never sees (a
    kill9 run reading while two calls ran lost the 400 records of one call)."""
    indexed = [(i, k, d) for i, (k, d) in enumerate(entries)]
    batches = [indexed[i:i + per_call] for i in range(0, len(indexed), per_call)]
    placed = [None] * len(entries)
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        for result in pool.map(lambda b: put_batch(stream, b), batches):
            for index, shard, seq in result:
                placed[index] = (shard, seq)
    return placed


def last_per_shard(placed):
    """{shard: the index of its entry with the greatest sequence number}."""
    last = {}
    for index, (shard, seq) in enumerate(placed):
        if shard not in last or seq > placed[last[shard]][1]:
            last[shard] = index
    return last
