#!/usr/bin/env python3
"""Create the tables and queues of template.yaml on the local AWS-API server (moto).

template.yaml is the one definition: every AWS::DynamoDB::Table and AWS::SQS::Queue of it is
created here with its keys, GSIs (projections), stream, TTL and point-in-time recovery, and its
FIFO attributes, retention, sizes and redrive policy (dead-letter queues first). Names are the
deployed ones without the stack prefix: `!Sub "${AWS::StackName}-ras-state"` -> ras-state. A
property this script does not know, a conditional resource or an intrinsic it cannot resolve is
an error (exit 2), so a template change never silently leaves the local setup behind.

Idempotent: existing tables and queues are left as they are (TTL and point-in-time recovery
are still switched on when missing), except an existing table's GSIs: those the template does
not have (or defines with other keys or projection) are deleted and the template's missing ones
created, one GSI per UpdateTable (new names first), as a deployed stack migrates
(docs/operations.md, "Index migration"). With --reset, all server state is wiped first
(POST /moto-api/reset), so the resources come back empty.

Endpoint: $AWS_ENDPOINT_URL, else http://127.0.0.1:${RAS_LOCAL_PORT:-4566}.
Credentials are the static test/test pair, region us-east-1.

Writes .local/env: `export NAME=value` lines for the test environment (endpoint, credentials,
region, and every function environment variable of template.yaml that is `!Ref` of a table or
queue: the table name / the queue URL as the server reports it). infra/local/env.sh reads it.

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
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_ENV_FILE = ROOT / ".local" / "env"

REGION = "us-east-1"
ACCESS_KEY = "test"
SECRET_KEY = "test"

STACK_PREFIX = "${AWS::StackName}-"
TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
FUNCTIONS = ("AWS::Serverless::Function", "AWS::Lambda::Function")
TABLE_PROPERTIES = {
    "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
    "StreamSpecification", "TimeToLiveSpecification", "PointInTimeRecoverySpecification",
}
# Queue properties that are SQS attributes of the same name (CreateQueue takes them as strings).
QUEUE_ATTRIBUTES = {
    "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
    "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout",
}


def log(msg: str) -> None:
    print(f"create_resources: {msg}", flush=True)


def endpoint_url() -> str:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if url:
        return url.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('RAS_LOCAL_PORT', '4566')}"


# --------------------------------------------------------------------------- template


class TemplateError(ValueError):
    pass


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags, read as their long form (`!Ref X` ->
    {"Ref": "X"}, `!GetAtt X.Arn` -> {"Fn::GetAtt": ["X", "Arn"]}, `!Sub s` -> {"Fn::Sub": s})."""


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def _intrinsic_of(value) -> tuple[str, object] | None:
    """(name, argument) of an intrinsic function call in long form, else None."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref" or key.startswith("Fn::"):
            return key, arg
    return None


def _name(value, where: str) -> str:
    """The local name: a plain string, or the part after the stack prefix of
    `!Sub "${AWS::StackName}-<name>"` (the form the template uses)."""
    if isinstance(value, str):
        return value
    call = _intrinsic_of(value)
    if call and call[0] == "Fn::Sub" and isinstance(call[1], str) and call[1].startswith(STACK_PREFIX):
        name = call[1][len(STACK_PREFIX):]
        if "${" not in name:
            return name
    raise TemplateError(f'{where}: the name must be a string or !Sub "{STACK_PREFIX}<name>", got {value!r}')


def _literal(value, parameters: dict, where: str):
    """A property value with `!Ref <parameter>` replaced by the parameter's Default; any other
    intrinsic is an error."""
    call = _intrinsic_of(value)
    if call:
        fn, arg = call
        if fn == "Ref" and arg in parameters and "Default" in parameters[arg]:
            return parameters[arg]["Default"]
        raise TemplateError(f"{where}: {value!r} cannot be resolved locally")
    if isinstance(value, dict):
        return {k: _literal(v, parameters, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_literal(v, parameters, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _attribute(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def load_template(path: Path) -> dict:
    """The tables, queues and environment variables of the template:
    {"tables": [{"name", "id", "properties"}], "queues": [{"name", "id", "attributes",
    "dead_letter_queue", "max_receive_count"}], "env": {variable: logical id}}."""
    template = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506
    resources = template.get("Resources") or {}
    parameters = template.get("Parameters") or {}
    spec: dict = {"tables": [], "queues": [], "env": {}}
    names: dict[str, str] = {}
    for rid, resource in resources.items():
        kind = resource.get("Type")
        if kind not in (TABLE, QUEUE):
            continue
        if "Condition" in resource:
            raise TemplateError(f"{rid}: conditional {kind} resources are not supported locally")
        props = dict(resource.get("Properties") or {})
        name_key = "TableName" if kind == TABLE else "QueueName"
        name = _name(props.pop(name_key, None), f"{rid}.{name_key}")
        redrive = props.pop("RedrivePolicy", None)
        props = _literal(props, parameters, rid)
        if name in names:
            raise TemplateError(f"{rid}: name {name} is also the name of {names[name]}")
        names[name] = rid
        if kind == TABLE:
            unknown = set(props) - TABLE_PROPERTIES
            if unknown:
                raise TemplateError(f"{rid}: properties {sorted(unknown)} are not created locally")
            if props.get("BillingMode") != "PAY_PER_REQUEST":
                raise TemplateError(f"{rid}: only BillingMode PAY_PER_REQUEST is supported")
            spec["tables"].append({"name": name, "id": rid, "properties": props})
            continue
        unknown = set(props) - QUEUE_ATTRIBUTES
        if unknown:
            raise TemplateError(f"{rid}: properties {sorted(unknown)} are not created locally")
        queue = {
            "name": name,
            "id": rid,
            "attributes": {k: _attribute(v) for k, v in props.items() if k in QUEUE_ATTRIBUTES},
            "dead_letter_queue": None,
            "max_receive_count": None,
        }
        if redrive is not None:
            target = _intrinsic_of(redrive.get("deadLetterTargetArn"))
            if not (target and target[0] == "Fn::GetAtt" and list(target[1])[1:] == ["Arn"]):
                raise TemplateError(f"{rid}: RedrivePolicy.deadLetterTargetArn must be !GetAtt <queue>.Arn")
            queue["dead_letter_queue"] = target[1][0]
            queue["max_receive_count"] = _literal(redrive.get("maxReceiveCount"), parameters, rid)
        spec["queues"].append(queue)
    ids = {r["id"]: r for r in spec["tables"] + spec["queues"]}
    for q in spec["queues"]:
        dlq = q["dead_letter_queue"]
        if dlq is not None:
            if dlq not in ids or dlq in {t["id"] for t in spec["tables"]}:
                raise TemplateError(f"{q['id']}: dead-letter queue {dlq} is not a queue of the template")
            q["dead_letter_queue"] = ids[dlq]["name"]

    environments = [((template.get("Globals") or {}).get("Function") or {}, "Globals.Function")]
    environments += [(r.get("Properties") or {}, rid) for rid, r in resources.items() if r.get("Type") in FUNCTIONS]
    for props, where in environments:
        for var, value in ((props.get("Environment") or {}).get("Variables") or {}).items():
            call = _intrinsic_of(value)
            if not (call and call[0] == "Ref" and call[1] in ids):
                continue
            if spec["env"].setdefault(var, call[1]) != call[1]:
                raise TemplateError(f"{where}: {var} is !Ref {call[1]}, elsewhere !Ref {spec['env'][var]}")
    spec["env"] = {var: ids[rid]["name"] for var, rid in spec["env"].items()}
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


def _index_shape(gsi: dict) -> tuple:
    projection = gsi.get("Projection") or {}
    return (
        tuple((k["AttributeName"], k["KeyType"]) for k in gsi["KeySchema"]),
        projection.get("ProjectionType"),
        tuple(sorted(projection.get("NonKeyAttributes") or [])),
    )


def _wait_for_indexes(ddb, name: str) -> None:
    for _ in range(100):
        table = ddb.describe_table(TableName=name)["Table"]
        busy = [g["IndexName"] for g in table.get("GlobalSecondaryIndexes") or [] if g.get("IndexStatus", "ACTIVE") != "ACTIVE"]
        if table.get("TableStatus", "ACTIVE") == "ACTIVE" and not busy:
            return
        time.sleep(0.2)
    raise RuntimeError(f"table {name}: indexes not ACTIVE")


def sync_indexes(ddb, name: str, props: dict) -> None:
    """An existing table's GSIs made those of the template, one GSI per UpdateTable."""
    current = {g["IndexName"]: _index_shape(g) for g in ddb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes") or []}
    wanted = {g["IndexName"]: g for g in props.get("GlobalSecondaryIndexes") or []}
    changed = [i for i, g in wanted.items() if i in current and current[i] != _index_shape(g)]
    # Indexes of another shape under the same name: delete first (a projection cannot change).
    for index in changed:
        ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": index}}])
        _wait_for_indexes(ddb, name)
        log(f"table {name}: index {index} deleted (other keys or projection)")
        del current[index]
    for index, gsi in wanted.items():
        if index not in current:
            ddb.update_table(
                TableName=name,
                AttributeDefinitions=props["AttributeDefinitions"],
                GlobalSecondaryIndexUpdates=[{"Create": gsi}],
            )
            _wait_for_indexes(ddb, name)
            log(f"table {name}: index {index} created")
    for index in current:
        if index not in wanted:
            ddb.update_table(TableName=name, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": index}}])
            _wait_for_indexes(ddb, name)
            log(f"table {name}: index {index} deleted (not in the template)")


def create_table(ddb, t: dict) -> None:
    name, props = t["name"], t["properties"]
    try:
        ddb.describe_table(TableName=name)
        log(f"table {name}: exists")
        sync_indexes(ddb, name, props)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        # The template's properties are CreateTable's parameters of the same names.
        params: dict = {
            "TableName": name,
            "BillingMode": props["BillingMode"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
        }
        gsis = props.get("GlobalSecondaryIndexes") or []
        if gsis:
            params["GlobalSecondaryIndexes"] = gsis
        stream = props.get("StreamSpecification")
        if stream:
            params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        ddb.create_table(**params)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
        log(f"table {name}: created ({len(gsis)} GSIs, stream {stream['StreamViewType'] if stream else 'off'})")

    ttl = props.get("TimeToLiveSpecification") or {}
    if ttl.get("Enabled"):
        attribute = ttl["AttributeName"]
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or current.get("AttributeName") != attribute:
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute}
            )
            log(f"table {name}: TTL on {attribute}")

    if (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"):
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
    attrs = dict(q["attributes"])
    dlq = q["dead_letter_queue"]
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
        ready = [q for q in pending if not q["dead_letter_queue"] or q["dead_letter_queue"] in urls]
        if not ready:
            raise TemplateError(f"dead-letter queue cycle among {[q['name'] for q in pending]}")
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
    for var, name in sorted(spec["env"].items()):
        values[var] = urls.get(name, name)  # a queue's URL, a table's name
    # The relay's routes (template parameters EventsPublishTo / NotificationsPublishTo): the local
    # server has no Kafka, so everything goes to its queues; infra/local/kafka-start.sh writes
    # .local/kafka.env, which switches both to `both` with the local broker.
    values["RAS_EVENTS_PUBLISH_TO"] = "sqs"
    values["RAS_NOTIFICATIONS_PUBLISH_TO"] = "sqs"
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
    ap.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="the SAM template")
    ap.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE, help="where to write the env file")
    ap.add_argument("--print", action="store_true", help="print what would be created (JSON) and exit")
    args = ap.parse_args(argv)

    spec = load_template(args.template)
    if args.print:
        json.dump(spec, sys.stdout, indent=2)
        print()
        return 0
    endpoint = endpoint_url()
    if args.reset:
        reset_server(endpoint)
    ddb, sqs = clients(endpoint)
    started = time.monotonic()
    for t in spec["tables"]:
        create_table(ddb, t)
    urls = create_queues(sqs, spec["queues"])
    write_env_file(args.env_file, endpoint, spec, urls)
    log(f"done in {time.monotonic() - started:.1f}s against {endpoint}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except TemplateError as e:
        print(f"create_resources: template.yaml: {e}", file=sys.stderr)
        sys.exit(2)
