#!/usr/bin/env python3
"""Create the tables and queues of infra/resources.json on the local AWS-API server (moto).

Idempotent: existing tables and queues are left as they are (TTL and point-in-time recovery
are still switched on when missing). With --reset, all server state is wiped first
(POST /moto-api/reset), so the resources come back empty.

Endpoint: $AWS_ENDPOINT_URL, else http://127.0.0.1:${RAS_LOCAL_PORT:-4566}.
Credentials are the static test/test pair, region us-east-1.

Writes .local/env: `export NAME=value` lines for the test environment (endpoint, credentials,
region, and the `env_var` of every table and queue: table names and queue URLs as the server
reports them). infra/local/env.sh reads it.

Run with the project venv: .venv/bin/python infra/local/create_resources.py [--reset]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RESOURCES = ROOT / "infra" / "resources.json"
DEFAULT_ENV_FILE = ROOT / ".local" / "env"

REGION = "us-east-1"
ACCESS_KEY = "test"
SECRET_KEY = "test"

KEY_TYPES = {"S", "N", "B"}
PROJECTIONS = {"ALL", "KEYS_ONLY"}
STREAM_VIEW_TYPES = {"NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"}


def log(msg: str) -> None:
    print(f"create_resources: {msg}", flush=True)


def endpoint_url() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return url.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('RAS_LOCAL_PORT', '4566')}"


# --------------------------------------------------------------------------- validation


class SpecError(ValueError):
    pass


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise SpecError(msg)


def load_spec(path: Path) -> dict:
    """Load resources.json and check the parts this script relies on."""
    spec = json.loads(path.read_text(encoding="utf-8"))
    _require(set(spec) <= {"tables", "queues"}, f"unknown top-level keys in {path}")
    names: set[str] = set()
    for t in spec.get("tables", []):
        name = t.get("name")
        _require(isinstance(name, str) and name, f"table without name: {t}")
        attrs = t.get("attribute_definitions") or {}
        _require(all(v in KEY_TYPES for v in attrs.values()), f"{name}: bad attribute type")
        ks = t.get("key_schema") or {}
        _require(ks.get("partition_key") in attrs, f"{name}: partition key not defined")
        _require(ks.get("sort_key") is None or ks["sort_key"] in attrs, f"{name}: sort key not defined")
        for g in t.get("global_secondary_indexes") or []:
            _require(g.get("partition_key") in attrs, f"{name}.{g.get('name')}: key not defined")
            _require(g.get("sort_key") is None or g["sort_key"] in attrs,
                     f"{name}.{g.get('name')}: sort key not defined")
            _require(g.get("projection", "ALL") in PROJECTIONS, f"{name}.{g.get('name')}: bad projection")
        svt = t.get("stream_view_type")
        _require(svt is None or svt in STREAM_VIEW_TYPES, f"{name}: bad stream_view_type")
        _require(t.get("billing_mode", "PAY_PER_REQUEST") == "PAY_PER_REQUEST",
                 f"{name}: only PAY_PER_REQUEST is supported")
        _require(name not in names, f"duplicate name {name}")
        names.add(name)
    queue_names = {q.get("name") for q in spec.get("queues", [])}
    for q in spec.get("queues", []):
        name = q.get("name")
        _require(isinstance(name, str) and name, f"queue without name: {q}")
        fifo = bool(q.get("fifo"))
        _require(name.endswith(".fifo") == fifo, f"{name}: FIFO queue names end with .fifo (and only they)")
        dlq = q.get("dead_letter_queue")
        if dlq is not None:
            _require(dlq in queue_names, f"{name}: dead_letter_queue {dlq} is not defined")
            _require(isinstance(q.get("max_receive_count"), int), f"{name}: max_receive_count required")
        _require(name not in names, f"duplicate name {name}")
        names.add(name)
    return spec


# --------------------------------------------------------------------------- server


def reset_server(endpoint: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
    log(f"reset all state on {endpoint}")


def clients(endpoint: str):
    kwargs = dict(
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}),
    )
    return boto3.client("dynamodb", **kwargs), boto3.client("sqs", **kwargs)


# --------------------------------------------------------------------------- tables


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict]:
    ks = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        ks.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return ks


def create_table(ddb, t: dict) -> None:
    name = t["name"]
    try:
        ddb.describe_table(TableName=name)
        log(f"table {name}: exists")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        params: dict = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": ty} for a, ty in t["attribute_definitions"].items()
            ],
            "KeySchema": _key_schema(t["key_schema"]["partition_key"], t["key_schema"].get("sort_key")),
        }
        gsis = t.get("global_secondary_indexes") or []
        if gsis:
            params["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": g["name"],
                    "KeySchema": _key_schema(g["partition_key"], g.get("sort_key")),
                    "Projection": {"ProjectionType": g.get("projection", "ALL")},
                }
                for g in gsis
            ]
        if t.get("stream_view_type"):
            params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": t["stream_view_type"]}
        ddb.create_table(**params)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        log(f"table {name}: created ({len(gsis)} GSIs, stream {t.get('stream_view_type') or 'off'})")

    ttl = t.get("ttl_attribute")
    if ttl:
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or current.get("AttributeName") != ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
            log(f"table {name}: TTL on {ttl}")

    if t.get("point_in_time_recovery"):
        desc = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        pitr = desc.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        if pitr != "ENABLED":
            ddb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )
            log(f"table {name}: point-in-time recovery on")


# --------------------------------------------------------------------------- queues


def queue_url(sqs, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as e:
        if e.response["Error"]["Code"] in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            return None
        raise


def create_queue(sqs, q: dict, urls: dict[str, str]) -> str:
    name = q["name"]
    url = queue_url(sqs, name)
    if url:
        log(f"queue {name}: exists")
        return url
    attrs: dict[str, str] = {}
    if q.get("fifo"):
        attrs["FifoQueue"] = "true"
        attrs["ContentBasedDeduplication"] = "true" if q.get("content_based_deduplication") else "false"
    if q.get("message_retention_seconds") is not None:
        attrs["MessageRetentionPeriod"] = str(q["message_retention_seconds"])
    if q.get("visibility_timeout_seconds") is not None:
        attrs["VisibilityTimeout"] = str(q["visibility_timeout_seconds"])
    if q.get("maximum_message_size") is not None:
        attrs["MaximumMessageSize"] = str(q["maximum_message_size"])
    dlq = q.get("dead_letter_queue")
    if dlq:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=urls[dlq], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(q["max_receive_count"])}
        )
    url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
    log(f"queue {name}: created" + (f" (DLQ {dlq}, maxReceiveCount {q['max_receive_count']})" if dlq else ""))
    return url


def create_queues(sqs, queues: list[dict]) -> dict[str, str]:
    """Create queues so that every dead-letter queue exists before the queue that names it."""
    urls: dict[str, str] = {}
    pending = list(queues)
    while pending:
        ready = [q for q in pending if not q.get("dead_letter_queue") or q["dead_letter_queue"] in urls]
        if not ready:
            raise SpecError(f"dead_letter_queue cycle among {[q['name'] for q in pending]}")
        for q in ready:
            urls[q["name"]] = create_queue(sqs, q, urls)
            pending.remove(q)
    return urls


# --------------------------------------------------------------------------- env file


def write_env_file(path: Path, endpoint: str, spec: dict, urls: dict[str, str]) -> None:
    values: dict[str, str] = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for t in spec.get("tables", []):
        if t.get("env_var"):
            values[t["env_var"]] = t["name"]
    for q in spec.get("queues", []):
        if q.get("env_var"):
            values[q["env_var"]] = urls[q["name"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    lines = ["# Written by infra/local/create_resources.py; read by infra/local/env.sh."]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    log(f"wrote {path}")


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reset", action="store_true", help="wipe all server state first (POST /moto-api/reset)")
    ap.add_argument("--resources", type=Path, default=DEFAULT_RESOURCES, help="resource definition (JSON)")
    ap.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE, help="where to write the env file")
    args = ap.parse_args(argv)

    spec = load_spec(args.resources)
    endpoint = endpoint_url()
    if args.reset:
        reset_server(endpoint)
    ddb, sqs = clients(endpoint)
    started = time.monotonic()
    for t in spec.get("tables", []):
        create_table(ddb, t)
    urls = create_queues(sqs, spec.get("queues", []))
    write_env_file(args.env_file, endpoint, spec, urls)
    log(f"done in {time.monotonic() - started:.1f}s against {endpoint}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SpecError as e:
        print(f"create_resources: invalid resource definition: {e}", file=sys.stderr)
        sys.exit(2)
