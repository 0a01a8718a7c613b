#!/usr/bin/env python3
"""Writes the 100-record events of the peak-RSS benchmark (scripts/bench-startup.sh) into a
directory, with fresh ids on every run so they can be replayed against the shared local server:

  ingest-100.json  an MSK event: one batch of 50 essays — its registration, 50 slot assignments
                   and 49 spellcheck results (100 records) in 3 partitions, built from the HuleEdu
                   fixtures in tests/fixtures/huleedu
  api-status.json  an API Gateway (HTTP API) request for that batch's status, built from
                   events/api/get_batch_status.json
  relay-100.json   a DynamoDB stream event: 100 outbox INSERT records (results-ready envelope and
                   teacher notification of 50 batches, ~2 KB bodies), built from
                   events/relay/outbox-inserts.json

usage: scripts/bench-events.py OUT_DIR
"""

import base64
import copy
import json
import pathlib
import sys
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "huleedu"
BASE_MS = 1_764_237_600_000  # 2025-11-27T10:00:00Z
ARN = (
    "arn:aws:kafka:eu-north-1:123456789012:cluster/huleedu-local/"
    "6b0c7b1e-3f5a-4d8e-9a1c-2b3d4e5f6a7b-1"
)
ESSAYS = 50


def fixture(topic):
    return json.loads((FIXTURES / f"{topic}.json").read_text())


def kafka_record(topic, partition, offset, envelope, key):
    value = json.dumps(envelope).encode()
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": BASE_MS + offset,
        "timestampType": "CREATE_TIME",
        "key": base64.b64encode(key.encode()).decode(),
        "value": base64.b64encode(value).decode(),
        "headers": [],
    }


def ingest_event():
    batch = str(uuid.uuid4())
    essays = [str(uuid.uuid4()) for _ in range(ESSAYS)]
    registered = "huleedu.batch.essays.registered.v1"
    slot = "huleedu.els.essay.slot.assigned.v1"
    spellcheck = "huleedu.essay.spellcheck.results.v1"

    reg = fixture(registered)
    reg["event_id"] = str(uuid.uuid4())
    reg["data"]["entity_id"] = batch
    reg["data"]["metadata"]["entity_id"] = batch
    reg["data"]["expected_essay_count"] = ESSAYS
    reg["data"]["essay_ids"] = essays
    records = {f"{registered}-0": [kafka_record(registered, 0, 0, reg, batch)]}

    slots, checks = [], []
    for i, essay in enumerate(essays):
        s = fixture(slot)
        s["event_id"] = str(uuid.uuid4())
        s["data"]["batch_id"] = batch
        s["data"]["essay_id"] = essay
        s["data"]["text_storage_id"] = f"text-storage-{i:03}"
        slots.append(kafka_record(slot, 0, i, s, essay))
        if i == ESSAYS - 1:
            break
        c = fixture(spellcheck)
        c["event_id"] = str(uuid.uuid4())
        c["data"]["entity_id"] = essay
        c["data"]["parent_id"] = batch
        c["data"]["batch_id"] = batch
        c["data"]["system_metadata"]["entity_id"] = essay
        c["data"]["system_metadata"]["parent_id"] = batch
        c["data"]["original_text_storage_id"] = f"text-storage-{i:03}"
        c["data"]["corrected_text_storage_id"] = f"corr-{i:03}"
        c["metadata"]["partition_key"] = essay
        checks.append(kafka_record(spellcheck, 0, i, c, essay))
    records[f"{slot}-0"] = slots
    records[f"{spellcheck}-0"] = checks
    count = sum(len(r) for r in records.values())
    assert count == 100, count
    return batch, {
        "eventSource": "aws:kafka",
        "eventSourceArn": ARN,
        "bootstrapServers": "b-1.huleedu-local.abc123.c2.kafka.eu-north-1.amazonaws.com:9098",
        "records": records,
    }


def relay_event():
    sample = json.loads((ROOT / "events" / "relay" / "outbox-inserts.json").read_text())
    templates = {}
    for record in sample["Records"]:
        destination = record["dynamodb"]["NewImage"]["destination"]["S"]
        templates.setdefault(destination, record)
    out = []
    sequence = 44215845_00000000000000000000
    for b in range(ESSAYS):
        batch = f"bench-batch-{uuid.uuid4().hex[:12]}"
        teacher = f"bench-teacher-{uuid.uuid4().hex[:8]}"
        for destination in ("events", "notifications"):
            record = copy.deepcopy(templates[destination])
            image = record["dynamodb"]["NewImage"]
            old_batch = image["batch_id"]["S"]
            old_key = image["ordering_key"]["S"]
            new_key = batch if destination == "events" else teacher
            old_id = image["event_id"]["S"]
            new_id = str(uuid.uuid4())
            text = json.dumps(record)
            text = text.replace(old_id, new_id).replace(old_batch, batch)
            text = text.replace(old_key, new_key)
            record = json.loads(text)
            sequence += 1
            record["eventID"] = f"{sequence:032x}"[-32:]
            record["dynamodb"]["SequenceNumber"] = str(sequence)
            out.append(record)
    assert len(out) == 100, len(out)
    return {"Records": out}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    batch, ingest = ingest_event()
    (out / "ingest-100.json").write_text(json.dumps(ingest))
    request = (ROOT / "events" / "api" / "get_batch_status.json").read_text()
    (out / "api-status.json").write_text(request.replace("api-events-batch-0001", batch))
    (out / "relay-100.json").write_text(json.dumps(relay_event()))


if __name__ == "__main__":
    main()
