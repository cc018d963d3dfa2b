"""Capacity and cost model of the platform: what a fleet needs, where it breaks, what it costs a month.

Pure Python, no AWS calls and no I/O after import: :func:`model` takes a :class:`Fleet` (sensors, reading
interval, payload size, sensors per segment) and a :class:`Pipeline` (the environment's settings, see
``EnvironmentConfig.pipeline``) and returns a typed :class:`Capacity`; :func:`monthly_cost` prices it
with a :class:`PriceTable` (``prices/us-east-1.json``). ``EnvironmentConfig`` runs the model and stops
synthesis, naming the field, on the first :class:`Limit` it breaks (:func:`violations`).

**Calibrated, not assumed.** What the handlers do per reading (requests per batch, item sizes, records
per request) comes from :data:`CALIBRATION`, written by ``python -m tools.bench.request_counts --calibrate``
from the real handlers on moto; ``tests/test_capacity.py`` runs the handlers again for several fleets
and batch settings and keeps the model within 10 % of what they do. What moto cannot tell (request
latency, invocation overhead) is an explicit assumption below, and only feeds the time estimates.

**The whole bill** (issue 20): :func:`bill` prices the data path and what runs beside it (point-in-time
recovery, the silence check, the aggregates' failed conditional puts, CloudWatch, X-Ray, KMS, S3 requests and
storage growth, the Scheduler), on-demand or provisioned DynamoDB (``Pipeline.dynamodb_capacity``);
``stacks.state_layouts`` prices alternative state layouts with the same lines.

Every AWS limit is a constant here with the page that states it. Months are 730 hours, as AWS prices
them; data volumes are binary (1 KB = 1,024 bytes, 1 GB = 1,024 MB), as DynamoDB, Kinesis and Firehose
meter them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

# ------------------------------------------------------------------------------------- AWS limits

KINESIS_QUOTAS = "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"
KINESIS_SHARD_RECORDS_PER_SECOND = 1_000
"""Each shard takes up to 1,000 records/s of writes (KINESIS_QUOTAS)."""
KINESIS_SHARD_WRITE_BYTES_PER_SECOND = 1024**2
"""... and 1 MB/s of writes (KINESIS_QUOTAS)."""
KINESIS_SHARD_READ_BYTES_PER_SECOND = 2 * 1024**2
"""Reads: 2 MB/s per shard, shared by every standard consumer (KINESIS_QUOTAS)."""
KINESIS_ON_DEMAND_INITIAL_SHARDS = 4
"""A new on-demand stream has 4 MB/s of write capacity, i.e. 4 shards, and grows from there (KINESIS_QUOTAS)."""
KINESIS_ACCOUNT_SHARDS = 20_000
"""Default shard quota per account in us-east-1, us-west-2 and eu-west-1 (KINESIS_QUOTAS; adjustable)."""
KINESIS_CONSUMERS = 2
"""Standard consumers reading every record: the processor's event source mapping and Firehose."""

LAMBDA_KINESIS = "https://docs.aws.amazon.com/lambda/latest/dg/with-kinesis.html"
LAMBDA_KINESIS_POLL_SECONDS = 1.0
"""Lambda polls each shard once per second; with more records it keeps reading until it has caught up,
and invokes when the batch is full, the batching window ends or the payload reaches 6 MB (LAMBDA_KINESIS)."""
LAMBDA_PAYLOAD_BYTES = 6 * 1024**2
"""Largest synchronous invocation payload, so largest batch in bytes (LAMBDA_KINESIS)."""
LAMBDA_BATCH_MAX = 10_000
"""Largest batch size of a Kinesis event source mapping
(https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html)."""
LAMBDA_PARALLELIZATION_MAX = 10
"""ParallelizationFactor: 1-10 concurrent batches per shard, each partition key on one batch at a time
(https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-parameters.html)."""
LAMBDA_DYNAMODB_STREAM_POLL_SECONDS = 0.25
"""Lambda polls a DynamoDB stream shard four times a second
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html; not readable in the stored copy: verify)."""
LAMBDA_MB_PER_VCPU = 1_769
"""At 1,769 MB a function has one vCPU; below, a share in proportion
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html)."""
FOLDER_BATCH_SIZE = 10_000
"""The folder mapping's batch size (``stacks.layout.FOLDER_BATCH_SIZE``; a test keeps them equal): Kinesis's
largest, so that Lambda's 6 MB payload is what ends a full batch (``folder_records_max``)."""
PUT_RECORDS_MAX = 500
"""Records one PutRecords call carries at most (``lambdas.common.partials.MAX_RECORDS_PER_PUT``)."""

DYNAMODB_PARTITION = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html"
DYNAMODB_PARTITION_WCU = 1_000
"""Each partition takes at most 1,000 write units per second (DYNAMODB_PARTITION): one partition key's
writes can never go faster, whatever the table's capacity."""
DYNAMODB_PARTITION_RCU = 3_000
"""... and 3,000 read units per second (DYNAMODB_PARTITION)."""
DYNAMODB_ON_DEMAND_INITIAL_WCU = 4_000
"""A new on-demand table starts with warm throughput of 4,000 write units/s (DYNAMODB_PARTITION)."""
DYNAMODB_ITEM_SIZES = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html"
DYNAMODB_WRITE_UNIT_BYTES = 1024
"""One write unit per 1 KB of item written, rounded up (https://aws.amazon.com/dynamodb/pricing/on-demand/)."""
DYNAMODB_READ_UNIT_BYTES = 4096
"""One strongly consistent read unit per 4 KB read, rounded up (same page)."""
DYNAMODB_ITEM_LIMIT_BYTES = 400 * 1024
"""Largest item (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html)."""
DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES = 100
"""Storage billed per item on top of its size, for indexing (DYNAMODB_ITEM_SIZES)."""
DYNAMODB_TABLE_WRITE_QUOTA = 40_000
"""Default on-demand table-level write throughput: 40,000 write request units/s per table
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html; adjustable)."""

FIREHOSE_RECORD_INCREMENT_BYTES = 5 * 1024
"""Firehose bills ingestion and format conversion per record rounded up to 5 KB
(https://aws.amazon.com/firehose/pricing/)."""
FIREHOSE_RECORD_MAX_BYTES = 1000 * 1024
"""Largest Firehose record (https://docs.aws.amazon.com/firehose/latest/dev/limits.html). Format
conversion reads several JSON documents in one record when they are concatenated (``{..}{..}``, not an
array: https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html)."""
FIREHOSE_BUFFER_BYTES = 64 * 1024**2
"""The lake's Firehose buffer size (``stacks/analytics.py``: ``buffering_size=64``, the minimum with
format conversion)."""

LAKE_PARQUET_BYTES_PER_READING = 13.0
"""Bytes a reading takes in the lake's Snappy-compressed Parquet, at scale. Measured: 12.7 at 150,000 readings
a file with random values (``tests/test_capacity.py`` writes such files with pyarrow and keeps the model at or
above the measurement); the review of issue 21 estimated 5-12."""
LAKE_PARQUET_BYTES_PER_OBJECT = 5 * 1024
"""... plus the footer, schema and column-chunk headers of each Parquet object (Firehose writes one per flush)."""
QUARANTINE_SHARE = 0.01
"""Assumed share of records quarantined, for the size of the quarantine store the ledger queries read."""
QUARANTINE_OBJECT_OVERHEAD_BYTES = 300
"""JSON around a quarantined record (reason, detail, arrival, shard, sequence number) beside its payload."""
ATHENA_LONGEST_SCAN_DAYS = 31
"""The most UTC dates (``dt`` partitions) any named query reads: today and the 30 before it
(``stacks/analytics.py`` checks every named query against it)."""
ATHENA_CUTOFF_MARGIN = 2.0
"""The workgroup's per-query cutoff is the longest named query's estimated scan times this (growth and
skew), rounded up to whole GiB."""
ATHENA_MIN_CUTOFF_BYTES = 10 * 1024**2
"""Athena's smallest per-query data usage control (https://docs.aws.amazon.com/athena/latest/ug/workgroups-setting-control-limits-cloudwatch.html)."""

IOT_MESSAGE_INCREMENT_BYTES = 5 * 1024
"""IoT Core meters a PUBLISH on its payload and topic, in 5 KB messages
(https://aws.amazon.com/iot-core/pricing/additional-details/)."""
IOT_INBOUND_PUBLISH_QUOTA = 20_000
"""Inbound publishes per second per account in us-east-1 (https://docs.aws.amazon.com/general/latest/gr/iot-core.html;
adjustable; the figure was not readable in the stored copy: verify in Service Quotas)."""
IOT_MAX_PAYLOAD_BYTES = 128 * 1024
"""Largest MQTT payload IoT Core accepts (same page)."""
TOPIC_BYTES = len("tap/prod-123456789/sensors/sensor-0000000001/readings")
"""Metered topic of a reading: the contract's topic with a long environment and thing name."""
IOT_BASIC_INGEST = "https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html"
"""Basic Ingest: a publish on ``$aws/rules/<rule name>/<topic>`` goes to that rule without the message
broker and without a messaging charge (rules and actions are still billed); the rule sees ``<topic>``
(the prefix "isn't available to the topic(Decimal) function"); nothing can subscribe to it."""

# --------------------------------------------------------------------------------- contract promises

CONTRACT_SILENCE_FACTOR = 3
"""``contracts/README.md`` (Silent sensors): a sensor is silent at ``T`` when its newest *accepted*
reading is more than ``silence_factor x interval_seconds`` before ``T`` (default 3; an environment's
``silence_factor`` reaches the model as ``Pipeline.silence_factor``). A reading waiting in a batch is not
accepted yet; the check judges each stream shard at its watermark (``lambdas.common.silence``), so such a
reading no longer makes a sensor look silent, but a batching window delays every outage alert by as much:
the model keeps a sensor's newest accepted reading younger than that age."""

# ------------------------------------------------------------------------- assumptions (not measured)

DYNAMODB_ITEM_REQUEST_SECONDS = 0.005
"""Assumed round trip of one single-item request (PutItem, GetItem, UpdateItem, a small Query) from a
function in the table's region: DynamoDB promises single-digit milliseconds. Feeds time only."""
DYNAMODB_BATCH_REQUEST_SECONDS = 0.015
"""Assumed round trip of one BatchGetItem of up to 100 keys or BatchWriteItem of up to 25 items (their
items are served in parallel, their payload is larger). Feeds time only."""
INVOCATION_OVERHEAD_SECONDS = 0.005
"""Assumed fixed cost of one warm invocation (event decoding, logging, the response). Feeds time only."""
HEADROOM = 0.8
"""Shards are sized to run at most 80 % of their per-second limits: the limits are enforced per second
and per shard, and readings of randomly phased sensors arrive in bursts, not evenly."""
SECONDS_PER_MONTH = 730 * 3600
MINUTES_PER_MONTH = 730 * 60
GIB = 1024**3

# ----------------------------------------------------------------------------------- calibration

CALIBRATION_FILE = Path(__file__).with_name("capacity_calibration.json")
CALIBRATE_COMMAND = "python -m tools.bench.request_counts --calibrate"


@dataclass(frozen=True)
class Calibration:
    """What the real handlers do, measured on moto (``CALIBRATE_COMMAND`` writes ``CALIBRATION_FILE``)."""

    keys_per_batch_get: int
    """Most keys the processor puts in one BatchGetItem."""
    items_per_batch_write: int
    """Most items the processor puts in one BatchWriteItem."""
    window_item_base_bytes: float
    """DynamoDB size of a sensor window item without its readings (fit: size = base + row x readings)."""
    window_item_row_bytes: float
    """What one more reading adds to a sensor window item."""
    window_part_rows: int
    """Most readings one window part holds before the processor opens the next (from its size budget)."""
    aggregate_item_base_bytes: float
    """DynamoDB size of a segment aggregate folded from one source shard (fit: base + source x (shards - 1))."""
    aggregate_item_source_bytes: float
    """What one more contributing readings shard adds to it (its ``src`` mark: shard id, sequence number)."""
    partial_record_bytes: float
    """Mean size of a partials record (``lambdas.common.partials.Partial``: keys, source, one piece of sums)."""
    folder_fixed_requests: int
    """Requests every folder invocation makes whatever it folds (the expired-claims Query, PutMetricData)."""
    kinesis_event_record_overhead_bytes: float
    """Bytes a Kinesis event record takes beyond its base64 data (ids, ARN, timestamps)."""
    cpu_seconds_per_reading: float
    """One core's time per reading for both functions' pure logic (``tools.bench.report.pure_pipeline``) on the
    calibrating machine; scaled by each function's vCPU share."""
    measured: Mapping[str, Any] = field(default_factory=dict)
    """When, where and how it was measured."""

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Calibration:
        data = json.loads(path.read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


CALIBRATION = Calibration.load()

# ----------------------------------------------------------------------------------------- inputs


class CapacityError(ValueError):
    """A fleet or pipeline value the model refuses; ``field_name`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field_name = field_name
        self.detail = message
        super().__init__(f"field {field_name!r}: {message}")


def _int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CapacityError(name, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise CapacityError(name, f"must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class Fleet:
    """The sensors an environment serves."""

    sensors: int = 40
    """Sensors publishing readings, 1-10,000,000."""
    reading_interval_seconds: int = 60
    """Seconds between two readings of one sensor, 1-86,400."""
    payload_bytes: int = 256
    """Bytes of one reading as published (a contract reading is ~190 bytes), 1 to IoT Core's 128 KB."""
    sensors_per_segment: int = 4
    """Sensors on the busiest road segment: its aggregate item is written for all of them, 1-100,000."""

    def __post_init__(self) -> None:
        _int("sensors", self.sensors, 1, 10_000_000)
        _int("reading_interval_seconds", self.reading_interval_seconds, 1, 86_400)
        _int("payload_bytes", self.payload_bytes, 1, IOT_MAX_PAYLOAD_BYTES)
        _int("sensors_per_segment", self.sensors_per_segment, 1, 100_000)
        if self.sensors_per_segment > self.sensors:
            raise CapacityError("sensors_per_segment", f"must not exceed sensors ({self.sensors})")

    @property
    def readings_per_second(self) -> float:
        return self.sensors / self.reading_interval_seconds

    @property
    def segments(self) -> int:
        return math.ceil(self.sensors / self.sensors_per_segment)


class Ingest(StrEnum):
    """How sensors reach the topic rule."""

    TOPIC = "topic"
    """Standard topics through the message broker: messaging is billed (the naive design)."""
    BASIC_INGEST = "basic-ingest"
    """``$aws/rules/<rule>/...`` (IOT_BASIC_INGEST): the rule without the broker, no messaging charge;
    what ``stacks/ingestion.py`` deploys (the sensor policy allows nothing else)."""


class Writes(StrEnum):
    """How readings reach DynamoDB."""

    WINDOW_ITEMS = "window-items"
    """This platform: one item per sensor and window, read and written in batches (``lambdas.processor``)."""
    PUT_PER_READING = "put-per-reading"
    """The naive design: one PutItem of each reading."""


class DynamoDBCapacity(StrEnum):
    """How the tables' throughput is bought (https://aws.amazon.com/dynamodb/pricing/)."""

    ON_DEMAND = "on-demand"
    """Pay per request unit (as deployed)."""
    PROVISIONED = "provisioned"
    """Provisioned units with auto scaling at ``Pipeline.dynamodb_target_utilisation``, a share of them
    reserved for a year (``Pipeline.dynamodb_reserved_share``)."""


@dataclass(frozen=True)
class Pipeline:
    """The settings of one environment that capacity depends on (``EnvironmentConfig.pipeline``)."""

    on_demand: bool
    shard_count: int | None
    batch_size: int
    batching_window_seconds: int
    processor_memory_mb: int
    processor_timeout_seconds: int
    processor_reserved_concurrency: int | None
    folder_memory_mb: int
    folder_timeout_seconds: int
    folder_reserved_concurrency: int | None
    aggregation_window_seconds: int
    firehose_buffer_seconds: int
    stream_retention_hours: int
    aggregate_ttl_days: int
    lambda_concurrency_quota: int
    dynamodb_table_write_quota: int = DYNAMODB_TABLE_WRITE_QUOTA
    parallelization_factor: int = 1
    """The processor mapping's ParallelizationFactor; the stack leaves Lambda's default, 1."""
    partials_shard_count: int = 1
    """Shards of the partials stream (``EnvironmentConfig.partials_shard_count``): one folder lane each."""
    ingest: Ingest = Ingest.BASIC_INGEST
    """How sensors publish; the stack deploys Basic Ingest."""
    writes: Writes = Writes.WINDOW_ITEMS
    folder_batching_window_seconds: int | None = None
    """The folder mapping's batching window; ``None``: the same as the processor's (as the stack sets it)."""
    silence_factor: int = CONTRACT_SILENCE_FACTOR
    """The environment's ``silence_factor`` (contract "Silent sensors", default 3)."""
    lake_readings_per_record: int = 1
    """Readings per Firehose record. 1 as deployed: Firehose reads the stream, one record per reading;
    more needs a producer that packs them (see ``tools.bench`` costs: not adopted)."""
    athena_bytes_scanned_cutoff: int | None = None
    """The Athena workgroup's per-query cutoff; ``None``: sized from the lake (:func:`athena_cutoff_bytes`)."""
    silence_memory_mb: int = 256
    """The silence check function's memory (``EnvironmentConfig.silence.memory_mb``)."""
    log_retention_days: int = 14
    """How long the functions' log groups keep their logs (``EnvironmentConfig.log_retention_days``)."""
    lake_infrequent_access_days: int | None = None
    """Lake objects move to STANDARD_IA after this many days (``lifecycle``); ``None``: they do not."""
    lake_glacier_days: int | None = None
    """... and to GLACIER_IR after this many days; ``None``: they do not."""
    lake_expiration_days: int | None = 30
    """... and expire after this many days; ``None``: the lake is kept, and its storage grows every month."""
    dynamodb_capacity: DynamoDBCapacity = DynamoDBCapacity.ON_DEMAND
    """How DynamoDB throughput is bought (:class:`DynamoDBCapacity`); the stack deploys on-demand tables."""
    window_ttl_days: int | None = None
    """How long window items are kept after their window (``EnvironmentConfig.window_ttl_days``); ``None``:
    ``aggregate_ttl_days`` (:attr:`window_item_ttl_days`)."""
    dynamodb_target_utilisation: float = 0.7
    """Provisioned mode: the auto scaling target (consumed / provisioned), 0.2-0.9 as Application Auto
    Scaling takes it for DynamoDB."""
    dynamodb_reserved_share: float = 0.0
    """Provisioned mode: the share of the provisioned units covered by one-year reserved capacity, 0-1."""

    @property
    def window_item_ttl_days(self) -> int:
        """Days the window items are kept after their window."""
        return self.aggregate_ttl_days if self.window_ttl_days is None else self.window_ttl_days

    def __post_init__(self) -> None:
        _int("parallelization_factor", self.parallelization_factor, 1, LAMBDA_PARALLELIZATION_MAX)
        _int("lake_readings_per_record", self.lake_readings_per_record, 1, 10_000)
        if not 0.2 <= self.dynamodb_target_utilisation <= 0.9:
            raise CapacityError(
                "dynamodb_target_utilisation", f"must be between 0.2 and 0.9, got {self.dynamodb_target_utilisation}"
            )
        if not 0.0 <= self.dynamodb_reserved_share <= 1.0:
            raise CapacityError(
                "dynamodb_reserved_share", f"must be between 0 and 1, got {self.dynamodb_reserved_share}"
            )

    def naive(self) -> Pipeline:
        """The naive design: standard messaging, one PutItem per reading, an on-demand stream and tables."""
        return replace(self, on_demand=True, shard_count=None, ingest=Ingest.TOPIC, writes=Writes.PUT_PER_READING,
                       dynamodb_capacity=DynamoDBCapacity.ON_DEMAND)  # fmt: skip

    def provisioned(self, shards: int) -> Pipeline:
        return replace(self, on_demand=False, shard_count=shards)


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Stream:
    records_per_second: float
    write_bytes_per_second: float
    read_bytes_per_second: float
    """All consumers together (each standard consumer reads every record)."""
    shards_needed: float
    """Shards' worth of load at ``HEADROOM`` of every per-shard limit."""
    shards_required: int
    """``shards_needed`` rounded up (at least one)."""
    shards: int
    """Provisioned shards, or what an on-demand stream grows to."""
    utilisation: float
    """Load over the shards' limits (records, write bytes or read bytes, whichever is highest)."""


@dataclass(frozen=True)
class Processor:
    concurrency: int
    """Concurrent batches: shards x parallelization factor."""
    readings_per_second_per_batch_lane: float
    batch_records_max: int
    """Batch size, or fewer when 6 MB of event fill first."""
    batch_period_seconds: float
    """Time one lane gathers a batch: the batching window (at least Lambda's 1 s poll), or less when the
    batch fills first. It is also the time budget of a batch: a lane that needs longer falls behind."""
    readings_per_batch: float
    items_per_batch: float
    """Distinct sensor window items a batch touches (each read once and written once)."""
    batch_get_requests: float
    batch_write_requests: float
    requests_per_reading: float
    """Its DynamoDB and Kinesis requests: reads, writes, the shard's partials mark and PutRecords."""
    seconds_per_batch: float
    """Estimated: assumed request latency x requests + measured CPU per reading / vCPU share."""
    seconds_per_reading: float
    """A reading's share of a batch's time in the largest batch Lambda hands over: a lane whose readings
    arrive faster than one per this many seconds falls behind whatever the batch size."""
    seconds_per_full_batch: float
    full_batch_budget_seconds: float
    """Time a full batch takes to arrive on one lane: the lane falls behind for good when a full batch
    takes longer to process (the iterator age can only grow)."""
    invocations_per_second: float
    duration_seconds_per_second: float
    """Busy seconds per second over all lanes (for GB-seconds)."""


@dataclass(frozen=True)
class Table:
    item_writes_per_second: float
    write_units_per_second: float
    read_units_per_second: float
    write_units_per_item_write: float
    item_bytes_max: float
    hottest_item_writes_per_second: float
    hottest_item_write_units_per_second: float
    """The busiest partition key's write units per second (one sensor; one segment's current window)."""
    partitions: int
    """Estimated: enough for the load at 1,000 WCU / 3,000 RCU each, at least a new on-demand table's."""
    stored_bytes: float


@dataclass(frozen=True)
class Folder:
    """The partials stream and the folder reading it (``lambdas.folder``): one lane per partials shard."""

    concurrency: int
    """One batch per partials shard (one per partition key, a segment, at a time)."""
    shards: int
    """Partials stream shards, as configured."""
    shards_needed: int
    """Shards its records and bytes need at ``HEADROOM`` of a shard's write limits."""
    records_per_second: float
    """Partials: one per processor batch and segment window it touched."""
    record_bytes: float
    records_per_invocation: float
    segment_windows_per_invocation: float
    """Segment aggregates one invocation reads and puts (one conditional PutItem each, never refused)."""
    seconds_between_invocations: float
    """Per lane: the time an invocation has before the next batch of partials is due."""
    seconds_per_invocation: float
    seconds_per_full_batch: float
    """A batch of ``FOLDER_BATCH_SIZE`` partials of as many segment windows (a replay, a backlog): what the
    folder's timeout must allow."""
    invocations_per_second: float
    requests_per_second: float
    duration_seconds_per_second: float


@dataclass(frozen=True)
class Lake:
    records_per_second: float
    """Firehose records: readings / ``lake_readings_per_record``."""
    billed_bytes_per_second: float
    """Records rounded up to 5 KB each, as Firehose bills them."""
    buffer_fill_seconds: float
    """Time the input takes to fill Firehose's 64 MB buffer."""
    flush_seconds: float
    flushed_by: str
    """``size`` or ``time`` (firehose_buffer_seconds)."""
    objects_per_day: float
    bytes_per_day: float
    """Parquet written to the lake a day (:data:`LAKE_PARQUET_BYTES_PER_READING` and per object)."""
    quarantine_bytes_per_day: float
    """JSON written to the quarantine store a day, at :data:`QUARANTINE_SHARE` of the records."""


@dataclass(frozen=True)
class Ingestion:
    messages_per_second: float
    message_units_per_message: int
    billed_message_units_per_month: float
    """0 with Basic Ingest."""
    rule_units_per_month: float
    connection_minutes_per_month: float


@dataclass(frozen=True)
class Limit:
    """One limit a fleet runs into, how close it is, and what moves it."""

    name: str
    field: str
    """The config field that moves it (or ``Service Quotas: ...`` for an account quota)."""
    used: float
    limit: float
    change: str
    blocking: bool = True
    """Whether synthesis stops when it is exceeded (account quotas the config does not declare do not)."""

    @property
    def utilisation(self) -> float:
        return self.used / self.limit if self.limit else math.inf

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit


@dataclass(frozen=True)
class Capacity:
    fleet: Fleet
    pipeline: Pipeline
    readings_per_second: float
    readings_per_month: float
    stream: Stream
    processor: Processor
    sensor_windows: Table
    folder: Folder
    segment_aggregates: Table
    lake: Lake
    ingestion: Ingestion
    limits: tuple[Limit, ...]

    @property
    def first_limit(self) -> Limit:
        """The limit the fleet is closest to (or furthest past)."""
        return max(self.limits, key=lambda limit: limit.utilisation)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("fleet")
        data["limits"] = [
            {**asdict(limit), "utilisation": limit.utilisation, "exceeded": limit.exceeded} for limit in self.limits
        ]
        return data


# ------------------------------------------------------------------------------------------ model


def model(
    fleet: Fleet, pipeline: Pipeline, calibration: Calibration = CALIBRATION, *, folder_lanes: int | None = None
) -> Capacity:
    """Capacity of ``pipeline`` carrying ``fleet``: pure arithmetic, well under a millisecond.
    ``folder_lanes`` replaces the partials stream's shards (the calibration runs one)."""
    rate = fleet.readings_per_second
    stream = _stream(fleet, pipeline)
    processor = _processor(fleet, pipeline, stream, calibration)
    windows = _sensor_windows(fleet, pipeline, processor, calibration)
    folder, aggregates = _folder(fleet, pipeline, processor, lanes=folder_lanes, calibration=calibration)
    capacity = Capacity(
        fleet=fleet,
        pipeline=pipeline,
        readings_per_second=rate,
        readings_per_month=rate * SECONDS_PER_MONTH,
        stream=stream,
        processor=processor,
        sensor_windows=windows,
        folder=folder,
        segment_aggregates=aggregates,
        lake=_lake(fleet, pipeline),
        ingestion=_ingestion(fleet, pipeline),
        limits=(),
    )
    return replace(capacity, limits=_limits(capacity))


def _stream(fleet: Fleet, pipeline: Pipeline) -> Stream:
    records = fleet.readings_per_second
    write_bytes = records * fleet.payload_bytes
    read_bytes = write_bytes * KINESIS_CONSUMERS
    needed = max(
        records / KINESIS_SHARD_RECORDS_PER_SECOND,
        write_bytes / KINESIS_SHARD_WRITE_BYTES_PER_SECOND,
        read_bytes / KINESIS_SHARD_READ_BYTES_PER_SECOND,
    )
    required = max(1, math.ceil(needed / HEADROOM - 1e-9))
    shards = max(KINESIS_ON_DEMAND_INITIAL_SHARDS, required) if pipeline.on_demand else (pipeline.shard_count or 1)
    return Stream(records, write_bytes, read_bytes, needed / HEADROOM, required, shards, needed / shards)


def items_per_batch(readings: float, period: float, fleet: Fleet, window: int, sensors: float) -> float:
    """Distinct sensor window items among ``readings`` readings gathered over ``period`` seconds from
    ``sensors`` sensors: one per reading while a batch spans less than a reading interval; otherwise each
    sensor's readings in the batch share an item, one more when they cross a window boundary."""
    interval = fleet.reading_interval_seconds
    if period <= interval or interval >= window:
        return readings
    span = period - interval  # between a sensor's first and last reading in the batch
    return min(readings, sensors * (1 + span / window))


def spread(mean: float, variance: float) -> list[tuple[float, float]]:
    """``(value, probability)`` of a count with this mean and variance: Poisson while small, a discretised
    normal otherwise, the mean itself when it hardly varies. Sensors read on their own phases, so the
    readings a batching period gathers vary from one period to the next."""
    if variance < 0.25 and (mean >= 1 or variance == 0):
        return [(mean, 1.0)] if mean >= 1 else [(0.0, 1 - mean), (1.0, mean)]
    if mean < 30:
        top = math.ceil(mean + 10 * math.sqrt(mean) + 10)
        terms = [math.exp(-mean + x * math.log(mean) - math.lgamma(x + 1)) for x in range(top + 1)]
    else:
        sd = math.sqrt(variance)
        low = max(0, math.floor(mean - 6 * sd))
        terms = [0.0] * low + [
            math.exp(-((x - mean) ** 2) / (2 * variance)) for x in range(low, math.ceil(mean + 6 * sd) + 1)
        ]
    total = sum(terms)
    return [(float(x), w / total) for x, w in enumerate(terms) if w / total > 1e-12]


def _batch_seconds(
    batch_requests: float, item_requests: float, readings: float, memory_mb: int, calibration: Calibration
) -> float:
    """Estimated time of one invocation: its requests one after another, and its CPU share."""
    vcpu = min(1.0, memory_mb / LAMBDA_MB_PER_VCPU)
    cpu = readings * calibration.cpu_seconds_per_reading / vcpu
    requests = batch_requests * DYNAMODB_BATCH_REQUEST_SECONDS + item_requests * DYNAMODB_ITEM_REQUEST_SECONDS
    return INVOCATION_OVERHEAD_SECONDS + requests + cpu


def _requests(items: float, pipeline: Pipeline, calibration: Calibration) -> tuple[int, int]:
    """(BatchGetItem, write requests) for a batch touching ``items`` items."""
    if pipeline.writes is Writes.PUT_PER_READING:
        return 0, math.ceil(items - 1e-9)
    gets = math.ceil((items + 1) / calibration.keys_per_batch_get - 1e-9)  # and the shard's partials mark
    return gets, math.ceil(items / calibration.items_per_batch_write - 1e-9)


def _processor_seconds(gets: float, writes: float, readings: float, pipeline: Pipeline, calibration: Calibration
                       ) -> float:  # fmt: skip
    if pipeline.writes is Writes.PUT_PER_READING:  # one PutItem per reading
        return _batch_seconds(0, writes, readings, pipeline.processor_memory_mb, calibration)
    return _batch_seconds(gets + writes, 0, readings, pipeline.processor_memory_mb, calibration)


def _processor(fleet: Fleet, pipeline: Pipeline, stream: Stream, calibration: Calibration) -> Processor:
    lanes = stream.shards * pipeline.parallelization_factor
    rate = fleet.readings_per_second / lanes
    sensors = fleet.sensors / lanes
    interval = fleet.reading_interval_seconds
    record_bytes = _event_record_bytes(fleet, calibration)
    batch_max = batch_records_max(fleet, pipeline, calibration)
    window = max(float(pipeline.batching_window_seconds), LAMBDA_KINESIS_POLL_SECONDS)
    full_period = batch_max / rate

    def items(n: float, span: float) -> float:
        if pipeline.writes is Writes.PUT_PER_READING:
            return n
        return items_per_batch(n, span, fleet, pipeline.aggregation_window_seconds, sensors)

    # Readings a batching window gathers vary with the sensors' phases: within one reading interval each
    # sensor reads at most once (a binomial count of the lane's sensors); over more, almost evenly.
    mean = rate * window
    counts = spread(mean, mean * (1 - window / interval) if window < interval else 0.0)
    # Each cycle ends when the window does, or when the batch fills first: weigh what it costs by how
    # often it happens, per reading (a renewal estimate).
    readings = batches = gets = writes = touched = seconds = 0.0
    for gathered, weight in counts:
        if gathered < 1:  # a window without readings invokes nothing
            continue
        n = min(gathered, float(batch_max))
        unique = items(n, window if gathered < batch_max else full_period)
        g, p = _requests(unique, pipeline, calibration)
        readings, batches = readings + weight * n, batches + weight
        gets, writes, touched = gets + weight * g, writes + weight * p, touched + weight * unique
        seconds += weight * _processor_seconds(g, p, n, pipeline, calibration)
    per_batch = readings / batches
    gets, writes, touched, seconds = gets / batches, writes / batches, touched / batches, seconds / batches
    full_gets, full_writes = _requests(items(float(batch_max), full_period), pipeline, calibration)
    full_seconds = _processor_seconds(full_gets, full_writes, batch_max, pipeline, calibration)
    # What a reading costs in the largest batch Lambda would hand over: no batch size does better.
    largest = max(1, min(LAMBDA_BATCH_MAX, int(LAMBDA_PAYLOAD_BYTES // record_bytes)))
    largest_gets, largest_writes = _requests(items(float(largest), largest / rate), pipeline, calibration)
    per_reading = _processor_seconds(largest_gets, largest_writes, largest, pipeline, calibration)
    per_reading = (per_reading - INVOCATION_OVERHEAD_SECONDS) / largest
    invocations = fleet.readings_per_second / per_batch
    period = per_batch / rate
    readings = per_batch
    sends = partials_requests(partials_per_batch(fleet, pipeline, touched, lanes, period))
    seconds += sends * DYNAMODB_ITEM_REQUEST_SECONDS
    return Processor(
        concurrency=lanes,
        readings_per_second_per_batch_lane=rate,
        batch_records_max=batch_max,
        batch_period_seconds=period,
        readings_per_batch=readings,
        items_per_batch=touched,
        batch_get_requests=gets,
        batch_write_requests=writes,
        # + the shard's watermark (``lambdas.common.silence``): one UpdateItem a batch (its ~5 ms not timed)
        requests_per_reading=(gets + writes + sends + WATERMARK_WRITES_PER_BATCH) / readings,
        seconds_per_batch=seconds,
        seconds_per_reading=per_reading,
        seconds_per_full_batch=full_seconds,
        full_batch_budget_seconds=full_period,
        invocations_per_second=invocations,
        duration_seconds_per_second=invocations * seconds,
    )


def _units(size: float, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _event_record_bytes(fleet: Fleet, calibration: Calibration) -> float:
    """One Kinesis record in the Lambda event: its base64 data and what the event adds around it."""
    return _event_bytes(fleet.payload_bytes, calibration)


def _event_bytes(data_bytes: float, calibration: Calibration) -> float:
    """A Kinesis record of ``data_bytes`` in the Lambda event: base64 data and the event's fields."""
    return 4 * math.ceil(data_bytes / 3) + calibration.kinesis_event_record_overhead_bytes


def folder_records_max(calibration: Calibration = CALIBRATION) -> int:
    """Most partials one folder batch holds: ``FOLDER_BATCH_SIZE``, or fewer when 6 MB of event fill first
    (~7,200 partials of the calibrated size)."""
    return max(1, min(FOLDER_BATCH_SIZE, int(LAMBDA_PAYLOAD_BYTES // _event_bytes(calibration.partial_record_bytes,
                                                                                  calibration))))  # fmt: skip


def batch_records_max(fleet: Fleet, pipeline: Pipeline, calibration: Calibration = CALIBRATION) -> int:
    """Most records one processor batch holds: ``batch_size``, or fewer when 6 MB of event fill first."""
    return max(1, min(pipeline.batch_size, int(LAMBDA_PAYLOAD_BYTES // _event_record_bytes(fleet, calibration))))


def window_item_bytes(readings: float, calibration: Calibration = CALIBRATION) -> float:
    """Size of the window part a sensor's ``readings``-th reading of a window lands in."""
    rows = (math.ceil(readings) - 1) % calibration.window_part_rows + 1
    return calibration.window_item_base_bytes + calibration.window_item_row_bytes * rows


def window_write_profile(
    fleet: Fleet, pipeline: Pipeline, period: float, calibration: Calibration = CALIBRATION
) -> tuple[float, float]:
    """Average (write units per item write, read units per item read) over a window's life: each write
    carries all of the window's readings so far; each read is of the item before the write."""
    interval = fleet.reading_interval_seconds
    per_window = max(1.0, pipeline.aggregation_window_seconds / interval)
    step = max(1.0, period / interval)  # readings a write adds
    writes = max(1, math.ceil(per_window / step - 1e-9))
    wcu = rcu = 0.0
    for j in range(1, writes + 1):
        now = min(per_window, j * step)
        before = min(per_window, (j - 1) * step)
        wcu += _units(window_item_bytes(now, calibration), DYNAMODB_WRITE_UNIT_BYTES)
        rcu += _units(window_item_bytes(before, calibration) if before >= 1 else 0, DYNAMODB_READ_UNIT_BYTES)
    return wcu / writes, rcu / writes


def _partitions(wcu: float, rcu: float) -> int:
    return max(
        DYNAMODB_ON_DEMAND_INITIAL_WCU // DYNAMODB_PARTITION_WCU,
        math.ceil(wcu / DYNAMODB_PARTITION_WCU),
        math.ceil(rcu / DYNAMODB_PARTITION_RCU),
    )


def _table(
    writes: float, *, wcu_each: float, rcu_each: float, item_bytes: float, hottest_writes: float, items: float
) -> Table:
    """A table's load from its item writes per second, the units each write and its read take, its
    largest item, the hottest item's writes per second and the items it stores."""
    return Table(
        item_writes_per_second=writes,
        write_units_per_second=writes * wcu_each,
        read_units_per_second=writes * rcu_each,
        write_units_per_item_write=wcu_each,
        item_bytes_max=item_bytes,
        hottest_item_writes_per_second=hottest_writes,
        hottest_item_write_units_per_second=hottest_writes * _units(item_bytes, DYNAMODB_WRITE_UNIT_BYTES),
        partitions=_partitions(writes * wcu_each, writes * rcu_each),
        stored_bytes=items * (item_bytes + DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES),
    )


def _sensor_windows(fleet: Fleet, pipeline: Pipeline, processor: Processor, calibration: Calibration) -> Table:
    rate = fleet.readings_per_second
    interval = fleet.reading_interval_seconds
    window = pipeline.aggregation_window_seconds
    if pipeline.writes is Writes.PUT_PER_READING:  # each reading its own item, about the size of its payload
        units = _units(fleet.payload_bytes, DYNAMODB_WRITE_UNIT_BYTES)
        wcu = rate * units
        days = pipeline.aggregate_ttl_days * 86_400
        stored = rate * days * (fleet.payload_bytes + DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES)
        return Table(rate, wcu, 0.0, units, fleet.payload_bytes, 1 / interval, units / interval,
                     _partitions(wcu, 0.0), stored)  # fmt: skip
    writes = rate * processor.items_per_batch / processor.readings_per_batch
    wcu_each, rcu_each = window_write_profile(fleet, pipeline, processor.batch_period_seconds, calibration)
    per_window = max(1.0, window / interval)
    full = window_item_bytes(min(per_window, calibration.window_part_rows), calibration)
    per_sensor = writes / fleet.sensors
    items = fleet.sensors * pipeline.window_item_ttl_days * 86_400 / max(window, interval)
    items *= math.ceil(per_window / calibration.window_part_rows)
    table = _table(
        writes, wcu_each=wcu_each, rcu_each=rcu_each, item_bytes=full, hottest_writes=per_sensor, items=items
    )
    # every batch also reads its shard's partials mark (with its window items) and writes it (PutItem, < 1 KB)
    marks = processor.invocations_per_second
    return replace(table, write_units_per_second=table.write_units_per_second + marks,
                   read_units_per_second=table.read_units_per_second + marks)  # fmt: skip


def aggregate_item_bytes(sources: float, calibration: Calibration = CALIBRATION) -> float:
    """Size of a segment window's aggregate folded from ``sources`` readings shards: exact sums and one
    ``src`` mark per shard, whatever its readings, sensors or window parts (``lambdas.folder.logic``)."""
    return calibration.aggregate_item_base_bytes + calibration.aggregate_item_source_bytes * (max(1.0, sources) - 1)


def segment_hit_probability(items: float, fleet: Fleet, lanes: int) -> float:
    """Chance that one processor batch touching ``items`` sensor windows carries a given segment: each lane
    holds its share of the sensors, and a segment is carried when any of its sensors is."""
    per_sensor = min(1.0 / lanes, items / fleet.sensors)
    return 1 - (1 - per_sensor) ** fleet.sensors_per_segment


def partials_per_batch(fleet: Fleet, pipeline: Pipeline, items: float, lanes: int, period: float) -> float:
    """Partials records one processor batch sends: one per segment window it touched (a batch gathered over
    ``period`` seconds spans a window's end that often)."""
    spans = 1 + min(1.0, period / pipeline.aggregation_window_seconds)
    return max(1.0, fleet.segments * segment_hit_probability(items, fleet, lanes) * spans)


def partials_requests(records: float) -> int:
    """The shard's mark (PutItem) and the PutRecords calls of a batch's partials."""
    return 1 + math.ceil(records / PUT_RECORDS_MAX - 1e-9)


def partials_shards(records: float, record_bytes: float) -> int:
    """Shards of the partials stream for ``records`` a second of ``record_bytes``, at ``HEADROOM``."""
    needed = max(records / KINESIS_SHARD_RECORDS_PER_SECOND,
                 records * record_bytes / KINESIS_SHARD_WRITE_BYTES_PER_SECOND)  # fmt: skip
    return max(1, math.ceil(needed / HEADROOM - 1e-9))


def _folder(
    fleet: Fleet, pipeline: Pipeline, processor: Processor, *, lanes: int | None, calibration: Calibration
) -> tuple[Folder, Table]:
    """The partials stream and its folder lanes: a lane gathers a batching window of its segments' partials
    (or a full batch), reads their aggregates in one BatchGetItem and puts each segment window once."""
    per_batch = partials_per_batch(
        fleet, pipeline, processor.items_per_batch, processor.concurrency, processor.batch_period_seconds
    )
    records = processor.invocations_per_second * per_batch
    record_bytes = calibration.partial_record_bytes
    shards = pipeline.partials_shard_count
    lanes = lanes or shards
    per_lane = records / lanes
    window_setting = pipeline.folder_batching_window_seconds
    gather = max(float(pipeline.batching_window_seconds if window_setting is None else window_setting),
                 LAMBDA_KINESIS_POLL_SECONDS)  # fmt: skip
    # Partials reach a lane in bursts, one per processor batch: a lane cannot invoke more often.
    every = max(gather, 1 / processor.invocations_per_second)
    per_invocation = max(1.0, min(per_lane * every, folder_records_max(calibration)))
    every = per_invocation / per_lane
    invocations = records / per_invocation
    window = float(pipeline.aggregation_window_seconds)
    # A processor batch sends one partial per segment window it touched: an invocation folding the partials
    # of ``batches`` processor batches puts each segment window they share once.
    batches = max(1.0, every * processor.invocations_per_second)
    share = min(1.0, per_batch / fleet.segments)  # chance a batch touches a given segment
    touched = fleet.segments / lanes * (1 - (1 - share) ** batches) * (1 + min(1.0, every / window))
    segment_windows = min(per_invocation, touched)
    gets = math.ceil(segment_windows / calibration.keys_per_batch_get - 1e-9)
    singles = segment_windows + calibration.folder_fixed_requests
    seconds = _batch_seconds(gets, singles, 0, pipeline.folder_memory_mb, calibration)
    full = _batch_seconds(math.ceil(FOLDER_BATCH_SIZE / calibration.keys_per_batch_get - 1e-9),
                          FOLDER_BATCH_SIZE + calibration.folder_fixed_requests, 0, pipeline.folder_memory_mb,
                          calibration)  # fmt: skip
    sources = min(fleet.sensors_per_segment, processor.concurrency)
    size = aggregate_item_bytes(sources, calibration)
    stored = fleet.segments * pipeline.aggregate_ttl_days * 86_400 / pipeline.aggregation_window_seconds
    folder = Folder(
        concurrency=lanes,
        shards=shards,
        shards_needed=partials_shards(records, record_bytes),
        records_per_second=records,
        record_bytes=record_bytes,
        records_per_invocation=per_invocation,
        segment_windows_per_invocation=segment_windows,
        seconds_between_invocations=every,
        seconds_per_invocation=seconds,
        seconds_per_full_batch=full,
        invocations_per_second=invocations,
        requests_per_second=invocations * (gets + singles),
        duration_seconds_per_second=invocations * seconds,
    )
    # One writer per segment window: its aggregate is put at most once per invocation of its lane.
    table = _table(invocations * segment_windows, wcu_each=_units(size, DYNAMODB_WRITE_UNIT_BYTES),
                   rcu_each=_units(size, DYNAMODB_READ_UNIT_BYTES), item_bytes=size, hottest_writes=1 / every,
                   items=stored)  # fmt: skip
    return folder, table


def _lake(fleet: Fleet, pipeline: Pipeline) -> Lake:
    per_record = pipeline.lake_readings_per_record
    if fleet.payload_bytes * per_record > FIREHOSE_RECORD_MAX_BYTES:
        raise CapacityError("lake_readings_per_record", f"{per_record} readings exceed a 1,000 KB Firehose record")
    records = fleet.readings_per_second / per_record
    increment = FIREHOSE_RECORD_INCREMENT_BYTES
    billed = records * _units(fleet.payload_bytes * per_record, increment) * increment
    fill = FIREHOSE_BUFFER_BYTES / (fleet.readings_per_second * fleet.payload_bytes)
    flush = min(fill, float(pipeline.firehose_buffer_seconds))
    by = "size" if fill < pipeline.firehose_buffer_seconds else "time"
    objects = 86_400 / flush
    readings = fleet.readings_per_second * 86_400
    parquet = readings * LAKE_PARQUET_BYTES_PER_READING + objects * LAKE_PARQUET_BYTES_PER_OBJECT
    quarantine = readings * QUARANTINE_SHARE * (fleet.payload_bytes + QUARANTINE_OBJECT_OVERHEAD_BYTES)
    return Lake(records, billed, fill, flush, by, objects, parquet, quarantine)


def athena_scan_bytes(c: Capacity, days: int, *, lake: bool = True, quarantine: bool = False) -> float:
    """Estimated bytes a query scans that reads today's ``dt`` partition and the ``days`` before it of the
    lake and/or the quarantine store (every column: an upper bound, Parquet lets Athena read fewer)."""
    per_day = (c.lake.bytes_per_day if lake else 0.0) + (c.lake.quarantine_bytes_per_day if quarantine else 0.0)
    return (days + 1) * per_day


def longest_scan_bytes(c: Capacity) -> float:
    """The estimated scan of the longest named query (:data:`ATHENA_LONGEST_SCAN_DAYS` of the lake)."""
    return athena_scan_bytes(c, ATHENA_LONGEST_SCAN_DAYS - 1)


def athena_cutoff_bytes(c: Capacity) -> int:
    """The workgroup's per-query cutoff: the configured one, else the longest named query's estimated scan
    times :data:`ATHENA_CUTOFF_MARGIN`, in whole GiB (at least Athena's 10 MB minimum)."""
    if c.pipeline.athena_bytes_scanned_cutoff is not None:
        return c.pipeline.athena_bytes_scanned_cutoff
    gib = 1024**3
    return max(ATHENA_MIN_CUTOFF_BYTES, math.ceil(longest_scan_bytes(c) * ATHENA_CUTOFF_MARGIN / gib) * gib)


def _ingestion(fleet: Fleet, pipeline: Pipeline) -> Ingestion:
    messages = fleet.readings_per_second
    units = _units(fleet.payload_bytes + TOPIC_BYTES, IOT_MESSAGE_INCREMENT_BYTES)
    monthly = messages * SECONDS_PER_MONTH
    billed = 0.0 if pipeline.ingest is Ingest.BASIC_INGEST else monthly * units
    rule_units = monthly * _units(fleet.payload_bytes, IOT_MESSAGE_INCREMENT_BYTES)
    return Ingestion(messages, units, billed, rule_units, fleet.sensors * MINUTES_PER_MONTH)


# ----------------------------------------------------------------------------------------- limits


def _limits(c: Capacity) -> tuple[Limit, ...]:
    return (
        *_stream_limits(c),
        *_concurrency_limits(c),
        *_table_limits(c),
        *_latency_limits(c),
        *_account_limits(c),
        *_athena_limits(c),
        Limit(
            SILENCE_RUN_LIMIT,
            "silence.timeout_seconds",
            silence_check(c).seconds_per_run,
            SILENCE_TIMEOUT_SECONDS,
            "more polling workers (a run per share of the registry's hash shards)",
        ),
    )


SILENCE_RUN_LIMIT = "silence check: a run's time vs its minute (50 s timeout)"
SILENCE_TIMEOUT_SECONDS = 50.0
"""The silence check's timeout (``EnvironmentConfig.silence``'s default and prod's)."""


def _athena_limits(c: Capacity) -> list[Limit]:
    """A cutoff below what the longest named query reads would cancel it every time it runs."""
    longest = longest_scan_bytes(c)
    return [
        Limit(
            f"Athena: estimated scan of the longest named query ({ATHENA_LONGEST_SCAN_DAYS} days of the lake) vs"
            " the workgroup's per-query cutoff (Athena cancels a query that passes it)",
            "athena_bytes_scanned_cutoff",
            longest,
            athena_cutoff_bytes(c),
            f"athena_bytes_scanned_cutoff >= {math.ceil(longest):,} (or unset: sized from the lake)",
        )
    ]


def _stream_limits(c: Capacity) -> list[Limit]:
    p, proc, folder = c.pipeline, c.processor, c.folder
    shards = math.ceil(folder.concurrency * folder.seconds_per_invocation / folder.seconds_between_invocations)
    limits = []
    if not p.on_demand:
        limits.append(
            Limit(
                "Kinesis shards (1,000 records/s, 1 MB/s in, 2 MB/s out each, run at 80 %)",
                "shard_count",
                c.stream.shards_needed,
                c.stream.shards,
                f"shard_count >= {c.stream.shards_required} (each shard adds 1,000 records/s), or ON_DEMAND",
            )
        )
    if c.readings_per_second / proc.concurrency * proc.seconds_per_reading < 1:
        lane = ("batch_size", "a larger batch_size: fewer invocations, fuller requests")
    elif p.on_demand:
        lane = (
            "stream_mode",
            "PROVISIONED with more shards (the processor keeps one batch per shard at a time: the "
            "shard's partials mark and watermark have that one writer)",
        )
    else:
        lane = (
            "shard_count",
            "more shards (the processor keeps one batch per shard at a time: the shard's "
            "partials mark and watermark have that one writer)",
        )
    limits += [
        Limit(
            "processor lane: time a full batch takes vs the time it takes to arrive (else the iterator age only grows)",
            *lane[:1],
            proc.seconds_per_full_batch,
            proc.full_batch_budget_seconds,
            lane[1],
        ),
        Limit(
            "processor timeout vs a full batch",
            "processor.timeout_seconds",
            proc.seconds_per_full_batch,
            p.processor_timeout_seconds,
            f"processor.timeout_seconds >= {math.ceil(proc.seconds_per_full_batch * 2)}, or a smaller batch_size",
        ),
        Limit(
            "folder timeout vs a full batch of as many segment windows",
            "folder.timeout_seconds",
            folder.seconds_per_full_batch,
            p.folder_timeout_seconds,
            f"folder.timeout_seconds >= {math.ceil(folder.seconds_per_full_batch * 2)}",
        ),
        Limit(
            "folder lane: time an invocation takes vs the time until the next (else the partials stream's "
            "iterator age only grows)",
            "partials_shard_count",
            folder.seconds_per_invocation,
            folder.seconds_between_invocations,
            f"partials_shard_count >= {max(shards, folder.shards_needed)} (a lane per shard: a segment stays on one)",
            blocking=False,  # it rests on the assumed request latency
        ),
        Limit(
            "partials stream shards (1,000 records/s, 1 MB/s in each, run at 80 %)",
            "partials_shard_count",
            folder.shards_needed,
            folder.shards,
            f"partials_shard_count >= {folder.shards_needed}",
        ),
    ]
    return limits


def _concurrency_limits(c: Capacity) -> list[Limit]:
    p, proc, folder = c.pipeline, c.processor, c.folder
    limits = []
    if p.processor_reserved_concurrency is not None:
        limits.append(
            Limit(
                "processor concurrency (shards x parallelization factor)",
                "processor.reserved_concurrency",
                proc.concurrency,
                p.processor_reserved_concurrency,
                f"processor.reserved_concurrency >= {proc.concurrency}",
            )
        )
    if p.folder_reserved_concurrency is not None:
        limits.append(
            Limit(
                "folder concurrency (one batch per partials stream shard)",
                "folder.reserved_concurrency",
                folder.concurrency,
                p.folder_reserved_concurrency,
                f"folder.reserved_concurrency >= {folder.concurrency}",
            )
        )
    reserved = (p.processor_reserved_concurrency or 0) + (p.folder_reserved_concurrency or 0)
    unreserved = (proc.concurrency if p.processor_reserved_concurrency is None else 0) + (
        folder.concurrency if p.folder_reserved_concurrency is None else 0
    )
    limits.append(
        Limit(
            "Lambda account concurrency",
            "lambda_concurrency_quota",
            reserved + unreserved,
            p.lambda_concurrency_quota,
            f"lambda_concurrency_quota >= {reserved + unreserved + 100} (Service Quotas L-B99A9384)",
        )
    )
    return limits


def _table_limits(c: Capacity) -> list[Limit]:
    windows, aggregates = c.sensor_windows, c.segment_aggregates
    return [
        Limit(
            "DynamoDB table write quota (sensor windows)",
            "dynamodb_table_write_quota",
            windows.write_units_per_second,
            c.pipeline.dynamodb_table_write_quota,
            f"dynamodb_table_write_quota >= {math.ceil(windows.write_units_per_second / HEADROOM):,} "
            "(Service Quotas: table-level write throughput)",
        ),
        Limit(
            "busiest segment's aggregate: one partition key (1,000 WCU/s)",
            "sensors_per_segment",
            aggregates.hottest_item_write_units_per_second,
            DYNAMODB_PARTITION_WCU,
            "split the segment, or a longer batching_window_seconds (fewer folder batches write it)",
        ),
        Limit(
            "segment aggregate item size (400 KB)",
            "sensors_per_segment",
            aggregates.item_bytes_max,
            DYNAMODB_ITEM_LIMIT_BYTES,
            "split the segment: every readings shard contributing to it is one mark of its aggregate",
        ),
        Limit(
            "a sensor's window item: one partition key (1,000 WCU/s)",
            "reading_interval_seconds",
            windows.hottest_item_write_units_per_second,
            DYNAMODB_PARTITION_WCU,
            "a longer batching_window_seconds or a shorter aggregation_window_seconds",
        ),
    ]


def newest_reading_age_seconds(c: Capacity) -> float:
    """Oldest a sensor's newest accepted reading gets in steady operation: one reading interval, then the
    next reading's wait for its processor batch (the lane's batch period) and the batch's processing."""
    return c.fleet.reading_interval_seconds + c.processor.batch_period_seconds + c.processor.seconds_per_batch


def alert_delay_seconds(c: Capacity) -> float:
    """Longest a reading waits, batched, before its segment aggregate (and an alert) shows it: its processor
    batch gathering and running, then the folder batch of its partial gathering and running."""
    p, a = c.processor, c.folder
    return p.batch_period_seconds + p.seconds_per_batch + a.seconds_between_invocations + a.seconds_per_invocation


def _latency_limits(c: Capacity) -> list[Limit]:
    """What batching may cost in latency: the contract's silent-sensor rule, and the aggregation window."""
    factor = c.pipeline.silence_factor
    silence = factor * c.fleet.reading_interval_seconds
    room = silence - c.fleet.reading_interval_seconds - c.processor.seconds_per_batch
    window = c.pipeline.aggregation_window_seconds
    return [
        Limit(
            f"a sensor's newest accepted reading vs the contract's silent-sensor age ({factor} x "
            "its reading interval): longer batches delay every silent-sensor alert by as much",
            "batching_window_seconds",
            newest_reading_age_seconds(c),
            silence,
            f"batching_window_seconds <= {max(0, math.floor(room))}",
        ),
        Limit(
            "batching delay before a reading reaches its segment aggregate vs the aggregation window (a "
            "window's alerts before the next window ends)",
            "batching_window_seconds",
            alert_delay_seconds(c),
            window,
            "a shorter batching_window_seconds, or a longer aggregation_window_seconds",
        ),
    ]


def _account_limits(c: Capacity) -> list[Limit]:
    rate = c.readings_per_second
    return [
        Limit(
            "IoT Core inbound publishes per second (account, us-east-1)",
            "Service Quotas: IoT Core inbound publishes/s",
            rate,
            IOT_INBOUND_PUBLISH_QUOTA,
            f"a quota of >= {math.ceil(rate / HEADROOM):,}/s",
            blocking=False,
        ),
        Limit(
            "Kinesis shards per account (us-east-1): the readings and the partials stream",
            "Service Quotas: Kinesis shards",
            c.stream.shards + c.folder.shards,
            KINESIS_ACCOUNT_SHARDS,
            "a higher shard quota",
            blocking=False,
        ),
    ]


def violations(capacity: Capacity) -> list[Limit]:
    """The limits the config cannot carry its fleet past (synthesis stops on the first)."""
    return [limit for limit in capacity.limits if limit.blocking and limit.exceeded]


def window_shards(fleet: Fleet, pipeline: Pipeline, calibration: Calibration = CALIBRATION) -> int:
    """Fewest shards on which a processor lane gathers readings for the whole batching window before its
    batch fills (``batch_records_max``): with fewer, batches are cut short and each sensor's readings
    share fewer window item writes than the window would allow."""
    batch = batch_records_max(fleet, pipeline, calibration) * pipeline.parallelization_factor
    return max(1, math.ceil(fleet.readings_per_second * pipeline.batching_window_seconds / batch - 1e-9))


def sized(fleet: Fleet, pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with a provisioned stream of the shards the fleet needs: enough for its throughput at
    ``HEADROOM``, and for its batching window (:func:`window_shards`); and a partials stream of the fewest
    shards whose folder lanes keep up (:func:`partials_shard_count`)."""
    provisioned = pipeline.provisioned(max(_stream(fleet, pipeline).shards_required, window_shards(fleet, pipeline)))
    return replace(provisioned, partials_shard_count=partials_shard_count(fleet, provisioned))


PARTIALS_SHARDS_MAX = 500
"""``partials_shard_count``'s upper bound (``stacks.config``)."""


def partials_shard_count(fleet: Fleet, pipeline: Pipeline) -> int:
    """Fewest partials shards for the stream's records and bytes whose folder lanes each finish an invocation
    before the next is due (the ``folder lane`` limit)."""
    for shards in range(1, PARTIALS_SHARDS_MAX + 1):
        folder = model(fleet, replace(pipeline, partials_shard_count=shards)).folder
        if shards >= folder.shards_needed and folder.seconds_per_invocation <= folder.seconds_between_invocations:
            return shards
    return PARTIALS_SHARDS_MAX


# ------------------------------------------------------------------------------------------- cost

PRICES_DIR = Path(__file__).resolve().parent.parent / "prices"


@dataclass(frozen=True)
class Price:
    value: float
    unit: str
    source: str
    tiers: tuple[tuple[float | None, float], ...] = ()
    """``(up to this many units a month, price)`` steps, the last ``None`` (no upper bound)."""

    def cost(self, units: float) -> float:
        if not self.tiers:
            return units * self.value
        total, lower = 0.0, 0.0
        for ceiling, price in self.tiers:
            upper = units if ceiling is None else min(units, ceiling)
            total += max(0.0, upper - lower) * price
            if ceiling is None or units <= ceiling:
                break
            lower = ceiling
        return total


@dataclass(frozen=True)
class PriceTable:
    region: str
    date: str
    prices: Mapping[str, Price]

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        data = json.loads(path.read_text())
        prices = {}
        for name, entry in data["prices"].items():
            tiers = tuple((t["up_to"], float(t["price"])) for t in entry.get("tiers", ()))
            prices[name] = Price(float(entry["price"]), entry["unit"], entry["source"], tiers)
        return cls(data["region"], data["date"], prices)

    def __getitem__(self, name: str) -> Price:
        return self.prices[name]


def prices_for(region: str) -> PriceTable:
    """The dated price table of ``region`` (``prices/<region>.json``)."""
    path = PRICES_DIR / f"{region}.json"
    if not path.exists():
        raise CapacityError("region", f"no price table for {region!r} ({path} does not exist)")
    return PriceTable.load(path)


@dataclass(frozen=True)
class Charge:
    """One line of the monthly bill."""

    component: str
    usage: str
    quantity: float
    """How many of ``usage`` a month."""
    usd: float


def bill(capacity: Capacity, prices: PriceTable) -> tuple[Charge, ...]:
    """The month's charges of ``capacity``, component by component, usage by usage."""
    c, p, month = capacity, capacity.pipeline, SECONDS_PER_MONTH
    charges: list[Charge] = []

    def charge(component: str, price: str, quantity: float, per: float = 1.0) -> None:
        entry = prices[price]
        charges.append(Charge(component, f"{entry.unit}", quantity / per, entry.cost(quantity / per)))

    ingest = c.ingestion
    charge("iot_messaging", "iot_messaging", ingest.billed_message_units_per_month, 1e6)
    charge("iot_rules", "iot_rules_triggered", ingest.rule_units_per_month, 1e6)
    charge("iot_rules", "iot_actions_executed", ingest.rule_units_per_month, 1e6)
    charge("iot_connectivity", "iot_connectivity", ingest.connection_minutes_per_month, 1e6)
    _kinesis_charges(c, charge)
    partials_charges(c.folder, charge)
    for name, seconds, invocations, memory in (
        ("lambda_processor", c.processor.duration_seconds_per_second, c.processor.invocations_per_second,
         p.processor_memory_mb),
        ("lambda_folder", c.folder.duration_seconds_per_second, c.folder.invocations_per_second, p.folder_memory_mb),
    ):  # fmt: skip
        charge(name, "lambda_gb_second", seconds * month * memory / 1024)
        charge(name, "lambda_requests", invocations * month, 1e6)
    _dynamodb_charges(c, charge)
    charge(
        "dynamodb_storage",
        "dynamodb_storage",
        (c.sensor_windows.stored_bytes + c.segment_aggregates.stored_bytes + fleet_stored_bytes(c)) / GIB,
    )
    lake_gb = c.lake.billed_bytes_per_second * month / GIB
    charge("firehose", "firehose_ingestion", lake_gb)
    charge("firehose", "firehose_format_conversion", lake_gb)
    charge("cloudwatch_metrics", "cloudwatch_put_metric_data", c.folder.invocations_per_second * month, 1e3)
    _operations_charges(c, charge)
    return tuple(charges)


def _kinesis_charges(c: Capacity, charge: Callable[..., None]) -> None:
    p, month, hours = c.pipeline, SECONDS_PER_MONTH, 730
    records = c.stream.records_per_second * month
    extended_days = min(max(p.stream_retention_hours - 24, 0), 144) / 24
    if p.on_demand:
        gb_in = records * _units(c.fleet.payload_bytes, 1024) / 1024**2  # records rounded up to 1 KB
        charge("kinesis", "kinesis_on_demand_stream_hour", hours)
        charge("kinesis", "kinesis_on_demand_ingest", gb_in)
        charge("kinesis", "kinesis_on_demand_retrieval", gb_in * KINESIS_CONSUMERS)
        if extended_days:  # a month holds ~30.4 days of data; each day's is kept beyond its first day
            charge("kinesis", "kinesis_on_demand_extended_retention", gb_in / 30.4 * extended_days)
        return
    shard_hours = c.stream.shards * hours
    charge("kinesis", "kinesis_shard_hour", shard_hours)
    charge("kinesis", "kinesis_put_payload_units", records * _units(c.fleet.payload_bytes, 25 * 1024), 1e6)
    if extended_days:
        charge("kinesis", "kinesis_extended_retention_shard_hour", shard_hours)


def partials_charges(folder: Folder, charge: Callable[..., None]) -> None:
    """The partials stream: provisioned shards, one PUT payload unit per record (25 KB each); the folder
    reads it as the stream's one consumer (no charge for GetRecords on a provisioned stream)."""
    charge("partials", "kinesis_shard_hour", folder.shards * 730)
    units = _units(folder.record_bytes, 25 * 1024)
    charge("partials", "kinesis_put_payload_units", folder.records_per_second * SECONDS_PER_MONTH * units, 1e6)


def monthly_cost(capacity: Capacity, prices: PriceTable) -> dict[str, float]:
    """USD a month per component, and the total."""
    costs: dict[str, float] = {}
    for line in bill(capacity, prices):
        costs[line.component] = costs.get(line.component, 0.0) + line.usd
    rounded = {k: round(v, 2) for k, v in costs.items()}
    rounded["total"] = round(sum(costs.values()), 2)
    return rounded


def cost_per_million_readings(capacity: Capacity, costs: Mapping[str, float]) -> float:
    return round(costs["total"] / (capacity.readings_per_month / 1e6), 4)


# ----------------------------------------------------------------- the whole bill (issue 20, item 5)

SILENCE_RUNS_PER_MONTH = MINUTES_PER_MONTH
"""The silence check runs every minute (``stacks.silence.SCHEDULE_EXPRESSION``: ``rate(1 minute)``)."""
FLEET_SHARDS = 64
"""Hash shards of the fleet registry (``lambdas.common.silence.FLEET_SHARDS``; a test keeps them equal): the
keys each run of the check Queries one by one."""
FLEET_ITEM_BYTES = 60
"""A fleet registry item (hash shard, sensor id, stream shard, the day it was confirmed, TTL) as a Query
reads it (``tests/test_state_layouts.py`` builds one and measures it)."""
POLL_CONCURRENT_QUERIES = 32
"""The check's Queries in flight (``lambdas.silence.service.POLL_WORKERS``: threads over one client)."""
POLL_WORKER_SECONDS = 40.0
"""Most a polling run may take (the check's timeout is under a minute)."""
WATERMARK_WRITES_PER_BATCH = 1
"""The processor records its shard's watermark once a batch (a conditional UpdateItem of a small item)."""
BATCH_GET_KEYS = 100
"""Keys of one BatchGetItem (DynamoDB's limit; ``lambdas.silence.service.BATCH_GET_KEYS``)."""
SILENCE_FIXED_REQUESTS = 3
"""Requests a run makes whatever it finds: the shards' watermarks' Query, the open outages' Query,
PutMetricData (besides the registry's ``FLEET_SHARDS`` Queries and one Query per member)."""
CUSTOM_METRIC_SERIES = 13
"""Custom metric time series (``lambdas.common.metrics``): ReadingsAccepted, DuplicateReadings,
RecordsQuarantined per rejection code (5), SegmentWindows per level (4), CongestionAlerts, SilentSensors
(``tests/test_capacity.py`` keeps the count equal to the code's)."""
ALARMS = 33
"""CloudWatch alarms of an environment (``stacks.monitoring.ALARM_CONCERNS``; a test keeps them equal): 19 on
the path and a write and a read throttle alarm for each of the 5 tables and 2 indexes."""
DASHBOARDS = 1
TABLES = 4
"""Sensor windows, segment aggregates, sensor outages, fleet (``stacks.layout.TABLES``; a test keeps them
equal)."""
KMS_KEYS = 1
"""Customer managed keys per environment (``stacks.security``); the state key of ``stacks.bootstrap`` is
shared by every environment and not counted here."""
KMS_KEY_VERSIONS = 2
"""Key-months billed per key from its first yearly rotation on: the key and one rotated backing key (AWS caps
the rotation charge at the second rotation, so at most 3)."""
KMS_DATA_KEY_SECONDS = 300
"""Assumption: the services that encrypt with the key (Kinesis per shard and caller, DynamoDB per table and
caller, SQS, SNS, S3 bucket keys, Firehose) reuse a data key for about five minutes, so each (resource,
caller) pair asks KMS about once per 300 s."""
KMS_OTHER_CALLERS = 8
"""Assumption: (resource, caller) pairs besides the streams' shards and the tables: three dead-letter
queues, the alert topic, the lake and quarantine buckets (bucket keys), Firehose and the Glue catalog."""
LOG_BYTES_PER_INVOCATION = 1_000
"""Assumption: Lambda's START/END/REPORT lines (~350 B), the X-Ray trace line and the function's one
structured line or EMF document per invocation (``lambdas.common.log``): about 1 KB of logs each."""
TRACED_FUNCTIONS = ("processor", "folder", "silence")
"""Functions with active X-Ray tracing (``stacks.processing``: ``tracing_config`` mode ``Active``)."""
XRAY_RESERVOIR_PER_SECOND = 1.0
XRAY_FIXED_RATE = 0.05
"""Lambda's default sampling rule: the first request each second, then 5 % of the others
(https://docs.aws.amazon.com/xray/latest/devguide/xray-console-sampling.html)."""
LAKE_HORIZON_MONTHS = 12
"""A kept lake (or a long log retention) grows every month: storage is priced for the twelfth month."""
DAYS_PER_MONTH = 730 / 24
QUARANTINE_OBJECTS_PER_BATCH = 1.0
"""Upper bound: every processor batch writes one quarantine object (one is written when any record of the
batch is rejected: ``lambdas.processor.logic.quarantine_object``)."""
RESERVED_TERM_HOURS = 8_760


@dataclass(frozen=True)
class SilenceCheck:
    """The silence check (``lambdas.silence``): each run polls the fleet registry and every member's newest
    state; the processor keeps the registry (once a day per sensor) and the shards' watermarks (a batch)."""

    runs_per_month: float
    queries_per_run: float
    """The registry's hash shards, one Query per member (its newest item) and the fixed ones."""
    read_units_per_run: float
    requests_per_run: float
    work_seconds_per_run: float
    """The run's requests, ``POLL_CONCURRENT_QUERIES`` at a time."""
    processor_write_units_per_second: float
    """The registry (a sensor a day) and the watermarks (one UpdateItem per processor batch)."""
    processor_read_units_per_second: float
    """The registry items a warm processor confirms: a sensor a day (eventually consistent)."""

    @property
    def write_units_per_run(self) -> float:
        return 0.0

    @property
    def seconds_per_run(self) -> float:
        return INVOCATION_OVERHEAD_SECONDS + self.work_seconds_per_run


def registry_read_units_per_run(c: Capacity) -> float:
    """What a run reads of the fleet table: the registry's hash shards, the watermarks' and the open outages'
    Queries (eventually consistent, at least half a unit each)."""
    registry = c.fleet.sensors * FLEET_ITEM_BYTES / DYNAMODB_READ_UNIT_BYTES * 0.5 + FLEET_SHARDS * 0.5
    return registry + 2 * 0.5


def polling_check(
    c: Capacity, newest_read_units: float, newest_queries: float, newest_batch_gets: float = 0.0
) -> SilenceCheck:
    """A polling check whose members' newest state costs ``newest_read_units`` per run in
    ``newest_queries`` Queries and ``newest_batch_gets`` BatchGetItem requests (eventually consistent; the
    strong re-reads of the few candidates and of young outages are not priced)."""
    f = c.fleet
    queries = newest_queries + FLEET_SHARDS + SILENCE_FIXED_REQUESTS
    work = queries * DYNAMODB_ITEM_REQUEST_SECONDS + newest_batch_gets * DYNAMODB_BATCH_REQUEST_SECONDS
    writes = f.sensors / 86_400 + c.processor.invocations_per_second * WATERMARK_WRITES_PER_BATCH
    reads = registry_read_units_per_run(c) + newest_read_units
    return SilenceCheck(SILENCE_RUNS_PER_MONTH, queries, reads, queries + newest_batch_gets,
                        work / POLL_CONCURRENT_QUERIES, writes, f.sensors / 86_400 * 0.5)  # fmt: skip


def head_poll(c: Capacity, head_units: float) -> tuple[float, float, float]:
    """What a run spends on every member's newest reading when each keeps a head item per window
    (``lambdas.silence.service``): (read units, Queries, BatchGetItem requests). A BatchGetItem of 100 heads
    of the run's window, another of the window before for the members without one yet (their first reading
    of the window is within an interval and a batching window away), eventually consistent, an absent key
    priced as a read (conservative); a Query for a member with neither (an interval longer than two
    windows). ``head_units``: the read units of one head read strongly (half of it eventually)."""
    f, p = c.fleet, c.pipeline
    window, interval = p.aggregation_window_seconds, f.reading_interval_seconds
    miss = min(1.0, (interval + p.batching_window_seconds) / window)
    neither = max(0.0, 1.0 - 2 * window / interval)
    per_key = 0.5 * head_units
    reads = f.sensors * per_key * (1 + miss + neither)
    gets = math.ceil(f.sensors / BATCH_GET_KEYS - 1e-9) + math.ceil(f.sensors * miss / BATCH_GET_KEYS - 1e-9)
    return reads, f.sensors * neither, gets


def silence_check(c: Capacity, calibration: Calibration = CALIBRATION) -> SilenceCheck:
    """Today's check: each member's window head (priced at a full window's size), by :func:`head_poll`."""
    per_window = max(1.0, c.pipeline.aggregation_window_seconds / c.fleet.reading_interval_seconds)
    part = window_item_bytes(min(per_window, calibration.window_part_rows), calibration)
    return polling_check(c, *head_poll(c, _units(part, DYNAMODB_READ_UNIT_BYTES)))


def fleet_stored_bytes(c: Capacity) -> float:
    return c.fleet.sensors * (FLEET_ITEM_BYTES + DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES)


def xray_traces_per_second(invocations_per_second: float) -> float:
    """Traces Lambda's default sampling records of a function invoked this often."""
    first = min(invocations_per_second, XRAY_RESERVOIR_PER_SECOND)
    return first + XRAY_FIXED_RATE * (invocations_per_second - first)


def lake_storage_gb_months(c: Capacity, months: int = LAKE_HORIZON_MONTHS) -> dict[str, float]:
    """GB held in each storage class in the lake's ``months``-th month: Parquet of every day kept so far,
    moved on by the lifecycle rules (STANDARD, then STANDARD_IA, then GLACIER_IR) and expired."""
    p = c.pipeline
    per_day = c.lake.bytes_per_day / GIB  # the lake's Parquet, as the Athena cutoff counts it
    kept = months * DAYS_PER_MONTH
    if p.lake_expiration_days is not None:
        kept = min(kept, p.lake_expiration_days)
    glacier = min(kept, p.lake_glacier_days if p.lake_glacier_days is not None else kept)
    ia = min(glacier, p.lake_infrequent_access_days if p.lake_infrequent_access_days is not None else glacier)
    return {
        "s3_standard_storage": per_day * ia,
        "s3_standard_ia_storage": per_day * (glacier - ia),
        "s3_glacier_ir_storage": per_day * (kept - glacier),
    }


def log_gb_per_month(c: Capacity) -> float:
    invocations = (c.processor.invocations_per_second + c.folder.invocations_per_second) * SECONDS_PER_MONTH
    return (invocations + SILENCE_RUNS_PER_MONTH) * LOG_BYTES_PER_INVOCATION / GIB


def kms_requests_per_month(c: Capacity) -> float:
    """KMS requests of the services encrypting with the environment's key: one per (resource, caller) pair
    per ``KMS_DATA_KEY_SECONDS`` (an assumption, see there)."""
    stream_pairs = c.stream.shards * (1 + KINESIS_CONSUMERS)  # the topic rule writes, two consumers read
    stream_pairs += c.folder.shards * (c.processor.concurrency + 1)  # the processor lanes write, the folder reads
    table_pairs = TABLES * (c.processor.concurrency + c.folder.concurrency + 1)
    return (stream_pairs + table_pairs + KMS_OTHER_CALLERS) * SECONDS_PER_MONTH / KMS_DATA_KEY_SECONDS


def dynamodb_loads(c: Capacity) -> tuple[tuple[str, str, float, float], ...]:
    """``(component, table, write units/s, read units/s)`` of every DynamoDB load of the bill: the table
    decides how it is bought (:data:`PROVISIONED_TABLES`)."""
    g = c.segment_aggregates
    check = silence_check(c)
    per_second = check.runs_per_month / SECONDS_PER_MONTH
    registry = registry_read_units_per_run(c)
    return (
        ("dynamodb_sensor_windows", "sensor-windows", c.sensor_windows.write_units_per_second,
         c.sensor_windows.read_units_per_second),
        # one writer per segment window (the folder): no conditional put is refused, none is paid twice
        ("dynamodb_aggregates", "segment-aggregates", g.write_units_per_second, g.read_units_per_second),
        # the check: the registry and watermarks (the fleet table), and each member's newest window item
        ("silence_check", "fleet", check.processor_write_units_per_second,
         check.processor_read_units_per_second + registry * per_second),
        ("silence_check", "sensor-windows", 0.0, (check.read_units_per_run - registry) * per_second),
    )  # fmt: skip


# ------------------------------------------------------------ provisioned capacity (issue 20, item 4)

DYNAMODB_AUTO_SCALING = "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/AutoScaling.html"
TARGET_TRACKING_ALARMS = 4
"""CloudWatch alarms Application Auto Scaling creates for each target tracking policy of a DynamoDB table
(high and low use, high and low provisioned units): billed like ours."""
PROVISIONED_TABLES = ("sensor-windows", "segment-aggregates")
"""Tables whose throughput is provisioned in ``provisioned`` mode: the data path's, written at a steady rate
the model knows. The fleet, outages and allow-list tables stay on demand in every mode: their writes come in
bursts (every sensor's registry item is renewed in the first batches of a UTC day; a silence check that finds
many sensors silent at once; a fleet onboarding) that provisioned units would throttle before auto scaling
reacts (it needs two minutes of high use to scale out), and on demand they cost nothing when idle."""
INDEX_HEADROOM = 2.0
"""A global secondary index is not auto scaled (Terraform's ``aws_dynamodb_table`` would reset its capacity on
every apply; the provider's separate ``aws_dynamodb_global_secondary_index`` needs 6.28+), so it is
provisioned at twice its steady load (at the target): a write the index cannot take throttles the table's
write too (DYNAMODB_AUTO_SCALING), and the throttle alarms show it."""
PROVISIONED_UNITS_MAX = 40_000
"""A table's or index's provisioned read or write units per second, default quota (Service Quotas,
"Table-level read/write throughput", adjustable)."""


@dataclass(frozen=True)
class Throughput:
    """Provisioned units of a table (auto scaled from ``minimum`` to ``maximum``) or an index (fixed at
    ``maximum``, which is then also its ``minimum``)."""

    write_load: float
    """Steady write units per second the model expects."""
    read_load: float
    min_write: int
    max_write: int
    min_read: int
    max_read: int


def auto_scaling_alarms(c: Capacity) -> int:
    """The alarms auto scaling keeps: a read and a write policy on each provisioned table."""
    if c.pipeline.dynamodb_capacity is DynamoDBCapacity.ON_DEMAND:
        return 0
    return TARGET_TRACKING_ALARMS * 2 * len(PROVISIONED_TABLES)


def replay_factor(c: Capacity) -> float:
    """How many times the steady reading rate the processor takes when it works through a backlog (every
    lane busy with full batches): the burst a replay, a redrive or a catch-up after an outage sends to the
    tables."""
    p = c.processor
    return max(1.0, p.concurrency * p.batch_records_max / p.seconds_per_full_batch / c.readings_per_second)


def _units_at(load: float, target: float) -> int:
    return min(PROVISIONED_UNITS_MAX, max(1, math.ceil(load / target - 1e-9)))


def provisioned_throughput(c: Capacity) -> dict[str, Throughput]:
    """What ``provisioned`` mode deploys, by table concern and ``<table>/<index>``: each table's minimum at its
    steady load over the auto scaling target and maximum at :func:`replay_factor` times that; each index at
    :data:`INDEX_HEADROOM` times its steady load. Empty on demand."""
    p = c.pipeline
    if p.dynamodb_capacity is DynamoDBCapacity.ON_DEMAND:
        return {}
    target, burst = p.dynamodb_target_utilisation, replay_factor(c)
    # the check's reads come once a minute: a table's unused units carry over up to 300 s, so the average counts
    by_table: dict[str, list[float]] = {}
    for _, table, wcu, rcu in dynamodb_loads(c):
        load = by_table.setdefault(table, [0.0, 0.0])
        load[0] += wcu
        load[1] += rcu
    # every segment window of the fleet claims and marks its alert within one window (the worst case)
    claims = 2 * c.fleet.segments / p.aggregation_window_seconds
    sweeps = c.folder.invocations_per_second * 0.5  # each invocation's Query of expired claims
    loads = {
        "sensor-windows": (*by_table["sensor-windows"], True),
        "segment-aggregates": (*by_table["segment-aggregates"], True),
        "segment-aggregates/pending-alerts": (claims, sweeps, False),
    }
    result = {}
    for name, (write, read, scaled) in loads.items():
        if scaled:
            result[name] = Throughput(write, read, _units_at(write, target), _units_at(write * burst, target),
                                      _units_at(read, target), _units_at(read * burst, target))  # fmt: skip
        else:
            wu, ru = _units_at(write * INDEX_HEADROOM, target), _units_at(read * INDEX_HEADROOM, target)
            result[name] = Throughput(write, read, wu, wu, ru, ru)
    return result


def _dynamodb_charges(c: Capacity, charge: Callable[..., None]) -> None:
    """On demand: request units. Provisioned: units sized to the load at the auto scaling target, a share of
    them reserved for a year (its upfront spread over the term's twelve months)."""
    on_demand = replace(c.pipeline, dynamodb_capacity=DynamoDBCapacity.ON_DEMAND)
    provisioned = c.pipeline.dynamodb_capacity is not DynamoDBCapacity.ON_DEMAND
    loads: dict[tuple[str, bool], list[float]] = {}  # a component's loads, by how their tables are bought
    for component, table, wcu, rcu in dynamodb_loads(c):
        load = loads.setdefault((component, provisioned and table in PROVISIONED_TABLES), [0.0, 0.0])
        load[0] += wcu
        load[1] += rcu
    for (component, bought), (wcu, rcu) in loads.items():
        dynamodb_load_charges(component, wcu, rcu, c.pipeline if bought else on_demand, charge)
    # An auto scaled table's units follow its load at the target (the lines above); an index's are fixed at
    # INDEX_HEADROOM times that, and the difference is paid too.
    target = c.pipeline.dynamodb_target_utilisation
    extra_w = extra_r = 0.0
    for name, t in provisioned_throughput(c).items():
        if "/" in name:
            extra_w += t.max_write - t.write_load / target
            extra_r += t.max_read - t.read_load / target
    if extra_w or extra_r:
        dynamodb_load_charges("dynamodb_index_headroom", extra_w * target, extra_r * target, c.pipeline, charge)


def dynamodb_load_charges(
    component: str, wcu: float, rcu: float, pipeline: Pipeline, charge: Callable[..., None]
) -> None:
    """Charge a DynamoDB load (write and read units per second) as ``pipeline`` buys throughput."""
    month = SECONDS_PER_MONTH
    if pipeline.dynamodb_capacity is DynamoDBCapacity.ON_DEMAND:
        charge(component, "dynamodb_write_request_units", wcu * month, 1e6)
        charge(component, "dynamodb_read_request_units", rcu * month, 1e6)
        return
    for kind, load in (("wcu", wcu), ("rcu", rcu)):
        units = load / pipeline.dynamodb_target_utilisation
        reserved = units * pipeline.dynamodb_reserved_share
        charge(component, f"dynamodb_provisioned_{kind}_hour", (units - reserved) * 730)
        if reserved:
            charge(component, f"dynamodb_reserved_{kind}_100_hour", reserved / 100 * 730)
            charge(component, f"dynamodb_reserved_{kind}_100_upfront", reserved / 100 * 730 / RESERVED_TERM_HOURS)


def _operations_charges(c: Capacity, charge: Callable[..., None]) -> None:
    """What the data path's lines leave out: backups, the silence check, monitoring, tracing, keys, S3."""
    p, month = c.pipeline, SECONDS_PER_MONTH
    stored = c.sensor_windows.stored_bytes + c.segment_aggregates.stored_bytes + fleet_stored_bytes(c)
    charge("dynamodb_pitr", "dynamodb_pitr", stored / GIB)
    check = silence_check(c)
    charge("silence_check", "scheduler_invocations", check.runs_per_month, 1e6)
    charge("silence_check", "lambda_requests", check.runs_per_month, 1e6)
    charge(
        "silence_check", "lambda_gb_second", check.runs_per_month * check.seconds_per_run * p.silence_memory_mb / 1024
    )
    charge("silence_check", "cloudwatch_put_metric_data", check.runs_per_month, 1e3)
    charge("cloudwatch_metrics", "cloudwatch_custom_metric", CUSTOM_METRIC_SERIES)
    charge("cloudwatch_alarms", "cloudwatch_alarm", ALARMS + auto_scaling_alarms(c))
    charge("cloudwatch_dashboard", "cloudwatch_dashboard", DASHBOARDS)
    logs = log_gb_per_month(c)
    charge("cloudwatch_logs", "cloudwatch_logs_ingestion", logs)
    charge("cloudwatch_logs", "cloudwatch_logs_storage", logs * min(p.log_retention_days / DAYS_PER_MONTH,
                                                                      LAKE_HORIZON_MONTHS))  # fmt: skip
    rates = {"processor": c.processor.invocations_per_second, "folder": c.folder.invocations_per_second,
             "silence": check.runs_per_month / month}  # fmt: skip
    traces = sum(xray_traces_per_second(rates[name]) for name in TRACED_FUNCTIONS) * month
    charge("xray", "xray_traces_recorded", traces, 1e6)
    charge("kms", "kms_key_month", KMS_KEYS * KMS_KEY_VERSIONS)
    charge("kms", "kms_requests", kms_requests_per_month(c), 1e4)
    puts = (
        c.lake.objects_per_day * DAYS_PER_MONTH
        + c.processor.invocations_per_second * month * QUARANTINE_OBJECTS_PER_BATCH
    )
    charge("s3", "s3_put_requests", puts, 1e3)
    for price, gb in lake_storage_gb_months(c).items():
        charge("s3", price, gb)


# ------------------------------------------------------------------------------ batching lever

BATCHING_WINDOWS = (0, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300)
"""Processor batching windows weighed by :func:`batching_choice` (Lambda takes 0-300 s): round values,
so that a choice is not pinned to the edge of a limit."""
BATCHING_TIE = 0.01
"""Options within 1 % of the cheapest are a tie; the shortest window among them wins (latency is a price)."""


@dataclass(frozen=True)
class Batching:
    """One batching window on the stream :func:`sized` gives it, and what it costs."""

    capacity: Capacity
    monthly_usd: float

    @property
    def window_seconds(self) -> int:
        return self.capacity.pipeline.batching_window_seconds

    @property
    def shards(self) -> int:
        return self.capacity.stream.shards

    @property
    def fits(self) -> bool:
        """Breaks no limit synthesis enforces (the silent-sensor age and the aggregation window among them)."""
        return not violations(self.capacity)

    @property
    def window_writes_per_reading(self) -> float:
        c = self.capacity
        return c.sensor_windows.item_writes_per_second / c.readings_per_second

    @property
    def aggregate_puts_per_reading(self) -> float:
        c = self.capacity
        return c.segment_aggregates.item_writes_per_second / c.readings_per_second


def batching_options(
    fleet: Fleet, pipeline: Pipeline, prices: PriceTable, windows: tuple[int, ...] = BATCHING_WINDOWS
) -> tuple[Batching, ...]:
    """Each batching window (the folder mapping's following it, as the stack sets both) on a provisioned
    stream of the shards :func:`sized` gives it, with its monthly cost."""
    options = []
    for window in windows:
        capacity = model(fleet, sized(fleet, replace(pipeline, batching_window_seconds=window)))
        options.append(Batching(capacity, monthly_cost(capacity, prices)["total"]))
    return tuple(options)


def batching_choice(
    fleet: Fleet, pipeline: Pipeline, prices: PriceTable, windows: tuple[int, ...] = BATCHING_WINDOWS
) -> Batching:
    """The batching window and shards to adopt: the cheapest option that breaks no enforced limit, the
    shortest window among those within ``BATCHING_TIE`` of it."""
    fitting = [o for o in batching_options(fleet, pipeline, prices, windows) if o.fits]
    if not fitting:
        raise CapacityError("batching_window_seconds", f"no window of {windows} carries the fleet")
    cheapest = min(o.monthly_usd for o in fitting)
    return min((o for o in fitting if o.monthly_usd <= cheapest * (1 + BATCHING_TIE)), key=lambda o: o.window_seconds)


# ------------------------------------------------------------------------------------- onboarding

BULK_REGISTRY_OPERATIONS = (
    "DescribeThing",
    "CreateThing",
    "AttachThingPrincipal",
    "AddThingToThingGroup",
    "UpdateThing",
)
"""Registry operations ``python -m tools.fleet register`` makes per new sensor (metered as listed on
https://aws.amazon.com/iot-core/pricing/additional-details/); its other calls (CreateKeysAndCertificate,
AttachPolicy, UpdateCertificate, and the allow-list UpdateItem) are not registry operations."""
BULK_OTHER_CALLS = ("UpdateItem", "CreateKeysAndCertificate", "AttachPolicy", "UpdateCertificate")
BULK_GROUP_PAGE = 250
"""``ListThingsInThingGroup`` results a page (its maximum): one per 250 things already in the group, per batch."""
CLAIM_REGISTRY_OPERATIONS = ("CreateThing", "AddThingToThingGroup", "AttachThingPrincipal")
"""What RegisterThing does in the registry for a claim template's thing (the certificate and policy steps
are not registry operations)."""
CLAIM_MESSAGES = 6
"""MQTT messages of one claim, each under 5 KB: two SUBSCRIBEs (the accepted/rejected replies of
CreateKeysAndCertificate and of RegisterThing, one wildcard filter each), two PUBLISH requests and the
two replies IoT sends (https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html)."""
HOOK_SECONDS = 0.1
"""Billed duration of one pre-provisioning hook invocation: one conditional UpdateItem (an assumption,
rounded up; Lambda bills by the millisecond)."""


@dataclass(frozen=True)
class Onboarding:
    """What onboarding ``sensors`` new sensors one way costs, once (not a monthly charge)."""

    way: str
    """``claim`` (fleet provisioning by claim) or ``bulk`` (``tools.fleet register``)."""
    sensors: int
    api_calls: int
    """AWS API calls (control plane, or made by IoT on the device's behalf) in all."""
    registry_operations: int
    messages: int
    hook_invocations: int
    allow_list_writes: int
    charges: tuple[Charge, ...]

    @property
    def usd(self) -> float:
        return round(sum(c.usd for c in self.charges), 4)


def onboarding(
    way: str, sensors: int, prices: PriceTable, *, fleet_size: int = 0, hook_memory_mb: int = 256
) -> Onboarding:
    """Calls and cost of onboarding ``sensors`` new sensors ``way`` into a fleet of ``fleet_size``."""
    _int("sensors", sensors, 0, 10_000_000)
    charges: list[Charge] = []

    def charge(component: str, price: str, quantity: float, per: float = 1.0) -> None:
        entry = prices[price]
        charges.append(Charge(component, entry.unit, quantity / per, entry.cost(quantity / per)))

    if way == "bulk":
        pages = -(-fleet_size // BULK_GROUP_PAGE) or 1
        registry = sensors * len(BULK_REGISTRY_OPERATIONS) + pages
        calls = registry + sensors * len(BULK_OTHER_CALLS)
        charge("iot_registry", "iot_registry_operations", registry, 1e6)
        charge("dynamodb_allow_list", "dynamodb_write_request_units", sensors, 1e6)
        return Onboarding(way, sensors, calls, registry, 0, 0, sensors, tuple(charges))
    if way != "claim":
        raise CapacityError("way", f"must be claim or bulk, got {way!r}")
    registry = sensors * len(CLAIM_REGISTRY_OPERATIONS)
    messages = sensors * CLAIM_MESSAGES
    charge("iot_registry", "iot_registry_operations", registry, 1e6)
    charge("iot_messaging", "iot_messaging", messages, 1e6)
    charge("lambda_provisioning", "lambda_gb_second", sensors * HOOK_SECONDS * hook_memory_mb / 1024)
    charge("lambda_provisioning", "lambda_requests", sensors, 1e6)
    charge("dynamodb_allow_list", "dynamodb_write_request_units", sensors, 1e6)
    # Per claim: CreateKeysAndCertificate, RegisterThing (and within it UpdateCertificate, AttachPolicy and
    # the registry operations), the hook's Invoke and its UpdateItem.
    calls = sensors * (2 + 2 + len(CLAIM_REGISTRY_OPERATIONS) + 2)
    return Onboarding(way, sensors, calls, registry, messages, sensors, sensors, tuple(charges))
