"""The processor's pure logic: classify records, and merge readings into stored state idempotently.

Items are plain dicts in boto3's "resource" shape (numbers as ``Decimal``); the store serializes them.

**Window items.** One sensor's distinct readings in one aggregation window live in one or more *part*
items keyed ``(sensor_id, "<window start>#<part>")`` (part ``000``, ``001``, ...). A reading is
identified by its sensor and UTC instant only (contract version 2): a copy with another segment or
other values is a duplicate of the copy stored first. Each part keeps its readings as one JSON
attribute (``{instant: [vehicles, speed, occupancy, limit, segment, first sequence number]}``, numbers
as the literals the sensor wrote), the exact sums of those readings *per segment* (``segments``, JSON
text, see ``contract.encode_sums``), the
newest of them (``latest``) and a ``version`` that grows with every write of the item (the alert
function uses it to never let an older image replace a newer one).

**Bounded items.** DynamoDB refuses items over 400 KB. New readings go to the window's last part; a part
whose worst-case size (its rows, its newest row again, and :data:`SEGMENT_WORST_BYTES` per segment for
sums of up to 10,000 digits) would pass :data:`PART_BUDGET_BYTES` is closed and the next part opened, so
no window length, interval or number of readings makes an item too large. The head part (``000``)
records how many parts there are (``parts``); a window with more than one part costs one more
BatchGetItem round, only for that window.

**Redelivery and duplicates, bounded.** The head part keeps, per Kinesis shard, the highest sequence
number folded into the window (``hwm``) and the number of duplicates counted (``duplicates``). A
sensor's records come from one shard, in order (see ``service``), so a record at or below the mark was
already accounted for: a retry or replay changes nothing. A reading whose instant is not stored is
always added, whatever its sequence number, so a record handed back later (a redrive of records that
went to the on-failure queue) is never lost. A later copy of a stored instant above the mark is counted
once as a duplicate. The item grows with the number of shards, never with republishing.
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
    DEFAULT_INTERVAL_SECONDS,
    EXACT_CONTEXT,
    NS_PER_SECOND,
    Reading,
    Rejection,
    Sums,
    as_decimal,
    encode_sums,
    exact_text,
    format_instant,
    level_of_sums,
    parse_reading,
    window_start_ns,
)
from lambdas.common.silence import LATEST_INTERVAL

PART_BUDGET_BYTES = 350_000
"""Largest worst-case size of a part item (DynamoDB's limit is 400 KB, names and overhead included)."""
SEGMENT_WORST_BYTES = 41_000
"""Worst-case size of one segment's sums in a part: four numbers of at most 10,000 digits (the exact
context rounds every stored sum to that), an exponent each, and the segment's name."""
ITEM_OVERHEAD_BYTES = 4_000
"""Keys, marks, counters and attribute names of a part item, with room to spare."""


class KinesisRecord(NamedTuple):
    """One record of a Kinesis event, as Lambda delivers it (immutable; cheap to create)."""

    sequence_number: str
    partition_key: str
    shard_id: str
    data: bytes
    arrival_ns: int
    """``approximateArrivalTimestamp``: when the stream accepted the record, the same on every read."""


@lru_cache(maxsize=4096)
def _arrival_ns(value: Any) -> int:
    """Kinesis's ``approximateArrivalTimestamp`` (epoch seconds, millisecond precision) in nanoseconds,
    read from its decimal text, so that the same record gets the same instant on every delivery."""
    return int(Decimal(repr(value) if isinstance(value, float) else str(value)) * NS_PER_SECOND)


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
                arrival_ns=_arrival_ns(kinesis.get("approximateArrivalTimestamp", 0)),
            )
        )
    return records


@dataclass
class Classified:
    readings: list[tuple[KinesisRecord, Reading]] = field(default_factory=list)
    rejects: list[tuple[KinesisRecord, Rejection]] = field(default_factory=list)


def classify(records: Iterable[KinesisRecord], max_age_ns: int) -> Classified:
    """Apply the contract to every record: its partition key is the thing name it was published as, and
    its arrival time is what the time rules are judged against."""
    result = Classified()
    readings, rejects = result.readings.append, result.rejects.append
    for record in records:
        outcome = parse_reading(record.data, record.arrival_ns, thing=record.partition_key, max_age_ns=max_age_ns)
        if isinstance(outcome, Reading):
            readings((record, outcome))
        else:
            rejects((record, outcome))
    return result


def quarantine_object(
    prefix: str, rejects: Sequence[tuple[KinesisRecord, Rejection]], now_ns: int
) -> tuple[str, bytes]:
    """Key and NDJSON body of the one quarantine object for a batch's rejects.

    The key is derived from the rejected records alone (the first one's arrival day and the sequence
    numbers), so a retried batch rewrites the same object; each line carries its sequence number and
    arrival time, so readers count distinct records across objects and a redrive judges them the same.
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
                "approximate_arrival_timestamp": format_instant(record.arrival_ns),
                "quarantined_at": now,
                "payload_base64": base64.b64encode(record.data).decode("ascii"),
            },
            sort_keys=True,
        )
        for record, rejection in rejects
    ]
    first, last = rejects[0][0], rejects[-1][0]
    day = format_instant(first.arrival_ns)[:10]
    key = f"{prefix}dt={day}/{first.shard_id or 'shard'}/{first.sequence_number}-{last.sequence_number}.ndjson"
    return key, ("\n".join(lines) + "\n").encode("utf-8")


def window_start(reading: Reading, window_seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` start of the reading's window."""
    return window_label(window_start_ns(reading.instant_ns, window_seconds))


@lru_cache(maxsize=1024)
def window_label(start_ns: int) -> str:
    return format_instant(start_ns)[:19] + "Z"


WindowId = tuple[str, str]  # (sensor_id, window start label)
ItemKey = tuple[str, str]  # (sensor_id, window_part)


def part_key(window: WindowId, part: int) -> ItemKey:
    """The item key of a window's part: the sensor, then ``<window start>#<part>`` (sorts by window)."""
    return window[0], f"{window[1]}#{part:03d}"


def window_of(reading: Reading, window_seconds: int) -> WindowId:
    return reading.sensor_id, window_start(reading, window_seconds)


class Contribution(NamedTuple):
    sequence_number: str
    shard_id: str
    reading: Reading


@dataclass(slots=True)
class WindowMerge:
    """Result of merging a batch's readings into one sensor window."""

    items: list[dict[str, Any]] = field(default_factory=list)
    """The stored part items to write (the head among them), empty when nothing changed."""
    sums: list[tuple[str, Sums]] = field(default_factory=list)
    """Each written part's exact sums per segment, as ``(segment, sums)`` (what its ``segments`` holds)."""
    opened: list[dict[str, Any]] = field(default_factory=list)
    """Parts this merge opens: written only once ``items`` are, so that the head always knows of every
    part that exists (a part the head does not count would be rebuilt from scratch with the same version,
    and the alert function would ignore it)."""
    new: list[str] = field(default_factory=list)
    """Sequence numbers of records that added a reading."""
    duplicates: list[str] = field(default_factory=list)
    """Sequence numbers of records that were newly counted as duplicates."""
    redelivered: list[str] = field(default_factory=list)
    """Sequence numbers already accounted for by an earlier delivery."""


_READINGS_DECODER = json.JSONDecoder(parse_float=Decimal)
_string = json.encoder.encode_basestring_ascii


def _row_text(instant: str, row: Sequence[Any]) -> str:
    """One reading as stored: ``"instant":[vehicles,speed,occupancy,limit,"segment","sequence"]``."""
    return f"{_string(instant)}:[{row[0]},{row[1]},{row[2]},{row[3]},{_string(row[4])},{_string(row[5])}]"


def encode_readings(readings: Mapping[str, Sequence[Any]]) -> str:
    """``{instant: row}`` as compact JSON sorted by instant, numbers as the decimal literals they are
    (``str`` of a ``Decimal`` is valid JSON); a test compares it with ``json.dumps``."""
    return _join_rows({instant: _row_text(instant, row) for instant, row in readings.items()})


def _join_rows(texts: Mapping[str, str]) -> str:
    """Rendered rows as the stored JSON object, sorted by instant."""
    return "{" + ",".join([texts[instant] for instant in sorted(texts)]) + "}"


def decode_readings(text: str) -> dict[str, list[Any]]:
    decoded: dict[str, list[Any]] = _READINGS_DECODER.decode(text)
    return decoded


@dataclass(slots=True)
class _Part:
    """A part being merged into: its rows and what its worst-case size adds up to."""

    index: int
    existing: Mapping[str, Any] | None
    rows: dict[str, list[Any]]
    texts: dict[str, str]
    """Each row as stored (see ``_row_text``): rendered once, for its size and for the item."""
    row_bytes: int
    largest_row: int
    segments: set[str]
    changed: bool = False
    intervals: dict[str, int] = field(default_factory=dict)
    """``interval_seconds`` of the rows this merge adds (a stored row's is only kept for ``latest``)."""

    @classmethod
    def load(cls, index: int, existing: Mapping[str, Any] | None) -> _Part:
        if not existing:
            return cls(index, None, {}, {}, 0, 0, set())
        rows = decode_readings(existing["readings"])
        texts = {i: _row_text(i, r) for i, r in rows.items()}
        sizes = [len(t) + 1 for t in texts.values()]
        segments = {r[4] for r in rows.values()}
        return cls(index, existing, rows, texts, sum(sizes), max(sizes, default=0), segments)

    def encoded(self) -> str:
        """The rows as stored: ``encode_readings(self.rows)``, from the rendered rows."""
        return _join_rows(self.texts)

    def fits(self, size: int, segment: str) -> bool:
        segments = len(self.segments) + (segment not in self.segments)
        worst = self.row_bytes + size + max(self.largest_row, size) + segments * SEGMENT_WORST_BYTES
        return not self.rows or worst + ITEM_OVERHEAD_BYTES <= PART_BUDGET_BYTES

    def add(self, instant: str, row: list[Any], text: str, interval: int) -> None:
        size = len(text) + 1
        self.rows[instant] = row
        self.intervals[instant] = interval
        self.texts[instant] = text
        self.row_bytes += size
        self.largest_row = max(self.largest_row, size)
        self.segments.add(row[4])
        self.changed = True


def merge_window(
    parts: Sequence[Mapping[str, Any] | None],
    contributions: Sequence[Contribution],
    *,
    window: WindowId,
    window_seconds: int,
    ttl_days: int,
) -> WindowMerge:
    """Add a window's contributions, in delivery order, to its stored parts (``parts[0]`` the head, or
    ``[None]`` for a new window). Deterministic: the same parts and contributions give the same items."""
    head = parts[0]
    if head is None and len(contributions) == 1:  # a new window's first reading: most of a small batch
        return _first_reading(contributions[0], window, window_seconds, ttl_days)
    loaded = [_Part.load(i, p) for i, p in enumerate(parts)]
    where = {instant: part for part in loaded for instant in part.rows}
    marks: dict[str, str] = json.loads(head["hwm"]) if head and "hwm" in head else {}
    duplicate_count = int(head.get("duplicates", 0)) if head else 0
    merge = WindowMerge()
    for sequence_number, shard, reading in contributions:
        instant = reading.key
        stored = where.get(instant)
        mark = marks.get(shard)
        seen = mark is not None and _at_or_below(sequence_number, mark)
        if stored is None:
            row = _row(reading, sequence_number)
            text = _row_text(instant, row)
            last = loaded[-1]
            if not last.fits(len(text) + 1, reading.segment_id):
                last = _Part.load(len(loaded), None)
                loaded.append(last)
            last.add(instant, row, text, reading.interval_seconds)
            where[instant] = last
            merge.new.append(sequence_number)
        elif seen or stored.rows[instant][5] == sequence_number:
            merge.redelivered.append(sequence_number)
        else:
            duplicate_count += 1
            merge.duplicates.append(sequence_number)
        if not seen:
            marks[shard] = sequence_number
    if not merge.new and not merge.duplicates:
        return merge
    start_ns = window_start_ns(contributions[0].reading.instant_ns, window_seconds)
    expires = start_ns // NS_PER_SECOND + window_seconds + ttl_days * 86400
    loaded[0].changed = True  # the head carries the marks, the counts and the number of parts
    for part in loaded:
        if not part.changed:
            continue
        item, sums = _part_item(window, part, expires)
        merge.sums.extend(sums.items())
        if part.index == 0:
            item["parts"] = len(loaded)
            item["hwm"] = _encode_marks(marks)
            item["duplicates"] = duplicate_count
        (merge.items if part.existing or part.index == 0 else merge.opened).append(item)
    return merge


def _row(reading: Reading, sequence_number: str) -> list[Any]:
    """A reading as a stored row: ``[vehicles, speed, occupancy, limit, segment, first sequence number]``."""
    return [
        reading.vehicle_count,
        reading.average_speed_kmh,
        reading.occupancy_percent,
        reading.speed_limit_kmh,
        reading.segment_id,
        sequence_number,
    ]


def _first_reading(contribution: Contribution, window: WindowId, window_seconds: int, ttl_days: int) -> WindowMerge:
    """``merge_window([None], [contribution], ...)`` without the bookkeeping one reading does not need
    (a test compares both)."""
    sequence_number, shard, reading = contribution
    instant = reading.key
    row = _row(reading, sequence_number)
    sums, latest = summarize({instant: row})
    start_s = window_start_ns(reading.instant_ns, window_seconds) // NS_PER_SECOND
    item = {
        "sensor_id": window[0],
        "window_part": part_key(window, 0)[1],
        "window_start": window[1],
        "part": 0,
        "readings": _join_rows({instant: _row_text(instant, row)}),
        "segments": encode_sums(sums),
        "latest": latest,
        LATEST_INTERVAL: reading.interval_seconds,
        "version": 1,
        "expires_at": start_s + window_seconds + ttl_days * 86400,
        "parts": 1,
        "hwm": _encode_marks({shard: sequence_number}),
        "duplicates": 0,
    }
    return WindowMerge(items=[item], new=[sequence_number], sums=list(sums.items()))


def _encode_marks(marks: Mapping[str, str]) -> str:
    """``json.dumps(marks, sort_keys=True, separators=(",", ":"))`` for ``{shard id: sequence number}``."""
    return "{" + ",".join([f"{_string(k)}:{_string(v)}" for k, v in sorted(marks.items())]) + "}"


def _at_or_below(sequence_number: str, mark: str) -> bool:
    """Whether a Kinesis sequence number (a decimal string) is at or below a shard's mark."""
    return (len(sequence_number), sequence_number) <= (len(mark), mark)


def _part_item(window: WindowId, part: _Part, expires: int) -> tuple[dict[str, Any], dict[str, Sums]]:
    sums, latest = summarize(part.rows)
    existing = part.existing
    key = part_key(window, part.index)
    interval = part.intervals.get(latest["timestamp"])
    if interval is None:  # the newest row was stored before: so was its interval (60 before it was kept)
        interval = int((existing or {}).get(LATEST_INTERVAL, DEFAULT_INTERVAL_SECONDS))
    return {
        "sensor_id": key[0],
        "window_part": key[1],
        "window_start": window[1],
        "part": part.index,
        "readings": part.encoded(),
        "segments": encode_sums(sums),
        "latest": latest,
        LATEST_INTERVAL: interval,
        "version": int(existing["version"]) + 1 if existing and "version" in existing else 1,
        "expires_at": max(expires, int(existing["expires_at"]) if existing and "expires_at" in existing else 0),
    }, sums


def summarize(readings: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Sums], dict[str, Any]]:
    """A part's exact sums per segment and its newest reading, in one pass over ``{instant: row}``.

    The sums equal ``total(Sums.of(Measurement(*row[:4])) ...)`` over each segment's rows (a test
    checks); the newest reading is the largest key (fixed-width UTC instants sort as time).
    """
    if len(readings) == 1:  # most parts a batch writes hold one new reading: no loop, no context switch
        ((newest, row),) = readings.items()
        count, speed = row[0], as_decimal(row[1])
        plus = EXACT_CONTEXT.plus
        only = Sums(1, count, EXACT_CONTEXT.multiply(count, speed), plus(as_decimal(row[2])), plus(as_decimal(row[3])))
        return {row[4]: only}, _latest(newest, row)
    acc: dict[str, list[Any]] = {}
    newest = ""
    with localcontext(EXACT_CONTEXT):
        for instant, row in readings.items():
            count, speed, occupancy, limit, segment = (
                row[0],
                as_decimal(row[1]),
                as_decimal(row[2]),
                as_decimal(row[3]),
                row[4],
            )
            a = acc.get(segment)
            if a is None:  # unary plus applies the context: no stored sum has more than its 10,000 digits
                acc[segment] = [1, count, count * speed, +occupancy, +limit]
            else:
                a[0] += 1
                a[1] += count
                a[2] += count * speed
                a[3] += occupancy
                if limit < a[4]:  # a branch is cheaper than min() in this hot loop
                    a[4] = +limit
            if instant > newest:  # noqa: PLR1730
                newest = instant
    return {segment: Sums(*a) for segment, a in acc.items()}, _latest(newest, readings[newest])


def _latest(newest: str, row: Sequence[Any]) -> dict[str, Any]:
    """The newest reading of a part, as stored in its ``latest`` map (decimals as text)."""
    speed, occupancy, limit = as_decimal(row[1]), as_decimal(row[2]), as_decimal(row[3])
    return {
        "timestamp": newest,
        "segment_id": row[4],
        "vehicle_count": row[0],
        "average_speed_kmh": exact_text(speed),
        "occupancy_percent": exact_text(occupancy),
        "speed_limit_kmh": exact_text(limit),
        "congestion_level": level_of_sums(
            row[0], speed_sum=speed, speed_weight=1, occupancy_sum=occupancy, occupancy_count=1, limit=limit
        ),
        "sequence_number": row[5],
    }
