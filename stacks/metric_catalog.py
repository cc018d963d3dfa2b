"""Every metric an alarm or the dashboard watches: namespace, name, the exact dimension set it is
published with, the statistic, and where that is documented.

CloudWatch matches a metric by its exact dimension set: an alarm on a subset of the dimensions a
service publishes matches no data and, with missing data treated as not breaching, stays OK forever.
So alarms and dashboard lines are built from this table only (``Metric.watch``), which refuses any
other set of dimensions, and ``tests/test_monitoring.py`` checks every synthesized alarm against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.common import metrics

ANY = None
"""A dimension value meaning "every value" (e.g. every action type of a topic rule)."""

_INSIGHTS_FUNCTIONS = {"Sum": "SUM", "Maximum": "MAX", "Minimum": "MIN", "Average": "AVG", "SampleCount": "COUNT"}


@dataclass(frozen=True)
class Metric:
    namespace: str
    """A service namespace (``AWS/...``), or ``CUSTOM`` for the environment's own namespace."""
    name: str
    dimensions: tuple[str, ...]
    """The exact dimension set the metric is published with (names, in CloudWatch's order)."""
    statistic: str
    """The statistic alarms and the dashboard use."""
    source: str
    """The documentation (or the code) that publishes it with these dimensions."""

    def watch(self, namespace: str | None = None, **values: str | None) -> Watched:
        """This metric with a value for each of its dimensions (``ANY`` for every value of one);
        ``namespace`` resolves ``CUSTOM``. Any other set of dimensions is a ``ValueError``."""
        if set(values) != set(self.dimensions):
            raise ValueError(
                f"{self.namespace} {self.name} is published with dimensions {sorted(self.dimensions)}, "
                f"not {sorted(values)}: CloudWatch would match no data"
            )
        resolved = namespace if self.namespace == CUSTOM else self.namespace
        if resolved is None:
            raise ValueError(f"{self.name}: a custom metric needs the environment's namespace")
        return Watched(self, resolved, {name: values[name] for name in self.dimensions})


CUSTOM = "<environment namespace>"


@dataclass(frozen=True)
class Watched:
    """A catalog metric with its dimension values."""

    metric: Metric
    namespace: str
    values: Mapping[str, str | None]

    @property
    def exact(self) -> bool:
        """Whether every dimension has one value (else it is watched through a Metrics Insights query)."""
        return all(v is not ANY for v in self.values.values())

    @property
    def dimensions(self) -> dict[str, str]:
        if not self.exact:
            raise ValueError(f"{self.metric.name} has a wildcard dimension: use insights_query()")
        return {k: v for k, v in self.values.items() if v is not None}

    def insights_query(self) -> str:
        """A Metrics Insights query over every value of the wildcard dimensions, with the others fixed:
        ``SELECT SUM("Failure") FROM SCHEMA("AWS/IoT", ActionType, RuleName) WHERE RuleName = '...'``."""
        function = _INSIGHTS_FUNCTIONS[self.metric.statistic]
        schema = ", ".join([f'"{self.namespace}"', *self.metric.dimensions])
        fixed = [f"{name} = '{value}'" for name, value in self.values.items() if value is not ANY]
        where = f" WHERE {' AND '.join(fixed)}" if fixed else ""
        return f'SELECT {function}("{self.metric.name}") FROM SCHEMA({schema}){where}'

    def dashboard_line(self, **options: str) -> list[object]:
        """The metric as a dashboard ``metrics`` row (an expression row for a wildcard dimension)."""
        if not self.exact:
            return [{"expression": self.insights_query(), "label": self.metric.name, **options}]
        row: list[object] = [self.namespace, self.metric.name]
        for name, value in self.dimensions.items():
            row += [name, value]
        if options or self.metric.statistic != "Sum":
            row.append({"stat": self.metric.statistic, **options})
        return row


LAMBDA_DOC = "https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html"
SQS_DOC = (
    "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html"
)
FIREHOSE_DOC = "https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html"
IOT_DOC = "https://docs.aws.amazon.com/iot/latest/developerguide/metrics_dimensions.html#rule-action-metrics"
KINESIS_DOC = "https://docs.aws.amazon.com/streams/latest/dev/monitoring-with-cloudwatch.html"
DYNAMODB_DOC = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html"
ALERT_CODE = "lambdas/common/alerts.py (PutMetricData, by the folder)"
PROCESSOR_CODE = "lambdas/processor/service.py (embedded metric format)"
SILENCE_CODE = "lambdas/silence/service.py (PutMetricData)"

LAMBDA_ERRORS = Metric("AWS/Lambda", "Errors", ("FunctionName",), "Sum", LAMBDA_DOC)
LAMBDA_THROTTLES = Metric("AWS/Lambda", "Throttles", ("FunctionName",), "Sum", LAMBDA_DOC)
LAMBDA_INVOCATIONS = Metric("AWS/Lambda", "Invocations", ("FunctionName",), "Sum", LAMBDA_DOC)
LAMBDA_ITERATOR_AGE = Metric("AWS/Lambda", "IteratorAge", ("FunctionName",), "Maximum", LAMBDA_DOC)
"""Age of the last record in a batch of a stream event source (Kinesis or DynamoDB Streams), in ms."""
SQS_VISIBLE = Metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName",), "Maximum", SQS_DOC)
FIREHOSE_FRESHNESS = Metric(
    "AWS/Firehose", "DeliveryToS3.DataFreshness", ("DeliveryStreamName",), "Maximum", FIREHOSE_DOC
)
FIREHOSE_DELIVERED = Metric("AWS/Firehose", "DeliveryToS3.Records", ("DeliveryStreamName",), "Sum", FIREHOSE_DOC)
FIREHOSE_FAILED_CONVERSION = Metric(
    "AWS/Firehose", "FailedConversion.Records", ("DeliveryStreamName",), "Sum", FIREHOSE_DOC
)
"""Records Firehose could not convert to Parquet (they go to the error prefix, not the lake)."""
IOT_TOPIC_MATCH = Metric("AWS/IoT", "TopicMatch", ("RuleName",), "Sum", IOT_DOC)
IOT_RULE_NOT_FOUND = Metric(
    "AWS/IoT", "RuleNotFound", ("RuleName",), "Sum", IOT_DOC.replace("#rule-action-metrics", "#rulemetrics")
)
"""A Basic Ingest publish to a rule that does not exist or is disabled: the message is dropped."""
IOT_ACTION_FAILURE = Metric("AWS/IoT", "Failure", ("ActionType", "RuleName"), "Sum", IOT_DOC)
"""A rule action metric: published per rule *and* action type, never per rule alone."""
KINESIS_INCOMING = Metric("AWS/Kinesis", "IncomingRecords", ("StreamName",), "Sum", KINESIS_DOC)
KINESIS_ITERATOR_AGE = Metric(
    "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", ("StreamName",), "Maximum", KINESIS_DOC
)
DYNAMODB_CONSUMED_WRITES = Metric("AWS/DynamoDB", "ConsumedWriteCapacityUnits", ("TableName",), "Sum", DYNAMODB_DOC)
DYNAMODB_WRITE_THROTTLES = Metric("AWS/DynamoDB", "WriteThrottleEvents", ("TableName",), "Sum", DYNAMODB_DOC)
DYNAMODB_READ_THROTTLES = Metric("AWS/DynamoDB", "ReadThrottleEvents", ("TableName",), "Sum", DYNAMODB_DOC)
DYNAMODB_INDEX_WRITE_THROTTLES = Metric(
    "AWS/DynamoDB", "WriteThrottleEvents", ("TableName", "GlobalSecondaryIndexName"), "Sum", DYNAMODB_DOC
)
"""A global secondary index's throttled writes (a write the index cannot take throttles the table's write)."""
DYNAMODB_INDEX_READ_THROTTLES = Metric(
    "AWS/DynamoDB", "ReadThrottleEvents", ("TableName", "GlobalSecondaryIndexName"), "Sum", DYNAMODB_DOC
)
READINGS_ACCEPTED = Metric(CUSTOM, metrics.READINGS_ACCEPTED, (), "Sum", PROCESSOR_CODE)
DUPLICATE_READINGS = Metric(CUSTOM, metrics.DUPLICATE_READINGS, (), "Sum", PROCESSOR_CODE)
RECORDS_QUARANTINED = Metric(CUSTOM, metrics.RECORDS_QUARANTINED, (metrics.REASON_DIMENSION,), "Sum", PROCESSOR_CODE)
SEGMENT_WINDOWS = Metric(CUSTOM, metrics.SEGMENT_WINDOWS, (metrics.LEVEL_DIMENSION,), "Sum", ALERT_CODE)
CONGESTION_ALERTS = Metric(CUSTOM, metrics.CONGESTION_ALERTS, (), "Sum", ALERT_CODE)
SILENT_SENSORS = Metric(CUSTOM, metrics.SILENT_SENSORS, (), "Maximum", SILENCE_CODE)
"""Sensors silent at each run of the silence check (a gauge: its maximum over a period)."""
PROVISIONING_CODE = "lambdas/provisioning/service.py (embedded metric format)"
PROVISIONING_REFUSED = Metric(
    CUSTOM, metrics.PROVISIONING_REFUSED, (metrics.REASON_DIMENSION,), "Sum", PROVISIONING_CODE
)
"""RegisterThing requests the pre-provisioning hook refused, by reason (``lambdas.provisioning.logic.REFUSALS``)."""
PROVISIONING_ALLOWED = Metric(CUSTOM, metrics.PROVISIONING_ALLOWED, (), "Sum", PROVISIONING_CODE)

CATALOG: tuple[Metric, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Metric))
"""Every metric above, for the tests."""
