"""Alarms and the dashboard watch metrics as AWS publishes them: every alarm and dashboard line is a
metric of ``stacks.metric_catalog`` with its exact dimension set and statistic."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from stacks import metric_catalog as mc
from stacks.config import PROFILES
from tests.conftest import AD_HOC_SUFFIX, ENVIRONMENTS, Synth
from tests.tfjson import StackDoc

PROFILE_OF = {"dev": "dev", "staging": "staging", "prod": "prod", AD_HOC_SUFFIX: "dev"}
INSIGHTS = re.compile(
    r'SELECT (?P<fn>[A-Z]+)\("(?P<metric>[^"]+)"\) FROM SCHEMA\("(?P<ns>[^"]+)", (?P<dims>[^)]*)\)'
    r"(?: WHERE (?P<where>.*))?"
)
STATISTIC_OF = {"SUM": "Sum", "MAX": "Maximum", "MIN": "Minimum", "AVG": "Average", "COUNT": "SampleCount"}

# concern -> (catalog metric, the dimension values with {s} for the suffix and {u} for it with underscores)
EXPECTED_ALARMS: dict[str, tuple[mc.Metric, dict[str, str | None]]] = {
    "processor-errors": (mc.LAMBDA_ERRORS, {"FunctionName": "tap-processor-{s}"}),
    "processor-throttles": (mc.LAMBDA_THROTTLES, {"FunctionName": "tap-processor-{s}"}),
    "processor-iterator-age": (mc.LAMBDA_ITERATOR_AGE, {"FunctionName": "tap-processor-{s}"}),
    "folder-errors": (mc.LAMBDA_ERRORS, {"FunctionName": "tap-folder-{s}"}),
    "folder-throttles": (mc.LAMBDA_THROTTLES, {"FunctionName": "tap-folder-{s}"}),
    "folder-iterator-age": (mc.LAMBDA_ITERATOR_AGE, {"FunctionName": "tap-folder-{s}"}),
    "processor-dlq-depth": (mc.SQS_VISIBLE, {"QueueName": "tap-processor-dlq-{s}"}),
    "folder-dlq-depth": (mc.SQS_VISIBLE, {"QueueName": "tap-folder-dlq-{s}"}),
    "firehose-freshness": (mc.FIREHOSE_FRESHNESS, {"DeliveryStreamName": "tap-lake-{s}"}),
    "firehose-failed-conversion": (mc.FIREHOSE_FAILED_CONVERSION, {"DeliveryStreamName": "tap-lake-{s}"}),
    "iot-rule-failures": (mc.IOT_ACTION_FAILURE, {"RuleName": "tap_ingest_{u}", "ActionType": None}),
    "iot-rule-not-found": (mc.IOT_RULE_NOT_FOUND, {"RuleName": "tap_ingest_{u}"}),
    "congestion": (mc.CONGESTION_ALERTS, {}),
    "silence-errors": (mc.LAMBDA_ERRORS, {"FunctionName": "tap-silence-{s}"}),
    "silence-dlq-depth": (mc.SQS_VISIBLE, {"QueueName": "tap-silence-dlq-{s}"}),
    "silence-not-running": (mc.LAMBDA_INVOCATIONS, {"FunctionName": "tap-silence-{s}"}),
    "silent-sensors": (mc.SILENT_SENSORS, {}),
    "provisioning-refused": (mc.PROVISIONING_REFUSED, {"Reason": None}),
    "provisioning-hook-errors": (mc.LAMBDA_ERRORS, {"FunctionName": "tap-provisioning-{s}"}),
    # issue 20, item 4: every table and index, writes and reads
    **{
        f"{table}-{kind}-throttles": (metric, {"TableName": f"tap-{table}-{{s}}"})
        for table in ("sensor-windows", "segment-aggregates", "sensor-outages", "fleet", "sensor-allow-list")
        for kind, metric in (("write", mc.DYNAMODB_WRITE_THROTTLES), ("read", mc.DYNAMODB_READ_THROTTLES))
    },
    **{
        f"{table}-{index}-{kind}-throttles": (
            metric,
            {"TableName": f"tap-{table}-{{s}}", "GlobalSecondaryIndexName": index},
        )
        for table, index in (
            ("segment-aggregates", "pending-alerts"),
            ("sensor-outages", "open-outages"),
        )
        for kind, metric in (("write", mc.DYNAMODB_INDEX_WRITE_THROTTLES), ("read", mc.DYNAMODB_INDEX_READ_THROTTLES))
    },
}


@pytest.fixture(params=ENVIRONMENTS)
def env(request: pytest.FixtureRequest, synth: Synth) -> tuple[str, StackDoc]:
    return request.param, synth.env(request.param)


def catalog_metric(namespace: str, name: str, suffix: str, dimensions: set[str]) -> mc.Metric:
    custom = f"TAP/Traffic/{suffix}"
    resolved = mc.CUSTOM if namespace == custom else namespace
    found = [m for m in mc.CATALOG if (m.namespace, m.name, set(m.dimensions)) == (resolved, name, dimensions)]
    assert len(found) == 1, f"{namespace} {name} {sorted(dimensions)} is not (once) in stacks/metric_catalog.py"
    return found[0]


def watched(alarm: dict[str, Any], suffix: str) -> tuple[mc.Metric, dict[str, str | None], str]:
    """The catalog metric an alarm watches, its dimension values (``None``: every value) and statistic."""
    if "metric_query" not in alarm:
        dimensions = dict(alarm.get("dimensions") or {})
        metric = catalog_metric(alarm["namespace"], alarm["metric_name"], suffix, set(dimensions))
        return metric, dimensions, alarm["statistic"]
    (query,) = alarm["metric_query"]
    assert query["return_data"] is True and query["period"] == 300
    match = INSIGHTS.fullmatch(query["expression"])
    assert match, query["expression"]
    values: dict[str, str | None] = {d.strip(): None for d in match["dims"].split(",")}
    metric = catalog_metric(match["ns"], match["metric"], suffix, set(values))
    for condition in (match["where"] or "").split(" AND ") if match["where"] else []:
        name, value = (part.strip() for part in condition.split("="))
        assert name in values, f"WHERE {name} is not in the SCHEMA dimensions"
        values[name] = value.strip("'")
    return metric, values, STATISTIC_OF[match["fn"]]


def test_every_alarm_watches_a_catalog_metric_with_its_exact_dimension_set(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    alarms = {a["alarm_name"]: a for a in doc.resources("aws_cloudwatch_metric_alarm").values()}
    assert len(alarms) == len(EXPECTED_ALARMS)
    for concern, (metric, values) in EXPECTED_ALARMS.items():
        alarm = alarms[f"tap-{concern}-{suffix}"]
        found, found_values, statistic = watched(alarm, suffix)
        assert found == metric, concern
        assert set(found_values) == set(metric.dimensions), f"{concern}: CloudWatch matches the exact set"
        assert statistic == metric.statistic, concern
        want = {k: v if v is None else v.format(s=suffix, u=suffix.replace("-", "_")) for k, v in values.items()}
        assert found_values == want, concern


def test_alarm_thresholds_come_from_their_own_config_fields(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    limits = PROFILES[PROFILE_OF[suffix]].alarms
    alarms = {a["alarm_name"]: a for a in doc.resources("aws_cloudwatch_metric_alarm").values()}
    fields = {
        "processor-errors": limits.processor_errors,
        "folder-errors": limits.folder_errors,
        "folder-throttles": limits.folder_throttles,
        "folder-iterator-age": limits.folder_iterator_age_ms,
        "processor-iterator-age": limits.iterator_age_ms,
        "firehose-failed-conversion": limits.firehose_failed_conversions,
        "congestion": limits.congestion_alerts,
        "silence-errors": limits.silence_errors,
        "silent-sensors": limits.silent_sensors,
        "provisioning-refused": limits.provisioning_refused,
    }
    for concern, threshold in fields.items():
        assert alarms[f"tap-{concern}-{suffix}"]["threshold"] == threshold, concern
    topic_name, _ = doc.one("aws_sns_topic")
    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == [f"${{aws_sns_topic.{topic_name}.arn}}"]
        if name == f"tap-silence-not-running-{suffix}":  # no invocation in a period: missing data is the alarm
            assert (alarm["comparison_operator"], alarm["threshold"], alarm["treat_missing_data"]) == (
                "LessThanThreshold",
                1,
                "breaching",
            )
        else:
            assert alarm["treat_missing_data"] == "notBreaching"


def test_every_dashboard_line_is_a_catalog_metric_with_its_exact_dimension_set(env: tuple[str, StackDoc]) -> None:
    suffix, doc = env
    _, dashboard = doc.one("aws_cloudwatch_dashboard")
    body = json.loads(dashboard["dashboard_body"])
    lines = [row for widget in body["widgets"] for row in widget["properties"]["metrics"]]
    seen = set()
    for row in lines:
        if isinstance(row[0], dict):  # an expression row
            expression = row[0]["expression"]
            if expression.startswith("SELECT"):
                metric, values, _ = watched(
                    {"metric_query": [{"expression": expression, "return_data": True, "period": 300}]}, suffix
                )
                assert set(values) == set(metric.dimensions)
                seen.add(metric)
            continue
        names = [x for x in row[2:] if isinstance(x, str)][::2]
        metric = catalog_metric(row[0], row[1], suffix, set(names))
        seen.add(metric)
    assert mc.IOT_ACTION_FAILURE in seen and mc.FIREHOSE_FAILED_CONVERSION in seen


def test_a_metric_is_refused_with_any_other_dimension_set() -> None:
    """The defect the table exists for: ``Failure`` on ``RuleName`` alone matches no data in CloudWatch."""
    with pytest.raises(ValueError, match="ActionType"):
        mc.IOT_ACTION_FAILURE.watch(RuleName="tap_ingest_dev")
    with pytest.raises(ValueError, match="match no data"):
        mc.LAMBDA_ERRORS.watch(FunctionName="f", Resource="f:1")
    query = mc.IOT_ACTION_FAILURE.watch(RuleName="r", ActionType=mc.ANY).insights_query()
    assert query == """SELECT SUM("Failure") FROM SCHEMA("AWS/IoT", ActionType, RuleName) WHERE RuleName = 'r'"""


def test_the_catalog_names_each_metric_once_with_its_source() -> None:
    """Once per dimension set: DynamoDB publishes a table's and an index's throttles under one name."""
    keys = [(m.namespace, m.name, frozenset(m.dimensions)) for m in mc.CATALOG]
    assert len(keys) == len(set(keys))
    for metric in mc.CATALOG:
        assert metric.source.startswith(("https://docs.aws.amazon.com/", "lambdas/")), metric
        assert metric.statistic in STATISTIC_OF.values()
