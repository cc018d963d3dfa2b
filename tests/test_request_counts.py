"""AWS requests per batch, counted on moto-backed clients: deterministic, so asserted exactly."""

from __future__ import annotations

import pytest

from tools.bench import request_counts
from tools.bench.request_counts import SCENARIOS, Measured

DYNAMODB_PER_THOUSAND = 50  # issue 5's budget; 40 BatchWriteItem is the floor for 1,000 distinct items


@pytest.fixture(scope="module")
def measured() -> dict[str, Measured]:
    results = [request_counts.processor_scenario(s) for s in SCENARIOS]
    results.append(request_counts.alert_scenario())
    return {m.scenario.split(":")[0] + ":" + str(i): m for i, m in enumerate(results)}


def test_one_item_per_reading_even_when_every_reading_is_a_different_sensor(measured: dict[str, Measured]) -> None:
    known = measured["processor:3"]
    # 1,000 items: 10 BatchGetItem of 100 keys and 40 BatchWriteItem of 25 items, and the shard's watermark
    assert known.counts == {"dynamodb:BatchGetItem": 10, "dynamodb:BatchWriteItem": 40, "dynamodb:UpdateItem": 1}
    # the watermark is one request a batch, not a reading's
    assert known.per_thousand("dynamodb") <= DYNAMODB_PER_THOUSAND + 1
    # the first sighting of 1,000 sensors also reads their registry items (with the multi-part round) and
    # writes them: once a sensor and day, not per batch
    first = measured["processor:0"]
    assert first.counts == {"dynamodb:BatchGetItem": 20, "dynamodb:BatchWriteItem": 80, "dynamodb:UpdateItem": 1}


def test_readings_of_the_same_sensor_and_window_share_one_item(measured: dict[str, Measured]) -> None:
    typical = measured["processor:1"]
    # 100 sensors x 10 minutes = 100 sensors x 2 five-minute windows = 200 items (+ 100 registry items:
    # one read round, 4 writes; the watermark)
    assert typical.counts == {"dynamodb:BatchGetItem": 3, "dynamodb:BatchWriteItem": 12, "dynamodb:UpdateItem": 1}


def test_s3_only_for_a_batch_with_rejects_and_then_once(measured: dict[str, Measured]) -> None:
    assert measured["processor:0"].service("s3") == 0
    assert measured["processor:1"].service("s3") == 0
    with_rejects = measured["processor:2"]
    assert with_rejects.counts == {"dynamodb:BatchGetItem": 20, "dynamodb:BatchWriteItem": 80,
                                   "dynamodb:UpdateItem": 1, "s3:PutObject": 1}  # fmt: skip


def test_alert_sends_one_metric_call_per_invocation(measured: dict[str, Measured]) -> None:
    alert = measured["alert:4"]
    assert alert.invocations == 1
    assert alert.counts["cloudwatch:PutMetricData"] == alert.invocations
    # 100 congested segment windows: one read of them all, then per window one conditional write (which
    # claims its alert), the alert, and its conditional "sent" mark; one look for expired claims
    assert alert.counts == {
        "cloudwatch:PutMetricData": 1,
        "dynamodb:BatchGetItem": 1,
        "dynamodb:PutItem": 100,
        "dynamodb:Query": 1,
        "dynamodb:UpdateItem": 100,
        "sns:Publish": 100,
    }
