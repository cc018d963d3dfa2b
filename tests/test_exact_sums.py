"""Exact sums (``contract.Sparse``): exact for literals of any length and exponent, in bounded space.

The reference is ``fractions.Fraction`` on literals whose exponents are wild but small enough for a
fraction (a few tens of thousands of places: far past the 10,000 of a dense sum); the literals that no
fraction could hold (``1e-999999999``) are checked against the answer the contract's arithmetic gives.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.common import contract
from lambdas.common.contract import (
    DENSE_DIGITS,
    GAP,
    Measurement,
    Sparse,
    Sums,
    compare,
    decode_sums,
    encode_sums,
    exact_sum,
    quotient,
    total,
)
from lambdas.processor import logic
from tests.oracle import level

TINY = Decimal("1E-999999999")


def as_fraction(value: contract.ExactSum) -> Fraction:
    blocks = value.blocks if isinstance(value, Sparse) else (value,)
    return sum((Fraction(b) for b in blocks), Fraction(0))


def size_bound(terms: list[Decimal]) -> int:
    """The stated bound of a sum's text: a dense sum's digits, or per term its text, GAP zeros and 40."""
    return max(DENSE_DIGITS + 30, sum(len(str(t)) + GAP + 40 for t in terms))


literals = st.builds(
    lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
    st.integers(0, 10**30),
    st.one_of(st.integers(-40, 3), st.integers(-30_000, 3), st.sampled_from([-9_999, -10_000, -10_001, -20_003])),
)


@settings(max_examples=300)
@given(st.lists(literals, max_size=12), st.randoms(use_true_random=False))
def test_sums_equal_the_fraction_sum_in_any_order_and_grouping(terms: list[Decimal], rng: random.Random) -> None:
    expected = sum((Fraction(t) for t in terms), Fraction(0))
    whole = exact_sum(terms)
    assert as_fraction(whole) == expected
    shuffled = terms[:]
    rng.shuffle(shuffled)
    cut = rng.randint(0, len(shuffled))
    regrouped = exact_sum([exact_sum(shuffled[:cut]), exact_sum(shuffled[cut:])])
    assert regrouped == whole  # one value, one form (dense or the same blocks)
    assert isinstance(whole, Sparse) == (expected != 0 and _span(terms) > DENSE_DIGITS)
    assert len(str(whole)) <= size_bound(terms)
    assert contract._parse_sum(str(whole)) == whole


def _span(terms: list[Decimal]) -> int:
    """Places from the first to the last nonzero digit of the exact sum (one unbounded decimal addition)."""
    value = Decimal(0)
    for term in terms:
        value = contract._BIG.add(value, term)
    value = contract._BIG.normalize(value)
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return value.adjusted() - exponent + 1


@settings(max_examples=150)
@given(st.lists(literals, min_size=1, max_size=10), st.data())
def test_comparisons_equal_the_fraction_comparison(terms: list[Decimal], data: st.DataObject) -> None:
    value = exact_sum(terms)
    exact = as_fraction(value)
    near = [t for t in terms if t] or [Decimal(1)]
    # thresholds at, just above and just below the sum, at a term, and far from it
    step = Decimal(f"1E{data.draw(st.integers(-30_000, 3))}")
    candidates = [
        exact_sum(terms),
        exact_sum([*terms, step]),
        data.draw(st.sampled_from(near)),
        Decimal(data.draw(st.integers(0, 10**6))),
    ]
    for candidate in candidates:
        threshold = candidate if isinstance(candidate, Decimal) else sum_decimal(candidate)
        for shifted in (threshold, threshold - step, threshold + step):
            t = Fraction(shifted)
            assert compare(value, shifted) == (exact > t) - (exact < t)


def sum_decimal(value: contract.ExactSum) -> Decimal:
    """A sparse sum as one decimal (only for the test's moderate exponents)."""
    if isinstance(value, Decimal):
        return value
    result = Decimal(0)
    for block in value.blocks:
        result = contract._BIG.add(result, block)
    return result


measurements = st.builds(
    Measurement,
    st.integers(0, 10_000),
    st.one_of(literals.filter(lambda d: d <= 300), st.sampled_from([Decimal("24." + "9" * 10_050), Decimal(25)])),
    st.one_of(literals.filter(lambda d: d <= 100), st.sampled_from([Decimal("49." + "9" * 10_050), Decimal(50)])),
    st.sampled_from([Decimal(50), Decimal("50." + "0" * 10_020 + "1"), Decimal(5)]),
)


@settings(max_examples=120)
@given(st.lists(measurements, min_size=1, max_size=6))
def test_the_aggregate_level_equals_the_fraction_level(ms: list[Measurement]) -> None:
    vehicles = sum(m.vehicle_count for m in ms)
    speed = sum(Fraction(m.vehicle_count) * Fraction(m.average_speed_kmh) for m in ms)
    occupancy = sum(Fraction(m.occupancy_percent) for m in ms) / len(ms)
    limit = min(Fraction(m.speed_limit_kmh) for m in ms)
    expected = level(Fraction(vehicles), speed / vehicles if vehicles else Fraction(0), occupancy, limit)
    result = contract.aggregate(ms)
    assert result.congestion_level == expected
    assert result.occupancy_percent == float(occupancy)  # Fraction -> float is correctly rounded
    assert result.average_speed_kmh == (float(speed / vehicles) if vehicles else 0.0)


def test_a_literal_a_billion_places_down_is_two_short_blocks_and_compares_exactly() -> None:
    """``1e-999999999`` beside 50: a dense sum would need a billion digits; the sparse one is two blocks."""
    value = exact_sum([Decimal(50), TINY])
    assert isinstance(value, Sparse) and str(value) == "5E+1 + 1E-999999999"
    assert compare(value, Decimal(50)) == 1 and compare(value, Decimal("50.000000000000000001")) == -1
    assert exact_sum([Decimal(50), TINY, TINY]) == exact_sum([Decimal("2E-999999999"), Decimal(50)])
    # a mean of exactly 50 plus a tiny part is heavy; a hair below 50 plus it is still moderate
    heavy = [Measurement(1, 40, occupancy, 50) for occupancy in (TINY, Decimal(100))]
    assert contract.aggregate(heavy).congestion_level == "heavy"
    below = Decimal("49.99999999999999999999")
    moderate = [Measurement(1, 40, occupancy, 50) for occupancy in (below, TINY, Decimal(100), Decimal(50))]
    assert contract.aggregate(moderate).congestion_level == "moderate"
    assert contract.aggregate(moderate).occupancy_percent == 50.0  # the double nearest the exact mean
    # speed: 4 x (sum of count x speed) against limit x vehicles, exactly, with the tiny part on top
    slow = [Measurement(10, Decimal("24.99999999999999999999"), 10, 50), Measurement(10, TINY, 10, 50)]
    assert contract.aggregate(slow).congestion_level == "severe"  # ratio just under 0.25
    ok = [Measurement(10, Decimal(25), 10, 50), Measurement(10, Decimal(25), 10, 50), Measurement(1, TINY, 10, 50)]
    assert contract.aggregate(ok).congestion_level == "heavy"  # ratio 500/21/50 < 0.5


def test_thirty_kilobytes_of_short_literals_keep_a_sum_within_its_stated_bound() -> None:
    """A sensor's 30 KB of literals like ``1E-9997``: places within 10,000 keep the sum dense (at most
    10,000 digits, however many readings); wild exponents make one short block each, bounded by the
    literals' own text, never by the billion places between them."""
    near = [Decimal(f"1E-{k}") for k in range(9997, 0, -3)]  # ~3,300 literals, ~25 KB of text
    assert sum(len(str(t)) for t in near) > 20_000
    dense = exact_sum([Decimal(50), *near, *near])
    assert isinstance(dense, Decimal) and len(str(dense)) <= DENSE_DIGITS + 30
    wild = [Decimal(f"3E-{k * 300_001}") for k in range(1, 3000)]  # ~30 KB, exponents to -900 million
    assert sum(len(str(t)) for t in wild) > 30_000
    sparse = exact_sum([Decimal(50), *wild, *wild])
    assert isinstance(sparse, Sparse) and len(sparse.blocks) == 3000
    assert len(str(sparse)) <= size_bound([Decimal(50), *wild, *wild])
    assert compare(sparse, Decimal(50)) == 1 and compare(sparse, Decimal("50.0000000000000000001")) == -1
    assert quotient(sparse, 2) == 25.0


def test_stored_sums_read_the_old_form_and_round_trip_the_sparse_one() -> None:
    old = '{"seg-a":[2,20,"500.5","60.25","50"]}'  # as stored before sparse sums: one decimal each
    (sums,) = decode_sums(old).values()
    assert sums == Sums(2, 20, Decimal("500.5"), Decimal("60.25"), Decimal(50))
    assert encode_sums(decode_sums(old)) == old
    wide = total([sums, Sums.of(Measurement(1, TINY, TINY, 50))])
    text = encode_sums({"seg-a": wide})
    assert text == json.dumps({"seg-a": wide.row()}, separators=(",", ":"))
    assert decode_sums(text) == {"seg-a": wide} and isinstance(wide.occupancy, Sparse)


def test_a_part_budgets_the_sums_of_wide_rows() -> None:
    """Plain rows are budgeted by SEGMENT_WORST_BYTES; a row with a wide literal adds what its sums can take."""
    assert logic.sparse_bytes('"2026-06-01T12:00:00.000000000Z":[3,50.5,12,50,"seg-a","1"]') == 0
    row = '"2026-06-01T12:00:00.000000000Z":[3,1E-999999999,12,50,"seg-a","1"]'
    assert logic.sparse_bytes(row) == 2 * (len(row) + GAP + 40)
    wide = Sums.of(Measurement(3, TINY, TINY, 50))
    assert len(encode_sums({"seg-a": wide})) - len(encode_sums({"seg-a": Sums.of(Measurement(3, 1, 1, 50))})) < (
        logic.sparse_bytes(row)
    )
