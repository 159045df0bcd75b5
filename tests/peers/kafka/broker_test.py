"""tests/peers/kafka/broker_test.py - shardflow's Kafka source against a real Apache Kafka broker.

Contract: runs inside a loopback-only network namespace (run.sh enters it). Starts one Kafka 4.1.1
broker (KRaft, combined broker and controller, single node, 127.0.0.1:19092 and :19093, its data in
a temporary directory) from the jars setup.sh installed, and runs every check against it in turn,
each on a topic and group of its own (the broker is auto-creating topics with 4 partitions):

  cli       `shardflow kafka put` then `shardflow kafka run` end to end: every line is out, SIGTERM
            ends the run with exit 0 and the JSON summary's committed offsets add up to every record;
            more lines and a rerun: each record exactly once (the stop committed everything)
  restart   the broker is stopped and started again mid-run (same data): the run rides it out
            (shorter than its --connect-timeout), the records put after the restart are out,
            nothing is lost, everything is committed
  kill9     a 2-member group; one member is killed with SIGKILL mid-stream: its partitions move to
            the other, which resumes each at the committed offset (it replays at most the dead
            member's uncommitted tail, in order); nothing is lost; the survivor commits everything
  lost      a 2-member group; one member is stopped (SIGSTOP) past session.timeout.ms: the broker
            evicts it, the other takes its partitions; resumed (SIGCONT), it finds its assignment
            lost and drops its pending work without committing; nothing is lost; both stop with exit 0

Every process it starts is ended by its PID (peers.Processes); every wait polls observable state
(a Metadata answer, output files, logs) against a deadline. A failed check raises peers.Failed
(exit 1); a broker that cannot be formatted or started raises peers.SetupError (exit 2, "peer set-up
failed"). `--only NAME` runs one check; `--keep` keeps the work directory.
"""

import argparse
import base64
import glob
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import peers  # noqa: E402  (tests/peers/peers.py: Processes, wait_for, Failed, SetupError)

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 19092
CONTROLLER_PORT = 19093
BROKERS = f"127.0.0.1:{PORT}"
# Short group timings (the broker allows sessions from 1 s): rebalances and evictions in seconds.
GROUP_X = ["-X", "session.timeout.ms=3000", "-X", "heartbeat.interval.ms=500",
           "-X", "auto.offset.reset=earliest", "-X", "topic.metadata.refresh.interval.ms=1000"]


def say(text):
    print(text, flush=True)


# -- the broker -----------------------------------------------------------------------------------

def server_properties(data):
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{CONTROLLER_PORT}",
        f"listeners=PLAINTEXT://127.0.0.1:{PORT},CONTROLLER://127.0.0.1:{CONTROLLER_PORT}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{PORT}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data}",
        "num.partitions=4",
        "auto.create.topics.enable=true",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=2",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "group.min.session.timeout.ms=1000",
        "",
    ])


def metadata_answers():
    """Whether the broker answers a Metadata request (v4, no topics) with at least one broker."""
    client = b"shardflow-peers"
    body = struct.pack(">hhih", 3, 4, 7, len(client)) + client + struct.pack(">i?", 0, False)
    try:
        with socket.create_connection(("127.0.0.1", PORT), timeout=2) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = s.recv(16)
            if len(head) < 16:
                return False
            _size, corr, _throttle, brokers = struct.unpack(">iiii", head)
            return corr == 7 and brokers >= 1
    except OSError:
        return False


class Broker:
    """One KRaft broker+controller; formatted once, started and stopped (by PID) as often as asked."""

    def __init__(self, procs, work, cache):
        self.procs = procs
        self.work = work
        self.classpath = os.path.join(cache, "kafka-jars", "*")
        self.config = os.path.join(work, "server.properties")
        self.proc = None
        with open(self.config, "w") as f:
            f.write(server_properties(os.path.join(work, "kraft")))
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = subprocess.run(["java", "-cp", self.classpath, "kafka.tools.StorageTool", "format",
                              "-t", cluster, "-c", self.config], capture_output=True, text=True,
                             timeout=120)
        if fmt.returncode != 0:
            raise peers.SetupError(f"kafka StorageTool format failed: {fmt.stderr[-2000:]}")

    def start(self):
        self.proc = self.procs.start("broker", [
            "java", "-Xms256m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
            f"-Dlog4j2.configurationFile={os.path.join(HERE, 'log4j2.properties')}",
            "-cp", self.classpath, "kafka.Kafka", self.config])
        try:
            peers.wait_for("the broker to answer Metadata", 90,
                           lambda: self.proc.poll() is None and metadata_answers())
        except peers.Failed as err:
            raise peers.SetupError(f"{err} (log: {self.work}/broker.log)") from None

    def stop(self):
        self.procs.stop(self.proc, grace_s=60)
        self.procs.procs.remove(self.proc)
        self.proc = None


# -- shardflow ------------------------------------------------------------------------------------

class Shardflow:
    def __init__(self, binary, procs, work):
        self.binary = binary
        self.procs = procs
        self.work = work

    def put(self, topic, lines, key=None):
        """`shardflow kafka put` of lines into topic; Failed unless it exits 0."""
        path = tempfile.mktemp(dir=self.work, suffix=".in")
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        argv = [self.binary, "kafka", "put", "--brokers", BROKERS, "--topic", topic, path]
        if key:
            argv[3:3] = ["--key", key]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        os.unlink(path)
        if run.returncode != 0:
            raise peers.Failed(f"kafka put to {topic} exited {run.returncode}: {run.stderr[-2000:]}")

    def member(self, name, topic, group, extra=()):
        """Starts `shardflow kafka run` as `name`: output in WORK/NAME.out, summary in NAME.json."""
        return self.procs.start(name, [
            self.binary, "kafka", "run", "--brokers", BROKERS, "--topic", topic, "--group", group,
            "--flusher", f"file:{self.work}/{name}.out", "--flush-interval", "100ms",
            "--checkpoint-interval", "100ms", "--heartbeat-interval", "100ms",
            "--json", f"{self.work}/{name}.json", *GROUP_X, *extra])

    def stop(self, proc):
        """SIGTERM, then the exit code (Failed unless 0) and the summary's committed offsets."""
        code = self.procs.stop(proc, grace_s=60)
        self.procs.procs.remove(proc)
        if code != 0:
            raise peers.Failed(f"{proc.peers_name} exited {code} after SIGTERM, not 0 "
                               f"(log: {self.work}/{proc.peers_name}.log)")
        with open(f"{self.work}/{proc.peers_name}.json") as f:
            return json.load(f)["committed"]

    def log(self, name):
        with open(f"{self.work}/{name}.log", errors="replace") as f:
            return f.read()

    def output(self, name):
        """{partition shard id: [data of each complete line, in order]} of member `name`."""
        out = {}
        for path in sorted(glob.glob(f"{self.work}/{name}.out/*.ndjson")):
            shard = os.path.basename(path).rsplit("-", 1)[0]
            with open(path) as f:
                text = f.read()
            lines = text.split("\n")[:-1]  # a torn last line is not out yet
            out.setdefault(shard, []).extend(json.loads(x)["d"] for x in lines)
        return out


def every_record(*outputs):
    result = []
    for out in outputs:
        for records in out.values():
            result.extend(records)
    return result


def lines_of(tag, first, count):
    return [f"{tag}-{i:06d}" for i in range(first, first + count)]


class Feeder:
    """Puts `chunks` chunks of `size` lines into a topic from a thread, one `kafka put` each."""

    def __init__(self, sf, topic, tag, chunks, size):
        self.sf, self.topic, self.tag, self.chunks, self.size = sf, topic, tag, chunks, size
        self.put = []
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            for i in range(self.chunks):
                lines = lines_of(self.tag, i * self.size, self.size)
                self.sf.put(self.topic, lines)
                self.put.extend(lines)
                time.sleep(0.05)  # a stream, not a burst (pacing only; nothing waits on it)
        except Exception as err:  # noqa: BLE001 - reported by join()
            self.error = err

    def join(self, limit_s=120):
        self.thread.join(timeout=limit_s)
        if self.thread.is_alive():
            raise peers.Failed(f"the feeder of {self.topic} did not finish in {limit_s} s")
        if self.error:
            raise self.error
        return self.put


def check(what, ok, detail=""):
    if not ok:
        raise peers.Failed(f"{what}{': ' + detail if detail else ''}")
    say(f"ok - {what}")


def check_all_out(what, put, got):
    missing = set(put) - set(got)
    check(what, not missing, f"{len(missing)} of {len(put)} missing, e.g. {sorted(missing)[:3]}")


def check_continues(first, second):
    """Each partition `second` took over from `first` resumes within first's copy and replays the
    rest of it in order (a resume at a committed offset), with no record twice in one member."""
    for shard, theirs in second.items():
        mine = first.get(shard, [])
        check(f"{shard}: no record twice within one member",
              len(set(theirs)) == len(theirs) and len(set(mine)) == len(mine))
        if not mine or not theirs:
            continue
        at = mine.index(theirs[0]) if theirs[0] in mine else len(mine)
        tail = mine[at:]
        check(f"{shard}: resumed at a committed offset ({len(tail)} uncommitted record(s) replayed)",
              theirs[:len(tail)] == tail, f"first {mine[-3:]}, then {theirs[:3]}")


def committed_sum(committed, topic):
    return sum(v for k, v in committed.items() if k.rsplit("-", 1)[0] == topic)


# -- the checks -----------------------------------------------------------------------------------

def check_cli(sf, broker):
    first = [json.dumps({"user": i % 97, "n": f"cli-{i:06d}"}) for i in range(4000)]
    sf.put("cli", first, key="user")
    m = sf.member("cli1", "cli", "g-cli")
    peers.wait_for("4000 records out", 60, lambda: len(every_record(sf.output("cli1"))) >= 4000)
    committed = sf.stop(m)
    check("cli: every record put is out", sorted(every_record(sf.output("cli1"))) == sorted(first))
    check("cli: the stop committed every record", committed_sum(committed, "cli") == 4000,
          str(committed))
    second = [json.dumps({"user": i % 97, "n": f"cli-{i:06d}"}) for i in range(4000, 5000)]
    sf.put("cli", second, key="user")
    m = sf.member("cli2", "cli", "g-cli")
    peers.wait_for("1000 more records out", 60,
                   lambda: len(every_record(sf.output("cli2"))) >= 1000)
    committed = sf.stop(m)
    got = every_record(sf.output("cli1"), sf.output("cli2"))
    check("cli: after a clean stop the rerun resumes at the committed offsets: each record once",
          sorted(got) == sorted(first + second), f"{len(got)} lines for 5000 records")
    check("cli: the rerun committed every record", committed_sum(committed, "cli") == 5000,
          str(committed))


def check_restart(sf, broker):
    before = lines_of("restart", 0, 3000)
    sf.put("restart", before)
    # Bounds well above the restart (15-25 s on 2 busy cores) keep the check about riding it out:
    # the connect timeout, and the session (with GROUP_X's 3 s the broker evicted the member when
    # its coordinator came back slower than that, and the stop then raced the member's rejoin).
    m = sf.member("restart", "restart", "g-restart",
                  ["--connect-timeout", "120s", "-X", "session.timeout.ms=60000"])
    peers.wait_for("the records put before the restart out", 60,
                   lambda: len(every_record(sf.output("restart"))) >= 3000)
    down = time.monotonic()
    broker.stop()
    broker.start()
    say(f"restart: the broker was down {time.monotonic() - down:.1f} s")
    after = lines_of("restart", 3000, 2000)
    sf.put("restart", after)
    peers.wait_for("the records put after the restart out", 90,
                   lambda: set(after) <= set(every_record(sf.output("restart"))))
    check("restart: the run rode the broker restart out (still running)", m.poll() is None)
    committed = sf.stop(m)
    got = every_record(sf.output("restart"))
    check_all_out("restart: nothing lost across the broker restart", before + after, got)
    check("restart: everything is committed after it", committed_sum(committed, "restart") == 5000,
          str(committed))


def two_members(sf, topic):
    """Starts member a, then b once a consumes; returns both once each wrote records of its own."""
    a = sf.member(f"{topic}-a", topic, f"g-{topic}")
    peers.wait_for(f"{topic}-a to consume", 60, lambda: sf.output(f"{topic}-a"))
    b = sf.member(f"{topic}-b", topic, f"g-{topic}")
    peers.wait_for(f"{topic}-b to take partitions", 60, lambda: sf.output(f"{topic}-b"))
    return a, b


def check_kill9(sf, broker):
    sf.put("moves", lines_of("moves-first", 0, 400))
    feeder = Feeder(sf, "moves", "moves", 40, 250)
    a, b = two_members(sf, "moves")
    sf.procs.kill_alone(a)
    sf.procs.procs.remove(a)
    peers.wait_for("moves-b to hold every partition", 60, lambda: len(sf.output("moves-b")) == 4)
    put = lines_of("moves-first", 0, 400) + feeder.join()
    peers.wait_for("every record out", 90,
                   lambda: set(put) <= set(every_record(sf.output("moves-a"),
                                                        sf.output("moves-b"))))
    committed = sf.stop(b)
    first, second = sf.output("moves-a"), sf.output("moves-b")
    check_all_out("kill9: nothing lost after a member's SIGKILL", put, every_record(first, second))
    check_continues(first, second)
    check("kill9: the survivor committed every record",
          committed_sum(committed, "moves") == len(put), f"{committed} for {len(put)} records")


def check_lost(sf, broker):
    sf.put("lost", lines_of("lost-first", 0, 400))
    feeder = Feeder(sf, "lost", "lost", 40, 250)
    a, b = two_members(sf, "lost")
    a.send_signal(signal.SIGSTOP)
    try:
        peers.wait_for("lost-b to take lost-a's partitions after its session timed out", 60,
                       lambda: len(sf.output("lost-b")) == 4)
    finally:
        a.send_signal(signal.SIGCONT)
    peers.wait_for("lost-a to find its assignment lost", 60,
                   lambda: "assignment lost" in sf.log("lost-a"))
    put = lines_of("lost-first", 0, 400) + feeder.join()
    peers.wait_for("every record out", 90,
                   lambda: set(put) <= set(every_record(sf.output("lost-a"),
                                                        sf.output("lost-b"))))
    committed_b = sf.stop(b)
    committed_a = sf.stop(a)
    check_all_out("lost: nothing lost after an eviction", put,
                  every_record(sf.output("lost-a"), sf.output("lost-b")))
    # Each summary names the partitions its member ever held, at what it last committed there.
    committed = {k: max(committed_a.get(k, 0), committed_b.get(k, 0))
                 for k in set(committed_a) | set(committed_b)}
    check("lost: the last holder of each partition committed every record",
          committed_sum(committed, "lost") == len(put), f"{committed} for {len(put)} records")


CHECKS = {"cli": check_cli, "restart": check_restart, "kill9": check_kill9, "lost": check_lost}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shardflow", default="shardflow")
    p.add_argument("--cache", default=os.environ.get("SHARDFLOW_PEERS_CACHE",
                                                     "/var/cache/shardflow-peers"))
    p.add_argument("--only", choices=list(CHECKS), action="append")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # run finally: end every process
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    work = tempfile.mkdtemp(prefix="peers-kafka-")
    procs = peers.Processes(work)
    code = 0
    started = time.monotonic()
    try:
        broker = Broker(procs, work, args.cache)
        broker.start()
        say(f"broker up in {time.monotonic() - started:.1f} s")
        sf = Shardflow(args.shardflow, procs, work)
        for name in args.only or list(CHECKS):
            t = time.monotonic()
            CHECKS[name](sf, broker)
            say(f"passed: {name} ({time.monotonic() - t:.1f} s)")
    except peers.SetupError as err:
        print(f"peer set-up failed: {err}", file=sys.stderr)
        code = 2
    except peers.Failed as err:
        print(f"FAILED: kafka broker tier: {err}", file=sys.stderr)
        code = 1
    finally:
        procs.close()
    say(f"kafka broker tier: {'passed' if code == 0 else 'failed'} in "
        f"{time.monotonic() - started:.1f} s")
    if code or args.keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
