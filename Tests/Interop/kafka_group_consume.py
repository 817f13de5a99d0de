#!/usr/bin/env python3
"""One member of a consumer group (confluent-kafka), for edgelog's group coordinator tests.

    kafka_group_consume.py --bootstrap HOST:PORT --topic T --group G
                           [--idle-seconds S] [--max-seconds M] [--assignor range|roundrobin]
                           [--instance-id I] [--session-timeout-ms T]

Subscribes, prints one JSON line per assignment ({"event": "assign", "partitions": [...]})
and per record ({"event": "record", "partition", "offset", "value"}), commits synchronously
after every record, and leaves the group (close) once it has been assigned and then seen no
record for S seconds, or after M seconds in all. Heartbeats every 300 ms, so rebalances are
noticed quickly. With --instance-id the member is static (KIP-345: group.instance.id), and
librdkafka sends no LeaveGroup when it closes. Exit status 0.
"""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--idle-seconds", type=float, default=3)
    parser.add_argument("--max-seconds", type=float, default=60)
    parser.add_argument("--assignor", default="range", choices=["range", "roundrobin"])
    parser.add_argument("--instance-id")
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    args = parser.parse_args(argv)

    def emit(event):
        print(json.dumps(event), flush=True)

    def on_assign(_consumer, partitions):
        emit({"event": "assign", "partitions": sorted(p.partition for p in partitions)})

    config = {
        "bootstrap.servers": args.bootstrap, "group.id": args.group, "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "heartbeat.interval.ms": 300, "session.timeout.ms": args.session_timeout_ms,
        "partition.assignment.strategy": args.assignor, "topic.metadata.refresh.interval.ms": 1000,
    }
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    consumer = Consumer(config)
    consumer.subscribe([args.topic], on_assign=on_assign)
    started = time.monotonic()
    last_record = None
    assigned = False
    while time.monotonic() - started < args.max_seconds:
        message = consumer.poll(0.2)
        if consumer.assignment():
            assigned = True
            if last_record is None:
                last_record = time.monotonic()
        if message is None:
            if assigned and last_record is not None and time.monotonic() - last_record > args.idle_seconds:
                break
            continue
        if message.error():
            emit({"event": "error", "error": str(message.error())})
            continue
        emit({"event": "record", "partition": message.partition(), "offset": message.offset(),
              "value": message.value().decode("utf-8", "replace")})
        consumer.commit(message=message, asynchronous=False)
        last_record = time.monotonic()
    consumer.close()
    emit({"event": "closed"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
