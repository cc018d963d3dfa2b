"""Typed, frozen, validated configuration of every environment.

Everything that differs between environments lives here and nowhere else. Each value is checked when
its dataclass is constructed, so a bad value stops synth before any resource is built, with a message
that names the environment and the field (``environment 'dev': field 'processor.memory_mb': ...``).
No network calls: this module is imported by the tests and by ``main.py`` before the provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from itertools import pairwise

from stacks.capacity import CapacityError, DynamoDBCapacity, Fleet, Pipeline, model, violations
from stacks.naming import Kind, NamingError, check, validate_suffix

# Values CloudWatch Logs accepts for retention_in_days.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
S3_IA_MINIMUM_DAYS = 30
"""S3 lifecycle: objects stay at least 30 days in STANDARD before STANDARD_IA, and 30 days in STANDARD_IA
before a further transition; a rule asking for less is refused."""
UNRESERVED_MINIMUM = 100
SILENCE_CHECK_TIMEOUT_LIMIT = 55
"""The silence check runs every minute: a run must end before the next one starts."""
"""Concurrent executions Lambda keeps unreserved in every account (PutFunctionConcurrency refuses more)."""
PARTIALS_RETENTION_MS = 24 * 3_600_000
"""The partials stream keeps a record 24 hours: the folder's lag alarm must fire before records are lost."""
STATE_BUCKET_PREFIX = "tap-traffic-tfstate"
"""Default state bucket: ``tap-traffic-tfstate-<account id>-<region>`` (S3 bucket names are global: a
name without the account belongs to whoever creates it first)."""
PLACEHOLDER_ACCOUNT_ID = "000000000000"
"""Stands for the account when ``TF_STATE_ACCOUNT_ID`` is unset: synthesis for review works without an
account; the bootstrap stack refuses to create the bucket under it (``StateConfig.account_id``)."""
STATE_KEY_ALIAS = "alias/tap/terraform-state"
"""The state key the bootstrap stack creates; the S3 backend encrypts state, lock and digest with it."""
_ACCOUNT_ID = re.compile(r"\d{12}")
_KMS_KEY = re.compile(
    r"alias/[a-zA-Z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[0-9a-f-]+|key/mrk-[0-9a-f]{32}|alias/[a-zA-Z0-9/_-]+)"
)


def default_state_bucket(account_id: str, region: str) -> str:
    return f"{STATE_BUCKET_PREFIX}-{account_id}-{region}"


DEFAULT_STATE_BUCKET = default_state_bucket(PLACEHOLDER_ACCOUNT_ID, "us-east-1")
ACCESS_LOG_SUFFIX = "-access-logs"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the environment and the field."""

    def __init__(self, environment: str, field_name: str, message: str) -> None:
        self.environment = environment
        self.field_name = field_name
        super().__init__(f"environment {environment!r}: field {field_name!r}: {message}")


class StreamMode(StrEnum):
    """Kinesis capacity mode."""

    ON_DEMAND = "ON_DEMAND"
    PROVISIONED = "PROVISIONED"


def _int(env: str, name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(env, name, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(env, name, f"must be between {low} and {high}, got {value}")


def _optional_int(env: str, name: str, value: object, low: int, high: int) -> None:
    if value is not None:
        _int(env, name, value, low, high)


@dataclass(frozen=True)
class FunctionSettings:
    """Sizing of one Lambda function."""

    memory_mb: int = 256
    """Memory (and so CPU share), 128-10240 MB."""
    timeout_seconds: int = 60
    """Timeout, 1-900 s."""
    reserved_concurrency: int | None = None
    """Reserved concurrency; ``None`` uses the account's unreserved pool."""

    def validate(self, env: str, prefix: str) -> None:
        _int(env, f"{prefix}.memory_mb", self.memory_mb, 128, 10240)
        _int(env, f"{prefix}.timeout_seconds", self.timeout_seconds, 1, 900)
        _optional_int(env, f"{prefix}.reserved_concurrency", self.reserved_concurrency, 1, 1000)


@dataclass(frozen=True)
class AlarmThresholds:
    """Thresholds of the CloudWatch alarms (each evaluated over 5-minute periods)."""

    processor_errors: int = 1
    """Processor invocation errors per period."""
    processor_throttles: int = 1
    """Processor throttles per period."""
    iterator_age_ms: int = 60_000
    """Maximum age of the last record the processor read; must stay below the record age limit."""
    folder_errors: int = 1
    """Folder invocation errors per period."""
    folder_throttles: int = 1
    """Folder throttles per period."""
    folder_iterator_age_ms: int = 300_000
    """Maximum age of the last partials-stream record the folder read (the stream keeps 24 h)."""
    firehose_failed_conversions: int = 1
    """Records per period that Firehose could not convert to Parquet (they land in the error prefix)."""
    dlq_messages: int = 1
    """Visible messages in the processor's dead-letter queue."""
    firehose_freshness_seconds: int = 900
    """Age of the oldest record not yet delivered to the lake."""
    iot_rule_failures: int = 1
    """Failed actions of the ingestion topic rule per period."""
    congestion_alerts: int = 5
    """Segment windows entering heavy or severe congestion per period."""
    silent_sensors: int = 1
    """Sensors silent at once (contract "Silent sensors"; the silence check's ``SilentSensors``)."""
    silence_errors: int = 1
    """Silence check invocation errors per period."""
    provisioning_refused: int = 1
    """Provisioning requests the pre-provisioning hook refused per period (any reason)."""
    dynamodb_throttle_events: int = 1
    """Throttled reads or writes per period of any table or index (``WriteThrottleEvents``/``ReadThrottleEvents``):
    a replay's burst before auto scaling catches up, or a hot key (README "DynamoDB capacity")."""

    def validate(self, env: str) -> None:
        _int(env, "alarms.processor_errors", self.processor_errors, 1, 1_000_000)
        _int(env, "alarms.processor_throttles", self.processor_throttles, 1, 1_000_000)
        _int(env, "alarms.iterator_age_ms", self.iterator_age_ms, 1_000, 604_800_000)
        _int(env, "alarms.folder_errors", self.folder_errors, 1, 1_000_000)
        _int(env, "alarms.folder_throttles", self.folder_throttles, 1, 1_000_000)
        _int(env, "alarms.folder_iterator_age_ms", self.folder_iterator_age_ms, 1_000, PARTIALS_RETENTION_MS - 1)
        _int(env, "alarms.firehose_failed_conversions", self.firehose_failed_conversions, 1, 1_000_000)
        _int(env, "alarms.dlq_messages", self.dlq_messages, 1, 1_000_000)
        _int(env, "alarms.firehose_freshness_seconds", self.firehose_freshness_seconds, 60, 86_400)
        _int(env, "alarms.iot_rule_failures", self.iot_rule_failures, 1, 1_000_000)
        _int(env, "alarms.congestion_alerts", self.congestion_alerts, 1, 1_000_000)
        _int(env, "alarms.silent_sensors", self.silent_sensors, 1, 10_000_000)
        _int(env, "alarms.silence_errors", self.silence_errors, 1, 1_000_000)
        _int(env, "alarms.provisioning_refused", self.provisioning_refused, 1, 1_000_000)
        _int(env, "alarms.dynamodb_throttle_events", self.dynamodb_throttle_events, 1, 1_000_000)


@dataclass(frozen=True)
class DataLifecycle:
    """How long data is kept, in days. ``None`` keeps it (no transition or no expiry)."""

    lake_infrequent_access_days: int | None = None
    """Move lake objects to STANDARD_IA after this many days (S3 requires at least 30)."""
    lake_glacier_days: int | None = None
    """Move lake objects to GLACIER_IR after this many days."""
    lake_expiration_days: int | None = 30
    """Delete lake objects after this many days; ``None`` keeps the lake forever."""
    quarantine_expiration_days: int = 30
    """Delete quarantined records after this many days."""
    athena_results_expiration_days: int = 7
    """Delete Athena query results after this many days."""
    access_logs_expiration_days: int = 90
    """Delete S3 access logs after this many days."""
    noncurrent_version_days: int = 7
    """Delete noncurrent object versions after this many days."""
    aggregate_ttl_days: int = 7
    """DynamoDB TTL of per-window aggregates."""

    def validate(self, env: str) -> None:
        _optional_int(
            env, "lifecycle.lake_infrequent_access_days", self.lake_infrequent_access_days, S3_IA_MINIMUM_DAYS, 36_500
        )
        _optional_int(env, "lifecycle.lake_glacier_days", self.lake_glacier_days, 1, 36_500)
        _optional_int(env, "lifecycle.lake_expiration_days", self.lake_expiration_days, 1, 36_500)
        _int(env, "lifecycle.quarantine_expiration_days", self.quarantine_expiration_days, 1, 36_500)
        _int(env, "lifecycle.athena_results_expiration_days", self.athena_results_expiration_days, 1, 36_500)
        _int(env, "lifecycle.access_logs_expiration_days", self.access_logs_expiration_days, 1, 36_500)
        _int(env, "lifecycle.noncurrent_version_days", self.noncurrent_version_days, 1, 36_500)
        _int(env, "lifecycle.aggregate_ttl_days", self.aggregate_ttl_days, 1, 3_650)
        steps = [
            ("lifecycle.lake_infrequent_access_days", self.lake_infrequent_access_days),
            ("lifecycle.lake_glacier_days", self.lake_glacier_days),
            ("lifecycle.lake_expiration_days", self.lake_expiration_days),
        ]
        present = [(n, v) for n, v in steps if v is not None]
        for (prev_name, prev), (name, value) in pairwise(present):
            if value <= prev:
                raise ConfigError(env, name, f"must be greater than {prev_name} ({prev}), got {value}")
        # S3 refuses a rule that moves objects out of STANDARD_IA before they spent 30 days there
        # (STANDARD -> STANDARD_IA after 30 days is the range check above).
        ia, glacier, days = self.lake_infrequent_access_days, self.lake_glacier_days, S3_IA_MINIMUM_DAYS
        if ia is not None and glacier is not None and glacier < ia + days:
            raise ConfigError(
                env,
                "lifecycle.lake_glacier_days",
                f"must be at least lifecycle.lake_infrequent_access_days + {days} ({ia + days}): S3 keeps "
                f"objects {days} days in STANDARD_IA before their next transition, got {glacier}",
            )


PROVISIONING_HOOK_TIMEOUT_LIMIT = 5
"""AWS IoT waits 5 s for the pre-provisioning hook; a later answer is ACCESS_DENIED for the device."""
_ALLOW_LIST_SOURCE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.csv")


@dataclass(frozen=True)
class Onboarding:
    """How sensors join the environment: fleet provisioning by claim (``stacks.provisioning``) and bulk
    registration (``python -m tools.fleet``). The fleet's declared size is ``EnvironmentConfig.sensors``:
    ``tools.fleet`` refuses a batch that would take the fleet's thing group past it (the capacity model
    and the budget are sized for it)."""

    hook: FunctionSettings = field(default_factory=lambda: FunctionSettings(memory_mb=256, timeout_seconds=5))
    """Pre-provisioning hook Lambda sizing (timeout 1-5 s: IoT's limit)."""
    allow_list_source: str | None = None
    """CSV with a ``serial`` column, relative to the project (``fleet/<env>-serials.csv``), that
    ``python -m tools.fleet allow --env <env>`` loads into the allow-list; ``None``: serials are given
    on the command line (``--serials``) only."""
    claim_template_enabled: bool = True
    """Whether the claim template provisions at all: disable it between batches, and a leaked claim
    certificate onboards nothing."""

    def validate(self, env: str) -> None:
        if not isinstance(self.hook, FunctionSettings):
            raise ConfigError(env, "onboarding.hook", "must be a FunctionSettings")
        self.hook.validate(env, "onboarding.hook")
        _int(env, "onboarding.hook.timeout_seconds", self.hook.timeout_seconds, 1, PROVISIONING_HOOK_TIMEOUT_LIMIT)
        source = self.allow_list_source
        if source is not None and (
            not isinstance(source, str) or not _ALLOW_LIST_SOURCE.fullmatch(source) or ".." in source.split("/")
        ):
            raise ConfigError(
                env,
                "onboarding.allow_list_source",
                f"{source!r} must be a relative path to a .csv file inside the project (letters, digits, '_', "
                "'.', '-' and '/'; no '..')",
            )
        if not isinstance(self.claim_template_enabled, bool):
            raise ConfigError(
                env, "onboarding.claim_template_enabled", f"must be true or false, got {self.claim_template_enabled!r}"
            )


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between environments. Every field documents its default."""

    name: str
    """Profile name (``dev``, ``staging``, ``prod``); ad-hoc environments use the ``dev`` profile."""
    region: str = "us-east-1"
    """AWS region of the environment."""
    production: bool = False
    """Production keeps its data: deletion protection and ``prevent_destroy``, no ``force_destroy``."""
    stream_mode: StreamMode = StreamMode.PROVISIONED
    """Kinesis capacity mode."""
    shard_count: int | None = 1
    """Shards when provisioned; must be ``None`` on demand."""
    lambda_concurrency_quota: int = 1000
    """The account's Lambda concurrent-executions quota (Service Quotas ``L-B99A9384``; new accounts
    often have 10 or 50). Lambda refuses reservations that leave fewer than 100 unreserved executions,
    so the environments' reservations are checked against it (``Platform``)."""
    stream_retention_hours: int = 24
    """Kinesis retention, 24-8760 hours."""
    log_retention_days: int = 14
    """Retention of every log group; one of CloudWatch's allowed values."""
    processor: FunctionSettings = field(default_factory=FunctionSettings)
    """Processor Lambda sizing."""
    folder: FunctionSettings = field(default_factory=lambda: FunctionSettings(memory_mb=256, timeout_seconds=120))
    """Folder Lambda sizing (partials into segment aggregates and alerts). A full batch of partials of as many
    segment windows (a replay) takes ~52 s in the capacity model: the timeout allows twice that."""
    partials_shard_count: int = 1
    """Shards of the partials stream, 1-500 (provisioned: ``python -m tools.capacity`` sizes it; a shard
    takes 1,000 records a second, one record per segment window and processor batch)."""
    silence: FunctionSettings = field(default_factory=lambda: FunctionSettings(memory_mb=256, timeout_seconds=50))
    """Silence check Lambda sizing (it runs every minute: its timeout stays under a minute, 1-55 s)."""
    silence_factor: int = 3
    """Contract "Silent sensors": a sensor is silent when its newest accepted reading is more than this
    many of its reporting intervals old, 2-100. Higher: fewer outages for a sensor that misses a reading
    or two, later detection (``silence_factor x interval`` plus at most two minutes)."""
    fleet_retention_days: int = 7
    """A sensor leaves the fleet after this many days without an accepted reading, 1-365: its outage is
    closed without a recovery notice, and it no longer counts as silent."""
    batch_size: int = 10_000
    """Most records per processor invocation, 1-10000 (Kinesis's maximum: fewer requests per reading
    when catching up; the batching window decides how full batches are in steady state)."""
    batching_window_seconds: int = 1
    """How long the event source mapping gathers records, 0-300 s."""
    max_retry_attempts: int = 3
    """Retries of a failing batch before its records go to the DLQ (bounded, 0-10000)."""
    max_record_age_seconds: int = 3_600
    """Records older than this go to the DLQ (bounded, 60-604800 s)."""
    aggregation_window_seconds: int = 300
    """Length of a segment aggregation window; divides an hour."""
    max_reading_age_seconds: int = 86_400
    """Readings older than this at their arrival are quarantined as ``stale_timestamp`` (contract); at
    most ``lifecycle.aggregate_ttl_days``, so an accepted reading is never written already expired."""
    firehose_buffer_seconds: int = 300
    """How long Firehose buffers before writing a Parquet file to the lake, 60-900 s."""
    athena_bytes_scanned_cutoff: int | None = None
    """Per-query bytes-scanned cutoff of the Athena workgroup (at least 10 MB). ``None`` (the default): sized
    from the declared fleet, twice the longest named query's estimated scan in whole GiB
    (``stacks.capacity.athena_cutoff_bytes``; ``python -m tools.capacity --env <name>`` shows it). A value
    below that estimate stops synthesis: Athena would cancel that query every time."""
    alarms: AlarmThresholds = field(default_factory=AlarmThresholds)
    """Alarm thresholds."""
    lifecycle: DataLifecycle = field(default_factory=DataLifecycle)
    """Retention of data."""
    alert_email: str | None = None
    """E-mail subscribed to the alert topic; ``None`` subscribes nobody."""
    sensors: int = 40
    """Sensors the environment serves, 1-10,000,000 (dev 40 every 60 s, staging 1,000 and prod a city's
    10,000 every 20 s). With the three fields below it is the fleet the capacity model
    (``stacks.capacity``, ``python -m tools.capacity --env <name>``) checks the settings above against:
    synthesis stops, naming the field to change, when they cannot carry it."""
    reading_interval_seconds: int = 60
    """Seconds between two readings of one sensor, 1-86,400."""
    payload_bytes: int = 256
    """Bytes of one reading as published (a contract reading is ~190 bytes), 1 to IoT Core's 128 KB."""
    sensors_per_segment: int = 4
    """Sensors on the busiest road segment (its aggregate item is written for all of them), 1-100,000."""
    budget_margin: float = 1.5
    """The monthly cost budget is the capacity model's cost of the fleet times this (1-10): Budgets
    warns on the alert topic at 50 %, 80 % and 100 % of the month's actual spend and at 80 % and
    100 % of its forecast."""
    dynamodb_table_write_quota: int = 40_000
    """The account's on-demand table-level write quota, in write request units per second (Service Quotas;
    the default is 40,000): the sensor windows table must stay under it."""
    onboarding: Onboarding = field(default_factory=Onboarding)
    """How sensors join (claim template, allow-list, bulk registration)."""
    dynamodb_capacity: DynamoDBCapacity = DynamoDBCapacity.ON_DEMAND
    """How the data path's tables buy throughput. ``on-demand`` (dev, staging and every ad-hoc environment):
    pay per request, nothing when idle. ``provisioned`` (prod): units sized by the capacity model from the
    declared fleet (``stacks.capacity.provisioned_throughput``; ``python -m tools.capacity --env prod``
    lists them), each table auto scaled between its steady load and a replay's burst at
    ``dynamodb_target_utilisation``, each index fixed at the burst. README "DynamoDB capacity" says what a
    burst does in each mode."""
    dynamodb_target_utilisation: float = 0.7
    """Provisioned mode: the auto scaling target, consumed over provisioned units (0.2-0.9, Application Auto
    Scaling's range for DynamoDB)."""

    def __post_init__(self) -> None:
        env = self.name
        if not isinstance(env, str) or not re.fullmatch(r"^[a-z][a-z0-9-]{0,15}$", env):
            raise ConfigError(str(env), "name", "must be 1-16 lowercase letters, digits or '-'")
        if not isinstance(self.region, str) or not _REGION.fullmatch(self.region):
            raise ConfigError(env, "region", f"{self.region!r} is not an AWS region name")
        if not isinstance(self.production, bool):
            raise ConfigError(env, "production", f"must be true or false, got {self.production!r}")
        if not isinstance(self.stream_mode, StreamMode):
            raise ConfigError(env, "stream_mode", f"must be one of {[m.value for m in StreamMode]}")
        if self.stream_mode is StreamMode.PROVISIONED:
            if self.shard_count is None:
                raise ConfigError(env, "shard_count", "is required when stream_mode is PROVISIONED")
            _int(env, "shard_count", self.shard_count, 1, 500)
        elif self.shard_count is not None:
            raise ConfigError(env, "shard_count", "must be unset when stream_mode is ON_DEMAND")
        _int(env, "stream_retention_hours", self.stream_retention_hours, 24, 8760)
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ConfigError(
                env, "log_retention_days", f"must be one of {LOG_RETENTION_DAYS}, got {self.log_retention_days!r}"
            )
        for prefix in ("processor", "folder", "silence"):
            settings = getattr(self, prefix)
            if not isinstance(settings, FunctionSettings):
                raise ConfigError(env, prefix, "must be a FunctionSettings")
            settings.validate(env, prefix)
        _int(env, "batch_size", self.batch_size, 1, 10_000)
        _int(env, "partials_shard_count", self.partials_shard_count, 1, 500)
        _int(env, "silence_factor", self.silence_factor, 2, 100)
        _int(env, "fleet_retention_days", self.fleet_retention_days, 1, 365)
        _int(env, "silence.timeout_seconds", self.silence.timeout_seconds, 1, SILENCE_CHECK_TIMEOUT_LIMIT)
        _int(env, "batching_window_seconds", self.batching_window_seconds, 0, 300)
        _int(env, "max_retry_attempts", self.max_retry_attempts, 0, 10_000)
        _int(env, "max_record_age_seconds", self.max_record_age_seconds, 60, 604_800)
        _int(env, "aggregation_window_seconds", self.aggregation_window_seconds, 60, 3600)
        if 3600 % self.aggregation_window_seconds:
            raise ConfigError(env, "aggregation_window_seconds", "must divide 3600 evenly")
        _int(env, "max_reading_age_seconds", self.max_reading_age_seconds, 1, 3_650 * 86_400)
        _int(env, "firehose_buffer_seconds", self.firehose_buffer_seconds, 60, 900)
        if self.athena_bytes_scanned_cutoff is not None:
            _int(env, "athena_bytes_scanned_cutoff", self.athena_bytes_scanned_cutoff, 10 * 1024**2, 2**53)
        if not isinstance(self.alarms, AlarmThresholds):
            raise ConfigError(env, "alarms", "must be an AlarmThresholds")
        self.alarms.validate(env)
        if not isinstance(self.lifecycle, DataLifecycle):
            raise ConfigError(env, "lifecycle", "must be a DataLifecycle")
        self.lifecycle.validate(env)
        if self.alert_email is not None and (
            not isinstance(self.alert_email, str) or not _EMAIL.fullmatch(self.alert_email)
        ):
            raise ConfigError(env, "alert_email", f"{self.alert_email!r} is not an e-mail address")
        # Contradictions between fields.
        if self.alarms.iterator_age_ms >= self.max_record_age_seconds * 1000:
            raise ConfigError(
                env, "alarms.iterator_age_ms", "must be below max_record_age_seconds, or records expire before it fires"
            )
        if self.max_reading_age_seconds > self.lifecycle.aggregate_ttl_days * 86_400:
            raise ConfigError(
                env,
                "max_reading_age_seconds",
                f"must not exceed lifecycle.aggregate_ttl_days ({self.lifecycle.aggregate_ttl_days} d = "
                f"{self.lifecycle.aggregate_ttl_days * 86_400} s): state of older readings is already expired",
            )
        if self.max_record_age_seconds > self.stream_retention_hours * 3600:
            raise ConfigError(env, "max_record_age_seconds", "must not exceed stream_retention_hours")
        if self.alarms.firehose_freshness_seconds <= self.firehose_buffer_seconds:
            raise ConfigError(
                env,
                "alarms.firehose_freshness_seconds",
                "must exceed firehose_buffer_seconds, or it fires on every buffer",
            )
        _int(env, "lambda_concurrency_quota", self.lambda_concurrency_quota, 10, 10_000_000)
        if self.reserved_total > self.lambda_concurrency_quota - UNRESERVED_MINIMUM:
            raise ConfigError(
                env,
                "processor.reserved_concurrency",
                f"with folder, silence and onboarding.hook reserved_concurrency reserves {self.reserved_total}: "
                f"Lambda keeps {UNRESERVED_MINIMUM} of lambda_concurrency_quota ({self.lambda_concurrency_quota}) "
                "unreserved, "
                f"so at most {max(self.lambda_concurrency_quota - UNRESERVED_MINIMUM, 0)} can be reserved",
            )
        reserved = self.processor.reserved_concurrency
        if reserved is not None and self.shard_count is not None and reserved < self.shard_count:
            raise ConfigError(
                env,
                "processor.reserved_concurrency",
                f"must be at least shard_count ({self.shard_count}): one invocation per shard",
            )
        if self.production and self.lifecycle.lake_expiration_days is not None:
            raise ConfigError(
                env, "lifecycle.lake_expiration_days", "must be unset in production: the lake is retained"
            )
        _int(env, "dynamodb_table_write_quota", self.dynamodb_table_write_quota, 1, 10_000_000)
        if isinstance(self.budget_margin, bool) or not isinstance(self.budget_margin, int | float):
            raise ConfigError(env, "budget_margin", f"must be a number, got {self.budget_margin!r}")
        if not 1 <= self.budget_margin <= 10:
            raise ConfigError(env, "budget_margin", f"must be between 1 and 10, got {self.budget_margin!r}")
        if not isinstance(self.onboarding, Onboarding):
            raise ConfigError(env, "onboarding", "must be an Onboarding")
        self.onboarding.validate(env)
        if not isinstance(self.dynamodb_capacity, DynamoDBCapacity):
            raise ConfigError(
                env,
                "dynamodb_capacity",
                f"must be one of {[m.value for m in DynamoDBCapacity]}, got {self.dynamodb_capacity!r}",
            )
        target = self.dynamodb_target_utilisation
        if isinstance(target, bool) or not isinstance(target, int | float) or not 0.2 <= target <= 0.9:
            raise ConfigError(env, "dynamodb_target_utilisation", f"must be a number from 0.2 to 0.9, got {target!r}")
        self._check_capacity()

    @property
    def fleet(self) -> Fleet:
        """The sensors this environment serves (validated)."""
        try:
            return Fleet(self.sensors, self.reading_interval_seconds, self.payload_bytes, self.sensors_per_segment)
        except CapacityError as exc:
            raise ConfigError(self.name, exc.field_name, exc.detail) from None

    @property
    def window_ttl_days(self) -> int:
        """How long a sensor's window items are kept after their window ends: as long as they are read,
        no longer (issue 20: they were kept ``lifecycle.aggregate_ttl_days``, 30 days at prod). A record can
        be processed again (a retry, a redrive from the stream, a mapping recreated at the trim horizon) for
        ``stream_retention_hours`` after its arrival, and its reading is up to ``max_reading_age_seconds``
        older than that arrival: its window's items must outlive both, or the reading would be taken as new
        and folded twice. The silence check reads a sensor's newest item while it is in the fleet,
        ``fleet_retention_days`` after its newest reading. The aggregates, which operators query, keep
        ``lifecycle.aggregate_ttl_days``."""
        replay = -(-(self.max_reading_age_seconds + self.stream_retention_hours * 3600) // 86_400)
        return max(self.fleet_retention_days, replay)

    @property
    def pipeline(self) -> Pipeline:
        """The settings the capacity model checks the fleet against."""
        return Pipeline(
            on_demand=self.stream_mode is StreamMode.ON_DEMAND,
            shard_count=self.shard_count,
            batch_size=self.batch_size,
            batching_window_seconds=self.batching_window_seconds,
            processor_memory_mb=self.processor.memory_mb,
            processor_timeout_seconds=self.processor.timeout_seconds,
            processor_reserved_concurrency=self.processor.reserved_concurrency,
            folder_memory_mb=self.folder.memory_mb,
            folder_timeout_seconds=self.folder.timeout_seconds,
            folder_reserved_concurrency=self.folder.reserved_concurrency,
            partials_shard_count=self.partials_shard_count,
            aggregation_window_seconds=self.aggregation_window_seconds,
            firehose_buffer_seconds=self.firehose_buffer_seconds,
            stream_retention_hours=self.stream_retention_hours,
            aggregate_ttl_days=self.lifecycle.aggregate_ttl_days,
            window_ttl_days=self.window_ttl_days,
            lambda_concurrency_quota=self.lambda_concurrency_quota,
            dynamodb_table_write_quota=self.dynamodb_table_write_quota,
            silence_factor=self.silence_factor,
            athena_bytes_scanned_cutoff=self.athena_bytes_scanned_cutoff,
            silence_memory_mb=self.silence.memory_mb,
            log_retention_days=self.log_retention_days,
            lake_infrequent_access_days=self.lifecycle.lake_infrequent_access_days,
            lake_glacier_days=self.lifecycle.lake_glacier_days,
            lake_expiration_days=self.lifecycle.lake_expiration_days,
            dynamodb_capacity=self.dynamodb_capacity,
            dynamodb_target_utilisation=self.dynamodb_target_utilisation,
        )

    def _check_capacity(self) -> None:
        """Stop on the first limit the settings cannot carry the fleet past (``stacks.capacity``)."""
        fleet = self.fleet
        broken = violations(model(fleet, self.pipeline))
        if broken:
            limit = broken[0]
            raise ConfigError(
                self.name,
                limit.field,
                f"cannot carry {fleet.sensors:,} sensors reading every {fleet.reading_interval_seconds} s: "
                f"{limit.name}: needs {limit.used:,.4g}, has {limit.limit:,.4g}; change: {limit.change}",
            )

    @property
    def reserved_total(self) -> int:
        """Concurrency this environment's functions reserve."""
        return sum(
            f.reserved_concurrency or 0 for f in (self.processor, self.folder, self.silence, self.onboarding.hook)
        )

    def with_name(self, name: str) -> EnvironmentConfig:
        """The same profile under another environment name (validated again)."""
        return replace(self, name=name)


@dataclass(frozen=True)
class StateConfig:
    """Where Terraform state lives: one bucket, a key per environment."""

    bucket: str = DEFAULT_STATE_BUCKET
    """State bucket; ``TF_STATE_BUCKET`` overrides the default ``tap-traffic-tfstate-<account>-<region>``."""
    region: str = "us-east-1"
    """Region of the state bucket."""
    kms_key: str = STATE_KEY_ALIAS
    """Key the backend encrypts state with (``TF_STATE_KMS_KEY``): without it, Terraform's S3 backend
    writes state, lock and digest with AES256, overriding the bucket's SSE-KMS default."""
    account_id: str | None = None
    """The account the default bucket name carries (``TF_STATE_ACCOUNT_ID``), checked by the bootstrap
    stack against the caller; ``None`` when ``TF_STATE_BUCKET`` names the bucket."""

    def __post_init__(self) -> None:
        try:
            check(Kind.S3_BUCKET, self.bucket)
        except NamingError as exc:
            raise ConfigError("state", "state_bucket (TF_STATE_BUCKET)", str(exc)) from None
        if len(self.bucket) > 63 - len(ACCESS_LOG_SUFFIX):
            raise ConfigError(
                "state",
                "state_bucket (TF_STATE_BUCKET)",
                f"{self.bucket!r} is too long: at most {63 - len(ACCESS_LOG_SUFFIX)} characters, "
                f"so that its access-log bucket '<name>{ACCESS_LOG_SUFFIX}' fits S3's 63",
            )
        if not _REGION.fullmatch(self.region):
            raise ConfigError("state", "region (TF_STATE_REGION)", f"{self.region!r} is not an AWS region name")
        if not _KMS_KEY.fullmatch(self.kms_key):
            raise ConfigError(
                "state",
                "kms_key (TF_STATE_KMS_KEY)",
                f"{self.kms_key!r} is not a KMS key id, key ARN, alias or alias ARN",
            )
        if self.account_id is not None and not _ACCOUNT_ID.fullmatch(self.account_id):
            raise ConfigError("state", "account_id (TF_STATE_ACCOUNT_ID)", f"{self.account_id!r} is not 12 digits")

    @property
    def access_log_bucket(self) -> str:
        """Bucket receiving the state bucket's access logs."""
        return f"{self.bucket}{ACCESS_LOG_SUFFIX}"


# Stream mode, shard_count and batching_window_seconds of each profile are the capacity model's choice for
# its declared fleet (``stacks.capacity.batching_choice``; tests/test_capacity.py keeps them equal): the
# cheapest within the contract's silent-sensor age and the aggregation window. ``python -m tools.bench
# --only costs`` shows every option.
DEV = EnvironmentConfig(name="dev", batching_window_seconds=90)
STAGING = EnvironmentConfig(
    name="staging",
    shard_count=1,
    stream_retention_hours=48,
    log_retention_days=30,
    processor=FunctionSettings(memory_mb=512, timeout_seconds=60, reserved_concurrency=10),
    batching_window_seconds=30,
    lifecycle=DataLifecycle(lake_infrequent_access_days=30, lake_expiration_days=90),
    sensors=1_000,
    reading_interval_seconds=20,
)
PROD = EnvironmentConfig(
    name="prod",
    production=True,
    stream_mode=StreamMode.PROVISIONED,
    shard_count=3,
    stream_retention_hours=168,
    log_retention_days=365,
    processor=FunctionSettings(memory_mb=1024, timeout_seconds=120, reserved_concurrency=50),
    folder=FunctionSettings(memory_mb=512, timeout_seconds=120, reserved_concurrency=10),
    silence=FunctionSettings(memory_mb=256, timeout_seconds=50, reserved_concurrency=1),
    batching_window_seconds=30,
    max_retry_attempts=10,
    max_record_age_seconds=86_400,
    alarms=AlarmThresholds(iterator_age_ms=300_000, congestion_alerts=10, silent_sensors=50),
    lifecycle=DataLifecycle(
        lake_infrequent_access_days=30,
        lake_glacier_days=180,
        lake_expiration_days=None,
        quarantine_expiration_days=365,
        athena_results_expiration_days=30,
        access_logs_expiration_days=365,
        noncurrent_version_days=30,
        aggregate_ttl_days=30,
    ),
    sensors=10_000,
    reading_interval_seconds=20,
    onboarding=Onboarding(hook=FunctionSettings(memory_mb=256, timeout_seconds=5, reserved_concurrency=1)),
    dynamodb_capacity=DynamoDBCapacity.PROVISIONED,
)
PROFILES: Mapping[str, EnvironmentConfig] = {c.name: c for c in (DEV, STAGING, PROD)}
AD_HOC_PROFILE = "dev"


@dataclass(frozen=True)
class Environment:
    """One deployable environment: its suffix (in every name) and its config."""

    suffix: str
    config: EnvironmentConfig


@dataclass(frozen=True)
class Platform:
    """All environments to synthesize, and where their state lives."""

    environments: tuple[Environment, ...]
    state: StateConfig


def state_config(environ: Mapping[str, str]) -> StateConfig:
    """Where state lives: ``TF_STATE_BUCKET`` if set, else ``tap-traffic-tfstate-<TF_STATE_ACCOUNT_ID>-
    <region>`` (the placeholder account when that is unset too: fine to synthesize and review, refused by
    the bootstrap stack at apply); ``TF_STATE_REGION``; ``TF_STATE_KMS_KEY`` (default the bootstrap's alias)."""
    region = environ.get("TF_STATE_REGION") or StateConfig.region
    kms_key = environ.get("TF_STATE_KMS_KEY") or STATE_KEY_ALIAS
    if environ.get("TF_STATE_BUCKET"):
        return StateConfig(bucket=environ["TF_STATE_BUCKET"], region=region, kms_key=kms_key)
    account = environ.get("TF_STATE_ACCOUNT_ID") or PLACEHOLDER_ACCOUNT_ID
    if not _ACCOUNT_ID.fullmatch(account):
        raise ConfigError("state", "account_id (TF_STATE_ACCOUNT_ID)", f"{account!r} is not 12 digits")
    return StateConfig(bucket=default_state_bucket(account, region), region=region, kms_key=kms_key, account_id=account)


def load(environ: Mapping[str, str]) -> Platform:
    """Read the environments to synthesize from process environment variables.

    ``ENVIRONMENT_SUFFIX`` adds one ad-hoc environment on the dev profile; ``TF_STATE_BUCKET`` and
    ``TF_STATE_REGION`` override where state lives. Raises :class:`ConfigError` or
    :class:`~stacks.naming.NamingError` naming the variable at fault.
    """
    state = state_config(environ)
    environments = [Environment(suffix=name, config=config) for name, config in PROFILES.items()]
    extra = environ.get("ENVIRONMENT_SUFFIX")
    if extra is not None and extra != "":
        validate_suffix(extra, field="ENVIRONMENT_SUFFIX")
        if extra in PROFILES:
            raise NamingError(
                f"ENVIRONMENT_SUFFIX: {extra!r} is a standing environment; an ad-hoc environment "
                "needs its own suffix (e.g. pr123) or its resources would collide with it"
            )
        environments.append(Environment(suffix=extra, config=PROFILES[AD_HOC_PROFILE].with_name(extra)))
    for env in environments:
        validate_suffix(env.suffix)
    check_shared_quota(environments)
    return Platform(environments=tuple(environments), state=state)


def check_shared_quota(environments: Sequence[Environment]) -> None:
    """Environments share one state bucket, so they are taken to share one account and its concurrency
    quota: together they must leave Lambda's 100 unreserved executions under the smallest declared quota
    (a deployment across several accounts lowers a reservation or raises that environment's quota)."""
    total = sum(e.config.reserved_total for e in environments)
    quota = min(e.config.lambda_concurrency_quota for e in environments)
    if total > quota - UNRESERVED_MINIMUM:
        shares = ", ".join(f"{e.suffix} {e.config.reserved_total}" for e in environments if e.config.reserved_total)
        raise ConfigError(
            "all environments",
            "processor.reserved_concurrency",
            f"reservations add up to {total} ({shares}), more than lambda_concurrency_quota ({quota}) "
            f"minus the {UNRESERVED_MINIMUM} executions Lambda keeps unreserved",
        )
