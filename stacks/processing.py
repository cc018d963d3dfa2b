"""The processor and folder functions, the partials stream between them, their dead-letter queues and event
source mappings (``Function`` is every function's shape: the silence check's too, ``stacks.silence``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.kinesis_stream import KinesisStream, KinesisStreamStreamModeDetails
from cdktf_cdktf_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingDestinationConfig,
    LambdaEventSourceMappingDestinationConfigOnFailure,
)
from cdktf_cdktf_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionDeadLetterConfig,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
)
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from constructs import Construct

from stacks.config import FunctionSettings
from stacks.context import StackContext
from stacks.iam import KINESIS_READ_ACTIONS, ServiceRole, Statement
from stacks.lambda_package import package
from stacks.layout import (
    FOLDER_BATCH_SIZE,
    PARTIALS_STREAM,
    PENDING_ALERTS,
    QUARANTINE_PREFIX,
    RuntimeNames,
    folder_environment,
    processor_environment,
)
from stacks.naming import Kind

RUNTIME = "python3.12"
PARTIALS_RETENTION_HOURS = 24
"""The partials stream keeps a record 24 hours (Kinesis's minimum): the folder's iterator-age alarm fires
long before (``alarms.folder_iterator_age_ms``)."""
ARCHITECTURE = "arm64"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
# X-Ray accepts no resource-level permissions: these two actions need Resource "*".
XRAY_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")


@dataclass(frozen=True)
class ProcessingProps:
    """Props of :class:`Processing`: the resources the functions read and write."""

    kms_key_arn: str
    stream_arn: str
    sensor_windows_table_name: str
    sensor_windows_table_arn: str
    segment_aggregates_table_name: str
    segment_aggregates_table_arn: str
    quarantine_bucket_name: str
    quarantine_bucket_arn: str
    alert_topic_arn: str
    sensor_outages_table_name: str
    fleet_table_name: str
    fleet_table_arn: str


class Function(Construct):
    """One Lambda function with its staged code, role, log group and dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        ctx: StackContext,
        *,
        concern: str,
        description: str,
        settings: FunctionSettings,
        kms_key_arn: str,
        environment: Mapping[str, str],
        statements: Sequence[Statement],
    ) -> None:
        super().__init__(scope, id_)
        namer = ctx.namer
        self.function_name = namer.name(Kind.LAMBDA_FUNCTION, concern)
        self.dlq_name = namer.name(Kind.SQS_QUEUE, f"{concern}-dlq")
        self.dlq = SqsQueue(
            self,
            "dlq",
            name=self.dlq_name,
            kms_master_key_id=kms_key_arn,
            kms_data_key_reuse_period_seconds=300,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
        )
        self.log_group = CloudwatchLogGroup(
            self,
            "logs",
            name=namer.log_group("lambda", concern),
            retention_in_days=ctx.config.log_retention_days,
            kms_key_id=kms_key_arn,
        )
        self.role = ServiceRole(
            self,
            "role",
            name=namer.name(Kind.IAM_ROLE, f"{concern}-fn"),
            service="lambda.amazonaws.com",
            description=f"Execution role of {self.function_name}",
            statements=[
                *statements,
                Statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [f"{self.log_group.arn}:*"]),
                Statement("SendFailuresToDeadLetterQueue", ["sqs:SendMessage"], [self.dlq.arn]),
                Statement("Tracing", XRAY_ACTIONS, ["*"]),
            ],
        )
        code = package(concern)
        self.asset = TerraformAsset(self, "code", path=str(code.path), type=AssetType.FILE)
        self.function = LambdaFunction(
            self,
            "function",
            function_name=self.function_name,
            description=description,
            role=self.role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=f"lambdas.{concern}.handler.handler",
            filename=self.asset.path,
            source_code_hash=code.base64_sha256,
            memory_size=settings.memory_mb,
            timeout=settings.timeout_seconds,
            reserved_concurrent_executions=settings.reserved_concurrency,
            kms_key_arn=kms_key_arn,
            environment=LambdaFunctionEnvironment(variables=dict(environment)),
            tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            logging_config=LambdaFunctionLoggingConfig(log_format="JSON", log_group=self.log_group.name),
            # Stream invocations fail over to the mapping's destination; asynchronous ones land here.
            dead_letter_config=LambdaFunctionDeadLetterConfig(target_arn=self.dlq.arn),
            depends_on=[self.log_group, self.role.policy],
        )


class Processing(Construct):
    """Processor (readings → DynamoDB, quarantine, partials) and folder (partials → segment aggregates,
    metrics, SNS) functions, with the partials stream between them."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: ProcessingProps) -> None:
        super().__init__(scope, id_)
        self._ctx = ctx
        config = ctx.config
        namespace = ctx.namer.metric_namespace()
        use_key = Statement("UseDataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [props.kms_key_arn])
        self.partials_stream_name = ctx.namer.name(Kind.KINESIS_STREAM, PARTIALS_STREAM)
        self.partials_stream = KinesisStream(
            self,
            "partials",
            name=self.partials_stream_name,
            stream_mode_details=KinesisStreamStreamModeDetails(stream_mode="PROVISIONED"),
            shard_count=config.partials_shard_count,
            retention_period=PARTIALS_RETENTION_HOURS,
            encryption_type="KMS",
            kms_key_id=props.kms_key_arn,
            enforce_consumer_deletion=not ctx.production,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if ctx.production else None,
        )
        self.names = names = RuntimeNames(
            environment_suffix=ctx.namer.environment_suffix,
            metric_namespace=namespace,
            sensor_windows_table=props.sensor_windows_table_name,
            segment_aggregates_table=props.segment_aggregates_table_name,
            quarantine_bucket=props.quarantine_bucket_name,
            alert_topic_arn=props.alert_topic_arn,
            sensor_outages_table=props.sensor_outages_table_name,
            partials_stream=self.partials_stream_name,
            fleet_table=props.fleet_table_name,
        )
        self.processor = Function(
            self,
            "processor",
            ctx,
            concern="processor",
            description="Validates readings from Kinesis, updates sensor state, quarantines bad records, sends "
            "partials",
            settings=config.processor,
            kms_key_arn=props.kms_key_arn,
            environment=processor_environment(names, config),
            statements=[
                Statement(
                    "ReadReadingsStream",
                    KINESIS_READ_ACTIONS,
                    [props.stream_arn],
                ),
                Statement(
                    "ReadAndWriteState",  # PutItem: the shard's partials mark
                    ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem"],
                    [props.sensor_windows_table_arn],
                ),
                Statement("SendPartials", ["kinesis:PutRecords"], [self.partials_stream.arn]),
                # the fleet registry: read with the window heads, written once a day per sensor; the
                # shard's watermark: one conditional UpdateItem a batch (lambdas.common.silence)
                Statement(
                    "KeepFleetRegistry",
                    ["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:UpdateItem"],
                    [props.fleet_table_arn],
                ),
                Statement(
                    "QuarantineRejects", ["s3:PutObject"], [f"{props.quarantine_bucket_arn}/{QUARANTINE_PREFIX}*"]
                ),
                use_key,
            ],
        )
        self.processor_mapping = self._mapping("processor-mapping", self.processor, props.stream_arn, config.batch_size)
        self.folder = Function(
            self,
            "folder",
            ctx,
            concern="folder",
            description="Folds partials into segment aggregates; congestion metrics and SNS alerts",
            settings=config.folder,
            kms_key_arn=props.kms_key_arn,
            environment=folder_environment(names, config),
            statements=[
                Statement("ReadPartialsStream", KINESIS_READ_ACTIONS, [self.partials_stream.arn]),
                Statement(
                    "ReadAndWriteAggregates",  # conditional writes: the version read, and alert claims
                    ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    [props.segment_aggregates_table_arn],
                ),
                Statement(
                    "FindExpiredAlertClaims",
                    ["dynamodb:Query"],
                    [f"{props.segment_aggregates_table_arn}/index/{PENDING_ALERTS.name}"],
                ),
                Statement(
                    "PublishOwnMetrics",
                    ["cloudwatch:PutMetricData"],
                    ["*"],  # PutMetricData has no resource-level permissions; the namespace condition scopes it
                    {("StringEquals", "cloudwatch:namespace"): [namespace]},
                ),
                Statement("PublishAlerts", ["sns:Publish"], [props.alert_topic_arn]),
                use_key,
            ],
        )
        # One batch per partition key (a segment) at a time, also with a parallelization factor: one writer
        # per segment window (Lambda developer guide, "Polling and batching streams").
        self.folder_mapping = self._mapping("folder-mapping", self.folder, self.partials_stream.arn, FOLDER_BATCH_SIZE)

    def _mapping(self, id_: str, fn: Function, source_arn: str, batch_size: int) -> LambdaEventSourceMapping:
        """Kinesis stream → function, reporting partial failures, bisecting, bounded retries, DLQ on failure."""
        config = self._ctx.config
        return LambdaEventSourceMapping(
            self,
            id_,
            function_name=fn.function.arn,
            event_source_arn=source_arn,
            starting_position="TRIM_HORIZON",
            batch_size=batch_size,
            maximum_batching_window_in_seconds=config.batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            bisect_batch_on_function_error=True,
            maximum_retry_attempts=config.max_retry_attempts,
            maximum_record_age_in_seconds=config.max_record_age_seconds,
            destination_config=LambdaEventSourceMappingDestinationConfig(
                on_failure=LambdaEventSourceMappingDestinationConfigOnFailure(destination_arn=fn.dlq.arn)
            ),
        )
