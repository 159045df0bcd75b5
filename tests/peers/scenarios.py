"""tests/peers/scenarios.py - the scenarios of the peers stage against the real KCL MultiLangDaemon.

Contract: `python3 scenarios.py SCENARIO[,SCENARIO...]|all [--kcl 2|3] [--records N] --shardflow BIN`
(run.sh runs it inside `unshare -n`). The scenarios named run at the same time on one pair of
emulators, each with an application (lease tables), output directory and daemons of its own:
  control    the official Node worker (aws-kcl) as the executable; plain records.
  happy      `shardflow mld --flusher file:DIR` as the executable; plain records.
  happy_kpl  the same with KPL aggregates (packed by `shardflow kpl-agg`, de-aggregated by the
             daemon), on a stream of their own.
  crash      the worker fails after --crash-after records (checkpointing every batch): the daemon must
             exit non-zero; restarted with a sound worker it resumes at the stored checkpoints.
  kill9      the daemon is SIGKILLed once a quarter of the records are out: its workers must end at
             EOF; restarted, it resumes at the stored checkpoints.
  reshard    SplitShard of one shard once every record is out, then half as many again, on a stream
             of its own: the parent must end (its lease at SHARD_END), its two children get the new
             records and name it.
  (crash and kill9 also check that a record is delivered twice only after the checkpoint stored
  when the first daemon ended.)
control, happy, crash and kill9 read one stream of --records plain records (put once, while their
daemons start). Each passes when every lease's checkpoint in the lease table is its shard's last
record and every record put is in its worker's output, then stops its daemon gracefully (SIGTERM)
within a limit. --capture DIR runs every worker under tap.py, so DIR/SCENARIO gets each session's
real lines. Exit 0 every scenario passed, 1 an assertion failed, 2 a peer could not be set up.
Timings are printed as measured, each line headed by its scenario's name.
"""

import argparse
import base64
import concurrent.futures
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import peers
from daemon import HERE, Daemon, properties

SHARDS = 4
KPL_RECORDS = 100  # user records per aggregate
PLAIN = "orders"  # the stream that control, happy, crash and kill9 share
# scenario -> (its stream, its records as a share of --records, KPL)
STREAMS = {"control": (PLAIN, 1, False), "happy": (PLAIN, 1, False),
           "crash": (PLAIN, 1, False), "kill9": (PLAIN, 1, False),
           "happy_kpl": ("orders-kpl", 1, True), "reshard": ("orders-reshard", 0.2, False),
           "scaleout": ("orders-scale", 0, False),  # puts its own records, in three phases
           "server": (PLAIN, 1, False)}
_print_lock = threading.Lock()


def record_lines(tag, count):
    """count distinct 100-byte ASCII records."""
    return [f"{tag}-{i:07d}-".ljust(100, "x") for i in range(count)]


class Data:
    """The records put to one stream: lines, each shard's last sequence (and subsequence) number,
    and where each plain line landed ({line: (shard, sequence number)}; None for KPL)."""

    def __init__(self, lines, last, last_sub, where):
        self.lines, self.last, self.last_sub, self.where = lines, last, last_sub, where


def put_plain(stream, lines, parallel=2):
    placed = peers.put_records(stream, [(f"pk-{i}", l.encode()) for i, l in enumerate(lines)],
                               parallel)
    last = peers.last_per_shard(placed)
    where = {line: placed[i] for i, line in enumerate(lines)}
    return Data(lines, {shard: placed[i][1] for shard, i in last.items()},
                {shard: 0 for shard in last}, where)


def put_kpl(stream, lines, shardflow):
    """Aggregates of KPL_RECORDS lines, each aggregate's user records all hashing to the shard it is
    put to (the daemon drops a user record whose key is outside its shard's hash range)."""
    shards = peers.shards_of(stream)
    by_shard = {}
    for line in lines:  # kpl-agg's user partition key is the line itself
        by_shard.setdefault(peers.shard_for(shards, line), []).append(line)
    entries, sizes = [], []
    for shard, group in by_shard.items():
        packed = subprocess.run([shardflow, "kpl-agg", "--records", str(KPL_RECORDS)],
                                input="".join(l + "\n" for l in group).encode(),
                                capture_output=True, check=True).stdout.split()
        for n, agg in enumerate(packed):
            chunk = group[n * KPL_RECORDS:(n + 1) * KPL_RECORDS]
            entries.append((chunk[0], base64.b64decode(agg), shard))
            sizes.append(len(chunk))
    placed = peers.put_records(stream, [(k, d) for k, d, _ in entries], per_call=50)
    wrong = [i for i, (shard, _) in enumerate(placed) if shard != entries[i][2]]
    if wrong:
        raise peers.Failed(f"{len(wrong)} aggregates landed outside the shard of their records")
    last = peers.last_per_shard(placed)
    return Data(lines, {shard: placed[i][1] for shard, i in last.items()},
                {shard: sizes[i] - 1 for shard, i in last.items()}, None)


class World:
    """The emulators of one run and the records put to each stream, all put before any daemon
    starts (kinesis-local takes about 400 records a second, slower while daemons poll it, and
    must not be read while two puts run: see peers.put_records)."""

    def __init__(self, args, procs, names):
        self.args, self.procs = args, procs
        self.modules = os.path.join(args.cache, "npm", "node_modules")
        wanted = {}
        for name in names:
            stream, share, kpl = STREAMS[name]
            wanted[stream] = (int(args.records * share) and max(SHARDS * 10,
                                                                 int(args.records * share)), kpl)
        t0 = time.monotonic()
        peers.start_emulators(procs, self.modules, SHARDS, sorted(wanted))
        say("world", f"emulators up with {len(wanted)} streams in {time.monotonic() - t0:.1f} s")
        self.pool = concurrent.futures.ThreadPoolExecutor(len(wanted))
        self.data = {s: self.pool.submit(self._put, s, n, kpl) for s, (n, kpl) in wanted.items()
                     if n}
        for future in self.data.values():
            future.result()
        self.ready = time.monotonic()

    def _put(self, stream, count, kpl):
        t0 = time.monotonic()
        lines = record_lines(f"{stream}{self.args.kcl}", count)
        data = put_kpl(stream, lines, self.args.shardflow) if kpl else put_plain(stream, lines)
        say("world", f"{count} records put to {stream} ({len(data.last)} shards"
                     f"{', KPL' if kpl else ''}) in {time.monotonic() - t0:.1f} s")
        return data


def say(name, message):
    with _print_lock:
        print(f"[{name}] {message}", flush=True)


class Run:
    """One scenario's state: its application, output directory, stream and (once put) records."""

    def __init__(self, args, world, work, name):
        self.args, self.world, self.name, self.gen = args, world, name, args.kcl
        self.app = f"peers-{name}-kcl{args.kcl}"
        self.stream = STREAMS[name][0]
        self.work = os.path.join(work, name)
        self.out = os.path.join(self.work, "out")
        os.makedirs(self.out)
        self.worker = "node" if name == "control" else "shardflow"
        self.lines = None

    def say(self, message):
        say(self.name, message)

    def take_data(self):
        """Waits for the puts to this scenario's stream; copies what it may change."""
        if self.lines is None:
            data = self.world.data[self.stream].result()
            self.lines, self.last, self.last_sub = list(data.lines), dict(data.last), dict(data.last_sub)
            self.where = dict(data.where) if data.where is not None else None
        return self


def checkpoints_reached(app, last, last_sub):
    """True when every shard's lease checkpoint is its last record (sequence and subsequence)."""
    table = peers.leases(app)
    return all(shard in table and table[shard].get("checkpoint") == str(seq)
               and int(table[shard].get("checkpointSubSequenceNumber", "0")) == last_sub[shard]
               for shard, seq in last.items())


def output_lines(out, worker):
    """The records the worker wrote: node-*.txt lines, or the "d" field of shardflow's ndjson."""
    found = []
    pattern = "node-*.txt" if worker == "node" else "*.ndjson"
    for path in glob.glob(os.path.join(out, "**", pattern), recursive=True):
        with open(path) as f:
            whole = f.read().split("\n")[:-1]  # a line still being written has no newline yet
        found += whole if worker == "node" else [json.loads(l)["d"] for l in whole if l]
    return found


def wait_for_output(daemon, run, limit_s):
    """Waits until every record is in the output: (when the first record came out, when the last
    did); a restarted daemon's first is the first record past what was out before it started."""
    run.take_data()
    expected, first = set(run.lines), []
    before = len(output_lines(run.out, run.worker))  # a restarted daemon's workers add to these

    def probe():
        if not daemon.alive():
            raise peers.Failed(f"the daemon exited ({daemon.proc.returncode}):\n"
                               f"{daemon.log()[-3000:]}")
        found = output_lines(run.out, run.worker)
        if len(found) > before and not first:
            first.append(time.monotonic())
            put = run.world.data.get(run.stream)
            first.append(put is not None and put.done())  # were all put before?
        return expected <= set(found)
    try:
        peers.wait_for(f"all {len(run.lines)} records in the output", limit_s, probe)
    except peers.Failed:
        missing = expected - set(output_lines(run.out, run.worker))
        run.say(f"{len(missing)} of {len(run.lines)} records are not in the output")
        raise
    if not first:  # every record was out already
        first += [time.monotonic(), False]
    return first[0], time.monotonic(), first[1]


def executable(args, run, more=()):
    if run.worker == "node":
        cmd = ["node", os.path.join(HERE, "node_worker.js")]
    else:
        cmd = [os.path.abspath(args.shardflow), "mld", "--flusher", f"file:{run.out}"] + args.worker_args
        more = list(more)
        for i in range(0, len(more), 2):  # option-value pairs; the command line's own win
            if more[i] not in args.worker_args:
                cmd += more[i:i + 2]
    if args.capture:
        capture = os.path.join(args.capture, run.name)
        os.makedirs(capture, exist_ok=True)
        cmd = [sys.executable, os.path.join(HERE, "tap.py"), capture, "--"] + cmd
    if any(" " in part for part in cmd):
        raise peers.SetupError(f"executableName is split on spaces: a path has one: {cmd}")
    return " ".join(cmd)


def wait_for_checkpoints(daemon, run, limit_s):
    def probe():
        if not daemon.alive():
            raise peers.Failed(f"the daemon exited ({daemon.proc.returncode}) before every "
                               f"checkpoint:\n{daemon.log()[-3000:]}")
        return checkpoints_reached(run.app, run.last, run.last_sub)
    try:
        peers.wait_for("every lease checkpointed at its shard's last record", limit_s, probe)
    except peers.Failed:
        run.say(f"leases: {json.dumps(peers.leases(run.app), indent=1)}\n"
                f"expected: {run.last} {run.last_sub}")
        raise


def start_daemon(args, procs, run, name, more=(), extra=None, worker_id="worker-a"):
    props = os.path.join(run.work, f"{name}.properties")
    properties(props, args.shardflow, run.gen, run.app, run.stream, executable(args, run, more),
               worker_id, extra)
    return Daemon(procs, args.cache, run.gen, props, f"{run.name}-{name}",
                  env={"PEERS_OUT": run.out,
                       "PEERS_AWS_KCL": os.path.join(run.world.modules, "aws-kcl")})


def finish(args, run, daemon, started, rated=True):
    """Waits for every record and every last checkpoint, then stops the daemon gracefully."""
    first, done, all_put = wait_for_output(daemon, run, args.limit)
    wait_for_checkpoints(daemon, run, args.limit)
    t3 = time.monotonic()
    rate = ("no rate: a restart or a split in between" if not rated
            else "no rate: records were still being put" if not all_put
            else f"{len(run.lines) / (done - first):.0f} records/s" if done - first >= 1
            else "no rate: under 1 s")
    run.say(f"KCL {run.gen}: first record out {first - started:.1f} s after the daemon started, "
            f"all {len(run.lines)} out {done - first:.1f} s later ({rate}; output polled every "
            f"{peers.POLL} s); every lease checkpointed at its last record {t3 - started:.1f} s "
            f"after the start")
    status = daemon.stop(grace_s=40)
    run.say(f"daemon stopped by SIGTERM: exit {status} after {time.monotonic() - t3:.1f} s")
    if not checkpoints_reached(run.app, run.last, run.last_sub):
        raise peers.Failed("a checkpoint moved during the graceful shutdown")


def happy(args, procs, run):
    started = time.monotonic()
    finish(args, run, start_daemon(args, procs, run, "daemon-a"), started)


def stored_checkpoints(app):
    """{shard: checkpointed sequence number (0 for TRIM_HORIZON)} from the lease table."""
    table = peers.leases(app)
    return {k: int(v["checkpoint"]) if v["checkpoint"].isdigit() else 0 for k, v in table.items()}


def only_duplicates_after(run, stored):
    """Nothing lost, and a record is in the output twice only when it is after its shard's
    checkpoint stored when the first daemon ended (the replay starts there)."""
    seen = {}
    for line in output_lines(run.out, run.worker):
        seen[line] = seen.get(line, 0) + 1
    twice = [line for line, n in seen.items() if n > 1]
    early = [l for l in twice if run.where[l][1] <= stored.get(run.where[l][0], 0)]
    if early:
        raise peers.Failed(f"{len(early)} records at or before their stored checkpoint were "
                           f"delivered again, e.g. {early[0][:24]} in {run.where[early[0]][0]}")
    run.say(f"{len(twice)} records delivered twice, all after the checkpoint stored at the failure")


def crash(args, procs, run):
    """The worker fails (--crash-after): the daemon exits; restarted, it resumes at the checkpoint."""
    crash_after = args.crash_after or max(1, args.records // (2 * SHARDS))
    first = start_daemon(args, procs, run, "daemon-crash", ["--crash-after", str(crash_after),
                                                           "--checkpoint-interval", "0"],
                         {"maxRecords": "250"})  # batches checkpointed before the fault
    status = first.wait_exit(args.limit)
    stored = stored_checkpoints(run.app)
    run.say(f"the worker crashed after {crash_after} records: the daemon exited {status}; "
            f"stored checkpoints: {sum(1 for v in stored.values() if v)} of {len(stored)} shards")
    if status == 0:
        raise peers.Failed("the daemon exited 0 after its worker failed")
    started = time.monotonic()
    finish(args, run, start_daemon(args, procs, run, "daemon-after-crash"), started, False)
    only_duplicates_after(run, stored)


def kill9(args, procs, run):
    """kill -9 of the daemon mid-stream: its workers end at EOF; restarted, it resumes."""
    # many batches a shard: the kill lands mid-stream
    slow = {"maxRecords": "100", "idleTimeBetweenReadsInMillis": "200"}
    first = start_daemon(args, procs, run, "daemon-killed", ["--checkpoint-interval", "0"], slow)
    run.take_data()
    quarter = len(run.lines) // 4

    def some_out():
        if not first.alive():
            raise peers.Failed(f"the daemon exited ({first.proc.returncode}) before the kill")
        return len(output_lines(run.out, run.worker)) >= quarter
    peers.wait_for(f"{quarter} records in the output", args.limit, some_out)
    procs.kill_alone(first.proc)
    n = len(set(output_lines(run.out, run.worker)))
    peers.wait_for("the workers to end at EOF after the daemon's kill", 30,
                   lambda: not procs.group_alive(first.proc))
    stored = stored_checkpoints(run.app)
    run.say(f"daemon killed (SIGKILL) with {n} of {len(run.lines)} records out; its workers ended")
    if n >= len(run.lines):
        raise peers.Failed("the kill came after the last record: not mid-stream")
    started = time.monotonic()
    finish(args, run, start_daemon(args, procs, run, "daemon-restarted", [], slow), started, False)
    only_duplicates_after(run, stored)


def split_parent(run):
    """Splits shardId-000000000000 at the middle of its hash range; waits for the stream."""
    parent, low, high = next(s for s in peers.shards_of(run.stream) if s[0].endswith("0000"))
    peers.kinesis("SplitShard", {"StreamName": run.stream, "ShardToSplit": parent,
                                 "NewStartingHashKey": str((low + high) // 2)})
    peers.wait_for("the stream to be ACTIVE after the split", 60,
                   lambda: peers.stream_active(run.stream))
    return parent


def reshard(args, procs, run):
    """SplitShard mid-stream: the parent ends (shardEnded, checkpoint SHARD_END), its children
    (leases naming it as parent) get the rest, nothing is lost."""
    daemon = start_daemon(args, procs, run, "daemon-a", ["--checkpoint-interval", "0"],
                          {"shardSyncIntervalMillis": "2000"})
    started = time.monotonic()
    wait_for_output(daemon, run, args.limit)
    parent = split_parent(run)
    more = put_plain(run.stream, record_lines(f"after-split{run.gen}", len(run.lines) // 2),
                     parallel=1)  # the daemon reads meanwhile
    if not set(more.last) - set(run.last):
        raise peers.Failed(f"records after the split went to {sorted(more.last)}: no child of "
                           f"{parent}")
    run.lines += more.lines
    run.where.update(more.where)
    run.last.update({s: seq for s, seq in more.last.items() if s != parent})
    run.last_sub.update({s: 0 for s in more.last})
    run.last[parent] = "SHARD_END"
    finish(args, run, daemon, started, False)
    table = peers.leases(run.app)
    children = sorted(k for k, v in table.items() if parent in str(v.get("parentShardId", "")))
    if len(children) != 2:
        raise peers.Failed(f"{len(children)} leases name {parent} as their parent, not 2: {table}")
    run.say(f"{parent} ended at SHARD_END; its children {children} name it as their parent and "
            f"hold the records put to its range after the split")


def owners(app):
    """{shard: its lease owner} of the leases not yet at SHARD_END."""
    return {k: v.get("leaseOwner") for k, v in peers.leases(app).items()
            if v.get("checkpoint") != "SHARD_END"}


def message_counts(daemons):
    """How many leaseLost and shutdownRequested messages each daemon wrote to its workers."""
    counts = {}
    for d in daemons:
        log = d.log()
        counts[d.name] = (log.count("Writing LeaseLostMessage"),
                          log.count("Writing ShutdownRequestedMessage"))
    return counts


def put_phase(run, tag, count):
    """Puts count more records (one call at a time: daemons read the stream meanwhile) and adds
    them to what the run must see."""
    more = put_plain(run.stream, record_lines(f"{tag}{run.gen}", count), parallel=1)
    run.lines += more.lines
    run.where.update(more.where)
    run.last.update(more.last)
    run.last_sub.update({s: 0 for s in more.last})


def scaleout(args, procs, run):
    """Two daemons (worker-a, worker-b) split the leases; a third (worker-c) joining takes some
    over (leaseLost, or shutdownRequested on KCL 3's graceful hand-off, for the loser); stopping
    worker-a moves its leases to the others. Nothing is lost across the moves, and a record comes
    twice only after the checkpoints stored before the first move."""
    run.lines, run.last, run.last_sub, run.where = [], {}, {}, {}
    phase = max(SHARDS * 50, args.records // 10)

    def start(worker):
        os.makedirs(os.path.join(run.out, worker), exist_ok=True)
        saved, run.out = run.out, os.path.join(run.out, worker)  # each daemon's own files
        try:
            return start_daemon(args, procs, run, f"daemon-{worker}", ["--checkpoint-interval", "0"],
                                worker_id=f"worker-{worker}")
        finally:
            run.out = saved
    daemons = {w: start(w) for w in ("a", "b")}
    put_phase(run, "scale-1-", phase)

    def alive_and(check):
        def probe():
            for d in daemons.values():
                if not d.alive():
                    raise peers.Failed(f"{d.name} exited ({d.proc.returncode}):\n"
                                       f"{d.log()[-3000:]}")
            return check()
        return probe
    peers.wait_for("the leases split between worker-a and worker-b", args.limit, alive_and(
        lambda: set(owners(run.app).values()) == {"worker-a", "worker-b"}))
    wait_for_output(daemons["a"], run, args.limit)
    wait_for_checkpoints(daemons["b"], run, args.limit)
    stored = stored_checkpoints(run.app)
    run.say(f"leases split: {owners(run.app)}; {len(run.lines)} records out and checkpointed")
    daemons["c"] = start("c")
    put_phase(run, "scale-2-", phase)
    if run.gen == 2:  # KCL 2's lease taker steals from the busiest worker (leaseLost there)
        peers.wait_for("worker-c to take a lease", args.limit, alive_and(
            lambda: "worker-c" in owners(run.app).values()))
    # KCL 3's leader assigns only expired or unassigned leases while worker metrics are off (they
    # probe EC2): worker-c gets its leases when worker-a hands its own over.
    wait_for_output(daemons["c"], run, args.limit)
    run.say(f"worker-c joined: {owners(run.app)}; (leaseLost, shutdownRequested) sent: "
            f"{message_counts(daemons.values())}")
    stopped = daemons.pop("a")
    status = stopped.stop(grace_s=40)
    run.say(f"worker-a stopped by SIGTERM: exit {status}; (leaseLost, shutdownRequested) it sent: "
            f"{message_counts([stopped])}")
    put_phase(run, "scale-3-", phase)
    peers.wait_for("worker-a's leases to move to worker-b and worker-c", args.limit, alive_and(
        lambda: set(owners(run.app).values()) <= {"worker-b", "worker-c"}
        and "worker-c" in owners(run.app).values()))
    wait_for_output(daemons["b"], run, args.limit)
    wait_for_checkpoints(daemons["c"], run, args.limit)
    run.say(f"after worker-a's stop: {owners(run.app)}; every record out, every lease "
            f"checkpointed at its last record")
    for d in daemons.values():
        d.stop(grace_s=40)
    only_duplicates_after(run, stored)


def wait_exit(daemon, limit_s):
    """True when the daemon exits within limit_s (polled), False when it is still up."""
    try:
        peers.wait_for(f"{daemon.name} to exit", limit_s, lambda: not daemon.alive())
        return True
    except peers.Failed:
        return False


def server(args, procs, run):
    """`shardflow mld-server` serves every shard through `shardflow mld-connect`: one session's
    flusher fails mid-stream (--crash-after), then the server is killed (kill -9 by its PID) and
    restarted on the same address. The daemon restarts its workers (or, when a worker failure
    ended it, the test restarts it), and nothing is lost."""
    run.take_data()
    listen = "127.0.0.1:4610"  # this run's own namespace: no other user of the port
    slow = {"maxRecords": "100", "idleTimeBetweenReadsInMillis": "200"}
    crash_after = args.crash_after or max(1, args.records // (2 * SHARDS))
    exe = os.path.abspath(args.shardflow)
    incarnation = [0]

    def start_server(more=()):
        incarnation[0] += 1
        out = os.path.join(run.out, f"server-{incarnation[0]}")
        os.makedirs(out)
        return procs.start(f"{run.name}-mld-server-{incarnation[0]}",
                           [exe, "mld-server", "--flusher", f"file:{out}", "--listen", listen,
                            "--checkpoint-interval", "0", *more])

    def server_up():
        try:
            socket.create_connection(("127.0.0.1", 4610), timeout=1).close()
            return True
        except OSError:
            return False

    def start_connected_daemon(name):
        props = os.path.join(run.work, f"{name}.properties")
        command = [exe, "mld-connect", listen]
        if args.capture:
            capture = os.path.join(args.capture, run.name)
            os.makedirs(capture, exist_ok=True)
            command = [sys.executable, os.path.join(HERE, "tap.py"), capture, "--"] + command
        properties(props, args.shardflow, run.gen, run.app, run.stream, " ".join(command),
                   "worker-a", slow)
        return Daemon(procs, args.cache, run.gen, props, f"{run.name}-{name}")

    srv = start_server(["--crash-after", str(crash_after)])
    peers.wait_for("mld-server to listen", 30, server_up)
    daemon = start_connected_daemon("daemon-1")

    def past(n, d):
        def probe():
            if srv.poll() is not None:
                raise peers.Failed(f"mld-server exited ({srv.returncode})")
            return len(output_lines(run.out, run.worker)) >= n or not d.alive()
        return probe
    server_log = os.path.join(procs.work, f"{run.name}-mld-server-1.log")
    peers.wait_for("the server to log the session's injected failure", args.limit,
                   lambda: "injected failure" in open(server_log, errors="replace").read())
    stored = stored_checkpoints(run.app)
    # mld-connect exits 1 when the server closes its session, and a failed worker ends the daemon
    # (System.exit): KCL 3.1.3 noticed it only at its next write to that worker.
    t0 = time.monotonic()
    if wait_exit(daemon, 30):
        run.say(f"a session's flusher failed after {crash_after} records: its mld-connect exited "
                f"1, the daemon exited {daemon.proc.returncode} {time.monotonic() - t0:.1f} s "
                f"later; the server stayed up; restarting the daemon")
        daemon = start_connected_daemon("daemon-2")
    else:
        run.say(f"a session's flusher failed after {crash_after} records; the daemon is still up "
                f"30 s later (it did not notice)")
    half = len(run.lines) // 2
    peers.wait_for(f"{half} records out", args.limit, past(half, daemon))
    if not daemon.alive():
        raise peers.Failed(f"the daemon exited ({daemon.proc.returncode}) before the server's kill")
    procs.kill_alone(srv)
    n = len(set(output_lines(run.out, run.worker)))
    run.say(f"mld-server killed (SIGKILL, PID {srv.pid}) with {n} of {len(run.lines)} records out")
    if n >= len(run.lines):
        raise peers.Failed("the server's kill came after the last record: not mid-stream")
    srv = start_server()
    peers.wait_for("the restarted mld-server to listen", 30, server_up)
    t0 = time.monotonic()
    if wait_exit(daemon, 60):
        run.say(f"the daemon exited {daemon.proc.returncode} {time.monotonic() - t0:.1f} s after "
                f"its workers lost the server; restarting it")
        daemon = start_connected_daemon("daemon-3")
    else:
        run.say("the daemon is still up 60 s after the server's kill: its workers reconnect")
    started = time.monotonic()
    finish(args, run, daemon, started, False)
    only_duplicates_after(run, stored)


SCENARIOS = {"control": happy, "happy": happy, "happy_kpl": happy, "crash": crash, "kill9": kill9,
             "reshard": reshard, "scaleout": scaleout, "server": server}


def run_one(args, world, work, procs, name):
    """One scenario: (its name, 0 passed / 1 failed / 2 set-up failed, seconds it took)."""
    t0 = time.monotonic()
    try:
        run = Run(args, world, work, name)
        if run.gen == 3:
            peers.create_kcl3_lease_table(run.app)
            peers.create_kcl3_side_tables(run.app)
        SCENARIOS[name](args, procs, run)
        say(name, f"passed: {name} KCL {args.kcl} in {time.monotonic() - t0:.1f} s")
        return 0
    except peers.SetupError as err:
        print(f"peer set-up failed: [{name}] {err}", file=sys.stderr, flush=True)
        return 2
    except peers.Failed as err:
        print(f"FAILED: {name} KCL {args.kcl} after {time.monotonic() - t0:.1f} s: {err}",
              file=sys.stderr, flush=True)
        return 1


def run_all(args, work, procs):
    """Runs the scenarios on threads of their own. A signal (sys.exit in the main thread) must not
    wait for them here: main's finally ends every process first, and the threads, whose daemons
    are gone, then fail their waits and end."""
    world = World(args, procs, args.names)
    pool = concurrent.futures.ThreadPoolExecutor(len(args.names))
    try:
        futures = [pool.submit(run_one, args, world, work, procs, n) for n in args.names]
        codes = [f.result() for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        world.pool.shutdown(wait=False, cancel_futures=True)
    return 2 if 2 in codes else 1 if 1 in codes else 0


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("scenarios", help=f"all, or a comma-separated list of {', '.join(SCENARIOS)}")
    p.add_argument("--crash-after", type=int,
                   help="crash: records a worker takes before its fault (default: half a shard's)")
    p.add_argument("--kcl", type=int, choices=[2, 3], default=3)
    p.add_argument("--kpl", action="store_true", help="happy: KPL aggregates (= happy_kpl)")
    p.add_argument("--records", type=int, default=20000)
    p.add_argument("--shardflow", default="shardflow")
    p.add_argument("--cache", default=os.environ.get("SHARDFLOW_PEERS_CACHE",
                                                     "/var/cache/shardflow-peers"))
    p.add_argument("--capture", help="record every worker session under tap.py into this directory")
    p.add_argument("--limit", type=int, default=240, help="seconds for every checkpoint to land")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = p.parse_args(argv[:cut])
    args.worker_args = argv[cut + 1:]  # after --: more options of shardflow mld
    names = list(SCENARIOS) if args.scenarios == "all" else args.scenarios.split(",")
    if args.kpl:
        names = ["happy_kpl" if n == "happy" else n for n in names]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.names = list(dict.fromkeys(names))
    if args.capture:
        args.capture = os.path.abspath(args.capture)
    return args


def main():
    args = parse()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # run finally: end every process
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix=f"peers-kcl{args.kcl}-")
    procs = peers.Processes(work)
    code = 0
    try:
        code = run_all(args, work, procs)
    except peers.SetupError as err:
        print(f"peer set-up failed: {err}", file=sys.stderr)
        code = 2
    except peers.Failed as err:
        print(f"FAILED: KCL {args.kcl}: {err}", file=sys.stderr)
        code = 1
    finally:
        procs.close()
    verdict = "passed" if code == 0 else "FAILED" if code == 1 else "peer set-up failed"
    print(f"{verdict}: {','.join(args.names)} on KCL {args.kcl} in "
          f"{time.monotonic() - started:.1f} s wall")
    if code or args.keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
