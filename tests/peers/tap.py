"""tests/peers/tap.py - records a daemon/worker session line by line: tap.py LOGDIR -- WORKER ARGS...

Contract: started by the daemon as its executable, it starts WORKER with ARGS, passes every line
of its stdin to the worker and every line of the worker's stdout back, and appends each to
LOGDIR/tap-<pid>.txt in the order it passed them ("> " the daemon's line, "< " the worker's; blank
lines kept), then "exit: N" when the worker has ended; it exits with the worker's status. The
daemon's protocol is strictly request and reply, so the order in the file is the session's.
"""

import os
import subprocess
import sys
import threading


def main():
    logdir, sep, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    if sep != "--" or not argv:
        sys.exit("usage: tap.py LOGDIR -- WORKER ARGS...")
    log = open(os.path.join(logdir, f"tap-{os.getpid()}.txt"), "a", buffering=1)
    lock = threading.Lock()
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def note(prefix, line):
        with lock:
            log.write(prefix + line.decode("utf-8", "replace").rstrip("\n") + "\n")

    def answers():
        for line in child.stdout:
            note("< ", line)
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()

    reader = threading.Thread(target=answers)
    reader.start()
    try:
        for line in sys.stdin.buffer:
            note("> ", line)
            child.stdin.write(line)
            child.stdin.flush()
    except BrokenPipeError:
        pass
    try:
        child.stdin.close()
    except BrokenPipeError:
        pass
    status = child.wait()
    reader.join()
    note("exit: ", str(status).encode())
    sys.exit(status)


if __name__ == "__main__":
    main()
