"""Defects of the state layout that issue 20 ("State layout v2") lists, reproduced on the real code.

Each test states the contract's answer. A defect not fixed yet is kept as a strict expected failure
(``@pytest.mark.xfail(strict=True, reason=...)``): when a change fixes it, pytest reports the XPASS as a
failure and the marker must go, so the test then guards the fix. Fixed: exact sums (``contract.Sparse``),
deep JSON (``lambdas.common.json_syntax``), the redrive duplicate rule (the counted copies' digests).
Nothing here is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from lambdas.common import contract
from lambdas.processor import logic
from tests.aws_fixtures import Env, kinesis_event, moto_env, reading
from tests.test_processor import processor, state, stored_readings

ISSUE_20 = "issue 20: not fixed yet"

LONG = 10_050
"""Digits after the point: more than the 10,000 of a dense sum (``contract.DENSE_DIGITS``)."""


def test_a_speed_just_under_half_the_limit_is_heavy_however_many_digits_it_has() -> None:
    """24.999...(10,050 nines) / 50 < 0.50: heavy. 4 x speed used to be rounded to 100 (the ratio read 0.5);
    products are exact now (``contract.product``)."""
    speed = Decimal("24." + "9" * LONG)
    assert contract.congestion_level(10, speed, Decimal(10)) == "heavy"


def test_a_speed_just_under_half_the_limit_is_heavy_in_the_aggregate_however_many_digits_it_has() -> None:
    """The window's sums used to round count x speed to 10,000 digits (250), so its aggregate read moderate
    and no alert was sent; sums are exact now (``contract.Sparse``)."""
    speed = Decimal("24." + "9" * LONG)
    aggregate = contract.aggregate([contract.Measurement(10, speed, Decimal(10), Decimal(50))])
    assert aggregate.congestion_level == "heavy"


def test_an_occupancy_just_under_fifty_is_moderate_in_the_aggregate_however_many_digits_it_has() -> None:
    """A window of one reading at 49.999...(10,050 nines) % occupancy: moderate. The aggregate's sums used to
    round it to 50 and call it heavy; they are exact now."""
    occupancy = Decimal("49." + "9" * LONG)
    assert contract.congestion_level(10, Decimal(40), occupancy) == "moderate"
    aggregate = contract.aggregate([contract.Measurement(10, Decimal(40), occupancy, Decimal(50))])
    assert aggregate.congestion_level == "moderate"


def test_an_extra_property_nested_a_thousand_deep_is_valid_json() -> None:
    """The contract: any valid JSON is JSON; an extra property's content is not validated. The decoder's
    recursion limit used to make the reading ``malformed_json``; such a document is now checked without
    recursion (``lambdas.common.json_syntax``)."""
    reading = (
        b'{"sensor_id": "s1", "segment_id": "seg-a", "timestamp": "2026-06-01T11:50:00Z", "vehicle_count": 1,'
        b' "average_speed_kmh": 50, "occupancy_percent": 10, "extra": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    )
    document = contract.decode(reading)
    assert document["sensor_id"] == "s1"


@pytest.fixture
def moto_state() -> Iterator[Env]:
    with moto_env() as environment:
        yield environment


def test_a_redriven_batch_holding_a_reading_and_its_copy_counts_one_duplicate(moto_state: Env) -> None:
    env = moto_state
    """Issue 20: records 10 (a reading) and 11 (its copy, other values) were given up on; the live stream went
    on (record 50: another reading of the same sensor and window, so the window's mark is past them). The
    redrive hands 10 and 11 back with their own sequence numbers: the reading is stored as record 10 wrote
    it, and its copy is one duplicate. The window's marks used to take the copy as already counted, being
    below them (0); each counted copy's digest decides now (``lambdas.processor.logic``)."""
    fn = processor(env)
    live = reading("s1", "seg-a", "2026-06-01T11:52:00Z")
    assert fn.handle(kinesis_event([live], first_sequence=50)) == {"batchItemFailures": []}
    first = reading("s1", "seg-a", "2026-06-01T11:50:00Z", vehicles=3)
    copy = reading("s1", "seg-b", "2026-06-01T11:50:00Z", vehicles=9)
    redriven = kinesis_event([first, copy], first_sequence=10)
    assert fn.handle(redriven) == {"batchItemFailures": []}
    (window,) = state(env)["windows"]
    owners = stored_readings(env)
    assert owners[("s1", "2026-06-01T11:50:00.000000000Z")] == logic.owner_digest(f"{10:056d}")  # stream order
    (segment, sums), *others = contract.decode_sums(window["segments"]).items()
    assert (segment, sums.vehicles, others) == ("seg-a", 10 + 3, [])  # the first copy's values, not the copy's
    assert window["duplicates"] == 1
    assert fn.handle(redriven) == {"batchItemFailures": []}  # a second redrive of the same records
    assert state(env)["windows"][0]["duplicates"] == 1
