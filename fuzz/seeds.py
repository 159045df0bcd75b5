#!/usr/bin/env python3
"""fuzz/seeds.py - writes the seed corpora fuzz/corpus/<harness>/ (run it again after changing it).

Daemon lines come from the worker transcripts (tests/mld/transcripts, the '> ' lines); aggregates
are built here (protobuf by hand, MD5, zlib) like kpl::aggregator builds them. Seeds are small:
libFuzzer grows its own corpus from them.
"""
import base64
import hashlib
import pathlib
import zlib

HERE = pathlib.Path(__file__).resolve().parent
TRANSCRIPTS = HERE.parent / "tests" / "mld" / "transcripts"


def write(harness, name, data):
    d = HERE / "corpus" / harness
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, wire_type, payload):
    key = varint(number << 3 | wire_type)
    return key + (varint(payload) if wire_type == 0 else varint(len(payload)) + payload)


def proto(users):
    """AggregatedRecord of (key, data, hash key or None) triples, keys shared through the tables."""
    keys, hashes, records = [], [], b""
    for key, data, hash_key in users:
        if key not in keys:
            keys.append(key)
        record = field(1, 0, keys.index(key))
        if hash_key is not None:
            if hash_key not in hashes:
                hashes.append(hash_key)
            record += field(2, 0, hashes.index(hash_key))
        records += field(3, 2, record + field(3, 2, data))
    return (b"".join(field(1, 2, k) for k in keys) + b"".join(field(2, 2, h) for h in hashes)
            + records)


def aggregate(users, magic=b"\xF3\x89\x9A\xC2"):
    body = proto(users)
    body += hashlib.md5(body).digest()
    return magic + (zlib.compress(body) if magic[0] == 1 else body)


def daemon_lines(path):
    return [line[2:] for line in path.read_text().splitlines() if line.startswith("> ")]


def main():
    users = [(b"pk1", b"data1", b"ehk1"), (b"pk2", b"data2", b"ehk2"), (b"pk1", b"x" * 300, None)]
    magics = [b"\xF3\x89\x9A\xC2", b"\x00\x89\x9A\xC2", b"\x01\x89\x9A\xC2"]
    aggregates = [aggregate(users, m) for m in magics]

    for t in sorted(TRANSCRIPTS.glob("*.txt")):
        lines = daemon_lines(t)
        write("mld_worker", t.stem, b"\x00" + "\n".join(lines).encode())
        write("mld_worker", t.stem + "-held", b"\x0c" + "\n".join(lines).encode())
        for i, line in enumerate(lines):
            write("mld_parser", f"{t.stem}-{i}", line)
    records = ",".join(
        '{"data":"%s","partitionKey":"k","sequenceNumber":"%d","subSequenceNumber":0,'
        '"approximateArrivalTimestamp":1700000000000,"action":"record"}'
        % (base64.b64encode(a).decode(), 100 + i) for i, a in enumerate(aggregates + [b"!!"]))
    session = [
        '{"action":"initialize","shardId":"shardId-1","sequenceNumber":"TRIM_HORIZON",'
        '"subSequenceNumber":0}',
        '{"action":"processRecords","millisBehindLatest":0,"records":[%s]}' % records,
        '{"action":"shutdownRequested"}',
        '{"action":"shardEnded"}',
    ]
    write("mld_worker", "aggregates", b"\x04" + "\n".join(session).encode())
    write("mld_parser", "aggregates", session[1])

    for name, data in [("empty", b""), ("hello", b"hello"), ("aggregate", aggregates[0]),
                       ("binary", bytes(range(256)))]:
        write("base64", name, base64.b64encode(data))
    write("base64", "bad-padding", b"aGVsbG8==")

    write("record_line", "text", b'\x00{"k":"user-17","t":1700000000000,"d":"{\\"user\\":17}"}')
    write("record_line", "binary", b'\x00{"k":"k","b":"84mawg=="}')
    write("record_line", "escapes", b'\x00{"d":"tab\\t \\u00e9 \\ud83d\\ude00","k":"\\"q\\""}')
    write("record_line", "record", b"\x03key\x00\x01\x02\x03\x04\x05\x06\x07\x08data \xc3\xa9 \xff")

    for name, text in [("kinesis", b"49590338271490256608559692538361571095921575989136588898\n"
                                   b"49590338271490256608559692538361571095921575989136588899\n\x00\x01\x00\x02"),
                       ("zeros", b"000123\n123\n\x05\x05\x01\x00"),
                       ("sentinels", b"TRIM_HORIZON\nSHARD_END\n\xff\x00"),
                       ("max", b"9" * 129 + b"\n" + b"1" + b"0" * 128)]:
        write("sequence_number", name, text)

    write("md5", "one", b"\x00abc")
    write("md5", "lanes", bytes([9]) + bytes([0, 1, 18, 19, 21, 22, 40, 43]) + b"m" * 400)
    write("md5", "many", bytes([19]) + bytes(range(1, 20)) + bytes(range(256)) * 4)

    write("kpl", "proto", b"\x00" + proto(users))
    write("kpl", "proto-unknown-field", b"\x00" + proto(users) + field(9, 2, b"?") + field(10, 0, 7))
    write("kpl", "batch", b"\x01" + b"\xff".join(aggregates + [b"plain"]))
    write("kpl", "limited", b"\x02\x08\x03" + aggregates[2])
    write("kpl", "limited-plain", b"\x02\x40\x02" + aggregates[1])


if __name__ == "__main__":
    main()
