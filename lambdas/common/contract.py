"""The reading contract (``contracts/``) as pure functions: parse, validate, congestion, aggregate.

Validation accepts and rejects exactly what ``traffic-reading.schema.json`` (contract version 2) does,
with ``format: date-time`` asserted as RFC 3339 and ``pattern`` read with ECMA-262 semantics (``$`` is
the end of the string, not before a final newline); the ``timestamp`` pattern excludes leap seconds and
fractions finer than a nanosecond. Then the contract's semantic rules, in its order: origin
(``sensor_mismatch``), then the time rules against the record's *arrival* time (``future_timestamp``,
``stale_timestamp``). It is hand-written for speed; a property test checks it against a JSON Schema
validator.

Numbers are exact: JSON numbers are decoded as :class:`~decimal.Decimal` (and integers of any length),
never as binary floats, and every decision (ranges, congestion thresholds, aggregates) compares exact
values: ``ratio < 0.25`` is ``4 * speed < limit``, a mean ``>= 80`` is ``sum >= 80 * n``. A sum is exact
for literals of any length and any exponent, in bounded space (see :class:`Sparse`): a plain ``Decimal``
while its digits span at most :data:`DENSE_DIGITS` places (every realistic sum), else a short list of
exact blocks, so that ``1e-999999999`` added to ``50`` costs two blocks, not a billion digits.

No AWS and no I/O here.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MAX_PREC,
    MIN_EMIN,
    ROUND_DOWN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from functools import lru_cache
from typing import Any, NamedTuple

from lambdas.common.json_syntax import top_level_members

# Rejection reason codes (contract README).
MALFORMED_JSON = "malformed_json"
SCHEMA_VIOLATION = "schema_violation"
SENSOR_MISMATCH = "sensor_mismatch"
FUTURE_TIMESTAMP = "future_timestamp"
STALE_TIMESTAMP = "stale_timestamp"
REASONS = (MALFORMED_JSON, SCHEMA_VIOLATION, SENSOR_MISMATCH, FUTURE_TIMESTAMP, STALE_TIMESTAMP)
"""Every rejection code, in the contract's order (the first that applies is the record's)."""

FUTURE_TOLERANCE_NS = 300 * 1_000_000_000
DEFAULT_MAX_READING_AGE_SECONDS = 86_400
DEFAULT_SPEED_LIMIT_KMH = 50
DEFAULT_INTERVAL_SECONDS = 60
NS_PER_SECOND = 1_000_000_000

LEVELS = ("free", "moderate", "heavy", "severe")
ALERT_LEVELS = frozenset({"heavy", "severe"})

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
SENSOR_ID = _ID
"""The schema's ``sensor_id`` (and ``segment_id``) pattern, for whoever names sensors (``lambdas.common.identity``)."""
# The schema's timestamp pattern (no second 60, 1-9 fraction digits) with the parts RFC 3339 checks.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):([0-5]\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
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
    average_speed_kmh: Decimal
    occupancy_percent: Decimal
    speed_limit_kmh: Decimal
    interval_seconds: int

    @property
    def key(self) -> str:
        """Identity within a sensor: the UTC instant, so equal instants written differently are one reading.

        ``format_instant(instant_ns)``; a timestamp already written that way (UTC, ``T`` and ``Z``, whole
        seconds or nine fraction digits) is its own key."""
        timestamp = self.timestamp
        if len(timestamp) == 20 and timestamp[19] == "Z" and timestamp[10] == "T":
            return timestamp[:19] + ".000000000Z"
        if len(timestamp) == 30 and timestamp[29] == "Z" and timestamp[10] == "T" and timestamp[19] == ".":
            return timestamp
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


def _any_decimal(text: str) -> Decimal:
    """A number literal as its exact decimal, however long. An exponent beyond what ``Decimal`` holds
    (about 10**18) stands for a value so large that it fails every range (infinity), or so small that
    it is the smallest positive decimal of the same sign: only the contract's ranges can see it."""
    try:
        return Decimal(text)
    except InvalidOperation:
        mantissa, _, exponent = text.lower().partition("e")
        if Decimal(mantissa) == 0:
            return Decimal(0)
        sign = "-" if mantissa.startswith("-") else ""
        return Decimal(f"{sign}Infinity") if not exponent.startswith("-") else Decimal(f"{sign}1e-999999999999999999")


_DECODER = json.JSONDecoder(parse_constant=_no_constants, parse_float=Decimal)
"""Floats as exact decimals, integers as ints (the common case, decided in C)."""
_LONG_DECODER = json.JSONDecoder(parse_constant=_no_constants, parse_float=_any_decimal, parse_int=_any_decimal)
"""For the rare document the fast one refuses: an integer past Python's digit limit, or an exponent
past ``Decimal``'s. Every number literal is valid JSON however many digits it has."""


_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
"""The decoder's C scanner: ``decode`` without its two Python frames, for a text that starts with its value."""


def _loads(text: str) -> Any:
    try:
        try:
            document, end = _SCAN(text, 0)
        except StopIteration:  # leading whitespace, or no value at all: the whole decoder says which
            return _DECODER.decode(text)
        return document if end == len(text) else _DECODER.decode(text)  # trailing whitespace, or extra data
    except (InvalidOperation, ValueError) as exc:
        if isinstance(exc, ValueError) and "digits" not in str(exc):
            raise
        return _LONG_DECODER.decode(text)


def decode(payload: bytes) -> dict[str, Any]:
    """UTF-8 JSON object, else :class:`_Invalid` (``malformed_json``).

    A document nested deeper than ``json`` recurses (an extra property a thousand levels deep is valid
    JSON) is checked by :func:`~lambdas.common.json_syntax.top_level_members` instead, without recursion,
    and only its top-level scalars are decoded: a nested member is kept as an empty list or object, as
    good as the real one for the schema (no field of a reading is a list or an object)."""
    try:
        text = payload.decode("utf-8")
        try:
            document = _loads(text)
        except RecursionError:
            document = _decode_deep(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Invalid(MALFORMED_JSON, f"not UTF-8 JSON: {type(exc).__name__}") from None
    if not isinstance(document, dict):
        raise _Invalid(MALFORMED_JSON, f"top level is {type(document).__name__}, not an object")
    return document


def _decode_deep(text: str) -> dict[str, Any] | list[Any]:
    """A document too deep for ``json``: its syntax checked without recursion, its top-level members
    decoded (a nested one as an empty list or object), or ``[]`` when its top level is not an object."""
    members = top_level_members(text)
    if members is None:
        return []
    document: dict[str, Any] = {}
    for key, start, end in members:
        first = text[start]
        document[_DECODER.decode(key)] = [] if first == "[" else {} if first == "{" else _loads(text[start:end])
    return document


def _is_number(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    # JSON Schema: an integer is any number with a zero fractional part (1.0 is an integer).
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value()


def _number(document: Mapping[str, Any], name: str, low: int, high: int, *, integer: bool) -> Any:
    """The value, exactly as written (an ``int`` or a ``Decimal``), if the schema allows it."""
    value = document[name]
    kind = type(value)  # the JSON decoder makes ints and Decimals; bool is neither here
    if (kind is int or (kind is Decimal and not integer)) and low <= value <= high:
        return value  # the common case, decided without the detailed checks below
    if integer and not _is_integer(value):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} is not an integer")
    if not integer and not _is_number(value):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} is not a number")
    if not low <= value <= high:  # NaN cannot reach here (not JSON); infinity fails the range
        shown = str(value) if len(str(value)) <= 40 else f"a {len(str(value))}-character number"
        raise _Invalid(SCHEMA_VIOLATION, f"{name} {shown} is outside {low}..{high}")
    return value


def _identifier(document: Mapping[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} is not a string")
    if not _ID.fullmatch(value):
        raise _Invalid(SCHEMA_VIOLATION, f"{name} does not match the id pattern")
    if len(_VALID_IDS) >= _VALID_IDS_KEPT:
        _VALID_IDS.clear()
    _VALID_IDS.add(value)
    return value


_VALID_IDS: set[str] = set()
"""Ids seen to match the pattern (sensors and segments repeat in every batch): a set lookup instead of a
regular expression (only a ``str`` is looked up; the set is emptied when it holds 100,000)."""
_VALID_IDS_KEPT = 100_000


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

    As the contract's ``timestamp`` (the ``date-time`` format and the pattern): 'T' and 'Z' in either
    case, one to nine fraction digits, year 0000 invalid, no leap second. Raises ``ValueError`` for
    anything else.
    """
    match = _DATE_TIME.fullmatch(value)
    if not match:
        raise ValueError("not an RFC 3339 date-time with offset")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zulu, sign, off_h, off_m = match.groups()[6:]
    if year == 0 or not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise ValueError("no such date")
    if hour > 23 or minute > 59:
        raise ValueError("no such time")
    offset_minutes = 0
    if not zulu:
        if int(off_h) > 23 or int(off_m) > 59:
            raise ValueError("no such offset")
        offset_minutes = (int(off_h) * 60 + int(off_m)) * (1 if sign == "+" else -1)
    nanos = int((fraction or "0").ljust(9, "0"))
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (seconds - offset_minutes * 60) * NS_PER_SECOND + nanos


@lru_cache(maxsize=4096)
def stored_instant_ns(value: str) -> int:
    """The inverse of :func:`format_instant` (and of a window label, ``YYYY-MM-DDTHH:MM:SSZ``): an
    instant as the platform stores it, year 0000 included (a valid timestamp with a negative offset on
    0001-01-01 lands there in UTC), which :func:`parse_instant` refuses as a sensor's timestamp."""
    days = _days_from_civil(int(value[0:4]), int(value[5:7]), int(value[8:10]))
    seconds = days * 86400 + int(value[11:13]) * 3600 + int(value[14:16]) * 60 + int(value[17:19])
    fraction = value[20:-1] if value[19] == "." else ""
    return seconds * NS_PER_SECOND + (int(fraction.ljust(9, "0")) if fraction else 0)


def format_instant(instant_ns: int) -> str:
    """UTC nanoseconds → ``YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`` (fixed width, so strings sort as instants)."""
    seconds, nanos = divmod(instant_ns, NS_PER_SECOND)
    days, second_of_day = divmod(seconds, 86400)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(second_of_day, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{nanos:09d}Z"


def validate(
    document: Mapping[str, Any],
    arrival_ns: int,
    *,
    thing: str | None = None,
    max_age_ns: int | None = None,
) -> Reading:
    """A decoded object → :class:`Reading`, or :class:`_Invalid` with the first reason code that applies.

    ``arrival_ns`` is when the stream accepted the record (the same on every read of it); ``thing`` is
    the thing name it was published under (the partition key), ``max_age_ns`` the environment's
    ``max_reading_age_seconds``. ``None`` skips that rule (schema checks alone).
    """
    if not document.keys() >= _REQUIRED_SET:
        missing = next(name for name in _REQUIRED if name not in document)
        raise _Invalid(SCHEMA_VIOLATION, f"{missing} is missing")
    # Each field is checked in the schema's order; the common case (a str, an int, a Decimal in range) is
    # decided inline, anything else by the detailed checks, which raise the first violation.
    sensor_id = document["sensor_id"]
    if type(sensor_id) is not str or sensor_id not in _VALID_IDS:
        sensor_id = _identifier(document, "sensor_id")
    segment_id = document["segment_id"]
    if type(segment_id) is not str or segment_id not in _VALID_IDS:
        segment_id = _identifier(document, "segment_id")
    timestamp = document["timestamp"]
    if not isinstance(timestamp, str):
        raise _Invalid(SCHEMA_VIOLATION, "timestamp is not a string")
    try:
        instant = parse_instant(timestamp)
    except ValueError as exc:
        raise _Invalid(SCHEMA_VIOLATION, f"timestamp: {exc}") from None
    vehicles = document["vehicle_count"]
    if type(vehicles) is not int or not 0 <= vehicles <= 10000:
        vehicles = int(_number(document, "vehicle_count", 0, 10000, integer=True))
    speed = document["average_speed_kmh"]
    if type(speed) is not Decimal or not 0 <= speed <= 300:
        speed = as_decimal(_number(document, "average_speed_kmh", 0, 300, integer=False))
    occupancy = document["occupancy_percent"]
    if type(occupancy) is not Decimal or not 0 <= occupancy <= 100:
        occupancy = as_decimal(_number(document, "occupancy_percent", 0, 100, integer=False))
    limit = document.get("speed_limit_kmh", _ABSENT)
    if limit is _ABSENT:
        limit = DEFAULT_SPEED_LIMIT
    elif type(limit) is int and 5 <= limit <= 200:
        limit = _small_decimal(limit)
    else:
        limit = as_decimal(_number(document, "speed_limit_kmh", 5, 200, integer=False))
    interval = document.get("interval_seconds", _ABSENT)
    if interval is _ABSENT:
        interval = DEFAULT_INTERVAL_SECONDS
    elif type(interval) is not int or not 1 <= interval <= 3600:
        interval = int(_number(document, "interval_seconds", 1, 3600, integer=True))
    if thing is not None and sensor_id != thing:
        raise _Invalid(SENSOR_MISMATCH, f"sensor_id {sensor_id!r} was published as thing {thing[:128]!r}")
    if instant - arrival_ns > FUTURE_TOLERANCE_NS:
        raise _Invalid(FUTURE_TIMESTAMP, f"timestamp is {(instant - arrival_ns) // NS_PER_SECOND} s after arrival")
    if max_age_ns is not None and arrival_ns - instant > max_age_ns:
        raise _Invalid(STALE_TIMESTAMP, f"timestamp is {(arrival_ns - instant) // NS_PER_SECOND} s before arrival")
    # positional: a named tuple built with keywords costs twice as much
    return Reading(sensor_id, segment_id, timestamp, instant, vehicles, speed, occupancy, limit, interval)


_ABSENT = object()
_small_decimal = lru_cache(maxsize=256)(Decimal)
"""Speed limits are a few integers: each as a ``Decimal`` once."""


DEFAULT_SPEED_LIMIT = Decimal(DEFAULT_SPEED_LIMIT_KMH)


def as_decimal(value: int | Decimal) -> Decimal:
    """A decoded number as a ``Decimal`` (it is one already, or an exact ``int``)."""
    return value if type(value) is Decimal else Decimal(value)


def parse_reading(
    payload: bytes, arrival_ns: int, *, thing: str | None = None, max_age_ns: int | None = None
) -> Reading | Rejection:
    """The whole contract for one payload: a :class:`Reading`, or a :class:`Rejection` with its code."""
    try:
        return validate(decode(payload), arrival_ns, thing=thing, max_age_ns=max_age_ns)
    except _Invalid as invalid:
        return Rejection(invalid.reason, invalid.detail)


Number = int | float | Decimal


def congestion_level(vehicle_count: Number, average_speed_kmh: Number, occupancy_percent: Number,
                     speed_limit_kmh: Number = DEFAULT_SPEED_LIMIT_KMH) -> str:  # fmt: skip
    """The contract's congestion table for one reading, first match wins, compared exactly.

    A ``float`` argument counts as the decimal it prints as (its shortest round-trip form).
    """
    return level_of_sums(
        exact(vehicle_count),
        speed_sum=exact(average_speed_kmh),
        speed_weight=1,
        occupancy_sum=exact(occupancy_percent),
        occupancy_count=1,
        limit=exact(speed_limit_kmh),
    )


def level_of_sums(
    vehicles: Decimal | int,
    *,
    speed_sum: ExactSum,
    speed_weight: Decimal | int,
    occupancy_sum: ExactSum,
    occupancy_count: int,
    limit: Decimal,
) -> str:
    """The congestion table for ``speed = speed_sum / speed_weight`` and ``occupancy = occupancy_sum /
    occupancy_count`` without dividing: ``ratio < 0.25`` is ``4 * speed_sum < limit * speed_weight``,
    ``occupancy >= 80`` is ``occupancy_sum >= 80 * occupancy_count`` (all weights positive)."""
    if vehicles == 0:
        return "free"
    try:  # dense sums; a Sparse one raises TypeError (it has no arithmetic), a wide product Inexact
        multiply = EXACT_CONTEXT.multiply
        speed4 = multiply(speed_sum, 4)  # type: ignore[arg-type]
        limit_w = multiply(limit, speed_weight)
        if occupancy_sum >= 80 * occupancy_count or speed4 < limit_w:  # type: ignore[operator]
            level = "severe"
        elif occupancy_sum >= 50 * occupancy_count or speed4 < multiply(limit_w, 2):  # type: ignore[operator]
            level = "heavy"
        elif occupancy_sum >= 25 * occupancy_count or speed4 < multiply(limit_w, 3):  # type: ignore[operator]
            level = "moderate"
        else:
            level = "free"
    except (Inexact, TypeError):  # a sparse sum, or a factor of 10,000 digits or more
        return _sparse_level(speed_sum, speed_weight, occupancy_sum, occupancy_count, limit)
    return level


_QUARTERS = ((80, Decimal("0.25"), "severe"), (50, Decimal("0.50"), "heavy"), (25, Decimal("0.75"), "moderate"))


def _sparse_level(
    speed_sum: ExactSum, speed_weight: Decimal | int, occupancy_sum: ExactSum, occupancy_count: int, limit: Decimal
) -> str:
    """:func:`level_of_sums` when a sum is :class:`Sparse`: ``4 * s < limit * w * k`` is ``s < limit * w * k / 4``
    (an exact decimal: dividing by 4 adds two places), each side compared exactly by :func:`compare`."""
    limit_w = _BIG.multiply(limit, Decimal(speed_weight))
    for occupancy, quarter, level in _QUARTERS:
        if compare(occupancy_sum, Decimal(occupancy * occupancy_count)) >= 0:
            return level
        if compare(speed_sum, _BIG.multiply(limit_w, quarter)) < 0:
            return level
    return "free"


def product(a: Decimal | int, b: Decimal | int) -> Decimal:
    """``a x b`` exactly: an exact product has at most the digits of both factors, so a factor longer than
    the exact context (a literal of 10,000 digits or more) is multiplied in an unbounded one."""
    try:
        return EXACT_CONTEXT.multiply(a, b)
    except Inexact:
        return _BIG.multiply(Decimal(a), Decimal(b))


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
    average_speed_kmh: Number
    occupancy_percent: Number
    speed_limit_kmh: Number


def exact(value: Number) -> Decimal:
    """A number as an exact decimal: a ``Decimal`` as it is, an ``int`` exactly, a ``float`` as the
    decimal it prints as (its shortest round-tripping form)."""
    if type(value) is Decimal:
        return value
    return _decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def exact_text(value: Decimal | None) -> str | None:
    """An exact decimal as stored: text, because a DynamoDB number holds at most 38 digits between
    1e-130 and 1e126, and the schema accepts readings (1e-300) and sums (1e-40 + 50) beyond that."""
    return None if value is None else str(value)


_decimal = lru_cache(maxsize=8192)(Decimal)
"""Decimals are immutable: readings repeat their values, so convert each written form once."""


DENSE_DIGITS = 10_000
"""A sum whose digits span at most this many places is one plain ``Decimal`` (every realistic sum is)."""
EXACT_CONTEXT = Context(
    prec=DENSE_DIGITS, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow]
)
"""Arithmetic on dense sums: exact or :class:`~decimal.Inexact` is raised (then the sum becomes
:class:`Sparse`); never a rounded result."""
_BIG = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
"""Unbounded exact arithmetic: only ever given operands whose exact result is known to be short (the
operands' own digits plus a few places), never two numbers far apart."""
GAP = 24
"""Blocks of a :class:`Sparse` sum are separated by more than this many zero places."""
_SEPARATOR = " + "
"""Between the blocks of a sparse sum's text (no decimal's text has a space, so the old form, one
decimal, reads as it always did)."""
_ZERO_RUN = re.compile(f"0{{{GAP + 1},}}")


class Sparse:
    """An exact non-negative decimal whose digits span more than :data:`DENSE_DIGITS` places, as the sum
    of *blocks*: positive decimals, lowest place first, each with no run of more than :data:`GAP` zeros
    inside it and more than :data:`GAP` zero places between it and the next. The decomposition is the
    value's own (its nonzero digits grouped by gaps), so equal values have equal blocks.

    Size: a block holds the digits of the terms that fell into it, at most :data:`GAP` zeros per term
    between them, and carries (a place per factor of ten in the number of terms), so the text of a sum of
    terms ``t`` is at most ``sum(len(str(t)) + GAP + 40)``: bounded by the literals' own length, never by
    their exponent span (``1e-999999999 + 50`` is two blocks, ``"5E+1 + 1E-999999999"``). No exact form
    can do with less in general: ``n`` literals ``1e-k`` at places far apart have ``2**n`` distinct subset
    sums, each of which a later reading can bring to a threshold, so an exact sum of wide literals grows
    with them; a sum of plain ones (every place within 10,000) stays one dense decimal however many.
    """

    __slots__ = ("blocks",)

    def __init__(self, blocks: tuple[Decimal, ...]) -> None:
        self.blocks = blocks

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sparse) and self.blocks == other.blocks

    def __hash__(self) -> int:
        return hash(self.blocks)

    def __str__(self) -> str:
        return _SEPARATOR.join([str(b) for b in reversed(self.blocks)])

    def __repr__(self) -> str:
        return f"Sparse({str(self)[:80]!r})"


ExactSum = Decimal | Sparse


def _low(block: Decimal) -> int:
    """The place of a normalized positive decimal's last (nonzero) digit."""
    exponent = block.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    return exponent


def _split(block: Decimal) -> list[Decimal]:
    """A normalized positive decimal cut at every run of more than :data:`GAP` zeros (lowest first)."""
    _, digits, exponent = block.as_tuple()
    assert isinstance(exponent, int)  # finite
    text = "".join(map(str, digits))
    if "0" * (GAP + 1) not in text:
        return [block]
    pieces = []
    end = len(text)
    for run in reversed(list(_ZERO_RUN.finditer(text))):
        piece = text[run.end() : end]
        pieces.append(Decimal((0, tuple(map(int, piece)), exponent + len(text) - end)))
        end = run.start()
    pieces.append(Decimal((0, tuple(map(int, text[:end])), exponent + len(text) - end)))
    return pieces


def _place(blocks: list[Decimal], lows: list[int], highs: list[int], term: Decimal) -> None:
    """Add a positive decimal to sorted, separated blocks, merging it with the blocks within
    :data:`GAP` places of it (and, after a carry, of the merged block), exactly."""
    while True:
        low, high = _low(term), term.adjusted()
        first = bisect_left(highs, low - GAP - 1)
        last = bisect_right(lows, high + GAP + 1)
        if first >= last:
            blocks.insert(first, term)
            lows.insert(first, low)
            highs.insert(first, high)
            return
        for block in blocks[first:last]:
            term = _BIG.add(term, block)  # within GAP places of each other: a short exact sum
        term = _BIG.normalize(term)
        del blocks[first:last], lows[first:last], highs[first:last]


def exact_sum(values: Iterable[ExactSum]) -> ExactSum:
    """The exact sum of non-negative decimals and sparse sums, dense when it fits (:data:`DENSE_DIGITS`)."""
    blocks: list[Decimal] = []
    lows: list[int] = []
    highs: list[int] = []
    for value in values:
        for term in value.blocks if isinstance(value, Sparse) else (value,):
            if term < 0:
                raise ValueError("sums are of non-negative values")
            if term:
                _place(blocks, lows, highs, _BIG.normalize(term))
    if not blocks:
        return Decimal(0)
    if highs[-1] - lows[0] < DENSE_DIGITS:
        dense = Decimal(0)
        for block in blocks:
            dense = _BIG.add(dense, block)
        return dense
    return Sparse(tuple(piece for block in blocks for piece in _split(block)))


def exact_term(value: Decimal) -> ExactSum:
    """One non-negative value as a sum: itself, or a one-block :class:`Sparse` if it is wider than dense."""
    try:
        return EXACT_CONTEXT.plus(value)
    except Inexact:
        return exact_sum((value,))


def compare(value: ExactSum, threshold: Decimal) -> int:
    """-1, 0 or 1 as ``value`` is below, at or above ``threshold``, exactly.

    Blocks are taken from the highest: the rest of a sparse sum below block ``b`` is less than
    ``2 * 10**(b.adjusted() + 1)``, so once the remainder ``threshold - (blocks so far)`` is at most 0 or at
    least that bound the answer is known. Before it is, the remainder is below the bound and above 0, so
    its digits span at most the threshold's own: every subtraction is short.
    """
    if type(value) is Decimal:
        return (value > threshold) - (value < threshold)
    assert isinstance(value, Sparse)
    rest = threshold
    for block in reversed(value.blocks):
        if rest <= 0:
            return 1
        if rest >= Decimal((0, (2,), block.adjusted() + 1)):
            return -1
        rest = _BIG.subtract(rest, block)
    return (rest < 0) - (rest > 0)


def _parse_sum(text: str) -> ExactSum:
    """A stored sum: one decimal (the old form, and every dense sum), or sparse blocks joined by ``" + "``."""
    if _SEPARATOR in text:
        return exact_sum([Decimal(part) for part in text.split(_SEPARATOR)])
    return Decimal(text)


_FLOAT_PLACE = -1400
"""Digits below this place cannot change a quotient's rounding to a double (see :func:`quotient`)."""
_STICKY = Decimal("1e-1500")
_CUT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, rounding=ROUND_DOWN, traps=[InvalidOperation])


def quotient(value: ExactSum, divisor: int) -> float:
    """``value / divisor`` correctly rounded to the nearest double, without building ``10**999999999``.

    The digits below place -1400 are replaced by ``1e-1500`` when any is nonzero: the rounding of ``x /
    n`` changes only at multiples of ``2**-1075``, and ``n`` times one of those is a multiple of
    ``10**-1400``, so no such point lies strictly between ``h / n`` and ``(h + 10**-1400) / n`` (``h`` the
    value cut at place -1400): the true value and the stand-in round alike.
    """
    if type(value) is Decimal and value.adjusted() >= _FLOAT_PLACE:  # at most 10,000 digits: exact as it is
        numerator, denominator = value.as_integer_ratio()
        return numerator / (denominator * divisor)
    blocks = value.blocks if isinstance(value, Sparse) else (value,)
    kept = Decimal(0)
    sticky = False
    for block in blocks:
        if not block:
            continue
        if block.adjusted() < _FLOAT_PLACE:
            sticky = True
            continue
        cut = block.quantize(Decimal((0, (1,), _FLOAT_PLACE)), context=_CUT) if _low(block) < _FLOAT_PLACE else block
        sticky = sticky or cut != block
        kept = _BIG.add(kept, cut)
    if sticky:
        kept = _BIG.add(kept, _STICKY)
    numerator, denominator = kept.as_integer_ratio()
    return numerator / (denominator * divisor)  # int / int is correctly rounded in Python


@dataclass(frozen=True, slots=True)
class Sums:
    """Exact running sums of distinct readings: adding them in any grouping or order gives one result.

    They are what the stores keep per sensor and window, so an aggregate over many sensors and windows
    equals the aggregate over all their readings at once.
    """

    readings: int = 0
    vehicles: int = 0
    speed_x_vehicles: ExactSum = Decimal(0)
    occupancy: ExactSum = Decimal(0)
    min_speed_limit: Decimal | None = None

    @classmethod
    def of(cls, m: Measurement) -> Sums:
        return cls(
            1, m.vehicle_count, exact_term(product(m.vehicle_count, exact(m.average_speed_kmh))),
            exact_term(exact(m.occupancy_percent)), exact(m.speed_limit_kmh),
        )  # fmt: skip

    def row(self) -> list[Any]:
        """The sums as a compact JSON row ``[readings, vehicles, "speed x vehicles", "occupancy", "limit"]``."""
        return [
            self.readings,
            self.vehicles,
            str(self.speed_x_vehicles),
            str(self.occupancy),
            str(self.min_speed_limit),
        ]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Sums:
        return cls(int(row[0]), int(row[1]), _parse_sum(row[2]), _parse_sum(row[3]), Decimal(row[4]))

    def __add__(self, other: Sums) -> Sums:
        return total((self, other))

    def aggregate(self) -> Aggregate:
        """The contract's aggregate. The level is decided on the exact sums; the mean values shown are
        the exact quotients correctly rounded to the nearest binary double (for JSON and display)."""
        if not self.readings or self.min_speed_limit is None:
            raise ValueError("an aggregate needs at least one reading")
        return Aggregate(
            readings=self.readings,
            vehicles=self.vehicles,
            average_speed_kmh=quotient(self.speed_x_vehicles, self.vehicles) if self.vehicles else 0.0,
            occupancy_percent=quotient(self.occupancy, self.readings),
            speed_limit_kmh=float(self.min_speed_limit),
            congestion_level=level_of_sums(
                self.vehicles,
                speed_sum=self.speed_x_vehicles,
                speed_weight=self.vehicles,
                occupancy_sum=self.occupancy,
                occupancy_count=self.readings,
                limit=self.min_speed_limit,
            ),
        )


def encode_sums(sums: Mapping[str, Sums]) -> str:
    """Sums by key (a segment, or a sensor part) as one compact JSON text attribute, sorted by key: a
    string is far cheaper to store and stream than a map of maps. The same text as
    ``json.dumps({key: s.row() ...}, separators=(",", ":"))`` (a test compares them)."""
    return "{" + ",".join([sums_member(key, s) for key, s in sorted(sums.items())]) + "}"


def sums_member(key: str, s: Sums) -> str:
    """One member of :func:`encode_sums`' object: ``"key":[readings,vehicles,"speed x vehicles",...]``."""
    return (
        f'{_json_string(key)}:[{s.readings},{s.vehicles},"{s.speed_x_vehicles!s}","{s.occupancy!s}",'
        f'"{s.min_speed_limit!s}"]'
    )


_json_string = json.encoder.encode_basestring_ascii


def decode_sums(text: str) -> dict[str, Sums]:
    return {key: Sums.from_row(row) for key, row in json.loads(text).items()}


def total(sums: Iterable[Sums]) -> Sums:
    """The sum of ``sums``, exactly: dense decimals in :data:`EXACT_CONTEXT` while they fit, else
    :func:`exact_sum` (the same value either way)."""
    sums = sums if isinstance(sums, list | tuple) else list(sums)
    if len(sums) == 1:
        return sums[0]
    readings = vehicles = 0
    speed_x_vehicles: ExactSum = Decimal(0)
    occupancy: ExactSum = Decimal(0)
    limit: Decimal | None = None
    add = EXACT_CONTEXT.add  # a Sparse operand raises TypeError
    try:
        for s in sums:
            readings += s.readings
            vehicles += s.vehicles
            speed_x_vehicles = add(speed_x_vehicles, s.speed_x_vehicles)  # type: ignore[arg-type]
            occupancy = add(occupancy, s.occupancy)  # type: ignore[arg-type]
            if s.min_speed_limit is not None and (limit is None or s.min_speed_limit < limit):
                limit = s.min_speed_limit
    except (Inexact, TypeError):  # wider than dense, or a sparse sum among them
        speed_x_vehicles = exact_sum([s.speed_x_vehicles for s in sums])
        occupancy = exact_sum([s.occupancy for s in sums])
        readings = sum(s.readings for s in sums)
        vehicles = sum(s.vehicles for s in sums)
        limits = [s.min_speed_limit for s in sums if s.min_speed_limit is not None]
        limit = min(limits) if limits else None
    return Sums(readings, vehicles, speed_x_vehicles, occupancy, limit)


def aggregate(measurements: Iterable[Measurement]) -> Aggregate:
    """Aggregate distinct readings, with exact decimal sums (independent of order and grouping)."""
    return total([Sums.of(m) for m in measurements]).aggregate()


def window_start_ns(instant_ns: int, window_seconds: int) -> int:
    """Start of the aggregation window holding ``instant_ns`` (windows are aligned to the epoch)."""
    width = window_seconds * NS_PER_SECOND
    return instant_ns - instant_ns % width
