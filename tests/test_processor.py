"""The processor handler under moto: validated, stored once, quarantined with reasons, faults survived."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from lambdas.common.aws import deserialize
from lambdas.common.contract import decode_sums, format_instant, stored_instant_ns
from lambdas.processor import handler as processor_handler
from lambdas.processor import logic
from lambdas.processor.service import Processor, Settings
from stacks.config import PROFILES
from stacks.layout import processor_environment
from tests.aws_fixtures import NOW, Env, Faults, kinesis_event, moto_env, reading, server_error, throttled
from tools.local.simulate import sensor_state


@pytest.fixture
def env() -> Iterator[Env]:
    with moto_env() as e:
        yield e


def processor(env: Env, attempts: int = 6) -> Processor:
    return env.processor(attempts)


def table(env: Env, name: str) -> list[dict[str, Any]]:
    items = env.clients["dynamodb"].scan(TableName=name, ConsistentRead=True)["Items"]
    return sorted((deserialize(i) for i in items), key=lambda i: json.dumps(i, default=str, sort_keys=True))


def windows_of(env: Env) -> list[dict[str, Any]]:
    """The window items (not the shards' partials marks)."""
    return [item for item in table(env, env.targets.sensor_windows_table) if "segments" in item]


def state(env: Env) -> dict[str, Any]:
    """Every window item, and each sensor's current state as a reader gets it (Query, newest first)."""
    name = env.targets.sensor_windows_table
    windows = windows_of(env)
    sensors = [sensor_state(env.clients, name, s) for s in sorted({w["sensor_id"] for w in windows})]
    return {"sensors": sensors, "windows": windows}


def quarantine(env: Env) -> list[dict[str, Any]]:
    s3 = env.clients["s3"]
    lines = []
    for obj in s3.list_objects_v2(Bucket=env.targets.quarantine_bucket).get("Contents", []):
        body = s3.get_object(Bucket=env.targets.quarantine_bucket, Key=obj["Key"])["Body"].read()
        lines.extend(json.loads(line) for line in body.splitlines())
    return lines


def stored_readings(env: Env) -> dict[tuple[str, str], bytes]:
    """(sensor, instant) -> the digest of the sequence number that stored it (``logic.owner_digest``)."""
    found = {}
    for item in windows_of(env):
        start = stored_instant_ns(item["window_start"])
        for offset, owner in logic.decode_rows(item["rows"]).items():
            key = format_instant(start + offset)
            assert (item["sensor_id"], key) not in found, "a reading stored twice"
            found[(item["sensor_id"], key)] = owner
    return found


def lambda_retries(fn: Processor, event: dict[str, Any], limit: int = 10) -> int:
    """Invoke as the event source mapping would: on failures, again from the lowest failed record."""
    records = event["Records"]
    invocations = 0
    while records and invocations < limit:
        invocations += 1
        try:
            failures = [f["itemIdentifier"] for f in fn.handle({"Records": records})["batchItemFailures"]]
        except RuntimeError:  # a crash: the whole batch comes back
            continue
        if not failures:
            return invocations
        first = min(i for i, r in enumerate(records) if r["kinesis"]["sequenceNumber"] in failures)
        records = records[first:]
    return invocations


MIXED = [
    reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=10, speed=40.0, occupancy=20.0),
    b"not json at all",
    reading("s2", "seg-a", "2026-06-01T11:50:30Z", vehicles=30, speed=20.0, occupancy=60.0),
    reading("s1", "seg-a", "2026-06-01T11:51:00Z", vehicles=-1),
    reading("s3", "seg-b", "2026-06-01T13:00:00Z"),
    reading("s1", "seg-a", "2026-06-01T11:52:00Z", vehicles=12, speed=42.0, occupancy=22.0),
]


def test_valid_readings_are_stored_and_bad_ones_quarantined_without_failing_the_batch(env: Env) -> None:
    response = processor(env).handle(kinesis_event(MIXED))
    assert response == {"batchItemFailures": []}
    readings = stored_readings(env)
    assert sorted(readings) == [
        ("s1", "2026-06-01T11:50:00.000000000Z"),
        ("s1", "2026-06-01T11:52:00.000000000Z"),
        ("s2", "2026-06-01T11:50:30.000000000Z"),
    ]
    rejected = {line["sequence_number"]: line for line in quarantine(env)}
    assert {seq[-1]: line["reason"] for seq, line in rejected.items()} == {
        "2": "malformed_json",
        "4": "schema_violation",
        "5": "future_timestamp",
    }
    malformed = rejected[f"{2:056d}"]
    assert base64.b64decode(malformed["payload_base64"]) == b"not json at all"
    assert malformed["quarantined_at"].startswith("2026-06-01T12:00:00")
    assert malformed["shard_id"] == "shardId-000000000000"
    sensors = {s["sensor_id"]: s for s in state(env)["sensors"]}
    assert sensors["s1"]["timestamp"] == "2026-06-01T11:52:00.000000000Z"
    assert sensors["s2"]["congestion_level"] == "heavy"
    windows = {(w["sensor_id"], w["window_part"]): w for w in state(env)["windows"]}
    s1 = windows[("s1", "2026-06-01T11:50:00Z#000")]
    (segment, sums), *others = decode_sums(s1["segments"]).items()
    assert (segment, sums.readings, sums.vehicles, others) == ("seg-a", 2, 22, [])


def test_the_same_batch_twice_changes_nothing(env: Env) -> None:
    fn = processor(env)
    fn.handle(kinesis_event(MIXED))
    before = state(env), quarantine(env)
    assert fn.handle(kinesis_event(MIXED)) == {"batchItemFailures": []}
    assert (state(env), quarantine(env)) == before


def test_a_republished_copy_is_one_duplicate_however_often_it_is_redelivered(env: Env) -> None:
    fn = processor(env)
    original = reading("s1", "seg-a", "2026-06-01T11:50:00Z")
    fn.handle(kinesis_event([original], first_sequence=1))
    for _ in range(3):  # the copy (a new record) delivered, then retried twice
        fn.handle(kinesis_event([original], first_sequence=2))
    (window,) = state(env)["windows"]
    assert len(logic.stored_instants(window)) == 1
    assert window["duplicates"] == 1
    # the same reading written with another offset is the same instant, so the same reading
    fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T13:50:00+02:00")], first_sequence=3))
    assert len(logic.stored_instants(state(env)["windows"][0])) == 1
    assert state(env)["windows"][0]["duplicates"] == 2


def test_an_older_reading_never_overwrites_newer_sensor_state(env: Env) -> None:
    fn = processor(env)
    fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T11:55:00Z", vehicles=5)], first_sequence=1))
    fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=9)], first_sequence=2))
    (sensor,) = state(env)["sensors"]
    assert (sensor["timestamp"], int(sensor["vehicle_count"])) == ("2026-06-01T11:55:00.000000000Z", 5)
    # a later reading in an earlier window does not move the state back either
    fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T11:54:00Z", vehicles=7)], first_sequence=3))
    assert state(env)["sensors"][0]["timestamp"] == "2026-06-01T11:55:00.000000000Z"
    assert len(stored_readings(env)) == 3  # the older readings still count in their window


def many(n: int, sensors: int = 10) -> list[bytes]:
    return [
        reading(f"s{i % sensors}", f"seg-{i % 3}", f"2026-06-01T{10 + i // 600:02d}:{(i // sensors) % 60:02d}:00Z")
        for i in range(n)
    ]


def test_unprocessed_items_are_retried_with_bounded_backoff(env: Env) -> None:
    faults = Faults(
        env.clients["dynamodb"],
        {"BatchWriteItem": lambda n, params: (200, {"UnprocessedItems": params["RequestItems"]}) if n <= 2 else None},
    )
    response = processor(env).handle(kinesis_event(many(200)))
    assert response == {"batchItemFailures": []}
    assert len(stored_readings(env)) == 200
    assert faults.calls["BatchWriteItem"] > 2
    assert len(env.sleeps) == 2 and all(0 <= s <= 1.0 for s in env.sleeps)


def test_persistent_unprocessed_items_fail_only_their_records_and_lambda_retries_store_them_once(env: Env) -> None:
    payloads = many(100, sensors=60)  # 60 window items: three chunks
    Faults(
        env.clients["dynamodb"],
        {
            "BatchWriteItem": lambda n, params: (
                (200, {"UnprocessedItems": params["RequestItems"]}) if 3 <= n <= 8 else None
            )
        },
    )
    fn = processor(env, attempts=3)
    first = fn.handle(kinesis_event(payloads))["batchItemFailures"]
    assert first, "the items that stayed unprocessed must be reported"
    failed = {f["itemIdentifier"] for f in first}
    stored = set(stored_readings(env).values())
    assert not stored & {logic.owner_digest(f) for f in failed}, (
        "a record whose reading is stored (one item, written whole) was failed"
    )
    assert lambda_retries(fn, kinesis_event(payloads)) >= 1
    assert len(stored_readings(env)) == 100


def test_throttling_is_retried(env: Env) -> None:
    Faults(env.clients["dynamodb"], {"BatchGetItem": lambda n, _: throttled() if n == 1 else None,
                                     "BatchWriteItem": lambda n, _: throttled() if n in (1, 2) else None})  # fmt: skip
    assert processor(env).handle(kinesis_event(many(50))) == {"batchItemFailures": []}
    assert len(stored_readings(env)) == 50
    assert len(env.sleeps) == 3


def test_throttling_beyond_the_bound_fails_records_instead_of_waiting_forever(env: Env) -> None:
    Faults(env.clients["dynamodb"], {"BatchWriteItem": lambda n, _: throttled()})
    failures = processor(env, attempts=4).handle(kinesis_event(many(30)))["batchItemFailures"]
    assert len(failures) == 30
    assert len(env.sleeps) == 3  # 4 attempts of one chunk: 30 readings of 10 sensors in one window, 10 items


def test_s3_errors_fail_the_rejected_records_until_the_quarantine_is_written(env: Env) -> None:
    faults = Faults(env.clients["s3"], {"PutObject": lambda n, _: server_error() if n <= 7 else None})
    fn = processor(env, attempts=3)
    event = kinesis_event(MIXED)
    response = fn.handle(event)
    assert {f["itemIdentifier"][-1] for f in response["batchItemFailures"]} == {"2", "4", "5"}
    assert len(stored_readings(env)) == 3, "valid records are stored meanwhile"
    lambda_retries(fn, event)
    assert faults.calls["PutObject"] >= 8
    assert sorted(line["reason"] for line in quarantine_distinct(env)) == [
        "future_timestamp",
        "malformed_json",
        "schema_violation",
    ]
    assert len(stored_readings(env)) == 3


def quarantine_distinct(env: Env) -> list[dict[str, Any]]:
    return list({line["sequence_number"]: line for line in quarantine(env)}.values())


def test_a_crash_mid_batch_then_lambda_retries_leaves_every_reading_exactly_once(env: Env) -> None:
    def crash(n: int, _: Any) -> Any:
        if n == 3:  # the first write is the fleet registry's (10 new sensors), then the window items
            raise RuntimeError("the execution environment died")
        return None

    Faults(env.clients["dynamodb"], {"BatchWriteItem": crash})
    payloads = many(120)
    fn = processor(env)
    with pytest.raises(RuntimeError):
        fn.handle(kinesis_event(payloads))
    partial = len(stored_readings(env))
    assert 0 < partial < 120
    assert lambda_retries(fn, kinesis_event(payloads)) == 1
    assert len(stored_readings(env)) == 120


def test_the_handler_builds_the_processor_from_the_stack_environment(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in processor_environment(env.targets.runtime_names(), PROFILES["dev"]).items():
        monkeypatch.setenv(key, value)
    processor_handler.install(None)
    try:
        payload = reading("s9", "seg-z", "2026-05-31T12:00:00Z")
        assert processor_handler.handler(kinesis_event([payload]), None) == {"batchItemFailures": []}
    finally:
        processor_handler.install(None)
    assert ("s9", "2026-05-31T12:00:00.000000000Z") in stored_readings(env)


def test_one_pass_sums_and_encoding_equal_the_contract_and_json() -> None:
    import random  # noqa: PLC0415

    from lambdas.common.contract import Measurement, Sums, encode_sums, exact, total  # noqa: PLC0415
    from lambdas.processor.logic import decode_rows, encode_rows, owner_digest, summarize  # noqa: PLC0415

    rng = random.Random(5)
    for size in (1, 2, 7, 400):
        readings = {
            f"2026-06-01T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{i % 60:02d}.{i:09d}Z": [
                rng.randint(0, 10000), Decimal(str(round(rng.uniform(0, 300), rng.randint(0, 6)))),
                Decimal(repr(rng.uniform(0, 100))), rng.choice([Decimal(5), Decimal("30.5"), Decimal("1E-7"),
                Decimal("123456789.125"), Decimal("0." + "1" * 60)]), rng.choice(["seg-a", "seg-b"]),
                f"{rng.getrandbits(150):056d}",
            ]
            for i in range(size)
        }  # fmt: skip
        sums, latest = summarize(readings)
        for segment in {row[4] for row in readings.values()}:
            rows = [row for row in readings.values() if row[4] == segment]
            expected = Sums()
            for row in rows:  # the contract's own pairwise addition
                expected = expected + Sums.of(Measurement(*row[:4]))
            assert sums[segment] == expected == total(Sums.of(Measurement(*row[:4])) for row in rows)
        newest = max(readings)
        assert latest["timestamp"] == newest and latest["sequence_number"] == readings[newest][5]
        assert (latest["segment_id"], Decimal(latest["average_speed_kmh"])) == (
            readings[newest][4], exact(readings[newest][1]),
        )  # fmt: skip
        as_json = json.dumps({k: v.row() for k, v in sorted(sums.items())}, separators=(",", ":"))
        assert encode_sums(sums) == as_json and decode_sums(as_json) == sums
        rows = {rng.randrange(3_600 * 10**9): owner_digest(row[5]) for row in readings.values()}
        encoded = encode_rows(rows)
        assert decode_rows(encoded) == rows and len(encoded) == 15 * len(rows)
        assert list(decode_rows(encoded)) == sorted(rows), "sorted by offset"


def test_unprocessed_items_are_recognised_whatever_order_dynamodb_returns_them_in(env: Env) -> None:
    """DynamoDB may hand back an unprocessed item with its map keys and set members in another order."""

    def reorder(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: list(reversed(v)) if k == "SS" else reorder(v) for k, v in reversed(list(value.items()))}
        if isinstance(value, list):
            return [reorder(v) for v in value]
        return value

    Faults(
        env.clients["dynamodb"],
        {
            "BatchWriteItem": lambda n, params: (
                (200, {"UnprocessedItems": reorder(params["RequestItems"])}) if n <= 2 else None
            )
        },
    )
    original = reading("s1", "seg-a", "2026-06-01T11:50:00Z")
    processor(env).handle(kinesis_event([original], first_sequence=1))
    # a republished copy counts a duplicate on the item, next to the "latest" map
    response = processor(env).handle(kinesis_event([original, *many(40)], first_sequence=2))
    assert response == {"batchItemFailures": []}
    assert len(stored_readings(env)) == 41
    (window,) = [w for w in state(env)["windows"] if w["sensor_id"] == "s1" and w.get("duplicates")]
    assert window["duplicates"] == 1


def test_current_state_follows_a_sensor_that_moves_segment_within_a_window(env: Env) -> None:
    fn = processor(env)
    fn.handle(kinesis_event([reading("s1", "seg-b", "2026-06-01T11:50:10Z", vehicles=3)], first_sequence=1))
    fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T11:50:50Z", vehicles=8)], first_sequence=2))
    (sensor,) = state(env)["sensors"]
    assert (sensor["segment_id"], sensor["timestamp"], int(sensor["vehicle_count"])) == (
        "seg-a", "2026-06-01T11:50:50.000000000Z", 8,
    )  # fmt: skip


def test_a_new_windows_first_reading_takes_a_shortcut_to_the_same_item() -> None:
    from lambdas.common.contract import parse_reading  # noqa: PLC0415

    outcome = parse_reading(reading("s1", "seg-a", "2026-06-01T11:50:00.5+02:00", speed=12.25), NOW)
    assert isinstance(outcome, logic.Reading)
    one = logic.Contribution(f"{7:056d}", "shardId-000000000002", outcome)
    window = logic.window_of(outcome, 300)
    fast = logic.merge_window([None], [one], window=window, window_seconds=300, ttl_days=7)
    twice = logic.merge_window([None], [one, one], window=window, window_seconds=300, ttl_days=7)  # generic path
    assert fast.items == twice.items and fast.sums == twice.sums and fast.new == twice.new
    assert (fast.duplicates, fast.redelivered, twice.redelivered) == ([], [], [one.sequence_number])
    general = logic._merge_parts([None], [one, one], window=window, window_seconds=300, ttl_days=7)
    assert (twice.items, twice.sums, twice.new, twice.redelivered) == (
        general.items,
        general.sums,
        general.new,
        general.redelivered,
    )


NEW_WINDOW_CASES = {
    "distinct readings": [(1, "a", "11:50:00Z", "seg-a"), (2, "a", "11:51:00Z", "seg-a"),
                          (3, "a", "11:52:30Z", "seg-a")],
    "a copy and a redelivery": [(1, "a", "11:50:00Z", "seg-a"), (2, "a", "11:50:00Z", "seg-b"),
                                (1, "a", "11:50:00Z", "seg-a")],
    "two shards, out of order": [(5, "a", "11:51:00Z", "seg-a"), (3, "b", "11:50:00Z", "seg-a"),
                                 (4, "a", "11:52:00+00:00", "seg-b")],
    "a replay below the mark": [(9, "a", "11:52:00Z", "seg-a"), (2, "a", "11:51:00.5Z", "seg-a"),
                                (2, "a", "11:51:00.5Z", "seg-a")],
    "year one": [(1, "a", "0001-01-01T00:00:00Z", "seg-a"), (2, "a", "0001-01-01T00:01:00Z", "seg-a")],
}  # fmt: skip


@pytest.mark.parametrize("case", list(NEW_WINDOW_CASES), ids=list(NEW_WINDOW_CASES))
def test_a_new_window_takes_a_shortcut_to_the_same_items(case: str) -> None:
    from lambdas.common.contract import parse_instant, parse_reading  # noqa: PLC0415

    contributions = []
    for sequence, shard, stamp, segment in NEW_WINDOW_CASES[case]:
        timestamp = stamp if stamp.startswith("0001") else f"2026-06-01T{stamp}"
        outcome = parse_reading(reading("s1", segment, timestamp, speed=12.25), parse_instant(timestamp))
        assert isinstance(outcome, logic.Reading)
        contributions.append(logic.Contribution(f"{sequence:056d}", f"shardId-{shard}", outcome))
    window = logic.window_of(contributions[0].reading, 300)
    fast = logic.merge_window([None], contributions, window=window, window_seconds=300, ttl_days=7)
    general = logic._merge_parts([None], contributions, window=window, window_seconds=300, ttl_days=7)
    assert fast == general
    assert logic._new_window(contributions, window, 300, 7) == fast  # the shortcut was taken


def test_a_window_written_before_the_compact_rows_is_read_and_rewritten_compact(env: Env) -> None:
    """A deploy of the compact rows finds windows whose part keeps every reading as JSON (``readings``):
    their readings still identify copies and redeliveries, and the next write stores them compact."""
    from lambdas.common.aws import serialize  # noqa: PLC0415

    old_rows = {
        "2026-06-01T11:50:00.000000000Z": [10, Decimal(45), Decimal(12), Decimal(50), "seg-a", f"{1:056d}"],
        "2026-06-01T11:50:20.000000000Z": [10, Decimal(45), Decimal(12), Decimal(50), "seg-a", f"{2:056d}"],
    }
    sums, latest = logic.summarize(old_rows)
    env.clients["dynamodb"].put_item(
        TableName=env.targets.sensor_windows_table,
        Item=serialize({
            "sensor_id": "s1", "window_part": "2026-06-01T11:50:00Z#000", "window_start": "2026-06-01T11:50:00Z",
            "part": 0, "readings": json.dumps(old_rows, default=str), "segments": logic.encode_sums(sums),
            "latest": latest, "latest_interval": 60, "version": 3, "expires_at": 1_900_000_000, "parts": 1,
            "hwm": json.dumps({"shardId-000000000000": f"{2:056d}"}), "duplicates": 0,
        }),
    )  # fmt: skip
    fn = processor(env)
    # the second old record again (a retry), a copy of the first under a new record, and a new reading
    fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T11:50:20Z")], first_sequence=2))
    fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=99),
                             reading("s1", "seg-a", "2026-06-01T11:50:40Z")], first_sequence=3))  # fmt: skip
    (window,) = windows_of(env)
    assert "readings" not in window and int(window["version"]) == 4
    assert logic.stored_instants(window) == [f"2026-06-01T11:50:{s}.000000000Z" for s in ("00", "20", "40")]
    assert int(window["duplicates"]) == 1
    ((segment, total_sums),) = decode_sums(window["segments"]).items()
    assert (segment, total_sums.readings, total_sums.vehicles) == ("seg-a", 3, 30)
    assert stored_readings(env)[("s1", "2026-06-01T11:50:00.000000000Z")] == logic.owner_digest(f"{1:056d}")


def test_a_copy_counted_before_its_batch_was_given_up_is_not_counted_again_when_redriven(env: Env) -> None:
    """A batch can write a window and still fail (another window's write, the partials): given up on, its
    records reach the on-failure queue though the window counted them. Their redrive, after the shard went
    on, finds the copy's digest: still one duplicate, and a second redrive changes nothing either."""
    fn = processor(env)
    first, copy = reading("s1", "seg-a", "2026-06-01T11:50:00Z"), reading("s1", "seg-b", "2026-06-01T11:50:00Z")
    given_up = kinesis_event([first, copy], first_sequence=10)
    assert fn.handle(given_up) == {"batchItemFailures": []}
    assert fn.handle(kinesis_event([reading("s1", "seg-a", "2026-06-01T11:51:00Z")], first_sequence=50)) == {
        "batchItemFailures": []
    }
    for _ in range(2):
        assert fn.handle(given_up) == {"batchItemFailures": []}
        (window,) = windows_of(env)
        assert (int(window["duplicates"]), len(logic.stored_instants(window))) == (1, 2)
        (segment, sums), *others = decode_sums(window["segments"]).items()
        assert (segment, sums.readings, sums.vehicles, others) == ("seg-a", 2, 20, [])


def test_a_retry_after_the_head_was_written_and_the_part_it_opened_was_not_counts_each_copy_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The general path writes the parts that exist first and a part it opens after: a crash between the two
    leaves a copy counted in the head and the reading it copies unstored. The retry stores the reading and
    finds the copy's digest: one reading, one duplicate (a rule "a copy of a reading this merge stores is a
    duplicate" counted it twice)."""
    from lambdas.common.contract import parse_instant, parse_reading  # noqa: PLC0415

    def contribution(sequence: int, stamp: str, segment: str = "seg-a") -> logic.Contribution:
        timestamp = f"2026-06-01T{stamp}Z"
        outcome = parse_reading(reading("s1", segment, timestamp), parse_instant(timestamp))
        assert isinstance(outcome, logic.Reading)
        return logic.Contribution(f"{sequence:056d}", "shardId-a", outcome)

    window = logic.window_of(contribution(1, "11:50:00").reading, 300)
    merge = functools.partial(logic.merge_window, window=window, window_seconds=300, ttl_days=7)
    (head,) = merge([None], [contribution(1, "11:50:00"), contribution(2, "11:50:10")]).items
    # a budget that holds the head's two rows, and one digest more, but not a third row
    part = logic._Part.load(0, head, 0)
    monkeypatch.setattr(logic, "PART_BUDGET_BYTES", part._worst(2, 1, 0, 1, 0))
    batch = [contribution(3, "11:50:00", "seg-b"), contribution(4, "11:50:20"), contribution(5, "11:50:20", "seg-b")]
    first = merge([head], batch)
    assert (len(first.items), len(first.opened), first.duplicates) == (1, 1, [f"{3:056d}", f"{5:056d}"])
    assert int(first.items[0]["duplicates"]) == 1 and int(first.opened[0]["duplicates"]) == 1
    # the head (with the first copy's digest) is written; the opened part (the reading and the second copy) is not
    retry = merge([first.items[0], None], batch)  # the head counts two parts: the service reads both keys
    assert retry.redelivered == [f"{3:056d}"] and retry.new == [f"{4:056d}"] and retry.duplicates == [f"{5:056d}"]
    assert retry.items == [], "the head, written and unchanged, is not written again"
    total = int(first.items[0]["duplicates"]) + sum(int(item["duplicates"]) for item in retry.opened)
    assert total == 2 and [logic.stored_instants(i) for i in retry.opened] == [["2026-06-01T11:50:20.000000000Z"]]


def test_a_new_windows_wide_reading_and_its_copy_take_the_general_path_past_the_budget() -> None:
    """A valid reading of ~110 KB (55,000-digit literals) fills its head's worst case: its copy's digest goes
    to a part of its own, on the shortcut as on the general path (issue 20 review)."""
    from lambdas.common.contract import parse_instant, parse_reading  # noqa: PLC0415

    stamp = "2026-06-01T11:50:00Z"

    def wide(sequence: int) -> logic.Contribution:
        payload = json.dumps({"sensor_id": "s1", "segment_id": "seg-a", "timestamp": stamp, "vehicle_count": 10,
                              "average_speed_kmh": 1, "occupancy_percent": 2}).encode()  # fmt: skip
        payload = payload.replace(b": 1,", b": 45." + b"1" * 55_000 + b",").replace(
            b": 2}", b": 12." + b"3" * 55_000 + b"}"
        )
        outcome = parse_reading(payload, parse_instant(stamp))
        assert isinstance(outcome, logic.Reading)
        return logic.Contribution(f"{sequence:056d}", "shardId-a", outcome)

    contributions = [wide(1), wide(2)]
    window = logic.window_of(contributions[0].reading, 300)
    fast = logic.merge_window([None], contributions, window=window, window_seconds=300, ttl_days=7)
    assert fast == logic._merge_parts([None], contributions, window=window, window_seconds=300, ttl_days=7)
    assert logic._new_window(contributions, window, 300, 7) is None
    assert (len(fast.items), len(fast.opened), fast.items[0]["parts"]) == (1, 1, 2)


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_window_item_outlives_every_reprocessing_of_its_readings(env: Env, name: str) -> None:
    """A record can be processed again (retry, redrive from the stream, a mapping recreated at the trim
    horizon) for the stream's retention after its arrival, and its reading is up to the maximum age older:
    its window item must still be there, or the reading is stored again and folded twice (issue 20 review)."""
    config = PROFILES[name]
    settings = Settings.from_env(processor_environment(env.targets.runtime_names(), config))
    arrival = NOW
    oldest = format_instant(arrival - config.max_reading_age_seconds * 10**9 + 10**9)
    outcome = logic.parse_reading(
        reading("s1", "seg-a", oldest), arrival, max_age_ns=config.max_reading_age_seconds * 10**9
    )
    assert isinstance(outcome, logic.Reading)
    one = logic.Contribution(f"{1:056d}", "shardId-a", outcome)
    merge = logic.merge_window(
        [None], [one], window=logic.window_of(outcome, settings.window_seconds),
        window_seconds=settings.window_seconds, ttl_days=settings.window_item_ttl_days,
    )  # fmt: skip
    (item,) = merge.items
    assert int(item["expires_at"]) >= arrival // 10**9 + config.stream_retention_hours * 3600
