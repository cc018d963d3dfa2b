"""The Athena named queries, run for real: the synthesized query text, transpiled from Athena's dialect
(Trino) to DuckDB's with sqlglot, over a sample lake of Parquet files laid out as Firehose writes them.

The answers must equal the contract's (``lambdas/common/contract.py``) over the same rows: its valid
readings, each once, aggregated with its exact sums; no rejected row may fail a query or count. The
clock the queries read is pinned (``tests.lake_sample.to_duckdb``); the sample, its contract view and the
DuckDB session are in ``tests.lake_sample``.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

import duckdb
import pytest

from lambdas.common.contract import NS_PER_SECOND, Measurement, Reading, Sums, total, window_start_ns
from stacks.analytics import NAMED_QUERIES, VALID_READINGS, valid_readings_cte
from tests.conftest import AD_HOC_SUFFIX, Synth
from tests.lake_sample import (
    BAD_KINDS,
    NOW_SECOND_NS,
    TODAY,
    BadKind,
    Row,
    contract_reading,
    corrupt_data_pages,
    distinct_readings,
    edge_rows,
    lake_connection,
    reading_row,
    rows_equal,
    sample_rows,
    to_duckdb,
    write_lake,
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


@pytest.fixture(scope="module")
def synthesized(synth: Synth) -> tuple[str, dict[str, str]]:
    """The table the named queries read (``database.table``) and each query's text by query id, from the
    ``aws_athena_named_query`` resources of the synthesized stack, references resolved."""
    doc = synth.env(AD_HOC_SUFFIX)
    queries: dict[str, str] = {}
    tables = set()
    for body in doc.resources("aws_athena_named_query").values():
        (query_id,) = [q.query_id for q in NAMED_QUERIES if body["name"] == f"tap-{q.query_id}-{AD_HOC_SUFFIX}"]
        database = re.compile(r"\$\{aws_glue_catalog_database\.[^}]+\}")
        text = database.sub(lambda m: doc.resolve(m.group(0))["name"], body["query"])
        queries[query_id] = text
        tables.update(re.findall(r"FROM ([a-z0-9_]+\.[a-z0-9_]+)", text))
    assert set(queries) == {q.query_id for q in NAMED_QUERIES}
    (table,) = tables
    return table, queries


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    return sample_rows()


@pytest.fixture(scope="module")
def lake(rows: list[Row], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_lake(tmp_path_factory.mktemp("lake"), rows)


def run(con: duckdb.DuckDBPyConnection, trino_sql: str) -> Result:
    return con.execute(to_duckdb(trino_sql)).fetchall()


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


@pytest.mark.parametrize("query", [q.query_id for q in NAMED_QUERIES])
def test_named_query_answers_the_contracts_question(
    query: str, synthesized: tuple[str, dict[str, str]], lake: Path, rows: list[Row]
) -> None:
    table, queries = synthesized
    got = run(lake_connection(lake, table), queries[query])
    want = EXPECTED[query](rows)
    assert len(want) >= (20 if query == "worst-segments-24h" else 100)
    assert rows_equal(got, want), f"{query}\n got: {got[:5]}...\nwant: {want[:5]}..."


def test_every_query_reads_the_table_once_through_the_curated_view(synthesized: tuple[str, dict[str, str]]) -> None:
    table, queries = synthesized
    for query in NAMED_QUERIES:
        text = queries[query.query_id]
        assert text.startswith(valid_readings_cte(table, query.days)), query.query_id
        # the table is read once, in the CTE, under the partition filter
        assert text.count(table) == 1
        assert f"dt >= date_format(current_date - interval '{query.days}' day, '%Y-%m-%d')" in text
        assert "from_iso8601" not in text


def test_partitions_outside_the_window_are_not_read(synthesized: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    """A partition older than every window whose file cannot be scanned: a query that read it would
    fail, so each query's ``dt`` filter sits where the engine prunes partitions, on the table itself."""
    table, queries = synthesized
    old_day = _since(45).isoformat()
    write_lake(tmp_path, [*edge_rows(), *({**row, "dt": old_day} for row in edge_rows())], files_per_partition=1)
    corrupt_data_pages(tmp_path / "readings" / f"dt={old_day}" / "part-00000.parquet")
    con = lake_connection(tmp_path, table)
    for query in NAMED_QUERIES:
        assert run(con, queries[query.query_id]), query.query_id
    with pytest.raises(duckdb.Error):  # the control: a window reaching the old partition reads it
        run(con, f"{valid_readings_cte(table, 60)} SELECT count(*) FROM {VALID_READINGS}")


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
    synthesized: tuple[str, dict[str, str]], rows: list[Row], tmp_path: Path
) -> None:
    """Which copy is kept does not depend on how rows are spread over files: the sample written in
    reverse and in one file per day answers the same."""
    table, queries = synthesized
    con = lake_connection(write_lake(tmp_path, list(reversed(rows)), files_per_partition=1), table)
    for query in NAMED_QUERIES:
        assert rows_equal(run(con, queries[query.query_id]), EXPECTED[query.query_id](rows)), query.query_id
