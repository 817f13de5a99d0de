#!/usr/bin/env python3
"""A consumer whose position is outside the log, for edgelog's offset-reset tests.

    kafka_offset_reset.py --client confluent|kafka-python --bootstrap HOST:PORT --topic T
                          --reset earliest|latest|error
                          (--offset N [--leader-epoch E] | --group G) [--commit N] [--timeout S]

Reads partition 0 of T, starting either at offset N (assign) or at group G's committed
offset (subscribe). With --commit N it only commits offset N for group G and exits.
With --leader-epoch (confluent only) the position carries that epoch, so librdkafka checks it
with OffsetForLeaderEpoch first (KIP-320) and treats a position past the epoch's end as a
truncated log.

Prints one JSON line and exits 0:
  {"first_offset": O, "low": L, "high": H}   the first record read (earliest, latest)
  {"error": "..."}                            the client raised the out-of-range error (error)
  {"timeout": true, ...}                      nothing within the timeout (the test fails)

For `latest` the script produces a record every half second once it has asked, so the
first record read must be one of those (offset >= H, the end before it started).
"""

import argparse
import json
import sys
import time


def confluent(args):
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    config = {
        "bootstrap.servers": args.bootstrap, "group.id": args.group or "offset-reset-probe",
        "auto.offset.reset": args.reset, "enable.auto.commit": False, "fetch.wait.max.ms": 200,
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
    }
    consumer = Consumer(config)
    if args.commit is not None:
        committed = consumer.commit(offsets=[TopicPartition(args.topic, 0, args.commit)], asynchronous=False)
        consumer.close()
        return {"committed": committed[0].offset}
    # The log's bounds through a consumer of their own: the one under test must learn the
    # partition's leader epoch after its assignment, which is when librdkafka validates a
    # position that carries an epoch.
    probe = Consumer(config)
    low, high = probe.get_watermark_offsets(TopicPartition(args.topic, 0), timeout=10)
    probe.close()
    if args.group:
        consumer.subscribe([args.topic])
    else:
        epoch = {} if args.leader_epoch is None else {"leader_epoch": args.leader_epoch}
        consumer.assign([TopicPartition(args.topic, 0, args.offset, **epoch)])
    producer = Producer({"bootstrap.servers": args.bootstrap}) if args.reset == "latest" else None
    deadline = time.monotonic() + args.timeout
    next_marker = time.monotonic() + 1
    try:
        while time.monotonic() < deadline:
            if producer and time.monotonic() >= next_marker:
                producer.produce(args.topic, value=b"marker", partition=0)
                producer.flush(5)
                next_marker = time.monotonic() + 0.5
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._AUTO_OFFSET_RESET or args.reset == "error":
                    return {"error": str(message.error()), "low": low, "high": high}
                continue
            return {"first_offset": message.offset(), "low": low, "high": high,
                    "value": message.value().decode("utf-8", "replace")}
        return {"timeout": True, "low": low, "high": high}
    finally:
        consumer.close()


def kafka_python(args):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    reset = "none" if args.reset == "error" else args.reset
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap, group_id=args.group or "offset-reset-probe",
        auto_offset_reset=reset, enable_auto_commit=False, fetch_max_wait_ms=200)
    partition = TopicPartition(args.topic, 0)
    if args.commit is not None:
        consumer.commit({partition: OffsetAndMetadata(args.commit, "", -1)})
        committed = consumer.committed(partition)
        consumer.close()
        return {"committed": committed}
    low = consumer.beginning_offsets([partition])[partition]
    high = consumer.end_offsets([partition])[partition]
    if args.group:
        consumer.subscribe([args.topic])
    else:
        consumer.assign([partition])
        consumer.seek(partition, args.offset)
    producer = KafkaProducer(bootstrap_servers=args.bootstrap) if args.reset == "latest" else None
    deadline = time.monotonic() + args.timeout
    next_marker = time.monotonic() + 1
    try:
        while time.monotonic() < deadline:
            if producer and time.monotonic() >= next_marker:
                producer.send(args.topic, value=b"marker", partition=0).get(timeout=5)
                next_marker = time.monotonic() + 0.5
            try:
                batches = consumer.poll(timeout_ms=200)
            except Exception as error:  # OffsetOutOfRangeError when there is no reset policy
                return {"error": f"{type(error).__name__}: {error}", "low": low, "high": high}
            for records in batches.values():
                if records:
                    first = records[0]
                    return {"first_offset": first.offset, "low": low, "high": high,
                            "value": (first.value or b"").decode("utf-8", "replace")}
        return {"timeout": True, "low": low, "high": high}
    finally:
        consumer.close()


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python"], default="confluent")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--reset", choices=["earliest", "latest", "error"], default="earliest")
    parser.add_argument("--offset", type=int)
    parser.add_argument("--leader-epoch", type=int)
    parser.add_argument("--group")
    parser.add_argument("--commit", type=int)
    parser.add_argument("--timeout", type=float, default=20)
    args = parser.parse_args(argv)
    if args.offset is None and args.group is None:
        parser.error("--offset or --group")
    result = confluent(args) if args.client == "confluent" else kafka_python(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
