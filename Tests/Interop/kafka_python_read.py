#!/usr/bin/env python3
"""Reads a topic from the beginning with kafka-python (no group), for edgelog's listener tests.

    kafka_python_read.py --bootstrap HOST:PORT --topic T --expect N --timeout SECONDS

Prints one JSON line per record in kafka_read.py's format ({"partition", "offset", "key",
"value", "headers", "timestamp", "timestamp_type"}, bytes in base64); exits 0 when at least N
arrived, 2 otherwise.
"""

import argparse
import base64
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition


def b64(data):
    return None if data is None else base64.b64encode(data).decode("ascii")


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args(argv)
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False, group_id=None)
    deadline = time.monotonic() + args.timeout
    partitions = None
    while partitions is None and time.monotonic() < deadline:
        partitions = consumer.partitions_for_topic(args.topic)
        if partitions is None:
            time.sleep(0.1)
    records = []
    if partitions:
        assigned = [TopicPartition(args.topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        while len(records) < args.expect and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    consumer.close()
    records.sort(key=lambda m: (m.partition, m.offset))
    for m in records:
        print(json.dumps({
            "partition": m.partition, "offset": m.offset, "key": b64(m.key), "value": b64(m.value),
            "headers": [[k, b64(v)] for k, v in (m.headers or [])], "timestamp": m.timestamp,
            "timestamp_type": m.timestamp_type,
        }))
    if len(records) < args.expect:
        sys.stderr.write("kafka_python_read: %d of %d records\n" % (len(records), args.expect))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
