"""Alarms on every stage of the path, and one dashboard of the whole path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm, CloudwatchMetricAlarmMetricQuery
from constructs import Construct

from lambdas.common import metrics
from lambdas.common.contract import LEVELS
from stacks import metric_catalog as mc
from stacks.context import StackContext
from stacks.layout import SENSOR_ALLOW_LIST, TABLES
from stacks.metric_catalog import ANY, Watched
from stacks.naming import Kind, Namer

PERIOD_SECONDS = 300
TABLE_THROTTLE_SOURCES: tuple[tuple[str, tuple[str, str | None]], ...] = tuple(
    (f"{spec.concern}-{index}" if index else spec.concern, (spec.concern, index))
    for spec in (*TABLES, SENSOR_ALLOW_LIST)
    for index in (None, *(i.name for i in spec.indexes))
)
"""Every table and global secondary index, as (alarm concern prefix, (table concern, index name or
``None``)): each gets a write and a read throttle alarm (issue 20, item 4)."""
ALARM_CONCERNS = (
    "processor-errors", "processor-throttles", "processor-iterator-age",
    "folder-errors", "folder-throttles", "folder-iterator-age",
    "processor-dlq-depth", "folder-dlq-depth",
    "firehose-freshness", "firehose-failed-conversion",
    "iot-rule-failures", "iot-rule-not-found", "congestion",
    "silence-errors", "silence-dlq-depth", "silence-not-running", "silent-sensors",
    "provisioning-refused", "provisioning-hook-errors",
    *(f"{concern}-{kind}-throttles" for concern, _ in TABLE_THROTTLE_SOURCES for kind in ("write", "read")),
)  # fmt: skip
"""Every alarm of an environment, by concern: known before the alarms exist, so that the key policy can
let exactly these alarms publish to the encrypted alert topic (``alarm_names``)."""


def alarm_names(namer: Namer) -> list[str]:
    return [namer.name(Kind.ALARM, concern) for concern in ALARM_CONCERNS]


@dataclass(frozen=True)
class MonitoringProps:
    """Names of what is watched (plain strings from the naming helper) and the topic alarms notify."""

    alert_topic_arn: str
    iot_rule_name: str
    stream_name: str
    processor_function_name: str
    folder_function_name: str
    partials_stream_name: str
    processor_dlq_name: str
    folder_dlq_name: str
    firehose_name: str
    table_names: tuple[str, ...]
    silence_function_name: str
    silence_dlq_name: str
    fleet_readings_per_second: float
    """The declared fleet's readings per second (``sensors / reading_interval_seconds``): what the
    dashboard's completeness line divides by."""
    provisioning_function_name: str
    """The pre-provisioning hook (``stacks.provisioning``)."""


@dataclass(frozen=True)
class AlarmSpec:
    concern: str
    description: str
    metric: Watched
    """A metric of :mod:`stacks.metric_catalog` with its dimension values (so the set is AWS's)."""
    threshold: int
    below: bool = False
    """Alarm when the metric falls below the threshold, and when it is missing (nothing ran)."""


class Monitoring(Construct):
    """CloudWatch alarms (notifying the alert topic) and the platform dashboard."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: MonitoringProps) -> None:
        super().__init__(scope, id_)
        limits = ctx.config.alarms
        namespace = ctx.namer.metric_namespace()
        proc, folder = props.processor_function_name, props.folder_function_name
        self.specs = [
            AlarmSpec("processor-errors", "Processor invocations failed",
                      mc.LAMBDA_ERRORS.watch(FunctionName=proc), limits.processor_errors),
            AlarmSpec("processor-throttles", "Processor invocations throttled",
                      mc.LAMBDA_THROTTLES.watch(FunctionName=proc), limits.processor_throttles),
            AlarmSpec("processor-iterator-age", "Processor falls behind the stream (ms)",
                      mc.LAMBDA_ITERATOR_AGE.watch(FunctionName=proc), limits.iterator_age_ms),
            AlarmSpec("folder-errors", "Folder invocations failed",
                      mc.LAMBDA_ERRORS.watch(FunctionName=folder), limits.folder_errors),
            AlarmSpec("folder-throttles", "Folder invocations throttled",
                      mc.LAMBDA_THROTTLES.watch(FunctionName=folder), limits.folder_throttles),
            AlarmSpec("folder-iterator-age", "Folder falls behind the partials stream (ms)",
                      mc.LAMBDA_ITERATOR_AGE.watch(FunctionName=folder), limits.folder_iterator_age_ms),
            AlarmSpec("processor-dlq-depth", "Readings the processor gave up on",
                      mc.SQS_VISIBLE.watch(QueueName=props.processor_dlq_name), limits.dlq_messages),
            AlarmSpec("folder-dlq-depth", "Partials the folder gave up on (redrive: tools.redrive --function folder)",
                      mc.SQS_VISIBLE.watch(QueueName=props.folder_dlq_name), limits.dlq_messages),
            AlarmSpec("firehose-freshness", "Oldest record not yet in the lake (s)",
                      mc.FIREHOSE_FRESHNESS.watch(DeliveryStreamName=props.firehose_name),
                      limits.firehose_freshness_seconds),
            AlarmSpec("firehose-failed-conversion", "Records Firehose could not convert to Parquet (error prefix)",
                      mc.FIREHOSE_FAILED_CONVERSION.watch(DeliveryStreamName=props.firehose_name),
                      limits.firehose_failed_conversions),
            AlarmSpec("iot-rule-failures", "Ingestion topic rule failed to put readings (any action type)",
                      mc.IOT_ACTION_FAILURE.watch(RuleName=props.iot_rule_name, ActionType=ANY),
                      limits.iot_rule_failures),
            AlarmSpec("iot-rule-not-found", "Basic Ingest readings dropped: the ingestion rule is missing or disabled",
                      mc.IOT_RULE_NOT_FOUND.watch(RuleName=props.iot_rule_name), limits.iot_rule_failures),
            AlarmSpec("congestion", "Segment windows entering heavy or severe congestion",
                      mc.CONGESTION_ALERTS.watch(namespace), limits.congestion_alerts),
            AlarmSpec("silence-errors", "Silence check runs failed",
                      mc.LAMBDA_ERRORS.watch(FunctionName=props.silence_function_name), limits.silence_errors),
            AlarmSpec("silence-dlq-depth", "Silence check runs given up on (invocation or delivery)",
                      mc.SQS_VISIBLE.watch(QueueName=props.silence_dlq_name), limits.dlq_messages),
            AlarmSpec("silence-not-running", "The silence check did not run (schedule disabled or failing)",
                      mc.LAMBDA_INVOCATIONS.watch(FunctionName=props.silence_function_name), 1, below=True),
            AlarmSpec("silent-sensors", "Sensors silent (no accepted reading for silence_factor x their interval)",
                      mc.SILENT_SENSORS.watch(namespace), limits.silent_sensors),
            *onboarding_alarms(namespace, props, limits.provisioning_refused),
            *throttle_alarms(ctx.namer, limits.dynamodb_throttle_events),
        ]  # fmt: skip
        if tuple(spec.concern for spec in self.specs) != ALARM_CONCERNS:
            raise ValueError("ALARM_CONCERNS must list every alarm, in order (the key policy names them)")
        self.alarms = {spec.concern: self._alarm(ctx, spec, props.alert_topic_arn) for spec in self.specs}
        self.dashboard_name = ctx.namer.name(Kind.DASHBOARD, "traffic")
        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=self.dashboard_name,
            dashboard_body=json.dumps(dashboard_body(ctx.region, namespace, props), sort_keys=True),
        )

    def _alarm(self, ctx: StackContext, spec: AlarmSpec, topic_arn: str) -> CloudwatchMetricAlarm:
        """An alarm on the metric's exact dimensions, or on a Metrics Insights query over every value of
        a wildcard dimension (CloudWatch alarms accept such a query as their one metric query)."""
        watched = spec.metric
        common: dict[str, Any] = {
            "alarm_name": ctx.namer.name(Kind.ALARM, spec.concern),
            "alarm_description": spec.description,
            "evaluation_periods": 1,
            "threshold": spec.threshold,
            "comparison_operator": "LessThanThreshold" if spec.below else "GreaterThanOrEqualToThreshold",
            "treat_missing_data": "breaching" if spec.below else "notBreaching",
            "alarm_actions": [topic_arn],
            "ok_actions": [topic_arn],
        }
        if watched.exact:
            return CloudwatchMetricAlarm(
                self,
                spec.concern,
                namespace=watched.namespace,
                metric_name=watched.metric.name,
                dimensions=watched.dimensions or None,
                statistic=watched.metric.statistic,
                period=PERIOD_SECONDS,
                **common,
            )
        query = CloudwatchMetricAlarmMetricQuery(
            id="q1",
            expression=watched.insights_query(),
            period=PERIOD_SECONDS,
            return_data=True,
            label=f"{watched.metric.name} ({watched.namespace})",
        )
        return CloudwatchMetricAlarm(self, spec.concern, metric_query=[query], **common)


def onboarding_alarms(namespace: str, props: MonitoringProps, refused_threshold: int) -> list[AlarmSpec]:
    """Fleet provisioning by claim: requests the hook refused (any reason), and the hook failing (IoT
    then answers ``ACCESS_DENIED``: no sensor can onboard by claim)."""
    hook = props.provisioning_function_name
    return [
        AlarmSpec("provisioning-refused", "Provisioning requests refused by the pre-provisioning hook (any reason)",
                  mc.PROVISIONING_REFUSED.watch(namespace, Reason=ANY), refused_threshold),
        AlarmSpec("provisioning-hook-errors", "Pre-provisioning hook failed: claims are denied",
                  mc.LAMBDA_ERRORS.watch(FunctionName=hook), 1),
    ]  # fmt: skip


def throttle_alarms(namer: Namer, threshold: int) -> list[AlarmSpec]:
    """``WriteThrottleEvents`` and ``ReadThrottleEvents`` of every table and index: a replay's burst before
    auto scaling has caught up (provisioned), or past a partition's limit (either mode)."""
    specs = []
    for concern, (table_concern, index) in TABLE_THROTTLE_SOURCES:
        table = namer.name(Kind.DYNAMODB_TABLE, table_concern)
        what = f"table {table}" + (f", index {index}" if index else "")
        for kind, table_metric, index_metric in (
            ("write", mc.DYNAMODB_WRITE_THROTTLES, mc.DYNAMODB_INDEX_WRITE_THROTTLES),
            ("read", mc.DYNAMODB_READ_THROTTLES, mc.DYNAMODB_INDEX_READ_THROTTLES),
        ):
            watched = (index_metric.watch(TableName=table, GlobalSecondaryIndexName=index) if index
                       else table_metric.watch(TableName=table))  # fmt: skip
            specs.append(AlarmSpec(f"{concern}-{kind}-throttles", f"DynamoDB throttled {kind}s ({what})",
                                   watched, threshold))  # fmt: skip
    return specs


def _metric_widget(title: str, region: str, series: list[list[Any]], *, stat: str = "Sum") -> dict[str, Any]:
    return {
        "type": "metric",
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": PERIOD_SECONDS,
            "view": "timeSeries",
            "metrics": series,
        },
    }


def dashboard_body(region: str, namespace: str, props: MonitoringProps) -> dict[str, Any]:
    """The dashboard, following a reading from MQTT to alerts; every line is a catalog metric."""
    proc, folder = props.processor_function_name, props.folder_function_name
    right = {"yAxis": "right"}
    widgets = [
        _metric_widget(
            "1. IoT rule: matched, failed actions",
            region,
            [
                mc.IOT_TOPIC_MATCH.watch(RuleName=props.iot_rule_name).dashboard_line(),
                mc.IOT_ACTION_FAILURE.watch(RuleName=props.iot_rule_name, ActionType=ANY).dashboard_line(
                    id="iotfailures"
                ),
            ],
        ),
        _metric_widget(
            "2. Kinesis: records in, read lag (ms)",
            region,
            [
                mc.KINESIS_INCOMING.watch(StreamName=props.stream_name).dashboard_line(),
                mc.KINESIS_ITERATOR_AGE.watch(StreamName=props.stream_name).dashboard_line(**right),
            ],
        ),
        _metric_widget(
            "3. Processor: invocations, errors, throttles",
            region,
            [
                mc.LAMBDA_INVOCATIONS.watch(FunctionName=proc).dashboard_line(),
                mc.LAMBDA_ERRORS.watch(FunctionName=proc).dashboard_line(),
                mc.LAMBDA_THROTTLES.watch(FunctionName=proc).dashboard_line(),
                mc.LAMBDA_ITERATOR_AGE.watch(FunctionName=proc).dashboard_line(**right),
            ],
        ),
        _metric_widget(
            "4. Readings: accepted, duplicates, quarantined",
            region,
            [
                mc.READINGS_ACCEPTED.watch(namespace).dashboard_line(),
                mc.DUPLICATE_READINGS.watch(namespace).dashboard_line(),
                [
                    {
                        "expression": f"SEARCH('{{{namespace},{metrics.REASON_DIMENSION}}} "
                        f"MetricName=\"{metrics.RECORDS_QUARANTINED}\"', 'Sum', {PERIOD_SECONDS})",
                        "label": "Quarantined",
                        "id": "quarantined",
                    }
                ],
            ],
        ),
        _metric_widget(
            "5. DynamoDB: consumed writes, write and read throttles",
            region,
            [
                *[mc.DYNAMODB_CONSUMED_WRITES.watch(TableName=t).dashboard_line() for t in props.table_names],
                *[mc.DYNAMODB_WRITE_THROTTLES.watch(TableName=t).dashboard_line() for t in props.table_names],
                *[mc.DYNAMODB_READ_THROTTLES.watch(TableName=t).dashboard_line() for t in props.table_names],
            ],
        ),
        _metric_widget(
            "6. Folder and congestion: partials in, windows by level, alerts, errors, lag behind the partials "
            "stream (ms)",
            region,
            [
                mc.KINESIS_INCOMING.watch(StreamName=props.partials_stream_name).dashboard_line(),
                *[mc.SEGMENT_WINDOWS.watch(namespace, Level=level).dashboard_line() for level in LEVELS],
                mc.CONGESTION_ALERTS.watch(namespace).dashboard_line(),
                mc.LAMBDA_ERRORS.watch(FunctionName=folder).dashboard_line(),
                mc.LAMBDA_THROTTLES.watch(FunctionName=folder).dashboard_line(),
                mc.LAMBDA_ITERATOR_AGE.watch(FunctionName=folder).dashboard_line(**right),
            ],
        ),
        _metric_widget(
            "7. Dead-letter queues: waiting messages",
            region,
            [
                mc.SQS_VISIBLE.watch(QueueName=props.processor_dlq_name).dashboard_line(),
                mc.SQS_VISIBLE.watch(QueueName=props.folder_dlq_name).dashboard_line(),
            ],
            stat="Maximum",
        ),
        _metric_widget(
            "8. Lake: records delivered, failed conversions, freshness (s)",
            region,
            [
                mc.FIREHOSE_DELIVERED.watch(DeliveryStreamName=props.firehose_name).dashboard_line(),
                mc.FIREHOSE_FAILED_CONVERSION.watch(DeliveryStreamName=props.firehose_name).dashboard_line(),
                mc.FIREHOSE_FRESHNESS.watch(DeliveryStreamName=props.firehose_name).dashboard_line(**right),
            ],
        ),
        _metric_widget(
            "9. Sensors: silent, completeness (% of the declared fleet's readings accepted)",
            region,
            [
                mc.SILENT_SENSORS.watch(namespace).dashboard_line(),
                [namespace, metrics.READINGS_ACCEPTED, {"id": "accepted", "visible": False}],
                [
                    {
                        "expression": f"100 * accepted / (PERIOD(accepted) * {props.fleet_readings_per_second:g})",
                        "label": "Completeness (%)",
                        "id": "completeness",
                        "yAxis": "right",
                    }
                ],
                mc.LAMBDA_ERRORS.watch(FunctionName=props.silence_function_name).dashboard_line(),
                mc.SQS_VISIBLE.watch(QueueName=props.silence_dlq_name).dashboard_line(),
            ],
        ),
        _metric_widget(
            "10. Onboarding by claim: allowed, refused (any reason), hook errors",
            region,
            [
                mc.PROVISIONING_ALLOWED.watch(namespace).dashboard_line(),
                mc.PROVISIONING_REFUSED.watch(namespace, Reason=ANY).dashboard_line(),
                mc.LAMBDA_ERRORS.watch(FunctionName=props.provisioning_function_name).dashboard_line(),
            ],
        ),
    ]
    return {"widgets": widgets}
