"""tests/peers/scenarios.py - the scenarios of the peers stage against the real KCL MultiLangDaemon.

Contract: `python3 scenarios.py SCENARIO [--kcl 2|3] [--kpl] [--records N] --shardflow BIN` (run.sh
runs it inside `unshare -n`). Scenarios:
  control  the official Node worker (aws-kcl) as the executable; plain records.
  happy    `shardflow mld --flusher file:DIR` as the executable; plain or KPL-aggregated records
           (packed by `shardflow kpl-agg`, de-aggregated by the daemon).
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
    return {shard: placed[i][1] for shard, i in last.items()}, {shard: 0 for shard in last}


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
            {shard: sizes[i] - 1 for shard, i in last.items()})


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
    """Waits until every record is in the output: (when the first was, when the last was)."""
    expected, first = set(lines), []

    def probe():
        if not daemon.alive():
            raise peers.Failed(f"the daemon exited ({daemon.proc.returncode}):\n"
                               f"{daemon.log()[-3000:]}")
        found = output_lines(out, worker)
        if found and not first:
            first.append(time.monotonic())
        return expected <= set(found)
    try:
        peers.wait_for(f"all {len(lines)} records in the output", limit_s, probe)
    except peers.Failed:
        missing = expected - set(output_lines(out, worker))
        print(f"{len(missing)} of {len(lines)} records are not in the output")
        raise
    return first[0], time.monotonic()


def executable(args, out):
    if args.scenario == "control":
        cmd = ["node", os.path.join(HERE, "node_worker.js")]
    else:
        cmd = [os.path.abspath(args.shardflow), "mld", "--flusher", f"file:{out}"] + args.worker_args
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


def run_scenario(args, work, procs):
    gen, app = args.kcl, f"peers-{args.scenario}-kcl{args.kcl}"
    out = os.path.join(work, "out")
    os.makedirs(out)
    modules = os.path.join(args.cache, "npm", "node_modules")
    os.environ.update(PEERS_OUT=out, PEERS_AWS_KCL=os.path.join(modules, "aws-kcl"))
    t0 = time.monotonic()
    peers.start_emulators(procs, modules, SHARDS, STREAM)
    if gen == 3:
        peers.create_kcl3_lease_table(app)
        peers.create_kcl3_side_tables(app)
    lines = record_lines(f"{args.scenario}{gen}{'k' if args.kpl else 'p'}", args.records)
    t1 = time.monotonic()
    last, last_sub = put_kpl(lines, args.shardflow) if args.kpl else put_plain(lines)
    t2 = time.monotonic()
    print(f"emulators up in {t1 - t0:.1f} s; {len(lines)} records put to {len(last)} shards in "
          f"{t2 - t1:.1f} s")
    props = os.path.join(work, "daemon.properties")
    properties(props, args.shardflow, gen, app, STREAM, executable(args, out), "worker-a")
    daemon = Daemon(procs, args.cache, gen, props, "daemon-a")
    worker = "node" if args.scenario == "control" else "shardflow"
    first, done = wait_for_output(daemon, out, worker, lines, args.limit)
    wait_for_checkpoints(daemon, app, last, last_sub, args.limit)
    t3 = time.monotonic()
    rate = (f"{len(lines) / (done - first):.0f} records/s" if done - first >= 1
            else "under 1 s: no rate")
    print(f"KCL {gen}: first record out {first - t2:.1f} s after the daemon started, all "
          f"{len(lines)} out {done - first:.1f} s later ({rate}; output polled every {peers.POLL} "
          f"s); every lease checkpointed at its last record {t3 - t2:.1f} s after the start")
    status = daemon.stop(grace_s=40)
    print(f"daemon stopped by SIGTERM: exit {status} after {time.monotonic() - t3:.1f} s")
    if not checkpoints_reached(app, last, last_sub):
        raise peers.Failed("a checkpoint moved during the graceful shutdown")


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["control", "happy"])
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
