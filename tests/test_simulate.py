"""End to end through ``tools.simulate``: the real handlers over the whole path on moto.

The expected summary is computed here independently from the generated input: validity by the
JSON Schema oracle of ``test_contract``, identity and aggregates with exact fractions.
"""

from __future__ import annotations

import datetime
import json
import math
from collections import defaultdict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from lambdas.alert import handler as alert_handler
from lambdas.processor import handler as processor_handler
from tests.aws_fixtures import moto_env
from tests.test_contract import oracle_verdict
from tools import simulate

NOW = "2026-06-01T12:00:00Z"
NOW_DT = datetime.datetime.fromisoformat(NOW)


@pytest.fixture(autouse=True)
def fresh_handlers() -> Iterator[None]:
    yield
    processor_handler.install(None)
    alert_handler.install(None)


def level(vehicles: int, speed: float, occupancy: float, limit: float) -> str:
    ratio = speed / limit if vehicles else 1.0
    if vehicles == 0:
        return "free"
    for name, occ, r in (("severe", 80, 0.25), ("heavy", 50, 0.5), ("moderate", 25, 0.75)):
        if occupancy >= occ or ratio < r:
            return name
    return "free"


def expected_summary(payloads: list[bytes], window_seconds: int = 300) -> dict[str, Any]:
    quarantined = {"malformed_json": 0, "schema_violation": 0, "future_timestamp": 0}
    distinct: dict[tuple[str, datetime.datetime], dict[str, Any]] = {}
    duplicates = 0
    for payload in payloads:
        try:
            document = json.loads(payload, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        except ValueError:
            quarantined["malformed_json"] += 1
            continue
        verdict = oracle_verdict(document)
        if verdict != "valid":
            quarantined[verdict] += 1
            continue
        instant = datetime.datetime.fromisoformat(document["timestamp"].upper().replace("Z", "+00:00"))
        if (instant - NOW_DT).total_seconds() > 300:
            quarantined["future_timestamp"] += 1
            continue
        key = (document["sensor_id"], instant)
        if key in distinct:
            duplicates += 1
        else:
            distinct[key] = document

    def agg(docs: list[dict[str, Any]]) -> dict[str, Any]:
        vehicles = sum(int(d["vehicle_count"]) for d in docs)
        weighted = sum(int(d["vehicle_count"]) * Fraction(str(d["average_speed_kmh"])) for d in docs)
        speed = float(weighted / vehicles) if vehicles else 0.0
        occupancy = float(sum(Fraction(str(d["occupancy_percent"])) for d in docs) / len(docs))
        limit = float(min(Fraction(str(d.get("speed_limit_kmh", 50))) for d in docs))
        return {"readings": len(docs), "vehicles": vehicles, "average_speed_kmh": speed,
                "occupancy_percent": occupancy, "speed_limit_kmh": limit,
                "congestion_level": level(vehicles, speed, occupancy, limit)}  # fmt: skip

    by_segment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_window: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (_, instant), document in distinct.items():
        by_segment[document["segment_id"]].append(document)
        epoch = int(instant.timestamp())
        start = datetime.datetime.fromtimestamp(epoch - epoch % window_seconds, datetime.UTC)
        by_window[(document["segment_id"], start.strftime("%Y-%m-%dT%H:%M:%SZ"))].append(document)
    alerts = [
        {"segment_id": s, "window_start": w, "level": agg(docs)["congestion_level"]}
        for (s, w), docs in sorted(by_window.items())
        if agg(docs)["congestion_level"] in ("heavy", "severe")
    ]
    return {
        "records_in": len(payloads),
        "accepted": len(distinct),
        "duplicates": duplicates,
        "quarantined": quarantined,
        "segments": {s: agg(docs) for s, docs in sorted(by_segment.items())},
        "alerts": alerts,
    }


def assert_matches(summary: dict[str, Any], expected: dict[str, Any]) -> None:
    for key in ("records_in", "accepted", "duplicates", "quarantined", "alerts"):
        assert summary[key] == expected[key], key
    assert summary["segments"].keys() == expected["segments"].keys()
    for segment, values in expected["segments"].items():
        got = summary["segments"][segment]
        for field, value in values.items():
            if isinstance(value, float):
                assert math.isclose(got[field], value, rel_tol=1e-15, abs_tol=1e-15), (segment, field)
            else:
                assert got[field] == value, (segment, field)
    assert summary["records_in"] == summary["accepted"] + summary["duplicates"] + sum(summary["quarantined"].values())


def test_generated_traffic_end_to_end(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    assert simulate.main(["--sensors", "24", "--minutes", "40", "--now", NOW, "--summary", str(summary_file)]) == 0
    summary = json.loads(summary_file.read_text())
    start = simulate.parse_instant(NOW) - 40 * 60 * 1_000_000_000
    payloads = simulate.generate(24, 40, start_ns=start, now_ns=simulate.parse_instant(NOW), seed=7)
    expected = expected_summary(payloads)
    assert_matches(summary, expected)
    assert all(v > 0 for v in expected["quarantined"].values()), "the generator makes every kind of bad record"
    assert expected["duplicates"] > 0 and expected["alerts"], "the generator makes duplicates and congestion"
    assert summary["alerts_delivered"] == len(summary["alerts"]), "every alert reached SNS exactly once"
    published = {(m["metric"], tuple(sorted(m["dimensions"].items()))): m["sum"] for m in summary["metrics"]}
    assert published[("CongestionAlerts", ())] == len(summary["alerts"])
    assert summary["run"]["records_to_dlq"] == 0


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
    ]
    source = tmp_path / "readings.ndjson"
    source.write_bytes(b"\n".join(lines) + b"\n")
    summary_file = tmp_path / "summary.json"
    assert simulate.main(["--input", str(source), "--now", NOW, "--summary", str(summary_file)]) == 0
    summary = json.loads(summary_file.read_text())
    assert_matches(summary, expected_summary(lines))
    assert summary["quarantined"] == {"malformed_json": 2, "schema_violation": 1, "future_timestamp": 1}
    assert (summary["accepted"], summary["duplicates"]) == (1, 1)
    assert summary["alerts"] == [{"segment_id": "seg", "window_start": "2026-06-01T11:50:00Z", "level": "severe"}]


def test_replaying_everything_changes_nothing_and_sends_no_second_alert() -> None:
    config = simulate.PROFILES["dev"]
    now = simulate.parse_instant(NOW)
    payloads = simulate.generate(12, 20, start_ns=now - 20 * 60 * 1_000_000_000, now_ns=now)
    options = simulate.RunOptions(payloads, now, config.batch_size, config)
    with moto_env() as env:
        first = simulate.run(env.clients, env.targets, options)
        tables = {t: simulate.scan(env.clients, t) for t in
                  (env.targets.sensor_windows_table, env.targets.segment_aggregates_table)}  # fmt: skip
        # Replay the whole shard and the whole table stream through the handlers.
        shards = simulate.kinesis_records(env.clients, env.targets.stream_name)
        for shard, records in shards.items():
            event = simulate.kinesis_event(shard, records, "us-east-1", "arn:aws:kinesis:us-east-1:1:stream/x")
            assert processor_handler.handler(event, None) == {"batchItemFailures": []}
        changes = simulate.dynamodb_stream_records(env.clients, env.targets.sensor_windows_table)
        assert alert_handler.handler({"Records": changes}, None) == {"batchItemFailures": []}
        assert {t: simulate.scan(env.clients, t) for t in tables} == tables
        queue = env.clients["sqs"].get_queue_url(QueueName="tap-simulate-alerts-dev")["QueueUrl"]
        attributes = env.clients["sqs"].get_queue_attributes(
            QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
        )
        assert int(attributes["Attributes"]["ApproximateNumberOfMessages"]) == len(first["alerts"]) > 0
