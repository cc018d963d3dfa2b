"""Contract version 2 at its edges, through the real handlers on moto (issue 11).

One named regression test per defect found against version 1 code, then a property test of the whole
path: hypothesis generates traffic (valid readings in every spelling, every kind of bad record,
duplicates across segments, threshold-exact values, long literals, mismatched topics, arrival times,
shuffles, retried batches) and the summary read back from the stores must equal ``tests.oracle``'s,
computed from the contract's text with exact fractions.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.common.aws import Backoff, Clients, batch_write
from lambdas.common.contract import NS_PER_SECOND, format_instant, parse_instant
from lambdas.folder.service import Folder, settings_from_env
from lambdas.processor.logic import DIGEST_CAP, OWNER_BYTES, PART_BUDGET_BYTES
from lambdas.processor.service import Processor
from lambdas.processor.service import Settings as ProcessorSettings
from lambdas.silence.service import Settings as SilenceSettings
from lambdas.silence.service import SilenceCheck
from stacks.config import PROFILES, EnvironmentConfig
from stacks.layout import folder_environment, processor_environment, silence_environment
from stacks.naming import Namer
from tests.aws_fixtures import NOW, Faults, reading, throttled
from tests.oracle import Sent, assert_summary, congestion, expected, stored_aggregate
from tools.local import simulate

DEV = PROFILES["dev"]
SECOND = NS_PER_SECOND
ITEM_LIMIT = 400 * 1024


@dataclasses.dataclass
class Path:
    """The whole data path on one moto backend, cleared between uses."""

    clients: Clients
    targets: simulate.Targets
    config: EnvironmentConfig = DEV
    partials_seen: dict[str, str] = dataclasses.field(default_factory=dict)
    sequence: int = 0
    cleanups: list[Any] = dataclasses.field(default_factory=list)

    def processor(self, attempts: int = 4, clock_ns: int = NOW) -> Processor:
        environment = processor_environment(self.targets.runtime_names(), self.config)
        return Processor(
            ProcessorSettings.from_env(environment),
            clients=self.clients,
            backoff=Backoff(attempts=attempts, sleep=lambda _: None),
            clock=lambda: clock_ns,
        )

    def folder(self) -> Folder:
        environment = folder_environment(self.targets.runtime_names(), self.config)
        return Folder(settings_from_env(environment), clients=self.clients,
                      backoff=Backoff(attempts=3, sleep=lambda _: None), clock=lambda: NOW)  # fmt: skip

    def event(self, sent: Sequence[Sent]) -> dict[str, Any]:
        records = []
        for message in sent:
            self.sequence += 1
            records.append(
                {
                    "SequenceNumber": f"{self.sequence:056d}",
                    "PartitionKey": message.thing,
                    "Data": message.payload,
                    "ApproximateArrivalTimestamp": datetime.fromtimestamp(message.arrival_ns / SECOND, UTC),
                }
            )
        event = simulate.kinesis_event("shardId-000000000000", records, "us-east-1", "arn:aws:kinesis:x")
        for record, message in zip(event["Records"], sent, strict=True):  # exact to the nanosecond
            record["kinesis"]["approximateArrivalTimestamp"] = Decimal(message.arrival_ns) / SECOND
        return event

    def alert(self) -> dict[str, Any]:
        """The folder over the partials sent since the last call (every shard's failures together)."""
        folder = self.folder()
        failures = [f for e in simulate.partials_events(self.clients, self.targets, self.partials_seen)
                    for f in folder.handle(e)["batchItemFailures"]]  # fmt: skip
        return {"batchItemFailures": failures}

    def check(self) -> dict[str, Any]:
        """One run of the silence check at ``NOW`` (the local run's ``--now``)."""
        environment = silence_environment(self.targets.runtime_names(), self.config)
        check = SilenceCheck(SilenceSettings.from_env(environment), clients=self.clients,
                             backoff=Backoff(attempts=3, sleep=lambda _: None), clock=lambda: NOW)  # fmt: skip
        return check.handle({})

    def summary(self, records_in: int) -> dict[str, Any]:
        """What the stores hold, after the silence check ran at ``NOW`` (as the local run ends)."""
        self.check()
        return simulate.summarize(
            self.clients,
            self.targets,
            records_in,
            simulate.read_alerts(self.clients, self.queue),
            self.config.aggregation_window_seconds,
        )

    def aggregates(self) -> dict[str, dict[str, Any]]:
        items = simulate.scan(self.clients, self.targets.segment_aggregates_table)
        return {f"{i['segment_id']}:{i['window_start']}": i for i in items}

    def windows(self) -> list[dict[str, Any]]:
        """The window items (not the shards' partials marks)."""
        return [i for i in simulate.scan(self.clients, self.targets.sensor_windows_table) if "segments" in i]

    def clear(self) -> None:
        """Fresh tables, an empty quarantine and alert queue (the partials read so far stay read)."""
        dynamodb = self.clients["dynamodb"]
        targets = self.targets
        for table in (targets.sensor_windows_table, targets.segment_aggregates_table, targets.sensor_outages_table,
                      targets.fleet_table):  # fmt: skip
            dynamodb.delete_table(TableName=table)
        simulate.create_tables(Namer(self.targets.environment), self.clients)
        simulate.partials_events(self.clients, self.targets, self.partials_seen)
        s3 = self.clients["s3"]
        for obj in s3.list_objects_v2(Bucket=self.targets.quarantine_bucket).get("Contents", []):
            s3.delete_object(Bucket=self.targets.quarantine_bucket, Key=obj["Key"])
        simulate.read_alerts(self.clients, self.queue)

    @property
    def queue(self) -> str:
        return self.clients["sqs"].get_queue_url(QueueName=f"tap-simulate-alerts-{self.targets.environment}")[
            "QueueUrl"
        ]


@pytest.fixture(scope="module")
def world() -> Iterator[Path]:
    with simulate.in_moto("dev", DEV) as (clients, targets):
        simulate.subscribe_alert_queue(clients, targets)
        yield Path(clients, targets)


@pytest.fixture
def path(world: Path) -> Iterator[Path]:
    world.clear()
    world.config = DEV
    yield world
    while world.cleanups:
        world.cleanups.pop()()


def at(timestamp: str, offset_s: int = 0) -> int:
    return parse_instant(timestamp) + offset_s * SECOND


def own(payload: bytes, arrival_ns: int = NOW) -> Sent:
    return Sent(simulate.thing_of(payload), payload, arrival_ns)


def run(path: Path, sent: Sequence[Sent]) -> dict[str, Any]:
    assert path.processor().handle(path.event(sent)) == {"batchItemFailures": []}
    assert path.alert() == {"batchItemFailures": []}
    summary = path.summary(len(sent))
    assert_summary(summary, expected(sent, now_ns=NOW))
    return summary


# ------------------------------------------------------------------------ one test per defect found


def test_a_retried_future_reading_stays_quarantined_because_time_is_judged_at_arrival(path: Path) -> None:
    ahead = format_instant(NOW + 301 * SECOND)
    event = path.event([own(reading("s1", "seg-a", ahead))])
    for clock in (NOW, NOW + 3 * SECOND, NOW + 6 * 3600 * SECOND):  # Lambda's retry, hours later
        assert path.processor(clock_ns=clock).handle(event) == {"batchItemFailures": []}
    assert path.windows() == []
    assert path.summary(1)["quarantined"]["future_timestamp"] == 1


def test_one_instant_in_two_segments_is_one_reading_and_one_duplicate(path: Path) -> None:
    first = reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=7)
    copy = reading("s1", "seg-b", "2026-06-01T13:50:00+02:00", vehicles=99)  # same instant, other segment
    summary = run(path, [own(first), own(copy)])
    assert (summary["accepted"], summary["duplicates"]) == (1, 1)
    assert list(summary["segments"]) == ["seg-a"] and summary["segments"]["seg-a"]["vehicles"] == 7


def test_a_sensor_cannot_speak_for_another(path: Path) -> None:
    forged = Sent("s2", reading("s1", "seg-a", "2026-06-01T11:50:00Z"), NOW)
    summary = run(path, [forged, own(reading("s1", "seg-a", "2026-06-01T11:51:00Z"))])
    assert summary["quarantined"]["sensor_mismatch"] == 1 and summary["accepted"] == 1


def _hour_of_one_second_readings(path: Path, occupancy: float) -> list[dict[str, Any]]:
    path.config = dataclasses.replace(DEV, aggregation_window_seconds=3600)
    start = parse_instant("2026-06-01T10:00:00Z")
    sent = [
        own(reading("s1", "seg-a", format_instant(start + i * SECOND), speed=45.123456789, occupancy=occupancy))
        for i in range(3600)
    ]
    for chunk in range(0, 3600, 900):
        assert path.processor().handle(path.event(sent[chunk : chunk + 900])) == {"batchItemFailures": []}
    windows = path.windows()
    assert {int(w["parts"]) for w in windows if "parts" in w} == {len(windows)}
    for item in windows:
        size = sum(
            len(k) + (len(v) if isinstance(v, bytes) else len(json.dumps(v, default=str))) for k, v in item.items()
        )
        assert size < PART_BUDGET_BYTES < ITEM_LIMIT, (item["window_part"], size)
    assert path.alert() == {"batchItemFailures": []}
    assert path.summary(3600)["accepted"] == 3600
    assert int(path.aggregates()["seg-a:2026-06-01T10:00:00Z"]["readings"]) == 3600
    return windows


def test_a_one_hour_window_of_one_second_readings_is_one_compact_item(path: Path) -> None:
    (item,) = _hour_of_one_second_readings(path, 12.5)
    assert len(item["rows"]) == 3600 * 15, "15 bytes a reading: its offset and its owner's digest"


def test_a_window_whose_sums_could_outgrow_the_item_limit_is_split_into_parts(path: Path) -> None:
    """Each reading's occupancy (1.25E-7) can widen its segment's sums by a block of its own (a sparse sum):
    the parts close on that worst case, so no write ever passes 400 KB, whatever the readings."""
    windows = _hour_of_one_second_readings(path, 1.25e-7)
    assert len(windows) >= 2, "the window's readings are split over parts"


def test_republishing_one_reading_many_times_counts_each_copy_once_in_a_small_item(path: Path) -> None:
    """The first DIGEST_CAP copies are remembered by their record's digest (9 bytes), so a retry or a redrive
    of one is told apart from a new copy; a flood beyond them is counted against a mark per shard, so one
    sensor's copies never grow its window past ~10 KB (and never into parts its shard's batches would read)."""
    payload = reading("s1", "seg-a", "2026-06-01T11:50:00Z")
    events = [path.event([own(payload)] * 2000) for _ in range(5)]
    for event in events:
        assert path.processor().handle(event) == {"batchItemFailures": []}
    for event in events[1:3]:  # retried: nothing counted twice
        assert path.processor().handle(event) == {"batchItemFailures": []}
    (item,) = path.windows()
    assert int(item["duplicates"]) == 9_999 and len(item["dups"]) == DIGEST_CAP * OWNER_BYTES
    assert "hwm" in item, "the flood's copies are counted against a mark"
    size = sum(len(k) + (len(v) if isinstance(v, bytes) else len(json.dumps(v, default=str))) for k, v in item.items())
    assert size < DIGEST_CAP * OWNER_BYTES + 2_000


def test_an_item_dynamodb_refuses_fails_only_its_own_records(path: Path) -> None:
    def refuse(_: int, request: dict[str, Any]) -> Any:
        puts = [r["PutRequest"]["Item"] for rs in request["RequestItems"].values() for r in rs]
        if any(p.get("sensor_id", {}).get("S") == "bad" for p in puts):  # its window item
            return 400, {"Error": {"Code": "ValidationException", "Message": "Item size has exceeded the maximum"}}
        return None

    faults = Faults(path.clients["dynamodb"], {"BatchWriteItem": refuse})
    path.cleanups.append(faults.remove)
    sent = [own(reading(f"s{i}", "seg-a", "2026-06-01T11:50:00Z")) for i in range(30)]
    sent.insert(7, own(reading("bad", "seg-a", "2026-06-01T11:50:00Z")))
    failures = path.processor().handle(path.event(sent))["batchItemFailures"]
    assert len(failures) == 1
    assert {w["sensor_id"] for w in path.windows()} == {f"s{i}" for i in range(30)}


def test_unprocessed_items_are_matched_by_their_key_not_their_content(path: Path) -> None:
    calls = {"n": 0}

    def keys_only(n: int, request: dict[str, Any]) -> Any:
        calls["n"] = n
        if n == 1:  # DynamoDB hands one item back, its attributes in another form than they were sent
            (table, (first, *_)), *_ = request["RequestItems"].items()
            item = {k: v for k, v in first["PutRequest"]["Item"].items() if k in ("window_part", "sensor_id")}
            return 200, {"UnprocessedItems": {table: [{"PutRequest": {"Item": {**item, "extra": {"S": "x"}}}}]}}
        return None

    path.cleanups.append(Faults(path.clients["dynamodb"], {"BatchWriteItem": keys_only}).remove)
    table = path.targets.sensor_windows_table
    puts = [(table, {"sensor_id": {"S": f"s{i}"}, "window_part": {"S": "w#000"}, "n": {"N": "1"}}) for i in range(3)]
    failed = batch_write(path.clients["dynamodb"], puts, Backoff(attempts=2, sleep=lambda _: None),
                         {table: ("sensor_id", "window_part")})  # fmt: skip
    assert failed == [] and calls["n"] == 2


def test_a_window_in_year_zero_fails_nothing_in_the_folder(path: Path) -> None:
    early = "0001-01-01T00:00:00+00:01"  # UTC 0000-12-31T23:59, a window labelled in year 0
    arrival = parse_instant("0001-01-01T00:00:00Z")
    sent = [Sent("s1", reading("s1", "seg-a", early, speed=5.0, occupancy=90.0), arrival)]
    assert path.processor().handle(path.event(sent)) == {"batchItemFailures": []}
    assert path.alert() == {"batchItemFailures": []}
    assert "seg-a:0000-12-31T23:55:00Z" in path.aggregates()
    assert_summary(path.summary(1), expected(sent, now_ns=NOW))


def test_thresholds_are_compared_exactly(path: Path) -> None:
    ratio = reading(
        "s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=1, speed=84.4875, occupancy=0, speed_limit_kmh=112.65
    )
    occupancy = [
        reading(f"o{i}", "seg-b", "2026-06-01T11:50:00Z", vehicles=1, speed=50, occupancy=value)
        for i, value in enumerate((50, 50, 49.99999999999999))
    ]
    summary = run(path, [own(ratio), *map(own, occupancy)])
    assert summary["segments"]["seg-a"]["congestion_level"] == "free"  # 84.4875 / 112.65 is exactly 0.75
    assert summary["segments"]["seg-b"]["congestion_level"] == "moderate"  # the mean is just below 50
    assert congestion(summary) == []


def test_number_literals_of_any_length(path: Path) -> None:
    valid = json.dumps({"sensor_id": "s1", "segment_id": "seg-a", "timestamp": "2026-06-01T11:50:00Z",
                        "vehicle_count": 3, "average_speed_kmh": 40, "occupancy_percent": 10})  # fmt: skip
    extra = valid[:-1].encode() + b', "x": ' + b"7" * 5000 + b"}"
    count = valid.replace('"vehicle_count": 3', '"vehicle_count": ' + "9" * 5000).encode()
    fraction = valid.replace('"average_speed_kmh": 40', '"average_speed_kmh": 40.' + "3" * 3000).encode()
    summary = run(path, [own(extra), own(count), own(fraction.replace(b"11:50", b"11:51"))])
    assert summary["accepted"] == 2 and summary["quarantined"]["schema_violation"] == 1
    assert summary["quarantined"]["malformed_json"] == 0


def test_a_failed_aggregate_write_fails_only_its_window_and_is_not_counted(path: Path) -> None:
    path.processor().handle(path.event([own(reading("s1", "seg-a", "2026-06-01T11:50:00Z"))]))
    path.processor().handle(path.event([own(reading("s2", "seg-b", "2026-06-01T11:50:00Z"))]))
    metrics: list[Any] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        metrics.append(params["MetricData"])

    events = path.clients["cloudwatch"].meta.events
    events.register("provide-client-params.cloudwatch.PutMetricData", record)
    path.cleanups.append(lambda: events.unregister("provide-client-params.cloudwatch.PutMetricData", record))

    def seg_a_throttled(_: int, request: dict[str, Any]) -> Any:
        return throttled() if request["Item"]["segment_id"]["S"] == "seg-a" else None

    path.cleanups.append(Faults(path.clients["dynamodb"], {"PutItem": seg_a_throttled}).remove)
    (event,) = simulate.partials_events(path.clients, path.targets, path.partials_seen)
    response = path.folder().handle(event)
    (seg_a,) = [r["kinesis"]["sequenceNumber"] for r in event["Records"]
                if json.loads(base64.b64decode(r["kinesis"]["data"]))["segment"] == "seg-a"]  # fmt: skip
    assert response["batchItemFailures"] == [{"itemIdentifier": seg_a}]
    assert list(path.aggregates()) == ["seg-b:2026-06-01T11:50:00Z"], "the other window is written"
    (data,) = metrics
    counted = {d["Dimensions"][0]["Value"]: d["Value"] for d in data if d["MetricName"] == "SegmentWindows"}
    assert counted == {"free": 1}, "only the window written is counted"


def test_a_week_old_reading_is_stale_and_never_stored_or_alerted_again(path: Path) -> None:
    week_old = format_instant(NOW - 7 * 86_400 * SECOND)
    jam = reading("s1", "seg-a", week_old, speed=5.0, occupancy=90.0)
    # first published, then republished from the sensor's buffer after its state would have expired
    summary = run(path, [own(jam), own(jam, NOW + 8 * 86_400 * SECOND)])
    assert summary["quarantined"]["stale_timestamp"] == 2 and congestion(summary) == []
    assert path.windows() == []


# -------------------------------------------------------------------------------- the property test

SENSORS = ("s1", "s2", "s3")
SEGMENTS = ("seg-a", "seg-b")
BASE = parse_instant("2026-06-01T11:40:00Z")
ZONES = [("Z", 0), ("z", 0), ("+02:00", 120), ("-05:30", -330), ("+00:01", 1)]
SPEEDS = ["8", "12.5", "25", "37.5", "45.0", "84.4875", "1e1", "40." + "0" * 60 + "1", "300", "0"]
OCCUPANCIES = ["0", "24.99", "25", "49.99999999999999", "50", "80", "1e-300", "12." + "5" * 40]
LIMITS = [None, "50", "112.65", "5", "200"]


@st.composite
def stamp(draw: st.DrawFn, instant: int) -> str:
    """``instant`` written in any of the contract's spellings: offset, letter case, fraction digits."""
    zone, minutes = draw(st.sampled_from(ZONES))
    local = format_instant(instant + minutes * 60 * SECOND)
    nanos = f"{instant % SECOND:09d}"
    digits = draw(st.integers(len(nanos.rstrip("0")), 9))
    fraction = "." + nanos[:digits] if digits else ""
    return f"{local[:10]}{draw(st.sampled_from('Tt'))}{local[11:19]}{fraction}{zone}"


@st.composite
def traffic(draw: st.DrawFn) -> list[Sent]:
    sent: list[Sent] = []
    for _ in range(draw(st.integers(1, 14))):
        kind = draw(st.sampled_from(["reading"] * 5 + ["copy", "malformed", "schema", "mismatch", "future", "stale"]))
        sensor = draw(st.sampled_from(SENSORS))
        arrival = NOW + draw(st.integers(-60, 60)) * SECOND
        instant = BASE + draw(st.integers(0, 20 * 60)) * SECOND + draw(st.sampled_from([0, 500_000_000, 1]))
        document: dict[str, Any] = {
            "sensor_id": sensor,
            "segment_id": draw(st.sampled_from(SEGMENTS)),
            "timestamp": draw(stamp(instant)),
            "vehicle_count": draw(st.sampled_from([0, 1, 3, 10, 10000])),
            "average_speed_kmh": Decimal(draw(st.sampled_from(SPEEDS))),
            "occupancy_percent": Decimal(draw(st.sampled_from(OCCUPANCIES))),
        }
        limit = draw(st.sampled_from(LIMITS))
        if limit is not None:
            document["speed_limit_kmh"] = Decimal(limit)
        if draw(st.booleans()):
            document["note"] = Decimal("8" * draw(st.sampled_from([3, 5000])))
        thing = sensor
        if kind == "copy" and sent:
            previous = draw(st.sampled_from(sent))
            try:
                document = {**_loads(previous.payload), "segment_id": draw(st.sampled_from(SEGMENTS))}
                thing = previous.thing
            except (ValueError, AttributeError):
                pass
        elif kind == "malformed":
            sent.append(Sent(thing, draw(st.sampled_from([b"{oops", b"[]", b"", b'"x"'])), arrival))
            continue
        elif kind == "schema":
            document[draw(st.sampled_from(["vehicle_count", "timestamp", "occupancy_percent"]))] = draw(
                st.sampled_from([-1, "2016-12-31T23:59:60Z", Decimal("100.0000001"), "2026-06-01T11:50:00.1234567890Z"])
            )
        elif kind == "mismatch":
            thing = draw(st.sampled_from([s for s in SENSORS if s != sensor]))
        elif kind == "future":
            document["timestamp"] = format_instant(arrival + 301 * SECOND)
        elif kind == "stale":
            document["timestamp"] = format_instant(arrival - DEV.max_reading_age_seconds * SECOND - SECOND)
        sent.append(Sent(thing, _dumps(document), arrival))
    return sent


def _dumps(document: dict[str, Any]) -> bytes:
    text = json.dumps(document, default=lambda d: f"@@{d}@@")
    return text.replace('"@@', "").replace('@@"', "").encode()  # Decimals as the literals they are


def _loads(payload: bytes) -> dict[str, Any]:
    document = json.loads(payload, parse_float=Decimal, parse_int=lambda s: int(s) if len(s) < 4000 else Decimal(s))
    if not isinstance(document, dict):
        raise ValueError("not an object")
    return document


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(sent=traffic(), data=st.data())
def test_the_whole_path_equals_the_oracle_for_any_traffic(world: Path, sent: list[Sent], data: st.DataObject) -> None:
    world.clear()
    world.config = DEV
    order = data.draw(st.permutations(range(len(sent))), label="shuffle")
    sent = [sent[i] for i in order]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(sent) - 1)), max_size=3), label="batches"))
    batches = [sent[a:b] for a, b in zip([0, *cuts], [*cuts, len(sent)], strict=True) if sent[a:b]]
    processor = world.processor()
    for batch in batches:
        event = world.event(batch)
        assert processor.handle(event) == {"batchItemFailures": []}
        if data.draw(st.booleans(), label="retried"):  # Lambda hands the same batch again
            assert processor.handle(event) == {"batchItemFailures": []}
    folder = world.folder()
    for event in simulate.partials_events(world.clients, world.targets, world.partials_seen):
        records = event["Records"]
        split = data.draw(st.integers(0, len(records)), label="folder batches")
        for part in (records[:split], records[split:]):
            assert folder.handle({"Records": part}) == {"batchItemFailures": []}
        if data.draw(st.booleans(), label="stream replayed"):
            assert folder.handle(event) == {"batchItemFailures": []}
    want = expected(sent, now_ns=NOW)
    summary = world.summary(len(sent))
    assert_summary(summary, want)
    stored = world.aggregates()
    for window, aggregate in want["windows"].items():
        item = stored[window]
        got = stored_aggregate(item)
        assert got == aggregate, window
        assert (item.get("alert_state") == "sent") is (
            window in {f"{a['segment_id']}:{a['window_start']}" for a in congestion(summary)}
        )
