"""A sample of the data lake as Firehose writes it, and the contract's view of the same rows.

The lake is Parquet files under ``readings/dt=YYYY-MM-DD/`` with exactly the Glue table's column types
(``stacks.schema.lake_columns()``); ``dt`` is the UTC delivery date, a path partition, not a column of the
files. A row is what Firehose stored: a field the sensor left out (or Firehose could not fill) is NULL.

Its contract view: a row is sent back through ``lambdas/common/contract.py`` as the JSON the sensor
would have published (NULL columns left out, a double as its shortest decimal) with an arrival time
after every instant, so that only the schema checks apply, as only they can in the lake (it holds no
thing name and no arrival time). Valid rows are then deduplicated by the contract's identity
(``sensor_id`` and :attr:`Reading.key`), keeping the copy the curated view keeps.
"""

from __future__ import annotations

import datetime
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from lambdas.common.contract import NS_PER_SECOND, Reading, Rejection, format_instant, parse_instant, parse_reading
from lambdas.processor.logic import KinesisRecord, classify, quarantine_object
from stacks.analytics import LAKE_PREFIX, PARTITION_KEY
from stacks.layout import QUARANTINE_PREFIX
from stacks.quarantine_catalog import QUARANTINE_COLUMNS
from stacks.schema import lake_columns

Row = dict[str, Any]
"""One lake row: every column of the Glue table, and ``dt``."""

_ARROW_TYPES = {"string": pa.string(), "int": pa.int32(), "double": pa.float64()}
LAKE_SCHEMA = pa.schema([pa.field(c.name, _ARROW_TYPES[c.glue_type]) for c in lake_columns()])
"""The Parquet schema Firehose converts to: the Glue columns' types (``int`` is 32-bit, ``double``)."""
COLUMNS = tuple(c.name for c in lake_columns())

NOW = datetime.datetime(2025, 6, 15, 10, 30, 0, 250_000, tzinfo=datetime.UTC)
"""The queries' "now": ``current_date`` and ``current_timestamp`` are pinned to it (see :func:`to_duckdb`)."""
NOW_NS = int(NOW.timestamp()) * NS_PER_SECOND + NOW.microsecond * 1000
NOW_SECOND_NS = NOW_NS - NOW_NS % NS_PER_SECOND
"""``date_trunc('second', now)``: the named queries' 24-hour window starts 24 hours before it."""
TODAY = NOW.date()
ARRIVAL_AFTER_EVERY_INSTANT = 2**100
"""An arrival time no timestamp can follow: the contract's time rules never apply (the lake has none)."""


# --- the lake on disk and in DuckDB -------------------------------------------------------------------


def write_lake(root: Path, rows: Iterable[Row], files_per_partition: int = 2) -> Path:
    """Write ``rows`` as Parquet under ``root/readings/dt=.../`` (rows of a day spread over several files,
    as Firehose delivers a day in many buffers). Returns ``root``."""
    by_day: dict[str, list[Row]] = {}
    for row in rows:
        by_day.setdefault(row[PARTITION_KEY], []).append(row)
    for day, day_rows in by_day.items():
        folder = root / f"{LAKE_PREFIX}{PARTITION_KEY}={day}"
        folder.mkdir(parents=True, exist_ok=True)
        for part in range(files_per_partition):
            chunk = day_rows[part::files_per_partition]
            if chunk:
                table = pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in chunk], schema=LAKE_SCHEMA)
                pq.write_table(table, folder / f"part-{part:05d}.parquet", compression="snappy")
    return root


def corrupt_data_pages(path: Path) -> None:
    """Overwrite a Parquet file's column chunks with garbage, keeping its footer: DuckDB still reads its
    schema (a view binds to the first file's), but any scan of its rows fails."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    chunks = [group.column(i) for i in range(group.num_columns)]
    end = max((c.dictionary_page_offset or c.data_page_offset) + c.total_compressed_size for c in chunks)
    data = bytearray(path.read_bytes())
    data[4:end] = b"\xab" * (end - 4)
    path.write_bytes(bytes(data))


def lake_connection(root: Path, table: str, quarantine: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB session where ``table`` (``database.table``, as the named queries name it) is a view over
    the Parquet files, ``dt`` read from the path as the Glue partition key is: a string.

    With ``quarantine`` (``database.table``), that is a view over the NDJSON objects under
    ``root/rejected/`` (:func:`write_quarantine`), every column a string, as the Glue table declares them,
    read from every folder under ``dt=`` as Athena reads a partition (with its subfolders)."""
    database = table.split(".", maxsplit=1)[0]
    con = duckdb.connect()
    # Athena's session time zone is UTC; another one here shows the queries do not depend on it.
    con.execute("SET TimeZone = 'Pacific/Auckland'")
    con.execute(f"CREATE SCHEMA {database}")
    files = f"{root}/{LAKE_PREFIX}{PARTITION_KEY}=*/*.parquet"
    con.execute(
        f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{files}', hive_partitioning = true,"
        f" hive_types = {{'{PARTITION_KEY}': VARCHAR}})"
    )
    if quarantine is not None:
        if any((root / QUARANTINE_PREFIX).glob("**/*.ndjson")):
            columns = ", ".join(f"'{c.name}': 'VARCHAR'" for c in QUARANTINE_COLUMNS)
            source = (
                f"read_json('{root}/{QUARANTINE_PREFIX}**/*.ndjson', format = 'newline_delimited',"
                f" columns = {{{columns}}}, hive_partitioning = true, hive_types = {{'{PARTITION_KEY}': VARCHAR}})"
            )
            con.execute(f"CREATE VIEW {quarantine} AS SELECT * FROM {source}")
        else:  # DuckDB cannot read an empty folder; Athena reads no rows
            nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c.name}" for c in QUARANTINE_COLUMNS)
            con.execute(f"CREATE VIEW {quarantine} AS SELECT {nulls}, CAST(NULL AS VARCHAR) AS {PARTITION_KEY} LIMIT 0")
    return con


def to_duckdb(trino_sql: str, now: datetime.datetime = NOW) -> str:
    """Athena's (Trino) text as DuckDB's, with ``current_date`` and ``current_timestamp`` pinned to ``now``.

    Pinning the clock in the query rather than building the sample around the wall clock keeps every
    window edge where the sample puts it, on any day and at any hour the test runs (a sample relative to
    the real time would move past midnight between writing the lake and querying it). Athena evaluates
    both in UTC, so ``now`` is a UTC instant and ``current_date`` its UTC date.
    """
    tree = sqlglot.parse_one(trino_sql, read="trino")
    utc = now.astimezone(datetime.UTC)

    def pin(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.CurrentTimestamp):
            return exp.cast(exp.Literal.string(utc.isoformat(sep=" ")), exp.DataType.build("timestamptz"))
        if isinstance(node, exp.CurrentDate):
            return exp.cast(exp.Literal.string(utc.date().isoformat()), exp.DataType.build("date"))
        return node

    pinned = tree.transform(pin)
    clocks = (exp.CurrentTime, exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentDatetime)
    assert not list(pinned.find_all(*clocks)), "a clock the test does not pin"
    return pinned.sql(dialect="duckdb")


# --- the contract's view of the rows ---------------------------------------------------------------------


def payload(row: Row) -> bytes:
    """The JSON the sensor would have published for this lake row: NULL columns are absent fields, a
    double is its shortest decimal (NaN and Infinity come out as the non-JSON they are)."""
    return json.dumps({c: row[c] for c in COLUMNS if row[c] is not None}).encode()


def contract_reading(row: Row) -> Reading | None:
    """The contract's reading of a row, or ``None`` when the contract rejects it."""
    parsed = parse_reading(payload(row), ARRIVAL_AFTER_EVERY_INSTANT)
    return parsed if isinstance(parsed, Reading) else None


def copy_order(row: Row) -> tuple[Any, ...]:
    """The order in which the curated view prefers copies of one reading: earliest ``dt``, then every
    column but ``sensor_id`` in the lake's order, absent (NULL) first."""
    return (row[PARTITION_KEY], *((row[c] is not None, row[c]) for c in COLUMNS if c != "sensor_id"))


def distinct_readings(rows: Iterable[Row], since: datetime.date) -> list[tuple[Row, Reading]]:
    """The contract's valid readings among the rows delivered on ``since`` or later, each reading once."""
    kept: dict[tuple[str, str], tuple[Row, Reading]] = {}
    for row in rows:
        if row[PARTITION_KEY] < since.isoformat():
            continue
        reading = contract_reading(row)
        if reading is None:
            continue
        identity = (reading.sensor_id, reading.key)
        if identity not in kept or copy_order(row) < copy_order(kept[identity][0]):
            kept[identity] = (row, reading)
    return list(kept.values())


# --- the sample ------------------------------------------------------------------------------------------------


def spell(
    instant_ns: int, offset_minutes: int | None, digits: int, *, lower: bool = False, negative_zero: bool = False
) -> str:
    """A contract timestamp of ``instant_ns``: with the offset (``None`` for ``Z``; ``0`` is ``+00:00``, or
    ``-00:00`` with ``negative_zero``), ``digits`` fraction digits (which must hold the instant's
    nanoseconds), 'T' and 'Z' in lower case with ``lower``."""
    local = format_instant(instant_ns + (offset_minutes or 0) * 60 * NS_PER_SECOND)
    fraction = local[20:29]
    assert fraction[digits:].strip("0") == "", f"{digits} digits cannot hold {fraction}"
    text = local[:19] + (f".{fraction[:digits]}" if digits else "")
    if offset_minutes is None:
        text += "Z"
    else:
        sign = "-" if offset_minutes < 0 or negative_zero else "+"
        text += f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    return text.replace("T", "t").replace("Z", "z") if lower else text


def day_of(instant_ns: int) -> str:
    return format_instant(instant_ns)[:10]


def delivered(instant_ns: int, delay_seconds: int) -> str:
    """The ``dt`` Firehose writes a reading under: the UTC date it was delivered, never after today."""
    return min(day_of(instant_ns + delay_seconds * NS_PER_SECOND), TODAY.isoformat())


def reading_row(
    sensor_id: str,
    segment_id: str,
    instant_ns: int,
    dt: str,
    *,
    offset: int | None = None,
    digits: int = 0,
    lower: bool = False,
    negative_zero: bool = False,
    **values: Any,
) -> Row:
    """A valid lake row, its timestamp spelled by :func:`spell` (override any column with ``values``)."""
    row: Row = {
        "sensor_id": sensor_id,
        "segment_id": segment_id,
        "timestamp": spell(instant_ns, offset, digits, lower=lower, negative_zero=negative_zero),
        "vehicle_count": 12,
        "average_speed_kmh": 48.5,
        "occupancy_percent": 21.0,
        "speed_limit_kmh": None,
        "interval_seconds": None,
        PARTITION_KEY: dt,
    }
    row.update(values)
    return row


@dataclass(frozen=True)
class BadKind:
    """One way a row the processor rejects still lands in the lake."""

    name: str
    change: Callable[[Row], Row]


def _set(**values: Any) -> Callable[[Row], Row]:
    return lambda row: {**row, **values}


_TIMESTAMPS = {
    "naive timestamp": "2025-06-15T10:00:00",
    "space for T": "2025-06-15 10:00:00Z",
    "leap second": "2025-06-15T09:59:60Z",
    "ten fraction digits": "2025-06-15T10:00:00.1234567890Z",
    "29 February of a common year": "2025-02-29T10:00:00Z",
    "31 April": "2025-04-31T10:00:00Z",
    "month 13": "2025-13-15T10:00:00Z",
    "day 00": "2025-06-00T10:00:00Z",
    "year 0000": "0000-06-15T10:00:00Z",
    "hour 24": "2025-06-15T24:00:00Z",
    "minute 60": "2025-06-15T10:60:00Z",
    "offset hour 24": "2025-06-15T10:00:00+24:00",
    "offset minute 60": "2025-06-15T10:00:00+01:60",
    "offset without colon": "2025-06-15T10:00:00+0100",
    "no seconds": "2025-06-15T10:00Z",
    "trailing newline": "2025-06-15T10:00:00Z\n",
    "leading space": " 2025-06-15T10:00:00Z",
    "fullwidth digits": "\uff12\uff10\uff12\uff15-06-15T10:00:00Z",
    "not a time": "yesterday at ten",
    "empty timestamp": "",
    "missing timestamp": None,
}
_IDS = {
    "empty": "",
    "leading dash": "-abc",
    "65 characters": "s" * 65,
    "space": "a b",
    "slash": "a/b",
    "non-ASCII": "s\u00e9nsor",
    "trailing newline": "abc\n",
    "missing": None,
}
_NUMBERS = {
    "vehicle_count": (-1, 10_001, None),
    "average_speed_kmh": (-0.01, 300.01, math.nan, math.inf, None),
    "occupancy_percent": (-0.5, 100.5, math.inf, None),
    "speed_limit_kmh": (4.99, 200.5, 0.0, math.nan),
    "interval_seconds": (0, 3601, -60),
}

BAD_KINDS: tuple[BadKind, ...] = (
    *(BadKind(f"timestamp: {name}", _set(timestamp=value)) for name, value in _TIMESTAMPS.items()),
    *(BadKind(f"{column}: {name}", _set(**{column: value})) for column in ("sensor_id", "segment_id")
      for name, value in _IDS.items()),
    *(BadKind(f"{column}: {value}", _set(**{column: value})) for column, values in _NUMBERS.items()
      for value in values),
)  # fmt: skip
"""Rows the contract rejects (``schema_violation``; ``malformed_json`` for NaN and Infinity, which no
valid JSON holds but a Parquet double can) that still reach the lake through Firehose's conversion."""

SEGMENTS = tuple(f"seg-{i:02d}" for i in range(24))
SENSORS = {f"sensor-{i:03d}": SEGMENTS[i % len(SEGMENTS)] for i in range(48)}
_OFFSETS = (None, None, None, 0, 60, 120, -300, -330, 345, 840, -720)
_LIMITS = (None, None, 30.0, 50.0, 80.0, 110.0, 130.0)


def _instant(rng: random.Random, before_ns: int, span_seconds: int) -> tuple[int, int]:
    """A random instant in the ``span_seconds`` before ``before_ns``, at a random precision; returns it
    and the fraction digits it needs."""
    digits = rng.choice((0, 0, 3, 6, 9))
    instant = before_ns - rng.randrange(span_seconds * NS_PER_SECOND)
    return instant - instant % 10 ** (9 - digits), digits


def _random_reading(rng: random.Random, sensor: str, instant: int, digits: int) -> Row:
    late = rng.random() < 0.05
    delay = rng.randrange(86_400, 3 * 86_400) if late else rng.randrange(900)
    return reading_row(
        sensor, SENSORS[sensor], instant, delivered(instant, delay),
        offset=rng.choice(_OFFSETS), digits=rng.choice([d for d in (0, 3, 6, 9) if d >= digits]),
        vehicle_count=rng.choice((0, rng.randrange(1, 80), rng.randrange(1, 400))),
        average_speed_kmh=round(rng.uniform(3, 140), rng.choice((0, 1, 2, 3))),
        occupancy_percent=round(rng.uniform(0, 100), rng.choice((0, 1, 2))),
        speed_limit_kmh=rng.choice(_LIMITS),
        interval_seconds=rng.choice((None, 60, 300)),
    )  # fmt: skip


def _copy(rng: random.Random, row: Row) -> Row:
    """A duplicate of a row: the same reading (sensor and instant) spelled another way, delivered the
    same day or republished later; now and then with other values (the copy is a duplicate still)."""
    reading = contract_reading(row)
    assert reading is not None
    copy = {
        **row,
        "timestamp": spell(reading.instant_ns, rng.choice(_OFFSETS), 9, lower=rng.random() < 0.3),
        PARTITION_KEY: min(
            (
                datetime.date.fromisoformat(row[PARTITION_KEY]) + datetime.timedelta(days=rng.choice((0, 0, 1, 3)))
            ).isoformat(),
            TODAY.isoformat(),
        ),
    }
    if rng.random() < 0.3:
        copy.update(segment_id=rng.choice(SEGMENTS), vehicle_count=rng.randrange(1, 50), speed_limit_kmh=None)
    return copy


def edge_rows() -> list[Row]:
    """Valid rows at the edges: the 24-hour bound (``current_timestamp`` truncated to the second, minus
    24 h) to the nanosecond, the ranges' bounds, instants the lake cannot judge (far past, future), a
    leap day, and a segment whose readings saw no vehicles."""
    bound = NOW_SECOND_NS - 86_400 * NS_PER_SECOND
    dt, today = day_of(bound), TODAY.isoformat()
    return [
        # slow for their limit: the segment is among the worst 20 exactly when these readings count
        reading_row("edge-1", "seg-edge", bound, dt, offset=-330, average_speed_kmh=4.0, speed_limit_kmh=120.0),
        reading_row("edge-2", "seg-edge", bound - 1, dt, offset=60, digits=9, vehicle_count=5000),
        reading_row("edge-3", "seg-edge", bound + 1, dt, digits=9, average_speed_kmh=3.0),
        reading_row(
            "edge-4", "seg-bounds", NOW_SECOND_NS - 3600 * NS_PER_SECOND, today, vehicle_count=10_000,
            average_speed_kmh=0.0, occupancy_percent=100.0, speed_limit_kmh=5.0, interval_seconds=3600,
        ),
        reading_row(
            "edge-5", "seg-bounds", NOW_SECOND_NS - 7200 * NS_PER_SECOND, today, vehicle_count=0,
            average_speed_kmh=300.0, occupancy_percent=0.0, speed_limit_kmh=200.0, interval_seconds=1,
        ),
        reading_row("clock-reset", "seg-03", 946_684_800 * NS_PER_SECOND, today, offset=-720),
        reading_row("early-bird", "seg-04", NOW_SECOND_NS + 7200 * NS_PER_SECOND, today, offset=120),
        # 2024-02-29t23:30:00-01:00
        reading_row("leap-day", "seg-05", parse_instant("2024-03-01T00:30:00Z"), today, offset=-60, lower=True),
        reading_row("quiet-1", "seg-quiet", NOW_SECOND_NS - 600 * NS_PER_SECOND, today, vehicle_count=0),
        reading_row("quiet-2", "seg-quiet", NOW_SECOND_NS - 900 * NS_PER_SECOND, today, vehicle_count=0),
    ]  # fmt: skip


def bad_rows(rng: random.Random) -> list[Row]:
    """Every kind of rejected row, each in a recent partition (inside every query's window) and with a
    timestamp that would otherwise count, for two different sensors."""
    rows = []
    for sensor in ("sensor-000", "sensor-001"):
        for kind in BAD_KINDS:
            instant, digits = _instant(rng, NOW_NS, 6 * 3600)
            row = reading_row(sensor, SENSORS[sensor], instant, TODAY.isoformat(), digits=digits)
            rows.append(kind.change(row))
    return rows


HOUR_NS = 3600 * NS_PER_SECOND
DAY_NS = 24 * HOUR_NS
TODAY_NS = NOW_NS - NOW_NS % DAY_NS
"""Today's UTC midnight."""


def _at(text: str) -> int:
    return parse_instant(text)


def _series(
    rng: random.Random,
    sensor: str,
    segment: str,
    span: tuple[int, int],
    every_seconds: int,
    *,
    declared: int | None,
    keep: Callable[[int], bool] = lambda _: True,
    values: Callable[[int], dict[str, Any]] | None = None,
) -> list[Row]:
    """One reading every ``every_seconds`` over ``span`` (start inclusive, end exclusive, UTC ns), the
    instants ``keep`` accepts, each declaring ``interval_seconds=declared`` (``None``: left out, the
    contract's 60), delivered within minutes, with ``values(instant)`` or random counts and speeds."""
    rows = []
    for instant in range(*span, every_seconds * NS_PER_SECOND):
        if not keep(instant):
            continue
        if values:
            fields = values(instant)
        else:
            fields = {"vehicle_count": rng.randrange(0, 60), "average_speed_kmh": round(rng.uniform(20, 90), 1)}
        rows.append(
            reading_row(
                sensor,
                segment,
                instant,
                delivered(instant, rng.randrange(600)),
                offset=rng.choice(_OFFSETS),
                occupancy_percent=round(rng.uniform(0, 60), 1),
                interval_seconds=declared,
                **fields,
            )
        )
    return rows


def ledger_rows(rng: random.Random) -> list[Row]:
    """Sensors reading at their declared interval around the ledger's 24 hours (10:00 yesterday to 10:00
    today): one complete, one with three silent hours and a half-empty one, one switching from 300 s to
    60 s with a silent hour between, one silent since before the 24 hours, one joining within them."""
    yesterday, two_days_ago = TODAY_NS - DAY_NS, TODAY_NS - 2 * DAY_NS
    gap = (_at("2025-06-14T13:00:00Z"), _at("2025-06-14T16:00:00Z"))
    half = (_at("2025-06-14T20:00:00Z"), _at("2025-06-14T21:00:00Z"))
    switch = _at("2025-06-14T20:00:00Z")

    def gappy(instant: int) -> bool:
        if gap[0] <= instant < gap[1]:
            return False
        return not (half[0] <= instant < half[1] and instant // NS_PER_SECOND // 60 % 2)

    return [
        *_series(rng, "ledger-steady", "seg-ledger-1", (two_days_ago, NOW_NS), 300, declared=300),
        *_series(
            rng, "ledger-gappy", "seg-ledger-1", (yesterday + 7 * NS_PER_SECOND, NOW_NS), 60, declared=None, keep=gappy
        ),
        *_series(rng, "ledger-switch", "seg-ledger-2", (yesterday, switch), 300, declared=300),
        *_series(rng, "ledger-switch", "seg-ledger-2", (switch + HOUR_NS, NOW_NS), 60, declared=60),
        *_series(rng, "ledger-silent", "seg-ledger-2", (two_days_ago, _at("2025-06-14T06:00:00Z")), 120, declared=120),
        *_series(rng, "ledger-joins", "seg-ledger-2", (_at("2025-06-14T18:30:00Z"), NOW_NS), 60, declared=60),
    ]


BASELINE_SEGMENTS = ("seg-base-1", "seg-base-2", "seg-base-3")


def baseline_rows(rng: random.Random) -> list[Row]:
    """Five weeks of three segments, a sensor each, reading every 30 minutes: traffic that follows the
    hour of the day and the weekday, quiet nights without vehicles (no speed), a missing day and missing
    hours (hours of the week with fewer samples), and today two hours far from usual (a jam: three
    times the vehicles at a fifth of the speed; an empty road)."""
    start = TODAY_NS - 35 * DAY_NS
    missing_day = (TODAY_NS - 9 * DAY_NS, TODAY_NS - 8 * DAY_NS)
    jam = _at("2025-06-15T07:00:00Z")
    empty = _at("2025-06-15T03:00:00Z")
    rows = []
    for n, segment in enumerate(BASELINE_SEGMENTS, 1):
        lost = set(rng.sample(range(35 * 24), 40))

        def keep(instant: int, n: int = n, lost: set[int] = lost) -> bool:
            if n == 2 and missing_day[0] <= instant < missing_day[1]:
                return False
            return (instant - start) // HOUR_NS not in lost

        def values(instant: int, n: int = n) -> dict[str, Any]:
            hour = instant // HOUR_NS % 24
            weekend = (instant // DAY_NS + 3) % 7 >= 5  # 1970-01-01 was a Thursday
            peak = hour in (7, 8, 16, 17) and not weekend
            volume = 0.2 if hour < 5 else (0.6 if weekend else 1.0) * (2.5 if peak else 1.0)
            vehicles = 0 if hour < 4 and rng.random() < 0.5 else round(n * 20 * volume * rng.uniform(0.8, 1.2))
            speed = round((45.0 if peak else 95.0) * rng.uniform(0.85, 1.1), 2)
            if n == 1 and jam <= instant < jam + HOUR_NS:
                vehicles, speed = vehicles * 3 + 10, round(speed / 5, 2)
            if n == 3 and empty <= instant < empty + HOUR_NS:
                vehicles = 0
            return {"vehicle_count": vehicles, "average_speed_kmh": speed, "speed_limit_kmh": 100.0}

        rows += _series(
            rng,
            f"base-{n}",
            segment,
            (start + n * 60 * NS_PER_SECOND, NOW_NS),
            1800,
            declared=1800,
            keep=keep,
            values=values,
        )
    return rows


def sample_rows(seed: int = 12) -> list[Row]:
    """The sample lake: ~2,000 valid readings of 48 sensors over 40 days (dense in the last 30 hours),
    the ledger's sensors reading at their intervals (:func:`ledger_rows`) and five weeks of three segments
    (:func:`baseline_rows`), ~15% of the first and ~5% of the others again as duplicates, the edge
    readings, every kind of bad row, and the rows Firehose archives of the quarantine sample's records
    (:func:`quarantine_lake_rows`), shuffled."""
    rng = random.Random(seed)
    rows: list[Row] = []
    for sensor in SENSORS:
        for before, span, count in ((NOW_NS, 30 * 3600, 12), (NOW_NS, 40 * 86_400, 30)):
            for _ in range(count):
                instant, digits = _instant(rng, before, span)
                rows.append(_random_reading(rng, sensor, instant, digits))
    rows += [_copy(rng, row) for row in rng.sample(rows, len(rows) * 15 // 100)]
    rows += edge_rows() + bad_rows(rng)
    dense = ledger_rows(rng) + baseline_rows(rng)
    rows += dense + [_copy(rng, row) for row in rng.sample(dense, len(dense) * 5 // 100)]
    rows += quarantine_lake_rows(quarantine_batches(seed))
    rng.shuffle(rows)
    return rows


# --- the quarantine store ---------------------------------------------------------------------------------------

MAX_AGE_NS = 86_400 * NS_PER_SECOND
"""The processor's ``max_reading_age_seconds`` in the sample (the contract's default)."""
SHARDS = ("shardId-000000000000", "shardId-000000000001")


@dataclass(frozen=True)
class Batch:
    """Records the processor read in one invocation, and when it quarantined their rejects."""

    records: tuple[KinesisRecord, ...]
    quarantined_at_ns: int


@dataclass(frozen=True)
class QuarantineObject:
    """One object the processor wrote: its key, its ``dt`` folder and the rejects it holds."""

    key: str
    dt: str
    rejects: tuple[tuple[KinesisRecord, Rejection], ...]


def _bad_payload(rng: random.Random, reason: str, thing: str, arrival_ns: int) -> bytes:
    """A payload published by ``thing`` arriving at ``arrival_ns`` that the contract rejects with ``reason``
    (or accepts, for ``"valid"``)."""
    if reason == "malformed_json":
        return rng.choice((b"{", b"not json", b"[1, 2, 3]", b"\xff\xfe\x00", b'{"sensor_id": NaN}', b"", b"42"))
    instant = {
        "future_timestamp": arrival_ns + rng.randrange(301, 6 * 3600) * NS_PER_SECOND,
        "stale_timestamp": arrival_ns - MAX_AGE_NS - rng.randrange(1, 3 * 86_400) * NS_PER_SECOND,
    }.get(reason, arrival_ns - rng.randrange(0, 120) * NS_PER_SECOND)
    sensor = rng.choice(sorted(SENSORS)) if reason == "sensor_mismatch" else thing
    row = reading_row(sensor, SENSORS.get(sensor, "seg-00"), instant, "-", offset=rng.choice(_OFFSETS), digits=3)
    if reason == "schema_violation":
        row = rng.choice(BAD_KINDS[:-3]).change(row)  # not NaN / Infinity (malformed JSON)
    return payload(row)


_QUARANTINE_PLAN = {
    # thing: (records, reasons it sends, arrivals from this many hours ago)
    "sensor-000": (30, ("malformed_json", "schema_violation", "valid"), 60),
    "sensor-001": (12, ("sensor_mismatch", "future_timestamp", "valid"), 60),
    "sensor-002": (20, ("stale_timestamp", "valid", "valid"), 30),
    "ledger-gappy": (25, ("schema_violation", "malformed_json", "future_timestamp", "stale_timestamp"), 30),
    "ledger-switch": (8, ("sensor_mismatch",), 24),
    "ledger-garbage": (15, ("malformed_json",), 20),
    "": (3, ("malformed_json",), 20),
}


BATCH_SPAN_NS = 600 * NS_PER_SECOND
"""The longest a batch of the sample spans, first to last arrival (the processor reads what arrived
since its last batch, within a batching window or a short backlog)."""


def quarantine_batches(seed: int = 12) -> list[Batch]:
    """What the processor read, in batches per shard: records of several things (each on the shard its
    name hashes to), in bursts, with every reason code and some valid records, arriving over the last 60
    hours (some in the current hour); then batches retried whole (the same object again), retried from
    their second record (their rejects in two objects) and redriven days later, a batch whose records
    arrive either side of midnight (its object under the first one's date) and one under an old date."""
    rng = random.Random(seed)
    arrivals: dict[str, list[tuple[int, str, bytes]]] = {shard: [] for shard in SHARDS}
    for thing, (count, reasons, hours) in _QUARANTINE_PLAN.items():
        shard = SHARDS[sum(thing.encode()) % len(SHARDS)]
        sent = 0
        while sent < count:
            burst = NOW_NS - rng.randrange(hours * 3600 * 1000) * 1_000_000
            for n in range(min(rng.randrange(1, 5), count - sent)):
                arrival = burst + n * rng.randrange(1, 20_000) * 1_000_000
                arrivals[shard].append((arrival, thing, _bad_payload(rng, rng.choice(reasons), thing, arrival)))
                sent += 1
    midnight = _at("2025-06-13T00:00:00Z")
    arrivals[SHARDS[0]] += [
        (midnight - 5 * NS_PER_SECOND, "sensor-003", b"{"),
        (midnight + 10 * NS_PER_SECOND, "sensor-003", b"not json either"),
        (midnight + 20 * NS_PER_SECOND, "sensor-003", _bad_payload(rng, "schema_violation", "sensor-003", midnight)),
    ]
    arrivals[SHARDS[1]].append((TODAY_NS - 6 * DAY_NS, "sensor-004", b"{"))
    batches = []
    sequence = 0
    for shard, pending in arrivals.items():
        pending.sort()
        first = 0
        while first < len(pending):
            last = first + 1
            limit = rng.randrange(1, 8)
            while (
                last < len(pending) and last - first < limit and pending[last][0] - pending[first][0] <= BATCH_SPAN_NS
            ):
                last += 1
            kinesis = []
            for arrival, thing, data in pending[first:last]:
                sequence += 1
                kinesis.append(KinesisRecord(f"49{sequence:054d}", thing, shard, data, arrival))
            batches.append(Batch(tuple(kinesis), kinesis[-1].arrival_ns + rng.randrange(1, 90) * NS_PER_SECOND))
            first = last
    retried = rng.sample([b for b in batches if len(b.records) > 1], 8)
    batches += retried[:2]
    batches += [Batch(b.records[1:], b.quarantined_at_ns + NS_PER_SECOND) for b in retried[2:6]]
    batches += [Batch(b.records, b.quarantined_at_ns + 3 * DAY_NS) for b in retried[6:]]
    return batches


def write_quarantine(root: Path, batches: Iterable[Batch]) -> list[QuarantineObject]:
    """Write what the processor writes for each batch: its rejects (``logic.classify`` with the sample's
    ``max_reading_age_seconds``) as one object from ``logic.quarantine_object``, under ``root/<key>``
    (a batch written again replaces its object, as S3 does). Returns the objects, the last write of each."""
    written: dict[str, QuarantineObject] = {}
    for batch in batches:
        rejects = classify(batch.records, MAX_AGE_NS).rejects
        if not rejects:
            continue
        key, body = quarantine_object(QUARANTINE_PREFIX, rejects, batch.quarantined_at_ns)
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        dt = key.removeprefix(f"{QUARANTINE_PREFIX}{PARTITION_KEY}=").split("/", 1)[0]
        written[key] = QuarantineObject(key, dt, tuple(rejects))
    return list(written.values())


def quarantine_lake_rows(batches: Iterable[Batch]) -> list[Row]:
    """The lake rows of the records the lake can show as valid (Firehose archives every record of the
    stream): the valid ones and those only the thing name or the arrival time rejects
    (``sensor_mismatch``, ``future_timestamp``, ``stale_timestamp``), under their arrival date."""
    rows, seen = [], set()
    for batch in batches:
        for record in batch.records:
            if record.sequence_number in seen:
                continue
            seen.add(record.sequence_number)
            if isinstance(parse_reading(record.data, ARRIVAL_AFTER_EVERY_INSTANT), Reading):
                document = json.loads(record.data)
                row = {c: document.get(c) for c in COLUMNS}
                rows.append({**row, PARTITION_KEY: delivered(record.arrival_ns, 60)})
    return rows


def rows_equal(got: Sequence[tuple[Any, ...]], want: Sequence[tuple[Any, ...]], rel: float = 1e-12) -> bool:
    """Equal row by row; floats within ``rel`` (DuckDB sums doubles, the contract exact decimals)."""
    if len(got) != len(want):
        return False
    for got_row, want_row in zip(got, want, strict=True):
        if len(got_row) != len(want_row):
            return False
        for g, w in zip(got_row, want_row, strict=True):
            close = isinstance(w, float) and isinstance(g, float) and math.isclose(g, w, rel_tol=rel)
            if not close and g != w:
                return False
    return True
