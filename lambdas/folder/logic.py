"""The folder's pure logic: partials in, a segment window's aggregate item out.

A segment window's aggregate item keeps the exact running sums of every reading folded into it (``sums``,
``contract.Sums.row`` as JSON text) and, per source shard of the readings stream, the highest cut folded
from it (``src``, ``{shard id: sequence number}``). A piece of a partial (``lambdas.common.partials``) is
folded only when its cut is above the shard's ``src``: a resent or replayed partial changes nothing, and
the aggregate is the exact sum of each piece folded once, in any order of shards. The item grows with the
shards contributing to the segment, never with its readings, sensors or window parts: no input can make
it too large to write.

The contract's aggregate (``readings``, ``vehicles``, the averages, ``congestion_level``) is derived from
the sums on every write, with the alert state (``lambdas.common.alerts``) and a ``version`` the next write
is conditional on.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdas.common.alerts import ALERT_FIELDS, Claim, Folded, WindowId, claim_alert
from lambdas.common.contract import Sums, exact, exact_text, total
from lambdas.common.partials import Partial, at_or_below

Piece = tuple[str, str, Sums]  # (source shard, cut, sums)


@dataclass
class WindowPartials:
    """What one invocation received for a segment window, in stream order."""

    pieces: list[Piece] = field(default_factory=list)
    sequence_numbers: list[str] = field(default_factory=list)
    expires_at: int = 0


@dataclass
class Received:
    windows: dict[WindowId, WindowPartials] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    """Sequence numbers of records that are not partials (reported as failures: retried, then the DLQ)."""


def received(event: Mapping[str, Any]) -> Received:
    """The batch's partials by segment window (a Kinesis event of the partials stream)."""
    out = Received()
    for record in event.get("Records", []):
        kinesis = record["kinesis"]
        sequence_number = kinesis["sequenceNumber"]
        try:
            partial = Partial.decode(base64.b64decode(kinesis["data"]))
        except (ValueError, KeyError, TypeError, ArithmeticError):
            out.unreadable.append(sequence_number)
            continue
        window = out.windows.setdefault((partial.segment, partial.window), WindowPartials())
        window.pieces.extend((partial.shard, through, sums) for through, sums in partial.pieces)
        window.sequence_numbers.append(sequence_number)
        window.expires_at = max(window.expires_at, partial.expires_at)
    return out


def fold(existing: Mapping[str, Any] | None, window: WindowId, change: WindowPartials, claim: Claim) -> Folded:
    """Fold a window's new pieces into its stored item, and claim or take over its alert."""
    marks: dict[str, str] = json.loads(existing["src"]) if existing and "src" in existing else {}
    sums = [Sums.from_row(json.loads(existing["sums"]))] if existing and "sums" in existing else []
    changed = False
    for shard, through, piece in change.pieces:
        mark = marks.get(shard)
        if mark is not None and at_or_below(through, mark):
            continue  # folded before: a resend, a retry or a replay
        sums.append(piece)
        marks[shard] = through
        changed = True
    if not sums:
        return Folded(None, None, publish=False)
    running = total(sums)
    agg = running.aggregate()
    alert, publish = claim_alert(existing, window, agg, claim)
    if not changed and not publish:
        return Folded(None, agg, publish=False)
    stored_expiry = int(existing["expires_at"]) if existing and "expires_at" in existing else 0
    item: dict[str, Any] = {
        "segment_id": window[0],
        "window_start": window[1],
        "sums": json.dumps(running.row(), separators=(",", ":")),
        "src": json.dumps(marks, separators=(",", ":"), sort_keys=True),
        "readings": agg.readings,
        "vehicles": agg.vehicles,
        "average_speed_kmh": exact_text(exact(agg.average_speed_kmh)),
        "occupancy_percent": exact_text(exact(agg.occupancy_percent)),
        "speed_limit_kmh": exact_text(exact(agg.speed_limit_kmh)),
        "congestion_level": agg.congestion_level,
        "version": int(existing["version"]) + 1 if existing and "version" in existing else 1,
        **{k: alert[k] for k in ALERT_FIELDS if k in alert},
    }
    if expires := max(change.expires_at, stored_expiry):
        item["expires_at"] = expires
    return Folded(item, agg, publish=publish, changed=changed or existing is None)
