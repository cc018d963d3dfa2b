"""Alarms on every stage of the path, and one dashboard of the whole path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf_cdktf_provider_aws.cloudwatch_dashboard import CloudwatchDashboard
from cdktf_cdktf_provider_aws.cloudwatch_metric_alarm import CloudwatchMetricAlarm
from constructs import Construct

from lambdas.common import metrics
from stacks.context import StackContext
from stacks.naming import Kind

PERIOD_SECONDS = 300


@dataclass(frozen=True)
class MonitoringProps:
    """Names of what is watched (plain strings from the naming helper) and the topic alarms notify."""

    alert_topic_arn: str
    iot_rule_name: str
    stream_name: str
    processor_function_name: str
    alert_function_name: str
    processor_dlq_name: str
    alert_dlq_name: str
    firehose_name: str
    table_names: tuple[str, ...]


@dataclass(frozen=True)
class AlarmSpec:
    concern: str
    description: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str
    threshold: int


class Monitoring(Construct):
    """CloudWatch alarms (notifying the alert topic) and the platform dashboard."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: MonitoringProps) -> None:
        super().__init__(scope, id_)
        limits = ctx.config.alarms
        namespace = ctx.namer.metric_namespace()
        self.specs = [
            AlarmSpec(
                "processor-errors",
                "Processor invocations failed",
                "AWS/Lambda",
                "Errors",
                {"FunctionName": props.processor_function_name},
                "Sum",
                limits.processor_errors,
            ),
            AlarmSpec(
                "processor-throttles",
                "Processor invocations throttled",
                "AWS/Lambda",
                "Throttles",
                {"FunctionName": props.processor_function_name},
                "Sum",
                limits.processor_throttles,
            ),
            AlarmSpec(
                "processor-iterator-age",
                "Processor falls behind the stream (ms)",
                "AWS/Lambda",
                "IteratorAge",
                {"FunctionName": props.processor_function_name},
                "Maximum",
                limits.iterator_age_ms,
            ),
            AlarmSpec(
                "alert-errors",
                "Alert function invocations failed",
                "AWS/Lambda",
                "Errors",
                {"FunctionName": props.alert_function_name},
                "Sum",
                limits.processor_errors,
            ),
            AlarmSpec(
                "processor-dlq-depth",
                "Readings the processor gave up on",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": props.processor_dlq_name},
                "Maximum",
                limits.dlq_messages,
            ),
            AlarmSpec(
                "alert-dlq-depth",
                "Window changes the alert function gave up on",
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                {"QueueName": props.alert_dlq_name},
                "Maximum",
                limits.dlq_messages,
            ),
            AlarmSpec(
                "firehose-freshness",
                "Oldest record not yet in the lake (s)",
                "AWS/Firehose",
                "DeliveryToS3.DataFreshness",
                {"DeliveryStreamName": props.firehose_name},
                "Maximum",
                limits.firehose_freshness_seconds,
            ),
            AlarmSpec(
                "iot-rule-failures",
                "Ingestion topic rule failed to put readings",
                "AWS/IoT",
                "Failure",
                {"RuleName": props.iot_rule_name},
                "Sum",
                limits.iot_rule_failures,
            ),
            AlarmSpec(
                "congestion",
                "Segment windows entering heavy or severe congestion",
                namespace,
                metrics.CONGESTION_ALERTS,
                {},
                "Sum",
                limits.congestion_alerts,
            ),
        ]
        self.alarms = {
            spec.concern: CloudwatchMetricAlarm(
                self,
                spec.concern,
                alarm_name=ctx.namer.name(Kind.ALARM, spec.concern),
                alarm_description=spec.description,
                namespace=spec.namespace,
                metric_name=spec.metric,
                dimensions=spec.dimensions or None,
                statistic=spec.statistic,
                period=PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=spec.threshold,
                comparison_operator="GreaterThanOrEqualToThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[props.alert_topic_arn],
                ok_actions=[props.alert_topic_arn],
            )
            for spec in self.specs
        }
        self.dashboard_name = ctx.namer.name(Kind.DASHBOARD, "traffic")
        self.dashboard = CloudwatchDashboard(
            self,
            "dashboard",
            dashboard_name=self.dashboard_name,
            dashboard_body=json.dumps(dashboard_body(ctx.region, namespace, props), sort_keys=True),
        )


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
    """The dashboard, following a reading from MQTT to alerts."""
    proc, alert = props.processor_function_name, props.alert_function_name
    widgets = [
        _metric_widget(
            "1. IoT rule: matched, failed",
            region,
            [
                ["AWS/IoT", "TopicMatch", "RuleName", props.iot_rule_name],
                ["AWS/IoT", "Failure", "RuleName", props.iot_rule_name],
            ],
        ),
        _metric_widget(
            "2. Kinesis: records in, read lag (ms)",
            region,
            [
                ["AWS/Kinesis", "IncomingRecords", "StreamName", props.stream_name],
                [
                    "AWS/Kinesis",
                    "GetRecords.IteratorAgeMilliseconds",
                    "StreamName",
                    props.stream_name,
                    {"stat": "Maximum", "yAxis": "right"},
                ],
            ],
        ),
        _metric_widget(
            "3. Processor: invocations, errors, throttles",
            region,
            [
                ["AWS/Lambda", "Invocations", "FunctionName", proc],
                ["AWS/Lambda", "Errors", "FunctionName", proc],
                ["AWS/Lambda", "Throttles", "FunctionName", proc],
                ["AWS/Lambda", "IteratorAge", "FunctionName", proc, {"stat": "Maximum", "yAxis": "right"}],
            ],
        ),
        _metric_widget(
            "4. Readings: accepted, duplicates, quarantined",
            region,
            [
                [namespace, metrics.READINGS_ACCEPTED],
                [namespace, metrics.DUPLICATE_READINGS],
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
            "5. DynamoDB: consumed writes, throttles",
            region,
            [
                *[["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", t] for t in props.table_names],
                *[["AWS/DynamoDB", "WriteThrottleEvents", "TableName", t] for t in props.table_names],
            ],
        ),
        _metric_widget(
            "6. Congestion: segment windows by level, alerts",
            region,
            [
                *[
                    [namespace, metrics.SEGMENT_WINDOWS, metrics.LEVEL_DIMENSION, level]
                    for level in ("free", "moderate", "heavy", "severe")
                ],
                [namespace, metrics.CONGESTION_ALERTS],
                ["AWS/Lambda", "Errors", "FunctionName", alert],
            ],
        ),
        _metric_widget(
            "7. Dead-letter queues: waiting messages",
            region,
            [
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", props.processor_dlq_name],
                ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", props.alert_dlq_name],
            ],
            stat="Maximum",
        ),
        _metric_widget(
            "8. Lake: records delivered, freshness (s)",
            region,
            [
                ["AWS/Firehose", "DeliveryToS3.Records", "DeliveryStreamName", props.firehose_name],
                [
                    "AWS/Firehose",
                    "DeliveryToS3.DataFreshness",
                    "DeliveryStreamName",
                    props.firehose_name,
                    {"stat": "Maximum", "yAxis": "right"},
                ],
            ],
        ),
    ]
    return {"widgets": widgets}
