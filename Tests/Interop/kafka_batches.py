#!/usr/bin/env python3
"""Builds and parses Kafka RecordBatch v2 with kafka-python, for edgelog's interop tests.

kafka-python (>= 2.0, tested with 3.0.12) is an implementation of the record format written
independently of edgelog, so a batch that it accepts, and that decodes to the same records it
built, is byte-compatible with what Kafka clients put on the wire.

Every subcommand reads one JSON document on stdin and writes one on stdout. Byte strings
(keys, values, header values, batches) are base64; null stays null.

    build    {"codec": 0|1|3|4, "base_offset": N, "producer_id": -1, "producer_epoch": -1,
              "base_sequence": -1, "is_transactional": false (optional),
              "records": [{"offset_delta": i, "timestamp": ms, "key": b64|null,
                           "value": b64|null, "headers": [[name, b64|null], ...]}, ...]}
          -> {"batch": b64, "codec_used": n}
             kafka-python silently falls back to no compression when compressing does not
             shrink the records, so "codec_used" (the codec bits of the built batch's
             attributes) is what the caller must check against the codec it asked for.

    parse    {"batches": [b64, ...]}
          -> {"batches": [{"base_offset", "batch_length", "size_in_bytes", "bytes_given",
                           "partition_leader_epoch", "magic", "crc", "crc_valid", "attributes",
                           "compression_type", "is_transactional", "is_control_batch",
                           "timestamp_type", "last_offset_delta", "first_timestamp",
                           "max_timestamp", "producer_id", "producer_epoch", "base_sequence",
                           "records_count",
                           "records": [{"offset", "timestamp", "key", "value",
                                        "headers": [[name, b64|null], ...]}, ...]}, ...]}

    murmur2  {"keys": [b64, ...], "partitions": N}
          -> {"hashes": [...], "hashes_int32": [...], "partitions": [...]}
             "hashes" is kafka-python's murmur2 (unsigned 32 bits), "hashes_int32" the same
             bits read as Java's signed int (what Utils.murmur2 returns), "partitions" what
             DefaultPartitioner picks for a non-null key: (murmur2(key) & 0x7fffffff) % N.

Errors go to stderr with a non-zero exit status.
"""

import base64
import json
import struct
import sys

from kafka.partitioner.default import murmur2
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

CODECS = (0, 1, 2, 3, 4)  # none, gzip, snappy (xerial framing, python-snappy), lz4, zstd
HUGE_BATCH_SIZE = 1 << 30


def b64decode(text):
    return None if text is None else base64.b64decode(text, validate=True)


def b64encode(data):
    return None if data is None else base64.b64encode(bytes(data)).decode("ascii")


def build(request):
    codec = int(request["codec"])
    if codec not in CODECS:
        raise ValueError("unsupported codec %r; expected one of %r" % (codec, CODECS))
    records = request["records"]
    if not records:
        raise ValueError("a batch needs at least one record")
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=bool(request.get("is_transactional", False)),
        producer_id=int(request.get("producer_id", -1)),
        producer_epoch=int(request.get("producer_epoch", -1)),
        base_sequence=int(request.get("base_sequence", -1)),
        batch_size=HUGE_BATCH_SIZE,
    )
    for index, record in enumerate(records):
        headers = [(name, b64decode(value)) for name, value in record.get("headers", [])]
        metadata = builder.append(
            int(record.get("offset_delta", index)),
            timestamp=int(record["timestamp"]),
            key=b64decode(record.get("key")),
            value=b64decode(record.get("value")),
            headers=headers,
        )
        if metadata is None:
            raise RuntimeError("kafka-python refused record %d: batch full" % index)
    batch = bytearray(builder.build())
    # baseOffset is bytes 0..<8, big-endian, outside the CRC (brokers assign it in place).
    struct.pack_into(">q", batch, 0, int(request.get("base_offset", 0)))
    parsed = DefaultRecordBatch(bytes(batch))
    if not parsed.validate_crc():
        raise RuntimeError("kafka-python built a batch whose CRC it does not accept")
    return {"batch": b64encode(batch), "codec_used": parsed.attributes & 0x07}


def parse_one(data):
    batch = DefaultRecordBatch(data)
    crc_valid = batch.validate_crc()  # must come before iterating (which decompresses)
    summary = {
        "base_offset": batch.base_offset,
        "batch_length": batch.size_in_bytes - DefaultRecordBatch.AFTER_LEN_OFFSET,
        "size_in_bytes": batch.size_in_bytes,
        "bytes_given": len(data),
        "partition_leader_epoch": batch.leader_epoch,
        "magic": batch.magic,
        "crc": batch.crc,
        "crc_valid": crc_valid,
        "attributes": batch.attributes,
        "compression_type": batch.compression_type,
        "is_transactional": batch.is_transactional,
        "is_control_batch": batch.is_control_batch,
        "timestamp_type": batch.timestamp_type,
        "last_offset_delta": batch.last_offset_delta,
        "first_timestamp": batch.first_timestamp,
        "max_timestamp": batch.max_timestamp,
        "producer_id": batch.producer_id,
        "producer_epoch": batch.producer_epoch,
        "base_sequence": batch.base_sequence,
        "records_count": batch.records_count,
    }
    records = []
    for record in batch:  # raises CorruptRecordError on leftover or missing bytes
        records.append({
            "offset": record.offset,
            "timestamp": record.timestamp,
            "key": b64encode(record.key),
            "value": b64encode(record.value),
            "headers": [[name, b64encode(value)] for name, value in record.headers],
        })
    summary["records"] = records
    return summary


def parse(request):
    return {"batches": [parse_one(base64.b64decode(text, validate=True)) for text in request["batches"]]}


def murmur2_command(request):
    partitions = int(request["partitions"])
    if partitions <= 0:
        raise ValueError("partitions must be positive")
    hashes = [murmur2(b64decode(key)) for key in request["keys"]]
    return {
        "hashes": hashes,
        "hashes_int32": [h - (1 << 32) if h >= (1 << 31) else h for h in hashes],
        # kafka.partitioner.default.DefaultPartitioner for a non-null serialized key.
        "partitions": [(h & 0x7FFFFFFF) % partitions for h in hashes],
    }


COMMANDS = {"build": build, "parse": parse, "murmur2": murmur2_command}


def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
        sys.stderr.write("usage: %s {%s} < request.json\n" % (argv[0], "|".join(COMMANDS)))
        return 2
    request = json.load(sys.stdin)
    response = COMMANDS[argv[1]](request)
    json.dump(response, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
