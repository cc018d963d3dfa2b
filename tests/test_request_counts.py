"""AWS requests per batch, counted on moto-backed clients: deterministic, so asserted exactly."""

from __future__ import annotations

import pytest

from tools.bench import request_counts
from tools.bench.request_counts import SCENARIOS, Measured

DYNAMODB_PER_THOUSAND = 50  # issue 5's budget; 40 BatchWriteItem is the floor for 1,000 distinct items
PARTIALS_MARK = 2
"""Issue 20: each batch reads its shard's partials mark (one more key of its BatchGetItem: one more request when
the window keys fill theirs) and writes it (PutItem), besides the budget of the window items."""


@pytest.fixture(scope="module")
def measured() -> dict[str, Measured]:
    results = [request_counts.processor_scenario(s) for s in SCENARIOS]
    results.append(request_counts.folder_scenario())
    return {m.scenario.split(":")[0] + ":" + str(i): m for i, m in enumerate(results)}


def test_one_item_per_reading_even_when_every_reading_is_a_different_sensor(measured: dict[str, Measured]) -> None:
    known = measured["processor:3"]
    # 1,000 items: 10 BatchGetItem of 100 keys (the shard's partials mark among them: 1,001 keys, 11 requests)
    # and 40 BatchWriteItem of 25 items; then the mark (PutItem), the 100 segments' partials (PutRecords)
    # and the shard's watermark (UpdateItem)
    assert known.counts == {"dynamodb:BatchGetItem": 11, "dynamodb:BatchWriteItem": 40, "dynamodb:PutItem": 1,
                            "kinesis:PutRecords": 1, "dynamodb:UpdateItem": 1}  # fmt: skip
    # the mark and the watermark are requests a batch, not a reading's
    assert known.per_thousand("dynamodb") <= DYNAMODB_PER_THOUSAND + PARTIALS_MARK + 1
    # the first sighting of 1,000 sensors also reads their registry items (with the multi-part round) and
    # writes them: once a sensor and day, not per batch
    first = measured["processor:0"]
    assert first.counts == {"dynamodb:BatchGetItem": 21, "dynamodb:BatchWriteItem": 80, "dynamodb:PutItem": 1,
                            "kinesis:PutRecords": 1, "dynamodb:UpdateItem": 1}  # fmt: skip


def test_readings_of_the_same_sensor_and_window_share_one_item(measured: dict[str, Measured]) -> None:
    typical = measured["processor:1"]
    # 100 sensors x 10 minutes = 100 sensors x 2 five-minute windows = 200 items and the shard's partials mark
    # (201 keys: 3 requests), + 100 registry items (one read round, 4 writes); the mark and the watermark
    assert typical.counts == {"dynamodb:BatchGetItem": 4, "dynamodb:BatchWriteItem": 12, "dynamodb:PutItem": 1,
                              "kinesis:PutRecords": 1, "dynamodb:UpdateItem": 1}  # fmt: skip


def test_s3_only_for_a_batch_with_rejects_and_then_once(measured: dict[str, Measured]) -> None:
    assert measured["processor:0"].service("s3") == 0
    assert measured["processor:1"].service("s3") == 0
    with_rejects = measured["processor:2"]
    assert with_rejects.counts == {"dynamodb:BatchGetItem": 21, "dynamodb:BatchWriteItem": 80, "s3:PutObject": 1,
                                   "dynamodb:PutItem": 1, "kinesis:PutRecords": 1,
                                   "dynamodb:UpdateItem": 1}  # fmt: skip


def test_folder_sends_one_metric_call_per_invocation(measured: dict[str, Measured]) -> None:
    alert = measured["folder:4"]
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
