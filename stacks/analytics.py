"""The data lake path: Firehose archives the raw stream as Parquet, Glue catalogs it, Athena queries it."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from enum import Enum
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

from lambdas.common.contract import DEFAULT_INTERVAL_SECONDS, REASONS
from stacks.capacity import ATHENA_LONGEST_SCAN_DAYS, Capacity, athena_cutoff_bytes, athena_scan_bytes, model
from stacks.context import StackContext
from stacks.dated_table import PARQUET, PARTITION_KEY, dated_table
from stacks.iam import KINESIS_READ_ACTIONS, ServiceRole, Statement
from stacks.naming import Kind
from stacks.quarantine_catalog import QUARANTINED, QuarantineCatalog, quarantined_cte
from stacks.schema import lake_columns, reading_schema

LAKE_PREFIX = "readings/"
LAKE_ERROR_PREFIX = "firehose-errors/"
FIREHOSE_LOG_STREAM = "S3Delivery"


@dataclass(frozen=True)
class AnalyticsProps:
    """Props of :class:`Analytics`."""

    kms_key_arn: str
    stream_arn: str
    lake_bucket_name: str
    lake_bucket_arn: str
    results_bucket_name: str
    quarantine_bucket_name: str
    """Bucket the processor quarantines rejected records in (catalogued under ``rejected/``)."""


class Analytics(Construct):
    """Glue catalog (the lake and the quarantine), Firehose delivery to the lake, and the Athena workgroup
    with named queries."""

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
        self.table = dated_table(
            self,
            "readings-table",
            database_name=self.database.name,
            name=self.table_name,
            description="Sensor readings as Parquet, partitioned by UTC delivery date (dt=YYYY-MM-DD)",
            location=location,
            storage=PARQUET,
            columns=lake_columns(),
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
                bytes_scanned_cutoff_per_query=athena_cutoff_bytes(model(config.fleet, config.pipeline)),
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
        self.quarantine = QuarantineCatalog(
            self, "quarantine", ctx, database_name=self.database.name, bucket_name=props.quarantine_bucket_name
        )
        self.named_queries = [
            AthenaNamedQuery(
                self,
                f"query-{query.query_id}",
                name=namer.name(Kind.ATHENA_QUERY, query.query_id),
                description=query.description,
                database=self.database.name,
                workgroup=self.workgroup.name,
                query=query.sql(
                    f"{self.database.name}.{self.table_name}", f"{self.database.name}.{self.quarantine.table_name}"
                ),
            )
            for query in NAMED_QUERIES
        ]


VALID_READINGS = "valid_readings"
"""The common table expression the named queries read the lake through: the contract's valid readings,
each once."""
VALID_COPIES = "valid"
"""The common table expression of :func:`valid_readings_cte` before it keeps one copy of each reading:
every valid row read, ``copy_rank`` 1 for the copy kept and 2, 3, ... for the other copies."""

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
{VALID_COPIES} AS (
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
    FROM {VALID_COPIES}
    WHERE copy_rank = 1
)"""


class Source(Enum):
    """A store a named query reads, always through its curated common table expression."""

    READINGS = "readings"
    """The lake's readings, through :func:`valid_readings_cte` (``valid_readings``, ``valid``)."""
    QUARANTINE = "quarantine"
    """The quarantined records, through :func:`stacks.quarantine_catalog.quarantined_cte` (``quarantined``)."""


@dataclass(frozen=True)
class NamedQuery:
    """An Athena named query over the curated common table expressions of its sources (never a raw table)."""

    query_id: str
    description: str
    days: int
    """UTC dates read from each source: today's and the ``days`` before it (partition pruning on ``dt``)."""
    body: str
    """The query proper, reading the curated expressions and :attr:`ctes`."""
    sources: tuple[Source, ...] = (Source.READINGS,)
    """The stores read; default the lake only."""
    ctes: tuple[tuple[str, str], ...] = ()
    """Further common table expressions ``(name, query)`` after the curated ones; default none."""

    def sql(self, readings_table: str, quarantine_table: str) -> str:
        """The query's full Athena (Trino) text over the lake's and the quarantine's tables
        (``database.table``); a query over the lake alone starts with :func:`valid_readings_cte`."""
        blocks = []
        if Source.READINGS in self.sources:
            blocks.append(valid_readings_cte(readings_table, self.days).removeprefix("WITH "))
        if Source.QUARANTINE in self.sources:
            blocks.append(quarantined_cte(quarantine_table, self.days))
        blocks += [f"{name} AS (\n{textwrap.indent(query, '    ')}\n)" for name, query in self.ctes]
        return "WITH " + ",\n".join(blocks) + "\n" + self.body


NOW_UTC = "cast(current_timestamp AT TIME ZONE 'UTC' AS timestamp)"
"""Now as a UTC ``timestamp``, comparable with ``utc_time`` whatever the session's time zone."""
CURRENT_HOUR = f"date_trunc('hour', {NOW_UTC})"
"""The start of the current UTC hour: the ledger and the baselines count whole hours before it."""
TODAY_START = f"date_trunc('day', {NOW_UTC})"
"""Today's UTC midnight."""

# --- the data-quality ledger -----------------------------------------------------------------------------------

LEDGER_HOURS = 24
"""The ledger's hours: the 24 whole UTC hours before the current one."""
LEDGER_DAYS = 2
"""Days of ``dt`` folders the ledger reads before today, in the lake and the quarantine alike: its first hour
starts on yesterday's date at the earliest, a reading may be delivered up to the contract's 300 s before
its own instant, and a quarantine object sits under the arrival date of its batch's first record."""
LEDGER_START = f"{CURRENT_HOUR} - interval '{LEDGER_HOURS}' hour"
DATA_QUALITY = "data_quality"
"""The ledger's common table expression: one row per sensor and hour."""


def _in_ledger(column: str) -> str:
    return f"{column} >= {LEDGER_START} AND {column} < {CURRENT_HOUR}"


def _ledger_ctes() -> tuple[tuple[str, str], ...]:
    """The data-quality ledger, one row per sensor and UTC hour of the last :data:`LEDGER_HOURS` whole hours.

    - ``received``: the sensor's distinct valid readings (``valid_readings``) whose instant is in the hour;
      ``duplicates``: the other valid copies of those readings in the lake (``copy_rank`` > 1).
    - ``expected``: ``3600 / interval_seconds`` of the sensor's newest reading at or before the hour's end
      (among the readings read, the hours before the ledger's first included), 3600 / 60 without one.
    - ``quarantined`` and one column per reason code: the quarantined records counted for the sensor (the
      thing name they were published under) that arrived in the hour.

    A sensor has a row for an hour once it has a valid reading at or before that hour's end (it is in the
    fleet, as the contract's silent-sensor rule says), and for any hour with a quarantined record of its own.
    """
    bucket = f"greatest(date_trunc('hour', utc_time), {LEDGER_START} - interval '1' hour)"
    reasons = "".join(f",\n       count_if(reason = '{reason}') AS {reason}" for reason in REASONS)
    reason_columns = "".join(f",\n           coalesce(q.{reason}, 0) AS {reason}" for reason in REASONS)
    reason_names = "".join(f", {reason}" for reason in REASONS)
    to_date = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    expected = f"3600e0 / coalesce(interval_seconds, {DEFAULT_INTERVAL_SECONDS})"
    return (
        (
            # Readings before the first hour share one bucket, the hour before it: its newest reading
            # says whether the sensor is in the fleet and what interval it declared.
            "reading_hours",
            f"""SELECT sensor_id, hour, count(*) AS received, max(CASE WHEN newest = 1 THEN interval_seconds END) AS interval_seconds
FROM (
    SELECT sensor_id, hour, interval_seconds,
           row_number() OVER (PARTITION BY sensor_id, hour ORDER BY utc_time DESC, nanos DESC) AS newest
    FROM (SELECT sensor_id, interval_seconds, utc_time, nanos, {bucket} AS hour
          FROM {VALID_READINGS}
          WHERE utc_time < {CURRENT_HOUR}) AS bucketed
) AS ranked
GROUP BY sensor_id, hour""",
        ),
        (
            "copy_hours",
            f"""SELECT sensor_id, date_trunc('hour', utc_time) AS hour, count(*) AS duplicates
FROM {VALID_COPIES}
WHERE copy_rank > 1 AND {_in_ledger("utc_time")}
GROUP BY sensor_id, date_trunc('hour', utc_time)""",
        ),
        (
            "quarantine_hours",
            f"""SELECT sensor_id, date_trunc('hour', arrival_time) AS hour,
       count(*) AS quarantined{reasons}
FROM {QUARANTINED}
WHERE {_in_ledger("arrival_time")}
GROUP BY sensor_id, date_trunc('hour', arrival_time)""",
        ),
        (
            "sensor_hours",
            f"""SELECT sensor_id, hour
FROM (SELECT sensor_id FROM reading_hours UNION SELECT sensor_id FROM quarantine_hours) AS sensors
CROSS JOIN UNNEST(sequence({LEDGER_START} - interval '1' hour, {CURRENT_HOUR} - interval '1' hour, interval '1' hour)) AS hours (hour)""",
        ),
        (
            DATA_QUALITY,
            f"""SELECT sensor_id, hour, {expected} AS expected, received,
       received / ({expected}) AS completeness, duplicates, quarantined{reason_names}
FROM (
    SELECT g.sensor_id, g.hour,
           count(r.hour) OVER (PARTITION BY g.sensor_id ORDER BY g.hour {to_date}) AS hours_with_readings,
           last_value(r.interval_seconds) IGNORE NULLS OVER (PARTITION BY g.sensor_id ORDER BY g.hour {to_date})
               AS interval_seconds,
           coalesce(r.received, 0) AS received,
           coalesce(c.duplicates, 0) AS duplicates,
           coalesce(q.quarantined, 0) AS quarantined{reason_columns}
    FROM sensor_hours AS g
    LEFT JOIN reading_hours AS r ON r.sensor_id = g.sensor_id AND r.hour = g.hour
    LEFT JOIN copy_hours AS c ON c.sensor_id = g.sensor_id AND c.hour = g.hour
    LEFT JOIN quarantine_hours AS q ON q.sensor_id = g.sensor_id AND q.hour = g.hour
) AS ledger
WHERE hour >= {LEDGER_START} AND (hours_with_readings > 0 OR quarantined > 0)""",
        ),
    )


# --- baselines ----------------------------------------------------------------------------------------------------

BASELINE_WEEKS = 4
"""Weeks a baseline is computed over: the 4 x 7 whole UTC days before today, so each hour of the week has
(at most) 4 samples, one per week, and today is compared with weeks it is not part of."""
BASELINE_DAYS = 7 * BASELINE_WEEKS + 1
"""Days of ``dt`` folders read before today: the baseline's first day, and the one before it for readings
delivered up to the contract's 300 s before their own instant."""
BASELINE_MIN_WEEKS = 2
"""Samples (hours of past weeks) a baseline needs before today's hour is compared with it: one week alone
is no usual."""
BASELINE_START = f"{TODAY_START} - interval '{7 * BASELINE_WEEKS}' day"
BASELINES = "baselines"
"""The baselines' common table expression: one row per segment, ISO day of week and hour of day (UTC)."""


def _percentile(value: str, rank: str, count: str, percent: int) -> str:
    """The exact ``percent``-th percentile of a group's ``value``s, interpolated linearly between the two
    closest ranks (as numpy's default, ``PERCENTILE_CONT`` and Excel's ``PERCENTILE.INC``): rank
    ``percent * (count - 1) / 100`` counted from 0. ``rank`` is the row's 0-based rank by ``value`` and
    ``count`` the group's number of non-NULL values, both window functions of the row; the position is
    split with integer arithmetic, so no rounding picks the ranks. NULL for a group of no values."""
    position = f"{percent} * ({count} - 1)"
    low = f"floor({position} / 1e2)"
    weight = f"({position} % 100) / 1e2"
    return (
        f"sum(CASE WHEN {rank} = {low} THEN {value} * (1 - {weight})"
        f" WHEN {rank} = {low} + 1 THEN {value} * {weight} END)"
    )


def _baseline_ctes() -> tuple[tuple[str, str], ...]:
    """Each segment's volume and speed per UTC hour (the contract's aggregate of its distinct readings:
    ``vehicles`` the sum of ``vehicle_count``, ``average_speed_kmh`` the vehicle-weighted mean, NULL without
    vehicles) from the baseline's first day to the current hour, then per segment and hour of the week the
    median and 85th percentile of each over the :data:`BASELINE_WEEKS` weeks before today.

    An hour without a valid reading of the segment is no sample (nothing is known of it), and an hour
    without vehicles is no speed sample. Percentiles are exact (:func:`_percentile`), not
    ``approx_percentile``: there are at most :data:`BASELINE_WEEKS` samples per group, so exactness costs
    nothing, and the answer is the same on every engine and every run."""
    partition = "PARTITION BY segment_id, day_of_week(hour_start), hour(hour_start)"
    stats = ",\n       ".join(
        f"{_percentile(value, rank, count, percent)} AS {name}"
        for value, rank, count, names in (
            ("vehicles", "volume_rank", "volume_hours", ("median_vehicles", "p85_vehicles")),
            ("average_speed_kmh", "speed_rank", "speed_hours", ("median_speed_kmh", "p85_speed_kmh")),
        )
        for percent, name in zip((50, 85), names, strict=True)
    )
    return (
        (
            "segment_hours",
            f"""SELECT segment_id, date_trunc('hour', utc_time) AS hour_start,
       sum(vehicle_count) AS vehicles,
       sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0) AS average_speed_kmh
FROM {VALID_READINGS}
WHERE utc_time >= {BASELINE_START} AND utc_time < {CURRENT_HOUR}
GROUP BY segment_id, date_trunc('hour', utc_time)""",
        ),
        (
            "baseline_samples",
            f"""SELECT segment_id, day_of_week(hour_start) AS day_of_week, hour(hour_start) AS hour_of_day,
       vehicles, average_speed_kmh,
       row_number() OVER ({partition} ORDER BY vehicles) - 1 AS volume_rank,
       count(*) OVER ({partition}) AS volume_hours,
       row_number() OVER ({partition} ORDER BY average_speed_kmh NULLS LAST) - 1 AS speed_rank,
       count(average_speed_kmh) OVER ({partition}) AS speed_hours
FROM segment_hours
WHERE hour_start < {TODAY_START}""",
        ),
        (
            BASELINES,
            f"""SELECT segment_id, day_of_week, hour_of_day,
       max(volume_hours) AS volume_hours,
       max(speed_hours) AS speed_hours,
       {stats}
FROM baseline_samples
GROUP BY segment_id, day_of_week, hour_of_day""",
        ),
    )


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
    NamedQuery(
        "data-quality-ledger-24h",
        "Data-quality ledger: per sensor and UTC hour of the last 24 whole hours, readings expected"
        " (3600 / interval_seconds), received (distinct valid readings), duplicates, and records quarantined"
        " per reason code (counted for the thing name they were published under, in the hour they arrived)",
        LEDGER_DAYS,
        f"""SELECT *
FROM {DATA_QUALITY}
ORDER BY sensor_id, hour""",
        sources=(Source.READINGS, Source.QUARANTINE),
        ctes=_ledger_ctes(),
    ),
    NamedQuery(
        "least-complete-sensors-24h",
        "The 100 least complete sensors over the last 24 whole hours (UTC): completeness = received /"
        " expected readings, lowest first (data-quality ledger)",
        LEDGER_DAYS,
        f"""SELECT sensor_id,
       count(*) AS hours,
       sum(expected) AS expected,
       sum(received) AS received,
       sum(received) / sum(expected) AS completeness,
       count_if(received = 0) AS hours_without_readings,
       sum(duplicates) AS duplicates,
       sum(quarantined) AS quarantined
FROM {DATA_QUALITY}
GROUP BY sensor_id
ORDER BY completeness, sensor_id
LIMIT 100""",
        sources=(Source.READINGS, Source.QUARANTINE),
        ctes=_ledger_ctes(),
    ),
    NamedQuery(
        "sensors-sending-invalid-data-24h",
        "Records quarantined per sensor (the thing name they were published under) and reason code over the"
        " last 24 whole hours (UTC) of arrival, most first, each record once",
        LEDGER_DAYS,
        f"""SELECT sensor_id, reason,
       count(*) AS records,
       min(arrival_time) AS first_arrival,
       max(arrival_time) AS last_arrival,
       min(detail) AS example_detail
FROM {QUARANTINED}
WHERE {_in_ledger("arrival_time")}
GROUP BY sensor_id, reason
ORDER BY records DESC, sensor_id, reason
LIMIT 100""",
        sources=(Source.QUARANTINE,),
    ),
    NamedQuery(
        "segment-baselines-by-hour-of-week",
        f"Per segment, ISO day of week and hour of day (UTC): median and 85th percentile of the hour's"
        f" vehicles and vehicle-weighted mean speed over the {BASELINE_WEEKS} weeks before today (exact,"
        f" interpolated; valid readings, each once)",
        BASELINE_DAYS,
        f"""SELECT *
FROM {BASELINES}
ORDER BY segment_id, day_of_week, hour_of_day""",
        ctes=_baseline_ctes(),
    ),
    NamedQuery(
        "segment-hours-furthest-from-baseline-today",
        f"Today's whole UTC hours per segment furthest from their hour-of-week baseline ({BASELINE_WEEKS}"
        f" weeks): the larger of the relative departures of vehicles and of speed from their medians, 50"
        f" largest first",
        BASELINE_DAYS,
        f"""SELECT segment_id, hour, vehicles, median_vehicles, p85_vehicles,
       average_speed_kmh, median_speed_kmh, p85_speed_kmh, volume_departure, speed_departure,
       CASE WHEN speed_departure > volume_departure THEN speed_departure ELSE volume_departure END AS departure
FROM (
    SELECT t.segment_id, t.hour_start AS hour, t.vehicles, b.median_vehicles, b.p85_vehicles,
           t.average_speed_kmh, b.median_speed_kmh, b.p85_speed_kmh,
           abs(t.vehicles - b.median_vehicles) / greatest(b.median_vehicles, 1e0) AS volume_departure,
           CASE WHEN b.speed_hours >= {BASELINE_MIN_WEEKS}
                THEN abs(t.average_speed_kmh - b.median_speed_kmh) / nullif(b.median_speed_kmh, 0)
           END AS speed_departure
    FROM segment_hours AS t
    JOIN {BASELINES} AS b
      ON b.segment_id = t.segment_id AND b.day_of_week = day_of_week(t.hour_start)
     AND b.hour_of_day = hour(t.hour_start)
    WHERE t.hour_start >= {TODAY_START} AND b.volume_hours >= {BASELINE_MIN_WEEKS}
) AS today
ORDER BY departure DESC, segment_id, hour
LIMIT 50""",
        ctes=_baseline_ctes(),
    ),
)


def estimated_scan_bytes(query: NamedQuery, capacity: Capacity) -> float:
    """What ``query`` is estimated to scan at the fleet ``capacity`` models (``stacks.capacity``)."""
    return athena_scan_bytes(
        capacity, query.days, lake=Source.READINGS in query.sources, quarantine=Source.QUARANTINE in query.sources
    )


_too_long = [q.query_id for q in NAMED_QUERIES if q.days + 1 > ATHENA_LONGEST_SCAN_DAYS]
if _too_long:  # the workgroup's cutoff is sized for the longest scan: raise it with the query
    raise ValueError(f"named queries {_too_long} read more than ATHENA_LONGEST_SCAN_DAYS={ATHENA_LONGEST_SCAN_DAYS}")
