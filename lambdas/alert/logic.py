"""The alert function's pure logic: fold window changes into segment aggregates, decide alerts, metrics.

A segment window's aggregate item keeps, per sensor window part (``<sensor>#<part>``), the exact sums of
that part's readings of the segment (``partials``) with the part item's ``version``. An entry is only
ever replaced by a newer version, so a redelivered or replayed change leaves the aggregate as it was,
and the aggregate over all entries is the contract's aggregate over all distinct readings, whatever the
order in which they arrive. The item itself carries a ``version`` of its own: every write is
conditional on the version it was folded from (see ``service``).

**Alert state** (contract "Alerts"): ``alert_state`` is absent until the aggregate first reaches heavy
or severe; the write that folds that in also *claims* the alert (``pending``, with the claiming record
as ``alert_owner`` and a lease). The claimer publishes, then marks it ``sent``. A ``pending`` alert is
published again by the owner's retry (the same stream record comes back) or, once the lease is over
(the owner is dead: the lease outlasts the function's timeout), by whoever touches the window next or
by the sweep of expired claims that every invocation runs. While pending, ``alert_pending`` is set,
which puts the item in the sparse ``pending-alerts`` index.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdas.common import metrics
from lambdas.common.aws import deserialize
from lambdas.common.contract import ALERT_LEVELS, LEVELS, Aggregate, Sums, decode_sums, exact, exact_text, total

WindowId = tuple[str, str]  # (segment_id, window_start)
Partial = tuple[int, Sums]  # (version of the part item, its sums for the segment)

PENDING = "pending"
SENT = "sent"
ALERT_FIELDS = (
    "alert_id",
    "alert_state",
    "alert_level",
    "alert_owner",
    "alert_claimed_at",
    "alert_lease_until",
    "alert_pending",
    "alerted_at",
)


@dataclass
class WindowChange:
    """What one invocation learned about a segment window from the stream."""

    partials: dict[str, Partial] = field(default_factory=dict)
    sequence_numbers: list[str] = field(default_factory=list)
    expires_at: int = 0


def changed_windows(event: Mapping[str, Any]) -> dict[WindowId, WindowChange]:
    """Segment windows changed in this batch, with each part's newest sums (by version).

    A part item holds one sensor's readings of a window, possibly of several segments: it changes each
    of their windows. Removals (TTL expiry of old windows) change no aggregate and are ignored.
    """
    changed: dict[WindowId, WindowChange] = {}
    for record in event.get("Records", []):
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        image = deserialize(record["dynamodb"]["NewImage"])
        key = f"{image['sensor_id']}#{int(image['part']):03d}"
        version = int(image["version"])
        for segment, sums in decode_sums(image["segments"]).items():
            change = changed.setdefault((segment, image["window_start"]), WindowChange())
            known = change.partials.get(key)
            if known is None or known[0] < version:
                change.partials[key] = (version, sums)
            change.sequence_numbers.append(record["dynamodb"]["SequenceNumber"])
            change.expires_at = max(change.expires_at, int(image["expires_at"]))
    return changed


def _encode(partials: Mapping[str, Partial]) -> str:
    """``{part: [version, *sums row]}`` as compact JSON, sorted."""
    return json.dumps({key: [v, *s.row()] for key, (v, s) in sorted(partials.items())}, separators=(",", ":"))


def _decode(text: str) -> dict[str, Partial]:
    return {key: (int(v[0]), Sums.from_row(v[1:])) for key, v in json.loads(text).items()}


def alert_id(environment: str, window: WindowId) -> str:
    """``<environment>:<segment_id>:<window_start>`` (contract "Alerts")."""
    return f"{environment}:{window[0]}:{window[1]}"


@dataclass
class Folded:
    item: dict[str, Any] | None
    """The aggregate item to write (conditionally, see ``service``), or ``None`` when nothing changed."""
    aggregate: Aggregate | None
    publish: bool
    """Whether the writer of ``item`` holds the window's pending alert and must publish it."""
    changed: bool = False
    """Whether the aggregate itself changed (counted in ``SegmentWindows``)."""


@dataclass(frozen=True)
class Claim:
    """Who is folding: to claim an alert, or to recognise a claim as one's own."""

    environment: str
    owner: str
    """The first stream record of the window in this invocation (or a sweep's token)."""
    records: frozenset[str]
    """Every stream record of the window in this invocation: a claim owned by one of them is ours."""
    now: str
    now_seconds: int
    lease_seconds: int


def fold(existing: Mapping[str, Any] | None, window: WindowId, change: WindowChange, claim: Claim) -> Folded:
    """Merge a window's changes into its stored aggregate item, and claim or take over its alert."""
    partials = _decode(existing["partials"]) if existing else {}
    updated = dict(partials)
    for key, (version, sums) in change.partials.items():
        known = updated.get(key)
        if known is None or known[0] < version:
            updated[key] = (version, sums)
    if not updated:
        return Folded(None, None, publish=False)
    agg = total(s for _, s in updated.values()).aggregate()
    changed = existing is None or updated != partials
    alert = {k: existing[k] for k in ALERT_FIELDS if existing and k in existing}
    publish = False
    state = alert.get("alert_state")
    if state is None and agg.congestion_level in ALERT_LEVELS:
        alert = {
            "alert_id": alert_id(claim.environment, window),
            "alert_state": PENDING,
            "alert_level": agg.congestion_level,
        }
        publish = True
    elif state == PENDING and (
        alert.get("alert_owner") in claim.records
        or alert.get("alert_owner") == claim.owner  # our own write whose response was lost
        or claim.now_seconds >= int(alert.get("alert_lease_until", 0))
    ):
        publish = True  # our own claim coming back on a retry, or an expired one taken over
    if publish:
        alert.update(
            alert_owner=claim.owner,
            alert_claimed_at=claim.now,
            alert_lease_until=claim.now_seconds + claim.lease_seconds,
            alert_pending=PENDING,
        )
    if not changed and not publish:
        return Folded(None, agg, publish=False)
    expires = max(change.expires_at, int(existing["expires_at"]) if existing and "expires_at" in existing else 0)
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
        "version": int(existing["version"]) + 1 if existing and "version" in existing else 1,
        **alert,
    }
    if expires:
        item["expires_at"] = expires
    return Folded(item, agg, publish=publish, changed=changed)


def alert_message(environment: str, window: WindowId, window_seconds: int, agg: Aggregate) -> tuple[str, str]:
    """Subject (at most 100 ASCII characters) and JSON body of a congestion alert (with its ``alert_id``)."""
    segment, start = window
    subject = f"[{environment}] {agg.congestion_level} congestion on segment {segment}"[:100]
    body = {
        "alert_id": alert_id(environment, window),
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
