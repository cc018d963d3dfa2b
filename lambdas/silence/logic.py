"""The silence check's pure logic: the fleet it polls, the instant each sensor is judged at, what a
sensor's newest reading is, and the outage alert and recovery notice (contract "Silent sensors").

**Polling.** Each run reads the fleet registry (``lambdas.common.silence``: 64 hash-sharded keys) and the
stream shards' watermarks, then each member's newest reading (its newest window item, eventually
consistent). A member silent at the instant its shard is judged at (:func:`judged_at`), and still in the
fleet, is read again strongly before it is called silent. Nothing depends on when a run happens, on what
an earlier run read or on when a processor's write landed: a run finds every silent sensor of the fleet.

**Outages.** One per silence, keyed ``(sensor, since)`` where ``since`` is the newest reading's timestamp;
``alert_id`` = ``<environment>:silent:<sensor>:<since>``. Its recovery notice has ``alert_id``
``<that>:recovered``: another id, so that a consumer dropping copies never drops the notice as a copy
of the alert. Both follow the congestion alerts' exactly-once rules: a conditional write claims the
message (``pending``, with a lease that outlasts the function's timeout), the claimer publishes and then
marks it ``sent``; a claim whose owner is gone is taken over by a later run once its lease is over.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lambdas.common import silence as rule
from lambdas.common.contract import NS_PER_SECOND, format_instant, stored_instant_ns
from lambdas.common.silence import LATEST_INTERVAL, is_silent

PENDING = "pending"
SENT = "sent"
OPEN = "open"


@dataclass(frozen=True, order=True)
class Member:
    """A sensor of the fleet registry, and the stream shard its records came from."""

    sensor_id: str
    shard_id: str


def members(items: Iterable[Mapping[str, Any]]) -> list[Member]:
    """The registry's sensors (items of the ``fleet#<n>`` keys), sorted."""
    return sorted(Member(str(i["sk"]), str(i.get("shard_id", ""))) for i in items)


@dataclass(frozen=True)
class Watermark:
    arrival_through_ns: int
    written_at_ns: int


def watermarks(items: Iterable[Mapping[str, Any]]) -> dict[str, Watermark]:
    """Each stream shard's watermark (items of the ``watermark`` key)."""
    return {str(i["sk"]): Watermark(int(i["arrival_through"]), int(i["written_at"])) for i in items}


def judged_at(member: Member, marks: Mapping[str, Watermark], at_ns: int, allowance_seconds: int) -> int:
    """The instant ``member`` is judged at, at ``at_ns`` (``lambdas.common.silence.judged_at``)."""
    mark = marks.get(member.shard_id)
    if mark is None:
        return rule.judged_at(at_ns, None, None, allowance_seconds)
    return rule.judged_at(at_ns, mark.arrival_through_ns, mark.written_at_ns, allowance_seconds)


@dataclass(frozen=True)
class Newest:
    """A sensor's newest accepted reading."""

    sensor_id: str
    timestamp: str
    """As stored: ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ``."""
    interval_seconds: int
    segment_id: str
    window_part: str
    """The item holding it."""

    @property
    def instant_ns(self) -> int:
        return stored_instant_ns(self.timestamp)


def newest(items: Sequence[Mapping[str, Any]]) -> Newest | None:
    """The newest reading among a sensor's items: the last window's parts (a new reading always goes
    to its window's last part, so the newest of the window is in one of them)."""
    items = [i for i in items if "latest" in i]  # a part opened for duplicates alone holds no reading
    if not items:
        return None
    last_window = max(i["window_part"] for i in items).split("#", 1)[0]
    best = max((i for i in items if i["window_part"].startswith(last_window)), key=lambda i: i["latest"]["timestamp"])
    return Newest(
        sensor_id=best["sensor_id"],
        timestamp=best["latest"]["timestamp"],
        interval_seconds=int(best.get(LATEST_INTERVAL, 60)),
        segment_id=best["latest"]["segment_id"],
        window_part=best["window_part"],
    )


def in_fleet(reading: Newest, retention_days: int, at_ns: int) -> bool:
    """A sensor leaves the fleet ``fleet_retention_days`` after its newest accepted reading."""
    return at_ns - reading.instant_ns <= retention_days * 86_400 * NS_PER_SECOND


def silent(reading: Newest, factor: int, at_ns: int) -> bool:
    return is_silent(reading.instant_ns, reading.interval_seconds, factor, at_ns)


def recovered(outage: Mapping[str, Any], latest: Newest | None) -> bool:
    """Whether a reading newer than the outage's has been accepted since (``latest``: the sensor's
    newest item's reading, from its last window)."""
    return latest is not None and latest.timestamp > outage["since"]


def alert_id(environment: str, sensor_id: str, since: str) -> str:
    return f"{environment}:silent:{sensor_id}:{since}"


def recovery_id(outage_alert_id: str) -> str:
    return f"{outage_alert_id}:recovered"


def outage_item(
    environment: str, reading: Newest, *, factor: int, retention_days: int, owner: str, at_ns: int, lease_seconds: int
) -> dict[str, Any]:
    """A new outage, its alert claimed by ``owner`` (written only if no item has its key)."""
    at_s = at_ns // NS_PER_SECOND
    return {
        "sensor_id": reading.sensor_id,
        "since": reading.timestamp,
        "alert_id": alert_id(environment, reading.sensor_id, reading.timestamp),
        "segment_id": reading.segment_id,
        "interval_seconds": reading.interval_seconds,
        "silence_factor": factor,
        "window_part": reading.window_part,
        "detected_at": format_instant(at_ns),
        "outage_open": OPEN,
        "alert_state": PENDING,
        "alert_owner": owner,
        "alert_lease_until": at_s + lease_seconds,
        # Kept past the fleet retention (the outage closes then), then DynamoDB's TTL removes it.
        "expires_at": reading.instant_ns // NS_PER_SECOND + (retention_days + 30) * 86_400,
    }


def outage_message(environment: str, outage: Mapping[str, Any]) -> tuple[str, str]:
    """Subject (at most 100 ASCII characters) and JSON body of an outage alert."""
    since_ns = stored_instant_ns(outage["since"])
    silent_from = since_ns + int(outage["silence_factor"]) * int(outage["interval_seconds"]) * NS_PER_SECOND
    body = {
        "alert_id": outage["alert_id"],
        "alert_type": "sensor_silent",
        "environment": environment,
        "sensor_id": outage["sensor_id"],
        "segment_id": outage["segment_id"],
        "last_reading_at": outage["since"],
        "interval_seconds": int(outage["interval_seconds"]),
        "silence_factor": int(outage["silence_factor"]),
        "silent_since": format_instant(silent_from),
    }
    return f"[{environment}] sensor {outage['sensor_id']} is silent"[:100], json.dumps(body, sort_keys=True)


def recovery_message(environment: str, outage: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and JSON body of the recovery notice that ends an outage."""
    body = {
        "alert_id": recovery_id(outage["alert_id"]),
        "alert_type": "sensor_recovered",
        "outage_alert_id": outage["alert_id"],
        "environment": environment,
        "sensor_id": outage["sensor_id"],
        "segment_id": outage["segment_id"],
        "last_reading_at": outage["since"],
        "recovered_by": outage["recovered_by"],
    }
    return f"[{environment}] sensor {outage['sensor_id']} reports again"[:100], json.dumps(body, sort_keys=True)
