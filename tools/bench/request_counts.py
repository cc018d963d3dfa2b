"""AWS requests the functions make per batch, counted with botocore's ``before-call`` hook on moto.

The real handlers run against moto-backed clients; every request any of them sends is counted by
service and operation before it leaves botocore. The counts depend only on the batch, so
``tests/test_request_counts.py`` asserts them and ``make bench`` reports them.

The same counting, with the size of every item written, calibrates the capacity model
(``stacks.capacity``): :func:`measure_fleet` feeds a fleet's readings (sensors on random phases, a
reading interval, sensors per segment) through one processor lane and one folder lane, batched as the
event source mappings batch them; ``--calibrate`` derives the model's constants from a few such runs,
and ``tests/test_capacity.py`` keeps the model within 10 % of what the handlers do.

    python -m tools.bench.request_counts                # prints the table
    python -m tools.bench.request_counts --compare      # measured vs model for the calibration runs
    python -m tools.bench.request_counts --calibrate    # rewrites stacks/capacity_calibration.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from lambdas.common.aws import Backoff, Clients
from lambdas.common.contract import NS_PER_SECOND, format_instant, parse_instant
from lambdas.common.log import logger as tap_logger
from lambdas.folder.service import Folder, settings_from_env
from lambdas.processor.logic import ROW_BYTES
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from stacks import capacity
from stacks.config import PROFILES
from stacks.layout import FOLDER_BATCH_SIZE, folder_environment, processor_environment
from tools.local import moto_speedups
from tools.local.simulate import (
    ACCOUNT_ID,
    FUNCTION_SERVICES,
    Targets,
    chunks,
    counting_requests,
    in_moto,
    kinesis_event,
    kinesis_records,
    partials_events,
    payload_event,
)

NOW_NS = parse_instant("2026-06-01T12:00:00Z")


def event_of(records: Sequence[dict[str, Any]], *, arn: str) -> dict[str, Any]:
    """The folder's event of partials ``records`` read from the stream ``arn``."""
    return kinesis_event(SHARD, records, "us-east-1", arn)


def counting(clients: Clients) -> AbstractContextManager[Counter[str]]:
    """Count every request the functions send through ``clients`` while the block runs, as
    ``service:Operation`` (the local run's own counter, over the services the functions call)."""
    return counting_requests(clients, FUNCTION_SERVICES)


def reading(sensor: int, segment: int, minute: int) -> bytes:
    return json.dumps(
        {
            "sensor_id": f"sensor-{sensor:04d}",
            "segment_id": f"seg-{segment:03d}",
            "timestamp": f"2026-06-01T11:{minute:02d}:00Z",
            "vehicle_count": 12,
            "average_speed_kmh": 20.0,
            "occupancy_percent": 55.0,
        }
    ).encode()


def distinct_sensors(n: int = 1000) -> list[bytes]:
    """``n`` readings of ``n`` sensors: every reading is its own item (the worst case)."""
    return [reading(i, i // 10, 50) for i in range(n)]


def sensors_over_minutes(sensors: int = 100, minutes: int = 10) -> list[bytes]:
    """One reading per sensor and minute: a typical batch (readings share window items)."""
    return [reading(s, s // 4, 50 + m % 10) for m in range(minutes) for s in range(sensors)]


def with_rejects(payloads: list[bytes], every: int = 20) -> list[bytes]:
    """A malformed record inserted after every ``every`` readings."""
    mixed: list[bytes] = []
    for index, payload in enumerate(payloads, start=1):
        mixed.append(payload)
        if index % every == 0:
            mixed.append(b"{not json")
    return mixed


@dataclass(frozen=True)
class Measured:
    scenario: str
    readings: int
    invocations: int
    counts: dict[str, int]

    def service(self, name: str) -> int:
        return sum(n for key, n in self.counts.items() if key.startswith(f"{name}:"))

    def per_thousand(self, name: str) -> float:
        return self.service(name) * 1000 / self.readings if self.readings else 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    payloads: Callable[[], list[bytes]]
    valid: int
    """Valid readings in the batch (the denominator of "per 1,000 valid readings")."""
    known: bool = False
    """The sensors are known to a warm processor: it handled their readings of the window before (not
    counted), so their fleet registry items are confirmed today (``lambdas.common.silence``)."""


SCENARIOS = (
    Scenario("processor: 1,000 readings of 1,000 sensors", distinct_sensors, 1000),
    Scenario("processor: 1,000 readings, 100 sensors x 10 min", sensors_over_minutes, 1000),
    Scenario("processor: 1,000 readings + 50 malformed records", lambda: with_rejects(distinct_sensors()), 1000),
    Scenario("processor: 1,000 readings of 1,000 known sensors", distinct_sensors, 1000, known=True),
)


def _processor(clients: Clients, targets: Targets) -> Processor:
    settings = ProcessorSettings.from_env(processor_environment(targets.runtime_names(), PROFILES["dev"]))
    return Processor(settings, clients=clients, backoff=Backoff(sleep=lambda _: None), clock=lambda: NOW_NS)


def _folder(clients: Clients, targets: Targets, config: Any = PROFILES["dev"]) -> Folder:
    settings = settings_from_env(folder_environment(targets.runtime_names(), config))
    return Folder(settings, clients=clients, backoff=Backoff(sleep=lambda _: None))


def processor_scenario(scenario: Scenario) -> Measured:
    with in_moto("dev", PROFILES["dev"]) as (clients, targets):
        fn = _processor(clients, targets)
        if scenario.known:  # the same sensors, five minutes earlier
            earlier = [p.replace(b"T11:5", b"T11:4") for p in scenario.payloads()]
            fn.handle(payload_event(earlier))
        with counting(clients) as counts:
            response = fn.handle(payload_event(scenario.payloads(), first_sequence=10_001))
        if response["batchItemFailures"]:
            raise AssertionError(f"{scenario.name}: records failed: {response}")
        return Measured(scenario.name, scenario.valid, 1, dict(counts))


def folder_scenario() -> Measured:
    """The partials of 1,000 sensors' readings (one processor batch), in folder invocations of the mapping's
    batch size."""
    with in_moto("dev", PROFILES["dev"]) as (clients, targets):
        _processor(clients, targets).handle(payload_event(distinct_sensors()))
        (event,) = partials_events(clients, targets)
        records = event["Records"]
        fn = _folder(clients, targets)
        invocations = 0
        with counting(clients) as counts:
            for start in range(0, len(records), FOLDER_BATCH_SIZE):
                invocations += 1
                response = fn.handle({"Records": records[start : start + FOLDER_BATCH_SIZE]})
                if response["batchItemFailures"]:
                    raise AssertionError(f"folder: partials failed: {response}")
        name = f"folder: {len(records):,} partials, batches of {FOLDER_BATCH_SIZE:,}"
        return Measured(name, 1000, invocations, dict(counts))


def measure() -> list[Measured]:
    return [*(processor_scenario(s) for s in SCENARIOS), folder_scenario()]


# ----------------------------------------------------------- fleets: what stacks.capacity is calibrated on


def dynamodb_item_bytes(item: Mapping[str, Any]) -> int:
    """Size of an item in DynamoDB's wire format, by DynamoDB's rules: each attribute's name and value
    (strings and binaries by their bytes, a number 1 byte per two significant digits plus 1, a list or
    map 3 bytes plus 1 per element plus its elements)
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _number_bytes(text: str) -> int:
    digits = text.lstrip("+-").lower().split("e")[0].replace(".", "").strip("0")
    return (max(len(digits), 1) + 1) // 2 + 1


_SCALAR_BYTES: dict[str, Callable[[Any], int]] = {
    "S": lambda v: len(v.encode()),
    "N": _number_bytes,
    "B": len,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda v: sum(len(s.encode()) for s in v),
    "NS": lambda v: sum(_number_bytes(n) for n in v),
    "BS": lambda v: sum(len(b) for b in v),
}


def _value_bytes(value: Mapping[str, Any]) -> int:
    ((kind, data),) = value.items()
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in data.items())
    return _SCALAR_BYTES[kind](data)


def write_units(item: Mapping[str, Any]) -> int:
    return max(1, math.ceil(dynamodb_item_bytes(item) / 1024))


def read_units(item: Mapping[str, Any] | None) -> int:
    """Strongly consistent read units of reading ``item`` (a key that finds nothing is taken as 1)."""
    return 1 if item is None else max(1, math.ceil(dynamodb_item_bytes(item) / 4096))


@dataclass(frozen=True)
class FleetRun:
    """One processor lane (one shard) and one folder lane fed a fleet's readings, as the event source
    mappings would batch them: every ``batch_period_seconds`` (at most ``batch_size`` records), and the
    partials every ``folder_period_seconds`` (at most the folder mapping's batch size)."""

    sensors: int
    interval_seconds: int
    sensors_per_segment: int
    batch_period_seconds: int
    batch_size: int = 10_000
    folder_period_seconds: int = 1
    window_seconds: int = 300
    windows: int = 2
    """Aggregation windows of readings (whole windows: the model averages over a window's life)."""
    seed: int = 13

    def describe(self) -> str:
        return (
            f"{self.sensors} sensors every {self.interval_seconds} s, {self.sensors_per_segment}/segment, "
            f"batches every {self.batch_period_seconds} s of at most {self.batch_size}, "
            f"{self.windows} x {self.window_seconds} s windows"
        )


@dataclass
class FleetMeasurement:
    """What the real handlers did for a :class:`FleetRun` (requests counted before they leave botocore,
    item sizes computed from the items sent)."""

    run: FleetRun
    readings: int = 0
    invocations: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    item_writes: int = 0
    write_units: int = 0
    read_units: int = 0
    window_items: list[tuple[int, int, int]] = field(default_factory=list)
    """(readings in the item, its stored readings' text length, its DynamoDB size) of every item written."""
    batch_get_keys_max: int = 0
    batch_write_items_max: int = 0
    partials: int = 0
    partial_bytes: list[int] = field(default_factory=list)
    """Data bytes of every partials record the processor put."""
    folder_invocations: int = 0
    folder_counts: Counter[str] = field(default_factory=Counter)
    aggregate_puts: int = 0
    aggregate_write_units: int = 0
    aggregate_read_units: int = 0
    aggregate_items: list[tuple[int, int, int]] = field(default_factory=list)
    """(source shards folded in, readings, DynamoDB size) of every aggregate put."""
    payload_bytes: float = 0.0
    event_record_overhead_bytes: float = 0.0
    registry_writes: int = 0
    """Fleet registry items written (``lambdas.common.silence``): each sensor's first sighting."""

    def processor_requests(self) -> int:
        return sum(self.counts.values())

    def folder_requests(self) -> int:
        return sum(self.folder_counts.values())


FLEET_START_NS = parse_instant("2026-06-01T10:00:00Z")
SHARD = "shardId-000000000000"
STREAM_ARN = f"arn:aws:kinesis:us-east-1:{ACCOUNT_ID}:stream/tap-readings-dev"


def fleet_readings(run: FleetRun) -> list[Reading]:
    """``(instant ns, thing, payload)`` of every reading, in arrival order: each sensor reads every
    interval from a random phase (sensors are not synchronised), free-flowing traffic (no alerts)."""
    rng = random.Random(run.seed)
    end = FLEET_START_NS + run.windows * run.window_seconds * NS_PER_SECOND
    readings = []
    for sensor in range(run.sensors):
        thing = f"sensor-{sensor:05d}"
        instant = FLEET_START_NS + rng.randrange(run.interval_seconds * 1000) * NS_PER_SECOND // 1000
        while instant < end:
            payload = {
                "sensor_id": thing,
                "segment_id": f"seg-{sensor // run.sensors_per_segment:04d}",
                "timestamp": format_instant(instant)[:19] + "Z",
                "vehicle_count": rng.randint(5, 40),
                "average_speed_kmh": round(rng.uniform(40, 55), 1),
                "occupancy_percent": round(rng.uniform(2, 30), 1),
                "speed_limit_kmh": 50,
            }
            readings.append((instant, thing, json.dumps(payload).encode()))
            instant += run.interval_seconds * NS_PER_SECOND
    readings.sort(key=lambda r: (r[0], r[1]))
    return readings


Reading = tuple[int, str, bytes]


LANE_PHASE = 0.37
"""Where in its period the lane's first batch ends: batches do not start on window boundaries (nothing
aligns the event source mapping's polls with the aggregation windows)."""


def lane_batches(readings: list[Reading], run: FleetRun) -> list[tuple[int, list[Reading]]]:
    """``(arrival ns, readings)`` per invocation, as the event source mapping gathers them: from the end
    of the previous batch, until the batching period ends or the batch is full (then at once)."""
    period = run.batch_period_seconds * NS_PER_SECOND
    start = FLEET_START_NS - int(period * (1 - LANE_PHASE))
    batches: list[tuple[int, list[Reading]]] = []
    position = 0
    while position < len(readings):
        end = start + period
        batch: list[Reading] = []
        while position < len(readings) and readings[position][0] < end and len(batch) < run.batch_size:
            batch.append(readings[position])
            position += 1
        start = batch[-1][0] if len(batch) == run.batch_size else end
        if batch:
            batches.append((start, batch))
    return batches


@contextmanager
def quiet() -> Iterator[None]:
    """The handlers' info logs off (thousands of invocations), warnings and errors still shown."""
    level = tap_logger.level
    tap_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        tap_logger.setLevel(level)


@contextmanager
def sizing(dynamodb: Any, kinesis: Any, measured: FleetMeasurement, phase: str) -> Iterator[None]:
    """Record the size of every item and partials record the block writes and the read units of what it
    reads."""

    def before(params: Mapping[str, Any], model: Any, **_: Any) -> None:
        if model.name == "BatchWriteItem":
            puts = [r["PutRequest"]["Item"] for rs in params["RequestItems"].values() for r in rs]
            measured.batch_write_items_max = max(measured.batch_write_items_max, len(puts))
            measured.registry_writes += sum(1 for item in puts if "segments" not in item)  # the fleet registry
            for item in (item for item in puts if "segments" in item):
                rows = len(item["rows"]["B"]) // ROW_BYTES
                measured.window_items.append((rows, len(item["rows"]["B"]), dynamodb_item_bytes(item)))
                measured.item_writes += 1
                measured.write_units += write_units(item)
        elif model.name == "PutItem" and phase == "folder":
            item = params["Item"]
            sources = json.loads(item["src"]["S"])
            readings = int(item["readings"]["N"])
            measured.aggregate_items.append((len(sources), readings, dynamodb_item_bytes(item)))
            measured.aggregate_puts += 1
            measured.aggregate_write_units += write_units(item)
        elif model.name == "BatchGetItem" and phase == "processor":
            keys = sum(len(t["Keys"]) for t in params["RequestItems"].values())
            measured.batch_get_keys_max = max(measured.batch_get_keys_max, keys)

    def after(parsed: Mapping[str, Any], model: Any, **_: Any) -> None:
        if model.name != "BatchGetItem":
            return
        asked_by_table = requested.pop()
        windows = {t for t, spec in asked_by_table.items() if "pk" not in spec["Keys"][0]}  # not the registry
        found = [i for table, items in parsed.get("Responses", {}).items() if table in windows for i in items]
        asked = sum(len(spec["Keys"]) for t, spec in asked_by_table.items() if t in windows)
        units = sum(read_units(i) for i in found) + (asked - len(found)) * read_units(None)
        if phase == "processor":
            measured.read_units += units
        else:
            measured.aggregate_read_units += units

    requested: list[Any] = []

    def remember(params: Mapping[str, Any], model: Any, **_: Any) -> None:
        if model.name == "BatchGetItem":
            requested.append(dict(params["RequestItems"]))

    def partials(params: Mapping[str, Any], **_: Any) -> None:
        measured.partials += len(params["Records"])
        measured.partial_bytes.extend(len(r["Data"]) for r in params["Records"])

    kinesis_events = kinesis.meta.events
    kinesis_events.register("before-parameter-build.kinesis.PutRecords", partials)
    events = dynamodb.meta.events  # the API parameters, before botocore serializes them
    events.register("before-parameter-build.dynamodb.*", before)
    events.register("before-parameter-build.dynamodb.BatchGetItem", remember)
    events.register("after-call.dynamodb.BatchGetItem", after)
    try:
        yield
    finally:
        kinesis_events.unregister("before-parameter-build.kinesis.PutRecords", partials)
        events.unregister("before-parameter-build.dynamodb.*", before)
        events.unregister("before-parameter-build.dynamodb.BatchGetItem", remember)
        events.unregister("after-call.dynamodb.BatchGetItem", after)


def measure_fleet(run: FleetRun) -> FleetMeasurement:
    """Run the real processor, then the real folder, over ``run``'s readings on moto."""
    moto_speedups.install()  # encoding only: what moto stores and refuses is unchanged (tested)
    measured = FleetMeasurement(run)
    config = replace(PROFILES["dev"], aggregation_window_seconds=run.window_seconds)
    readings = fleet_readings(run)
    batches = lane_batches(readings, run)
    with quiet(), in_moto("dev", config) as (clients, targets):
        processor = Processor(
            ProcessorSettings.from_env(processor_environment(targets.runtime_names(), config)),
            clients=clients,
            backoff=Backoff(sleep=lambda _: None),
            clock=lambda: NOW_NS,
        )
        sequence = 0
        written: list[tuple[int, int]] = []  # (arrival, partials sent) per invocation
        with counting(clients) as counts, sizing(clients["dynamodb"], clients["kinesis"], measured, "processor"):
            for arrival, batch in batches:
                records = []
                for _, thing, payload in batch:
                    sequence += 1
                    records.append({"SequenceNumber": f"{sequence:056d}", "PartitionKey": thing, "Data": payload,
                                    "ApproximateArrivalTimestamp": None})  # fmt: skip
                event = kinesis_event(SHARD, records, "us-east-1", STREAM_ARN, arrival_ns=arrival)
                before = measured.partials
                response = processor.handle(event)
                if response["batchItemFailures"]:
                    raise AssertionError(f"{run.describe()}: records failed: {response}")
                written.append((arrival, measured.partials - before))
                measured.invocations += 1
        measured.readings = len(readings)
        measured.payload_bytes = sum(len(r[2]) for r in readings) / len(readings)
        measured.counts = Counter(counts)
        sample = kinesis_event(SHARD, [{"SequenceNumber": "0" * 56, "PartitionKey": "sensor-00000",
                                        "Data": readings[0][2], "ApproximateArrivalTimestamp": None}],
                               "us-east-1", STREAM_ARN, arrival_ns=FLEET_START_NS)  # fmt: skip
        encoded = len(json.dumps(sample["Records"][0]))
        measured.event_record_overhead_bytes = encoded - len(sample["Records"][0]["kinesis"]["data"])
        _folder_lane(clients, targets, config, measured, written)
    return measured


def _folder_lane(
    clients: Clients, targets: Targets, config: Any, measured: FleetMeasurement, written: list[tuple[int, int]]
) -> None:
    """The partials, in stream order, to the folder in batches of the folder period."""
    records = [r for found in kinesis_records(clients, targets.partials_stream).values() for r in found]
    if len(records) != sum(n for _, n in written):
        raise AssertionError(f"{len(records)} partials records for {sum(n for _, n in written)} sent")
    period = measured.run.folder_period_seconds * NS_PER_SECOND
    buckets: dict[int, list[dict[str, Any]]] = {}
    position = 0
    for arrival, count in written:
        buckets.setdefault((arrival - FLEET_START_NS - 1) // period, []).extend(records[position : position + count])
        position += count
    folder = _folder(clients, targets, config)
    arn = f"arn:aws:kinesis:us-east-1:{ACCOUNT_ID}:stream/{targets.partials_stream}"
    with counting(clients) as counts, sizing(clients["dynamodb"], clients["kinesis"], measured, "folder"):
        for index in sorted(buckets):
            # batches as the mapping makes them: its batch size or 6 MB of event
            for batch in chunks(buckets[index], FOLDER_BATCH_SIZE, partial(event_of, arn=arn)):
                response = folder.handle(event_of(batch, arn=arn))
                if response["batchItemFailures"]:
                    raise AssertionError(f"folder: partials failed: {response}")
                measured.folder_invocations += 1
    measured.folder_counts = Counter(counts)


# ------------------------------------------------------------------------------ model vs measurement

CALIBRATION_RUNS = (
    FleetRun(sensors=200, interval_seconds=20, sensors_per_segment=4, batch_period_seconds=5, folder_period_seconds=15),
    FleetRun(sensors=120, interval_seconds=10, sensors_per_segment=24, batch_period_seconds=30),
    FleetRun(sensors=300, interval_seconds=20, sensors_per_segment=16, batch_period_seconds=5, batch_size=40,
             folder_period_seconds=20, windows=1),
)  # fmt: skip
"""Fleets and batch settings the calibration is measured on: one reading per sensor per batch; several,
with batches of more than 100 items; full small batches and busy segments."""


def model_for(run: FleetRun, measured: FleetMeasurement | None = None) -> capacity.Capacity:
    """What ``stacks.capacity`` predicts for ``run``'s lanes: one shard, one partials shard, the dev
    profile's functions, ``run``'s batch settings."""
    config = replace(PROFILES["dev"], aggregation_window_seconds=run.window_seconds)
    payload = round(measured.payload_bytes) if measured else 190
    fleet = capacity.Fleet(run.sensors, run.interval_seconds, payload, run.sensors_per_segment)
    pipeline = replace(
        config.pipeline,
        on_demand=False,
        shard_count=1,
        batch_size=run.batch_size,
        batching_window_seconds=run.batch_period_seconds,
        folder_batching_window_seconds=run.folder_period_seconds,
    )
    return capacity.model(fleet, pipeline, folder_lanes=1)


def compare(measured: FleetMeasurement) -> dict[str, tuple[float, float]]:
    """``{quantity: (measured, model)}`` per reading, per partial or per item written."""
    c = model_for(measured.run, measured)
    m, rate, partials = measured, c.readings_per_second, c.folder.records_per_second
    windows, aggregates = c.sensor_windows, c.segment_aggregates
    return {
        "processor invocations per reading": (m.invocations / m.readings, c.processor.invocations_per_second / rate),
        "processor requests per reading": (m.processor_requests() / m.readings, c.processor.requests_per_reading),
        "window item writes per reading": (m.item_writes / m.readings, windows.item_writes_per_second / rate),
        "write units per window item write": (m.write_units / m.item_writes, windows.write_units_per_item_write),
        "read units per reading": (m.read_units / m.readings, windows.read_units_per_second / rate),
        "partials per reading": (m.partials / m.readings, partials / rate),
        "folder requests per partial": (m.folder_requests() / m.partials, c.folder.requests_per_second / partials),
        "aggregate puts per partial": (m.aggregate_puts / m.partials, aggregates.item_writes_per_second / partials),
        "write units per aggregate put": (
            m.aggregate_write_units / m.aggregate_puts,
            aggregates.write_units_per_item_write,
        ),
    }


def _fit(rows: list[tuple[float, ...]]) -> list[float]:
    """Least-squares coefficients of ``y = c0 * x0 + c1 * x1 + ...`` over rows ``(x0, x1, ..., y)``."""
    width = len(rows[0]) - 1
    a = [[sum(r[i] * r[j] for r in rows) for j in range(width)] for i in range(width)]
    b = [sum(r[i] * r[-1] for r in rows) for i in range(width)]
    for col in range(width):  # Gauss-Jordan on the normal equations
        pivot = max(range(col, width), key=lambda r: abs(a[r][col]))
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        for row in range(width):
            if row != col and a[col][col]:
                factor = a[row][col] / a[col][col]
                a[row] = [x - factor * y for x, y in zip(a[row], a[col], strict=True)]
                b[row] -= factor * b[col]
    return [b[i] / a[i][i] for i in range(width)]


def cpu_seconds_per_reading(repeats: int = 21) -> float:
    """One core's time per reading of both functions' pure logic, batches of 1,000 (``tools.bench``)."""
    from tools.bench import pure_logic  # noqa: PLC0415

    return 1 / pure_logic.throughput(1000, repeats)


def calibrate(runs: tuple[FleetRun, ...] = CALIBRATION_RUNS) -> dict[str, Any]:
    """Measure ``runs`` on moto and derive what ``stacks.capacity.Calibration`` holds."""
    from lambdas.processor.logic import ITEM_OVERHEAD_BYTES, PART_BUDGET_BYTES, SEGMENT_WORST_BYTES  # noqa: PLC0415

    # a part closes when its worst case passes the budget: its rows, the newest reading whole (~300 bytes for
    # the runs' readings) and one segment's widest sums
    largest = 300

    measurements = [measure_fleet(run) for run in runs]
    windows = [item for m in measurements for item in m.window_items]
    base, row = _fit([(1.0, rows, size) for rows, _, size in windows])
    aggregates = [item for m in measurements for item in m.aggregate_items]
    # the runs have one readings shard: an aggregate's size with one source is measured; another shard adds
    # its ``src`` entry, a shard id and a 56-digit sequence number as JSON text (``lambdas.folder.logic``)
    agg_base = sum(size for _, _, size in aggregates) / len(aggregates)
    per_source = len(json.dumps({SHARD: "9" * 56}, separators=(",", ":"))) - 1
    folder_fixed = sum(
        m.folder_requests() - m.folder_counts["dynamodb:PutItem"] - m.folder_counts["dynamodb:BatchGetItem"]
        for m in measurements
    ) / sum(m.folder_invocations for m in measurements)
    partial_bytes = [size for m in measurements for size in m.partial_bytes]
    return {
        "keys_per_batch_get": max(m.batch_get_keys_max for m in measurements),
        "items_per_batch_write": max(m.batch_write_items_max for m in measurements),
        "window_item_base_bytes": round(base, 1),
        "window_item_row_bytes": round(row, 2),
        "window_part_rows": (PART_BUDGET_BYTES - ITEM_OVERHEAD_BYTES - SEGMENT_WORST_BYTES - largest) // ROW_BYTES - 1,
        "aggregate_item_base_bytes": round(agg_base, 1),
        "aggregate_item_source_bytes": round(per_source, 2),
        "partial_record_bytes": round(sum(partial_bytes) / len(partial_bytes), 1),
        "folder_fixed_requests": round(folder_fixed),
        "kinesis_event_record_overhead_bytes": round(measurements[0].event_record_overhead_bytes, 1),
        "cpu_seconds_per_reading": float(f"{cpu_seconds_per_reading():.3g}"),
        "measured": {
            "date": format_instant(time.time_ns())[:10],
            "command": capacity.CALIBRATE_COMMAND,
            "on": f"moto {moto_version()}, Python {platform.python_version()}, {platform.machine()}",
            "runs": [
                {"run": m.run.describe(), "readings": m.readings, "window_item_writes": m.item_writes,
                 "partials": m.partials, "aggregate_puts": m.aggregate_puts, "processor_requests": dict(m.counts),
                 "folder_requests": dict(m.folder_counts)}
                for m in measurements
            ],
            "cpu": "1 / tools.bench.pure_logic.throughput(1000, 21): one core of the calibrating machine",
        },
    }  # fmt: skip


# ------------------------------------------------------------------- the local run at scale vs the model


@dataclass(frozen=True)
class Compared:
    """One quantity of a local run next to the model's prediction (``model`` ``None``: not modelled)."""

    phase: str
    quantity: str
    measured: float
    model: float | None

    @property
    def ratio(self) -> float | None:
        """Measured over model (``None`` when the model has nothing to compare with)."""
        return self.measured / self.model if self.model else None


def scale_model(
    sensors: int,
    *,
    interval_seconds: int,
    sensors_per_segment: int,
    payload_bytes: float,
    shards: int,
    folder_lanes: int,
) -> capacity.Capacity:
    """What ``stacks.capacity`` predicts for the local run at scale: the dev profile's functions, batch
    size and batching windows on a provisioned stream of ``shards`` shards, ``folder_lanes`` lanes of the
    partials stream (its shards in the run)."""
    config = PROFILES["dev"]
    fleet = capacity.Fleet(sensors, interval_seconds, round(payload_bytes), sensors_per_segment)
    pipeline = replace(config.pipeline, on_demand=False, shard_count=shards)
    return capacity.model(fleet, pipeline, folder_lanes=folder_lanes)


PROCESSOR_MODELLED = ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem", "kinesis:PutRecords")
FOLDER_MODELLED = ("dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:Query", "cloudwatch:PutMetricData")
FOLDER_PUBLISHING = ("sns:Publish", "dynamodb:UpdateItem")
"""Per alert sent (publish, then the ``sent`` mark): the model is calibrated on free-flowing traffic."""


def scale_comparison(result: Mapping[str, Any]) -> list[Compared]:
    """Requests of a ``tools.bench.scale`` run next to the model's: the processor's per 1,000 readings
    stored (by ``service:Operation``), the folder's per partial. The model counts one conditional PutItem
    per segment window a folder invocation folds, never refused (one writer per segment window): a refused
    put (a re-read GetItem and another PutItem) is reported on its own row, and the folder's total is
    compared without publishing alerts."""
    summary = result["summary"]
    run = summary["run"]
    c = scale_model(
        result["sensors"],
        interval_seconds=result["interval_seconds"],
        sensors_per_segment=result["sensors_per_segment"],
        payload_bytes=result["payload_bytes"],
        shards=run["shards"],
        folder_lanes=run["folder_lanes"],
    )
    readings = summary["accepted"]
    per_thousand = 1000 / readings
    proc = c.processor
    rows: list[Compared] = []
    measured = run["requests"]["processor"]
    sends = capacity.partials_requests(c.folder.records_per_second / proc.invocations_per_second)
    per_batch = 1000 / proc.readings_per_batch
    # a run of minutes: each sensor's first batch reads and writes its fleet registry item (a key more in a
    # BatchGetItem of 100, an item more in a BatchWriteItem of 25); the steady state spreads that over a day
    first = result["sensors"] * per_thousand
    first_gets = first / capacity.CALIBRATION.keys_per_batch_get
    first_writes = first / capacity.CALIBRATION.items_per_batch_write
    model_processor = {
        "dynamodb:BatchGetItem": proc.batch_get_requests * per_batch + first_gets,
        "dynamodb:BatchWriteItem": proc.batch_write_requests * per_batch + first_writes,
        "dynamodb:PutItem": per_batch,  # the shard's partials mark
        "kinesis:PutRecords": (sends - 1) * per_batch,
    }
    for op in sorted(set(measured) | set(PROCESSOR_MODELLED)):
        rows.append(Compared("processor", f"{op} per 1,000 readings", measured.get(op, 0) * per_thousand,
                             model_processor.get(op)))  # fmt: skip
    rows.append(
        Compared(
            "processor",
            "requests per 1,000 readings",
            sum(measured.get(op, 0) for op in PROCESSOR_MODELLED) * per_thousand,
            proc.requests_per_reading * 1000 + first_gets + first_writes,
        )
    )
    partials = run["partials"]
    conflicts = run["folder_write_conflicts"]
    folder = run["requests"]["folder"]
    f = c.folder
    per_invocation = f.records_per_invocation
    requests = f.requests_per_second / f.invocations_per_second
    fixed = capacity.CALIBRATION.folder_fixed_requests  # the expired-claims Query and PutMetricData, each invocation
    gets = requests - f.segment_windows_per_invocation - fixed
    model_folder = {
        "dynamodb:BatchGetItem": gets / per_invocation,
        "dynamodb:PutItem": f.segment_windows_per_invocation / per_invocation,
        "dynamodb:Query": 1 / per_invocation,
        "cloudwatch:PutMetricData": 1 / per_invocation,
        "dynamodb:GetItem": 0.0,
    }
    for op in sorted(set(folder) | set(FOLDER_MODELLED)):
        model = None if op in FOLDER_PUBLISHING else model_folder.get(op)
        rows.append(Compared("folder", f"{op} per partial", folder.get(op, 0) / partials, model))
    rows.append(Compared("folder", "refused conditional puts per partial", conflicts / partials, None))
    rows.append(
        Compared(
            "folder",
            "requests per partial, without alert publishing",
            sum(folder.get(op, 0) for op in FOLDER_MODELLED) / partials,
            requests / per_invocation,
        )
    )
    return rows


def moto_version() -> str:
    import moto  # noqa: PLC0415

    return str(moto.__version__)


def print_comparison(measurements: list[FleetMeasurement]) -> None:
    for m in measurements:
        print(f"{m.run.describe()}: {m.readings:,} readings")
        for name, (got, want) in compare(m).items():
            print(f"  {name:36} measured {got:9.4f}  model {want:9.4f}  ({(want - got) / got:+.1%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help=f"measure the calibration runs and write {capacity.CALIBRATION_FILE.name}",
    )
    parser.add_argument("--compare", action="store_true", help="measure the calibration runs against the model")
    args = parser.parse_args(argv)
    if args.calibrate:
        data = calibrate()
        capacity.CALIBRATION_FILE.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {capacity.CALIBRATION_FILE}")
        return 0
    if args.compare:
        print_comparison([measure_fleet(run) for run in CALIBRATION_RUNS])
        return 0
    for measured in measure():
        calls = ", ".join(f"{key} {n}" for key, n in sorted(measured.counts.items()))
        print(f"{measured.scenario}: {measured.invocations} invocation(s): {calls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
