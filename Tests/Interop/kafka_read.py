#!/usr/bin/env python3
"""Reads every record of a Kafka topic with confluent-kafka, for edgelog's replication tests.

    kafka_read.py --bootstrap HOST:PORT --topic T --expect N --timeout SECONDS
                  [--partitions auto|0,1,...] [--extra-wait SECONDS]

The consumer joins no group and commits nothing: it assigns every partition of the topic at the
beginning of its log (partitions found with list_topics, retried until the topic shows up or the
timeout passes) and reads until at least N records have arrived or SECONDS have passed since start.
--partitions 0,1 assigns exactly those partitions instead (useful on brokers that accept writes to
partitions their metadata does not list, as Tansu 0.6.0 does). --extra-wait keeps reading that
much longer once N have arrived, so a test can see duplicates or surplus records.

Output: one JSON line per record read, ordered by (partition, offset):

    {"partition": p, "offset": o, "key": b64|null, "value": b64|null,
     "headers": [[name, b64|null], ...], "timestamp": ms|null, "timestamp_type": 0|1|null}

timestamp_type uses the wire meaning (0 = CreateTime, 1 = LogAppendTime); null (with a null
timestamp) when the client reports none. librdkafka checks batch CRCs (check.crcs=true), so a
corrupt batch shows up as a consume error on stderr, not as records.

Exit status: 0 when at least N records were read; 2 when fewer arrived by the timeout (the records
that did arrive are still printed, and a message goes to stderr); 1 on bad arguments.
"""

import argparse
import base64
import json
import sys
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

# librdkafka's timestamp types (confluent_kafka.TIMESTAMP_*) mapped to the wire attribute bit.
TIMESTAMP_TYPES = {1: 0, 2: 1}  # TIMESTAMP_CREATE_TIME -> 0, TIMESTAMP_LOG_APPEND_TIME -> 1


def b64(data):
    return None if data is None else base64.b64encode(bytes(data)).decode("ascii")


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):  # exit 1, not argparse's 2 (2 means "fewer records than expected")
        self.print_usage(sys.stderr)
        self.exit(1, "%s: error: %s\n" % (self.prog, message))


def parse_args(argv):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--expect", type=int, required=True, help="records to wait for")
    parser.add_argument("--timeout", type=float, required=True, help="seconds")
    parser.add_argument("--partitions", default="auto",
                        help="'auto' (every partition list_topics reports) or a comma list")
    parser.add_argument("--extra-wait", type=float, default=0.0,
                        help="seconds to keep reading after N records arrived (default 0)")
    args = parser.parse_args(argv)
    if args.expect < 0 or args.timeout <= 0 or args.extra_wait < 0:
        parser.error("--expect must be >= 0, --timeout > 0, --extra-wait >= 0")
    if args.partitions != "auto":
        try:
            args.partitions = sorted({int(p) for p in args.partitions.split(",") if p.strip()})
        except ValueError:
            parser.error("--partitions must be 'auto' or a comma-separated list of integers")
        if not args.partitions or min(args.partitions) < 0:
            parser.error("--partitions needs at least one partition index >= 0")
    return args


def discover_partitions(consumer, topic, deadline):
    """Partition ids of the topic, retrying until it has at least one or the deadline passes."""
    last_error = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("topic %r not found in metadata: %s" % (topic, last_error or "no partitions"))
        try:
            metadata = consumer.list_topics(topic, timeout=max(0.1, min(remaining, 2.0)))
            described = metadata.topics.get(topic)
            if described is not None and described.error is None and described.partitions:
                return sorted(described.partitions)
            last_error = described.error if described is not None else "absent"
        except KafkaException as error:
            last_error = error
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def main(argv):
    args = parse_args(argv)
    start = time.monotonic()
    deadline = start + args.timeout
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        # Required by the client even though no group is joined (assign() only, nothing committed).
        "group.id": "edgelog-kafka-read-%s" % uuid.uuid4(),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_uncommitted",
        "check.crcs": True,
        "enable.partition.eof": False,
        "allow.auto.create.topics": False,
    })
    records = []
    errors = 0
    try:
        try:
            partitions = (discover_partitions(consumer, args.topic, deadline)
                          if args.partitions == "auto" else args.partitions)
        except TimeoutError as error:
            sys.stderr.write("kafka_read: %s\n" % error)
            return 2 if args.expect > 0 else 0
        consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])

        stop_at = deadline
        reached = args.expect == 0
        if reached:
            stop_at = min(deadline, time.monotonic() + args.extra_wait)
        while True:
            remaining = stop_at - time.monotonic()
            if remaining <= 0:
                break
            for message in consumer.consume(num_messages=1000, timeout=min(remaining, 0.5)):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        errors += 1
                        sys.stderr.write("kafka_read: consume error: %s\n" % error)
                    continue
                ts_type, ts = message.timestamp()
                records.append({
                    "partition": message.partition(),
                    "offset": message.offset(),
                    "key": b64(message.key()),
                    "value": b64(message.value()),
                    "headers": [[name, b64(value)] for name, value in (message.headers() or [])],
                    "timestamp": ts if ts_type in TIMESTAMP_TYPES else None,
                    "timestamp_type": TIMESTAMP_TYPES.get(ts_type),
                })
            if not reached and len(records) >= args.expect:
                reached = True
                stop_at = min(deadline, time.monotonic() + args.extra_wait)
    finally:
        consumer.close()

    records.sort(key=lambda r: (r["partition"], r["offset"]))
    out = sys.stdout
    for record in records:
        out.write(json.dumps(record, separators=(",", ":")))
        out.write("\n")
    out.flush()
    if len(records) < args.expect:
        sys.stderr.write("kafka_read: only %d of %d records arrived within %.1fs (topic %r)\n"
                         % (len(records), args.expect, args.timeout, args.topic))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
