"""End to end through ``tools.local.simulate``: the real handlers over the whole path on moto, serial and parallel.

The expected summary is computed independently from the input by ``tests.oracle`` (the contract's text,
exact fractions).
"""

from __future__ import annotations

import gc
import json
import sys
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from lambdas.folder import handler as folder_handler
from lambdas.processor import handler as processor_handler
from stacks.capacity import LAMBDA_PAYLOAD_BYTES
from tests.aws_fixtures import moto_env
from tests.oracle import Sent, assert_summary, expected
from tools.local import simulate

NOW = "2026-06-01T12:00:00Z"


@pytest.fixture(autouse=True)
def fresh_handlers() -> Iterator[None]:
    yield
    processor_handler.install(None)
    folder_handler.install(None)


def sent(messages: list[simulate.Message], now: str = NOW) -> list[Sent]:
    """What the oracle is told: each message as published, arriving at ``--now``."""
    return [Sent(m.thing, m.payload, simulate.parse_instant(now)) for m in messages]


def run_main(tmp_path: Path, *args: str) -> dict[str, Any]:
    summary_file = tmp_path / f"summary-{len(list(tmp_path.iterdir()))}.json"
    assert simulate.main([*args, "--now", NOW, "--summary", str(summary_file)]) == 0
    summary: dict[str, Any] = json.loads(summary_file.read_text())
    return summary


def generated(sensors: int, minutes: int, seed: int = 7) -> list[simulate.Message]:
    start = simulate.parse_instant(NOW) - minutes * 60 * 1_000_000_000
    return simulate.generate(sensors, minutes, start_ns=start, now_ns=simulate.parse_instant(NOW), seed=seed)


def test_generated_traffic_end_to_end(tmp_path: Path) -> None:
    summary = run_main(tmp_path, "--sensors", "24", "--minutes", "40")
    want = expected(sent(generated(24, 40)))
    assert_summary(summary, want)
    assert all(v > 0 for v in want["quarantined"].values()), "the generator makes every kind of bad record"
    assert want["duplicates"] > 0 and want["congested_windows"], "the generator makes duplicates and congestion"
    assert len(summary["alerts"]) == len(want["congested_windows"]), "one alert per congested window, no other"
    assert summary["window_seconds"] == 300
    published = {(m["metric"], tuple(sorted(m["dimensions"].items()))): m["sum"] for m in summary["run"]["metrics"]}
    assert published[("CongestionAlerts", ())] == len(summary["alerts"])
    assert summary["run"]["records_to_dlq"] == 0


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_parallel_shards_give_the_serial_summary(tmp_path: Path, seed: int) -> None:
    """Every readings shard and every partials shard on its own thread, as Lambda runs them: same summary."""
    common = ("--sensors", "24", "--minutes", "30", "--seed", str(seed))
    serial = run_main(tmp_path, *common, "--shards", "1")
    want = expected(sent(generated(24, 30, seed)))
    assert_summary(serial, want)
    assert serial["run"]["folder_write_conflicts"] == 0
    for shards in (4, 8):
        parallel = run_main(tmp_path, *common, "--shards", str(shards), "--parallel")
        assert parallel["run"]["shards"] == shards and parallel["run"]["folder_lanes"] == shards
        assert parallel["run"]["folder_write_conflicts"] == 0, "one writer per segment window"
        assert {k: v for k, v in parallel.items() if k != "run"} == {k: v for k, v in serial.items() if k != "run"}
        assert_summary(parallel, want)


def test_input_file_is_sent_as_is(tmp_path: Path) -> None:
    lines = [
        b'{"sensor_id": "s1", "segment_id": "seg", "timestamp": "2026-06-01T11:50:00Z", "vehicle_count": 4,'
        b' "average_speed_kmh": 12.5, "occupancy_percent": 85, "speed_limit_kmh": 60}',
        b"",
        b"{oops",
        b'{"sensor_id": "s1", "segment_id": "seg", "timestamp": "2026-06-01T13:50:00+02:00", "vehicle_count": 4,'
        b' "average_speed_kmh": 12.5, "occupancy_percent": 85}',
        b'{"sensor_id": "s2", "segment_id": "seg", "timestamp": "2026-06-01T11:51:00Z", "vehicle_count": true,'
        b' "average_speed_kmh": 12.5, "occupancy_percent": 85}',
        b'{"sensor_id": "s2", "segment_id": "seg", "timestamp": "2026-06-01T12:59:00Z", "vehicle_count": 1,'
        b' "average_speed_kmh": 12.5, "occupancy_percent": 85}',
        b'{"sensor_id": "s3", "segment_id": "seg", "timestamp": "2026-05-30T11:51:00Z", "vehicle_count": 1,'
        b' "average_speed_kmh": 12.5, "occupancy_percent": 85}',
    ]
    source = tmp_path / "readings.ndjson"
    source.write_bytes(b"\n".join(lines) + b"\n")
    summary = run_main(tmp_path, "--input", str(source))
    assert_summary(summary, expected(sent(simulate.own_topic(lines))))
    assert summary["quarantined"] == {
        "malformed_json": 2,
        "schema_violation": 1,
        "sensor_mismatch": 0,
        "future_timestamp": 1,
        "stale_timestamp": 1,
    }
    assert (summary["accepted"], summary["duplicates"]) == (1, 1)
    # s1's only reading (11:50) is more than 3 x 60 s before --now: s1 is silent, with one outage alert.
    assert summary["silent_sensors"] == ["s1"]
    assert summary["alerts"] == [
        {"alert_id": "dev:seg:2026-06-01T11:50:00Z", "segment_id": "seg", "window_start": "2026-06-01T11:50:00Z"},
        {
            "alert_id": "dev:silent:s1:2026-06-01T11:50:00.000000000Z",
            "alert_type": "sensor_silent",
            "last_reading_at": "2026-06-01T11:50:00.000000000Z",
            "sensor_id": "s1",
        },
    ]


def test_envelopes_carry_the_topic_and_its_thing_is_the_partition_key(tmp_path: Path) -> None:
    """Topics as a sensor publishes them (Basic Ingest to dev's rule) or as the rule sees them."""

    def envelope(thing: str, payload: bytes) -> bytes:
        published = "$aws/rules/tap_ingest_dev/" if thing == "s1" else ""
        topic = f"{published}tap/dev/sensors/{thing}/readings"
        return json.dumps({"topic": topic, "payload": payload.decode()}).encode()

    reading = (
        b'{"sensor_id": "s1", "segment_id": "seg", "timestamp": "2026-06-01T11:50:00Z", "vehicle_count": 4,'
        b' "average_speed_kmh": 12.5, "occupancy_percent": 85}'
    )
    lines = [envelope("s1", reading), envelope("s2", reading), envelope("s1", b"not json")]
    source = tmp_path / "envelopes.ndjson"
    source.write_bytes(b"\n".join(lines) + b"\n")
    summary = run_main(tmp_path, "--input", str(source), "--input-format", "envelope")
    messages = [simulate.Message("s1", reading), simulate.Message("s2", reading), simulate.Message("s1", b"not json")]
    assert_summary(summary, expected(sent(messages)))
    assert summary["quarantined"]["sensor_mismatch"] == 1 and summary["accepted"] == 1
    assert simulate.publish_topic("dev", "s1") == "$aws/rules/tap_ingest_dev/tap/dev/sensors/s1/readings"
    bad = tmp_path / "bad.ndjson"
    for wrong in (
        "tap/prod/sensors/s1/readings",  # another environment
        "$aws/rules/tap_ingest_prod/tap/dev/sensors/s1/readings",  # another environment's rule
        "$aws/rules/tap_ingest_dev/sensors/s1/readings",  # not a readings topic behind the prefix
    ):
        bad.write_text(json.dumps({"topic": wrong, "payload": "{}"}) + "\n")
        with pytest.raises(ValueError, match=r"bad\.ndjson:1: topic must be \$aws/rules/tap_ingest_dev/"):
            simulate.read_input(bad, "envelope", "dev")
        assert simulate.main(["--input", str(bad), "--input-format", "envelope", "--now", NOW]) == 2


def test_replaying_everything_changes_nothing_and_sends_no_second_alert() -> None:
    config = simulate.PROFILES["dev"]
    now = simulate.parse_instant(NOW)
    messages = simulate.generate(12, 20, start_ns=now - 20 * 60 * 1_000_000_000, now_ns=now)
    options = simulate.RunOptions(messages, now, config.batch_size, config)
    with moto_env() as env:
        first = simulate.run(env.clients, env.targets, options)
        tables = {t: simulate.scan(env.clients, t) for t in
                  (env.targets.sensor_windows_table, env.targets.segment_aggregates_table)}  # fmt: skip
        # Replay the whole readings stream through the processor (what it sends again is skipped),
        shards = simulate.kinesis_records(env.clients, env.targets.stream_name)
        for shard, records in shards.items():
            event = simulate.kinesis_event(shard, records, "us-east-1", "arn:aws:kinesis:us-east-1:1:stream/x", now)
            assert processor_handler.handler(event, None) == {"batchItemFailures": []}
        # and the whole partials stream through the folder
        for shard, records in simulate.kinesis_records(env.clients, env.targets.partials_stream).items():
            event = simulate.kinesis_event(shard, records, "us-east-1", "arn:aws:kinesis:us-east-1:1:stream/p", now)
            assert folder_handler.handler(event, None) == {"batchItemFailures": []}
        assert {t: simulate.scan(env.clients, t) for t in tables} == tables
        queue = env.clients["sqs"].get_queue_url(QueueName="tap-simulate-alerts-dev")["QueueUrl"]
        assert simulate.read_alerts(env.clients, queue) == [], "no alert sent twice"
        assert first["alerts"]


def test_the_local_account_is_the_one_moto_answers_for() -> None:
    from moto.core import DEFAULT_ACCOUNT_ID  # noqa: PLC0415

    assert simulate.ACCOUNT_ID == DEFAULT_ACCOUNT_ID


def test_the_operator_tools_do_not_load_moto() -> None:
    """``tools.redrive``, ``tools.smoke`` and ``tools.fleet`` run against real accounts with the plain packages:
    moto is a development dependency, and importing it adds its stub to every botocore client made afterwards."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    probe = (
        "import sys, tools.redrive, tools.smoke, tools.synth_diff, tools.capacity, tools.eject, tools.cdk_equivalence, "
        "tools.fleet; "
        "print(sorted(m for m in sys.modules if m == 'moto' or m.startswith('moto.')))"
    )
    root = Path(__file__).resolve().parents[1]
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=root, check=True, capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]"


def test_generated_traffic_starts_on_the_minute_before_its_span() -> None:
    at = simulate.parse_instant
    assert simulate.first_minute(at("2026-06-01T12:00:00Z"), 10) == at("2026-06-01T11:50:00Z")
    assert simulate.first_minute(at("2026-06-01T12:00:30.5Z"), 10) == at("2026-06-01T11:50:00Z")
    assert simulate.first_minute(at("2026-06-01T12:00:59Z"), 1) == at("2026-06-01T11:59:00Z")


def test_one_sensors_decoy_readings_cannot_stop_a_jams_alert_in_the_same_segment_window() -> None:
    """Issue 20's defect: ~60 KB of one sensor's valid readings (occupancy ``1E-9997`` beside ``100``: sums of
    10,000 digits; decoy segments so that each of its window parts holds two of them) used to grow the segment
    window's aggregate item past DynamoDB's 400 KB, so that every write of it failed and the jam that other
    sensors report in the same window was never alerted. The aggregate must not grow with anybody's parts."""
    now = simulate.parse_instant(NOW)
    stamp = "2026-06-01T11:50:{:02d}.{:03d}Z"
    decoy = []
    for group in range(45):
        for n in range(7):
            decoy.append({"segment_id": f"d{group}-{n}", "occupancy_percent": 1})
        decoy += [
            {"segment_id": "seg-j", "occupancy_percent": "1E-9997"},
            {"segment_id": "seg-j", "occupancy_percent": 100},
        ]
    payloads = []
    for i, fields in enumerate(decoy):
        occupancy = fields["occupancy_percent"]
        text = json.dumps({"sensor_id": "decoy", "segment_id": fields["segment_id"],
                           "timestamp": stamp.format(i // 1000, i % 1000), "vehicle_count": 0,
                           "average_speed_kmh": 1, "occupancy_percent": "OCC"})  # fmt: skip
        payloads.append(text.replace('"OCC"', str(occupancy)).encode())
    messages = [simulate.Message("decoy", p) for p in payloads]
    for sensor in ("jam-1", "jam-2"):
        body = {"sensor_id": sensor, "segment_id": "seg-j", "timestamp": "2026-06-01T11:52:00Z",
                "vehicle_count": 20, "average_speed_kmh": 5, "occupancy_percent": 90}  # fmt: skip
        messages.append(simulate.Message(sensor, json.dumps(body).encode()))
    assert sum(len(m.payload) for m in messages) < 64_000
    config = simulate.PROFILES["dev"]
    with moto_env() as env:
        summary = simulate.run(env.clients, env.targets, simulate.RunOptions(messages, now, config.batch_size, config))
    want = expected(sent(messages))
    assert "seg-j:2026-06-01T11:50:00Z" in want["congested_windows"]
    assert_summary(summary, want)


def test_a_batch_ends_where_its_event_would_pass_six_megabytes() -> None:
    """An event source mapping's batch ends at Lambda's 6 MB payload, whatever its batch size: 10,000 partials
    of ~280 bytes do not fit (~870 bytes each in the event), so the local mapping hands over what does."""
    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/tap-partials-dev"
    records = [
        {
            "Data": b"x" * (250 + i % 60),
            "PartitionKey": f"segment-{i % 977}",
            "SequenceNumber": str(49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000_000 + i),
        }
        for i in range(10_000)
    ]

    def event(batch: Any) -> dict[str, Any]:
        return simulate.kinesis_event("shardId-000000000000", batch, "us-east-1", arn, 1_780_000_000_000_000_000)

    batch = simulate.within_payload(records, event)
    assert 6_000 < len(batch) < len(records)
    assert len(json.dumps(event(batch))) <= LAMBDA_PAYLOAD_BYTES < len(json.dumps(event(records[: len(batch) + 1])))
    assert simulate.within_payload(records[:100], event) == records[:100]
    assert simulate.within_payload(records[:1], event, limit=10) == records[:1]  # one record at least
    cut = simulate.chunks(records, 10_000, event)  # the whole shard, as a mapping that never fails cuts it
    assert cut[0] == batch and [r for c in cut for r in c] == records
    assert all(len(json.dumps(event(c))) <= LAMBDA_PAYLOAD_BYTES for c in cut)
    assert [len(c) for c in simulate.chunks(records[:250], 100, event)] == [100, 100, 50]


def test_parallel_lanes_hand_over_the_gil_less_often_and_the_interval_comes_back() -> None:
    before = sys.getswitchinterval()
    with simulate.lane_switches(parallel=True):
        assert sys.getswitchinterval() == pytest.approx(simulate.LANE_SWITCH_SECONDS)
    assert sys.getswitchinterval() == before
    with simulate.lane_switches(parallel=False):
        assert sys.getswitchinterval() == before
    with pytest.raises(RuntimeError), simulate.lane_switches(parallel=True):
        raise RuntimeError("a lane failed")
    assert sys.getswitchinterval() == before


class Node:
    next: Node | None = None


def test_a_local_run_collects_garbage_less_often_and_the_thresholds_come_back() -> None:
    before = gc.get_threshold()
    with simulate.spaced_collections() as settle:
        assert gc.get_threshold() == simulate.GC_THRESHOLD
        frozen = gc.get_freeze_count()
        assert frozen > 0  # what existed before the run is not scanned again
        survivors = [[n] for n in range(1000)]  # a round's items, still held when it ends
        node = Node()
        node.next = node  # and its garbage: a cycle nothing holds
        gone = weakref.ref(node)
        del node
        settle()
        assert gc.get_freeze_count() >= frozen + len(survivors)
        assert gone() is None, "a round's garbage cycles are collected, not frozen"
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_run_in_moto_settles_what_each_round_leaves() -> None:
    """``run_in_moto`` hands ``spaced_collections``' ``settle`` to the run, which calls it once a round."""
    config = simulate.PROFILES["dev"]
    now = simulate.parse_instant(NOW)
    messages = simulate.generate(8, 3, start_ns=simulate.first_minute(now, 3), now_ns=now)
    options = simulate.RunOptions(messages, now, config.batch_size, config, check_every_seconds=60)
    rounds = len(simulate.rounds(messages, now, 60))
    assert rounds >= 3
    settled: list[int] = []
    real = simulate.spaced_collections

    @contextmanager
    def counted() -> Iterator[Callable[[], None]]:
        with real() as settle:
            yield lambda: (settled.append(gc.get_freeze_count()), settle())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(simulate, "spaced_collections", counted)
        summary = simulate.run_in_moto("dev", options)
    assert len(settled) == rounds
    assert all(a < b for a, b in pairwise(settled)) and settled[0] > 0  # each round adds to what is frozen
    assert simulate.balanced(summary)
    assert options.after_round is None  # the caller's options are left as they were
    assert gc.get_freeze_count() == 0
