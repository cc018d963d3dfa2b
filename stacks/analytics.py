"""The data lake path: Firehose archives the raw stream as Parquet, Glue catalogs it, Athena queries it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from stacks.schema import lake_columns, reading_schema

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
                f"query-{query.query_id}",
                name=namer.name(Kind.ATHENA_QUERY, query.query_id),
                description=query.description,
                database=self.database.name,
                workgroup=self.workgroup.name,
                query=query.sql(f"{self.database.name}.{self.table_name}"),
            )
            for query in NAMED_QUERIES
        ]


VALID_READINGS = "valid_readings"
"""The common table expression every named query reads: the contract's valid readings, each once."""

_SCHEMA_KEYWORDS = frozenset({"type", "description", "pattern", "format", "minimum", "maximum", "default"})


def _anchored(pattern: str) -> str:
    """A contract pattern (ECMA-262, ``^...$``) for ``regexp_like``: ``\\A...\\z`` match the whole string in
    Trino's (Java/Joni) and DuckDB's (RE2) engines alike, where ``$`` may also match before a final newline."""
    if not (pattern.startswith("^") and pattern.endswith("$")) or "'" in pattern:
        raise ValueError(f"contract pattern {pattern!r} is not anchored at both ends, or holds a quote")
    return f"\\A{pattern[1:-1]}\\z"


def _column_check(name: str, spec: dict[str, Any], required: bool) -> str:
    """What the lake can show of one property's schema rules, as a predicate that is never an error.

    A missing field is a NULL column: a required one must be non-NULL (NULL fails every comparison and
    ``regexp_like``), an optional one may be. Integer-ness needs no check (the column is ``int``);
    ``timestamp`` is checked by parsing it (``utc_time``).
    """
    unknown = spec.keys() - _SCHEMA_KEYWORDS
    if unknown:
        raise ValueError(f"contract property {name!r} uses {sorted(unknown)}: teach the curated view about it")
    column = f'"{name}"'
    checks = []
    if name == "timestamp":
        checks.append("utc_time IS NOT NULL")
    elif "pattern" in spec:
        checks.append(f"regexp_like({column}, '{_anchored(spec['pattern'])}')")
    if spec["type"] == "number":
        # NaN fails every comparison in Trino already; said outright, it also fails on engines that drop
        # a range check Parquet statistics seem to satisfy, statistics that leave NaN out (DuckDB 2.0,
        # duckdb/duckdb#25521).
        checks.append(f"NOT is_nan({column})")
    if "minimum" in spec:
        checks.append(f"{column} >= {spec['minimum']}")
    if "maximum" in spec:
        checks.append(f"{column} <= {spec['maximum']}")
    check = " AND ".join(checks) or f"{column} IS NOT NULL"
    return check if required else f"({column} IS NULL OR ({check}))"


def _valid_columns() -> str:
    """The lake's columns as ``valid_readings`` shows them: an absent optional field takes its default."""
    properties: dict[str, dict[str, Any]] = reading_schema()["properties"]
    return ", ".join(
        f'coalesce("{name}", {spec["default"]}) AS "{name}"' if "default" in spec else f'"{name}"'
        for name, spec in properties.items()
    )


def _copy_order() -> str:
    """Every column but ``sensor_id``, in the lake's order (absent optional fields first): with ``dt``
    before them, which copy of a reading is kept never depends on the order of files or rows."""
    return ", ".join(f'"{c.name}" NULLS FIRST' for c in lake_columns() if c.name != "sensor_id")


def valid_readings_cte(table: str, days: int) -> str:
    """``WITH ... valid_readings AS (...)``: the contract's valid readings in the lake, each reading once.

    Rows are read from the ``dt`` partitions of today (UTC) and the ``days`` before it only: the filter
    sits on the table itself, so Athena prunes the other partitions. Then:

    - **valid**: every rule of ``contracts/traffic-reading.schema.json`` the columns can show (required
      fields non-NULL, the id patterns, the ranges, and ``timestamp`` an RFC 3339 date-time with an
      offset as the schema's pattern and ``lambdas/common/contract.py`` ``parse_instant`` read it: a
      real date, hour <= 23, minute <= 59, offset <= 23:59, year not 0000, no leap second, at most nine
      fraction digits). The checks use ``regexp_like`` and ``try_cast`` only, so no row can fail a query.
    - **each once**: copies of a reading (same ``sensor_id`` and instant, however the instant is written)
      collapse to one: the copy delivered first (earliest ``dt``), then the smallest by the other
      columns in the lake's order (``segment_id``, ``timestamp`` as written, ...), so the choice never
      depends on the order of files or rows. The processor keeps
      the first copy in stream order; the lake does not record that order, and a republished copy
      usually carries the same values anyway.

    What the lake cannot show is not checked: it holds no Kinesis partition key (the thing name), so
    ``sensor_mismatch`` is not judged, and no arrival time, so neither ``future_timestamp`` nor
    ``stale_timestamp`` are; a number is the double Firehose stored, not the decimal the sensor wrote,
    so a value a hair outside a range (``300.0000000000000001``) may round into it.

    Columns: the lake's (``speed_limit_kmh`` and ``interval_seconds`` with their defaults), ``dt``,
    ``utc_time`` (the instant in UTC, a ``timestamp`` truncated to the second) and ``nanos`` (its
    fraction of a second, nine digits).
    """
    ts = '"timestamp"'
    pattern = _anchored(reading_schema()["properties"]["timestamp"]["pattern"])
    required = set(reading_schema()["required"])
    checks = "\n      AND ".join(
        _column_check(name, spec, name in required) for name, spec in reading_schema()["properties"].items()
    )
    columns = ", ".join(f'"{c.name}"' for c in lake_columns())
    return f"""WITH lake AS (
    SELECT {columns}, {PARTITION_KEY}
    FROM {table}
    WHERE {PARTITION_KEY} >= date_format(current_date - interval '{days}' day, '%Y-%m-%d')
),
parts AS (
    SELECT *,
           regexp_like({ts}, '{pattern}') AS well_formed,
           try_cast(substr({ts}, 12, 2) AS integer) AS hour_part,
           try_cast(substr({ts}, 15, 2) AS integer) AS minute_part,
           CASE WHEN upper(substr({ts}, length({ts}), 1)) = 'Z' THEN 0
                ELSE try_cast(substr({ts}, length({ts}) - 4, 2) AS integer) END AS offset_hours,
           CASE WHEN upper(substr({ts}, length({ts}), 1)) = 'Z' THEN 0
                ELSE try_cast(substr({ts}, length({ts}) - 1, 2) AS integer) END AS offset_minutes,
           CASE WHEN substr({ts}, length({ts}) - 5, 1) = '-' THEN -1 ELSE 1 END AS offset_sign,
           try_cast(concat(substr({ts}, 1, 10), ' ', substr({ts}, 12, 8)) AS timestamp) AS local_time
    FROM lake
),
timed AS (
    SELECT *,
           CASE WHEN well_formed AND substr({ts}, 1, 4) <> '0000' AND hour_part <= 23 AND minute_part <= 59
                     AND offset_hours <= 23 AND offset_minutes <= 59
                THEN date_add('minute', -offset_sign * (offset_hours * 60 + offset_minutes), local_time)
           END AS utc_time,
           rpad(coalesce(regexp_extract({ts}, '\\.([0-9]+)', 1), ''), 9, '0') AS nanos
    FROM parts
),
valid AS (
    SELECT *,
           row_number() OVER (
               PARTITION BY sensor_id, utc_time, nanos
               ORDER BY {PARTITION_KEY}, {_copy_order()}
           ) AS copy_rank
    FROM timed
    WHERE {checks}
),
{VALID_READINGS} AS (
    SELECT {_valid_columns()}, {PARTITION_KEY}, utc_time, nanos
    FROM valid
    WHERE copy_rank = 1
)"""


@dataclass(frozen=True)
class NamedQuery:
    """An Athena named query over :func:`valid_readings_cte` (never the raw table)."""

    query_id: str
    description: str
    days: int
    """UTC delivery dates read: today's and the ``days`` before it (partition pruning on ``dt``)."""
    body: str
    """The query proper, reading ``valid_readings``."""

    def sql(self, table: str) -> str:
        """The query's full Athena (Trino) text over ``table`` (``database.table``)."""
        return f"{valid_readings_cte(table, self.days)}\n{self.body}"


NOW_UTC = "cast(current_timestamp AT TIME ZONE 'UTC' AS timestamp)"
"""Now as a UTC ``timestamp``, comparable with ``utc_time`` whatever the session's time zone."""

NAMED_QUERIES: tuple[NamedQuery, ...] = (
    NamedQuery(
        "worst-segments-24h",
        "Segments with the lowest vehicle-weighted speed relative to their limit in the last 24 hours"
        " (valid readings, each once)",
        1,
        # utc_time is truncated to the second, so the bound is too: then the comparison is exact.
        f"""SELECT segment_id,
       sum(vehicle_count) AS vehicles,
       sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0) AS average_speed_kmh,
       min(speed_limit_kmh) AS speed_limit_kmh,
       avg(occupancy_percent) AS occupancy_percent
FROM {VALID_READINGS}
WHERE utc_time >= date_trunc('second', {NOW_UTC}) - interval '24' hour
GROUP BY segment_id
HAVING sum(vehicle_count) > 0
ORDER BY sum(vehicle_count * average_speed_kmh) / sum(vehicle_count) / min(speed_limit_kmh), segment_id
LIMIT 20""",
    ),
    NamedQuery(
        "hourly-volume-per-segment",
        "Vehicles per hour (UTC) for each segment over the last 7 days (valid readings, each once)",
        7,
        f"""SELECT segment_id,
       date_trunc('hour', utc_time) AS hour,
       sum(vehicle_count) AS vehicles,
       count(*) AS readings
FROM {VALID_READINGS}
GROUP BY 1, 2
ORDER BY 1, 2""",
    ),
    NamedQuery(
        "speed-profile-by-hour-of-day",
        "Vehicle-weighted mean speed per segment and hour of day (UTC) over the last 30 days"
        " (valid readings, each once)",
        30,
        f"""SELECT segment_id,
       hour(utc_time) AS hour_of_day,
       sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0) AS average_speed_kmh,
       sum(vehicle_count) AS vehicles
FROM {VALID_READINGS}
GROUP BY 1, 2
ORDER BY 1, 2""",
    ),
)
