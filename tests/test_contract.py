"""The processor's validator accepts and rejects exactly what the reading contract does.

The oracle is jsonschema's Draft 2020-12 validator over ``contracts/traffic-reading.schema.json`` with
``format`` asserted, corrected where Python's regex semantics differ from the standards the schema
refers to: ``$`` matches before a final newline in Python but not in ECMA-262 (``pattern``) or RFC 3339
(``date-time``), and leap seconds are valid at 23:59:60 UTC as the official JSON Schema test suite has it
(rfc3339-validator refuses them all).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import sys
import threading
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from rfc3339_validator import validate_rfc3339

from lambdas.common.contract import (
    FUTURE_TIMESTAMP,
    MALFORMED_JSON,
    REASONS,
    SCHEMA_VIOLATION,
    Measurement,
    Reading,
    Rejection,
    aggregate,
    congestion_level,
    parse_instant,
    parse_reading,
)
from stacks.schema import reading_schema

SCHEMA = reading_schema()
FAR_FUTURE_NS = parse_instant("9999-12-31T23:59:59Z")
NOW_NS = parse_instant("2026-06-01T12:00:00Z")

checker = FormatChecker(formats=())


@checker.checks("date-time")
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if value.endswith("\n"):
        return False
    text = value.upper()
    leap = re.fullmatch(r"(.{16}):60(\.\d+)?(Z|[+-]\d\d:\d\d)", text)
    if leap:
        if not validate_rfc3339(f"{leap.group(1)}:59{leap.group(2) or ''}{leap.group(3)}"):
            return False
        offset = leap.group(3)
        local = datetime.datetime.fromisoformat(leap.group(1) + ":59+00:00")
        delta = datetime.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) if offset != "Z" else None
        utc = local - delta if delta and offset[0] == "+" else local + delta if delta else local
        return (utc.hour, utc.minute) == (23, 59)
    return bool(validate_rfc3339(text))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if isinstance(instance, str) and not re.search(re.sub(r"\$$", r"\\Z", pattern), instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _is_integer(checker: Any, instance: Any) -> bool:
    """JSON Schema's integer (a number with no fractional part), for exactly decoded numbers too."""
    if isinstance(instance, bool):
        return False
    if isinstance(instance, Decimal):
        return instance.is_finite() and instance == instance.to_integral_value()
    return bool(Draft202012Validator.TYPE_CHECKER.is_type(instance, "integer"))


Oracle = validators.extend(
    Draft202012Validator,
    {"pattern": _ecma_pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)
oracle = Oracle(SCHEMA, format_checker=checker)


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def exact_loads(text: str | bytes) -> Any:
    """JSON with every number as the exact decimal it was written as (any length), as the contract reads it;
    nested however deep (any valid JSON is JSON): a document deeper than ``json`` recurses is decoded on a
    thread with a stack and a recursion limit for its length (here only: the limit is process-wide)."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
    except RecursionError:
        return _deep_loads(text)


def _deep_loads(text: str | bytes) -> Any:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant)
        except ValueError as exc:
            outcome["error"] = exc

    limit = sys.getrecursionlimit()
    threading.stack_size(1024 * 1024 * 1024)
    sys.setrecursionlimit(limit + len(text))
    try:
        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
    finally:
        sys.setrecursionlimit(limit)
        threading.stack_size(0)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def verdict(document: Any, now_ns: int = FAR_FUTURE_NS) -> str:
    outcome = parse_reading(json.dumps(document).encode(), now_ns)
    return "valid" if isinstance(outcome, Reading) else outcome.reason


def oracle_verdict(document: Any) -> str:
    if not isinstance(document, dict):
        return MALFORMED_JSON
    return "valid" if oracle.is_valid(document) else SCHEMA_VIOLATION


VALID: dict[str, Any] = {
    "sensor_id": "sensor-0001",
    "segment_id": "seg-A1",
    "timestamp": "2026-06-01T11:59:00Z",
    "vehicle_count": 12,
    "average_speed_kmh": 42.5,
    "occupancy_percent": 18.0,
}


# -------------------------------------------------------------------------------- hand-picked edges


def changed(**fields: Any) -> dict[str, Any]:
    return {**VALID, **fields}


EDGES: list[tuple[str, bytes, str]] = [
    ("minimal valid", json.dumps(VALID).encode(), "valid"),
    ("all optional fields", json.dumps(changed(speed_limit_kmh=80, interval_seconds=60)).encode(), "valid"),
    ("extra properties kept", json.dumps(changed(firmware={"v": [1, 2]})).encode(), "valid"),
    ("integer written as 12.0", json.dumps(VALID).replace(": 12,", ": 12.0,").encode(), "valid"),
    ("integer written as 1.2e1", json.dumps(VALID).replace(": 12,", ": 1.2e1,").encode(), "valid"),
    ("boolean as integer", json.dumps(changed(vehicle_count=True)).encode(), SCHEMA_VIOLATION),
    ("boolean as number", json.dumps(changed(average_speed_kmh=False)).encode(), SCHEMA_VIOLATION),
    ("NaN", json.dumps(VALID).replace("42.5", "NaN").encode(), MALFORMED_JSON),
    ("Infinity", json.dumps(VALID).replace("42.5", "Infinity").encode(), MALFORMED_JSON),
    ("-Infinity", json.dumps(VALID).replace("42.5", "-Infinity").encode(), MALFORMED_JSON),
    ("overflowing number 1e400", json.dumps(VALID).replace("42.5", "1e400").encode(), SCHEMA_VIOLATION),
    ("fractional integer", json.dumps(changed(vehicle_count=1.5)).encode(), SCHEMA_VIOLATION),
    ("negative count", json.dumps(changed(vehicle_count=-1)).encode(), SCHEMA_VIOLATION),
    ("count above maximum", json.dumps(changed(vehicle_count=10001)).encode(), SCHEMA_VIOLATION),
    ("count at maximum", json.dumps(changed(vehicle_count=10000)).encode(), "valid"),
    ("speed at maximum", json.dumps(changed(average_speed_kmh=300)).encode(), "valid"),
    ("occupancy above 100", json.dumps(changed(occupancy_percent=100.0001)).encode(), SCHEMA_VIOLATION),
    ("speed limit below 5", json.dumps(changed(speed_limit_kmh=4.99)).encode(), SCHEMA_VIOLATION),
    ("interval 0", json.dumps(changed(interval_seconds=0)).encode(), SCHEMA_VIOLATION),
    ("null speed limit", json.dumps(changed(speed_limit_kmh=None)).encode(), SCHEMA_VIOLATION),
    ("missing occupancy", json.dumps({k: v for k, v in VALID.items() if k != "occupancy_percent"}).encode(),
     SCHEMA_VIOLATION),
    ("naive timestamp", json.dumps(changed(timestamp="2026-06-01T11:59:00")).encode(), SCHEMA_VIOLATION),
    ("date only", json.dumps(changed(timestamp="2026-06-01")).encode(), SCHEMA_VIOLATION),
    ("space separator", json.dumps(changed(timestamp="2026-06-01 11:59:00Z")).encode(), SCHEMA_VIOLATION),
    ("lowercase t and z", json.dumps(changed(timestamp="2026-06-01t11:59:00.25z")).encode(), "valid"),
    ("offset timestamp", json.dumps(changed(timestamp="2026-06-01T13:59:00+02:00")).encode(), "valid"),
    ("30 February", json.dumps(changed(timestamp="2026-02-30T00:00:00Z")).encode(), SCHEMA_VIOLATION),
    ("29 February leap year", json.dumps(changed(timestamp="2024-02-29T00:00:00Z")).encode(), "valid"),
    ("hour 24", json.dumps(changed(timestamp="2026-06-01T24:00:00Z")).encode(), SCHEMA_VIOLATION),
    # Contract version 2: the schema's timestamp pattern refuses leap seconds and sub-nanosecond fractions.
    ("leap second UTC", json.dumps(changed(timestamp="2016-12-31T23:59:60Z")).encode(), SCHEMA_VIOLATION),
    ("leap second with offset", json.dumps(changed(timestamp="2016-12-31T15:59:60.5-08:00")).encode(),
     SCHEMA_VIOLATION),
    ("nanosecond fraction", json.dumps(changed(timestamp="2026-06-01T11:59:00.123456789Z")).encode(), "valid"),
    ("ten fraction digits", json.dumps(changed(timestamp="2026-06-01T11:59:00.1234567890Z")).encode(),
     SCHEMA_VIOLATION),
    ("year 1 with offset (UTC year 0)", json.dumps(changed(timestamp="0001-01-01T00:00:00+00:01")).encode(), "valid"),
    ("5,000-digit extra property", json.dumps(VALID)[:-1].encode() + b', "x": ' + b"9" * 5000 + b"}", "valid"),
    ("5,000-digit count", json.dumps(VALID).replace(": 12,", ": " + "9" * 5000 + ",").encode(), SCHEMA_VIOLATION),
    ("5,000-digit fraction in range", json.dumps(VALID).replace("42.5", "42." + "5" * 5000).encode(), "valid"),
    ("huge exponent", json.dumps(VALID).replace("42.5", "1e99999999999999999999").encode(), SCHEMA_VIOLATION),
    ("tiny exponent", json.dumps(VALID).replace("42.5", "1e-99999999999999999999").encode(), "valid"),
    ("just above the maximum", json.dumps(VALID).replace("42.5", "300.0000000000000000000001").encode(),
     SCHEMA_VIOLATION),
    ("leap second wrong minute", json.dumps(changed(timestamp="2016-12-31T23:58:60Z")).encode(), SCHEMA_VIOLATION),
    ("second 61", json.dumps(changed(timestamp="2016-12-31T23:59:61Z")).encode(), SCHEMA_VIOLATION),
    ("timestamp trailing newline", json.dumps(changed(timestamp="2026-06-01T11:59:00Z\n")).encode(), SCHEMA_VIOLATION),
    ("timestamp as number", json.dumps(changed(timestamp=1780000000)).encode(), SCHEMA_VIOLATION),
    ("id trailing newline", json.dumps(changed(sensor_id="sensor-1\n")).encode(), SCHEMA_VIOLATION),
    ("id leading dash", json.dumps(changed(sensor_id="-sensor")).encode(), SCHEMA_VIOLATION),
    ("id 65 characters", json.dumps(changed(segment_id="s" * 65)).encode(), SCHEMA_VIOLATION),
    ("id 64 characters", json.dumps(changed(segment_id="s" * 64)).encode(), "valid"),
    ("id non-ASCII digit", json.dumps(changed(sensor_id="sensor-\u0661")).encode(), SCHEMA_VIOLATION),
    ("empty payload", b"", MALFORMED_JSON),
    ("whitespace payload", b"  \n", MALFORMED_JSON),
    ("top-level array", json.dumps([VALID]).encode(), MALFORMED_JSON),
    ("top-level string", b'"reading"', MALFORMED_JSON),
    ("top-level null", b"null", MALFORMED_JSON),
    ("truncated JSON", json.dumps(VALID).encode()[:-3], MALFORMED_JSON),
    ("not UTF-8", json.dumps(changed(note="caf\u00e9"), ensure_ascii=False).encode("latin-1"), MALFORMED_JSON),
    ("UTF-16", json.dumps(VALID).encode("utf-16"), MALFORMED_JSON),
    ("UTF-8 BOM", b"\xef\xbb\xbf" + json.dumps(VALID).encode(), MALFORMED_JSON),
    ("deeply nested extra", b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", SCHEMA_VIOLATION),
    ("deeply nested extra in a valid reading", json.dumps(changed(x=0)).encode().replace(b"0}", b"[" * 100_000
     + b"]" * 100_000 + b"}"), "valid"),
    ("deeply nested and unclosed", b'{"x": ' + b"[" * 100_000 + b"]" * 99_999 + b"}", MALFORMED_JSON),
    ("huge valid payload", json.dumps(changed(padding="x" * 900_000)).encode(), "valid"),
    ("future by 301 s", json.dumps(changed(timestamp="2026-06-01T12:05:01Z")).encode(), FUTURE_TIMESTAMP),
    ("future by exactly 300 s", json.dumps(changed(timestamp="2026-06-01T12:05:00Z")).encode(), "valid"),
    ("future and broken", json.dumps(changed(timestamp="2027-01-01T00:00:00Z", vehicle_count=-1)).encode(),
     SCHEMA_VIOLATION),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "expected"), [(p, e) for _, p, e in EDGES], ids=[n for n, _, _ in EDGES])
def test_edge_cases(payload: bytes, expected: str) -> None:
    outcome = parse_reading(payload, NOW_NS)
    got = "valid" if isinstance(outcome, Reading) else outcome.reason
    assert got == expected, outcome
    if isinstance(outcome, Rejection):
        assert outcome.detail


# The oracle's decimals cannot hold exponents beyond ~10**18 (the validator maps them to their range's side).
ORACLE_EDGES = [(n, p, e) for n, p, e in EDGES if e != FUTURE_TIMESTAMP and "exponent" not in n]


@pytest.mark.parametrize(("payload", "expected"), [(p, e) for _, p, e in ORACLE_EDGES],
                         ids=[n for n, _, _ in ORACLE_EDGES])  # fmt: skip
def test_edge_cases_agree_with_the_oracle(payload: bytes, expected: str) -> None:
    try:
        document = exact_loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        assert expected == MALFORMED_JSON
        return
    assert oracle_verdict(document) == expected


def test_equal_instants_are_one_reading() -> None:
    a = parse_reading(json.dumps(VALID).encode(), NOW_NS)
    b = parse_reading(json.dumps(changed(timestamp="2026-06-01T13:59:00.000+02:00")).encode(), NOW_NS)
    assert isinstance(a, Reading) and isinstance(b, Reading)
    assert a.key == b.key
    assert a.speed_limit_kmh == 50 and a.interval_seconds == 60


# --------------------------------------------------------------------------------- property tests


@st.composite
def rfc3339(draw: st.DrawFn) -> str:
    """RFC 3339 date-times in every spelling the format allows (offsets, case, fraction digits)."""
    moment = draw(st.datetimes(min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30)))
    fraction = draw(st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,12}", fullmatch=True)))
    offset = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    zone = (
        draw(st.sampled_from(["Z", "z"]))
        if offset == 0 and draw(st.booleans())
        else (f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}")
    )
    separator = draw(st.sampled_from(["T", "t"]))
    return f"{moment:%Y-%m-%d}{separator}{moment:%H:%M:%S}{fraction}{zone}"


def _value(spec: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for one property of the schema (read from the schema, not restated)."""
    if spec.get("format") == "date-time":
        return rfc3339()
    if "pattern" in spec:
        return st.from_regex(re.sub(r"\$$", r"\\Z", spec["pattern"]), fullmatch=True)
    low, high = spec["minimum"], spec["maximum"]
    whole = st.integers(math.ceil(low), math.floor(high))
    if spec["type"] == "integer":
        return whole | whole.map(float)
    return whole | st.floats(low, high, allow_nan=False)


valid_readings = st.fixed_dictionaries(
    {name: _value(SCHEMA["properties"][name]) for name in SCHEMA["required"]},
    optional={
        **{name: _value(spec) for name, spec in SCHEMA["properties"].items() if name not in SCHEMA["required"]},
        "firmware": st.text(max_size=10),
    },
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from([*SCHEMA["properties"], "extra"])
new_values = st.one_of(
    st.just("__delete__"), json_values, st.text(min_size=1, max_size=70), st.floats(-1e4, 1e4), st.integers(-10, 20000)
)
mutations = st.lists(st.tuples(field_names, new_values), min_size=1, max_size=3)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(valid_readings)
def test_generated_instances_agree_with_the_oracle(document: dict[str, Any]) -> None:
    assert verdict(document) == oracle_verdict(document)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(valid_readings, mutations)
def test_mutated_instances_agree_with_the_oracle(document: dict[str, Any], changes: list[tuple[str, Any]]) -> None:
    mutated = dict(document)
    for name, value in changes:
        if value == "__delete__":
            mutated.pop(name, None)
        else:
            mutated[name] = value
    assert verdict(mutated) == oracle_verdict(mutated)


@settings(max_examples=200)
@given(json_values)
def test_arbitrary_json_agrees_with_the_oracle(document: Any) -> None:
    assert verdict(document) == oracle_verdict(document)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    outcome = parse_reading(payload, NOW_NS, thing="sensor-0001", max_age_ns=86_400 * 10**9)
    assert isinstance(outcome, Reading) or outcome.reason in REASONS


# -------------------------------------------------------------------------------- congestion rules


@pytest.mark.parametrize(
    ("vehicles", "speed", "occupancy", "limit", "level"),
    [
        (0, 0, 100, 50, "free"),  # no vehicles wins over everything
        (5, 50, 80, 50, "severe"),
        (5, 12.4, 0, 50, "severe"),  # ratio 0.248
        (5, 12.5, 0, 50, "heavy"),  # ratio 0.25 is not < 0.25
        (5, 50, 50, 50, "heavy"),
        (5, 24.9, 0, 50, "heavy"),
        (5, 25, 0, 50, "moderate"),
        (5, 50, 25, 50, "moderate"),
        (5, 37.4, 0, 50, "moderate"),
        (5, 37.5, 24.9, 50, "free"),
        (5, 60, 10, 80, "free"),
        (5, 59, 10, 80, "moderate"),
    ],
)
def test_congestion_table(vehicles: int, speed: float, occupancy: float, limit: float, level: str) -> None:
    assert congestion_level(vehicles, speed, occupancy, limit) == level


def test_aggregate_follows_the_contract() -> None:
    agg = aggregate(
        [Measurement(10, 20.0, 60.0, 50.0), Measurement(30, 40.0, 20.0, 80.0), Measurement(0, 99.0, 10.0, 50.0)]
    )
    assert agg.readings == 3
    assert agg.vehicles == 40
    assert agg.average_speed_kmh == pytest.approx((10 * 20 + 30 * 40) / 40)
    assert agg.occupancy_percent == pytest.approx(30.0)
    assert agg.speed_limit_kmh == 50.0
    assert agg.congestion_level == "moderate"  # ratio 35/50 = 0.7 < 0.75 and occupancy 30 >= 25, nothing heavier
    no_vehicles = aggregate([Measurement(0, 80.0, 90.0, 50.0)])
    assert no_vehicles.average_speed_kmh == 0 and no_vehicles.congestion_level == "free"


@given(st.lists(st.tuples(st.integers(0, 10000), st.floats(0, 300), st.floats(0, 100), st.floats(5, 200)), min_size=1,
                max_size=30), st.randoms())  # fmt: skip
def test_aggregate_does_not_depend_on_order(rows: list[tuple[int, float, float, float]], rng: Any) -> None:
    items = [Measurement(*row) for row in rows]
    shuffled = list(items)
    rng.shuffle(shuffled)
    assert aggregate(items) == aggregate(shuffled)
    vehicles = sum(m.vehicle_count for m in items)
    expected = math.fsum(m.vehicle_count * m.average_speed_kmh for m in items) / vehicles if vehicles else 0.0
    assert aggregate(items).average_speed_kmh == pytest.approx(expected, rel=1e-12, abs=1e-12)
