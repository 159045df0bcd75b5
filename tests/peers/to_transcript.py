"""tests/peers/to_transcript.py - turns a tap.py session into a transcript of tests/kcl/transcripts.

Usage: to_transcript.py TAP_FILE ARGS COMMENT... > FILE.txt
Contract: the daemon's lines ("> ") and the worker's ("< ") are kept byte for byte in their order;
blank worker lines are dropped (the transcript format has none); the worker's "exit: N" ends it.
ARGS is the `shardflow mld` options the worker ran with (the transcript's `args:` line, so that
replaying it gives the same answers); each COMMENT becomes a "# " line on top. When ARGS write
to $WORK/out, an `output-lines:` line says how many records the daemon delivered.
"""

import json
import sys


def main():
    tap, args, comments = sys.argv[1], sys.argv[2], sys.argv[3:]
    out = [f"# {c}" for c in comments] + [f"args: {args}"]
    records = 0
    with open(tap) as f:
        for line in f.read().splitlines():
            if line.startswith(("> ", "< ")) and line[2:].strip():
                out.append(line)
                if line.startswith("> "):
                    records += len(json.loads(line[2:]).get("records", []))
            elif line.startswith("exit: "):
                out.append(line)
    if "$WORK/out" in args:
        out.insert(len(comments) + 1, f"output-lines: {records}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
