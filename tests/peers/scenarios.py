"""tests/peers/scenarios.py - the scenarios of the peers stage against the real KCL MultiLangDaemon.

Contract: `python3 scenarios.py SCENARIO [--kcl 2|3] [--kpl] [--records N] --shardflow BIN` (run.sh
runs it inside `unshare -n`). Scenarios:
  control  the official Node worker (aws-kcl) as the executable; plain records.
  happy    `shardflow mld --flusher file:DIR` as the executable; plain or KPL-aggregated records
           (packed by `shardflow kpl-agg`, de-aggregated by the daemon).
  crash    the worker fails after --crash-after records (checkpointing every batch): the daemon must
           exit non-zero; restarted with a sound worker it resumes at the stored checkpoints.
  kill9    the daemon is SIGKILLed once a quarter of the records are out: its workers must end at
           EOF; restarted, it resumes at the stored checkpoints.
  reshard  SplitShard of one shard once every record is out, then as many again: the parent must
           end (its lease at SHARD_END), its two children get the new records and name it.
  (crash and kill9 also check that a record is delivered twice only after the checkpoint stored
  when the first daemon ended; plain records only.)
Each puts the records into a 4-shard stream on kinesis-local, starts the daemon and passes when
every lease's checkpoint in the lease table is its shard's last record and every record put is in
the worker's output, then stops the daemon gracefully (SIGTERM) within a limit. --capture DIR runs
every worker under tap.py, so DIR gets each session's real lines. Exit 0 passed, 1 an assertion
failed, 2 a peer could not be set up. Timings are printed as measured.
"""

import argparse
import base64
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import peers
from daemon import HERE, Daemon, properties

STREAM = "orders"
SHARDS = 4
KPL_RECORDS = 100  # user records per aggregate


def record_lines(tag, count):
    """count distinct 100-byte ASCII records."""
    return [f"{tag}-{i:07d}-".ljust(100, "x") for i in range(count)]


def put_plain(lines):
    placed = peers.put_records(STREAM, [(f"pk-{i}", l.encode()) for i, l in enumerate(lines)])
    last = peers.last_per_shard(placed)
    where = {line: placed[i] for i, line in enumerate(lines)}
    return {shard: placed[i][1] for shard, i in last.items()}, {shard: 0 for shard in last}, where


def put_kpl(lines, shardflow):
    """Aggregates of KPL_RECORDS lines, each aggregate's user records all hashing to the shard it is
    put to (the daemon drops a user record whose key is outside its shard's hash range)."""
    shards = peers.shards_of(STREAM)
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
    placed = peers.put_records(STREAM, [(k, d) for k, d, _ in entries])
    wrong = [i for i, (shard, _) in enumerate(placed) if shard != entries[i][2]]
    if wrong:
        raise peers.Failed(f"{len(wrong)} aggregates landed outside the shard of their records")
    last = peers.last_per_shard(placed)
    return ({shard: placed[i][1] for shard, i in last.items()},
            {shard: sizes[i] - 1 for shard, i in last.items()}, None)


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
    for path in glob.glob(os.path.join(out, pattern)):
        with open(path) as f:
            whole = f.read().split("\n")[:-1]  # a line still being written has no newline yet
        found += whole if worker == "node" else [json.loads(l)["d"] for l in whole if l]
    return found


def wait_for_output(daemon, out, worker, lines, limit_s):
    """Waits until every record is in the output: (when the first record came out, when the last
    did); a restarted daemon's first is the first record past what was out before it started."""
    expected, first = set(lines), []
    before = len(output_lines(out, worker))  # a restarted daemon's workers add to these

    def probe():
        if not daemon.alive():
            raise peers.Failed(f"the daemon exited ({daemon.proc.returncode}):\n"
                               f"{daemon.log()[-3000:]}")
        found = output_lines(out, worker)
        if len(found) > before and not first:
            first.append(time.monotonic())
        return expected <= set(found)
    try:
        peers.wait_for(f"all {len(lines)} records in the output", limit_s, probe)
    except peers.Failed:
        missing = expected - set(output_lines(out, worker))
        print(f"{len(missing)} of {len(lines)} records are not in the output")
        raise
    return first[0], time.monotonic()


def executable(args, out, more=()):
    if args.scenario == "control":
        cmd = ["node", os.path.join(HERE, "node_worker.js")]
    else:
        cmd = [os.path.abspath(args.shardflow), "mld", "--flusher", f"file:{out}"] + args.worker_args
        more = list(more)
        for i in range(0, len(more), 2):  # option-value pairs; the command line's own win
            if more[i] not in args.worker_args:
                cmd += more[i:i + 2]
    if args.capture:
        cmd = [sys.executable, os.path.join(HERE, "tap.py"), args.capture, "--"] + cmd
    if any(" " in part for part in cmd):
        raise peers.SetupError(f"executableName is split on spaces: a path has one: {cmd}")
    return " ".join(cmd)


def wait_for_checkpoints(daemon, app, last, last_sub, limit_s):
    def probe():
        if not daemon.alive():
            raise peers.Failed(f"the daemon exited ({daemon.proc.returncode}) before every "
                               f"checkpoint:\n{daemon.log()[-3000:]}")
        return checkpoints_reached(app, last, last_sub)
    try:
        peers.wait_for("every lease checkpointed at its shard's last record", limit_s, probe)
    except peers.Failed:
        print(f"leases: {json.dumps(peers.leases(app), indent=1)}\nexpected: {last} {last_sub}")
        raise


def prepare(args, work, procs):
    """The emulators, the stream, the tables and the records put: the run's state."""
    run = argparse.Namespace(gen=args.kcl, app=f"peers-{args.scenario}-kcl{args.kcl}",
                             out=os.path.join(work, "out"), work=work)
    os.makedirs(run.out)
    modules = os.path.join(args.cache, "npm", "node_modules")
    os.environ.update(PEERS_OUT=run.out, PEERS_AWS_KCL=os.path.join(modules, "aws-kcl"))
    t0 = time.monotonic()
    peers.start_emulators(procs, modules, SHARDS, STREAM)
    if run.gen == 3:
        peers.create_kcl3_lease_table(run.app)
        peers.create_kcl3_side_tables(run.app)
    run.lines = record_lines(f"{args.scenario}{run.gen}{'k' if args.kpl else 'p'}", args.records)
    t1 = time.monotonic()
    run.last, run.last_sub, run.where = (put_kpl(run.lines, args.shardflow) if args.kpl
                                         else put_plain(run.lines))
    print(f"emulators up in {t1 - t0:.1f} s; {len(run.lines)} records put to {len(run.last)} "
          f"shards in {time.monotonic() - t1:.1f} s")
    run.worker = "node" if args.scenario == "control" else "shardflow"
    return run


def start_daemon(args, procs, run, name, more=(), extra=None):
    props = os.path.join(run.work, f"{name}.properties")
    properties(props, args.shardflow, run.gen, run.app, STREAM, executable(args, run.out, more),
               "worker-a", extra)
    return Daemon(procs, args.cache, run.gen, props, name)


def finish(args, run, daemon, started, rated=True):
    """Waits for every record and every last checkpoint, then stops the daemon gracefully."""
    first, done = wait_for_output(daemon, run.out, run.worker, run.lines, args.limit)
    wait_for_checkpoints(daemon, run.app, run.last, run.last_sub, args.limit)
    t3 = time.monotonic()
    rate = (f"{len(run.lines) / (done - first):.0f} records/s" if done - first >= 1 and rated
            else "no rate: under 1 s" if rated else "no rate: a restart or a split in between")
    print(f"KCL {run.gen}: first record out {first - started:.1f} s after the daemon started, all "
          f"{len(run.lines)} out {done - first:.1f} s later ({rate}; output polled every "
          f"{peers.POLL} s); every lease checkpointed at its last record {t3 - started:.1f} s "
          f"after the start")
    status = daemon.stop(grace_s=40)
    print(f"daemon stopped by SIGTERM: exit {status} after {time.monotonic() - t3:.1f} s")
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
    print(f"{len(twice)} records delivered twice, all after the checkpoint stored at the failure")


def crash(args, procs, run):
    """The worker fails (--crash-after): the daemon exits; restarted, it resumes at the checkpoint."""
    first = start_daemon(args, procs, run, "daemon-crash", ["--crash-after", str(args.crash_after),
                                                           "--checkpoint-interval", "0"])
    status = first.wait_exit(args.limit)
    stored = stored_checkpoints(run.app)
    print(f"the worker crashed after {args.crash_after} records: the daemon exited {status}; "
          f"stored checkpoints: {sum(1 for v in stored.values() if v)} of {len(stored)} shards")
    if status == 0:
        raise peers.Failed("the daemon exited 0 after its worker failed")
    started = time.monotonic()
    finish(args, run, start_daemon(args, procs, run, "daemon-after-crash"), started, False)
    only_duplicates_after(run, stored)


def kill9(args, procs, run):
    """kill -9 of the daemon mid-stream: its workers end at EOF; restarted, it resumes."""
    slow = {"maxRecords": "100"}  # 50 batches a shard: the kill lands mid-stream
    first = start_daemon(args, procs, run, "daemon-killed", ["--checkpoint-interval", "0"], slow)
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
    print(f"daemon killed (SIGKILL) with {n} of {len(run.lines)} records out; its workers ended")
    if n >= len(run.lines):
        raise peers.Failed("the kill came after the last record: not mid-stream")
    started = time.monotonic()
    finish(args, run, start_daemon(args, procs, run, "daemon-restarted", [], slow), started, False)
    only_duplicates_after(run, stored)


def split_parent(run):
    """Splits shardId-000000000000 at the middle of its hash range; waits for the stream."""
    parent, low, high = next(s for s in peers.shards_of(STREAM) if s[0].endswith("0000"))
    peers.kinesis("SplitShard", {"StreamName": STREAM, "ShardToSplit": parent,
                                 "NewStartingHashKey": str((low + high) // 2)})
    peers.wait_for("the stream to be ACTIVE after the split", 60, lambda: peers.stream_active(STREAM))
    return parent


def reshard(args, procs, run):
    """SplitShard mid-stream: the parent ends (shardEnded, checkpoint SHARD_END), its children
    (leases naming it as parent) get the rest, nothing is lost."""
    daemon = start_daemon(args, procs, run, "daemon-a", ["--checkpoint-interval", "0"])
    started = time.monotonic()
    wait_for_output(daemon, run.out, run.worker, run.lines, args.limit)
    parent = split_parent(run)
    more = record_lines(f"after-split{run.gen}", args.records // 2)
    last, _, where = put_plain(more)
    if not set(last) - set(run.last):
        raise peers.Failed(f"records after the split went to {sorted(last)}: no child of {parent}")
    run.lines += more
    run.where.update(where)
    run.last.update({s: seq for s, seq in last.items() if s != parent})
    run.last_sub.update({s: 0 for s in last})
    run.last[parent] = "SHARD_END"
    finish(args, run, daemon, started, False)
    table = peers.leases(run.app)
    children = sorted(k for k, v in table.items() if parent in str(v.get("parentShardId", "")))
    if len(children) != 2:
        raise peers.Failed(f"{len(children)} leases name {parent} as their parent, not 2: {table}")
    print(f"{parent} ended at SHARD_END; its children {children} name it as their parent and "
          f"hold the records put to its range after the split")


SCENARIOS = {"control": happy, "happy": happy, "crash": crash, "kill9": kill9, "reshard": reshard}


def run_scenario(args, work, procs):
    if args.kpl and args.scenario in ("crash", "kill9", "reshard"):
        raise peers.SetupError(f"{args.scenario} runs plain records only")
    SCENARIOS[args.scenario](args, procs, prepare(args, work, procs))


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=list(SCENARIOS))
    p.add_argument("--crash-after", type=int,
                   help="crash: records a worker takes before its fault (default: half a shard's)")
    p.add_argument("--kcl", type=int, choices=[2, 3], default=3)
    p.add_argument("--kpl", action="store_true")
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
    if args.crash_after is None:
        args.crash_after = max(1, args.records // (2 * SHARDS))
    return args


def main():
    args = parse()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # run finally: end every process
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    work = tempfile.mkdtemp(prefix=f"peers-{args.scenario}-")
    procs = peers.Processes(work)
    code = 0
    try:
        run_scenario(args, work, procs)
        print(f"passed: {args.scenario} KCL {args.kcl}{' KPL' if args.kpl else ''}")
    except peers.SetupError as err:
        print(f"peer set-up failed: {err}", file=sys.stderr)
        code = 2
    except peers.Failed as err:
        print(f"FAILED: {args.scenario} KCL {args.kcl}: {err}", file=sys.stderr)
        code = 1
    finally:
        procs.close()
    if code or args.keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
