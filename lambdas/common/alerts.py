"""A segment window's alert state, pure: claim, take over, the message, the metrics (contract "Alerts").

``alert_state`` is absent until the window's aggregate first reaches heavy or severe; the write that
folds that in also *claims* the alert (``pending``, with the claiming owner as ``alert_owner`` and a
lease). The claimer publishes, then marks it ``sent``. A ``pending`` alert is published again by the
owner's retry (the same records come back) or, once the lease is over (the owner is dead: the lease
outlasts the function's timeout), by whoever touches the window next or by the sweep of expired claims
(``lambdas.common.alert_state``). While pending, ``alert_pending`` is set, which puts the item in the sparse
``pending-alerts`` index.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.common import metrics
from lambdas.common.contract import ALERT_LEVELS, LEVELS, Aggregate

WindowId = tuple[str, str]  # (segment_id, window_start)

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


def alert_id(environment: str, window: WindowId) -> str:
    """``<environment>:<segment_id>:<window_start>`` (contract "Alerts")."""
    return f"{environment}:{window[0]}:{window[1]}"


@dataclass
class Folded:
    item: dict[str, Any] | None
    """The aggregate item to write (conditionally, see ``alert_state``), or ``None`` when nothing changed."""
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
    """The first record of the window in this invocation (or a sweep's token)."""
    records: frozenset[str]
    """Every record of the window in this invocation: a claim owned by one of them is ours."""
    now: str
    now_seconds: int
    lease_seconds: int


def claim_alert(
    existing: Mapping[str, Any] | None, window: WindowId, agg: Aggregate, claim: Claim
) -> tuple[dict[str, Any], bool]:
    """The alert fields the next write of the window carries, and whether its writer must publish: a new
    claim when the aggregate first alerts, or a pending one that is ours (a retry, or our own write whose
    response was lost) or whose lease has run out."""
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
        or alert.get("alert_owner") == claim.owner
        or claim.now_seconds >= int(alert.get("alert_lease_until", 0))
    ):
        publish = True
    if publish:
        alert.update(
            alert_owner=claim.owner,
            alert_claimed_at=claim.now,
            alert_lease_until=claim.now_seconds + claim.lease_seconds,
            alert_pending=PENDING,
        )
    return alert, publish


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
