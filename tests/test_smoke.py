"""``tools.smoke`` against the emulated data path: the real handlers on its test readings, its alarm
forced and restored, everything it wrote deleted; and what it refuses to call a pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends

from stacks.config import DEV
from stacks.naming import Kind, Namer
from tools import smoke
from tools.local import simulate

ON_THE_EMULATOR = {
    "publish": "passed",
    "sensor windows": "passed",
    "segment aggregate": "passed",
    "lake": "skipped",
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
        yield clients, targets


def test_smoke_passes_on_the_emulated_data_path_and_cleans_up(deployed: tuple[Any, simulate.Targets]) -> None:
    clients, targets = deployed
    options = smoke.Options(via="kinesis", process_locally=True, emulator=True, timeout_seconds=0)
    report = smoke.run(clients, targets, DEV, options)
    status = {c.name: c.status for c in report.checks}
    assert report.passed, report.checks
    assert status == ON_THE_EMULATOR
    for table in (targets.sensor_windows_table, targets.segment_aggregates_table):
        assert simulate.scan(clients, table) == [], "every test item is deleted"
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
