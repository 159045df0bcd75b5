"""tests/peers/daemon.py - the real KCL MultiLangDaemon of the peers stage: properties, start, limits.

Contract: `properties()` writes the daemon's properties file for one run (`shardflow mld properties
--kcl N` with the emulators' endpoints, then polling retrieval, short lease and sync intervals so a
run takes seconds; KCL 3 also without worker metrics, which would probe EC2). `Daemon` starts `java ... MultiLangDaemon` from the flat jar
directory of its generation, with local credentials and no EC2 metadata, logs to WORK/<name>.log and
ends it by its PID; `wait_exit` bounds every run by a wall-clock limit.
"""

import os
import signal
import subprocess
import time

from peers import DAEMON_MAIN, DYNAMO, KINESIS, Failed, SetupError

HERE = os.path.dirname(os.path.abspath(__file__))


def properties(path, shardflow, gen, app, stream, executable, worker_id, extra=None):
    """Writes the properties file for KCL generation gen (2 or 3): what `shardflow mld properties
    --kcl GEN` prints for the stream, the application, the executable and the emulators'
    endpoints, as is (so the stage proves that file works on each generation), then the keys of
    this stage only (the worker id, polling, short intervals), which Java's Properties lets
    override."""
    made = subprocess.run([shardflow, "mld", "properties", "--kcl", str(gen), "--stream", stream,
                           "--app", app, "--executable", executable,
                           "--kinesis-endpoint", KINESIS, "--dynamodb-endpoint", DYNAMO],
                          capture_output=True)
    if made.returncode != 0:
        raise SetupError(f"shardflow mld properties exited {made.returncode}: "
                         f"{made.stderr.decode(errors='replace').strip()}")
    base = made.stdout
    keys = {
        "workerId": worker_id,
        "retrievalMode": "POLLING",
        # Every scenario of a run polls one kinesis-local (a single Node process, the stage's
        # bottleneck: about 400 PutRecords entries a second on 2 cores): an idle shard is read once
        # a second; a scenario that needs many small batches (kill9) reads faster on its own.
        "idleTimeBetweenReadsInMillis": "1000",
        "maxRecords": "2000",
        "failoverTimeMillis": "3000",
        "shardSyncIntervalMillis": "10000",
        "parentShardPollIntervalMillis": "1000",
        "taskBackoffTimeMillis": "200",
        # A graceful shutdown of a healthy run takes about a second. KCL 3.1.3 also sends the
        # shutdown notification for a lease whose shard already ended (the reshard's parent, its
        # consumer gone), which never completes: its daemon waits out this grace (it was 20 s).
        "shutdownGraceMillis": "5000",
    }
    if gen == 3:
        keys.update({"disableWorkerMetrics": "true", "leaseAssignmentIntervalMillis": "1000",
                     "gracefulLeaseHandoffTimeoutMillis": "5000"})
    keys.update(extra or {})
    with open(path, "wb") as out:
        out.write(base + b"\n\n# The peers stage (tests/peers/daemon.py):\n")
        out.write("".join(f"{k} = {v}\n" for k, v in keys.items()).encode())


class Daemon:
    """One daemon process (KCL 2.7.2 or 3.1.3) started through `procs`."""

    def __init__(self, procs, cache, gen, props, name, env=None):
        jars = os.path.join(cache, f"kcl{gen}-jars")
        if not os.path.isdir(jars):
            raise Failed(f"no {jars}: run tests/peers/setup.sh")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDLOCAL", AWS_SECRET_ACCESS_KEY="local",
                   AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", **(env or {}))
        argv = ["java", "-Xmx384m", "-Daws.cborEnabled=false", "-Dfile.encoding=UTF-8",
                f"-Dlogback.configurationFile={HERE}/logback.xml", "-cp", f"{jars}/*",
                DAEMON_MAIN, "--properties-file", props]
        self.procs, self.name, self.started = procs, name, time.monotonic()
        self.proc = procs.start(name, argv, env=env)

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        with open(os.path.join(self.procs.work, f"{self.name}.log"), errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, grace_s=40):
        """Ends the daemon (SIGTERM: its graceful shutdown), returns its exit status."""
        return self.procs.stop(self.proc, sig=sig, grace_s=grace_s)

    def wait_exit(self, limit_s):
        """Waits for the daemon to exit by itself within limit_s (else Failed, and it is killed)."""
        try:
            return self.proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGKILL)
            raise Failed(f"{self.name} did not exit within {limit_s} s") from None
