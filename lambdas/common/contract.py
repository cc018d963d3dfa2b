"""The reading contract (``contracts/``) as pure functions: parse, validate, congestion, aggregate.

Validation accepts and rejects exactly what ``traffic-reading.schema.json`` does, with ``format:
date-time`` asserted as RFC 3339 (as the JSON Schema test suite reads it, leap seconds included) and
``pattern`` read with ECMA-262 semantics (``$`` is the end of the string, not before a final newline),
plus the contract's semantic rules. It is hand-written for speed; a property test checks it
against a JSON Schema validator.

No AWS and no I/O here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from functools import lru_cache
from typing import Any, NamedTuple

# Rejection reason codes (contract README).
MALFORMED_JSON = "malformed_json"
SCHEMA_VIOLATION = "schema_violation"
FUTURE_TIMESTAMP = "future_timestamp"
REASONS = (MALFORMED_JSON, SCHEMA_VIOLATION, FUTURE_TIMESTAMP)

FUTURE_TOLERANCE_NS = 300 * 1_000_000_000
DEFAULT_SPEED_LIMIT_KMH = 50
DEFAULT_INTERVAL_SECONDS = 60
NS_PER_SECOND = 1_000_000_000

LEVELS = ("free", "moderate", "heavy", "severe")
ALERT_LEVELS = frozenset({"heavy", "severe"})

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# RFC 3339 date-time (the JSON Schema "date-time" format); 'T' and 'Z' are case-insensitive.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_REQUIRED = ("sensor_id", "segment_id", "timestamp", "vehicle_count", "average_speed_kmh", "occupancy_percent")
_REQUIRED_SET = frozenset(_REQUIRED)


class Reading(NamedTuple):
    """A valid reading. ``instant_ns`` is its timestamp as UTC nanoseconds since the epoch.

    Immutable; a named tuple rather than a frozen dataclass because a batch creates up to 10,000 of
    them and a frozen dataclass's ``__init__`` costs several times a tuple's.
    """

    sensor_id: str
    segment_id: str
    timestamp: str
    instant_ns: int
    vehicle_count: int
    average_speed_kmh: float
    occupancy_percent: float
    speed_limit_kmh: float
    interval_seconds: int

    @property
    def key(self) -> str:
        """Identity within a sensor: the UTC instant, so equal instants written differently are one reading."""
        return format_instant(self.instant_ns)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    detail: str


class _Invalid(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)
"""``json.loads(text, parse_constant=...)`` without building a decoder per call."""


def decode(payload: bytes) -> dict[str, Any]:
    """UTF-8 JSON object, else :class:`_Invalid` (``malformed_json``)."""
    try:
        text = payload.decode("utf-8")
        document = _DECODER.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Invalid(MALFORMED_JSON, f"not UTF-8 JSON: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise _Invalid(MALFORMED_JSON, f"top level is {type(document).__name__}, not an object")
    return document


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    # JSON Schema: an integer is any number with a zero fractional part (1.0 is an integer).
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _number(document: Mapping[str, Any], name: str, low: float, high: float, *, integer: bool) -> Any:
    value = document[name]
    kind = type(value)  # the JSON decoder makes exact ints and floats; bool is neither here
    if (kind is int or (kind is float and (not integer or value.is_integer()))) and low <= value <= high:
        return value  # the common case, decided without the detailed checks below
    if integer and not _is_integer(value):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} is not an integer")
    if not integer and not _is_number(value):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} is not a number")
    if not low <= value <= high:  # NaN cannot reach here (not JSON); inf fails the range
        raise _Invalid(SCHEMA_VIOLATION, f"{name} {value!r} is outside {low}..{high}")
    return value


def _identifier(document: Mapping[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} is not a string")
    if not _ID.fullmatch(value):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} does not match the id pattern")
    return value


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 in the proleptic Gregorian calendar (any year)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


@lru_cache(maxsize=4096)
def parse_instant(value: str) -> int:
    """RFC 3339 date-time with an explicit offset → UTC nanoseconds since the epoch.

    As JSON Schema's ``date-time`` format: 'T' and 'Z' in either case, any number of fraction digits,
    year 0000 invalid, and a leap second (``:60``) valid only at 23:59 UTC (after the offset); it counts
    as the last nanosecond of that minute. Fractions finer than a nanosecond are truncated. Raises
    ``ValueError`` for anything else.
    """
    match = _DATE_TIME.fullmatch(value)
    if not match:
        raise ValueError("not an RFC 3339 date-time with offset")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    if year == 0 or not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise ValueError("no such date")
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError("no such time")
    offset_minutes = 0
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError("no such offset")
        offset_minutes = (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    if second == 60:
        if (hour * 60 + minute - offset_minutes) % 1440 != 1439:
            raise ValueError("a leap second is only valid at 23:59:60 UTC")
        second, nanos = 59, NS_PER_SECOND - 1
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset_minutes * 60) * NS_PER_SECOND + nanos


@lru_cache(maxsize=4096)
def format_instant(instant_ns: int) -> str:
    """UTC nanoseconds → ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (fixed width, so strings sort as instants)."""
    seconds, nanos = divmod(instant_ns, NS_PER_SECOND)
    days, second_of_day = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{nanos:09d}Z"


def validate(document: Mapping[str, Any], now_ns: int) -> Reading:
    """A decoded object → :class:`Reading`, or :class:`_Invalid` with the reason code."""
    if not document.keys() >= _REQUIRED_SET:
        missing = next(name for name in _REQUIRED if name not in document)
        raise _Invalid(SCHEMA_VIOLATION, f"{missing} is missing")
    sensor_id = _identifier(document, "sensor_id")
    segment_id = _identifier(document, "segment_id")
    timestamp = document["timestamp"]
    if not isinstance(timestamp, str):
        raise _Invalid(SCHEMA_VIOLATION, "timestamp is not a string")
    try:
        instant = parse_instant(timestamp)
    except ValueError as exc:
        raise _Invalid(SCHEMA_VIOLATION, f"timestamp: {exc}") from None
    vehicles = _number(document, "vehicle_count", 0, 10000, integer=True)
    speed = _number(document, "average_speed_kmh", 0, 300, integer=False)
    occupancy = _number(document, "occupancy_percent", 0, 100, integer=False)
    limit = _number(document, "speed_limit_kmh", 5, 200, integer=False) if "speed_limit_kmh" in document else None
    interval = _number(document, "interval_seconds", 1, 3600, integer=True) if "interval_seconds" in document else None
    if instant - now_ns > FUTURE_TOLERANCE_NS:
        raise _Invalid(FUTURE_TIMESTAMP, f"timestamp is {(instant - now_ns) / NS_PER_SECOND:.0f} s ahead")
    return Reading(
        sensor_id=sensor_id,
        segment_id=segment_id,
        timestamp=timestamp,
        instant_ns=instant,
        vehicle_count=int(vehicles),
        average_speed_kmh=float(speed),
        occupancy_percent=float(occupancy),
        speed_limit_kmh=float(DEFAULT_SPEED_LIMIT_KMH if limit is None else limit),
        interval_seconds=int(DEFAULT_INTERVAL_SECONDS if interval is None else interval),
    )


def parse_reading(payload: bytes, now_ns: int) -> Reading | Rejection:
    """The whole contract for one payload: a :class:`Reading`, or a :class:`Rejection` with its code."""
    try:
        return validate(decode(payload), now_ns)
    except _Invalid as invalid:
        return Rejection(invalid.reason, invalid.detail)


def congestion_level(vehicle_count: float, average_speed_kmh: float, occupancy_percent: float,
                     speed_limit_kmh: float = DEFAULT_SPEED_LIMIT_KMH) -> str:  # fmt: skip
    """The contract's congestion table, first match wins."""
    if vehicle_count == 0:
        return "free"
    ratio = average_speed_kmh / speed_limit_kmh
    if occupancy_percent >= 80 or ratio < 0.25:
        return "severe"
    if occupancy_percent >= 50 or ratio < 0.50:
        return "heavy"
    if occupancy_percent >= 25 or ratio < 0.75:
        return "moderate"
    return "free"


@dataclass(frozen=True, slots=True)
class Aggregate:
    """A segment's aggregate over a set of distinct readings (contract README)."""

    readings: int
    vehicles: int
    average_speed_kmh: float
    occupancy_percent: float
    speed_limit_kmh: float
    congestion_level: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "readings": self.readings,
            "vehicles": self.vehicles,
            "average_speed_kmh": self.average_speed_kmh,
            "occupancy_percent": self.occupancy_percent,
            "speed_limit_kmh": self.speed_limit_kmh,
            "congestion_level": self.congestion_level,
        }


@dataclass(frozen=True, slots=True)
class Measurement:
    """The part of a reading an aggregate needs."""

    vehicle_count: int
    average_speed_kmh: float
    occupancy_percent: float
    speed_limit_kmh: float


def exact(value: float | int) -> Decimal:
    """The decimal a JSON number was written as (its shortest round-tripping form), exactly."""
    return _decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def exact_text(value: Decimal | None) -> str | None:
    """An exact decimal as stored: text, because a DynamoDB number holds at most 38 digits between
    1e-130 and 1e126, and the schema accepts readings (1e-300) and sums (1e-40 + 50) beyond that."""
    return None if value is None else str(value)


_decimal = lru_cache(maxsize=8192)(Decimal)
"""Decimals are immutable: readings repeat their values, so convert each written form once."""


@dataclass(frozen=True, slots=True)
class Sums:
    """Exact running sums of distinct readings: adding them in any grouping or order gives one result.

    They are what the stores keep per sensor and window, so an aggregate over many sensors and windows
    equals the aggregate over all their readings at once.
    """

    readings: int = 0
    vehicles: int = 0
    speed_x_vehicles: Decimal = Decimal(0)
    occupancy: Decimal = Decimal(0)
    min_speed_limit: Decimal | None = None

    @classmethod
    def of(cls, m: Measurement) -> Sums:
        return cls(
            1, m.vehicle_count, m.vehicle_count * exact(m.average_speed_kmh), exact(m.occupancy_percent),
            exact(m.speed_limit_kmh),
        )  # fmt: skip

    def attributes(self) -> dict[str, Any]:
        """The sums as a stored item's attributes (decimals as text, see ``exact_text``)."""
        return {
            "reading_count": self.readings,
            "vehicles": self.vehicles,
            "speed_x_vehicles": exact_text(self.speed_x_vehicles),
            "occupancy_sum": exact_text(self.occupancy),
            "min_speed_limit": exact_text(self.min_speed_limit),
        }

    @classmethod
    def from_attributes(cls, item: Mapping[str, Any]) -> Sums:
        """The sums a stored item carries (written by :meth:`attributes`)."""
        return cls(
            int(item["reading_count"]),
            int(item["vehicles"]),
            Decimal(item["speed_x_vehicles"]),
            Decimal(item["occupancy_sum"]),
            Decimal(item["min_speed_limit"]),
        )

    def __add__(self, other: Sums) -> Sums:
        limits = [x for x in (self.min_speed_limit, other.min_speed_limit) if x is not None]
        with localcontext(EXACT_CONTEXT):
            return Sums(
                self.readings + other.readings,
                self.vehicles + other.vehicles,
                self.speed_x_vehicles + other.speed_x_vehicles,
                self.occupancy + other.occupancy,
                min(limits) if limits else None,
            )

    def aggregate(self) -> Aggregate:
        if not self.readings or self.min_speed_limit is None:
            raise ValueError("an aggregate needs at least one reading")
        with localcontext(EXACT_CONTEXT):
            speed = float(self.speed_x_vehicles / self.vehicles) if self.vehicles else 0.0
            occupancy = float(self.occupancy / self.readings)
        limit = float(self.min_speed_limit)
        return Aggregate(
            readings=self.readings,
            vehicles=self.vehicles,
            average_speed_kmh=speed,
            occupancy_percent=occupancy,
            speed_limit_kmh=limit,
            congestion_level=congestion_level(self.vehicles, speed, occupancy, limit),
        )


EXACT_CONTEXT = Context(prec=80)
"""Enough digits that sums of readings' decimals are exact."""


def total(sums: Iterable[Sums]) -> Sums:
    """The sum of ``sums`` (the same as adding them pairwise, in one exact context)."""
    readings = vehicles = 0
    speed_x_vehicles = occupancy = Decimal(0)
    limit: Decimal | None = None
    with localcontext(EXACT_CONTEXT):
        for s in sums:
            readings += s.readings
            vehicles += s.vehicles
            speed_x_vehicles += s.speed_x_vehicles
            occupancy += s.occupancy
            if s.min_speed_limit is not None and (limit is None or s.min_speed_limit < limit):
                limit = s.min_speed_limit
    return Sums(readings, vehicles, speed_x_vehicles, occupancy, limit)


def aggregate(measurements: Iterable[Measurement]) -> Aggregate:
    """Aggregate distinct readings, with exact decimal sums (independent of order and grouping)."""
    return total(Sums.of(m) for m in measurements).aggregate()


def window_start_ns(instant_ns: int, window_seconds: int) -> int:
    """Start of the aggregation window holding ``instant_ns`` (windows are aligned to the epoch)."""
    width = window_seconds * NS_PER_SECOND
    return instant_ns - instant_ns % width
