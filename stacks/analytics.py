"""The data lake path: Firehose archives the raw stream as Parquet, Glue catalogs it, Athena queries it."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf_cdktf_provider_aws import kinesis_firehose_delivery_stream as fh
from cdktf_cdktf_provider_aws.athena_named_query import AthenaNamedQuery
from cdktf_cdktf_provider_aws.athena_workgroup import (
    AthenaWorkgroup,
    AthenaWorkgroupConfiguration,
    AthenaWorkgroupConfigurationEngineVersion,
    AthenaWorkgroupConfigurationResultConfiguration,
    AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration,
)
from cdktf_cdktf_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktf_cdktf_provider_aws.cloudwatch_log_stream import CloudwatchLogStream
from cdktf_cdktf_provider_aws.glue_catalog_database import GlueCatalogDatabase
from cdktf_cdktf_provider_aws.glue_catalog_table import (
    GlueCatalogTable,
    GlueCatalogTablePartitionKeys,
    GlueCatalogTableStorageDescriptor,
    GlueCatalogTableStorageDescriptorColumns,
    GlueCatalogTableStorageDescriptorSerDeInfo,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfiguration as Conversion,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfiguration as InputFormat,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializer as Deserializer,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationInputFormatConfigurationDeserializerOpenXJsonSerDe as OpenXJson,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfiguration as OutputFormat,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializer as Serializer,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationOutputFormatConfigurationSerializerParquetSerDe as ParquetSerDe,
)
from cdktf_cdktf_provider_aws.kinesis_firehose_delivery_stream import (
    KinesisFirehoseDeliveryStreamExtendedS3ConfigurationDataFormatConversionConfigurationSchemaConfiguration as SchemaConfiguration,
)
from constructs import Construct

from stacks.context import StackContext
from stacks.iam import KINESIS_READ_ACTIONS, ServiceRole, Statement
from stacks.naming import Kind
from stacks.schema import lake_columns

LAKE_PREFIX = "readings/"
LAKE_ERROR_PREFIX = "firehose-errors/"
PARTITION_KEY = "dt"
FIREHOSE_LOG_STREAM = "S3Delivery"


@dataclass(frozen=True)
class AnalyticsProps:
    """Props of :class:`Analytics`."""

    kms_key_arn: str
    stream_arn: str
    lake_bucket_name: str
    lake_bucket_arn: str
    results_bucket_name: str


class Analytics(Construct):
    """Glue catalog, Firehose delivery to the lake, and the Athena workgroup with named queries."""

    def __init__(self, scope: Construct, id_: str, ctx: StackContext, props: AnalyticsProps) -> None:
        super().__init__(scope, id_)
        namer, config = ctx.namer, ctx.config
        self.database = GlueCatalogDatabase(
            self,
            "database",
            name=namer.name(Kind.GLUE, "traffic"),
            description="Traffic readings archived by the platform",
        )
        self.table_name = namer.name(Kind.GLUE, "readings")
        location = f"s3://{props.lake_bucket_name}/{LAKE_PREFIX}"
        self.table = GlueCatalogTable(
            self,
            "readings-table",
            database_name=self.database.name,
            name=self.table_name,
            table_type="EXTERNAL_TABLE",
            description="Sensor readings as Parquet, partitioned by UTC delivery date (dt=YYYY-MM-DD)",
            parameters={
                "classification": "parquet",
                "EXTERNAL": "TRUE",
                "projection.enabled": "true",
                f"projection.{PARTITION_KEY}.type": "date",
                f"projection.{PARTITION_KEY}.format": "yyyy-MM-dd",
                f"projection.{PARTITION_KEY}.range": "2024-01-01,NOW",
                f"projection.{PARTITION_KEY}.interval": "1",
                f"projection.{PARTITION_KEY}.interval.unit": "DAYS",
                "storage.location.template": f"{location}{PARTITION_KEY}=$${{{PARTITION_KEY}}}/",
            },
            partition_keys=[GlueCatalogTablePartitionKeys(name=PARTITION_KEY, type="string")],
            storage_descriptor=GlueCatalogTableStorageDescriptor(
                location=location,
                input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                ser_de_info=GlueCatalogTableStorageDescriptorSerDeInfo(
                    serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    parameters={"serialization.format": "1"},
                ),
                columns=[
                    GlueCatalogTableStorageDescriptorColumns(name=c.name, type=c.glue_type, comment=c.comment)
                    for c in lake_columns()
                ],
            ),
        )

        firehose_name = namer.name(Kind.FIREHOSE_STREAM, "lake")
        self.firehose_name = firehose_name
        self.log_group = CloudwatchLogGroup(
            self,
            "firehose-logs",
            name=namer.log_group("kinesisfirehose", "lake"),
            retention_in_days=config.log_retention_days,
            kms_key_id=props.kms_key_arn,
        )
        CloudwatchLogStream(self, "firehose-log-stream", name=FIREHOSE_LOG_STREAM, log_group_name=self.log_group.name)
        catalog = ctx.arn("glue", "catalog")
        database_arn = ctx.arn("glue", f"database/{self.database.name}")
        table_arn = ctx.arn("glue", f"table/{self.database.name}/{self.table_name}")
        self.role = ServiceRole(
            self,
            "firehose-role",
            name=namer.name(Kind.IAM_ROLE, "firehose-lake"),
            service="firehose.amazonaws.com",
            trust_conditions={("StringEquals", "sts:ExternalId"): [ctx.account_id]},
            description="Lets Firehose read the readings stream and write Parquet to the lake",
            statements=[
                Statement(
                    "ReadStream",
                    KINESIS_READ_ACTIONS,
                    [props.stream_arn],
                ),
                Statement(
                    "WriteLake",
                    [
                        "s3:AbortMultipartUpload",
                        "s3:GetBucketLocation",
                        "s3:GetObject",
                        "s3:ListBucket",
                        "s3:ListBucketMultipartUploads",
                        "s3:PutObject",
                    ],
                    [props.lake_bucket_arn, f"{props.lake_bucket_arn}/*"],
                ),
                Statement(
                    "ReadSchema",
                    ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"],
                    [catalog, database_arn, table_arn],
                ),
                Statement(
                    "UseKey",
                    ["kms:Decrypt", "kms:GenerateDataKey"],
                    [props.kms_key_arn],
                    {("StringEquals", "kms:ViaService"): [ctx.service_endpoint("kinesis"), ctx.service_endpoint("s3")]},
                ),
                Statement(
                    "LogErrors", ["logs:PutLogEvents"], [f"{self.log_group.arn}:log-stream:{FIREHOSE_LOG_STREAM}"]
                ),
            ],
        )
        s3 = fh.KinesisFirehoseDeliveryStreamExtendedS3Configuration(
            role_arn=self.role.arn,
            bucket_arn=props.lake_bucket_arn,
            prefix=f"{LAKE_PREFIX}{PARTITION_KEY}=!{{timestamp:yyyy-MM-dd}}/",
            error_output_prefix=f"{LAKE_ERROR_PREFIX}!{{firehose:error-output-type}}/{PARTITION_KEY}=!{{timestamp:yyyy-MM-dd}}/",
            buffering_interval=config.firehose_buffer_seconds,
            buffering_size=64,
            kms_key_arn=props.kms_key_arn,
            cloudwatch_logging_options=fh.KinesisFirehoseDeliveryStreamExtendedS3ConfigurationCloudwatchLoggingOptions(
                enabled=True, log_group_name=self.log_group.name, log_stream_name=FIREHOSE_LOG_STREAM
            ),
            data_format_conversion_configuration=Conversion(
                enabled=True,
                input_format_configuration=InputFormat(deserializer=Deserializer(open_x_json_ser_de=OpenXJson())),
                output_format_configuration=OutputFormat(
                    serializer=Serializer(parquet_ser_de=ParquetSerDe(compression="SNAPPY"))
                ),
                schema_configuration=SchemaConfiguration(
                    database_name=self.database.name,
                    table_name=self.table.name,
                    role_arn=self.role.arn,
                    region=ctx.region,
                ),
            ),
        )
        self.firehose = fh.KinesisFirehoseDeliveryStream(
            self,
            "firehose",
            name=firehose_name,
            destination="extended_s3",
            kinesis_source_configuration=fh.KinesisFirehoseDeliveryStreamKinesisSourceConfiguration(
                kinesis_stream_arn=props.stream_arn, role_arn=self.role.arn
            ),
            extended_s3_configuration=s3,
            depends_on=[self.role.policy],
        )

        self.workgroup = AthenaWorkgroup(
            self,
            "workgroup",
            name=namer.name(Kind.ATHENA_WORKGROUP, "analytics"),
            description="Traffic engineers' queries over the lake",
            force_destroy=not ctx.production,
            configuration=AthenaWorkgroupConfiguration(
                enforce_workgroup_configuration=True,
                publish_cloudwatch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=config.athena_bytes_scanned_cutoff,
                engine_version=AthenaWorkgroupConfigurationEngineVersion(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=AthenaWorkgroupConfigurationResultConfiguration(
                    output_location=f"s3://{props.results_bucket_name}/results/",
                    encryption_configuration=AthenaWorkgroupConfigurationResultConfigurationEncryptionConfiguration(
                        encryption_option="SSE_KMS", kms_key_arn=props.kms_key_arn
                    ),
                ),
            ),
        )
        self.named_queries = [
            AthenaNamedQuery(
                self,
                f"query-{query_id}",
                name=namer.name(Kind.ATHENA_QUERY, query_id),
                description=description,
                database=self.database.name,
                workgroup=self.workgroup.name,
                query=sql.format(table=f"{self.database.name}.{self.table_name}"),
            )
            for query_id, description, sql in NAMED_QUERIES
        ]


NAMED_QUERIES: tuple[tuple[str, str, str], ...] = (
    (
        "worst-segments-24h",
        "Segments with the lowest vehicle-weighted speed relative to their limit in the last 24 hours",
        """SELECT segment_id,
       sum(vehicle_count) AS vehicles,
       sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0) AS average_speed_kmh,
       min(coalesce(speed_limit_kmh, 50)) AS speed_limit_kmh,
       avg(occupancy_percent) AS occupancy_percent
FROM {table}
WHERE dt >= date_format(current_date - interval '1' day, '%Y-%m-%d')
  AND from_iso8601_timestamp(timestamp) >= current_timestamp - interval '24' hour
GROUP BY segment_id
HAVING sum(vehicle_count) > 0
ORDER BY sum(vehicle_count * average_speed_kmh) / sum(vehicle_count) / min(coalesce(speed_limit_kmh, 50))
LIMIT 20""",
    ),
    (
        "hourly-volume-per-segment",
        "Vehicles per hour for each segment over the last 7 days",
        """SELECT segment_id,
       date_trunc('hour', from_iso8601_timestamp(timestamp)) AS hour,
       sum(vehicle_count) AS vehicles,
       count(*) AS readings
FROM {table}
WHERE dt >= date_format(current_date - interval '7' day, '%Y-%m-%d')
GROUP BY 1, 2
ORDER BY 1, 2""",
    ),
    (
        "speed-profile-by-hour-of-day",
        "Vehicle-weighted mean speed per segment and hour of day (UTC) over the last 30 days",
        """SELECT segment_id,
       hour(from_iso8601_timestamp(timestamp)) AS hour_of_day,
       sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0) AS average_speed_kmh,
       sum(vehicle_count) AS vehicles
FROM {table}
WHERE dt >= date_format(current_date - interval '30' day, '%Y-%m-%d')
GROUP BY 1, 2
ORDER BY 1, 2""",
    ),
)
