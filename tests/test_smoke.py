"""``tools.smoke`` against the emulated data path: the real handlers on its test readings, its alarm
forced and restored, everything it wrote deleted; and what it refuses to call a pass."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from lambdas.processor.service import MARK_SENSOR
from stacks.config import DEV
from stacks.layout import SCHEDULE_GROUP, SILENCE_SCHEDULE
from stacks.naming import Kind, Namer
from tools import smoke
from tools.local import simulate

ON_THE_EMULATOR = {
    "publish": "passed",
    "sensor windows": "passed",
    "segment aggregate": "passed",
    "lake": "skipped",
    "silence schedule": "passed",
    "silence check runs": "skipped",
    "alarm": "passed",
    "alarm notification": "skipped",
    "cleanup": "passed",
}
"""What passes on the emulator, and what it cannot run (skipped, never passed)."""


@pytest.fixture
def deployed() -> Iterator[tuple[Any, simulate.Targets]]:
    with simulate.in_moto("dev", DEV) as (clients, targets):
        clients["cloudwatch"].put_metric_alarm(
            AlarmName=Namer("dev").name(Kind.ALARM, smoke.SMOKE_ALARM),
            Namespace=targets.metric_namespace,
            MetricName="CongestionAlerts",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=5,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            AlarmActions=[targets.alert_topic_arn],
        )
        namer = Namer("dev")
        group = namer.name(Kind.SCHEDULE_GROUP, SCHEDULE_GROUP)
        clients["scheduler"].create_schedule_group(Name=group)
        dlq = clients["sqs"].create_queue(QueueName=namer.name(Kind.SQS_QUEUE, "silence-dlq"))["QueueUrl"]
        clients["scheduler"].create_schedule(
            Name=namer.name(Kind.SCHEDULE, SILENCE_SCHEDULE),
            GroupName=group,
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": f"arn:aws:lambda:{targets.region}:{DEFAULT_ACCOUNT_ID}:function:tap-silence-dev",
                "RoleArn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/tap-silence-schedule-dev",
                "Input": "{}",
                "DeadLetterConfig": {"Arn": clients["sqs"].get_queue_attributes(
                    QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]},
            },
        )  # fmt: skip
        yield clients, targets


def test_smoke_passes_on_the_emulated_data_path_and_cleans_up(deployed: tuple[Any, simulate.Targets]) -> None:
    clients, targets = deployed
    options = smoke.Options(via="kinesis", process_locally=True, emulator=True, timeout_seconds=0)
    report = smoke.run(clients, targets, DEV, options)
    status = {c.name: c.status for c in report.checks}
    assert report.passed, report.checks
    assert status == ON_THE_EMULATOR
    for table in (targets.sensor_windows_table, targets.segment_aggregates_table):
        # the readings shard's partials mark stays: it is the shard's state, shared with real traffic
        left = [i for i in simulate.scan(clients, table) if i.get("sensor_id") != MARK_SENSOR]
        assert left == [], "every test item is deleted"
    alarm = Namer("dev").name(Kind.ALARM, smoke.SMOKE_ALARM)
    (described,) = clients["cloudwatch"].describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
    assert described["StateValue"] == "OK", "the forced alarm is set back"


def test_smoke_fails_when_nothing_processes_the_readings(deployed: tuple[Any, simulate.Targets]) -> None:
    """Without the functions (here: no local processing) the readings never reach the tables."""
    clients, targets = deployed
    options = smoke.Options(via="kinesis", process_locally=False, emulator=True, timeout_seconds=0)
    report = smoke.run(clients, targets, DEV, options)
    status = {c.name: c.status for c in report.checks}
    assert not report.passed
    assert status["sensor windows"] == status["segment aggregate"] == "failed"


def test_smoke_fails_when_the_alarm_does_not_notify_the_topic(deployed: tuple[Any, simulate.Targets]) -> None:
    clients, targets = deployed
    alarm = Namer("dev").name(Kind.ALARM, smoke.SMOKE_ALARM)
    clients["cloudwatch"].put_metric_alarm(
        AlarmName=alarm, Namespace=targets.metric_namespace, MetricName="CongestionAlerts", Statistic="Sum",
        Period=300, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    report = smoke.run(clients, targets, DEV, smoke.Options(via="kinesis", process_locally=True, emulator=True))
    assert {c.name: c.status for c in report.checks}["alarm"] == "failed"


def test_smoke_publishes_through_basic_ingest_on_each_things_own_topic(
    deployed: tuple[Any, simulate.Targets], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the sensor policy allows a thing: its own topic behind the ingestion rule's Basic Ingest prefix,
    the topic the stack's ``iot_publish_topic`` output names (``+`` being the thing)."""
    clients, targets = deployed
    real_client = boto3.client

    def client(service: str, **kwargs: Any) -> Any:
        if service == "iot":  # moto serves iot-data only on data-ats.iot.<region>, not on the address it describes
            return SimpleNamespace(
                describe_endpoint=lambda **_: {"endpointAddress": f"data-ats.iot.{targets.region}.amazonaws.com"}
            )
        return real_client(service, **kwargs)

    monkeypatch.setattr(boto3, "client", client)
    plan = smoke.Plan("abc12345", "dev", 0)
    done = smoke.publish(clients, targets, plan, "iot")
    assert done.endswith("published on $aws/rules/tap_ingest_dev/tap/dev/sensors/<thing>/readings")
    published = iotdata_backends[DEFAULT_ACCOUNT_ID][targets.region].published_payloads
    assert [topic for topic, _ in published] == [
        f"$aws/rules/tap_ingest_dev/tap/dev/sensors/{thing}/readings" for thing in plan.things
    ]
    assert [json.loads(payload)["sensor_id"] for _, payload in published] == plan.things


def _deployed_run(clients: Any, targets: simulate.Targets) -> dict[str, smoke.Check]:
    """The schedule check as on a real deployment (not the emulator), with no wait."""
    report = smoke.Report("abc12345", "dev")
    options = smoke.Options(via="kinesis", emulator=False, schedule_wait_seconds=0)
    smoke.check_schedule(clients, targets, report, options, datetime.datetime.now(datetime.UTC))
    return {c.name: c for c in report.checks}


def test_smoke_passes_the_schedule_once_the_silence_check_has_run(deployed: tuple[Any, simulate.Targets]) -> None:
    clients, targets = deployed
    clients["cloudwatch"].put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "Invocations", "Dimensions": [{"Name": "FunctionName", "Value": "tap-silence-dev"}],
                     "Value": 1.0, "Unit": "Count"}],
    )  # fmt: skip
    checks = _deployed_run(clients, targets)
    assert checks["silence schedule"].status == checks["silence check runs"].status == "passed"
    clients["cloudwatch"].put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "Errors", "Dimensions": [{"Name": "FunctionName", "Value": "tap-silence-dev"}],
                     "Value": 1.0, "Unit": "Count"}],
    )  # fmt: skip
    failing = _deployed_run(clients, targets)["silence check runs"]
    assert failing.status == "failed" and "1 failed" in failing.detail, "runs that all fail are no pass"


def test_smoke_fails_with_the_reason_when_the_schedule_never_runs(deployed: tuple[Any, simulate.Targets]) -> None:
    """No invocation (e.g. Scheduler cannot assume the role): a failure naming the dead-letter queue's depth."""
    clients, targets = deployed
    dlq = clients["sqs"].get_queue_url(QueueName="tap-silence-dlq-dev")["QueueUrl"]
    clients["sqs"].send_message(QueueUrl=dlq, MessageBody="{}")
    check = _deployed_run(clients, targets)["silence check runs"]
    assert check.status == "failed"
    assert "tap-silence-dlq-dev holds 1 message(s)" in check.detail and "tap-schedules-dev" in check.detail


def test_smoke_fails_when_the_schedule_is_disabled(deployed: tuple[Any, simulate.Targets]) -> None:
    clients, targets = deployed
    schedule = clients["scheduler"].get_schedule(Name="tap-silence-check-dev", GroupName="tap-schedules-dev")
    clients["scheduler"].update_schedule(
        Name="tap-silence-check-dev", GroupName="tap-schedules-dev", State="DISABLED",
        ScheduleExpression=schedule["ScheduleExpression"], FlexibleTimeWindow={"Mode": "OFF"},
        Target=schedule["Target"],
    )  # fmt: skip
    checks = _deployed_run(clients, targets)
    assert checks["silence schedule"].status == "failed" and "silence check runs" not in checks
