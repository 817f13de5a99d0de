#!/usr/bin/env python3
"""Times a confluent-kafka consumer reading a whole topic from the beginning (no group).

    kafka_consume_bench.py --bootstrap HOST:PORT --topic T --records N [--timeout S]

Assigns every partition at the beginning, reads until N records arrived, and prints one JSON
line {"records", "bytes", "seconds", "records_per_s", "mb_per_s", "cpu_seconds"}: seconds from
the assignment to the Nth record, bytes = sum of value sizes. Exit 1 if fewer arrived.
"""

import argparse
import json
import resource
import sys
import time

from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "bench", "enable.auto.commit": False,
                         "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
    topic = consumer.list_topics(args.topic, timeout=10).topics[args.topic]
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in topic.partitions])
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    count = 0
    size = 0
    while count < args.records and time.perf_counter() - started < args.timeout:
        for message in consumer.consume(10000, 0.5):
            if message.error():
                continue
            count += 1
            size += len(message.value() or b"")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    consumer.close()
    print(json.dumps({
        "records": count, "bytes": size, "seconds": round(seconds, 6),
        "records_per_s": round(count / seconds, 1), "mb_per_s": round(size / 1e6 / seconds, 3),
        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 6),
    }), flush=True)
    return 0 if count >= args.records else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
