"""The contract's answers to the data-quality ledger and baseline named queries, over a sample lake and
quarantine store (``tests.lake_sample``), computed in Python with exact arithmetic.

Readings are the contract's (``lambdas/common/contract.py``) valid readings of the lake rows read, each
once (``distinct_readings``); a quarantined record's reason is what the contract says of its payload,
thing name and arrival time (``parse_reading``), not what the object's line says; every sum, ratio and
percentile is a ``Fraction`` until it is compared.
"""

from __future__ import annotations

import bisect
import datetime
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from lambdas.common.contract import (
    DEFAULT_INTERVAL_SECONDS,
    NS_PER_SECOND,
    REASONS,
    Reading,
    Rejection,
    parse_reading,
)
from lambdas.processor.logic import KinesisRecord
from stacks.analytics import (
    BASELINE_DAYS,
    BASELINE_MIN_WEEKS,
    BASELINE_WEEKS,
    LEDGER_DAYS,
    LEDGER_HOURS,
    PARTITION_KEY,
)
from stacks.quarantine_catalog import UNKNOWN_SENSOR
from tests.lake_sample import (
    MAX_AGE_NS,
    QuarantineObject,
    Row,
    contract_reading,
    distinct_readings,
)

Result = list[tuple[Any, ...]]
HOUR_NS = 3600 * NS_PER_SECOND
DAY_NS = 24 * HOUR_NS
_EPOCH = datetime.datetime(1970, 1, 1)


def instant_ns(moment: datetime.datetime) -> int:
    return int(moment.timestamp()) * NS_PER_SECOND + moment.microsecond * 1000


def as_timestamp(ns: int) -> datetime.datetime:
    """A UTC instant as the naive ``timestamp`` DuckDB returns, truncated to the second."""
    return _EPOCH + datetime.timedelta(seconds=ns // NS_PER_SECOND)


def _real(value: Fraction | None) -> float | None:
    return None if value is None else float(value)


# --- the ledger ---------------------------------------------------------------------------------------------------


@dataclass
class LedgerHour:
    received: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Quarantined:
    """A quarantined record as the contract judges it."""

    sensor_id: str
    reason: str
    detail: str
    arrival_ns: int


def quarantined_records(objects: Iterable[QuarantineObject]) -> list[Quarantined]:
    """Every record the processor quarantined, once (by shard, partition key and sequence number), with
    the contract's reason for it, counted for its thing name. All objects: which ``dt`` folders hold the
    records of an hour is for the queries to get right."""
    records: dict[tuple[str, str, str], KinesisRecord] = {}
    for obj in objects:
        for record, _ in obj.rejects:
            records[(record.shard_id, record.partition_key, record.sequence_number)] = record
    found = []
    for record in records.values():
        verdict = parse_reading(record.data, record.arrival_ns, thing=record.partition_key, max_age_ns=MAX_AGE_NS)
        assert isinstance(verdict, Rejection), f"the contract accepts quarantined record {record}"
        found.append(
            Quarantined(record.partition_key or UNKNOWN_SENSOR, verdict.reason, verdict.detail, record.arrival_ns)
        )
    return found


def ledger_window(now: datetime.datetime) -> tuple[int, int]:
    """The ledger's hours: from ``LEDGER_HOURS`` before the current UTC hour to its start."""
    end = instant_ns(now) // HOUR_NS * HOUR_NS
    return end - LEDGER_HOURS * HOUR_NS, end


def ledger(rows: Sequence[Row], objects: Sequence[QuarantineObject], now: datetime.datetime) -> Result:
    """``data-quality-ledger-24h``: one row per sensor and hour, ordered by sensor and hour."""
    start, end = ledger_window(now)
    since = now.date() - datetime.timedelta(days=LEDGER_DAYS)
    hours: dict[tuple[str, int], LedgerHour] = defaultdict(LedgerHour)

    readings = [reading for _, reading in distinct_readings(rows, since)]
    history: dict[str, list[Reading]] = defaultdict(list)
    for reading in readings:
        if reading.instant_ns < end:
            history[reading.sensor_id].append(reading)
        if start <= reading.instant_ns < end:
            hours[(reading.sensor_id, reading.instant_ns // HOUR_NS * HOUR_NS)].received += 1
    copies = Counter(
        (copy.sensor_id, copy.key, copy.instant_ns)
        for row in rows
        if row[PARTITION_KEY] >= since.isoformat() and (copy := contract_reading(row)) is not None
    )
    for (sensor, _, instant), count in copies.items():
        if start <= instant < end and count > 1:
            hours[(sensor, instant // HOUR_NS * HOUR_NS)].duplicates += count - 1
    for record in quarantined_records(objects):
        if start <= record.arrival_ns < end:
            hours[(record.sensor_id, record.arrival_ns // HOUR_NS * HOUR_NS)].quarantined[record.reason] += 1

    result = []
    for sensor in sorted(set(history) | {s for s, _ in hours}):
        past = sorted(history.get(sensor, []), key=lambda r: r.instant_ns)
        instants = [r.instant_ns for r in past]
        for hour in range(start, end, HOUR_NS):
            cell = hours.get((sensor, hour), LedgerHour())
            known = bisect.bisect_left(instants, hour + HOUR_NS)  # readings at or before the hour's end
            if not known and not cell.quarantined:
                continue
            interval = past[known - 1].interval_seconds if known else DEFAULT_INTERVAL_SECONDS
            expected = Fraction(3600, interval)
            result.append(
                (
                    sensor,
                    as_timestamp(hour),
                    float(expected),
                    cell.received,
                    float(cell.received / expected),
                    cell.duplicates,
                    cell.quarantined.total(),
                    *(cell.quarantined[reason] for reason in REASONS),
                )
            )
    return result


def least_complete(ledger_rows: Result) -> Result:
    """``least-complete-sensors-24h``: the ledger summed per sensor, the 100 lowest completeness first."""
    per_sensor: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in ledger_rows:
        per_sensor[row[0]].append(row)
    summary = []
    for sensor, cells in per_sensor.items():
        expected = sum(Fraction(c[2]) for c in cells)  # each 3600 / interval, exact in the sample
        received = sum(c[3] for c in cells)
        completeness = received / expected
        summary.append(
            (
                completeness,
                (
                    sensor,
                    len(cells),
                    float(expected),
                    received,
                    float(completeness),
                    sum(c[3] == 0 for c in cells),
                    sum(c[5] for c in cells),
                    sum(c[6] for c in cells),
                ),
            )
        )
    summary.sort(key=lambda item: (item[0], item[1][0]))
    return [row for _, row in summary[:100]]


def invalid_data(objects: Sequence[QuarantineObject], now: datetime.datetime) -> Result:
    """``sensors-sending-invalid-data-24h``: per sensor and reason, the most records first."""
    start, end = ledger_window(now)
    groups: dict[tuple[str, str], list[Quarantined]] = defaultdict(list)
    for record in quarantined_records(objects):
        if start <= record.arrival_ns < end:
            groups[(record.sensor_id, record.reason)].append(record)
    result = [
        (
            sensor,
            reason,
            len(records),
            as_timestamp(min(r.arrival_ns for r in records)),
            as_timestamp(max(r.arrival_ns for r in records)),
            min(r.detail for r in records),
        )
        for (sensor, reason), records in groups.items()
    ]
    result.sort(key=lambda row: (-row[2], row[0], row[1]))
    return result[:100]


# --- baselines ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentHour:
    vehicles: int
    speed: Fraction | None
    """The vehicle-weighted mean speed; ``None`` without vehicles."""


def segment_hours(rows: Sequence[Row], now: datetime.datetime) -> dict[tuple[str, int], SegmentHour]:
    """Each segment's aggregate per UTC hour (the contract's: its distinct readings' vehicles and
    vehicle-weighted speed) from the baseline's first day to the current hour."""
    today = instant_ns(now) // DAY_NS * DAY_NS
    first, end = today - 7 * BASELINE_WEEKS * DAY_NS, instant_ns(now) // HOUR_NS * HOUR_NS
    groups: dict[tuple[str, int], list[Reading]] = defaultdict(list)
    for _, reading in distinct_readings(rows, now.date() - datetime.timedelta(days=BASELINE_DAYS)):
        if first <= reading.instant_ns < end:
            groups[(reading.segment_id, reading.instant_ns // HOUR_NS * HOUR_NS)].append(reading)
    found = {}
    for key, readings in groups.items():
        vehicles = sum(r.vehicle_count for r in readings)
        weighted = sum((Fraction(r.average_speed_kmh) * r.vehicle_count for r in readings), Fraction(0))
        found[key] = SegmentHour(vehicles, weighted / vehicles if vehicles else None)
    return found


def percentile(values: Iterable[Fraction | int], percent: int) -> Fraction | None:
    """Linear interpolation between the closest ranks (numpy's default), exactly."""
    ordered = sorted(Fraction(v) for v in values)
    if not ordered:
        return None
    position = Fraction(percent * (len(ordered) - 1), 100)
    low = math.floor(position)
    weight = position - low
    value = ordered[low] * (1 - weight)
    return value + ordered[low + 1] * weight if weight else value


@dataclass(frozen=True)
class Baseline:
    volume_hours: int
    speed_hours: int
    median_vehicles: Fraction
    p85_vehicles: Fraction
    median_speed: Fraction | None
    p85_speed: Fraction | None


def hour_of_week(hour_ns: int) -> tuple[int, int]:
    """(ISO day of week, 1 = Monday, hour of day) of a UTC hour."""
    moment = as_timestamp(hour_ns)
    return moment.isoweekday(), moment.hour


def baselines(
    hours: dict[tuple[str, int], SegmentHour], now: datetime.datetime
) -> dict[tuple[str, int, int], Baseline]:
    """Per segment and hour of the week, the percentiles of the hours before today."""
    today = instant_ns(now) // DAY_NS * DAY_NS
    samples: dict[tuple[str, int, int], list[SegmentHour]] = defaultdict(list)
    for (segment, hour), aggregate in hours.items():
        if hour < today:
            samples[(segment, *hour_of_week(hour))].append(aggregate)
    found = {}
    for key, group in samples.items():
        vehicles = [h.vehicles for h in group]
        speeds = [h.speed for h in group if h.speed is not None]
        median, p85 = percentile(vehicles, 50), percentile(vehicles, 85)
        assert median is not None and p85 is not None
        found[key] = Baseline(len(vehicles), len(speeds), median, p85, percentile(speeds, 50), percentile(speeds, 85))
    return found


def baseline_table(usual: dict[tuple[str, int, int], Baseline]) -> Result:
    """``segment-baselines-by-hour-of-week``, ordered by segment, day of week and hour of day."""
    return [
        (
            segment,
            day,
            hour,
            b.volume_hours,
            b.speed_hours,
            float(b.median_vehicles),
            float(b.p85_vehicles),
            _real(b.median_speed),
            _real(b.p85_speed),
        )
        for (segment, day, hour), b in sorted(usual.items())
    ]


def furthest_from_baseline(
    hours: dict[tuple[str, int], SegmentHour], usual: dict[tuple[str, int, int], Baseline], now: datetime.datetime
) -> Result:
    """``segment-hours-furthest-from-baseline-today``: today's whole hours against a baseline of at least
    ``BASELINE_MIN_WEEKS`` samples, the 50 largest departures first."""
    today = instant_ns(now) // DAY_NS * DAY_NS
    found = []
    for (segment, hour), today_hour in hours.items():
        b = usual.get((segment, *hour_of_week(hour)))
        if hour < today or b is None or b.volume_hours < BASELINE_MIN_WEEKS:
            continue
        volume = abs(today_hour.vehicles - b.median_vehicles) / max(b.median_vehicles, Fraction(1))
        speed = None
        if b.speed_hours >= BASELINE_MIN_WEEKS and today_hour.speed is not None and b.median_speed:
            speed = abs(today_hour.speed - b.median_speed) / b.median_speed
        departure = speed if speed is not None and speed > volume else volume
        found.append(
            (
                (-departure, segment, hour),
                (
                    segment,
                    as_timestamp(hour),
                    today_hour.vehicles,
                    float(b.median_vehicles),
                    float(b.p85_vehicles),
                    _real(today_hour.speed),
                    _real(b.median_speed),
                    _real(b.p85_speed),
                    float(volume),
                    _real(speed),
                    float(departure),
                ),
            )
        )
    found.sort(key=lambda item: item[0])
    return [row for _, row in found[:50]]


def answers(rows: Sequence[Row], objects: Sequence[QuarantineObject], now: datetime.datetime) -> dict[str, Result]:
    """Every ledger and baseline query's answer at ``now``, by query id."""
    ledger_rows = ledger(rows, objects, now)
    hours = segment_hours(rows, now)
    usual = baselines(hours, now)
    return {
        "data-quality-ledger-24h": ledger_rows,
        "least-complete-sensors-24h": least_complete(ledger_rows),
        "sensors-sending-invalid-data-24h": invalid_data(objects, now),
        "segment-baselines-by-hour-of-week": baseline_table(usual),
        "segment-hours-furthest-from-baseline-today": furthest_from_baseline(hours, usual, now),
    }
