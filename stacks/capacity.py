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
ALERT_BATCH_SIZE = 1_000
"""The alert mapping's batch size (``stacks.layout.ALERT_BATCH_SIZE``; a test keeps them equal)."""

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
    """DynamoDB size of a segment aggregate without its partials (fit: base + parts x (partial + growth x
    log10 of readings per part))."""
    aggregate_item_partial_bytes: float
    """What one more sensor part of one reading adds to a segment aggregate."""
    aggregate_item_partial_growth_bytes: float
    """What a part's entry grows by with every tenfold of its readings (its exact sums' digits)."""
    alert_fixed_requests: int
    """Requests every alert invocation makes whatever it folds (the expired-claims Query, PutMetricData)."""
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
    alert_memory_mb: int
    alert_timeout_seconds: int
    alert_reserved_concurrency: int | None
    aggregation_window_seconds: int
    firehose_buffer_seconds: int
    stream_retention_hours: int
    aggregate_ttl_days: int
    lambda_concurrency_quota: int
    dynamodb_table_write_quota: int = DYNAMODB_TABLE_WRITE_QUOTA
    parallelization_factor: int = 1
    """The processor mapping's ParallelizationFactor; the stack leaves Lambda's default, 1."""
    ingest: Ingest = Ingest.BASIC_INGEST
    """How sensors publish; the stack deploys Basic Ingest."""
    writes: Writes = Writes.WINDOW_ITEMS
    alert_batching_window_seconds: int | None = None
    """The alert mapping's batching window; ``None``: the same as the processor's (as the stack sets it)."""
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
    dynamodb_target_utilisation: float = 0.7
    """Provisioned mode: the auto scaling target (consumed / provisioned), 0.2-0.9 as Application Auto
    Scaling takes it for DynamoDB."""
    dynamodb_reserved_share: float = 0.0
    """Provisioned mode: the share of the provisioned units covered by one-year reserved capacity, 0-1."""

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
        """The naive design: standard messaging, one PutItem per reading, an on-demand stream."""
        return replace(self, on_demand=True, shard_count=None, ingest=Ingest.TOPIC, writes=Writes.PUT_PER_READING)

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
class Alert:
    concurrency: int
    """One batch per table stream shard; shards follow the table's partitions (estimated)."""
    changes_per_second: float
    changes_per_invocation: float
    segment_windows_per_invocation: float
    """Segment aggregates one invocation reads and puts (one conditional PutItem each)."""
    seconds_between_invocations: float
    """Per lane: the time an invocation has before the next batch of changes is due."""
    seconds_per_invocation: float
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
    alert: Alert
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
    fleet: Fleet, pipeline: Pipeline, calibration: Calibration = CALIBRATION, *, alert_lanes: int | None = None
) -> Capacity:
    """Capacity of ``pipeline`` carrying ``fleet``: pure arithmetic, well under a millisecond.
    ``alert_lanes`` replaces the estimate of the table stream's shards (the calibration runs one)."""
    rate = fleet.readings_per_second
    stream = _stream(fleet, pipeline)
    processor = _processor(fleet, pipeline, stream, calibration)
    windows = _sensor_windows(fleet, pipeline, processor, calibration)
    alert, aggregates = _alert(
        fleet, pipeline, processor, windows, lanes=alert_lanes or windows.partitions, calibration=calibration
    )
    capacity = Capacity(
        fleet=fleet,
        pipeline=pipeline,
        readings_per_second=rate,
        readings_per_month=rate * SECONDS_PER_MONTH,
        stream=stream,
        processor=processor,
        sensor_windows=windows,
        alert=alert,
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
    gets = math.ceil(items / calibration.keys_per_batch_get - 1e-9)
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
        requests_per_reading=(gets + writes + WATERMARK_WRITES_PER_BATCH) / readings,
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
    return 4 * math.ceil(fleet.payload_bytes / 3) + calibration.kinesis_event_record_overhead_bytes


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
    items = fleet.sensors * pipeline.aggregate_ttl_days * 86_400 / max(window, interval)
    items *= math.ceil(per_window / calibration.window_part_rows)
    return _table(writes, wcu_each=wcu_each, rcu_each=rcu_each, item_bytes=full, hottest_writes=per_sensor, items=items)


def aggregate_item_bytes(parts: float, readings_per_part: float, calibration: Calibration = CALIBRATION) -> float:
    """Size of a segment window's aggregate with ``parts`` sensor window parts folded in, each holding
    ``readings_per_part`` readings (its exact sums grow a digit with every tenfold)."""
    per_part = calibration.aggregate_item_partial_bytes
    per_part += calibration.aggregate_item_partial_growth_bytes * math.log10(max(1.0, readings_per_part))
    return calibration.aggregate_item_base_bytes + per_part * parts


def aggregate_write_units(
    fleet: Fleet, pipeline: Pipeline, every: float, calibration: Calibration = CALIBRATION
) -> float:
    """Average write units of a segment aggregate put at every ``every`` seconds of a window: during the
    window's first reading interval its sensors join one by one; their sums grow until it ends."""
    interval, window, spp = (
        fleet.reading_interval_seconds,
        pipeline.aggregation_window_seconds,
        fleet.sensors_per_segment,
    )
    puts = max(1, min(240, math.ceil(window / every)))
    total = 0
    for j in range(puts):
        t = (j + 0.5) * window / puts
        parts = max(1.0, spp * min(1.0, t / interval))
        readings = max(1.0, min(t, window) / interval)
        total += _units(aggregate_item_bytes(parts, readings, calibration), DYNAMODB_WRITE_UNIT_BYTES)
    return total / puts


def segment_hit_probability(changes: float, fleet: Fleet, lanes: int) -> float:
    """Chance that one alert invocation of ``changes`` window changes carries a given segment: each lane
    reads the changes of its share of the sensors, and a segment is carried when any of its sensors is."""
    per_sensor = min(1.0 / lanes, changes / fleet.sensors)
    return 1 - (1 - per_sensor) ** fleet.sensors_per_segment


def _alert(
    fleet: Fleet, pipeline: Pipeline, processor: Processor, windows: Table, *, lanes: int, calibration: Calibration
) -> tuple[Alert, Table]:
    changes = windows.item_writes_per_second
    per_lane = changes / lanes
    window = pipeline.alert_batching_window_seconds
    gather = max(float(pipeline.batching_window_seconds if window is None else window),
                 LAMBDA_DYNAMODB_STREAM_POLL_SECONDS)  # fmt: skip
    # Changes reach a lane in bursts, one per processor batch: a lane cannot invoke more often.
    every = max(gather, 1 / processor.invocations_per_second)
    per_invocation = max(1.0, min(per_lane * every, ALERT_BATCH_SIZE))
    every = per_invocation / per_lane
    invocations = changes / per_invocation
    hit = segment_hit_probability(per_invocation, fleet, lanes)
    segment_windows = fleet.segments * hit
    gets = math.ceil(segment_windows / calibration.keys_per_batch_get - 1e-9)
    singles = segment_windows + calibration.alert_fixed_requests
    seconds = _batch_seconds(gets, singles, 0, pipeline.alert_memory_mb, calibration)
    requests = gets + singles
    puts = invocations * segment_windows
    wcu_each = aggregate_write_units(fleet, pipeline, every / max(hit * lanes, 1e-9), calibration)
    per_window = max(1.0, pipeline.aggregation_window_seconds / fleet.reading_interval_seconds)
    full = aggregate_item_bytes(fleet.sensors_per_segment, per_window, calibration)
    rcu_each = _units(full, DYNAMODB_READ_UNIT_BYTES)
    # A segment's current window is written by every invocation that carries one of its sensors' changes.
    hot = min(lanes / every * hit, fleet.sensors_per_segment * windows.hottest_item_writes_per_second)
    stored = fleet.segments * pipeline.aggregate_ttl_days * 86_400 / pipeline.aggregation_window_seconds
    alert = Alert(
        concurrency=lanes,
        changes_per_second=changes,
        changes_per_invocation=per_invocation,
        segment_windows_per_invocation=segment_windows,
        seconds_between_invocations=every,
        seconds_per_invocation=seconds,
        invocations_per_second=invocations,
        requests_per_second=invocations * requests,
        duration_seconds_per_second=invocations * seconds,
    )
    table = _table(puts, wcu_each=wcu_each, rcu_each=rcu_each, item_bytes=full, hottest_writes=hot, items=stored)
    return alert, table


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
    p, proc, alert = c.pipeline, c.processor, c.alert
    factor = math.ceil(alert.seconds_per_invocation / alert.seconds_between_invocations)
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
        lane = ("stream_mode", "PROVISIONED with more shards, or a processor parallelization factor: more lanes")
    else:
        lane = ("shard_count", "more shards, or a processor parallelization factor: more lanes")
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
            "alert lane: time an invocation takes vs the time until the next (else the table stream's "
            "iterator age only grows)",
            "design: alert puts",
            alert.seconds_per_invocation,
            alert.seconds_between_invocations,
            f"a parallelization factor >= {factor} on the alert mapping (stacks/processing.py), or concurrent "
            "puts in the alert function; more sensors per segment",
            blocking=False,  # no config field moves it, and it rests on the assumed request latency
        ),
    ]
    return limits


def _concurrency_limits(c: Capacity) -> list[Limit]:
    p, proc, alert = c.pipeline, c.processor, c.alert
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
    if p.alert_reserved_concurrency is not None:
        limits.append(
            Limit(
                "alert concurrency (one batch per table stream shard, ~ the table's partitions)",
                "alert.reserved_concurrency",
                alert.concurrency,
                p.alert_reserved_concurrency,
                f"alert.reserved_concurrency >= {alert.concurrency}",
            )
        )
    reserved = (p.processor_reserved_concurrency or 0) + (p.alert_reserved_concurrency or 0)
    unreserved = (proc.concurrency if p.processor_reserved_concurrency is None else 0) + (
        alert.concurrency if p.alert_reserved_concurrency is None else 0
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
            "split the segment, or a longer batching_window_seconds (fewer alert batches write it)",
        ),
        Limit(
            "segment aggregate item size (400 KB)",
            "sensors_per_segment",
            aggregates.item_bytes_max,
            DYNAMODB_ITEM_LIMIT_BYTES,
            "split the segment: every sensor part of a window is one entry of its aggregate",
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
    batch gathering and running, then the alert batch of its window change gathering and running."""
    p, a = c.processor, c.alert
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
            "Kinesis shards per account (us-east-1)",
            "Service Quotas: Kinesis shards",
            c.stream.shards,
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
    ``HEADROOM``, and for its batching window (:func:`window_shards`)."""
    return pipeline.provisioned(max(_stream(fleet, pipeline).shards_required, window_shards(fleet, pipeline)))


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
    for name, seconds, invocations, memory in (
        ("lambda_processor", c.processor.duration_seconds_per_second, c.processor.invocations_per_second,
         p.processor_memory_mb),
        ("lambda_alert", c.alert.duration_seconds_per_second, c.alert.invocations_per_second, p.alert_memory_mb),
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
    charge("cloudwatch_metrics", "cloudwatch_put_metric_data", c.alert.invocations_per_second * month, 1e3)
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
SILENCE_FIXED_REQUESTS = 3
"""Requests a run makes whatever it finds: the shards' watermarks' Query, the open outages' Query,
PutMetricData (besides the registry's ``FLEET_SHARDS`` Queries and one Query per member)."""
CUSTOM_METRIC_SERIES = 13
"""Custom metric time series (``lambdas.common.metrics``): ReadingsAccepted, DuplicateReadings,
RecordsQuarantined per rejection code (5), SegmentWindows per level (4), CongestionAlerts, SilentSensors
(``tests/test_capacity.py`` keeps the count equal to the code's)."""
ALARMS = 19
"""CloudWatch alarms of an environment (``stacks.monitoring.ALARM_CONCERNS``; a test keeps them equal)."""
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
"""Assumption: (resource, caller) pairs besides the stream's shards and the tables: three dead-letter
queues, the alert topic, the lake and quarantine buckets (bucket keys), Firehose and the Glue catalog."""
LOG_BYTES_PER_INVOCATION = 1_000
"""Assumption: Lambda's START/END/REPORT lines (~350 B), the X-Ray trace line and the function's one
structured line or EMF document per invocation (``lambdas.common.log``): about 1 KB of logs each."""
TRACED_FUNCTIONS = ("processor", "alert", "silence")
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
CONFLICT_READ_WRITE_GAP_SHARE = 0.5
"""An alert invocation reads its aggregates first (one BatchGetItem) and puts them one after another: on
average a put lands half an invocation after the read it is conditioned on."""
MAX_CONFLICTS = 8
"""Conditional puts a window may lose before its records fail (``lambdas.alert.service.MAX_CONFLICTS``)."""
DYNAMODB_WRITE_FAILED_CONDITION = (
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html"
    "#WorkingWithItems.ConditionalUpdate"
)
"""A conditional write whose condition fails still consumes write units for the item's size (not readable in
the stored copy: verify). moto never produces the conflicts, so they are modelled, not measured."""
RESERVED_TERM_HOURS = 8_760


def aggregate_conflicts_per_put(c: Capacity) -> float:
    """Expected failed conditional puts for each aggregate put that succeeds.

    Several alert lanes fold the same segment window (its sensors sit on different stream shards). A put is
    conditioned on the version its invocation read ``CONFLICT_READ_WRITE_GAP_SHARE`` of an invocation
    earlier; it fails when another lane put the window in between. The other lanes' puts of one window
    arrive at ``(lanes - 1) x hit / every`` per second (``hit``: the chance an invocation carries the
    window), so a put fails with ``p = 1 - exp(-rate x gap)``; its retry re-reads and may fail again, up to
    ``MAX_CONFLICTS`` times: ``p + p^2 + ...``."""
    a = c.alert
    if c.pipeline.writes is Writes.PUT_PER_READING or a.concurrency <= 1:
        return 0.0
    hit = min(1.0, a.segment_windows_per_invocation / c.fleet.segments)
    rate = (a.concurrency - 1) * hit / a.seconds_between_invocations
    p = 1 - math.exp(-rate * a.seconds_per_invocation * CONFLICT_READ_WRITE_GAP_SHARE)
    return sum(p**k for k in range(1, MAX_CONFLICTS + 1))


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


def polling_check(c: Capacity, newest_read_units: float, newest_queries: float) -> SilenceCheck:
    """A polling check whose members' newest state costs ``newest_read_units`` per run in
    ``newest_queries`` Queries (eventually consistent; the strong re-reads of the few candidates and the
    open outages' reads are not priced)."""
    f = c.fleet
    registry = f.sensors * FLEET_ITEM_BYTES / DYNAMODB_READ_UNIT_BYTES * 0.5 + FLEET_SHARDS * 0.5
    fixed = 2 * 0.5  # the watermarks' and the open outages' Queries, at least half a unit each
    queries = newest_queries + FLEET_SHARDS + SILENCE_FIXED_REQUESTS
    work = queries * DYNAMODB_ITEM_REQUEST_SECONDS / POLL_CONCURRENT_QUERIES
    writes = f.sensors / 86_400 + c.processor.invocations_per_second * WATERMARK_WRITES_PER_BATCH
    return SilenceCheck(SILENCE_RUNS_PER_MONTH, queries, registry + fixed + newest_read_units, queries, work,
                        writes, f.sensors / 86_400 * 0.5)  # fmt: skip


def silence_check(c: Capacity, calibration: Calibration = CALIBRATION) -> SilenceCheck:
    """Today's check: one Query of each member's newest window part (its current window: priced at a full
    window's size)."""
    per_window = max(1.0, c.pipeline.aggregation_window_seconds / c.fleet.reading_interval_seconds)
    part = window_item_bytes(min(per_window, calibration.window_part_rows), calibration)
    units = c.fleet.sensors * 0.5 * _units(part, DYNAMODB_READ_UNIT_BYTES)
    return polling_check(c, units, c.fleet.sensors)


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
    invocations = (c.processor.invocations_per_second + c.alert.invocations_per_second) * SECONDS_PER_MONTH
    return (invocations + SILENCE_RUNS_PER_MONTH) * LOG_BYTES_PER_INVOCATION / GIB


def kms_requests_per_month(c: Capacity) -> float:
    """KMS requests of the services encrypting with the environment's key: one per (resource, caller) pair
    per ``KMS_DATA_KEY_SECONDS`` (an assumption, see there)."""
    stream_pairs = c.stream.shards * (1 + KINESIS_CONSUMERS)  # the topic rule writes, two consumers read
    table_pairs = TABLES * (c.processor.concurrency + c.alert.concurrency + 1)
    return (stream_pairs + table_pairs + KMS_OTHER_CALLERS) * SECONDS_PER_MONTH / KMS_DATA_KEY_SECONDS


def dynamodb_loads(c: Capacity) -> tuple[tuple[str, float, float], ...]:
    """``(component, write units/s, read units/s)`` of every DynamoDB load of the bill."""
    g = c.segment_aggregates
    failed = aggregate_conflicts_per_put(c)
    check = silence_check(c)
    per_second = check.runs_per_month / SECONDS_PER_MONTH
    return (
        ("dynamodb_sensor_windows", c.sensor_windows.write_units_per_second, c.sensor_windows.read_units_per_second),
        ("dynamodb_aggregates", g.write_units_per_second, g.read_units_per_second),
        # a failed put costs its write units; its retry re-reads the item (GetItem, strongly consistent)
        (
            "dynamodb_aggregate_conflicts",
            g.write_units_per_second * failed,
            g.item_writes_per_second * failed * _units(g.item_bytes_max, DYNAMODB_READ_UNIT_BYTES),
        ),
        (
            "silence_check",
            check.processor_write_units_per_second,
            check.processor_read_units_per_second + check.read_units_per_run * per_second,
        ),
    )


def _dynamodb_charges(c: Capacity, charge: Callable[..., None]) -> None:
    """On demand: request units. Provisioned: units sized to the load at the auto scaling target, a share of
    them reserved for a year (its upfront spread over the term's twelve months)."""
    for name, wcu, rcu in dynamodb_loads(c):
        dynamodb_load_charges(name, wcu, rcu, c.pipeline, charge)


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
    charge("cloudwatch_alarms", "cloudwatch_alarm", ALARMS)
    charge("cloudwatch_dashboard", "cloudwatch_dashboard", DASHBOARDS)
    logs = log_gb_per_month(c)
    charge("cloudwatch_logs", "cloudwatch_logs_ingestion", logs)
    charge("cloudwatch_logs", "cloudwatch_logs_storage", logs * min(p.log_retention_days / DAYS_PER_MONTH,
                                                                      LAKE_HORIZON_MONTHS))  # fmt: skip
    rates = {"processor": c.processor.invocations_per_second, "alert": c.alert.invocations_per_second,
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
    """Each batching window (the alert mapping's following it, as the stack sets both) on a provisioned
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
