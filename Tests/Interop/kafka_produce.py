#!/usr/bin/env python3
"""Produces numbered records to a Kafka broker, for edgelog's listener tests.

    kafka_produce.py --client confluent|kafka-python --bootstrap HOST:PORT --topic T --count N
                     [--codec none|gzip|snappy|lz4|zstd] [--prefix P]

Record i has key "k<i % 7>", value "<prefix>-<i>" followed by 200 bytes of repeated text (so
every codec really compresses), and one header ("i", "<i>"). confluent-kafka produces with
enable.idempotence=true and linger.ms=5; kafka-python with acks=all. Prints one JSON line
{"sent": N} and exits 0 when every record was acknowledged, 1 otherwise.
"""

import argparse
import json
import sys

PADDING = " edge" * 40


def record(prefix, i):
    return ("k%d" % (i % 7)).encode(), ("%s-%d%s" % (prefix, i, PADDING)).encode(), [("i", str(i).encode())]


def confluent(args):
    from confluent_kafka import Producer
    failures = []
    producer = Producer({
        "bootstrap.servers": args.bootstrap, "compression.type": args.codec, "enable.idempotence": True,
        "linger.ms": 5, "acks": "all",
    })
    for i in range(args.count):
        key, value, headers = record(args.prefix, i)
        producer.produce(args.topic, key=key, value=value, headers=headers,
                         on_delivery=lambda error, _m: error and failures.append(str(error)))
        if i % 1000 == 0:
            producer.poll(0)
    left = producer.flush(30)
    return left == 0 and not failures, failures[:3]


def kafka_python(args):
    from kafka import KafkaProducer
    codec = None if args.codec == "none" else args.codec
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, compression_type=codec, acks="all")
    futures = [producer.send(args.topic, key=k, value=v, headers=h) for k, v, h in
               (record(args.prefix, i) for i in range(args.count))]
    producer.flush(30)
    errors = [str(f.exception) for f in futures if f.failed()]
    producer.close()
    return not errors, errors[:3]


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=["confluent", "kafka-python"], default="confluent")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--codec", default="none", choices=["none", "gzip", "lz4", "zstd", "snappy"])
    parser.add_argument("--prefix", default="r")
    args = parser.parse_args(argv)
    ok, errors = (confluent if args.client == "confluent" else kafka_python)(args)
    print(json.dumps({"sent": args.count, "ok": ok, "errors": errors}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
