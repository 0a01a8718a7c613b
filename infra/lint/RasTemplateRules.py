"""The project's own cfn-lint rules for template.yaml (E9001-E9007).

scripts/lint-template.sh runs them: `cfn-lint --append-rules infra/lint -- template.yaml`.
cfn-lint hands rules the SAM template itself (Globals merged into each function), with every
intrinsic in its long form ({"Ref": X}, {"Fn::GetAtt": [X, Attr]}, {"Fn::Sub": ...}).

What needs the Rust code or the docs (the consumed topics, the relay's message size, the API
routes, the workspace's binaries, the runbook) is checked by tests/tests/template_matches_code.rs.
"""

from __future__ import annotations

import json

from cfnlint.rules import CloudFormationLintRule, RuleMatch

TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
FUNCTION = "AWS::Serverless::Function"
ROLE = "AWS::IAM::Role"
ALARM = "AWS::CloudWatch::Alarm"
STACK_PREFIX = "${AWS::StackName}-"


# --------------------------------------------------------------------------- helpers


def resources(cfn, kind: str) -> dict:
    return {rid: r for rid, r in (cfn.template.get("Resources") or {}).items() if r.get("Type") == kind}


def props(resource) -> dict:
    return resource.get("Properties") or {}


def intrinsic(value):
    """(function, argument) of an intrinsic call ("Ref", "Fn::GetAtt", ...), else (None, None)."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref" or key.startswith("Fn::") or key == "Condition":
            return key, arg
    return None, None


def ref(value):
    fn, arg = intrinsic(value)
    return arg if fn == "Ref" and isinstance(arg, str) else None


def get_att(value):
    """(logical id, attribute) of !GetAtt X.Attr, else None."""
    fn, arg = intrinsic(value)
    if fn != "Fn::GetAtt":
        return None
    if isinstance(arg, str) and "." in arg:
        return tuple(arg.split(".", 1))
    if isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg):
        return arg[0], arg[1]
    return None


def referenced_ids(value, out: set) -> set:
    """Logical ids (and parameters) `value` refers to anywhere: Ref, GetAtt and the ${X} /
    ${X.Attr} variables of Sub (minus those its own variable map defines)."""
    fn, arg = intrinsic(value)
    if fn == "Ref" and isinstance(arg, str):
        out.add(arg)
    elif fn == "Fn::GetAtt" and get_att(value):
        out.add(get_att(value)[0])
    elif fn == "Fn::Sub":
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1] if len(arg) > 1 else {})
        rest = text if isinstance(text, str) else ""
        while "${" in rest:
            var, _, rest = rest.split("${", 1)[1].partition("}")
            if not var.startswith("!") and var.split(".")[0] not in local:
                out.add(var.split(".")[0])
        referenced_ids(local, out)
    elif isinstance(value, dict):
        for v in value.values():
            referenced_ids(v, out)
    elif isinstance(value, list):
        for v in value:
            referenced_ids(v, out)
    return out


def statements(value, out: list) -> list:
    """Every IAM policy statement (a mapping with Effect) under `value`, both branches of !If."""
    if isinstance(value, dict) and "Effect" in value:
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            statements(v, out)
    elif isinstance(value, list):
        for v in value:
            statements(v, out)
    return out


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def literal_int(value):
    """An integer literal (also quoted), else None (an intrinsic, a float, text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def batch_size_ok(event) -> bool:
    """BatchSize stated, 1..10000 (cfn-lint does not check the SAM events' values).

    Range: EventSourceMappingConfiguration, BatchSize "Valid Range: Minimum value of 1.
    Maximum value of 10000."
    https://docs.aws.amazon.com/lambda/latest/dg/API_EventSourceMappingConfiguration.html
    """
    size = literal_int(event.get("BatchSize"))
    return size is not None and 1 <= size <= 10000


def truthy(value) -> bool:
    return value is True or value == "true"


def events(function, kinds: tuple) -> list:
    """(name, Properties) of the function's events of the given types."""
    return [
        (name, e.get("Properties") or {})
        for name, e in (props(function).get("Events") or {}).items()
        if e.get("Type") in kinds
    ]


def environment_resource_ids(cfn, function) -> set:
    """Tables and queues whose `!Ref` (name / URL) the function gets as a variable."""
    known = set(resources(cfn, TABLE)) | set(resources(cfn, QUEUE))
    variables = (props(function).get("Environment") or {}).get("Variables") or {}
    return {ref(v) for v in variables.values()} & known


# --------------------------------------------------------------------------- rules


class FunctionRoleScope(CloudFormationLintRule):
    """Least privilege, one role per function."""

    id = "E9001"
    shortdesc = "Each function's role reaches exactly the tables and queues it uses"
    description = (
        "Every function has an AWS::IAM::Role of its own (no SAM Policies: SAM's generated role gets the "
        "event sources' managed policies on '*'; no ManagedPolicyArns), whose policies reference exactly "
        "the tables and queues the function gets as variables (!Ref) plus those its event sources name; "
        "a variable naming a table or queue is a plain !Ref of it; no NotAction/NotResource, no "
        "wildcard actions, and '*' only for the EC2 Describe calls that support no resource scoping."
    )
    tags = ["ras", "iam"]

    UNSCOPED_ACTIONS = {
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    }

    def match(self, cfn):
        matches = []
        known = set(resources(cfn, TABLE)) | set(resources(cfn, QUEUE))
        roles = resources(cfn, ROLE)
        role_of: dict[str, str] = {}
        for fid, function in resources(cfn, FUNCTION).items():
            path = ["Resources", fid, "Properties"]
            p = props(function)
            if "Policies" in p:
                matches.append(RuleMatch(path + ["Policies"], f"{fid}: SAM Policies make SAM generate the role, with the event sources' managed policies (Resource '*'): use an AWS::IAM::Role of its own"))
            for var, value in ((p.get("Environment") or {}).get("Variables") or {}).items():
                named = referenced_ids(value, set()) & known
                if named and ref(value) not in known:
                    matches.append(RuleMatch(path + ["Environment", "Variables", var], f"{fid}: {var} names {sorted(named)}: give the table name / queue URL as a plain !Ref"))
            target = get_att(p.get("Role"))
            if not target or target[1] != "Arn" or target[0] not in roles:
                matches.append(RuleMatch(path + ["Role"], f"{fid}: Role must be !GetAtt <an AWS::IAM::Role of the template>.Arn"))
                continue
            role_id = target[0]
            if role_id in role_of:
                matches.append(RuleMatch(path + ["Role"], f"{fid} shares the role {role_id} with {role_of[role_id]}"))
            role_of[role_id] = fid
            role_props = props(roles[role_id])
            role_path = ["Resources", role_id, "Properties"]
            if "ManagedPolicyArns" in role_props:
                matches.append(RuleMatch(role_path + ["ManagedPolicyArns"], f"{role_id}: managed policies are not scoped to this stack's resources"))
            policies = role_props.get("Policies") or []
            reached = referenced_ids(policies, set()) & known
            needed = environment_resource_ids(cfn, function) | (referenced_ids(p.get("Events") or {}, set()) & known)
            for extra in sorted(reached - needed):
                matches.append(RuleMatch(role_path + ["Policies"], f"{role_id} ({fid}) reaches {extra}, which {fid} gets no variable for and its event sources do not name"))
            for missing in sorted(needed - reached):
                matches.append(RuleMatch(role_path + ["Policies"], f"{role_id} ({fid}) grants nothing on {missing}, which {fid} uses or its event sources name"))
            found = statements(policies, [])
            if not found:
                matches.append(RuleMatch(role_path, f"{role_id}: no policy statements"))
            for st in found:
                if "NotAction" in st or "NotResource" in st:
                    matches.append(RuleMatch(role_path + ["Policies"], f"{role_id}: NotAction / NotResource grant more than they name"))
                actions = [a for a in as_list(st.get("Action")) if isinstance(a, str)]
                for a in actions:
                    if "*" in a:
                        matches.append(RuleMatch(role_path + ["Policies"], f"{role_id}: wildcard action {a}"))
                if "*" in as_list(st.get("Resource")):
                    scopable = sorted(set(actions) - self.UNSCOPED_ACTIONS)
                    if scopable:
                        matches.append(RuleMatch(role_path + ["Policies"], f"{role_id}: {scopable} granted on '*'"))
        return matches


class KafkaRecordsNeverSkipped(CloudFormationLintRule):
    """docs/operations.md, "Kafka records are never skipped"."""

    id = "E9002"
    shortdesc = "Kafka event sources retry a record until it succeeds"
    description = (
        "A function's MSK event source: one per function, MaximumRetryAttempts the literal -1 (no parameter "
        "can cap the retries), no DestinationConfig (with one Lambda caps infinite retries at 10 and skips "
        "the records), no MaximumRecordAgeInSeconds (it would skip old records, also the history "
        "TRIM_HORIZON reads), StartingPosition TRIM_HORIZON, a Stream and ConsumerGroupId, BatchSize 1..10000, "
        "ReportBatchItemFailures, and ProvisionedPollerConfig with MinimumPollers >= 1 (partial batch "
        "responses on Kafka need provisioned pollers)."
    )
    tags = ["ras", "lambda", "kafka"]

    def match(self, cfn):
        matches = []
        for fid, function in resources(cfn, FUNCTION).items():
            found = events(function, ("MSK", "SelfManagedKafka"))
            if len(found) > 1:
                matches.append(RuleMatch(["Resources", fid, "Properties", "Events"], f"{fid}: one Kafka event source"))
            for name, e in found:
                path = ["Resources", fid, "Properties", "Events", name, "Properties"]
                what = f"{fid}.{name}"
                retries = e.get("MaximumRetryAttempts")
                if literal_int(retries) != -1:
                    matches.append(RuleMatch(path, f"{what}: MaximumRetryAttempts must be the literal -1 (a parameter or a count lets records be skipped), got {retries!r}"))
                if "DestinationConfig" in e:
                    matches.append(RuleMatch(path + ["DestinationConfig"], f"{what}: an on-failure destination caps infinite retries at 10 and skips the records"))
                if "MaximumRecordAgeInSeconds" in e:
                    matches.append(RuleMatch(path + ["MaximumRecordAgeInSeconds"], f"{what}: a maximum record age skips records (also the retained history TRIM_HORIZON reads)"))
                if e.get("StartingPosition") != "TRIM_HORIZON":
                    matches.append(RuleMatch(path, f"{what}: StartingPosition must be TRIM_HORIZON"))
                if not batch_size_ok(e):
                    matches.append(RuleMatch(path, f"{what}: BatchSize must be 1..10000"))
                for key in ("Stream", "ConsumerGroupId"):
                    if key not in e:
                        matches.append(RuleMatch(path, f"{what}: no {key}"))
                if "ReportBatchItemFailures" not in as_list(e.get("FunctionResponseTypes")):
                    matches.append(RuleMatch(path, f"{what}: the handler answers with batchItemFailures: FunctionResponseTypes [ReportBatchItemFailures]"))
                pollers = e.get("ProvisionedPollerConfig") or {}
                minimum = literal_int(pollers.get("MinimumPollers"))
                if minimum is None or minimum < 1:
                    matches.append(RuleMatch(path, f"{what}: partial batch responses on Kafka need ProvisionedPollerConfig with MinimumPollers >= 1"))
        return matches


class StreamEventSources(CloudFormationLintRule):
    """The relay's outbox stream event source (docs/relay.md)."""

    id = "E9003"
    shortdesc = "DynamoDB stream event sources read INSERTs and hand give-ups to a failure queue"
    description = (
        "A function's DynamoDB event source: one per function, Stream !GetAtt <table with a "
        "StreamSpecification>.StreamArn, StartingPosition TRIM_HORIZON, BatchSize 1..10000, exactly the filter "
        '{"eventName": ["INSERT"]}, ReportBatchItemFailures, BisectBatchOnFunctionError true, '
        "MaximumRetryAttempts in -1..10000 (for !Ref <parameter>: its Default, MinValue and MaxValue), "
        "MaximumRecordAgeInSeconds 60..86399 (below the stream's 24 h, so a failing range reaches the "
        "destination before it expires), and an on-failure destination: a standard queue of the template "
        "that no function gets as a variable (Lambda's failure records have a format of their own)."
    )
    tags = ["ras", "lambda", "dynamodb"]

    def match(self, cfn):
        matches = []
        tables = resources(cfn, TABLE)
        queues = resources(cfn, QUEUE)
        parameters = cfn.template.get("Parameters") or {}
        written = set()
        for function in resources(cfn, FUNCTION).values():
            written |= environment_resource_ids(cfn, function)
        for fid, function in resources(cfn, FUNCTION).items():
            found = events(function, ("DynamoDB",))
            if len(found) > 1:
                matches.append(RuleMatch(["Resources", fid, "Properties", "Events"], f"{fid}: one DynamoDB stream event source"))
            for name, e in found:
                path = ["Resources", fid, "Properties", "Events", name, "Properties"]
                what = f"{fid}.{name}"
                stream = get_att(e.get("Stream"))
                if not stream or stream[1] != "StreamArn" or stream[0] not in tables or "StreamSpecification" not in props(tables[stream[0]]):
                    matches.append(RuleMatch(path, f"{what}: Stream must be !GetAtt <table with a stream>.StreamArn"))
                if e.get("StartingPosition") != "TRIM_HORIZON":
                    matches.append(RuleMatch(path, f"{what}: StartingPosition must be TRIM_HORIZON"))
                filters = (e.get("FilterCriteria") or {}).get("Filters") or []
                try:
                    patterns = [json.loads(f.get("Pattern")) for f in filters]
                except (TypeError, ValueError):
                    patterns = None
                if patterns != [{"eventName": ["INSERT"]}]:
                    matches.append(RuleMatch(path, f'{what}: FilterCriteria must be the one pattern {{"eventName": ["INSERT"]}}'))
                if "ReportBatchItemFailures" not in as_list(e.get("FunctionResponseTypes")):
                    matches.append(RuleMatch(path, f"{what}: FunctionResponseTypes must include ReportBatchItemFailures"))
                if not batch_size_ok(e):
                    matches.append(RuleMatch(path, f"{what}: BatchSize must be 1..10000"))
                if not truthy(e.get("BisectBatchOnFunctionError")):
                    matches.append(RuleMatch(path, f"{what}: BisectBatchOnFunctionError must be true"))
                retries = e.get("MaximumRetryAttempts")
                param = parameters.get(ref(retries)) if ref(retries) else None
                values = [literal_int(param.get(k)) for k in ("Default", "MinValue", "MaxValue")] if param else [literal_int(retries)]
                if any(v is None or not -1 <= v <= 10000 for v in values):
                    matches.append(RuleMatch(path, f"{what}: MaximumRetryAttempts must be in -1..10000 (a parameter: Default, MinValue and MaxValue), got {retries!r}"))
                age = literal_int(e.get("MaximumRecordAgeInSeconds"))
                if age is None or not 60 <= age < 86400:
                    matches.append(RuleMatch(path, f"{what}: MaximumRecordAgeInSeconds must be 60..86399, below the stream's retention"))
                dest = get_att(((e.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination"))
                if not dest or dest[1] != "Arn" or dest[0] not in queues:
                    matches.append(RuleMatch(path, f"{what}: DestinationConfig.OnFailure.Destination must be !GetAtt <queue>.Arn"))
                    continue
                if truthy(props(queues[dest[0]]).get("FifoQueue")):
                    matches.append(RuleMatch(path, f"{what}: on-failure destination {dest[0]} is a FIFO queue"))
                if dest[0] in written:
                    matches.append(RuleMatch(path, f"{what}: on-failure destination {dest[0]} is also written by a function: give Lambda's failure records a queue of their own"))
        return matches


class TablesAndQueues(CloudFormationLintRule):
    """What infra/local/create_resources.py and the private copies of tools/ras-local rely on."""

    id = "E9004"
    shortdesc = "Tables and queues are named per stack and consistent"
    description = (
        'TableName / QueueName is !Sub "${AWS::StackName}-<name>" (or a plain string), unique; tables are '
        "PAY_PER_REQUEST without local secondary indexes and without a Condition; a queue is FIFO exactly "
        "when its name ends with .fifo, ContentBasedDeduplication only on FIFO queues, and its "
        "RedrivePolicy names (!GetAtt <queue>.Arn) a queue of the same kind."
    )
    tags = ["ras", "dynamodb", "sqs"]

    @staticmethod
    def local_name(value):
        if isinstance(value, str):
            return value
        fn, arg = intrinsic(value)
        if fn == "Fn::Sub" and isinstance(arg, str) and arg.startswith(STACK_PREFIX) and "${" not in arg[len(STACK_PREFIX):]:
            return arg[len(STACK_PREFIX):]
        return None

    def match(self, cfn):
        matches = []
        queues = resources(cfn, QUEUE)
        seen: dict[str, str] = {}
        for kind, key in ((TABLE, "TableName"), (QUEUE, "QueueName")):
            for rid, r in resources(cfn, kind).items():
                path = ["Resources", rid, "Properties"]
                name = self.local_name(props(r).get(key))
                if name is None:
                    matches.append(RuleMatch(path + [key], f'{rid}: {key} must be !Sub "{STACK_PREFIX}<name>" (the local setup creates <name>)'))
                elif name in seen:
                    matches.append(RuleMatch(path + [key], f"{rid}: {name} is also the name of {seen[name]}"))
                else:
                    seen[name] = rid
                if "Condition" in r:
                    matches.append(RuleMatch(["Resources", rid, "Condition"], f"{rid}: the local setup creates every table and queue: no Condition"))
                if kind == TABLE:
                    if props(r).get("BillingMode") != "PAY_PER_REQUEST":
                        matches.append(RuleMatch(path, f"{rid}: BillingMode must be PAY_PER_REQUEST"))
                    if "LocalSecondaryIndexes" in props(r):
                        matches.append(RuleMatch(path + ["LocalSecondaryIndexes"], f"{rid}: local secondary indexes are not created locally"))
                    continue
                fifo = truthy(props(r).get("FifoQueue"))
                if name is not None and name.endswith(".fifo") != fifo:
                    matches.append(RuleMatch(path, f"{rid}: FIFO queues, and only they, have names ending with .fifo"))
                if not fifo and "ContentBasedDeduplication" in props(r):
                    matches.append(RuleMatch(path, f"{rid}: ContentBasedDeduplication on a standard queue"))
                redrive = props(r).get("RedrivePolicy")
                if redrive is not None:
                    dlq = get_att((redrive or {}).get("deadLetterTargetArn"))
                    if not dlq or dlq[1] != "Arn" or dlq[0] not in queues:
                        matches.append(RuleMatch(path + ["RedrivePolicy"], f"{rid}: deadLetterTargetArn must be !GetAtt <queue>.Arn"))
                    elif truthy(props(queues[dlq[0]]).get("FifoQueue")) != fifo:
                        matches.append(RuleMatch(path + ["RedrivePolicy"], f"{rid}: dead-letter queue {dlq[0]} must be of the same kind (FIFO or standard)"))
                    if literal_int((redrive or {}).get("maxReceiveCount")) is None:
                        matches.append(RuleMatch(path + ["RedrivePolicy"], f"{rid}: maxReceiveCount must be an integer"))
        return matches


class FailuresAreAlarmed(CloudFormationLintRule):
    """docs/operations.md, "Alarms"."""

    id = "E9005"
    shortdesc = "Failure queues and functions have alarms on the first message / error"
    description = (
        "Every queue without a dead-letter queue of its own (the DLQs, the ingest dead letters, the "
        "on-failure destinations, the parking queue) has an AWS/SQS ApproximateNumberOfMessagesVisible "
        "alarm with QueueName !GetAtt <queue>.QueueName, and every function an AWS/Lambda Errors alarm with "
        "FunctionName !Ref <function>, each firing on the first message / error (> 0 or >= 1)."
    )
    tags = ["ras", "cloudwatch"]

    def match(self, cfn):
        depth, errors = set(), set()
        for alarm in resources(cfn, ALARM).values():
            p = props(alarm)
            threshold = literal_int(p.get("Threshold"))
            first = (p.get("ComparisonOperator"), threshold) in (("GreaterThanThreshold", 0), ("GreaterThanOrEqualToThreshold", 1))
            dims = {d.get("Name"): d.get("Value") for d in p.get("Dimensions") or [] if isinstance(d, dict)}
            metric = (p.get("Namespace"), p.get("MetricName"))
            if first and metric == ("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
                queue = get_att(dims.get("QueueName"))
                if queue and queue[1] == "QueueName":
                    depth.add(queue[0])
            if first and metric == ("AWS/Lambda", "Errors") and ref(dims.get("FunctionName")):
                errors.add(ref(dims.get("FunctionName")))
        matches = []
        for qid, q in resources(cfn, QUEUE).items():
            if "RedrivePolicy" not in props(q) and qid not in depth:
                matches.append(RuleMatch(["Resources", qid], f"{qid} collects failures but has no ApproximateNumberOfMessagesVisible > 0 alarm"))
        for fid in resources(cfn, FUNCTION):
            if fid not in errors:
                matches.append(RuleMatch(["Resources", fid], f"{fid}: no AWS/Lambda Errors > 0 alarm"))
        return matches


class AlarmsNotifyTheTopic(CloudFormationLintRule):
    """docs/operations.md, "Alarms": every alarm notifies someone."""

    id = "E9006"
    shortdesc = "Every alarm notifies AlarmTopicArn or the stack's own topic"
    description = (
        "AlarmTopicArn defaults to empty; the one AWS::SNS::Topic has a Condition equal to "
        '!Equals [!Ref AlarmTopicArn, ""]; every alarm\'s AlarmActions and OKActions, and the '
        "AlarmTopicArn output, are [!If [<AlarmTopicArn given>, !Ref AlarmTopicArn, !Ref <the topic>]]."
    )
    tags = ["ras", "cloudwatch", "sns"]

    @staticmethod
    def arn_empty(condition) -> bool:
        """!Equals [!Ref AlarmTopicArn, ""], in either order (cfn-lint may reorder them)."""
        fn, arg = intrinsic(condition)
        return fn == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2 and (
            (ref(arg[0]) == "AlarmTopicArn" and arg[1] == "") or (arg[0] == "" and ref(arg[1]) == "AlarmTopicArn")
        )

    def arn_given(self, condition) -> bool:
        fn, arg = intrinsic(condition)
        return fn == "Fn::Not" and isinstance(arg, list) and len(arg) == 1 and self.arn_empty(arg[0])

    def match(self, cfn):
        matches = []
        conditions = cfn.template.get("Conditions") or {}
        parameter = (cfn.template.get("Parameters") or {}).get("AlarmTopicArn")
        if not parameter or parameter.get("Default") != "":
            matches.append(RuleMatch(["Parameters"], "AlarmTopicArn must be a parameter with Default \"\""))
        topics = resources(cfn, "AWS::SNS::Topic")
        if len(topics) != 1:
            return matches + [RuleMatch(["Resources"], f"one AWS::SNS::Topic for the alarms, got {sorted(topics)}")]
        (topic_id, topic), = topics.items()
        if not self.arn_empty(conditions.get(topic.get("Condition"))):
            matches.append(RuleMatch(["Resources", topic_id], f'{topic_id} must be created exactly when AlarmTopicArn is empty (Condition: !Equals [!Ref AlarmTopicArn, ""])'))

        def notifies(value) -> bool:
            if not isinstance(value, list) or len(value) != 1:
                return False
            fn, arg = intrinsic(value[0])
            return (
                fn == "Fn::If" and isinstance(arg, list) and len(arg) == 3
                and self.arn_given(conditions.get(arg[0]))
                and ref(arg[1]) == "AlarmTopicArn" and ref(arg[2]) == topic_id
            )

        for aid, alarm in resources(cfn, ALARM).items():
            for key in ("AlarmActions", "OKActions"):
                if not notifies(props(alarm).get(key)):
                    matches.append(RuleMatch(["Resources", aid, "Properties", key], f"{aid}.{key} must be [!If [<AlarmTopicArn given>, !Ref AlarmTopicArn, !Ref {topic_id}]]"))
        output = ((cfn.template.get("Outputs") or {}).get("AlarmTopicArn") or {}).get("Value")
        if not notifies([output]):
            matches.append(RuleMatch(["Outputs", "AlarmTopicArn"], f"output AlarmTopicArn must be !If [<AlarmTopicArn given>, !Ref AlarmTopicArn, !Ref {topic_id}]"))
        return matches


class KafkaPublishing(CloudFormationLintRule):
    """docs/kafka.md, "Deployment": the relay publishes to MSK with least privilege."""

    id = "E9007"
    shortdesc = "The relay's Kafka publishing is scoped to the three topics and switched by one condition"
    description = (
        "RAS_EVENTS_PUBLISH_TO and RAS_NOTIFICATIONS_PUBLISH_TO of the relay are !Ref of parameters "
        "allowing exactly kafka, sqs, both; the relay role's kafka-cluster grants are Connect on "
        "MskClusterArn and DescribeTopic/WriteData on exactly the three published topics (no other "
        "kafka-cluster action, no other topic); the kafka-cluster policy, the VpcConfig and the "
        "RAS_KAFKA_* variables are all under one condition, the one that is true when either "
        "parameter is not sqs; no other function gets kafka-cluster write actions."
    )
    tags = ["ras", "iam", "kafka"]

    TOPICS = {
        "huleedu.ras.batch.results.ready.v1",
        "huleedu.ras.batch.assessment.completed.v1",
        "huleedu.notification.teacher.requested.v1",
    }
    VARIABLES = ("RAS_EVENTS_PUBLISH_TO", "RAS_NOTIFICATIONS_PUBLISH_TO")

    @staticmethod
    def if_condition(value):
        """The condition name of !If [C, x, !Ref AWS::NoValue], else None."""
        fn, arg = intrinsic(value)
        if fn == "Fn::If" and isinstance(arg, list) and len(arg) == 3 and ref(arg[2]) == "AWS::NoValue":
            return arg[0]
        return None

    @staticmethod
    def topic_of(resource):
        """The topic name a "${Prefix}:topic/${Cluster}/<name>" Sub ends with, else None."""
        fn, arg = intrinsic(resource)
        if fn != "Fn::Sub":
            return None
        text = arg if isinstance(arg, str) else arg[0]
        if not isinstance(text, str) or ":topic/" not in text:
            return None
        return text.rsplit("/", 1)[-1]

    def uses_kafka(self, cfn, condition, parameters) -> bool:
        """Condition is !Or of !Not [!Equals [!Ref P, sqs]] over exactly the two parameters."""
        fn, arg = intrinsic((cfn.template.get("Conditions") or {}).get(condition))
        if fn != "Fn::Or" or not isinstance(arg, list):
            return False
        seen = set()
        for item in arg:
            nfn, narg = intrinsic(item)
            if nfn != "Fn::Not" or not isinstance(narg, list) or len(narg) != 1:
                return False
            efn, earg = intrinsic(narg[0])
            if efn != "Fn::Equals" or not isinstance(earg, list) or len(earg) != 2:
                return False
            names = {ref(x) for x in earg} - {None}
            if "sqs" not in earg or len(names) != 1:
                return False
            seen |= names
        return seen == set(parameters)

    def match(self, cfn):
        matches = []
        functions = resources(cfn, FUNCTION)
        roles = resources(cfn, ROLE)
        parameters = cfn.template.get("Parameters") or {}
        relay_id = next((fid for fid, f in functions.items() if any(v in ((props(f).get("Environment") or {}).get("Variables") or {}) for v in self.VARIABLES)), None)
        if relay_id is None:
            return [RuleMatch(["Resources"], f"no function gets {self.VARIABLES}")]
        relay = props(functions[relay_id])
        path = ["Resources", relay_id, "Properties"]
        variables = (relay.get("Environment") or {}).get("Variables") or {}
        routed_by = []
        for var in self.VARIABLES:
            param = ref(variables.get(var))
            allowed = set((parameters.get(param) or {}).get("AllowedValues") or [])
            if not param or allowed != {"kafka", "sqs", "both"}:
                matches.append(RuleMatch(path + ["Environment", "Variables", var], f"{relay_id}: {var} must be !Ref of a parameter with AllowedValues [kafka, sqs, both]"))
            else:
                routed_by.append(param)
        conditions = set()
        for var in [v for v in variables if v.startswith("RAS_KAFKA_")]:
            fn, arg = intrinsic(variables[var])
            conditions.add(arg[0] if fn == "Fn::If" and isinstance(arg, list) and len(arg) == 3 else None)
        if "RAS_KAFKA_BOOTSTRAP" not in variables:
            matches.append(RuleMatch(path + ["Environment", "Variables"], f"{relay_id}: RAS_KAFKA_BOOTSTRAP is not set"))
        vpc_condition = self.if_condition(relay.get("VpcConfig"))
        conditions.add(vpc_condition)
        target = get_att(relay.get("Role"))
        role_id = target[0] if target else None
        kafka_policies = []
        for i, policy in enumerate(props(roles.get(role_id) or {}).get("Policies") or []):
            if any(str(a).startswith("kafka-cluster:") for st in statements(policy, []) for a in as_list(st.get("Action"))):
                kafka_policies.append((i, policy))
                conditions.add(self.if_condition(policy))
        if len(conditions) != 1 or None in conditions or not self.uses_kafka(cfn, next(iter(conditions)), routed_by):
            matches.append(RuleMatch(path, f"{relay_id}: the kafka-cluster policy, VpcConfig and RAS_KAFKA_* variables must share one !If condition, true exactly when {routed_by} is not sqs; got {sorted(str(c) for c in conditions)}"))
        grants = {}
        for i, policy in kafka_policies:
            for st in statements(policy, []):
                for action in as_list(st.get("Action")):
                    for resource in as_list(st.get("Resource")):
                        grants.setdefault(action, []).append(resource)
        if set(grants) != {"kafka-cluster:Connect", "kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"}:
            matches.append(RuleMatch(["Resources", str(role_id), "Properties", "Policies"], f"{role_id}: kafka-cluster actions must be exactly Connect, DescribeTopic, WriteData; got {sorted(grants)}"))
        if [ref(r) for r in grants.get("kafka-cluster:Connect", [])] != ["MskClusterArn"]:
            matches.append(RuleMatch(["Resources", str(role_id), "Properties", "Policies"], f"{role_id}: kafka-cluster:Connect must be granted on !Ref MskClusterArn only"))
        for action in ("kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"):
            topics = [self.topic_of(r) for r in grants.get(action, [])]
            if None in topics or set(topics) != self.TOPICS or len(topics) != len(self.TOPICS):
                matches.append(RuleMatch(["Resources", str(role_id), "Properties", "Policies"], f"{role_id}: {action} must name exactly the topics {sorted(self.TOPICS)}; got {topics}"))
        for fid, function in functions.items():
            if fid == relay_id:
                continue
            other = get_att(props(function).get("Role"))
            for st in statements(props(roles.get(other[0] if other else None) or {}).get("Policies") or [], []):
                if any(a in ("kafka-cluster:WriteData", "kafka-cluster:WriteDataIdempotently") for a in as_list(st.get("Action"))):
                    matches.append(RuleMatch(["Resources", fid], f"{fid}: only the relay writes to Kafka"))
        return matches
