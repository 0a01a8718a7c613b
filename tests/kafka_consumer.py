#!/usr/bin/env python3
"""Read Kafka topics from the beginning with aiokafka (a client other than the relay's rskafka)
and print one JSON line per record: topic, partition, offset, key and value (base64 of the
exact bytes, and as text when they are UTF-8), the header count, and `aiokafka_partition`:
the partition aiokafka's own default producer partitioner picks for the key (what the
reference service's producer did).

    .tools/kafka-venv/bin/python tests/kafka_consumer.py --bootstrap 127.0.0.1:9092 TOPIC...

No consumer group (partitions assigned directly, nothing committed). Stops once every
partition has been read up to the high watermark of the last fetch (tansu's end_offsets() is
not the log end, docs/kafka.md), or after --timeout seconds (exit status 2).
"""

import argparse
import asyncio
import base64
import json
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner


def text(data):
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def b64(data):
    return None if data is None else base64.b64encode(data).decode("ascii")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=args.bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        partitions = []
        for topic in args.topics:
            ids = consumer.partitions_for_topic(topic)
            if ids is None:
                await consumer._client.force_metadata_update()
                ids = consumer.partitions_for_topic(topic)
            if not ids:
                print(f"kafka_consumer: topic {topic} not found", file=sys.stderr)
                return 1
            partitions.extend(TopicPartition(topic, p) for p in sorted(ids))
        counts = {tp.topic: 0 for tp in partitions}
        for tp in partitions:
            counts[tp.topic] += 1
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)

        done = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + args.timeout
        while len(done) < len(partitions):
            if loop.time() > deadline:
                print(f"kafka_consumer: timed out; done {len(done)}/{len(partitions)} partitions", file=sys.stderr)
                return 2
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for r in records:
                    print(json.dumps({
                        "topic": r.topic,
                        "partition": r.partition,
                        "offset": r.offset,
                        "key": text(r.key),
                        "key_b64": b64(r.key),
                        "value": text(r.value),
                        "value_b64": b64(r.value),
                        "headers": len(r.headers or ()),
                        "aiokafka_partition": None if r.key is None else DefaultPartitioner()(
                            r.key, list(range(counts[r.topic])), list(range(counts[r.topic]))),
                    }, ensure_ascii=False), flush=True)
            for tp in partitions:
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    done.add(tp)
        return 0
    finally:
        await consumer.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
