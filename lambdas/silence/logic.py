"""The silence check's pure logic: which minutes to read, which index entries are silent sensors, what a
sensor's newest reading is, and the outage alert and recovery notice (contract "Silent sensors").

**Entries.** An index entry is ``(minute, sensor, window item)`` (``lambdas.common.silence``). It is
*stale* when a later write moved it (the index lags its table a little) or when the sensor has a newer
item: the next window's first part, or a later part of the same window. Most stale entries are the last
item of a window whose sensor went on in the next one; the service weeds those out with one
``BatchGetItem`` of the next windows' heads per 100 entries, and settles the rest with one consistent
``Query`` per sensor (:func:`newest`).

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

from lambdas.common.contract import NS_PER_SECOND, format_instant, stored_instant_ns
from lambdas.common.silence import LATEST_INTERVAL, MINUTE_NS, is_silent, minute_at_or_before

PENDING = "pending"
SENT = "sent"
OPEN = "open"
CURSOR_KEY = {"sensor_id": "#check", "since": "cursor"}
"""The check's cursor: the last minute boundary whose index entries it has finished with."""
FIRST_RUN_MINUTES = 2
"""Minutes a first run (no cursor yet) reads back."""
MAX_MINUTES_PER_RUN = 60
"""Minutes one run reads at most: a check that was down catches up an hour per run."""


def minutes_to_read(cursor_ns: int | None, at_ns: int) -> tuple[list[int], int]:
    """The minute boundaries to read at ``at_ns`` (oldest first), and the cursor once they are read.

    Every boundary up to the last one at or before ``at_ns`` (its entries are all past their
    ``silent_after``), from one minute before the cursor (read again: the index lags its table a little,
    and a processor's clock may lag the check's), at most :data:`MAX_MINUTES_PER_RUN` of them."""
    last = minute_at_or_before(at_ns)
    first = last - FIRST_RUN_MINUTES * MINUTE_NS if cursor_ns is None else min(cursor_ns - MINUTE_NS, last)
    boundaries = list(range(first, last + 1, MINUTE_NS))[:MAX_MINUTES_PER_RUN]
    return boundaries, boundaries[-1]


@dataclass(frozen=True)
class Candidate:
    """An index entry past its ``silent_after``: the sensor may be silent."""

    sensor_id: str
    window_part: str

    @property
    def window(self) -> str:
        return self.window_part.split("#", 1)[0]


def candidates(entries: Iterable[Mapping[str, Any]]) -> list[Candidate]:
    """One candidate per sensor (its latest window item) among index entries of minutes already past."""
    latest: dict[str, str] = {}
    for entry in entries:
        sensor, part = entry["sensor_id"], entry["window_part"]
        if part > latest.get(sensor, ""):
            latest[sensor] = part
    return [Candidate(sensor, part) for sensor, part in sorted(latest.items())]


def next_window_head(candidate: Candidate, window_seconds: int) -> dict[str, str]:
    """The key of the first part of the window after the candidate's (its sensor went on if it exists)."""
    start = stored_instant_ns(candidate.window)
    label = format_instant(start + window_seconds * NS_PER_SECOND)[:19] + "Z"
    return {"sensor_id": candidate.sensor_id, "window_part": f"{label}#000"}


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
