"""State layouts priced before they are coded (issue 20, item 1): today's layout is the model's bill line for
line, the new items' sizes are their schemas' under DynamoDB's size rules, each alternative's lines follow
from its loads, and the design document carries what the command prints."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from stacks import capacity as cap
from stacks import state_layouts as sl
from stacks.config import PROD
from tools import capacity as cli
from tools.bench import request_counts as rc

PRICES = cap.prices_for("us-east-1")
DOC = Path(__file__).resolve().parent.parent / "docs" / "state-layout-v2.md"
ON_DEMAND = dataclasses.replace(PROD.pipeline, dynamodb_capacity=cap.DynamoDBCapacity.ON_DEMAND)
"""prod's settings with on-demand tables: what the design compares (and what prod deployed when it was written)."""


def compact_part(rows: int) -> dict[str, dict[str, object]]:
    """A compact window part as docs/state-layout-v2.md specifies it (17-character sensor id, one shard's
    mark, one segment's sums)."""
    return {
        "sensor_id": {"S": "sensor-0000000001"},
        "w": {"N": "1764748800000"},  # window start (s) x 1000 + part
        "o": {"B": bytes(6 * rows)},  # offsets in ns from the window start, 6 bytes each
        "n": {"N": "299999999999"},  # newest reading's offset
        "i": {"N": "20"},  # its interval_seconds
        "v": {"N": "12"},
        "x": {"N": "1767340800"},
        "d": {"N": "0"},
        "h": {"M": {"shardId-000000000002": {"B": bytes(23)}}},  # 56-digit sequence number, packed
        "s": {"S": '{"seg-0001":["15","180","8730.5","165","50"]}'},
    }


def log_chunk(sensors: int, readings: int, segments: int) -> dict[str, dict[str, object]]:
    """A shard log chunk as the document specifies it: each sensor's interval and offsets, each segment's
    exact sums of the batch's new readings (the outbox of the partials)."""
    per = readings // sensors
    entries = {f"sensor-{n:010d}": {"L": [{"N": "20"}, {"B": bytes(6 * per)}]} for n in range(sensors)}
    sums = {f"segment-{n:07d}": {"S": '["15","180","8730.5","165","50"]'} for n in range(segments)}
    item: dict[str, dict[str, object]] = {
        "pk": {"S": "shardId-000000000002#1764748800"},
        "sk": {"S": "49590338271490256608559692538361571095921575989136588898#000"},
        "x": {"N": "1767340800"},
        "e": {"M": entries},
    }
    if segments:
        item["g"] = {"M": sums}
    return item


def test_item_sizes_are_the_schemas() -> None:
    assert rc.dynamodb_item_bytes(compact_part(0)) == sl.COMPACT_PART_BASE_BYTES
    assert rc.dynamodb_item_bytes(compact_part(15)) - rc.dynamodb_item_bytes(compact_part(14)) == sl.COMPACT_ROW_BYTES
    assert rc.write_units(compact_part(sl.COMPACT_PART_ROWS)) == 1  # a full part still fits one write unit
    assert rc.write_units(compact_part(sl.COMPACT_PART_ROWS + 1)) == 2  # ... which is why it closes there
    assert rc.dynamodb_item_bytes(log_chunk(1, 1, 0)) == sl.LOG_ITEM_BASE_BYTES + sl.LOG_SENSOR_BYTES + 6
    # a segment's sums: the map's 'g' attribute once, then about LOG_SEGMENT_BYTES a segment
    ten = rc.dynamodb_item_bytes(log_chunk(1, 1, 10)) - rc.dynamodb_item_bytes(log_chunk(1, 1, 0))
    assert ten / 10 == pytest.approx(sl.LOG_SEGMENT_BYTES, rel=0.05)


def test_today_is_the_models_bill() -> None:
    cost = sl.layout_bill(PROD.fleet, PROD.pipeline, sl.TODAY, PRICES)
    assert cost.lines == cap.bill(cap.model(PROD.fleet, PROD.pipeline), PRICES)
    assert cost.total == pytest.approx(cap.monthly_cost(cost.capacity, PRICES)["total"], abs=0.01)


def test_every_component_is_in_one_group() -> None:
    grouped = [name for _, names in sl.GROUPS for name in names]
    assert len(grouped) == len(set(grouped))
    for layout in sl.LAYOUTS:
        cost = sl.layout_bill(PROD.fleet, ON_DEMAND, layout, PRICES)
        assert {line.component for line in cost.lines} <= set(grouped), layout.name


def line(cost: sl.LayoutCost, component: str, usage: str) -> cap.Charge:
    (found,) = [x for x in cost.lines if x.component == component and usage in x.usage]
    return found


def test_the_lines_follow_from_each_layouts_loads() -> None:
    """Compact parts: one write unit per window write; a single writer per segment: no failed conditional
    puts; the partials stream: one PUT payload unit per record; the polling check: no index writes."""
    fleet, pipeline = PROD.fleet, ON_DEMAND
    today = sl.layout_bill(fleet, pipeline, sl.TODAY, PRICES)
    compact = sl.layout_bill(fleet, pipeline, sl.LAYOUTS[5], PRICES)  # G: compact + partials stream
    assert compact.layout.windows is sl.Windows.COMPACT and compact.layout.fold is sl.Fold.KINESIS
    c = compact.capacity
    per_month = cap.SECONDS_PER_MONTH / 1e6
    writes = line(compact, "dynamodb_sensor_windows", "write")
    assert writes.quantity == pytest.approx(c.sensor_windows.item_writes_per_second * per_month)  # 1 WCU each
    # today's since the compact rows: one write unit a write (and, since step 4, nothing for an index)
    assert writes.quantity == pytest.approx(line(today, "dynamodb_sensor_windows", "write").quantity, rel=0.05)
    assert "dynamodb_aggregate_conflicts" not in {x.component for x in (*today.lines, *compact.lines)}
    fold = sl._fold(c, sl.Fold.KINESIS)
    records = fold.partial_records_per_second * per_month
    assert line(compact, "partials", "PUT payload").quantity == pytest.approx(records)
    assert fold.aggregate_puts_per_second < fold.partial_records_per_second  # a folder batch coalesces them
    silence_writes = line(compact, "silence_check", "write").quantity
    # the registry, once a day per sensor, and the shard's watermark, once a batch
    assert silence_writes == pytest.approx((fleet.sensors / 86_400 + c.processor.invocations_per_second) * per_month)
    head = sl.layout_bill(fleet, pipeline, sl.LAYOUTS[1], PRICES)  # B: a head item per sensor and batch
    assert line(head, "silence_check", "write").quantity == pytest.approx(writes.quantity)


def test_the_recommended_layout_meets_the_issue_at_ten_thousand_sensors() -> None:
    """Issue 20: at most $1.00 per million readings for the whole bill at 10,000 sensors every 20 s, and no
    limit exceeded from 1,000 to 100,000 sensors."""
    fleet = dataclasses.replace(PROD.fleet, sensors=10_000, reading_interval_seconds=20)
    v2 = sl.layout_bill(fleet, ON_DEMAND, sl.V2, PRICES)
    assert v2.per_million <= 1.00
    costs = {layout.name: sl.layout_bill(fleet, ON_DEMAND, layout, PRICES).per_million for layout in sl.LAYOUTS}
    assert min(costs, key=costs.__getitem__) == sl.V2.name
    for sensors in (1_000, 10_000, 100_000):
        sized = dataclasses.replace(fleet, sensors=sensors)
        cost = sl.layout_bill(sized, cap.sized(sized, ON_DEMAND), sl.V2, PRICES)
        assert not cost.exceeded, (sensors, [x.name for x in cost.exceeded])


def test_no_key_of_the_silence_check_is_hot_by_minute_any_more() -> None:
    """Issue 20: every sensor's new window item entered the minute index (layout A still prices it) within a
    batching period: 1,000 WCU/s on one key at 30,000 sensors (30 s batches), past it beyond. Today's check
    polls: its busiest keys (a registry hash shard, a stream shard's watermark) take a few writes a second
    even at 1,000,000 sensors, and the silence line writes nothing per window write."""
    hot = "hottest key's writes"

    def utilisation(sensors: int, layout: sl.Layout) -> float:
        fleet = dataclasses.replace(PROD.fleet, sensors=sensors)
        cost = sl.layout_bill(fleet, cap.sized(fleet, ON_DEMAND), layout, PRICES)
        (limit,) = [x for x in cost.limits if hot in x.name]
        return limit.utilisation

    minute = sl.Layout("compact + minute index", sl.Windows.COMPACT, sl.Fold.KINESIS, sl.Silence.MINUTE_INDEX)
    deadline = sl.LAYOUTS[2]
    assert minute.silence is sl.Silence.MINUTE_INDEX and deadline.silence is sl.Silence.DEADLINE_INDEX
    assert utilisation(30_000, minute) == pytest.approx(1.0) and utilisation(40_000, minute) > 1
    assert utilisation(1_000_000, deadline) < 1
    assert sl.TODAY.silence is sl.Silence.POLL
    fleet = dataclasses.replace(PROD.fleet, sensors=1_000_000)
    c = cap.model(fleet, cap.sized(fleet, PROD.pipeline))
    today = sl._silence(c, sl.TODAY.silence, sl._windows(c, sl.TODAY.windows))
    assert today.hottest_key_write_units_per_second < 0.05 * cap.DYNAMODB_PARTITION_WCU
    assert not [x for x in c.limits if "silent" in x.name and "index" in x.name]


def test_the_design_document_carries_the_commands_output() -> None:
    out = io.StringIO()
    assert cli.main(["--layouts"], out=out) == 0
    assert out.getvalue().strip() == sl.report(PROD.fleet, PROD.pipeline, PRICES)
    assert sl.report(PROD.fleet, PROD.pipeline, PRICES) in DOC.read_text()


def test_the_documents_bill_of_today_is_the_models() -> None:
    """Section 1 quotes `python -m tools.capacity --env prod`: its total, its cost per million readings and
    each line the old bill left out."""
    capacity = cap.model(PROD.fleet, ON_DEMAND)
    lines = cap.bill(capacity, PRICES)
    costs = cap.monthly_cost(capacity, PRICES)
    text = DOC.read_text()
    assert (
        f"${costs['total']:,.0f} a month, **${cap.cost_per_million_readings(capacity, costs):.3f} per million" in text
    )

    def usd(*components: str, usage: str = "") -> float:
        return sum(x.usd for x in lines if x.component in components and usage in x.usage)

    quoted = {
        "`partials`": usd("partials"),
        "dynamodb_pitr": usd("dynamodb_pitr"),
        "silence_check": usd("silence_check"),
        "CloudWatch": usd("cloudwatch_alarms", "cloudwatch_dashboard", "cloudwatch_logs")
        + usd("cloudwatch_metrics", usage="custom metric"),
        "X-Ray": usd("xray"),
        "KMS": usd("kms"),
        "S3": usd("s3"),
    }
    for name, value in quoted.items():
        row = next(line for line in text.splitlines() if line.startswith("| ") and name in line)
        assert f"| {value:,.2f} |" in row, (name, value, row)
