"""State layouts priced before they are coded (issue 20, item 1): what each alternative to today's DynamoDB
layout would cost a month and where it would break, from the same model and price table as the bill.

A :class:`Layout` picks one answer to each of three questions:

- **windows** (:class:`Windows`): how a sensor's accepted readings are kept for identity and duplicates;
- **fold** (:class:`Fold`): how readings reach the segment aggregates (who writes an aggregate);
- **silence** (:class:`Silence`): how the silence check finds sensors that stopped.

:func:`layout_bill` starts from :func:`stacks.capacity.model` of the fleet (stream, processor batching,
ingestion, lake, monitoring: none of them depend on the layout), keeps every bill line the layout does not
touch and replaces the lines it does (window writes and reads, aggregates, the alert function, the silence
check, DynamoDB storage and backups) with its own, priced from the same table. Today's layout reproduces
:func:`stacks.capacity.bill` line for line (a test holds it). Sizes of the new items come from their
schemas in ``docs/state-layout-v2.md`` (a test computes them with DynamoDB's size rules); what cannot be
measured before the code exists is a named assumption here. ``python -m tools.capacity --layouts``
prints the comparison the design document carries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from stacks import capacity as cap
from stacks.capacity import Capacity, Charge, Fleet, Limit, Pipeline, PriceTable

# ------------------------------------------------------------------------------------ item sizes

COMPACT_PART_BASE_BYTES = 150
"""A compact sensor window part without readings: keys (``sensor_id`` of 17 characters, ``w``: window start
and part as one number), newest offset and interval, version, TTL, duplicates, one shard's high-water mark
(a 56-digit sequence number as 23 bytes), one segment's running exact sums as decimal text (the schema in
``docs/state-layout-v2.md``; ``tests/test_state_layouts.py`` computes it with DynamoDB's size rules)."""
COMPACT_ROW_BYTES = 6
"""A reading in a v2 part: its instant as a 6-byte offset in nanoseconds from the window start (up to 78 h
windows) in one binary attribute; its values stay in the lake."""
COMPACT_PART_BUDGET_BYTES = 1_024
"""A v2 part is closed (the next opened) before a write would take it past one write unit."""
COMPACT_PART_ROWS = (COMPACT_PART_BUDGET_BYTES - COMPACT_PART_BASE_BYTES) // COMPACT_ROW_BYTES
LOG_ITEM_BASE_BYTES = 106
"""Shard log (:attr:`Windows.SHARD_LOG`): a log chunk's keys (``<shard>#<window start>``, ``<batch's first
sequence number>#<chunk>``), TTL and the entries map (the schema in ``docs/state-layout-v2.md``)."""
LOG_SENSOR_BYTES = 24
"""... a sensor's entry in it (its id, the newest reading's interval, list overhead), besides its readings'
6-byte offsets (``COMPACT_ROW_BYTES``)."""
LOG_SEGMENT_BYTES = 48
"""... and a segment's exact sums of the batch's new readings (the outbox the partials are sent from), for
a 15-character segment id."""
REGISTRY_ENTRY_BYTES = cap.FLEET_ITEM_BYTES
"""A fleet registry item (hash shard, sensor id, the day it was last confirmed) as a Query reads it."""
HEAD_ITEM_BYTES = 80
"""A head item (sensor, hash shard, newest offset and interval) for :attr:`Silence.HEAD_TABLE`."""

# ----------------------------------------------------------------------------------- assumptions

HEAD_SHARDS = cap.FLEET_SHARDS
"""Hash shards of the head table / fleet registry / deadline index: keys the check Queries one by one."""
SILENT_AFTER_INDEX_WRITE_UNITS = 2.0
"""Write units of a keys-only index of the minute a sensor's silence begins (the ``silent-after`` index
the platform had until issue 20's step 4) when a window item write moves its sensor's minute: a delete and
a put, each of an entry under 1 KB (DynamoDB developer guide, "Global secondary indexes": an update that
changes an indexed key attribute takes two writes); a write that keeps the minute takes none. The minute
moves with the time a write adds to the sensor's newest reading (the batch period, or the interval if
longer), so this is charged times ``min(1, that / 60 s)`` per window item write: an assumption."""
SILENCE_MINUTE_READS = 2
"""... each minute of that index was read twice: when it fell due, and again by the next run."""
SILENCE_INDEX_ENTRY_BYTES = 100
"""... an entry: the table's keys (sensor, ``<window>#<part>``) and the minute, with their names."""
SILENCE_INDEX_FIXED_REQUESTS = 5
"""... a run's requests whatever it found: its cursor's GetItem and UpdateItem, two minutes' Queries,
PutMetricData."""
SQS_FIFO_BATCH = 10
"""Largest SQS batch (SendMessageBatch, a FIFO event source's batch size)."""
SQS_FIFO_MESSAGES_PER_SECOND = 70_000
"""High-throughput FIFO: transactions per second per API action in us-east-1 (the figure was not readable
in the stored copy of https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/high-throughput-fifo.html:
verify), batches of 10 count once."""
LAKE_ONLY = "raw readings stay in the lake (Firehose archives the stream)"


class Windows(StrEnum):
    CALIBRATED = "window items as today"
    """A part item per sensor and window with every reading's values as JSON rows (calibrated sizes)."""
    COMPACT = "compact window parts"
    """A part item per sensor and window of at most 1 KB: readings as offsets, running exact sums."""
    SHARD_LOG = "shard batch logs"
    """Append-only: one log item chunk (1 KB) per processor batch and window, keyed by the stream shard that
    owns the sensors (one writer per item needs a parallelization factor of 1)."""


class Fold(StrEnum):
    KINESIS = "partials stream keyed by segment"
    """Today (issue 20, steps 1-2): the processor puts each batch's per-segment sums on a second Kinesis stream
    keyed by segment; one folder lane per shard owns each segment's aggregate (``stacks.capacity.Folder``).
    The alert lanes it replaced (every lane folding every segment with conditional puts) are gone."""
    DYNAMODB_STREAM = "partials table stream"
    """The processor writes each batch's per-segment sums as items keyed by segment; their table's stream (one
    shard per partition, a key on one shard) drives the folder."""
    SQS_FIFO = "SQS FIFO, group per segment"
    """The processor sends each batch's per-segment sums to a FIFO queue, message group = segment; Lambda
    processes a group in order, one batch at a time."""


class Silence(StrEnum):
    MINUTE_INDEX = "minute index"
    """A keys-only GSI on the minute a sensor's silence would begin (until issue 20's step 4): every sensor
    moving into the same minute."""
    DEADLINE_INDEX = "deadline index, hash-sharded"
    """A GSI keyed (hash shard, silent-after instant): no hot key, but the key moves on every window write."""
    HEAD_TABLE = "head items, hash-sharded"
    """The processor writes a head item per sensor and batch under a hash-shard key; the check Queries the shards."""
    POLL = "poll newest part, registry by hash"
    """No index: a fleet registry (written once a day per sensor) under hash-shard keys; the check Queries
    each sensor's newest part (eventually consistent, re-read strongly only for candidates)."""


@dataclass(frozen=True)
class Layout:
    name: str
    windows: Windows
    fold: Fold
    silence: Silence


TODAY = Layout("today", Windows.CALIBRATED, Fold.KINESIS, Silence.POLL)
V2 = Layout("v2: shard logs (recommended)", Windows.SHARD_LOG, Fold.KINESIS, Silence.POLL)
LAYOUTS = (
    TODAY,
    Layout("B: compact + head table", Windows.COMPACT, Fold.KINESIS, Silence.HEAD_TABLE),
    Layout("C: compact + deadline index", Windows.COMPACT, Fold.KINESIS, Silence.DEADLINE_INDEX),
    Layout("D: compact + partials table", Windows.COMPACT, Fold.DYNAMODB_STREAM, Silence.POLL),
    Layout("E: compact + SQS FIFO", Windows.COMPACT, Fold.SQS_FIFO, Silence.POLL),
    Layout("G: compact + partials stream", Windows.COMPACT, Fold.KINESIS, Silence.POLL),
    V2,
)
"""The layouts ``python -m tools.capacity --layouts`` compares (``docs/state-layout-v2.md``)."""

REPLACED = frozenset(
    {
        "dynamodb_sensor_windows",
        "dynamodb_aggregates",
        "dynamodb_index_headroom",
        "lambda_folder",
        "partials",
        "silence_check",
        "dynamodb_storage",
        "dynamodb_pitr",
    }
)
"""Bill components a layout prices itself; every other line is the model's (``stacks.capacity.bill``)."""


@dataclass(frozen=True)
class LayoutCost:
    layout: Layout
    capacity: Capacity
    lines: tuple[Charge, ...]
    limits: tuple[Limit, ...]

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    @property
    def per_million(self) -> float:
        return self.total / (self.capacity.readings_per_month / 1e6)

    def component(self, name: str) -> float:
        return sum(line.usd for line in self.lines if line.component == name)

    @property
    def exceeded(self) -> tuple[Limit, ...]:
        return tuple(limit for limit in self.limits if limit.exceeded)


def _charger(prices: PriceTable, lines: list[Charge]) -> Callable[..., None]:
    def charge(component: str, price: str, quantity: float, per: float = 1.0) -> None:
        entry = prices[price]
        lines.append(Charge(component, entry.unit, quantity / per, entry.cost(quantity / per)))

    return charge


# ------------------------------------------------------------------------------------- windows


@dataclass(frozen=True)
class WindowLoad:
    item_writes_per_second: float
    write_units_per_second: float
    read_units_per_second: float
    stored_bytes: float
    head_bytes: float
    """Size of a sensor's newest part (what the silence check reads of it)."""
    poll_read_units_per_run: float
    """Read units a polling check spends per run on every sensor's newest state: one eventually consistent
    Query of the newest part per sensor, or (shard logs) the current and previous windows' logs."""


def _windows(c: Capacity, windows: Windows) -> WindowLoad:
    f, p, w = c.fleet, c.pipeline, c.sensor_windows
    ttl = p.window_item_ttl_days * 86_400
    span = max(p.aggregation_window_seconds, f.reading_interval_seconds)
    per_window = max(1.0, p.aggregation_window_seconds / f.reading_interval_seconds)
    if windows is Windows.CALIBRATED:
        return WindowLoad(
            w.item_writes_per_second,
            w.item_writes_per_second * w.write_units_per_item_write,
            w.read_units_per_second,
            w.stored_bytes,
            cap.window_item_bytes(1),
            f.sensors * 0.5 * cap._units(cap.window_item_bytes(per_window), cap.DYNAMODB_READ_UNIT_BYTES),
        )
    if windows is Windows.COMPACT:
        parts = math.ceil(per_window / COMPACT_PART_ROWS - 1e-9)
        # opening a part also writes the head (000), which keeps the newest reading and the part count
        writes = w.item_writes_per_second + f.sensors * (parts - 1) / span
        full = COMPACT_PART_BASE_BYTES + COMPACT_ROW_BYTES * min(per_window, COMPACT_PART_ROWS)
        items = f.sensors * ttl / span * parts
        # items under 4 KB either way: one strongly consistent read unit per existing item, as today
        return WindowLoad(writes, writes, w.read_units_per_second, items * (full + 100), full, f.sensors * 0.5)
    # shard logs: a batch appends only its new readings, in 1 KB chunks
    proc = c.processor
    segments = c.fleet.segments * cap.segment_hit_probability(proc.items_per_batch, c.fleet, proc.concurrency)
    batch_bytes = (
        LOG_ITEM_BASE_BYTES
        + proc.items_per_batch * LOG_SENSOR_BYTES
        + proc.readings_per_batch * COMPACT_ROW_BYTES
        + segments * LOG_SEGMENT_BYTES
    )
    chunks = math.ceil(batch_bytes / (COMPACT_PART_BUDGET_BYTES - LOG_ITEM_BASE_BYTES) - 1e-9)
    writes = proc.invocations_per_second * chunks
    # dedupe reads the window's earlier logs of the lane: half a window of batches on average
    batches_per_window = max(1.0, p.aggregation_window_seconds / proc.batch_period_seconds)
    read_bytes = (batches_per_window - 1) / 2 * batch_bytes
    reads = proc.invocations_per_second * max(1.0, read_bytes / cap.DYNAMODB_READ_UNIT_BYTES)
    stored = proc.invocations_per_second * ttl * (batch_bytes + chunks * cap.DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES)
    lanes = c.processor.concurrency
    poll = 2 * lanes * batches_per_window * batch_bytes / cap.DYNAMODB_READ_UNIT_BYTES * 0.5
    return WindowLoad(writes, writes, reads, stored, batch_bytes, poll)


# ---------------------------------------------------------------------------------------- fold


@dataclass(frozen=True)
class FoldLoad:
    aggregate_puts_per_second: float
    aggregate_bytes: float
    lanes: int
    seconds_per_invocation: float
    seconds_between_invocations: float
    invocations_per_second: float
    partial_records_per_second: float
    partial_record_bytes: float


def _fold(c: Capacity, fold: Fold) -> FoldLoad:
    """The fold's loads: the partials stream's are the model's (``stacks.capacity.Folder``); a partials table or
    an SQS FIFO queue carry the same records (``capacity.partials_per_batch``) to a single writer per segment."""
    f, p, folder, g = c.fleet, c.pipeline, c.folder, c.segment_aggregates
    if fold is Fold.KINESIS:
        return FoldLoad(g.item_writes_per_second, g.item_bytes_max, folder.concurrency, folder.seconds_per_invocation,
                        folder.seconds_between_invocations, folder.invocations_per_second, folder.records_per_second,
                        folder.record_bytes)  # fmt: skip
    records, record_bytes, aggregate = folder.records_per_second, folder.record_bytes, g.item_bytes_max
    window = float(p.aggregation_window_seconds)
    if fold is Fold.SQS_FIFO:  # each message is folded on its own: no coalescing across a batch
        invocations = records / SQS_FIFO_BATCH
        seconds = cap.INVOCATION_OVERHEAD_SECONDS + SQS_FIFO_BATCH * 2 * cap.DYNAMODB_ITEM_REQUEST_SECONDS
        lanes = max(1, math.ceil(invocations * seconds / cap.HEADROOM))
        return FoldLoad(records, aggregate, lanes, seconds, lanes / max(invocations, 1e-9), invocations, records,
                        record_bytes)  # fmt: skip
    # DynamoDB stream: a lane gathers a batching window, then puts each segment window it holds once
    gather = max(float(p.batching_window_seconds), cap.LAMBDA_KINESIS_POLL_SECONDS)
    per_segment = records / f.segments
    active = f.segments * (1 - math.exp(-per_segment * gather)) * (1 + gather / window)
    puts = active / gather
    # a new on-demand table's partitions, or more for its writes
    shards = max(cap.DYNAMODB_ON_DEMAND_INITIAL_WCU // cap.DYNAMODB_PARTITION_WCU,
                 math.ceil(records * cap._units(record_bytes, 1024) / cap.DYNAMODB_PARTITION_WCU))  # fmt: skip
    busy = puts * (cap.DYNAMODB_ITEM_REQUEST_SECONDS + cap.DYNAMODB_BATCH_REQUEST_SECONDS / 100)
    lanes = max(shards, math.ceil(busy / cap.HEADROOM))
    invocations = lanes / gather
    seconds = cap.INVOCATION_OVERHEAD_SECONDS + busy / invocations
    return FoldLoad(puts, aggregate, lanes, seconds, gather, invocations, records, record_bytes)


# ------------------------------------------------------------------------------------- silence


@dataclass(frozen=True)
class SilenceLoad:
    write_units_per_second: float
    """Writes the layout adds for the check (index entries, head or registry items)."""
    read_units_per_second: float
    """The processor's extra reads (registry) and the check's reads."""
    hottest_key_write_units_per_second: float
    seconds_per_run: float
    invocations_per_run: int


def _index_check(c: Capacity, calibration: cap.Calibration = cap.CALIBRATION) -> tuple[float, float]:
    """(read units, seconds) of one run of a check on a minute or deadline index: each minute holds the
    superseded entry of every sensor whose window ended in it, read twice, each weeded out with a
    BatchGetItem key of the next window's head (eventually consistent), and a cursor."""
    f, p = c.fleet, c.pipeline
    window = max(p.aggregation_window_seconds, f.reading_interval_seconds)
    entries = f.sensors * 60 / window * SILENCE_MINUTE_READS
    index_units = entries * SILENCE_INDEX_ENTRY_BYTES / cap.DYNAMODB_READ_UNIT_BYTES * 0.5
    head = cap.window_item_bytes(1, calibration)
    gets = math.ceil(entries / calibration.keys_per_batch_get - 1e-9)
    read_units = index_units + entries * 0.5 * cap._units(head, cap.DYNAMODB_READ_UNIT_BYTES) + 1
    seconds = cap._batch_seconds(gets, SILENCE_INDEX_FIXED_REQUESTS, 0, p.silence_memory_mb, calibration)
    return read_units, seconds


def _silence(c: Capacity, silence: Silence, windows: WindowLoad) -> SilenceLoad:
    f, proc = c.fleet, c.processor
    runs = cap.SILENCE_RUNS_PER_MONTH / cap.SECONDS_PER_MONTH
    if silence in (Silence.MINUTE_INDEX, Silence.DEADLINE_INDEX):
        read_units, seconds = _index_check(c)
        moves = min(1.0, max(proc.batch_period_seconds, f.reading_interval_seconds) / 60)
        if silence is Silence.DEADLINE_INDEX:
            moves = 1.0  # the deadline changes with every newest reading
        index = windows.item_writes_per_second * SILENT_AFTER_INDEX_WRITE_UNITS * moves
        # at a window boundary every sensor's new item enters the index within a batch period or interval,
        # all under the same minute; hash-sharded keys spread them
        burst = f.sensors / max(proc.batch_period_seconds, f.reading_interval_seconds)
        hot = burst if silence is Silence.MINUTE_INDEX else burst / HEAD_SHARDS
        return SilenceLoad(index + runs, read_units * runs, hot, seconds, 1)  # + the cursor's write
    if silence is Silence.HEAD_TABLE:
        writes = windows.item_writes_per_second  # one head per sensor and batch
        query = f.sensors * HEAD_ITEM_BYTES / cap.DYNAMODB_READ_UNIT_BYTES * 0.5 + HEAD_SHARDS * 0.5
        seconds = cap.INVOCATION_OVERHEAD_SECONDS + HEAD_SHARDS * cap.DYNAMODB_ITEM_REQUEST_SECONDS
        return SilenceLoad(writes, query * runs, writes / HEAD_SHARDS, seconds, 1)
    # poll (``capacity.polling_check``, as today's check): the processor confirms a sensor in the registry
    # once a day and writes its shard's watermark once a batch; each run Queries the registry shards and
    # every sensor's newest state (eventually consistent)
    if windows.head_bytes > cap.DYNAMODB_READ_UNIT_BYTES:  # shard logs: the windows' logs, 1 MB a Query page
        queries = max(1, math.ceil(windows.poll_read_units_per_run * 2 * cap.DYNAMODB_READ_UNIT_BYTES / 1024**2))
        check = cap.polling_check(c, windows.poll_read_units_per_run, queries)
    else:  # a head item per sensor and window: as today's check (``capacity.head_poll``)
        check = cap.polling_check(c, *cap.head_poll(c, windows.poll_read_units_per_run / (0.5 * f.sensors)))
    workers = max(1, math.ceil(check.work_seconds_per_run / cap.POLL_WORKER_SECONDS))
    seconds = cap.INVOCATION_OVERHEAD_SECONDS + check.work_seconds_per_run / workers
    reads = check.processor_read_units_per_second + check.read_units_per_run * runs
    writes = check.processor_write_units_per_second
    return SilenceLoad(writes, reads, writes, seconds, workers)


# ------------------------------------------------------------------------------------------ bill


def layout_bill(fleet: Fleet, pipeline: Pipeline, layout: Layout, prices: PriceTable) -> LayoutCost:
    """The month's bill of ``fleet`` on ``pipeline`` with ``layout``'s state, and the limits it meets."""
    c = cap.model(fleet, pipeline)
    if layout == TODAY:
        return LayoutCost(layout, c, cap.bill(c, prices), c.limits)
    lines = [line for line in cap.bill(c, prices) if line.component not in REPLACED]
    charge = _charger(prices, lines)
    month = cap.SECONDS_PER_MONTH
    windows = _windows(c, layout.windows)
    fold = _fold(c, layout.fold)
    silence = _silence(c, layout.silence, windows)
    dynamo = pipeline, charge
    cap.dynamodb_load_charges("dynamodb_sensor_windows", windows.write_units_per_second,
                              windows.read_units_per_second, *dynamo)  # fmt: skip
    aggregate_wcu = fold.aggregate_puts_per_second * cap._units(fold.aggregate_bytes, cap.DYNAMODB_WRITE_UNIT_BYTES)
    aggregate_rcu = fold.aggregate_puts_per_second * cap._units(fold.aggregate_bytes, cap.DYNAMODB_READ_UNIT_BYTES)
    cap.dynamodb_load_charges("dynamodb_aggregates", aggregate_wcu, aggregate_rcu, *dynamo)
    cap.dynamodb_load_charges("silence_check", silence.write_units_per_second, silence.read_units_per_second, *dynamo)
    name = "lambda_folder"
    charge(name, "lambda_gb_second", fold.invocations_per_second * fold.seconds_per_invocation * month
           * pipeline.folder_memory_mb / 1024)  # fmt: skip
    charge(name, "lambda_requests", fold.invocations_per_second * month, 1e6)
    _partials_charges(c, layout.fold, fold, charge)
    runs = cap.SILENCE_RUNS_PER_MONTH
    charge("silence_check", "scheduler_invocations", runs, 1e6)
    charge("silence_check", "lambda_requests", runs * silence.invocations_per_run, 1e6)
    charge("silence_check", "lambda_gb_second", runs * silence.invocations_per_run * silence.seconds_per_run
           * pipeline.silence_memory_mb / 1024)  # fmt: skip
    charge("silence_check", "cloudwatch_put_metric_data", runs, 1e3)
    segments = fleet.segments * pipeline.aggregate_ttl_days * 86_400 / pipeline.aggregation_window_seconds
    stored = windows.stored_bytes + segments * (fold.aggregate_bytes + cap.DYNAMODB_ITEM_STORAGE_OVERHEAD_BYTES)
    if layout.silence is Silence.POLL:
        stored += cap.fleet_stored_bytes(c)
    charge("dynamodb_storage", "dynamodb_storage", stored / cap.GIB)
    charge("dynamodb_pitr", "dynamodb_pitr", stored / cap.GIB)
    return LayoutCost(layout, c, tuple(lines), _layout_limits(c, layout, windows, fold, silence))


def _partials_charges(c: Capacity, kind: Fold, fold: FoldLoad, charge: Callable[..., None]) -> None:
    """What carries the partial sums from the processor to the single writer of each segment."""
    month, records = cap.SECONDS_PER_MONTH, fold.partial_records_per_second
    if kind is Fold.KINESIS:
        cap.partials_charges(c.folder, charge)
    elif kind is Fold.DYNAMODB_STREAM:  # items written once, removed by TTL (free); Lambda reads the stream free
        units = cap._units(fold.partial_record_bytes, cap.DYNAMODB_WRITE_UNIT_BYTES)
        cap.dynamodb_load_charges("partials", records * units, 0.0, c.pipeline, charge)
    elif kind is Fold.SQS_FIFO:  # SendMessageBatch, and the event source's ReceiveMessage and DeleteMessageBatch
        requests = records / SQS_FIFO_BATCH * 3
        charge("partials", "sqs_fifo_requests", requests * month, 1e6)


def _layout_limits(c: Capacity, layout: Layout, windows: WindowLoad, fold: FoldLoad, silence: SilenceLoad
                   ) -> tuple[Limit, ...]:  # fmt: skip
    """The data path's limits the layout does not change, and the ones of its own state."""
    own = {"busiest segment's aggregate: one partition key (1,000 WCU/s)", "segment aggregate item size (400 KB)",
           "DynamoDB table write quota (sensor windows)", cap.SILENCE_RUN_LIMIT}  # fmt: skip
    kept = [limit for limit in c.limits if limit.name not in own and not limit.name.startswith("folder lane")]
    p = c.pipeline
    hottest_aggregate = (
        (1 + fold.seconds_between_invocations / p.aggregation_window_seconds)
        / max(fold.seconds_between_invocations, 1e-9)
        * cap._units(fold.aggregate_bytes, cap.DYNAMODB_WRITE_UNIT_BYTES)
    )
    if layout.fold is Fold.KINESIS:
        hottest_aggregate = c.segment_aggregates.hottest_item_write_units_per_second
    kept += [
        Limit("fold lane: time an invocation takes vs the time until the next", "design: fold lanes",
              fold.seconds_per_invocation, fold.seconds_between_invocations, "more fold lanes", blocking=False),
        Limit("sensor windows table: write quota (40,000 WCU/s, adjustable)", "dynamodb_table_write_quota",
              windows.write_units_per_second + silence.write_units_per_second, p.dynamodb_table_write_quota,
              "a higher table write quota (Service Quotas)"),
        Limit("busiest aggregate: one partition key (1,000 WCU/s)", "sensors_per_segment", hottest_aggregate,
              cap.DYNAMODB_PARTITION_WCU, "split the segment"),
        Limit("aggregate item size (400 KB)", "sensors_per_segment", fold.aggregate_bytes,
              cap.DYNAMODB_ITEM_LIMIT_BYTES, "split the segment"),
        Limit(f"silence ({layout.silence.value}): hottest key's writes (1,000 WCU/s per partition)",
              "design: silence", silence.hottest_key_write_units_per_second, cap.DYNAMODB_PARTITION_WCU,
              "hash-shard the key", blocking=False),
        Limit(cap.SILENCE_RUN_LIMIT, "silence.timeout_seconds", silence.seconds_per_run, cap.SILENCE_TIMEOUT_SECONDS,
              "more polling workers"),
    ]  # fmt: skip
    if layout.fold is Fold.SQS_FIFO:
        kept.append(Limit("SQS FIFO high-throughput sends per second (us-east-1)", "Service Quotas: SQS",
                          fold.partial_records_per_second / SQS_FIFO_BATCH, SQS_FIFO_MESSAGES_PER_SECOND,
                          "more queues, segments hashed over them", blocking=False))  # fmt: skip
    return tuple(kept)


# ------------------------------------------------------------------------------------- reports

GROUPS = (
    ("IoT Core", ("iot_messaging", "iot_rules", "iot_connectivity")),
    ("Kinesis (readings)", ("kinesis",)),
    ("Firehose + S3", ("firehose", "s3")),
    ("Lambda processor", ("lambda_processor",)),
    ("window items", ("dynamodb_sensor_windows",)),
    ("aggregates", ("dynamodb_aggregates",)),
    ("partials transport", ("partials",)),
    ("folder Lambda", ("lambda_folder",)),
    ("silence check", ("silence_check",)),
    ("index headroom (provisioned)", ("dynamodb_index_headroom",)),
    ("DynamoDB storage + PITR", ("dynamodb_storage", "dynamodb_pitr")),
    ("CloudWatch, X-Ray, KMS", ("cloudwatch_metrics", "cloudwatch_alarms", "cloudwatch_dashboard",
                                "cloudwatch_logs", "xray", "kms")),
)  # fmt: skip
"""How the comparison groups the bill's components (each component in exactly one group)."""


def comparison(fleet: Fleet, pipeline: Pipeline, prices: PriceTable) -> str:
    """Markdown: each layout's bill per million readings, by group, at ``fleet``."""
    costs = [layout_bill(fleet, pipeline, layout, prices) for layout in LAYOUTS]
    head = "| $ per million readings | " + " | ".join(c.layout.name for c in costs) + " |"
    rows = [head, "| --- |" + " ---: |" * len(costs)]
    million = costs[0].capacity.readings_per_month / 1e6
    for group, components in GROUPS:
        values = [sum(c.component(name) for name in components) / million for c in costs]
        rows.append(f"| {group} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    rows.append("| **total** | " + " | ".join(f"**{c.per_million:.3f}**" for c in costs) + " |")
    rows.append("| monthly | " + " | ".join(f"${c.total:,.0f}" for c in costs) + " |")
    return "\n".join(rows)


SCALE_SENSORS = (1_000, 10_000, 100_000, 1_000_000)


def scale(fleet: Fleet, pipeline: Pipeline, prices: PriceTable, layouts: tuple[Layout, ...] = LAYOUTS) -> str:
    """Markdown: each layout at 1,000 to 1,000,000 sensors (stream sized by the model): $ per million
    readings, and the limits it exceeds."""
    rows = ["| layout | sensors | $ / M readings | limits exceeded (utilisation) |", "| --- | ---: | ---: | --- |"]
    for layout in layouts:
        for sensors in SCALE_SENSORS:
            sized_fleet = replace(fleet, sensors=sensors)
            cost = layout_bill(sized_fleet, cap.sized(sized_fleet, pipeline), layout, prices)
            exceeded = ", ".join(f"{limit.name} ({limit.utilisation:.0%})" for limit in cost.exceeded) or "-"
            rows.append(f"| {layout.name} | {sensors:,} | {cost.per_million:.3f} | {exceeded} |")
    return "\n".join(rows)


def report(fleet: Fleet, pipeline: Pipeline, prices: PriceTable) -> str:
    """What ``python -m tools.capacity --layouts`` prints, and ``docs/state-layout-v2.md`` carries."""
    provisioned = replace(pipeline, dynamodb_capacity=cap.DynamoDBCapacity.PROVISIONED)
    pipeline = replace(pipeline, dynamodb_capacity=cap.DynamoDBCapacity.ON_DEMAND)
    return "\n\n".join(
        (
            f"At {fleet.sensors:,} sensors every {fleet.reading_interval_seconds} s ({fleet.sensors_per_segment} "
            f"per segment), DynamoDB on demand; prices `prices/{prices.region}.json` of {prices.date}:",
            comparison(fleet, pipeline, prices),
            "The same with DynamoDB provisioned at a 70 % auto scaling target (no reservation):",
            comparison(fleet, provisioned, prices),
            f"Scale, every {fleet.reading_interval_seconds} s, on-demand DynamoDB, stream sized by the model:",
            scale(fleet, pipeline, prices),
        )
    )
