"""The Athena named queries, run for real: the synthesized query text, transpiled from Athena's dialect
(Trino) to DuckDB's with sqlglot, over a sample lake of Parquet files laid out as Firehose writes them.

The answers must equal the contract's (``lambdas/common/contract.py``) over the same rows: its valid
readings, each once, aggregated with its exact sums; no rejected row may fail a query or count. The
clock the queries read is pinned (``tests.lake_sample.to_duckdb``); the sample, its contract view and the
DuckDB session are in ``tests.lake_sample``. The data-quality ledger and the baselines also read a sample
quarantine store the processor's own ``quarantine_object`` wrote; their contract answers are in
``tests.quality_answers``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pytest

from lambdas.common.contract import (
    NS_PER_SECOND,
    REASONS,
    Measurement,
    Reading,
    Sums,
    parse_reading,
    total,
    window_start_ns,
)
from stacks.analytics import (
    BASELINE_WEEKS,
    LEDGER_DAYS,
    LEDGER_HOURS,
    NAMED_QUERIES,
    VALID_READINGS,
    Source,
    valid_readings_cte,
)
from stacks.layout import QUARANTINE_PREFIX
from stacks.quarantine_catalog import QUARANTINE_COLUMNS, QUARANTINED, quarantined_cte
from tests import quality_answers
from tests.conftest import AD_HOC_SUFFIX, ENVIRONMENTS, Synth
from tests.lake_sample import (
    BAD_KINDS,
    DAY_NS,
    MAX_AGE_NS,
    NOW,
    NOW_SECOND_NS,
    TODAY,
    BadKind,
    QuarantineObject,
    Row,
    contract_reading,
    corrupt_data_pages,
    distinct_readings,
    edge_rows,
    lake_connection,
    quarantine_batches,
    reading_row,
    rows_equal,
    sample_rows,
    to_duckdb,
    write_lake,
    write_quarantine,
)

Result = list[tuple[Any, ...]]

# The named queries as they were before the curated view (read straight from the table): the tests
# below show what they get wrong on the same sample.
RAW_QUERIES = {
    "worst-segments-24h": """SELECT segment_id,
       sum(vehicle_count) AS vehicles,
       sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0) AS average_speed_kmh,
       min(coalesce(speed_limit_kmh, 50)) AS speed_limit_kmh,
       avg(occupancy_percent) AS occupancy_percent
FROM {table}
WHERE dt >= date_format(current_date - interval '1' day, '%Y-%m-%d')
  AND from_iso8601_timestamp(timestamp) >= current_timestamp - interval '24' hour
GROUP BY segment_id
HAVING sum(vehicle_count) > 0
ORDER BY sum(vehicle_count * average_speed_kmh) / sum(vehicle_count) / min(coalesce(speed_limit_kmh, 50))
LIMIT 20""",
    "hourly-volume-per-segment": """SELECT segment_id,
       date_trunc('hour', from_iso8601_timestamp(timestamp)) AS hour,
       sum(vehicle_count) AS vehicles,
       count(*) AS readings
FROM {table}
WHERE dt >= date_format(current_date - interval '7' day, '%Y-%m-%d')
GROUP BY 1, 2
ORDER BY 1, 2""",
    "speed-profile-by-hour-of-day": """SELECT segment_id,
       hour(from_iso8601_timestamp(timestamp)) AS hour_of_day,
       sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0) AS average_speed_kmh,
       sum(vehicle_count) AS vehicles
FROM {table}
WHERE dt >= date_format(current_date - interval '30' day, '%Y-%m-%d')
GROUP BY 1, 2
ORDER BY 1, 2""",
}
VEHICLES_COLUMN = {"worst-segments-24h": 1, "hourly-volume-per-segment": 2, "speed-profile-by-hour-of-day": 3}


# --- the queries as synthesized -----------------------------------------------------------------------------


def _catalog_tables(synth: Synth) -> dict[str, str]:
    """The synthesized stack's Glue tables as ``database.table``, by table name."""
    doc = synth.env(AD_HOC_SUFFIX)
    return {
        body["name"]: f"{doc.resolve(body['database_name'])['name']}.{body['name']}"
        for body in doc.resources("aws_glue_catalog_table").values()
    }


@pytest.fixture(scope="module")
def quarantine_table(synth: Synth) -> str:
    """The quarantine store's table (``database.table``) in the synthesized stack."""
    return _catalog_tables(synth)[f"tap_quarantine_{AD_HOC_SUFFIX.replace('-', '_')}"]


@pytest.fixture(scope="module")
def synthesized(synth: Synth, quarantine_table: str) -> tuple[str, dict[str, str]]:
    """The lake's table the named queries read (``database.table``) and each query's text by query id,
    from the ``aws_athena_named_query`` resources of the synthesized stack, references resolved."""
    doc = synth.env(AD_HOC_SUFFIX)
    table = _catalog_tables(synth)[f"tap_readings_{AD_HOC_SUFFIX.replace('-', '_')}"]
    queries: dict[str, str] = {}
    for body in doc.resources("aws_athena_named_query").values():
        (query_id,) = [q.query_id for q in NAMED_QUERIES if body["name"] == f"tap-{q.query_id}-{AD_HOC_SUFFIX}"]
        database = re.compile(r"\$\{aws_glue_catalog_database\.[^}]+\}")
        text = database.sub(lambda m: doc.resolve(m.group(0))["name"], body["query"])
        queries[query_id] = text
        assert set(re.findall(r"FROM ([a-z0-9_]+\.[a-z0-9_]+)", text)) <= {table, quarantine_table}, query_id
    assert set(queries) == {q.query_id for q in NAMED_QUERIES}
    return table, queries


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return sample_rows()


@dataclass(frozen=True)
class Store:
    """The sample lake and quarantine store on disk, and the quarantine objects written."""

    root: Path
    objects: list[QuarantineObject]


@pytest.fixture(scope="module")
def store(rows: list[Row], tmp_path_factory: pytest.TempPathFactory) -> Store:
    root = write_lake(tmp_path_factory.mktemp("lake"), rows)
    return Store(root, write_quarantine(root, quarantine_batches()))


@pytest.fixture(scope="module")
def lake(store: Store) -> Path:
    return store.root


def run(con: duckdb.DuckDBPyConnection, trino_sql: str, now: datetime.datetime = NOW) -> Result:
    return con.execute(to_duckdb(trino_sql, now)).fetchall()


# --- the contract's answers ------------------------------------------------------------------------------------


def _since(days: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=days)


def _sums(readings: Iterable[Reading]) -> Sums:
    return total(
        Sums.of(Measurement(r.vehicle_count, r.average_speed_kmh, r.occupancy_percent, r.speed_limit_kmh))
        for r in readings
    )


def _grouped(readings: Iterable[Reading], key: Callable[[Reading], Any]) -> dict[Any, Sums]:
    groups: dict[Any, list[Reading]] = defaultdict(list)
    for r in readings:
        groups[key(r)].append(r)
    return {k: _sums(group) for k, group in groups.items()}


def _speed(sums: Sums) -> float | None:
    """The contract's vehicle-weighted speed; the queries show NULL (not the contract's 0) without vehicles."""
    return sums.aggregate().average_speed_kmh if sums.vehicles else None


def expected_worst_segments(rows: list[Row]) -> Result:
    bound = NOW_SECOND_NS - 86_400 * NS_PER_SECOND
    recent = [r for _, r in distinct_readings(rows, _since(1)) if r.instant_ns >= bound]
    by_segment = {seg: s for seg, s in _grouped(recent, lambda r: r.segment_id).items() if s.vehicles > 0}

    def ratio(item: tuple[str, Sums]) -> tuple[Fraction, str]:
        seg, s = item
        assert s.min_speed_limit is not None
        return Fraction(s.speed_x_vehicles) / s.vehicles / Fraction(s.min_speed_limit), seg

    worst = sorted(by_segment.items(), key=ratio)[:20]
    return [
        (seg, a.vehicles, a.average_speed_kmh, a.speed_limit_kmh, a.occupancy_percent)
        for seg, a in ((seg, s.aggregate()) for seg, s in worst)
    ]


def expected_hourly_volume(rows: list[Row]) -> Result:
    readings = [r for _, r in distinct_readings(rows, _since(7))]
    hour_ns = 3600 * NS_PER_SECOND
    by_hour = _grouped(readings, lambda r: (r.segment_id, window_start_ns(r.instant_ns, 3600)))
    return [
        (seg, datetime.datetime(1970, 1, 1) + datetime.timedelta(hours=start // hour_ns), s.vehicles, s.readings)
        for (seg, start), s in sorted(by_hour.items())
    ]


def expected_speed_profile(rows: list[Row]) -> Result:
    readings = [r for _, r in distinct_readings(rows, _since(30))]
    by_hour = _grouped(readings, lambda r: (r.segment_id, r.instant_ns // (3600 * NS_PER_SECOND) % 24))
    return [(seg, hour, _speed(s), s.vehicles) for (seg, hour), s in sorted(by_hour.items())]


EXPECTED: dict[str, Callable[[list[Row]], Result]] = {
    "worst-segments-24h": expected_worst_segments,
    "hourly-volume-per-segment": expected_hourly_volume,
    "speed-profile-by-hour-of-day": expected_speed_profile,
}
"""The contract's answers of the queries over the lake alone (at :data:`NOW`); the others are in
``tests.quality_answers``."""
QUALITY_QUERIES = (
    "data-quality-ledger-24h",
    "least-complete-sensors-24h",
    "sensors-sending-invalid-data-24h",
    "segment-baselines-by-hour-of-week",
    "segment-hours-furthest-from-baseline-today",
)
MINIMUM_ROWS = {
    "worst-segments-24h": 20,
    "least-complete-sensors-24h": 50,
    "sensors-sending-invalid-data-24h": 10,
    "segment-hours-furthest-from-baseline-today": 30,
}
"""How many rows each answer has at least on the sample (100 unless said): no query is checked on a
near-empty answer."""


class Answers(Protocol):
    def __call__(self, now: datetime.datetime = NOW) -> dict[str, Result]: ...


@pytest.fixture(scope="module")
def answers(rows: list[Row], store: Store) -> Answers:
    """The contract's answer of every named query over the sample, by query id, at a clock (computed once
    per clock)."""
    found: dict[datetime.datetime, dict[str, Result]] = {}

    def at(now: datetime.datetime = NOW) -> dict[str, Result]:
        if now not in found:
            found[now] = quality_answers.answers(rows, store.objects, now)
            if now == NOW:
                found[now].update({query: expected(rows) for query, expected in EXPECTED.items()})
        return found[now]

    return at


def connect(root: Path, synthesized: tuple[str, dict[str, str]], quarantine_table: str) -> duckdb.DuckDBPyConnection:
    return lake_connection(root, synthesized[0], quarantine_table)


# --- the tests --------------------------------------------------------------------------------------------------------


def test_the_sample_holds_what_the_lake_holds(rows: list[Row]) -> None:
    """The sample is what it claims: rejected rows of every kind, duplicates, and readings across and
    outside every query's window."""
    valid = [row for row in rows if contract_reading(row) is not None]
    assert len(rows) - len(valid) == 2 * len(BAD_KINDS)
    identities = {(r.sensor_id, r.key) for r in map(contract_reading, valid) if r is not None}
    assert len(valid) - len(identities) > 250  # copies of a reading
    assert {row["dt"] for row in rows} >= {_since(d).isoformat() for d in (0, 1, 7, 30, 31, 39)}
    spellings = {row["timestamp"][-6:] for row in valid} | {row["timestamp"][10] for row in valid}
    assert {"+02:00", "-05:30", "+00:00", "t", "T"} <= spellings


def test_every_query_has_the_contracts_answer() -> None:
    assert set(EXPECTED) | set(QUALITY_QUERIES) == {q.query_id for q in NAMED_QUERIES}
    assert not set(EXPECTED) & set(QUALITY_QUERIES)


@pytest.mark.parametrize("query", [q.query_id for q in NAMED_QUERIES])
def test_named_query_answers_the_contracts_question(
    query: str, synthesized: tuple[str, dict[str, str]], quarantine_table: str, lake: Path, answers: Answers
) -> None:
    _, queries = synthesized
    got = run(connect(lake, synthesized, quarantine_table), queries[query])
    want = answers()[query]
    assert len(want) >= MINIMUM_ROWS.get(query, 100)
    assert rows_equal(got, want), f"{query}\n got: {got[:5]}...\nwant: {want[:5]}..."


def test_every_query_reads_each_table_once_through_its_curated_view(
    synthesized: tuple[str, dict[str, str]], quarantine_table: str
) -> None:
    table, queries = synthesized
    for query in NAMED_QUERIES:
        text = queries[query.query_id]
        reads = {Source.READINGS: table, Source.QUARANTINE: quarantine_table}
        if Source.READINGS in query.sources:
            assert text.startswith(valid_readings_cte(table, query.days)), query.query_id
        else:
            assert text.startswith(f"WITH {quarantined_cte(quarantine_table, query.days)}"), query.query_id
        if Source.QUARANTINE in query.sources:
            assert quarantined_cte(quarantine_table, query.days) in text, query.query_id
        # each table is read once, in its curated CTE, under the partition filter; no other table is read
        for source, name in reads.items():
            assert text.count(name) == (source in query.sources), (query.query_id, source)
        assert text.count(f"dt >= date_format(current_date - interval '{query.days}' day, '%Y-%m-%d')") == len(
            query.sources
        ), query.query_id
        assert "from_iso8601" not in text


def test_partitions_outside_the_window_are_not_read(
    synthesized: tuple[str, dict[str, str]], quarantine_table: str, rows: list[Row], answers: Answers, tmp_path: Path
) -> None:
    """A partition older than every window whose file cannot be read, in the lake and in the quarantine:
    a query that read it would fail, so each query's ``dt`` filter sits where the engine prunes partitions,
    on the table itself; and the answers are the sample's."""
    table, queries = synthesized
    old_day = _since(45).isoformat()
    write_lake(tmp_path, rows)
    write_lake(tmp_path, [{**row, "dt": old_day} for row in edge_rows()], files_per_partition=1)
    corrupt_data_pages(tmp_path / "readings" / f"dt={old_day}" / "part-00000.parquet")
    write_quarantine(tmp_path, quarantine_batches())
    unreadable = tmp_path / f"rejected/dt={old_day}/shardId-000000000000/1-2.ndjson"
    unreadable.parent.mkdir(parents=True)
    unreadable.write_bytes(b'{"reason": "malformed_json", \x00 not JSON\n')
    con = connect(tmp_path, synthesized, quarantine_table)
    for query in NAMED_QUERIES:
        assert rows_equal(run(con, queries[query.query_id]), answers()[query.query_id]), query.query_id
    with pytest.raises(duckdb.Error):  # the control: a window reaching the old partition reads it
        run(con, f"{valid_readings_cte(table, 60)} SELECT count(*) FROM {VALID_READINGS}")
    with pytest.raises(duckdb.Error):
        run(con, f"WITH {quarantined_cte(quarantine_table, 60)} SELECT count(*) FROM {QUARANTINED}")


def test_the_raw_queries_fail_on_one_bad_timestamp(
    lake: Path, rows: list[Row], synthesized: tuple[str, dict[str, str]]
) -> None:
    """Before the curated view, one unparsable timestamp in the window failed the whole query."""
    table, queries = synthesized
    con = lake_connection(lake, table)
    for query, text in RAW_QUERIES.items():
        with pytest.raises(duckdb.ConversionException):
            run(con, text.format(table=table))
        # the curated text of the same query answers on the same lake
        assert rows_equal(run(con, queries[query]), EXPECTED[query](rows)), query


def _parsable_by_duckdb(rows: list[Row]) -> list[Row]:
    """The rows whose ``timestamp`` DuckDB's cast (what ``from_iso8601_timestamp`` becomes) accepts."""
    stamps = sorted({row["timestamp"] for row in rows if row["timestamp"] is not None})
    sql = "SELECT s FROM unnest(?) AS t(s) WHERE try_cast(s AS TIMESTAMPTZ) IS NOT NULL"
    parsable = {s for (s,) in duckdb.connect().execute(sql, [stamps]).fetchall()}
    return [row for row in rows if row["timestamp"] in parsable]


def test_the_raw_queries_count_rejected_rows_and_duplicates(
    rows: list[Row], synthesized: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Over a lake of only the rows whose timestamps it can parse, the raw text still counts rejected
    rows and every copy of a reading, so its answers differ from the contract's; the curated ones do not."""
    table, queries = synthesized
    subset = _parsable_by_duckdb(rows)
    assert sum(contract_reading(row) is None for row in subset) > 20
    con = lake_connection(write_lake(tmp_path, subset), table)
    for query, text in RAW_QUERIES.items():
        want = EXPECTED[query](subset)
        assert rows_equal(run(con, queries[query]), want), query
        raw = run(con, text.format(table=table))
        assert not rows_equal(raw, want), query
        if query != "worst-segments-24h":  # the top 20 is another selection; the others add up everything
            column = VEHICLES_COLUMN[query]
            assert sum(row[column] for row in raw) > sum(row[column] for row in want), query


CURATED_COLUMNS = ("sensor_id", "segment_id", "timestamp", "vehicle_count", "dt")


def _curated(con: duckdb.DuckDBPyConnection, table: str) -> Result:
    """The rows of ``valid_readings`` (today's and yesterday's deliveries), sorted."""
    columns = ", ".join(f'"{c}"' for c in CURATED_COLUMNS)
    return sorted(run(con, f"{valid_readings_cte(table, 1)}\nSELECT {columns} FROM {VALID_READINGS}"))


def _as_curated(row: Row) -> tuple[Any, ...]:
    return tuple(row[c] for c in CURATED_COLUMNS)


@pytest.mark.parametrize("kind", BAD_KINDS, ids=[k.name for k in BAD_KINDS])
def test_the_curated_view_drops_each_kind_of_rejected_row(
    kind: BadKind, synthesized: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    table, _ = synthesized
    instant = NOW_SECOND_NS - 3600 * NS_PER_SECOND
    good = reading_row("s-good", "seg-1", instant, TODAY.isoformat())
    bad = kind.change(reading_row("s-bad", "seg-1", instant, TODAY.isoformat()))
    assert contract_reading(good) is not None
    assert contract_reading(bad) is None, "the contract accepts this row: it is no bad kind"
    write_lake(tmp_path, [good, bad], files_per_partition=1)
    got = _curated(lake_connection(tmp_path, table), table)
    assert got == [_as_curated(good)]


def test_the_curated_view_keeps_one_copy_of_each_reading(
    synthesized: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """One instant written seven ways over two days is one reading. The copy kept is the one delivered
    first (yesterday), then the smallest by segment and by ``timestamp`` as written; a copy with other
    values delivered later changes nothing. An instant one nanosecond later is another reading."""
    table, _ = synthesized
    instant = NOW_SECOND_NS - 7200 * NS_PER_SECOND + 500_000_000
    yesterday, today = (TODAY - datetime.timedelta(days=1)).isoformat(), TODAY.isoformat()
    copies = [
        reading_row("s1", "seg-1", instant, today, offset=None, digits=9, vehicle_count=1),
        reading_row("s1", "seg-9", instant, today, offset=-330, digits=3, vehicle_count=2),
        reading_row("s1", "seg-1", instant, today, offset=60, digits=6, vehicle_count=3, lower=True),
        reading_row("s1", "seg-1", instant, yesterday, offset=0, digits=1, vehicle_count=4),
        reading_row("s1", "seg-1", instant, yesterday, offset=0, digits=1, vehicle_count=4, negative_zero=True),
        reading_row("s1", "seg-1", instant, yesterday, offset=840, digits=9, vehicle_count=5),
        reading_row("s1", "seg-1", instant, yesterday, offset=-720, digits=2, vehicle_count=6),
    ]
    assert len({(r.sensor_id, r.key) for r in map(contract_reading, copies) if r is not None}) == 1
    assert len({row["timestamp"] for row in copies}) == 7
    neighbour = reading_row("s1", "seg-1", instant + 1, today, digits=9, vehicle_count=7)
    other_sensor = reading_row("s2", "seg-1", instant, today, digits=1, vehicle_count=8)
    write_lake(tmp_path, [*copies, neighbour, other_sensor], files_per_partition=3)
    got = _curated(lake_connection(tmp_path, table), table)
    kept = copies[6]  # yesterday's, local time 2025-06-14T20:30 at -12:00: the smallest as written
    assert [row for row, _ in distinct_readings(copies, TODAY - datetime.timedelta(days=1))] == [kept]
    assert got == sorted(map(_as_curated, (kept, neighbour, other_sensor)))


def test_a_copy_of_the_lake_gives_the_same_answers(
    synthesized: tuple[str, dict[str, str]], quarantine_table: str, rows: list[Row], answers: Answers, tmp_path: Path
) -> None:
    """Which copy is kept does not depend on how rows are spread over files, nor which copy of a
    quarantined record is read first: the sample written in reverse, in one file per day, and the
    quarantine's batches written in reverse order answer the same."""
    _, queries = synthesized
    write_lake(tmp_path, list(reversed(rows)), files_per_partition=1)
    write_quarantine(tmp_path, list(reversed(quarantine_batches())))
    con = connect(tmp_path, synthesized, quarantine_table)
    for query in NAMED_QUERIES:
        assert rows_equal(run(con, queries[query.query_id]), answers()[query.query_id]), query.query_id


# --- the data-quality ledger and the baselines --------------------------------------------------------------------

OTHER_CLOCKS = (
    datetime.datetime(2025, 6, 14, 0, 40, tzinfo=datetime.UTC),
    datetime.datetime(2025, 6, 13, 18, 10, tzinfo=datetime.UTC),
)
"""Clocks besides :data:`NOW`: just after midnight (the ledger's hours start at yesterday's midnight, a
quarantine object holding records of both days sits under the first day's date, and today has no whole
hour to compare with its baseline yet), and an evening."""


def test_the_quarantine_sample_holds_what_the_processor_writes(store: Store) -> None:
    """Every line has exactly the Glue table's columns and the contract's reason for its record; every
    reason code is there, some records are in two objects, an object holds records of two days, and one
    sits under a date older than every window."""
    lines = [
        json.loads(line)
        for path in sorted((store.root / QUARANTINE_PREFIX).rglob("*.ndjson"))
        for line in path.read_text().splitlines()
    ]
    assert {frozenset(line) for line in lines} == {frozenset(c.name for c in QUARANTINE_COLUMNS)}
    for obj in store.objects:
        for record, rejection in obj.rejects:
            verdict = parse_reading(record.data, record.arrival_ns, thing=record.partition_key, max_age_ns=MAX_AGE_NS)
            assert verdict == rejection
    assert Counter(line["reason"] for line in lines).keys() == set(REASONS)
    copies = Counter((line["shard_id"], line["sequence_number"]) for line in lines)
    assert sum(count > 1 for count in copies.values()) >= 3
    assert any(len({r.arrival_ns // DAY_NS for r, _ in obj.rejects}) > 1 for obj in store.objects)
    assert min(obj.dt for obj in store.objects) < _since(LEDGER_DAYS + 1).isoformat()
    assert "" in {line["partition_key"] for line in lines}


def test_the_ledger_and_baselines_are_not_trivial(answers: Answers) -> None:
    """The sample gives every column of the ledger and the baselines something to count."""
    found = answers()
    ledger = found["data-quality-ledger-24h"]
    by_sensor: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in ledger:
        by_sensor[row[0]].append(row)
    assert [r[3] for r in by_sensor["ledger-steady"]] == [12] * LEDGER_HOURS  # complete at 300 s
    assert {r[3] for r in by_sensor["ledger-silent"]} == {0} and len(by_sensor["ledger-silent"]) == LEDGER_HOURS
    assert len(by_sensor["ledger-joins"]) < LEDGER_HOURS  # in the fleet from its first reading on
    switch = {r[1].hour: r[2] for r in by_sensor["ledger-switch"]}
    assert (switch[19], switch[20], switch[21]) == (12.0, 12.0, 60.0)  # a silent hour keeps the last interval
    gappy = {r[4] for r in by_sensor["ledger-gappy"]}  # silent, half-empty and complete hours
    assert {0.0, 1.0} <= gappy and any(0 < c < 1 for c in gappy)
    assert {r[2] for r in by_sensor["ledger-garbage"]} == {60.0} and not any(r[3] for r in by_sensor["ledger-garbage"])
    assert sum(r[5] for r in ledger) > 100  # duplicates
    assert all(sum(r[7 + i] for r in ledger) > 0 for i in range(len(REASONS)))  # every reason code
    assert found["least-complete-sensors-24h"][0][4] == 0.0 < found["least-complete-sensors-24h"][-1][4]
    baselines = found["segment-baselines-by-hour-of-week"]
    assert {r[3] for r in baselines} >= {1, 2, 3, BASELINE_WEEKS}  # hours of the week with fewer samples
    assert any(r[4] == 0 and r[7] is None for r in baselines)  # no vehicles, no speed
    assert any(r[5] != r[6] and r[7] != r[8] for r in baselines)
    furthest = [(r[0], r[1].hour) for r in found["segment-hours-furthest-from-baseline-today"][:10]]
    assert ("seg-base-1", 7) in furthest  # today's jam


@pytest.mark.parametrize("now", OTHER_CLOCKS, ids=lambda now: now.isoformat())
def test_the_quality_queries_answer_at_any_clock(
    now: datetime.datetime,
    synthesized: tuple[str, dict[str, str]],
    quarantine_table: str,
    lake: Path,
    answers: Answers,
) -> None:
    _, queries = synthesized
    con = connect(lake, synthesized, quarantine_table)
    for query in QUALITY_QUERIES:
        got, want = run(con, queries[query], now), answers(now)[query]
        assert rows_equal(got, want), f"{query} at {now}\n got: {got[:5]}...\nwant: {want[:5]}..."
    assert answers(now)["data-quality-ledger-24h"]


def test_the_invalid_data_adds_up_to_the_ledger(
    synthesized: tuple[str, dict[str, str]], quarantine_table: str, lake: Path
) -> None:
    _, queries = synthesized
    con = connect(lake, synthesized, quarantine_table)
    invalid = run(con, queries["sensors-sending-invalid-data-24h"])
    ledger = run(con, queries["data-quality-ledger-24h"])
    assert len(invalid) < 100  # not cut by its LIMIT
    per_reason = Counter({(sensor, reason): records for sensor, reason, records, *_ in invalid})
    in_ledger: Counter[tuple[str, str]] = Counter()
    for row in ledger:
        for i, reason in enumerate(REASONS):
            in_ledger[(row[0], reason)] += row[7 + i]
    assert +in_ledger == per_reason


def test_lines_the_processor_does_not_write_are_not_counted(
    synthesized: tuple[str, dict[str, str]], quarantine_table: str, rows: list[Row], answers: Answers, tmp_path: Path
) -> None:
    """Another writer's JSON under ``rejected/`` (no reason code, or an unknown one) changes nothing."""
    _, queries = synthesized
    write_lake(tmp_path, rows)
    write_quarantine(tmp_path, quarantine_batches())
    arrival = (NOW - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    foreign = tmp_path / f"rejected/dt={TODAY.isoformat()}/other/foreign.ndjson"
    foreign.parent.mkdir(parents=True)
    foreign.write_text(
        json.dumps({"hello": "world"})
        + "\n"
        + json.dumps({"reason": "too_loud", "partition_key": "sensor-000", "approximate_arrival_timestamp": arrival})
        + "\n"
    )
    con = connect(tmp_path, synthesized, quarantine_table)
    for query in QUALITY_QUERIES[:3]:
        assert rows_equal(run(con, queries[query]), answers()[query]), query


@dataclass(frozen=True)
class Mutation:
    """One rule of a query's text changed: what the changed text gets wrong, and the change."""

    what: str
    query: str
    old: str
    new: str
    now: datetime.datetime = NOW


MUTATIONS = (
    Mutation("counts a record quarantined twice twice", "sensors-sending-invalid-data-24h",
             "PARTITION BY shard_id, partition_key, sequence_number", "PARTITION BY quarantined_at, sequence_number"),
    Mutation("misses an object under the day before its record", "sensors-sending-invalid-data-24h",
             "interval '2' day", "interval '1' day", OTHER_CLOCKS[0]),
    Mutation("counts the current hour", "sensors-sending-invalid-data-24h",
             "arrival_time < date_trunc('hour'", "arrival_time <= date_trunc('day', current_timestamp) + interval"
             " '1' day OR arrival_time < date_trunc('hour'"),
    Mutation("drops silent sensors", "least-complete-sensors-24h", "hours_with_readings > 0 OR ", ""),
    Mutation("forgets the interval in a silent hour", "data-quality-ledger-24h", "IGNORE NULLS ", ""),
    Mutation("counts every copy as a duplicate", "data-quality-ledger-24h", "copy_rank > 1", "copy_rank > 0"),
    Mutation("ignores the declared interval", "least-complete-sensors-24h", "coalesce(interval_seconds, 60)", "60"),
    Mutation("counts records without a thing name for another sensor", "data-quality-ledger-24h",
             "coalesce(nullif(partition_key, ''), 'unknown')", "partition_key"),
    Mutation("weighs every reading's speed alike", "segment-baselines-by-hour-of-week",
             "sum(vehicle_count * average_speed_kmh) / nullif(sum(vehicle_count), 0)", "avg(average_speed_kmh)"),
    Mutation("takes the 80th percentile", "segment-baselines-by-hour-of-week", "85 * (", "80 * ("),
    Mutation("takes a lower median", "segment-baselines-by-hour-of-week", "(50 * (", "(49 * ("),
    Mutation("counts hours without vehicles as speed samples", "segment-baselines-by-hour-of-week",
             "count(average_speed_kmh) OVER", "count(*) OVER"),
    Mutation("compares with one week", "segment-hours-furthest-from-baseline-today",
             "b.volume_hours >= 2", "b.volume_hours >= 1"),
    Mutation("puts today in its baseline", "segment-hours-furthest-from-baseline-today",
             "WHERE hour_start < date_trunc('day'", "WHERE hour_start <= date_trunc('day'", OTHER_CLOCKS[1]),
)  # fmt: skip


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.what.replace(" ", "-") for m in MUTATIONS])
def test_the_sample_catches_a_query_that(
    mutation: Mutation,
    synthesized: tuple[str, dict[str, str]],
    quarantine_table: str,
    lake: Path,
    answers: Answers,
) -> None:
    """The query's text with one rule changed gives another answer on the sample: the comparisons above
    can fail, and the sample exercises that rule."""
    _, queries = synthesized
    text = queries[mutation.query]
    assert mutation.old in text, mutation.what
    con = connect(lake, synthesized, quarantine_table)
    want = answers(mutation.now)[mutation.query]
    assert rows_equal(run(con, text, mutation.now), want)
    assert not rows_equal(run(con, text.replace(mutation.old, mutation.new), mutation.now), want), mutation.what


# --- synthesis --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ENVIRONMENTS)
def test_every_environment_catalogs_the_quarantine_and_saves_the_quality_queries(synth: Synth, suffix: str) -> None:
    doc = synth.env(suffix)
    glue = suffix.replace("-", "_")
    _, database = doc.one("aws_glue_catalog_database")
    (table,) = [t for t in doc.resources("aws_glue_catalog_table").values() if t["name"] == f"tap_quarantine_{glue}"]
    assert doc.resolve(table["database_name"]) is database and database["name"] == f"tap_traffic_{glue}"
    location = table["storage_descriptor"]["location"]
    bucket = re.fullmatch(r"s3://(\$\{aws_s3_bucket\.[^.]+)\.bucket\}/rejected/", location)
    assert bucket, location
    assert doc.resolve(bucket.group(1) + ".arn}")["bucket"].startswith(f"tap-quarantine-{suffix}-")
    assert QUARANTINE_PREFIX == "rejected/"
    serde = table["storage_descriptor"]["ser_de_info"]
    assert serde["serialization_library"] == "org.openx.data.jsonserde.JsonSerDe"
    assert [(c["name"], c["type"]) for c in table["storage_descriptor"]["columns"]] == [
        (c.name, "string") for c in QUARANTINE_COLUMNS
    ]
    params = table["parameters"]
    assert params["projection.enabled"] == "true" and params["projection.dt.type"] == "date"
    assert params["storage.location.template"] == f"{location}dt=$${{dt}}/"
    assert table["partition_keys"] == [{"name": "dt", "type": "string"}]

    saved = {q["name"]: q for q in doc.resources("aws_athena_named_query").values()}
    assert len(saved) == len(NAMED_QUERIES)
    for named in NAMED_QUERIES:
        query = saved[f"tap-{named.query_id}-{suffix}"]
        assert query["database"] == table["database_name"]
        assert (f".tap_quarantine_{glue}\n" in query["query"]) == (Source.QUARANTINE in named.sources)
        assert (f".tap_readings_{glue}\n" in query["query"]) == (Source.READINGS in named.sources)
    assert {q.query_id for q in NAMED_QUERIES} >= set(QUALITY_QUERIES)
