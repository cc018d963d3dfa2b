"""The alert function's pure logic: fold window changes into segment aggregates, decide alerts, metrics.

A segment's aggregate item keeps, per sensor, the exact sums of that sensor's window item (``partials``)
as last seen on the stream. A stream image is the item's whole state, so replacing a sensor's entry
with it is idempotent: a redelivered change leaves the aggregate as it was.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lambdas.common import metrics
from lambdas.common.aws import deserialize
from lambdas.common.contract import (
    ALERT_LEVELS,
    LEVELS,
    NS_PER_SECOND,
    Aggregate,
    Sums,
    exact,
    exact_text,
    parse_instant,
    total,
)

WindowId = tuple[str, str]  # (segment_id, window_start)


@dataclass
class WindowChange:
    """What one invocation learned about a segment window from the stream."""

    partials: dict[str, Sums] = field(default_factory=dict)
    sequence_numbers: list[str] = field(default_factory=list)


def changed_windows(event: Mapping[str, Any]) -> dict[WindowId, WindowChange]:
    """Segment windows changed in this batch, with each sensor's latest sums (stream order).

    Removals (TTL expiry of old windows) change no aggregate and are ignored.
    """
    changed: dict[WindowId, WindowChange] = {}
    for record in event.get("Records", []):
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        image = deserialize(record["dynamodb"]["NewImage"])
        window = (image["segment_id"], image["window_start"])
        change = changed.setdefault(window, WindowChange())
        change.partials[image["sensor_id"]] = Sums.from_attributes(image)
        change.sequence_numbers.append(record["dynamodb"]["SequenceNumber"])
    return changed


def _encode(partials: Mapping[str, Sums]) -> str:
    return json.dumps(
        {
            sensor: [s.readings, s.vehicles, str(s.speed_x_vehicles), str(s.occupancy), str(s.min_speed_limit)]
            for sensor, s in sorted(partials.items())
        },
        separators=(",", ":"),
    )


def _decode(text: str) -> dict[str, Sums]:
    return {
        sensor: Sums(int(v[0]), int(v[1]), Decimal(v[2]), Decimal(v[3]), Decimal(v[4]))
        for sensor, v in json.loads(text).items()
    }


@dataclass
class Folded:
    item: dict[str, Any] | None
    """The aggregate item to write, or ``None`` when nothing changed."""
    aggregate: Aggregate
    alert: bool
    """Whether this change makes the window's one alert due (congested, and none sent yet)."""


def fold(
    existing: Mapping[str, Any] | None,
    window: WindowId,
    change: WindowChange,
    *,
    window_seconds: int,
    ttl_days: int,
    now: str,
) -> Folded:
    """Merge a window's changes into its stored aggregate item."""
    partials = _decode(existing["partials"]) if existing else {}
    updated = {**partials, **change.partials}
    agg = total(updated.values()).aggregate()
    alert = agg.congestion_level in ALERT_LEVELS and not (existing and "alerted_at" in existing)
    if existing is not None and updated == partials and not alert:
        # Nothing new. (An unchanged window whose alert is still due, after a failed publish gave its
        # claim back, goes on to claim and send it.)
        return Folded(None, agg, alert=False)
    item: dict[str, Any] = {
        "segment_id": window[0],
        "window_start": window[1],
        "partials": _encode(updated),
        "readings": agg.readings,
        "vehicles": agg.vehicles,
        "average_speed_kmh": exact_text(exact(agg.average_speed_kmh)),
        "occupancy_percent": exact_text(exact(agg.occupancy_percent)),
        "speed_limit_kmh": exact_text(exact(agg.speed_limit_kmh)),
        "congestion_level": agg.congestion_level,
        "expires_at": parse_instant(window[1]) // NS_PER_SECOND + window_seconds + ttl_days * 86400,
    }
    if existing and "alerted_at" in existing:
        item["alerted_level"] = existing["alerted_level"]
        item["alerted_at"] = existing["alerted_at"]
    elif alert:
        item["alerted_level"] = agg.congestion_level
        item["alerted_at"] = now
    return Folded(item, agg, alert)


def without_alert(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item as it was before its alert was claimed (to give the claim back)."""
    return {k: v for k, v in item.items() if k not in ("alerted_level", "alerted_at")}


def alert_message(environment: str, window: WindowId, window_seconds: int, agg: Aggregate) -> tuple[str, str]:
    """Subject (at most 100 ASCII characters) and JSON body of a congestion alert."""
    segment, start = window
    subject = f"[{environment}] {agg.congestion_level} congestion on segment {segment}"[:100]
    body = {
        "environment": environment,
        "segment_id": segment,
        "window_start": start,
        "window_seconds": window_seconds,
        **agg.as_dict(),
    }
    return subject, json.dumps(body, sort_keys=True)


def metric_data(levels: Counter[str], alerts: int) -> list[dict[str, Any]]:
    """One PutMetricData payload: changed windows per congestion level, and alerts sent (never per sensor)."""
    data: list[dict[str, Any]] = [
        {
            "MetricName": metrics.SEGMENT_WINDOWS,
            "Dimensions": [{"Name": metrics.LEVEL_DIMENSION, "Value": level}],
            "Value": levels[level],
            "Unit": "Count",
        }
        for level in LEVELS
        if levels[level]
    ]
    data.append({"MetricName": metrics.CONGESTION_ALERTS, "Value": alerts, "Unit": "Count"})
    return data
