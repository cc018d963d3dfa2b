"""One environment of the platform: the stack wires the concerns' constructs together."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import S3Backend, TerraformOutput, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from stacks.analytics import Analytics, AnalyticsProps
from stacks.budget import BudgetProps, CostBudget
from stacks.config import EnvironmentConfig, StateConfig
from stacks.context import StackContext
from stacks.ingestion import Ingestion, IngestionProps
from stacks.monitoring import Monitoring, MonitoringProps, alarm_names
from stacks.naming import Namer
from stacks.notifications import Notifications, alert_topic_name
from stacks.processing import Processing, ProcessingProps
from stacks.provisioning import Provisioning, ProvisioningProps
from stacks.security import Security, SecurityProps
from stacks.silence import SilenceCheck, SilenceProps
from stacks.storage import Storage


@dataclass(frozen=True)
class TapStackProps:
    """Props of :class:`TapStack`."""

    environment_suffix: str
    """Carried by every resource name and the state key; validated by the naming helper."""
    config: EnvironmentConfig
    """The environment's validated configuration."""
    region: str
    """AWS region to deploy to (normally ``config.region``)."""
    state: StateConfig
    """Where the Terraform state lives."""


def default_tags(environment_suffix: str) -> dict[str, str]:
    return {"Project": "traffic-analytics", "Environment": environment_suffix, "ManagedBy": "cdktf"}


def configure_state_backend(stack: TerraformStack, namer: Namer, state: StateConfig) -> None:
    """S3 backend with a key per environment, S3-native locking (no DynamoDB table), and state, lock and
    digest encrypted with the state key (``encrypt`` alone would write them with AES256)."""
    S3Backend(
        stack,
        bucket=state.bucket,
        key=namer.state_key(),
        region=state.region,
        encrypt=True,
        kms_key_id=state.kms_key,
    )
    # cdktf 0.21's typed S3BackendConfig predates Terraform 1.10's use_lockfile.
    stack.add_override("terraform.backend.s3.use_lockfile", True)


class TapStack(TerraformStack):
    """The whole traffic analytics path for one environment."""

    def __init__(self, scope: Construct, id_: str, props: TapStackProps) -> None:
        super().__init__(scope, id_)
        namer = Namer(props.environment_suffix)
        configure_state_backend(self, namer, props.state)
        AwsProvider(
            self,
            "aws",
            region=props.region,
            default_tags=[AwsProviderDefaultTags(tags=default_tags(props.environment_suffix))],
        )
        identity = DataAwsCallerIdentity(self, "current")
        partition = DataAwsPartition(self, "partition")
        ctx = StackContext(
            namer=namer,
            config=props.config,
            region=props.region,
            account_id=identity.account_id,
            partition=partition.partition,
        )
        function_log_groups = [namer.log_group("lambda", c) for c in ("processor", "folder", "silence", "provisioning")]
        security = Security(
            self,
            "security",
            ctx,
            SecurityProps(
                log_group_names=[*function_log_groups, namer.log_group("kinesisfirehose", "lake")],
                alert_topic_name=alert_topic_name(ctx),
                alarm_names=alarm_names(namer),
            ),
        )
        key_arn = security.key_arn
        storage = Storage(self, "storage", ctx, key_arn)
        notifications = Notifications(self, "notifications", ctx, key_arn)
        ingestion = Ingestion(
            self,
            "ingestion",
            ctx,
            IngestionProps(
                kms_key_arn=key_arn,
                error_bucket_name=storage.quarantine.name,
                error_bucket_arn=storage.quarantine.arn,
            ),
        )
        provisioning = Provisioning(
            self,
            "provisioning",
            ctx,
            ProvisioningProps(
                kms_key_arn=key_arn,
                sensor_policy_name=ingestion.sensor_policy_name,
                allow_list_table_name=storage.sensor_allow_list.name,
                allow_list_table_arn=storage.sensor_allow_list.arn,
            ),
        )
        analytics = Analytics(
            self,
            "analytics",
            ctx,
            AnalyticsProps(
                kms_key_arn=key_arn,
                stream_arn=ingestion.stream.arn,
                lake_bucket_name=storage.lake.name,
                lake_bucket_arn=storage.lake.arn,
                results_bucket_name=storage.athena_results.name,
                quarantine_bucket_name=storage.quarantine.name,
            ),
        )
        processing = Processing(
            self,
            "processing",
            ctx,
            ProcessingProps(
                kms_key_arn=key_arn,
                stream_arn=ingestion.stream.arn,
                sensor_windows_table_name=storage.sensor_windows.name,
                sensor_windows_table_arn=storage.sensor_windows.arn,
                segment_aggregates_table_name=storage.segment_aggregates.name,
                segment_aggregates_table_arn=storage.segment_aggregates.arn,
                quarantine_bucket_name=storage.quarantine.name,
                quarantine_bucket_arn=storage.quarantine.arn,
                alert_topic_arn=notifications.topic_arn,
                sensor_outages_table_name=storage.sensor_outages.name,
                fleet_table_name=storage.fleet.name,
                fleet_table_arn=storage.fleet.arn,
            ),
        )
        silence = SilenceCheck(
            self,
            "silence",
            ctx,
            SilenceProps(
                kms_key_arn=key_arn,
                names=processing.names,
                sensor_windows_table_arn=storage.sensor_windows.arn,
                sensor_outages_table_arn=storage.sensor_outages.arn,
                fleet_table_arn=storage.fleet.arn,
                alert_topic_arn=notifications.topic_arn,
            ),
        )
        budget = CostBudget(
            self,
            "budget",
            ctx,
            BudgetProps(alert_topic_arn=notifications.topic_arn, topic_policy=notifications.topic_policy),
        )
        monitoring = Monitoring(
            self,
            "monitoring",
            ctx,
            MonitoringProps(
                alert_topic_arn=notifications.topic_arn,
                iot_rule_name=ingestion.rule_name,
                stream_name=ingestion.stream_name,
                processor_function_name=processing.processor.function_name,
                folder_function_name=processing.folder.function_name,
                partials_stream_name=processing.partials_stream_name,
                processor_dlq_name=processing.processor.dlq_name,
                folder_dlq_name=processing.folder.dlq_name,
                silence_function_name=silence.check.function_name,
                silence_dlq_name=silence.check.dlq_name,
                fleet_readings_per_second=props.config.sensors / props.config.reading_interval_seconds,
                firehose_name=analytics.firehose_name,
                table_names=storage.table_names,
                provisioning_function_name=provisioning.hook.function_name,
            ),
        )
        outputs = {
            "iot_publish_topic": (
                ingestion.publish_topic,
                "Topic each sensor publishes its readings on, + being its thing name (Basic Ingest: to the "
                "ingestion rule only, no messaging charge, no subscribers)",
            ),
            "iot_topic_filter": (
                ingestion.topic_filter,
                "Topic filter of the readings as the ingestion rule sees them (without the Basic Ingest prefix)",
            ),
            "iot_sensor_policy_name": (ingestion.sensor_policy.name, "IoT policy to attach to sensor certificates"),
            "iot_rule_name": (ingestion.rule.name, "Ingestion topic rule"),
            "kinesis_stream_name": (ingestion.stream.name, "Readings data stream"),
            "kinesis_stream_arn": (ingestion.stream.arn, "Readings data stream ARN"),
            "sensor_windows_table_name": (
                storage.sensor_windows.name,
                "Each sensor's readings per window; its newest item is the sensor's current state",
            ),
            "segment_aggregates_table_name": (storage.segment_aggregates.name, "Segment aggregates per window"),
            "sensor_outages_table_name": (
                storage.sensor_outages.name,
                "Silent-sensor outages with their alert and recovery state",
            ),
            "fleet_table_name": (
                storage.fleet.name,
                "Fleet registry (sensors by hash shard, once a day) and the stream shards' watermarks",
            ),
            "lake_bucket_name": (storage.lake.name, "Data lake bucket (Parquet)"),
            "quarantine_bucket_name": (storage.quarantine.name, "Rejected records and failed IoT puts"),
            "athena_results_bucket_name": (storage.athena_results.name, "Athena query results"),
            "access_logs_bucket_name": (storage.access_logs.name, "S3 server access logs"),
            "glue_database_name": (analytics.database.name, "Glue database of the lake"),
            "glue_table_name": (analytics.table.name, "Glue table of the readings"),
            "athena_workgroup_name": (analytics.workgroup.name, "Athena workgroup to query the lake with"),
            "firehose_delivery_stream_name": (analytics.firehose.name, "Firehose archiving the stream"),
            "processor_function_name": (processing.processor.function.function_name, "Processor Lambda"),
            "folder_function_name": (
                processing.folder.function.function_name,
                "Folder Lambda (partials into aggregates)",
            ),
            "partials_stream_name": (processing.partials_stream.name, "Partials stream (processor to folder)"),
            "silence_function_name": (silence.check.function.function_name, "Silence check Lambda (every minute)"),
            "silence_dlq_url": (silence.check.dlq.url, "Silence check dead-letter queue"),
            "processor_dlq_url": (processing.processor.dlq.url, "Processor dead-letter queue"),
            "folder_dlq_url": (processing.folder.dlq.url, "Folder dead-letter queue"),
            "alert_topic_arn": (notifications.topic_arn, "SNS topic for alerts and alarms"),
            "kms_key_arn": (key_arn, "Data key of the environment"),
            "metric_namespace": (namer.metric_namespace(), "Custom CloudWatch metric namespace"),
            "dashboard_name": (monitoring.dashboard_name, "CloudWatch dashboard"),
            "aggregation_window_seconds": (str(props.config.aggregation_window_seconds), "Window length"),
            "monthly_budget_usd": (budget.budget.limit_amount, "Monthly cost budget (capacity model x margin)"),
        }
        outputs.update(onboarding_outputs(provisioning, storage))
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)


def onboarding_outputs(provisioning: Provisioning, storage: Storage) -> dict[str, tuple[str, str]]:
    """What ``python -m tools.fleet`` and a factory's claim setup need (docs/operations.md, onboarding)."""
    return {
        "iot_provisioning_template_name": (
            provisioning.template_name,
            "Fleet provisioning template (by claim) sensors call RegisterThing with",
        ),
        "iot_claim_policy_name": (provisioning.claim_policy.name, "IoT policy of the factory claim certificate"),
        "iot_thing_group_name": (provisioning.thing_group_name, "Thing group of every sensor of the environment"),
        "sensor_allow_list_table_name": (storage.sensor_allow_list.name, "Serials that may onboard by claim"),
        "provisioning_function_name": (provisioning.hook.function_name, "Pre-provisioning hook Lambda"),
    }
