"""The folder under moto: partials from the processor in; aggregates per the contract, one alert per congested
window, metrics; resent and replayed partials change nothing; the aggregate item stays small."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.common.aws import deserialize
from lambdas.common.contract import Measurement, aggregate
from lambdas.folder.service import Folder
from tests.aws_fixtures import Env, Faults, kinesis_event, moto_env, reading, server_error
from tools.local.simulate import kinesis_event as stream_event
from tools.local.simulate import kinesis_records, subscribe_alert_queue


@pytest.fixture
def env() -> Iterator[Env]:
    with moto_env() as e:
        yield e


def folder(env: Env) -> Folder:
    return env.folder()


def process(env: Env, payloads: list[bytes], first_sequence: int = 1) -> None:
    assert env.processor().handle(kinesis_event(payloads, first_sequence))["batchItemFailures"] == []


def changes(env: Env, after: int = 0) -> dict[str, Any]:
    """The partials stream's records (from the ``after``-th on) as the folder's mapping delivers them."""
    ((shard, records),) = kinesis_records(env.clients, env.targets.partials_stream).items()
    return stream_event(shard, records[after:], "us-east-1", "arn:aws:kinesis:us-east-1:1:stream/tap-partials-dev")


def aggregates(env: Env) -> dict[tuple[str, str], dict[str, Any]]:
    items = env.clients["dynamodb"].scan(TableName=env.targets.segment_aggregates_table)["Items"]
    return {(i["segment_id"]["S"], i["window_start"]["S"]): deserialize(i) for i in items}


def delivered(env: Env, queue: str) -> list[dict[str, Any]]:
    sqs, found = env.clients["sqs"], []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            found.append(json.loads(json.loads(m["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return found


JAM = [  # seg-a jammed in the 11:50 window; seg-b flowing
    reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=20, speed=10.0, occupancy=70.0),
    reading("s2", "seg-a", "2026-06-01T11:51:00Z", vehicles=10, speed=14.0, occupancy=85.0),
    reading("s3", "seg-b", "2026-06-01T11:50:00Z", vehicles=15, speed=48.0, occupancy=10.0),
]


def count_calls(client: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    client.meta.events.register(
        "before-call.*.*", lambda model, **_: counts.__setitem__(model.name, counts.get(model.name, 0) + 1)
    )
    return counts


def test_congested_window_alerts_once_with_contract_aggregates_and_one_metric_call(env: Env) -> None:
    queue = subscribe_alert_queue(env.clients, env.targets)
    process(env, JAM)
    metric_calls = count_calls(env.clients["cloudwatch"])
    assert folder(env).handle(changes(env)) == {"batchItemFailures": []}
    stored = aggregates(env)
    seg_a = stored[("seg-a", "2026-06-01T11:50:00Z")]
    expected = aggregate([Measurement(20, 10.0, 70.0, 50.0), Measurement(10, 14.0, 85.0, 50.0)])
    assert (int(seg_a["readings"]), int(seg_a["vehicles"]), seg_a["congestion_level"]) == (2, 30, "severe")
    assert float(seg_a["average_speed_kmh"]) == expected.average_speed_kmh
    assert (seg_a["alert_level"], seg_a["alert_state"], seg_a["alert_id"]) == (
        "severe", "sent", "dev:seg-a:2026-06-01T11:50:00Z",
    )  # fmt: skip
    assert "alert_pending" not in seg_a, "a sent alert leaves the pending-alerts index"
    assert stored[("seg-b", "2026-06-01T11:50:00Z")]["congestion_level"] == "free"
    (alert,) = delivered(env, queue)
    assert (alert["segment_id"], alert["window_start"], alert["congestion_level"]) == (
        "seg-a", "2026-06-01T11:50:00Z", "severe",
    )  # fmt: skip
    assert metric_calls == {"PutMetricData": 1}
    metrics = env.clients["cloudwatch"].list_metrics(Namespace="TAP/Traffic/dev")["Metrics"]
    dimensions = {tuple(sorted(d["Name"] for d in m.get("Dimensions", []))) for m in metrics}
    assert dimensions <= {("Level",), ()}, "no per-sensor or per-segment metric"


def test_retries_and_replays_send_no_second_alert(env: Env) -> None:
    queue = subscribe_alert_queue(env.clients, env.targets)
    process(env, JAM)
    fn = folder(env)
    fn.handle(changes(env))
    before = aggregates(env)
    fn.handle(changes(env))  # the same batch again (a retry)
    process(env, [reading("s9", "seg-a", "2026-06-01T11:52:00Z", vehicles=5, speed=5.0, occupancy=90.0)], 10)
    fn.handle(changes(env))  # the window grows and stays congested: still the same one alert
    assert len(delivered(env, queue)) == 1
    after = aggregates(env)
    assert (
        after[("seg-a", "2026-06-01T11:50:00Z")]["alerted_at"]
        == before[("seg-a", "2026-06-01T11:50:00Z")]["alerted_at"]
    )
    assert int(after[("seg-a", "2026-06-01T11:50:00Z")]["readings"]) == 3


def test_a_failed_publish_keeps_the_claim_pending_and_the_retry_publishes_it(env: Env) -> None:
    queue = subscribe_alert_queue(env.clients, env.targets)
    process(env, JAM)
    faults = Faults(env.clients["sns"], {"Publish": lambda n, _: server_error() if n <= 3 else None})
    fn = folder(env)
    event = changes(env)
    failures = fn.handle(event)["batchItemFailures"]
    assert len(failures) == 1
    pending = aggregates(env)[("seg-a", "2026-06-01T11:50:00Z")]
    assert (pending["alert_state"], pending["alert_pending"]) == ("pending", "pending")
    assert "alerted_at" not in pending
    assert fn.handle(event) == {"batchItemFailures": []}
    assert faults.calls["Publish"] == 4
    assert len(delivered(env, queue)) == 1


def test_a_record_that_is_no_partial_is_reported_not_dropped(env: Env) -> None:
    event = {"Records": [{"kinesis": {"sequenceNumber": "7", "data": base64.b64encode(b"{}").decode()}}]}
    assert folder(env).handle(event) == {"batchItemFailures": [{"itemIdentifier": "7"}]}
    assert aggregates(env) == {}


def test_values_beyond_dynamodb_number_limits_are_stored_and_aggregated_exactly(env: Env) -> None:
    """The schema allows values DynamoDB numbers cannot hold (38 digits, magnitudes 1e-130..1e126): an
    occupancy of 1e-300, or a window whose exact sum needs 42 digits. They must not block the shard."""
    tiny = [
        reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=1, speed=1e-40, occupancy=1e-300),
        reading("s1", "seg-a", "2026-06-01T11:51:00Z", vehicles=1, speed=50.0, occupancy=60.0),
        reading("s2", "seg-a", "2026-06-01T11:52:00Z", vehicles=2, speed=0.1, occupancy=1e-129),
    ]
    process(env, tiny)
    assert folder(env).handle(changes(env)) == {"batchItemFailures": []}
    stored = aggregates(env)[("seg-a", "2026-06-01T11:50:00Z")]
    expected = aggregate([Measurement(1, 1e-40, 1e-300, 50.0), Measurement(1, 50.0, 60.0, 50.0),
                          Measurement(2, 0.1, 1e-129, 50.0)])  # fmt: skip
    assert int(stored["readings"]) == 3
    assert float(stored["average_speed_kmh"]) == expected.average_speed_kmh
    assert float(stored["occupancy_percent"]) == expected.occupancy_percent


def test_the_aggregate_keeps_sums_and_one_mark_per_shard_whatever_the_readings(env: Env) -> None:
    """The aggregate item holds exact sums and ``src`` (a mark per readings shard), never per-sensor or
    per-part entries: 200 readings of 200 sensors make it no larger than 2 readings do."""
    process(env, JAM[:2])
    folder(env).handle(changes(env))
    small = aggregates(env)[("seg-a", "2026-06-01T11:50:00Z")]
    many = [reading(f"x{i}", "seg-a", f"2026-06-01T11:5{i % 5}:{i % 60:02d}Z", vehicles=20, speed=10.0,
                    occupancy=70.0) for i in range(200)]  # fmt: skip
    process(env, many, 10)
    folder(env).handle(changes(env, 1))
    big = aggregates(env)[("seg-a", "2026-06-01T11:50:00Z")]
    assert int(big["readings"]) == 202
    assert json.loads(big["src"]).keys() == json.loads(small["src"]).keys() == {"shardId-000000000000"}
    assert len(json.dumps(big, default=str)) < 1000


def test_resent_pieces_are_skipped_by_the_source_marks(env: Env) -> None:
    """A retry of the processor batch after its partials went out sends them again: the folder folds once."""
    process(env, JAM)
    process(env, JAM)  # the same records again (a retry): owned rows, the same pieces resent
    fn = folder(env)
    assert fn.handle(changes(env)) == {"batchItemFailures": []}
    assert fn.handle(changes(env)) == {"batchItemFailures": []}
    assert int(aggregates(env)[("seg-a", "2026-06-01T11:50:00Z")]["readings"]) == 2
