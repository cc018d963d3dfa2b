"""The processor's pure logic: classify records, and merge readings into stored state idempotently.

Items are plain dicts in boto3's "resource" shape (numbers as ``Decimal``); the store serializes them.

**Window items.** One sensor's distinct readings in one aggregation window live in one or more *part*
items keyed ``(sensor_id, "<window start>#<part>")`` (part ``000``, ``001``, ...). A reading is
identified by its sensor and UTC instant only (contract version 2): a copy with another segment or
other values is a duplicate of the copy stored first. A part keeps only what identity and the partials
need (issue 20: values live in the lake, and the folder's aggregates hold the sums): its readings as
fixed-width binary *rows* (``rows``: the offset from the window's start in nanoseconds and a digest of the
sequence number of the record that added the reading, :data:`ROW_BYTES` each), the running exact sums of
those readings *per segment* (``segments``, JSON text, see ``contract.encode_sums``), the newest of them
whole (``latest``) and a ``version`` that grows with every write of the item. A window of a sensor
reading every 20 s is one item of ~700 bytes: one write unit. A part written before the compact rows
(its readings as JSON in ``readings``) is read as such and rewritten compact.

**Bounded items.** DynamoDB refuses items over 400 KB. New readings go to the window's last part; a part
whose worst-case size (its rows, the largest reading its ``latest`` can hold, :data:`SEGMENT_WORST_BYTES`
per segment for dense sums of up to 10,000 digits, and what rows with wide literals add to them, kept as
``sparse``: :func:`sparse_bytes`)
would pass :data:`PART_BUDGET_BYTES` is closed and the next part opened, so
no window length, interval or number of readings makes an item too large. The head part (``000``)
records how many parts there are (``parts``); a window with more than one part costs one more
BatchGetItem round, only for that window.

**Redelivery and duplicates, exactly.** A record is one of three things to its window: the first copy
of its reading (its row is absent: it stores it, and owns the row); a redelivery (the row's owner is this
record, or the record's digest is among the parts' ``dups``: it changes nothing); or a duplicate, counted
once: its digest goes into the window's last part with the count (``duplicates``, per part; the window's
are their sum), in the same item write. Nothing depends on the order records arrive in: a Lambda retry, a
retry after a batch wrote some parts and not others, a redrive of records given up on hours later (below
every sequence number the window has seen), and a second redrive of them are all told apart by the digests
(issue 20; the marks used before took a redriven copy below the mark as counted). A window remembers at
most :data:`DIGEST_CAP` copies so (9 KB); a flood beyond them is counted against marks per shard in the
head (``hwm``), so one sensor republishing grows only its own window, and by a counter. A part written
before the digests keeps its ``hwm`` marks, and a record at or below them is taken as counted, as it was.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, Inexact
from functools import lru_cache
from hashlib import blake2b
from typing import Any, NamedTuple

from lambdas.common.contract import (
    DEFAULT_INTERVAL_SECONDS,
    EXACT_CONTEXT,
    GAP,
    NS_PER_SECOND,
    Measurement,
    Reading,
    Rejection,
    Sums,
    as_decimal,
    decode_sums,
    encode_sums,
    format_instant,
    level_of_sums,
    parse_reading,
    stored_instant_ns,
    sums_member,
    total,
    window_start_ns,
)
from lambdas.common.partials import Partial, at_or_below, sequence_key
from lambdas.common.silence import LATEST_INTERVAL

PART_BUDGET_BYTES = 350_000
"""Largest worst-case size of a part item (DynamoDB's limit is 400 KB, names and overhead included)."""
SEGMENT_WORST_BYTES = 41_000
"""Worst-case size of one segment's sums in a part of plain rows: four numbers of at most 10,000 digits
(their sums are dense: ``contract.DENSE_DIGITS``), an exponent each, and the segment's name."""
ITEM_OVERHEAD_BYTES = 4_000
"""Keys, marks, counters and attribute names of a part item, with room to spare."""
PLAIN_ROW_CHARS = 9_000
"""A row shorter than this without an ``E-`` has every literal in plain notation with fewer than 9,000
places after the point: its segment's sums stay dense (``contract.DENSE_DIGITS``), within
:data:`SEGMENT_WORST_BYTES`."""


def sparse_bytes(text: str) -> int:
    """What a stored row can add to its segment's sums beyond :data:`SEGMENT_WORST_BYTES`: nothing for a
    plain row (:data:`PLAIN_ROW_CHARS`); else its count x speed and its occupancy each as blocks of their
    own, at most the row's digits plus ``contract.GAP`` zeros and an exponent each (``contract.Sparse``)."""
    if len(text) < PLAIN_ROW_CHARS and "E-" not in text:
        return 0
    return 2 * (len(text) + GAP + 40)


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
    records: list[KinesisRecord] = []
    append = records.append
    for raw in event.get("Records", []):
        kinesis = raw["kinesis"]
        append(
            KinesisRecord(  # positional (sequence number, partition key, shard, data, arrival): cheaper
                kinesis["sequenceNumber"],
                kinesis.get("partitionKey", ""),
                str(raw.get("eventID", "")).partition(":")[0],
                _base64(kinesis["data"]),  # base64.b64decode without its wrapper (not validating, the same)
                _arrival_ns(kinesis.get("approximateArrivalTimestamp", 0)),
            )
        )
    return records


_base64 = binascii.a2b_base64


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
    """``YYYY-MM-DDTHH:MM:SSZ`` start of the reading's window (``window_start_ns``, inline)."""
    instant = reading.instant_ns
    return window_label(instant - instant % (window_seconds * NS_PER_SECOND))


@lru_cache(maxsize=1024)
def window_label(start_ns: int) -> str:
    return format_instant(start_ns)[:19] + "Z"


WindowId = tuple[str, str]  # (sensor_id, window start label)
ItemKey = tuple[str, str]  # (sensor_id, window_part)


def part_key(window: WindowId, part: int) -> ItemKey:
    """The item key of a window's part: the sensor, then ``<window start>#<part>`` (sorts by window)."""
    return window[0], f"{window[1]}#{part:03d}"


def window_of(reading: Reading, window_seconds: int) -> WindowId:
    instant = reading.instant_ns
    return reading.sensor_id, window_label(instant - instant % (window_seconds * NS_PER_SECOND))


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
    owned: list[Contribution] = field(default_factory=list)
    """Contributions whose reading is stored under their own record's sequence number (a row keeps its
    first one): added now, or by an earlier delivery of the same record. Their sums are what the batch
    sends as partials (:func:`partials`)."""


_READINGS_DECODER = json.JSONDecoder(parse_float=Decimal)
_string = json.encoder.encode_basestring_ascii

OFFSET_BYTES = 6
"""A row's offset from its window's start, in nanoseconds, big-endian: windows are at most an hour
(``aggregation_window_seconds``), 3.6e12 ns < 2**48."""
OWNER_BYTES = 9
"""A row's owner: a BLAKE2b digest of the sequence number of the record that added it (two records of
one sensor and instant share a digest with probability 2**-72; nobody chooses a sequence number)."""
ROW_BYTES = OFFSET_BYTES + OWNER_BYTES


def owner_digest(sequence_number: str) -> bytes:
    return blake2b(sequence_number.encode("ascii"), digest_size=OWNER_BYTES).digest()


def encode_rows(rows: Mapping[int, bytes]) -> bytes:
    """``{offset: owner digest}`` as the stored ``rows`` attribute: fixed-width rows sorted by offset."""
    return b"".join([offset.to_bytes(OFFSET_BYTES, "big") + rows[offset] for offset in sorted(rows)])


def decode_rows(blob: Any) -> dict[int, bytes]:
    """The inverse of :func:`encode_rows` (``blob``: bytes, or boto3's ``Binary``)."""
    data = bytes(blob)
    return {
        int.from_bytes(data[i : i + OFFSET_BYTES], "big"): data[i + OFFSET_BYTES : i + ROW_BYTES]
        for i in range(0, len(data), ROW_BYTES)
    }


DIGEST_CAP = 1_000
"""Copies a window remembers by their record's digest (9 KB at most). A window past it is *flooded* (one
sensor republishing a reading a thousand times, which only a stolen certificate does): its further copies
are counted in the head against a mark per shard (``hwm``, the last record counted so), and a record at or
below its shard's mark is taken as counted. Exact for every Lambda retry; a redrive of a copy that was never
counted, into a flooded window, is taken as counted. So one sensor's copies cost its own window 9 KB and
a counter, never parts that every batch of its shard would read (issue 20 review)."""


def encode_dups(dups: set[bytes]) -> bytes:
    """The digests of the records a part counted as duplicates (``dups``), sorted, :data:`OWNER_BYTES` each."""
    return b"".join(sorted(dups))


def decode_dups(blob: Any) -> set[bytes]:
    data = bytes(blob)
    return {data[i : i + OWNER_BYTES] for i in range(0, len(data), OWNER_BYTES)}


def stored_instants(item: Mapping[str, Any]) -> list[str]:
    """The instants a window part holds, as ``format_instant`` writes them (for tools and tests); a part
    written before the compact rows keeps them in ``readings``."""
    if "rows" not in item:
        return sorted(decode_readings(item["readings"])) if "readings" in item else []
    start = stored_instant_ns(str(item["window_start"]))
    return [format_instant(start + offset) for offset in sorted(decode_rows(item["rows"]))]


def _row_text(instant: str, row: Sequence[Any]) -> str:
    """One reading as text: ``"instant":[vehicles,speed,occupancy,limit,"segment","sequence"]``: no longer
    stored, but what its size says of the part (the newest reading is kept whole in ``latest``; a wide
    literal widens the segment's sums: :func:`sparse_bytes`)."""
    # !s: str() is a third of format()'s cost for a Decimal, and the same text
    return f"{_string(instant)}:[{row[0]!s},{row[1]!s},{row[2]!s},{row[3]!s},{_string(row[4])},{_string(row[5])}]"


def decode_readings(text: str) -> dict[str, list[Any]]:
    """The ``readings`` attribute of a part written before the compact rows (``{instant: row}``)."""
    decoded: dict[str, list[Any]] = _READINGS_DECODER.decode(text)
    return decoded


def _latest_bytes(latest: Mapping[str, Any] | None) -> int:
    """What a stored ``latest`` map takes (its names and values, as text): at most a reading's text and
    the names, which :data:`ITEM_OVERHEAD_BYTES` covers."""
    return sum(len(str(value)) for value in latest.values()) if latest else 0


@dataclass(slots=True)
class _Part:
    """A part being merged into: its rows, its sums and what its worst-case size adds up to."""

    index: int
    existing: Mapping[str, Any] | None
    rows: dict[int, bytes]
    """Offset in the window -> owner digest (:func:`owner_digest`)."""
    sums: dict[str, Sums]
    """The stored exact sums per segment."""
    segments: set[str]
    largest: int
    """The largest reading text the part's ``latest`` can hold (the stored one, or one this merge adds)."""
    sparse: int
    """What the part's rows can add to its sums beyond :data:`SEGMENT_WORST_BYTES` (:func:`sparse_bytes`,
    kept as ``sparse``: the values are not stored)."""
    dups: set[bytes] = field(default_factory=set)
    """Digests of the records this part counted as duplicates (``dups``)."""
    duplicates: int = 0
    """The duplicates this part counted: ``len(dups)``, plus those a part written before the digests counted."""
    added: dict[str, list[Any]] = field(default_factory=dict)
    """Instant -> row of the readings this merge adds (their values, for the sums and ``latest``)."""
    intervals: dict[str, int] = field(default_factory=dict)
    """``interval_seconds`` of the rows this merge adds (a stored row's is only kept for ``latest``)."""
    changed: bool = False

    @classmethod
    def load(cls, index: int, existing: Mapping[str, Any] | None, start_ns: int) -> _Part:
        if not existing:
            return cls(index, None, {}, {}, set(), 0, 0)
        sums = decode_sums(existing["segments"]) if "segments" in existing else {}
        largest = _latest_bytes(existing.get("latest"))
        if "rows" in existing:
            rows = decode_rows(existing["rows"])
            sparse = int(existing.get("sparse", 0))
        else:  # written before the compact rows: its readings as JSON, converted on this write
            old = decode_readings(existing.get("readings", "{}"))
            rows = {stored_instant_ns(instant) - start_ns: owner_digest(row[5]) for instant, row in old.items()}
            sparse = sum(sparse_bytes(_row_text(instant, row)) for instant, row in old.items())
        dups = decode_dups(existing["dups"]) if "dups" in existing else set()
        return cls(index, existing, rows, sums, set(sums), largest, sparse, dups, int(existing.get("duplicates", 0)))

    def _worst(self, rows: int, dups: int, size: int, segments: int, wide: int) -> int:
        """The part's worst-case size with ``rows`` rows and ``dups`` digests (see the module docstring)."""
        worst = ROW_BYTES * rows + OWNER_BYTES * dups + max(self.largest, size) + segments * SEGMENT_WORST_BYTES
        return worst + self.sparse + wide + ITEM_OVERHEAD_BYTES

    def fits(self, size: int, segment: str, wide: int) -> bool:
        """Whether a new reading (its text's ``size``, its segment, its :func:`sparse_bytes`) fits."""
        if not self.rows and not self.dups:
            return True
        segments = len(self.segments) + (segment not in self.segments)
        return self._worst(len(self.rows) + 1, len(self.dups), size, segments, wide) <= PART_BUDGET_BYTES

    def fits_duplicate(self) -> bool:
        if not self.rows and not self.dups:
            return True
        return self._worst(len(self.rows), len(self.dups) + 1, 0, len(self.segments), 0) <= PART_BUDGET_BYTES

    def add_duplicate(self, record: bytes) -> None:
        self.dups.add(record)
        self.duplicates += 1
        self.changed = True

    def add(
        self, offset: int, owner: bytes, row: list[Any], *, instant: str, size: int, interval: int, wide: int
    ) -> None:
        self.rows[offset] = owner
        self.added[instant] = row
        self.intervals[instant] = interval
        self.largest = max(self.largest, size)
        self.sparse += wide
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
    if parts[0] is None:  # a new window: most windows of a batch
        fresh = _new_window(contributions, window, window_seconds, ttl_days)
        if fresh is not None:
            return fresh
    return _merge_parts(parts, contributions, window, window_seconds, ttl_days)


StoredParts = Sequence[Mapping[str, Any] | None]


def _merge_parts(
    parts: StoredParts, contributions: Sequence[Contribution], window: WindowId, window_seconds: int, ttl_days: int
) -> WindowMerge:
    """:func:`merge_window` for any stored parts: the general path."""
    head = parts[0]
    start_ns = window_start_ns(contributions[0].reading.instant_ns, window_seconds)
    loaded = [_Part.load(i, p, start_ns) for i, p in enumerate(parts)]
    where = {offset: part for part in loaded for offset in part.rows}
    counted = set().union(*(part.dups for part in loaded))
    marks: dict[str, str] = json.loads(head["hwm"]) if head and "hwm" in head else {}
    """A flooded window's marks (:data:`DIGEST_CAP`), or a part's written before the digests (taken as they
    were: a record at or below its shard's mark is counted)."""
    stored_marks = dict(marks)
    merge = WindowMerge()
    for contribution in contributions:
        sequence_number, shard, reading = contribution
        offset = reading.instant_ns - start_ns
        stored = where.get(offset)
        owner = owner_digest(sequence_number)
        if stored is None:
            instant = reading.key
            row = _row(reading, sequence_number)
            text = _row_text(instant, row)
            last = loaded[-1]
            wide = sparse_bytes(text)
            if not last.fits(len(text) + 1, reading.segment_id, wide):
                last = _Part.load(len(loaded), None, start_ns)
                loaded.append(last)
            last.add(
                offset, owner, row, instant=instant, size=len(text) + 1, interval=reading.interval_seconds, wide=wide
            )
            where[offset] = last
            merge.new.append(sequence_number)
            merge.owned.append(contribution)
        elif stored.rows[offset] == owner:  # this record stored it: a redelivery
            merge.redelivered.append(sequence_number)
            merge.owned.append(contribution)
        elif owner in counted or (shard in marks and at_or_below(sequence_number, marks[shard])):
            merge.redelivered.append(sequence_number)  # counted already
        elif len(counted) >= DIGEST_CAP:  # a flooded window: counted in the head, against its shard's mark
            loaded[0].duplicates += 1
            loaded[0].changed = True
            marks[shard] = sequence_number
            merge.duplicates.append(sequence_number)
        else:
            last = loaded[-1]
            if not last.fits_duplicate():
                last = _Part.load(len(loaded), None, start_ns)
                loaded.append(last)
            last.add_duplicate(owner)
            counted.add(owner)
            merge.duplicates.append(sequence_number)
    if not merge.new and not merge.duplicates:
        return merge
    expires = start_ns // NS_PER_SECOND + window_seconds + ttl_days * 86400
    if len(loaded) > len(parts) or marks != stored_marks:
        loaded[0].changed = True  # the head counts the parts (written before the parts it opens) and the marks
    for part in loaded:
        if not part.changed:
            continue
        item, sums = _part_item(window, part, expires)
        merge.sums.extend(sums.items())
        if part.index == 0:
            item["parts"] = len(loaded)
            if marks:
                item["hwm"] = _encode_marks(marks)
        (merge.items if part.existing or part.index == 0 else merge.opened).append(item)
    return merge


def _row(reading: Reading, sequence_number: str) -> list[Any]:
    """A reading as a row: ``[vehicles, speed, occupancy, limit, segment, sequence number]``."""
    return [
        reading.vehicle_count,
        reading.average_speed_kmh,
        reading.occupancy_percent,
        reading.speed_limit_kmh,
        reading.segment_id,
        sequence_number,
    ]


def _new_window(
    contributions: Sequence[Contribution], window: WindowId, window_seconds: int, ttl_days: int
) -> WindowMerge | None:
    """``_merge_parts([None], contributions, ...)`` for a window whose readings all fit in its head part
    (``None`` otherwise), without the parts' bookkeeping: the same items (a test compares both)."""
    if len(contributions) == 1:  # a new window's first reading: most of a small batch
        return _first_reading(contributions[0], window, window_seconds, ttl_days)
    start_ns = window_start_ns(contributions[0].reading.instant_ns, window_seconds)
    rows: dict[str, list[Any]] = {}
    offsets: dict[int, str] = {}
    """Offset -> the sequence number that added it (every row of a new window is this merge's)."""
    intervals: dict[str, int] = {}
    dups: set[bytes] = set()
    new: list[str] = []
    duplicates: list[str] = []
    redelivered: list[str] = []
    owned: list[Contribution] = []
    for contribution in contributions:
        sequence_number, _, reading = contribution
        offset = reading.instant_ns - start_ns
        first = offsets.get(offset)
        if first is None:
            offsets[offset] = sequence_number
            instant = reading.key
            # _row, inline: the reading's vehicles, speed, occupancy and limit, its segment, the sequence number
            rows[instant] = [*reading[4:8], reading[1], sequence_number]
            intervals[instant] = reading.interval_seconds
            new.append(sequence_number)
            owned.append(contribution)
        elif first == sequence_number:  # this record stored it: a redelivery
            redelivered.append(sequence_number)
            owned.append(contribution)
        else:  # a copy under another record is a duplicate, counted once
            record = owner_digest(sequence_number)
            if record in dups:
                redelivered.append(sequence_number)
            elif len(dups) >= DIGEST_CAP:
                return None  # a flood: the general path counts it against the marks
            else:
                dups.add(record)
                duplicates.append(sequence_number)
    largest = wide = 0
    for instant, row in rows.items():
        text = _row_text(instant, row)
        largest = max(largest, len(text) + 1)
        if len(text) >= PLAIN_ROW_CHARS or "E-" in text:
            wide += sparse_bytes(text)
    # the general path closes the part when its worst case passes the budget; the worst case only grows
    # with each reading, so when the whole window's fits, every step's did
    segments = len({row[4] for row in rows.values()})
    worst = ROW_BYTES * len(rows) + OWNER_BYTES * len(dups) + largest + segments * SEGMENT_WORST_BYTES
    if len(rows) + len(dups) > 1 and worst + wide + ITEM_OVERHEAD_BYTES > PART_BUDGET_BYTES:
        return None
    sums, latest = summarize(rows)
    start_s = start_ns // NS_PER_SECOND
    item = {
        "sensor_id": window[0],
        "window_part": part_key(window, 0)[1],
        "window_start": window[1],
        "part": 0,
        "rows": encode_rows({offset: owner_digest(sequence) for offset, sequence in offsets.items()}),
        "segments": encode_sums(sums),
        "latest": latest,
        LATEST_INTERVAL: intervals[latest["timestamp"]],
        "sparse": wide,
        "version": 1,
        "expires_at": max(start_s + window_seconds + ttl_days * 86400, 0),  # as _merge_parts (year 0001)
        "parts": 1,
        "dups": encode_dups(dups),
        "duplicates": len(duplicates),
    }
    return WindowMerge(
        items=[item], sums=list(sums.items()), new=new, duplicates=duplicates, redelivered=redelivered, owned=owned
    )


def _first_reading(contribution: Contribution, window: WindowId, window_seconds: int, ttl_days: int) -> WindowMerge:
    """:func:`_new_window` of one reading, with nothing to look up."""
    sequence_number, _, reading = contribution
    instant = reading.key
    row = _row(reading, sequence_number)
    count, speed, occupancy, limit = row[:4]
    only: Sums | None = None
    try:  # summarize({instant: row}) for one reading of the contract (its numbers are Decimals already)
        only = Sums(
            1, count, EXACT_CONTEXT.multiply(count, speed), EXACT_CONTEXT.plus(occupancy), EXACT_CONTEXT.plus(limit)
        )
        sums, latest = {row[4]: only}, _latest(instant, row)
    except Inexact:
        sums, latest = summarize({instant: row})
    text = _row_text(instant, row)
    wide = sparse_bytes(text)
    width = window_seconds * NS_PER_SECOND
    offset = reading.instant_ns % width
    start_s = (reading.instant_ns - offset) // NS_PER_SECOND  # window_start_ns, in whole seconds
    item = {
        "sensor_id": window[0],
        "window_part": window[1] + "#000",  # part_key(window, 0)
        "window_start": window[1],
        "part": 0,
        "rows": offset.to_bytes(OFFSET_BYTES, "big") + owner_digest(sequence_number),  # encode_rows, one row
        "segments": "{" + sums_member(row[4], only) + "}" if only is not None else encode_sums(sums),
        "latest": latest,
        LATEST_INTERVAL: reading.interval_seconds,
        "sparse": wide,
        "version": 1,
        "expires_at": max(start_s + window_seconds + ttl_days * 86400, 0),  # as _merge_parts (year 0001)
        "parts": 1,
        "dups": b"",
        "duplicates": 0,
    }
    return WindowMerge(items=[item], new=[sequence_number], sums=list(sums.items()), owned=[contribution])


def _encode_marks(marks: Mapping[str, str]) -> str:
    """``json.dumps(marks, sort_keys=True, separators=(",", ":"))`` for ``{shard id: sequence number}``."""
    return "{" + ",".join([f"{_string(k)}:{_string(v)}" for k, v in sorted(marks.items())]) + "}"


def _part_item(window: WindowId, part: _Part, expires: int) -> tuple[dict[str, Any], dict[str, Sums]]:
    """A changed part as stored: its rows, its running sums (the stored ones plus what this merge adds) and
    its newest reading (the stored ``latest`` unless this merge adds a newer one)."""
    existing = part.existing or {}
    sums = dict(part.sums)
    latest = existing.get("latest")
    interval = int(existing.get(LATEST_INTERVAL, DEFAULT_INTERVAL_SECONDS))  # 60 before it was kept
    if part.added:
        added, newest = summarize(part.added)
        for segment, more in added.items():
            sums[segment] = total([sums[segment], more]) if segment in sums else more
        if latest is None or newest["timestamp"] > latest["timestamp"]:
            latest, interval = newest, part.intervals[newest["timestamp"]]
    key = part_key(window, part.index)
    item: dict[str, Any] = {
        "sensor_id": key[0],
        "window_part": key[1],
        "window_start": window[1],
        "part": part.index,
        "rows": encode_rows(part.rows),
        "segments": encode_sums(sums),
        "sparse": part.sparse,
        "dups": encode_dups(part.dups),
        "duplicates": part.duplicates,
        "version": int(existing["version"]) + 1 if "version" in existing else 1,
        "expires_at": max(expires, int(existing["expires_at"]) if "expires_at" in existing else 0),
    }
    if latest is not None:  # a part opened for duplicates alone has no reading
        item["latest"], item[LATEST_INTERVAL] = latest, interval
    return item, sums


def summarize(readings: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Sums], dict[str, Any]]:
    """A part's exact sums per segment and its newest reading, in one pass over ``{instant: row}``.

    The sums equal ``total(Sums.of(Measurement(*row[:4])) ...)`` over each segment's rows (a test
    checks); the newest reading is the largest key (fixed-width UTC instants sort as time).
    """
    try:
        return _dense_summary(readings)
    except Inexact:  # a sum wider than EXACT_CONTEXT's digits: the exact (sparse) sums
        by_segment: dict[str, list[Sums]] = {}
        for row in readings.values():
            by_segment.setdefault(row[4], []).append(Sums.of(Measurement(*row[:4])))
        newest = max(readings)
        return {segment: total(sums) for segment, sums in by_segment.items()}, _latest(newest, readings[newest])


def _dense_summary(readings: Mapping[str, Sequence[Any]]) -> tuple[dict[str, Sums], dict[str, Any]]:
    """:func:`summarize` in :data:`EXACT_CONTEXT`, which raises :class:`~decimal.Inexact` rather than round."""
    if len(readings) == 1:  # most parts a batch writes hold one new reading: no loop, no context switch
        ((newest, row),) = readings.items()
        count, speed = row[0], as_decimal(row[1])
        plus = EXACT_CONTEXT.plus
        only = Sums(1, count, EXACT_CONTEXT.multiply(count, speed), plus(as_decimal(row[2])), plus(as_decimal(row[3])))
        return {row[4]: only}, _latest(newest, row)
    acc: dict[str, list[Any]] = {}
    newest = ""
    add, multiply, plus = EXACT_CONTEXT.add, EXACT_CONTEXT.multiply, EXACT_CONTEXT.plus  # no context switch
    for instant, row in readings.items():
        count, speed, occupancy, limit, segment = row[:5]
        if type(speed) is not Decimal or type(occupancy) is not Decimal or type(limit) is not Decimal:
            speed, occupancy, limit = as_decimal(speed), as_decimal(occupancy), as_decimal(limit)  # stored ints
        a = acc.get(segment)
        if a is None:  # plus applies the context (exact, or Inexact raised)
            acc[segment] = [1, count, multiply(count, speed), plus(occupancy), plus(limit)]
        else:
            a[0] += 1
            a[1] += count
            a[2] = add(a[2], multiply(count, speed))
            a[3] = add(a[3], occupancy)
            if limit < a[4]:  # a branch is cheaper than min() in this hot loop
                a[4] = plus(limit)
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
        "average_speed_kmh": str(speed),  # exact_text: decimals as text
        "occupancy_percent": str(occupancy),
        "speed_limit_kmh": str(limit),
        "congestion_level": level_of_sums(
            row[0], speed_sum=speed, speed_weight=1, occupancy_sum=occupancy, occupancy_count=1, limit=limit
        ),
        "sequence_number": row[5],
    }


def checkpoint(sequence_numbers: Sequence[str], failed: set[str]) -> str | None:
    """The batch's checkpoint: the last record before the first failed one (all of them when none failed),
    where Lambda resumes the shard after this invocation returns; ``None`` when the first record failed."""
    last = None
    for sequence_number in sequence_numbers:
        if sequence_number in failed:
            break
        last = sequence_number
    return last


def cuts_for(stored: Sequence[str], first: str, through: str) -> list[str]:
    """The shard's cuts to keep while this batch's partials are sent: every stored cut at or after the
    batch's first record (those below it are checkpointed, so sent), and the batch's checkpoint ``through``."""
    kept = {c for c in stored if sequence_key(c) >= sequence_key(first)}
    kept.add(through)
    return sorted(kept, key=sequence_key)


def partials(
    owned: Iterable[Contribution],
    *,
    shard: str,
    first: str,
    cuts: Sequence[str],
    window_seconds: int,
    ttl_days: int,
) -> list[Partial]:
    """The batch's partials: one per segment window its ``owned`` contributions (each at or below the last
    of ``cuts``, the checkpoint) touch, their exact sums split into pieces at ``cuts`` (sorted): a piece
    holds the readings of records in ``(previous cut, cut]``. Deterministic: the same stored rows and cuts
    give the same records, whichever delivery of the records computes them."""
    ordered = sorted(cuts, key=sequence_key)
    rows: dict[tuple[str, str, str], dict[str, list[Any]]] = {}
    """(window start, cut, sensor) -> {instant: row}: a sensor's instants are distinct."""
    expiry: dict[str, int] = {}
    for sequence_number, _, reading in owned:
        through = next(c for c in ordered if at_or_below(sequence_number, c))
        start_ns = window_start_ns(reading.instant_ns, window_seconds)
        start = window_label(start_ns)
        expiry[start] = start_ns // NS_PER_SECOND + window_seconds + ttl_days * 86400
        rows.setdefault((start, through, reading.sensor_id), {})[reading.key] = _row(reading, sequence_number)
    pieces: dict[tuple[str, str], dict[str, list[Sums]]] = {}
    for (start, through, _), sensor_rows in rows.items():
        for segment, sums in summarize(sensor_rows)[0].items():
            pieces.setdefault((segment, start), {}).setdefault(through, []).append(sums)
    return [
        Partial(
            segment=segment,
            window=start,
            shard=shard,
            first=first,
            expires_at=expiry[start],
            pieces=tuple((c, total(by_cut[c])) for c in ordered if c in by_cut),
        )
        for (segment, start), by_cut in sorted(pieces.items())
    ]
