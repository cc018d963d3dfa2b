"""Silent sensors (contract version 2, "Silent sensors"): the rule, and the fleet registry and shard
watermarks both sides share.

A sensor is **silent** at ``T`` when its newest accepted reading's timestamp is more than
``silence_factor x interval_seconds`` (of that reading) before ``T``: from ``silent_after`` on, strictly.

**The fleet registry** (table ``fleet``). A sensor's item sits under a hash-sharded key,
``pk = fleet#<crc32(sensor) mod FLEET_SHARDS>``, ``sk = sensor_id``, with the stream shard its records
came from and the UTC day it was last confirmed. The processor writes it when a batch opens one of the
sensor's windows and the item is missing or from an earlier day: at most one write per sensor and day. The
check Queries the :data:`FLEET_SHARDS` keys each run and reads every sensor's newest window item: no key
is hot by minute, and a sensor is found whenever the check runs, however long it has been silent. The
item expires (TTL) ``fleet_retention_days`` after the end of the day it was confirmed, plus a day: never
before the sensor leaves the fleet by the contract (which the check judges by the newest reading).

**Shard watermarks.** Readings waiting in the stream (the processor's batching window) are not accepted
yet, so a sensor reporting every 20 s on a 90 s batching window would look silent between batches though
it never stopped. The processor records, per stream shard and once per batch, the arrival time through
which it has stored every record (``arrival_through``) and when it did (``written_at``, its clock). The
check judges a sensor at :func:`judged_at`, not at ``T``:

- the shard is *active* (a batch wrote its watermark within ``allowance`` of ``T``): at
  ``min(T, arrival_through)``, so readings still in the stream, or in a lagging processor's backlog,
  never make a sensor silent;
- the shard is *idle* (no batch for longer than ``allowance``, or no watermark): at
  ``max(arrival_through, T - allowance)``, where ``allowance`` = the mapping's batching window + the
  processor's timeout: a healthy processor has stored every record that arrived before that.

**The bound.** A sensor whose last reading is ``t`` (reaching the stream when it is taken) is announced
by the first run at or after ``t + silence_factor x interval + allowance`` while its shard's processor
keeps up (a run at most a minute later, by the schedule); while the processor lags behind by more than
``allowance`` (its iterator age alarm), once it has caught up with ``t + silence_factor x interval``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence, Set
from typing import Any

from lambdas.common.contract import NS_PER_SECOND

DEFAULT_SILENCE_FACTOR = 3
DEFAULT_FLEET_RETENTION_DAYS = 7
LATEST_INTERVAL = "latest_interval"
"""``interval_seconds`` of the reading in an item's ``latest`` (the first stored copy of it)."""
FLEET_SHARDS = 64
"""Hash shards of the fleet registry: the keys the check Queries one by one (``stacks.capacity`` prices
them; a test keeps the two equal)."""
WATERMARK_KEY = "watermark"
"""Partition key of the shard watermarks in the fleet table (sort key: the stream shard id)."""
DAY_SECONDS = 86_400


def silent_after_ns(newest_ns: int, interval_seconds: int, factor: int) -> int:
    """The instant after which a sensor whose newest reading is ``newest_ns`` is silent."""
    return newest_ns + factor * interval_seconds * NS_PER_SECOND


def is_silent(newest_ns: int, interval_seconds: int, factor: int, at_ns: int) -> bool:
    """The contract's rule: more than ``factor x interval`` between the newest reading and ``at_ns``."""
    return at_ns > silent_after_ns(newest_ns, interval_seconds, factor)


def fleet_key(shard: int) -> str:
    """A registry key: ``fleet#<hash shard>``."""
    return f"fleet#{shard}"


def fleet_shard(sensor_id: str) -> str:
    """The registry key a sensor's item sits under."""
    return fleet_key(zlib.crc32(sensor_id.encode()) % FLEET_SHARDS)


def fleet_day(at_ns: int) -> int:
    """The UTC day (days since the epoch) of an instant: a registry item is confirmed once per day."""
    return at_ns // (DAY_SECONDS * NS_PER_SECOND)


def fleet_item(sensor_id: str, shard_id: str, day: int, retention_days: int) -> dict[str, object]:
    """A sensor's registry item, confirmed on ``day``."""
    return {
        "pk": fleet_shard(sensor_id),
        "sk": sensor_id,
        "shard_id": shard_id,
        "day": day,
        "expires_at": (day + 1 + retention_days + 1) * DAY_SECONDS,
    }


def judged_at(at_ns: int, arrival_through_ns: int | None, written_at_ns: int | None, allowance_seconds: int) -> int:
    """The instant a sensor of a shard is judged at, at ``at_ns`` (see the module: active and idle shards)."""
    allowance = allowance_seconds * NS_PER_SECOND
    if arrival_through_ns is None or written_at_ns is None:
        return at_ns - allowance
    if at_ns - written_at_ns <= allowance:
        return min(at_ns, arrival_through_ns)
    return min(at_ns, max(arrival_through_ns, at_ns - allowance))


def registrations(
    opened: Mapping[str, str], stored: Mapping[str, Mapping[str, Any] | None], day: int, retention_days: int
) -> list[dict[str, object]]:
    """The registry items a batch writes: of each sensor it opens a window of (``opened``: sensor -> its
    stream shard), the ones whose item is missing, from an earlier day or names another shard (after a
    reshard). ``stored``: the items read (``None``, or absent, when missing)."""
    due = []
    for sensor, shard in sorted(opened.items()):
        item = stored.get(sensor)
        if item is None or int(item.get("day", -1)) < day or item.get("shard_id") != shard:
            due.append(fleet_item(sensor, shard, day, retention_days))
    return due


def arrival_through(records: Sequence[tuple[str, str, int]], failed: Set[str]) -> dict[str, int]:
    """Per stream shard, the arrival time through which a batch stored every record: ``records`` are
    ``(sequence number, shard, arrival ns)`` in delivery order; up to the first failed record (Lambda
    retries from it), or through the last one."""
    through: dict[str, int] = {}
    stopped: set[str] = set()
    for sequence, shard_id, arrival in records:
        shard = shard_id or "shard"
        if shard in stopped:
            continue
        if sequence in failed:
            stopped.add(shard)
            through[shard] = arrival - 1  # records are sequenced in arrival order: all before it are stored
            continue
        through[shard] = max(through.get(shard, arrival), arrival)
    return through
