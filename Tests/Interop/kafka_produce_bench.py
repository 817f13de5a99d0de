#!/usr/bin/env python3
"""Baseline producer throughput with confluent-kafka (librdkafka), to compare edgelog's replication with.

    kafka_produce_bench.py --bootstrap HOST:PORT --topic T --records N --size BYTES
                           [--keys K] [--partitions P]

Producer settings: linger.ms=5, compression.type=gzip, acks=all, enable.idempotence=true.
The topic is created first (AdminClient, P partitions, default 1, replication factor 1) unless
the broker already lists it. Values are JSON-like text of exactly BYTES bytes (a sequence number,
a few fields drawn from small vocabularies, padding words), so they compress about as well as log
lines do; a pool of up to 8192 distinct values is built before timing starts and reused in turn.
--keys K gives the records K distinct keys ("key-0" .. "key-(K-1)", in turn); without it (or with
0) keys are null and librdkafka spreads records over partitions.

Output: one JSON line

    {"records", "bytes", "seconds", "records_per_s", "mb_per_s", "cpu_seconds", "errors"}

bytes = records * BYTES (value bytes only); mb_per_s uses 10^6 bytes; seconds is wall time from
the first produce() to the end of flush(); cpu_seconds is this process's user+sys time over the
same interval from getrusage(RUSAGE_SELF), which includes librdkafka's threads (they run in
process). errors counts failed deliveries; any failure makes the exit status 1.
"""

import argparse
import json
import logging
import random
import resource
import sys
import time

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

WORDS = ("ingest", "edge", "sensor", "gateway", "batch", "flush", "segment", "replica", "offset",
         "timeout", "retry", "connected", "temperature", "pressure", "ok", "degraded", "queue")
LEVELS = ("debug", "info", "info", "info", "warn", "error")
HOSTS = tuple("edge-%02d" % i for i in range(16))
POOL_LIMIT = 8192


class PidWatch(logging.Handler):
    """Notes librdkafka's "Acquired PID" debug line; drops every log record."""

    def __init__(self):
        super().__init__()
        self.seen = False

    def emit(self, record):
        if not self.seen and "Acquired PID" in record.getMessage():
            self.seen = True


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--size", type=int, required=True, help="value size in bytes")
    parser.add_argument("--keys", type=int, default=0, help="distinct keys (0 = null keys)")
    parser.add_argument("--partitions", type=int, default=1, help="partitions if the topic is created")
    parser.add_argument("--timeout", type=float, default=300.0, help="flush timeout in seconds")
    args = parser.parse_args(argv)
    if args.records <= 0 or args.size <= 0 or args.keys < 0 or args.partitions <= 0:
        parser.error("--records, --size and --partitions must be positive, --keys >= 0")
    return args


def make_value(seq, size, rng):
    text = '{"seq":%d,"ts":%d,"host":"%s","level":"%s","msg":"' % (
        seq, 1700000000000 + seq, rng.choice(HOSTS), rng.choice(LEVELS))
    words = []
    length = len(text) + 2
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    data = (text + " ".join(words)).encode("ascii")
    tail = b'"}'
    if size <= len(tail):
        return data[:size]
    return (data[: size - len(tail)] + tail).ljust(size, b" ")


def ensure_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # list every topic: asking for one by name may auto-create it on brokers that allow that.
    if topic in admin.list_topics(timeout=10).topics:
        return
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                 operation_timeout=10)[topic]
    try:
        future.result(timeout=15)
    except KafkaException as error:
        if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def main(argv):
    args = parse_args(argv)
    ensure_topic(args.bootstrap, args.topic, args.partitions)

    rng = random.Random(20240611)
    pool = [make_value(i, args.size, rng) for i in range(min(args.records, POOL_LIMIT))]
    keys = [("key-%d" % i).encode("ascii") for i in range(args.keys)] or [None]

    pid_acquired = PidWatch()
    logger = logging.getLogger("kafka_produce_bench.librdkafka")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(pid_acquired)
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "linger.ms": 5,
        "compression.type": "gzip",
        "acks": "all",
        "enable.idempotence": True,
        # Only to see "Acquired PID" (a few lines per run); everything else the handler drops.
        "debug": "eos",
        "logger": logger,
    })
    # Connect and get the producer id before timing starts: librdkafka retries InitProducerId on
    # a 500 ms timer when no broker is up yet, which would otherwise land in short runs' timings.
    producer.list_topics(args.topic, timeout=10)
    warmup_deadline = time.monotonic() + 10
    while not pid_acquired.seen and time.monotonic() < warmup_deadline:
        producer.poll(0.02)

    state = {"delivered": 0, "errors": 0, "first_error": None}

    def on_delivery(error, _message):
        if error is None:
            state["delivered"] += 1
        else:
            state["errors"] += 1
            if state["first_error"] is None:
                state["first_error"] = str(error)

    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for i in range(args.records):
        value = pool[i % len(pool)]
        key = keys[i % len(keys)]
        while True:
            try:
                producer.produce(args.topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)  # local queue full: serve delivery reports and retry
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(args.timeout)
    seconds = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)

    cpu = ((usage_after.ru_utime - usage_before.ru_utime)
           + (usage_after.ru_stime - usage_before.ru_stime))
    errors = state["errors"] + remaining
    total_bytes = args.records * args.size
    print(json.dumps({
        "records": args.records,
        "bytes": total_bytes,
        "seconds": round(seconds, 6),
        "records_per_s": round(args.records / seconds, 1),
        "mb_per_s": round(total_bytes / 1e6 / seconds, 3),
        "cpu_seconds": round(cpu, 6),
        "errors": errors,
    }), flush=True)
    if errors:
        sys.stderr.write("kafka_produce_bench: %d of %d records not delivered (%d still queued); first error: %s\n"
                         % (errors, args.records, remaining, state["first_error"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
