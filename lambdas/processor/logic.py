"""The processor's pure logic: classify records, and merge readings into stored state idempotently.

Items are plain dicts in boto3's "resource" shape (numbers as ``Decimal``); the store serializes them.

Window items hold one sensor's distinct readings in one window of one segment, keyed by the reading's
UTC instant, with their exact sums and the newest of them (``latest``: the sensor's current state when
the item is the sensor's newest). The sequence number that first delivered a reading is kept with it, and
the sequence numbers of later copies are kept in ``duplicates``. So a redelivery of the same record (a
Lambda retry or a shard
replay) changes nothing, while a republished copy (a new record) is counted once as a duplicate, however
often it is itself redelivered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from functools import lru_cache
from typing import Any, NamedTuple

from lambdas.common.contract import (
    EXACT_CONTEXT,
    NS_PER_SECOND,
    Reading,
    Rejection,
    Sums,
    congestion_level,
    exact,
    exact_text,
    format_instant,
    parse_reading,
    window_start_ns,
)


class KinesisRecord(NamedTuple):
    """One record of a Kinesis event, as Lambda delivers it (immutable; cheap to create)."""

    sequence_number: str
    partition_key: str
    shard_id: str
    data: bytes
    arrival_seconds: float


def records_from_event(event: Mapping[str, Any]) -> list[KinesisRecord]:
    """Decode the Lambda Kinesis event (``Records[].kinesis.data`` is base64)."""
    records = []
    for raw in event.get("Records", []):
        kinesis = raw["kinesis"]
        records.append(
            KinesisRecord(
                sequence_number=kinesis["sequenceNumber"],
                partition_key=kinesis.get("partitionKey", ""),
                shard_id=str(raw.get("eventID", "")).split(":", 1)[0],
                data=base64.b64decode(kinesis["data"]),
                arrival_seconds=float(kinesis.get("approximateArrivalTimestamp", 0)),
            )
        )
    return records


@dataclass
class Classified:
    readings: list[tuple[KinesisRecord, Reading]] = field(default_factory=list)
    rejects: list[tuple[KinesisRecord, Rejection]] = field(default_factory=list)


def classify(records: Iterable[KinesisRecord], now_ns: int) -> Classified:
    """Apply the contract to every record."""
    result = Classified()
    readings, rejects = result.readings.append, result.rejects.append
    for record in records:
        outcome = parse_reading(record.data, now_ns)
        if isinstance(outcome, Reading):
            readings((record, outcome))
        else:
            rejects((record, outcome))
    return result


def quarantine_object(
    prefix: str, rejects: Sequence[tuple[KinesisRecord, Rejection]], now_ns: int
) -> tuple[str, bytes]:
    """Key and NDJSON body of the one quarantine object for a batch's rejects.

    The key is derived from the rejected sequence numbers, so a retried batch rewrites the same object;
    each line carries its sequence number, so readers count distinct records across objects.
    """
    now = format_instant(now_ns)
    lines = [
        json.dumps(
            {
                "reason": rejection.reason,
                "detail": rejection.detail,
                "sequence_number": record.sequence_number,
                "partition_key": record.partition_key,
                "shard_id": record.shard_id,
                "approximate_arrival_timestamp": record.arrival_seconds,
                "quarantined_at": now,
                "payload_base64": base64.b64encode(record.data).decode("ascii"),
            },
            sort_keys=True,
        )
        for record, rejection in rejects
    ]
    first, last = rejects[0][0], rejects[-1][0]
    key = f"{prefix}dt={now[:10]}/{first.shard_id or 'shard'}/{first.sequence_number}-{last.sequence_number}.ndjson"
    return key, ("\n".join(lines) + "\n").encode("utf-8")


def window_start(reading: Reading, window_seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` start of the reading's window."""
    return _window_label(window_start_ns(reading.instant_ns, window_seconds))


@lru_cache(maxsize=1024)
def _window_label(start_ns: int) -> str:
    return format_instant(start_ns)[:19] + "Z"


WindowKey = tuple[str, str]  # (sensor_id, window_segment)


def window_key(reading: Reading, window_seconds: int) -> WindowKey:
    """The item key: the sensor, then ``<window start>#<segment>`` (sorts by window: newest is last)."""
    return reading.sensor_id, f"{window_start(reading, window_seconds)}#{reading.segment_id}"


@dataclass(slots=True)
class WindowMerge:
    """Result of merging a batch's readings into one window item."""

    item: dict[str, Any] | None
    """The item to write, or ``None`` when nothing changed."""
    new: list[str] = field(default_factory=list)
    """Sequence numbers of records that added a reading."""
    duplicates: list[str] = field(default_factory=list)
    """Sequence numbers of records that were newly counted as duplicates."""
    redelivered: list[str] = field(default_factory=list)
    """Sequence numbers already accounted for by an earlier delivery."""
    sums: Sums | None = None
    """The item's exact sums (what its numeric attributes hold), when it changed."""


def merge_window(
    existing: Mapping[str, Any] | None,
    contributions: Sequence[tuple[str, Reading]],
    *,
    key: WindowKey,
    window_seconds: int,
    ttl_days: int,
) -> WindowMerge:
    """Add ``(sequence number, reading)`` pairs, in delivery order, to a window item.

    The item keeps the readings as one JSON attribute (``{instant: [vehicles, speed, occupancy,
    limit, first sequence number]}``) and their exact sums (decimals as text, see ``exact_text``),
    which the alert function and the read-back combine without parsing the readings.
    """
    first = contributions[0][1]
    readings: dict[str, list[Any]] = _READINGS_DECODER.decode(existing["readings"]) if existing else {}
    duplicates: set[str] = set(existing.get("duplicates", ())) if existing else set()
    merge = WindowMerge(item=None)
    for sequence_number, reading in contributions:
        instant = reading.key
        stored = readings.get(instant)
        if stored is None:
            readings[instant] = [
                reading.vehicle_count,
                reading.average_speed_kmh,
                reading.occupancy_percent,
                reading.speed_limit_kmh,
                sequence_number,
            ]
            merge.new.append(sequence_number)
        elif stored[4] == sequence_number or sequence_number in duplicates:
            merge.redelivered.append(sequence_number)
        else:
            duplicates.add(sequence_number)
            merge.duplicates.append(sequence_number)
    if not merge.new and not merge.duplicates:
        return merge
    start_ns = window_start_ns(first.instant_ns, window_seconds)
    expires = (start_ns // NS_PER_SECOND) + window_seconds + ttl_days * 86400
    sums, latest = summarize(readings)
    item: dict[str, Any] = {
        "sensor_id": key[0],
        "window_segment": key[1],
        "window_start": key[1].split("#", 1)[0],
        "segment_id": first.segment_id,
        "readings": encode_readings(readings),
        **sums.attributes(),
        "latest": latest,
        "expires_at": max(expires, int(existing["expires_at"]) if existing and "expires_at" in existing else 0),
    }
    if duplicates:
        item["duplicates"] = duplicates
    merge.item = item
    merge.sums = sums
    return merge


_READINGS_DECODER = json.JSONDecoder()
_string = json.encoder.encode_basestring_ascii


def encode_readings(readings: Mapping[str, Sequence[Any]]) -> str:
    """``json.dumps(readings, sort_keys=True, separators=(",", ":"))`` for the window rows
    ``[int, float, float, float, str]`` (numbers as ``repr``, as json writes them), several times
    faster for the small items most batches write; a test compares both on many rows."""
    return (
        "{"
        + ",".join(
            [
                f"{_string(instant)}:[{row[0]!r},{row[1]!r},{row[2]!r},{row[3]!r},{_string(row[4])}]"
                for instant, row in sorted(readings.items())
            ]
        )
        + "}"
    )


def summarize(readings: Mapping[str, Sequence[Any]]) -> tuple[Sums, dict[str, Any]]:
    """A window's exact sums and its newest reading, in one pass over ``{instant: row}``.

    The sums are the same as ``total(Sums.of(Measurement(*row[:4])) for row in rows)`` (a test checks);
    the newest reading is the largest key (fixed-width UTC instants sort as time), with its numbers as
    the decimals they were written as.
    """
    readings_count = vehicles = 0
    speed_x_vehicles = occupancy = Decimal(0)
    limit: Decimal | None = None
    newest, newest_numbers = "", (Decimal(0), Decimal(0), Decimal(0))
    with localcontext(EXACT_CONTEXT):
        for instant, row in readings.items():
            count, speed, row_occupancy, row_limit = row[0], exact(row[1]), exact(row[2]), exact(row[3])
            readings_count += 1
            vehicles += count
            speed_x_vehicles += count * speed
            occupancy += row_occupancy
            if limit is None or row_limit < limit:
                limit = row_limit
            if instant > newest:
                newest, newest_numbers = instant, (speed, row_occupancy, row_limit)
    row = readings[newest]
    latest = {
        "timestamp": newest,
        "vehicle_count": row[0],
        "average_speed_kmh": exact_text(newest_numbers[0]),
        "occupancy_percent": exact_text(newest_numbers[1]),
        "speed_limit_kmh": exact_text(newest_numbers[2]),
        "congestion_level": congestion_level(row[0], row[1], row[2], row[3]),
        "sequence_number": row[4],
    }
    return Sums(readings_count, vehicles, speed_x_vehicles, occupancy, limit), latest
