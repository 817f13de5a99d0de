#!/usr/bin/env python3
"""Publish-to-read latency of records whose value carries its publish time (mqtt_publish.c).

    kafka_latency_consumer.py --bootstrap HOST:PORT --topic T --records N [--timeout S]

Assigns every partition at its end (only what is published from now on counts), long-polls
with a 1 ms fetch wait, and stamps each record when it arrives. A record is readable through
the Kafka listener only once committed, so publish-to-read bounds publish-to-commit from
above (by the poll's delay). Prints one JSON line {"records", "p50_ms", "p90_ms", "p99_ms",
"max_ms"} once N records arrived; exit 1 if fewer arrived before the timeout. Prints "ready"
on stderr once assigned, so the caller can start publishing.
"""

import argparse
import json
import re
import sys
import time

from confluent_kafka import Consumer, TopicPartition, OFFSET_END

STAMP = re.compile(rb'"t_us":(\d+)')


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "latency", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 1, "fetch.min.bytes": 1})
    topic = consumer.list_topics(args.topic, timeout=10).topics[args.topic]
    consumer.assign([TopicPartition(args.topic, p, OFFSET_END) for p in topic.partitions])
    # The assignment takes effect with the first poll.
    consumer.consume(1, 0.5)
    print("ready", file=sys.stderr, flush=True)
    latencies = []
    started = time.time()
    while len(latencies) < args.records and time.time() - started < args.timeout:
        # poll, not consume(n, timeout): consume waits for n messages or the timeout, which
        # would add up to the timeout to every latency.
        message = consumer.poll(0.1)
        arrived_us = time.time_ns() // 1000
        if message is None or message.error():
            continue
        match = STAMP.search(message.value() or b"")
        if match:
            latencies.append((arrived_us - int(match.group(1))) / 1000.0)
    consumer.close()
    latencies.sort()

    def quantile(q):
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 3) if latencies else None

    print(json.dumps({"records": len(latencies), "p50_ms": quantile(0.5), "p90_ms": quantile(0.9),
                      "p99_ms": quantile(0.99), "max_ms": quantile(1.0)}), flush=True)
    return 0 if len(latencies) >= args.records else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
