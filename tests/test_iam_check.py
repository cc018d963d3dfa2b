"""Least privilege proven by running the code (``tools/local/iam_check.py``): the local run's every AWS call is
checked against the synthesized role of the function that made it, and the check fails when a grant is
removed, a call is new to the mapping, a grant goes unused without a reason, or a condition does not hold.
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdas.common.aws import Clients
from lambdas.folder import handler as folder_handler
from lambdas.processor import handler as processor_handler
from tests.aws_fixtures import Faults, kinesis_event, moto_env, reading
from tests.conftest import AD_HOC_SUFFIX, ROOT, Synth
from tools.local import iam_check, simulate

NOW = "2026-06-01T12:00:00Z"
SENSORS, MINUTES = 20, 15
ACCOUNT = simulate.ACCOUNT_ID
AGGREGATES = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tap-segment-aggregates-dev"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:tap-alerts-dev"
QUARANTINE = f"arn:aws:s3:::tap-quarantine-dev-{ACCOUNT}"
FLEET = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/tap-fleet-dev"

# What the handlers' own calls must use of each role: every data-plane grant.
CALLED = {
    "processor": {
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "kinesis:PutRecords",
        "s3:PutObject",
        "kms:GenerateDataKey",
    },
    "folder": {
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "cloudwatch:PutMetricData",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    },
    "silence": {
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "cloudwatch:PutMetricData",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    },
}
# What only Lambda uses on the function's behalf, or a path a serial run does not reach.
ON_BEHALF = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "sqs:SendMessage",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
UNUSED = {
    "processor": ON_BEHALF
    | {
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "kms:Decrypt",
    },
    "folder": ON_BEHALF
    | {
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
        "dynamodb:GetItem",
    },
    "silence": ON_BEHALF,
}


@dataclass
class LocalRun:
    clients: Clients
    targets: simulate.Targets
    check: iam_check.Check
    stack: dict[str, Any]
    summary: dict[str, Any]

    def evaluate(self, stack: dict[str, Any]) -> iam_check.Report:
        """The run's recorded calls against the roles of ``stack`` (a changed copy of the synthesized one)."""
        return self.check.evaluate(self.clients, self.targets, iam_check.SynthesizedRoles(stack))


@pytest.fixture(scope="module")
def local_run(synth: Synth) -> Iterator[LocalRun]:
    """The local run of the dev environment (rejects, congestion, alerts) with the IAM check on."""
    config = simulate.PROFILES["dev"]
    now = simulate.parse_instant(NOW)
    # two sensors stop, one of them resumes: the silence check's outage and recovery paths run too
    messages = simulate.generate(
        SENSORS, MINUTES, start_ns=simulate.first_minute(now, MINUTES), now_ns=now, stop=2, resume=1
    )
    stack = synth.env("dev").doc
    check = iam_check.Check(iam_check.SynthesizedRoles(stack))
    options = simulate.RunOptions(messages, now, config.batch_size, config, iam=check, check_every_seconds=60)
    try:
        with simulate.in_moto("dev", config) as (clients, targets), simulate.atomic_requests():
            summary = simulate.run(clients, targets, options, out=io.StringIO())
            yield LocalRun(clients, targets, check, stack, summary)
    finally:
        processor_handler.install(None)
        folder_handler.install(None)


def permissions(stack: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """The statements of ``function``'s role policy document in a synthesized stack (to change a copy)."""
    documents = stack["data"]["aws_iam_policy_document"]
    prefixes = (f"processing_{function}_role_permissions_", f"{function}_function_role_permissions_")
    (found,) = [d for name, d in documents.items() if name.startswith(prefixes)]
    statements: list[dict[str, Any]] = found["statement"]
    return statements


def without(stack: dict[str, Any], function: str, action: str) -> dict[str, Any]:
    changed = copy.deepcopy(stack)
    for statement in permissions(changed, function):
        statement["actions"] = [a for a in statement["actions"] if a != action]
    return changed


def test_the_local_run_passes_and_reaches_every_call_path(local_run: LocalRun) -> None:
    summary = local_run.summary
    assert sum(summary["quarantined"].values()) > 0 and summary["alerts"], "rejects and alerts: every path runs"
    iam = summary["iam"]
    assert iam["passed"], iam["problems"]
    assert iam["denied"] == [] and iam["unmapped"] == []
    assert iam["calls"]["processor"] > 0 and iam["calls"]["folder"] > 0
    for function, actions in CALLED.items():
        assert set(iam["used"][function]) == actions, function
        unused = {u["action"] for u in iam["unused"] if u["function"] == function}
        assert unused == UNUSED[function], function
    assert all(u["reason"] for u in iam["unused"])


def test_the_policies_are_the_synthesized_ones_with_the_local_resources(local_run: LocalRun) -> None:
    resolved = local_run.check.source.resolve(local_run.clients, local_run.targets)
    (policy,) = resolved.roles["folder"]
    assert policy.name == "tap-folder-fn-dev-permissions"
    text = json.dumps(policy.document)
    assert "${" not in text
    assert AGGREGATES in text and f"{AGGREGATES}/index/pending-alerts" in text and TOPIC in text
    partials = f"arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/tap-partials-dev"
    assert partials in text, "the partials stream's ARN is the emulated stream's own"


@pytest.mark.parametrize(
    ("function", "action", "resource"),
    [
        ("folder", "dynamodb:UpdateItem", AGGREGATES),
        ("folder", "sns:Publish", TOPIC),
        ("folder", "dynamodb:Query", f"{AGGREGATES}/index/pending-alerts"),
        ("processor", "s3:PutObject", f"{QUARANTINE}/rejected/"),
        ("processor", "kms:GenerateDataKey", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/"),
        ("processor", "dynamodb:UpdateItem", FLEET),  # the shard's watermark
        ("silence", "dynamodb:Query", "arn:aws:dynamodb:us-east-1"),  # the registry, the windows, open outages
        ("silence", "dynamodb:BatchGetItem", "arn:aws:dynamodb:us-east-1"),  # the window heads
    ],
)
def test_removing_a_grant_fails_naming_the_action_and_resource(
    local_run: LocalRun, function: str, action: str, resource: str
) -> None:
    report = local_run.evaluate(without(local_run.stack, function, action))
    assert not report.passed
    denied = [d for d in report.denied if (d.function, d.action) == (function, action)]
    assert denied and all(d.resource.startswith(resource) for d in denied), report.denied
    assert {(d.function, d.action) for d in report.denied} == {(function, action)}, "nothing else is denied"
    assert any(action in line and denied[0].resource in line for line in report.problems())


def test_the_namespace_condition_is_evaluated(local_run: LocalRun) -> None:
    """moto ignores conditions it cannot evaluate; this one it can, and a wrong namespace denies."""
    changed = copy.deepcopy(local_run.stack)
    (metrics,) = [s for s in permissions(changed, "folder") if s["sid"] == "PublishOwnMetrics"]
    metrics["condition"][0]["values"] = ["Someone/Else"]
    report = local_run.evaluate(changed)
    assert [(d.action, d.resource) for d in report.denied] == [("cloudwatch:PutMetricData", "*")]
    assert "cloudwatch:namespace=TAP/Traffic/dev" in report.problems()[0]
    metrics["condition"][0]["test"] = "StringLike"
    with pytest.raises(iam_check.Unsupported, match="StringLike"):
        local_run.evaluate(changed)


def test_an_unused_grant_without_a_reason_fails(local_run: LocalRun) -> None:
    changed = copy.deepcopy(local_run.stack)
    (aggregates,) = [s for s in permissions(changed, "folder") if s["sid"] == "ReadAndWriteAggregates"]
    aggregates["actions"].append("dynamodb:DeleteItem")
    report = local_run.evaluate(changed)
    assert not report.passed and not report.denied
    (excess,) = [u for u in report.unused if u.reason is None]
    assert (excess.function, excess.action, excess.resources) == ("folder", "dynamodb:DeleteItem", (AGGREGATES,))
    assert any("dynamodb:DeleteItem" in line and "no reason" in line for line in report.problems())


class NewCalls:
    """A handler changed to make calls its role was not updated for (as a later change might)."""

    def __init__(self, clients: Clients, bucket: str, table: str) -> None:
        self.clients, self.bucket, self.table = clients, bucket, table

    def handle(self, event: Any) -> dict[str, Any]:
        self.clients["s3"].put_object(Bucket=self.bucket, Key="elsewhere/x.ndjson", Body=b"{}")
        self.clients["dynamodb"].delete_item(TableName=self.table, Key=event["key"])
        return {}


def test_a_new_call_fails_unmapped_or_denied(local_run: LocalRun) -> None:
    targets = local_run.targets
    check = iam_check.Check(iam_check.SynthesizedRoles(local_run.stack))
    handler = NewCalls(local_run.clients, targets.quarantine_bucket, targets.sensor_windows_table)
    check.watch("processor", handler)
    handler.handle({"key": {"sensor_id": {"S": "s1"}, "window_part": {"S": "x"}}})
    report = check.evaluate(local_run.clients, targets)
    assert report.calls["processor"] == 2
    assert report.unmapped == ["processor: dynamodb.DeleteItem is not in tools/local/iam_check.py OPERATIONS"]
    assert [(d.action, d.resource) for d in report.denied] == [("s3:PutObject", f"{QUARANTINE}/elsewhere/x.ndjson")]
    assert not report.passed


def test_the_harness_calls_are_not_the_functions(local_run: LocalRun) -> None:
    """Only calls made while a watched function handles an event count, on the very clients it shares."""
    calls = local_run.check.recorder.calls
    before = len(calls)
    try:
        local_run.clients["dynamodb"].describe_table(TableName=local_run.targets.sensor_windows_table)
        with iam_check.acting_as("folder"):
            local_run.clients["dynamodb"].describe_table(TableName=local_run.targets.sensor_windows_table)
        (made,) = calls[before:]
        assert (made.function, made.service, made.operation) == ("folder", "dynamodb", "DescribeTable")
    finally:
        del calls[before:]  # the run's record stays as the run left it


def conflict(count: int, _: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The first conditional write loses to another writer."""
    if count > 1:
        return None
    error = {"Code": "ConditionalCheckFailedException", "Message": "injected"}
    return 400, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}


def test_the_conflict_path_re_reads_with_a_granted_get_item(synth: Synth) -> None:
    """GetItem's reason in UNUSED_REASONS is a code path; here it runs, and the role allows it. (Another
    environment than the module's run, whose emulated resources stay up meanwhile.)"""
    with moto_env(AD_HOC_SUFFIX) as env:
        env.processor().handle(kinesis_event([reading("s1", "seg-1", "2026-06-01T11:50:00Z", speed=5, occupancy=90)]))
        check = iam_check.Check(iam_check.SynthesizedRoles(synth.env(AD_HOC_SUFFIX).doc))
        folder = env.folder()
        check.watch("folder", folder)
        faults = Faults(env.clients["dynamodb"], {"PutItem": conflict})
        (event,) = simulate.partials_events(env.clients, env.targets)
        assert folder.handle(event) == {"batchItemFailures": []}
        faults.remove()
        report = check.evaluate(env.clients, env.targets)
    assert faults.calls["PutItem"] == 2 and faults.calls["GetItem"] == 1
    assert "dynamodb:GetItem" in report.used["folder"]
    assert not report.denied and not report.unmapped
    assert "dynamodb:GetItem" not in {u.action for u in report.unused if u.function == "folder"}


def test_mapping_of_an_encrypted_queue_and_an_index() -> None:
    key = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/k"
    queue = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:q"
    scope = iam_check.Scope(ACCOUNT, iam_check.KeysByArn({queue: iam_check.KeyUse(key)}))
    send = iam_check.Call("f", "sqs", "SendMessage", "eu-west-1", {"QueueUrl": f"https://127.0.0.1:4566/{ACCOUNT}/q"})
    accesses = iam_check.accesses_of(send, scope)
    assert [(a.action, a.resource) for a in accesses] == [
        ("sqs:SendMessage", queue),
        ("kms:GenerateDataKey", key),
        ("kms:Decrypt", key),
    ]
    assert dict(accesses[1].context)["kms:ViaService"] == "sqs.eu-west-1.amazonaws.com"
    assert dict(accesses[1].context)["kms:EncryptionContext:aws:sqs:arn"] == queue
    query = iam_check.Call("f", "dynamodb", "Query", "eu-west-1", {"TableName": "t", "IndexName": "i"})
    assert [a.resource for a in iam_check.accesses_of(query, scope)] == [
        f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/t/index/i"
    ]


def test_the_command_line_fails_when_a_grant_is_missing(synth: Synth, tmp_path: Path) -> None:
    """``python -m tools.local.simulate --check-iam`` (its own process: its own emulator) exits 1 naming the call."""
    stack = tmp_path / "cdk.tf.json"
    stack.write_text(json.dumps(without(synth.env(AD_HOC_SUFFIX).doc, "folder", "sns:Publish")))
    summary = tmp_path / "summary.json"
    args = ["--env", AD_HOC_SUFFIX, "--sensors", str(SENSORS), "--minutes", str(MINUTES), "--now", NOW]
    args += ["--summary", str(summary), "--check-iam", "--stack-json", str(stack)]
    result = subprocess.run(
        [sys.executable, "-m", "tools.local.simulate", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    topic = TOPIC.replace("-dev", f"-{AD_HOC_SUFFIX}")
    assert f"folder: sns:Publish on {topic} (sns.Publish) is not allowed by its role" in result.stderr
    iam = json.loads(summary.read_text())["iam"]
    assert not iam["passed"]
    assert {(d["function"], d["action"], d["resource"]) for d in iam["denied"]} == {("folder", "sns:Publish", topic)}


def test_terraform_strings_are_rendered_with_escaped_policy_variables_left_literal() -> None:
    """``$${aws:username}`` reaches AWS as the policy variable ``${aws:username}``; it is no reference."""
    evaluated: list[str] = []

    def evaluate(expression: str) -> str:
        evaluated.append(expression)
        return "arn:aws:sns:us-east-1:123456789012:tap-alerts-dev"

    text = "${aws_sns_topic.alerts.arn}/$${aws:username}/${aws_sns_topic.alerts.arn}"
    assert iam_check.interpolate(text, evaluate) == (
        "arn:aws:sns:us-east-1:123456789012:tap-alerts-dev/${aws:username}/arn:aws:sns:us-east-1:123456789012:tap-alerts-dev"
    )
    assert evaluated == ["aws_sns_topic.alerts.arn", "aws_sns_topic.alerts.arn"]
