"""Silent sensors (contract version 2, "Silent sensors"): the rule and the minute index both sides share.

A sensor is **silent** at ``T`` when its newest accepted reading's timestamp is more than
``silence_factor x interval_seconds`` (of that reading) before ``T``: from ``silent_after`` on, strictly.

**The index.** The processor writes, on the window item holding a sensor's newest reading of a batch,
``silent_minute``: the first minute boundary after ``silent_after``, or the minute boundary at or before
the processing time if that is later (a reading processed after its sensor's silence began). A sparse,
keys-only global secondary index on it then holds, for each minute, the sensors that fall silent during
it unless they report again (a newer reading moves the item on, or supersedes it with a newer window's
item). The check, running every minute at ``T``, reads the minutes up to the last boundary at or before
``T`` (each of them is past its entries' ``silent_after``), and one minute before its cursor again: the
index lags its table a little, and a processor's clock may be a little behind the check's.

**Cost.** The index only takes a write when an item's minute changes (a delete and a put, each under
1 KB) or an item is new: keys-only, so a write within the same minute leaves the index alone.
"""

from __future__ import annotations

from typing import Any

from lambdas.common.contract import NS_PER_SECOND, format_instant

DEFAULT_SILENCE_FACTOR = 3
DEFAULT_FLEET_RETENTION_DAYS = 7
MINUTE_NS = 60 * NS_PER_SECOND
SILENT_MINUTE = "silent_minute"
LATEST_INTERVAL = "latest_interval"
"""``interval_seconds`` of the reading in an item's ``latest`` (the first stored copy of it)."""


def silent_after_ns(newest_ns: int, interval_seconds: int, factor: int) -> int:
    """The instant after which a sensor whose newest reading is ``newest_ns`` is silent."""
    return newest_ns + factor * interval_seconds * NS_PER_SECOND


def is_silent(newest_ns: int, interval_seconds: int, factor: int, at_ns: int) -> bool:
    """The contract's rule: more than ``factor x interval`` between the newest reading and ``at_ns``."""
    return at_ns > silent_after_ns(newest_ns, interval_seconds, factor)


def minute_after(at_ns: int) -> int:
    """The first minute boundary strictly after ``at_ns`` (UTC nanoseconds)."""
    return (at_ns // MINUTE_NS + 1) * MINUTE_NS


def minute_label(boundary_ns: int) -> str:
    """``YYYY-MM-DDTHH:MMZ``: the index's hash key for a minute boundary."""
    return format_instant(boundary_ns)[:16] + "Z"


def minute_at_or_before(at_ns: int) -> int:
    """The last minute boundary at or before ``at_ns``."""
    return at_ns - at_ns % MINUTE_NS


def marker(newest_ns: int, interval_seconds: int, factor: int, now_ns: int) -> dict[str, Any]:
    """The attribute that puts an item holding a sensor's newest reading in the index (``now_ns``: the
    processing time)."""
    after = silent_after_ns(newest_ns, interval_seconds, factor)
    return {SILENT_MINUTE: minute_label(max(minute_after(after), minute_at_or_before(now_ns)))}
