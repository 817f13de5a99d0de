#!/usr/bin/env python3
"""A consumer that long-polls every partition of a topic at its end, for `edgelog bench fetch-idle`.

    kafka_idle_consumer.py --bootstrap HOST:PORT --topic T --seconds S [--client kafka-python|confluent]
                           [--produce N]

Assigns all partitions at their end and polls for S seconds with a 500 ms long poll
(fetch.max.wait.ms), reading nothing: what a dashboard or a sink waiting for data does all
day. kafka-python keeps an incremental fetch session (KIP-227); librdkafka sends full fetches.
With --produce N (kafka-python), once its positions are known it also produces N records,
spread over the partitions in five rounds between polls, and stops when it has read them
all back: the test that incremental answers carry what arrives. Prints {"records": N,
"distinct": D} when done.
"""

import argparse
import json
import sys
import time


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--client", choices=["kafka-python", "confluent"], default="kafka-python")
    parser.add_argument("--produce", type=int, default=0)
    args = parser.parse_args(argv)
    records = 0
    values = set()
    deadline = time.monotonic() + args.seconds
    if args.client == "kafka-python":
        from kafka import KafkaConsumer, TopicPartition
        consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=None, enable_auto_commit=False,
                                 fetch_max_wait_ms=500)
        partitions = [TopicPartition(args.topic, p) for p in sorted(consumer.partitions_for_topic(args.topic))]
        consumer.assign(partitions)
        consumer.seek_to_end()
        for partition in partitions:
            consumer.position(partition)  # resolves the end now, before anything is produced
        pending = []
        if args.produce:
            from kafka import KafkaProducer
            producer = KafkaProducer(bootstrap_servers=args.bootstrap)
            rounds = 5
            pending = [list(range(i, args.produce, rounds)) for i in range(rounds)]
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records += len(batch)
                values.update(record.value for record in batch)
            if pending:
                for i in pending.pop(0):
                    producer.send(args.topic, value=b"r-%d" % i, partition=i % len(partitions))
                producer.flush()
            elif args.produce and len(values) >= args.produce:
                break
    else:
        from confluent_kafka import OFFSET_END, Consumer, TopicPartition
        consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "idle", "enable.auto.commit": False,
                             "fetch.wait.max.ms": 500})
        metadata = consumer.list_topics(args.topic, timeout=10)
        consumer.assign([TopicPartition(args.topic, p, OFFSET_END) for p in metadata.topics[args.topic].partitions])
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                records += 1
    consumer.close()
    print(json.dumps({"records": records, "distinct": len(values)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
