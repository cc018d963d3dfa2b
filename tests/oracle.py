"""An independent oracle of the data path, written from the contract's text (version 2), not from the code.

Given the messages in stream order (the thing each was published as, the raw payload, its arrival time)
it computes what the platform must end up holding: counts per outcome, each segment's aggregate, each
segment window's aggregate, and which windows are congested. Validity is the JSON Schema oracle of
``tests.test_contract`` over exactly decoded numbers; the semantic rules, identity and aggregates use
``fractions.Fraction`` and the contract's definitions directly. Nothing here imports the handlers' logic.
"""

from __future__ import annotations

import datetime
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tests.test_contract import exact_loads, oracle

CODES = ("malformed_json", "schema_violation", "sensor_mismatch", "future_timestamp", "stale_timestamp")
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?([Zz]|([+-])(\d\d):(\d\d))")
_EPOCH = datetime.date(1970, 1, 1)


@dataclass(frozen=True)
class Sent:
    thing: str
    payload: bytes
    arrival_ns: int


def instant(timestamp: str) -> Fraction:
    """Seconds since the epoch (UTC) of a valid contract timestamp, exactly."""
    match = _STAMP.fullmatch(timestamp)
    assert match, timestamp
    day, hour, minute, second, fraction, zone, sign, off_h, off_m = match.groups()
    days = (datetime.date.fromisoformat(day) - _EPOCH).days
    offset = 0 if zone in ("Z", "z") else (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    seconds = days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second) - offset * 60
    return seconds + (Fraction(int(fraction), 10 ** len(fraction)) if fraction else Fraction(0))


def label(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` of whole epoch seconds, year 0 included (the day before 0001-01-01)."""
    day, rest = divmod(seconds, 86400)
    first = (datetime.date(1, 1, 1) - _EPOCH).days
    date = "0000-12-31" if day == first - 1 else (_EPOCH + datetime.timedelta(days=day)).isoformat()
    return f"{date}T{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}Z"


def level(vehicles: Fraction, speed: Fraction, occupancy: Fraction, limit: Fraction) -> str:
    """The contract's congestion table, first match wins, exactly."""
    if vehicles == 0:
        return "free"
    ratio = speed / limit
    for name, occ, r in (
        ("severe", 80, Fraction(1, 4)),
        ("heavy", 50, Fraction(1, 2)),
        ("moderate", 25, Fraction(3, 4)),
    ):
        if occupancy >= occ or ratio < r:
            return name
    return "free"


def _exact(value: Any) -> Fraction:
    return Fraction(Decimal(value)) if isinstance(value, Decimal) else Fraction(value)


def aggregate(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The contract's aggregate of distinct readings."""
    vehicles = sum(_exact(d["vehicle_count"]) for d in docs)
    weighted = sum(_exact(d["vehicle_count"]) * _exact(d["average_speed_kmh"]) for d in docs)
    speed = weighted / vehicles if vehicles else Fraction(0)
    occupancy = sum(_exact(d["occupancy_percent"]) for d in docs) / len(docs)
    limit = min(_exact(d.get("speed_limit_kmh", 50)) for d in docs)
    return {
        "readings": len(docs),
        "vehicles": int(vehicles),
        "average_speed_kmh": float(speed),
        "occupancy_percent": float(occupancy),
        "speed_limit_kmh": float(limit),
        "congestion_level": level(vehicles, speed, occupancy, limit),
    }


def verdict(sent: Sent, max_age_seconds: int) -> tuple[str, dict[str, Any] | None]:  # noqa: PLR0911 - one per rule
    """``("valid", document)`` or ``(code, None)``: the first rule of the contract's table that applies."""
    try:
        document = exact_loads(sent.payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "malformed_json", None
    if not isinstance(document, dict):
        return "malformed_json", None
    if not oracle.is_valid(document):
        return "schema_violation", None
    if document["sensor_id"] != sent.thing:
        return "sensor_mismatch", None
    ahead = instant(document["timestamp"]) - Fraction(sent.arrival_ns, 10**9)
    if ahead > 300:
        return "future_timestamp", None
    if -ahead > max_age_seconds:
        return "stale_timestamp", None
    return "valid", document


def canonical(moment: Fraction) -> str:
    """An instant as the platform writes it in ``alert_id``: UTC, nine fraction digits."""
    second = moment.numerator // moment.denominator
    nanos = (moment - second) * 10**9
    assert nanos.denominator == 1
    return f"{label(second)[:-1]}.{int(nanos):09d}Z"


def silent(
    distinct: dict[tuple[str, Fraction], dict[str, Any]], now: Fraction, factor: int, retention_days: int
) -> dict[str, Fraction]:
    """Contract "Silent sensors" at ``now``: each sensor in the fleet whose newest accepted reading is
    more than ``factor`` of that reading's intervals old, with that reading's instant."""
    newest: dict[str, Fraction] = {}
    for sensor, moment in distinct:
        newest[sensor] = max(moment, newest.get(sensor, moment))
    found = {}
    for sensor, moment in newest.items():
        interval = distinct[(sensor, moment)].get("interval_seconds", 60)
        if now - moment > factor * interval and now - moment <= retention_days * 86_400:
            found[sensor] = moment
    return found


def expected(
    messages: Sequence[Sent],
    *,
    window_seconds: int = 300,
    max_age_seconds: int = 86_400,
    now_ns: int | None = None,
    silence_factor: int = 3,
    fleet_retention_days: int = 7,
) -> dict[str, Any]:
    """What the stores must hold after ``messages`` (in stream order) went through the whole path, and
    the sensors silent at ``now_ns`` (default: the last arrival time)."""
    quarantined = dict.fromkeys(CODES, 0)
    distinct: dict[tuple[str, Fraction], dict[str, Any]] = {}
    duplicates = 0
    for sent in messages:
        code, document = verdict(sent, max_age_seconds)
        if document is None:
            quarantined[code] += 1
            continue
        key = (document["sensor_id"], instant(document["timestamp"]))
        if key in distinct:
            duplicates += 1  # a later copy, whatever its segment or values: the first stored wins
        else:
            distinct[key] = document
    by_segment: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_window: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (_, moment), document in distinct.items():
        by_segment[document["segment_id"]].append(document)
        second = moment.numerator // moment.denominator
        by_window[(document["segment_id"], label(second - second % window_seconds))].append(document)
    windows = {f"{s}:{w}": aggregate(docs) for (s, w), docs in sorted(by_window.items())}
    now = Fraction(now_ns if now_ns is not None else max((m.arrival_ns for m in messages), default=0), 10**9)
    quiet = silent(distinct, now, silence_factor, fleet_retention_days)
    return {
        "silent_sensors": sorted(quiet),
        "silent_since": {sensor: canonical(moment) for sensor, moment in quiet.items()},
        "records_in": len(messages),
        "accepted": len(distinct),
        "duplicates": duplicates,
        "quarantined": quarantined,
        "segments": {s: aggregate(docs) for s, docs in sorted(by_segment.items())},
        "sensors": len({sensor for sensor, _ in distinct}),
        "windows": windows,
        "congested_windows": sorted(w for w, a in windows.items() if a["congestion_level"] in ("heavy", "severe")),
    }


def stored_aggregate(item: dict[str, Any]) -> dict[str, Any]:
    """A segment aggregate item as the platform stores it, in the form :func:`aggregate` returns."""
    return {
        "readings": int(item["readings"]),
        "vehicles": int(item["vehicles"]),
        "average_speed_kmh": float(Decimal(item["average_speed_kmh"])),
        "occupancy_percent": float(Decimal(item["occupancy_percent"])),
        "speed_limit_kmh": float(Decimal(item["speed_limit_kmh"])),
        "congestion_level": item["congestion_level"],
    }


SUMMARY_KEYS = ("records_in", "accepted", "duplicates", "quarantined", "segments", "sensors", "congested_windows")


def congestion(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The congestion alerts a run delivered (outage alerts and recovery notices carry ``alert_type``)."""
    return [a for a in summary["alerts"] if "alert_type" not in a]


def assert_summary(
    summary: dict[str, Any], want: dict[str, Any], environment: str = "dev", checks: str = "once"
) -> None:
    """The run's summary equals the oracle's, exactly; every congested window has exactly one alert,
    every sensor silent at ``--now`` exactly one outage alert, and no ``alert_id`` was delivered twice.
    ``checks="rounds"``: the silence check also ran while the data flowed (``--check-every``), so an
    earlier outage may also be there, ended by its recovery notice."""
    for key in SUMMARY_KEYS:
        assert summary[key] == want[key], key
    ids = [a["alert_id"] for a in summary["alerts"]]
    assert len(ids) == len(set(ids)), "an alert_id was delivered twice"
    alerted = {f"{a['segment_id']}:{a['window_start']}" for a in congestion(summary)}
    assert set(want["congested_windows"]) <= alerted, "a congested window has no alert"
    for alert in congestion(summary):
        assert alert["alert_id"] == f"{environment}:{alert['segment_id']}:{alert['window_start']}"
    assert summary["silent_sensors"] == want["silent_sensors"]
    silent = {f"{environment}:silent:{sensor}:{since}" for sensor, since in want["silent_since"].items()}
    outages = sorted(a["alert_id"] for a in summary["alerts"] if a.get("alert_type") == "sensor_silent")
    recovered = sorted(a["alert_id"] for a in summary["alerts"] if a.get("alert_type") == "sensor_recovered")
    if checks == "once":
        assert (outages, recovered) == (sorted(silent), []), "each silent sensor has exactly one outage alert"
    else:
        assert silent <= set(outages), "each sensor silent at --now has its outage alert"
        assert sorted(f"{o}:recovered" for o in set(outages) - silent) == recovered, "every other one recovered"
    assert summary["records_in"] == summary["accepted"] + summary["duplicates"] + sum(summary["quarantined"].values())
