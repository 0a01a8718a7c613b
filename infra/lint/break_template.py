#!/usr/bin/env python3
"""Show that each rule of infra/lint/RasTemplateRules.py fires on a broken template.

Each case applies one breaking edit to a copy of template.yaml (in a temporary directory; the
template itself is not touched), runs cfn-lint with the project's rules on it, and checks that
the rule named first in the case reports it. Exit status 1 when a rule stays silent, or when
the unbroken template is not clean.

    .venv-sam/bin/python infra/lint/break_template.py     # after scripts/lint-template.sh
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).parent / "cfn-lint"

# (rule and what the edit breaks, text to replace (first occurrence), replacement; None: drop
# the OKActions line of the alarm named by the text).
CASES = [
 ("E9001 extra table on api role", "                Action: [dynamodb:Query, dynamodb:GetItem, dynamodb:DescribeTable]\n                Resource: !GetAtt StateTable.Arn",
  "                Action: [dynamodb:Query, dynamodb:GetItem, dynamodb:DescribeTable]\n                Resource: [!GetAtt StateTable.Arn, !GetAtt OutboxTable.Arn]"),
 ("E9001 missing grant (relay parked)", "                  - !GetAtt RelayParkedQueue.Arn\n", ""),
 ("E9001 wildcard action", "Action: [kafka:DescribeClusterV2, kafka:GetBootstrapBrokers]", "Action: [kafka:*, kafka:GetBootstrapBrokers]"),
 ("E9001 scopable on *", "                  - ec2:DescribeSecurityGroups\n                Resource: \"*\"", "                  - ec2:DescribeSecurityGroups\n                  - sqs:SendMessage\n                Resource: \"*\""),
 ("E9001 SAM Policies", "      Role: !GetAtt ApiRole.Arn\n", "      Role: !GetAtt ApiRole.Arn\n      Policies: [AWSLambdaBasicExecutionRole]\n"),
 ("E9001 shared role", "      Role: !GetAtt TimerRole.Arn", "      Role: !GetAtt IngestRole.Arn"),
 ("E9001 env not a plain Ref", "RAS_INGEST_DLQ_URL: !Ref IngestDlq", "RAS_INGEST_DLQ_URL: !GetAtt IngestDlq.Arn"),
 ("E9001 managed policy", "      Description: RAS query API function (read-only).\n", "      Description: RAS query API function (read-only).\n      ManagedPolicyArns: [arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess]\n"),
 ("E9002 retries from a parameter", "            MaximumRetryAttempts: -1\n", "            MaximumRetryAttempts: !Ref RelayMaximumRetryAttempts\n"),
 ("E9002 retries 10", "            MaximumRetryAttempts: -1\n", "            MaximumRetryAttempts: 10\n"),
 ("E9002 destination", "            MaximumRetryAttempts: -1\n", "            MaximumRetryAttempts: -1\n            DestinationConfig:\n              OnFailure:\n                Destination: !GetAtt RelayFailuresQueue.Arn\n"),
 ("E9002 record age", "            MaximumRetryAttempts: -1\n", "            MaximumRetryAttempts: -1\n            MaximumRecordAgeInSeconds: 3600\n"),
 ("E9002 LATEST", "            StartingPosition: TRIM_HORIZON\n            ConsumerGroupId", "            StartingPosition: LATEST\n            ConsumerGroupId"),
 ("E9002 no pollers", "            ProvisionedPollerConfig:\n              MinimumPollers: 1\n              MaximumPollers: !Ref KafkaMaximumPollers\n", ""),
 ("E9002 batch size", "            BatchSize: 100\n            MaximumBatchingWindowInSeconds: 1\n            # Provisioned", "            BatchSize: 20000\n            MaximumBatchingWindowInSeconds: 1\n            # Provisioned"),
 ("E9003 batch size", "            BatchSize: 100\n            # Fuller", "            BatchSize: 0\n            # Fuller"),
 ("E9003 filter", "'{\"eventName\": [\"INSERT\"]}'", "'{\"eventName\": [\"INSERT\", \"REMOVE\"]}'"),
 ("E9003 no bisect", "            BisectBatchOnFunctionError: true\n", ""),
 ("E9003 record age 24h", "MaximumRecordAgeInSeconds: 82800", "MaximumRecordAgeInSeconds: 86400"),
 ("E9003 param range", "    MinValue: -1\n    MaxValue: 10000\n", "    MinValue: -1\n    MaxValue: 20000\n"),
 ("E9003 destination written by a function", "                Destination: !GetAtt RelayFailuresQueue.Arn", "                Destination: !GetAtt RelayParkedQueue.Arn"),
 ("E9003 FIFO destination", "                Destination: !GetAtt RelayFailuresQueue.Arn", "                Destination: !GetAtt EventsDlq.Arn"),
 ("E9004 name form", 'QueueName: !Sub "${AWS::StackName}-ras-relay-parked"', 'QueueName: !Sub "${EnvironmentName}-ras-relay-parked"'),
 ("E9004 duplicate name", 'QueueName: !Sub "${AWS::StackName}-ras-relay-parked"', 'QueueName: !Sub "${AWS::StackName}-ras-relay-failures"'),
 ("E9004 fifo name", 'QueueName: !Sub "${AWS::StackName}-ras-events.fifo"', 'QueueName: !Sub "${AWS::StackName}-ras-events"'),
 ("E9004 DLQ kind", "deadLetterTargetArn: !GetAtt EventsDlq.Arn", "deadLetterTargetArn: !GetAtt IngestDlq.Arn"),
 ("E9004 billing", "      TableName: !Sub \"${AWS::StackName}-ras-state\"\n      BillingMode: PAY_PER_REQUEST\n", "      TableName: !Sub \"${AWS::StackName}-ras-state\"\n      BillingMode: PROVISIONED\n      ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}\n"),
 ("E9004 conditional queue", "  RelayParkedQueue:\n    Type: AWS::SQS::Queue\n", "  RelayParkedQueue:\n    Type: AWS::SQS::Queue\n    Condition: CreateAlarmTopic\n"),
 ("E9005 no depth alarm", "          Value: !GetAtt RelayParkedQueue.QueueName", "          Value: !GetAtt RelayFailuresQueue.QueueName"),
 ("E9005 no errors alarm", "        - Name: FunctionName\n          Value: !Ref TimerFunction", "        - Name: FunctionName\n          Value: !Ref RelayFunction"),
 ("E9006 alarm without OK action", "  Api5xxAlarm:", None),
 ("E9006 topic condition", "    Condition: CreateAlarmTopic\n    Properties:\n      TopicName", "    Condition: HasAlarmTopic\n    Properties:\n      TopicName"),
("E9007 fourth topic", "                        - \"${Prefix}:topic/${Cluster}/huleedu.notification.teacher.requested.v1\"", "                        - \"${Prefix}:topic/${Cluster}/huleedu.notification.teacher.requested.v1\"\n                        - Prefix: !Select [0, !Split [\":cluster/\", !Ref MskClusterArn]]\n                          Cluster: !Select [1, !Split [\":cluster/\", !Ref MskClusterArn]]\n                      - !Sub\n                        - \"${Prefix}:topic/${Cluster}/*\""),
 ("E9007 extra action", "                  Action: [kafka-cluster:DescribeTopic, kafka-cluster:WriteData]", "                  Action: [kafka-cluster:DescribeTopic, kafka-cluster:WriteData, kafka-cluster:CreateTopic]"),
 ("E9007 VPC always", "      VpcConfig: !If\n        - RelayUsesKafka\n", "      VpcConfig: !If\n        - CreateRelaySqsEndpoint\n"),
 ("E9007 free-text route", "          RAS_EVENTS_PUBLISH_TO: !Ref EventsPublishTo", "          RAS_EVENTS_PUBLISH_TO: kafka"),
 ("E9007 connect anywhere", "                  Action: kafka-cluster:Connect\n                  Resource: !Ref MskClusterArn", "                  Action: kafka-cluster:Connect\n                  Resource: \"*\""),
]


def lint(template: Path) -> str:
    return subprocess.run(
        [str(CFN_LINT), "--regions", "us-east-1", "--append-rules", str(ROOT / "infra" / "lint"), "--", str(template)],
        capture_output=True, text=True, check=False,
    ).stdout


def main() -> int:
    src = (ROOT / "template.yaml").read_text(encoding="utf-8")
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "template.yaml"
        path.write_text(src, encoding="utf-8")
        clean = lint(path)
        if re.search(r"^E9\d{3}", clean, re.M):
            print(f"the unbroken template already fails:\n{clean}")
            return 1
        for name, old, new in CASES:
            if new is None:
                i = src.index(old)
                j = src.index("      OKActions:", i)
                text = src[:j] + src[src.index("\n", j) + 1:]
            elif old not in src:
                print(f"STALE  {name}: the text to replace is no longer in template.yaml")
                ok = False
                continue
            else:
                text = src.replace(old, new, 1)
            path.write_text(text, encoding="utf-8")
            out = lint(path)
            rule = name.split()[0]
            first = next((line for line in out.splitlines() if line.startswith(rule)), "")
            fired = bool(first)
            ok &= fired
            print(f"{'fires ' if fired else 'SILENT'} {name}: {first[len(rule) + 1:][:120]}")
    print("every rule fires" if ok else "some rules stayed silent")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
