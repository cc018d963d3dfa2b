"""The local run's moto speed-ups store, refuse and project exactly what moto's own methods do."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tools import moto_speedups

moto_speedups.install()

from moto.dynamodb.exceptions import ItemSizeTooLarge  # noqa: E402
from moto.dynamodb.models.dynamo_type import DynamoType, Item  # noqa: E402

HASH, RANGE = DynamoType({"S": "sensor-1"}), DynamoType({"S": "2026-12-02T00:00:00Z#000"})

names = st.sampled_from(["a", "b", "latest", "partials", "version", "n", "missing"])
scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=20)),
    st.builds(lambda n: {"N": n}, st.sampled_from(["0", "1.50", "-7", "1E+2", "0.000001", "123456789012345678901"])),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, st.binary(max_size=8)),
    st.builds(lambda ss: {"SS": sorted(ss)}, st.sets(st.text(min_size=1, max_size=5), min_size=1, max_size=3)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda m: {"M": m}, st.dictionaries(names, inner, max_size=3)),
        st.builds(lambda items: {"L": items}, st.lists(inner, max_size=3)),
    ),
    max_leaves=12,
)
attributes = st.dictionaries(names, values, max_size=6)


def built(init: Any, attrs: dict[str, Any]) -> Item | type[Exception]:
    item = Item.__new__(Item)
    try:
        init(item, HASH, RANGE, attrs)
    except ItemSizeTooLarge:
        return ItemSizeTooLarge
    return item


@settings(max_examples=150, deadline=None)
@given(attributes)
def test_item_construction_matches_moto(attrs: dict[str, Any]) -> None:
    ours, theirs = built(Item.__init__, attrs), built(moto_speedups.ORIGINALS["Item.__init__"], attrs)
    assert isinstance(ours, Item) and isinstance(theirs, Item)
    assert ours.to_json() == theirs.to_json()
    assert list(ours.attrs) == list(theirs.attrs)


@pytest.mark.parametrize("size", [404_000, 405_000, 405_001, 409_000])
def test_item_size_limit_matches_moto(size: int) -> None:
    """Around moto's limit, over one attribute or spread over several, both refuse the same items."""
    for attrs in (
        {"big": {"S": "x" * (size - 3)}},
        {f"p{i}": {"S": "x" * (size // 4 - 2)} for i in range(4)} | {"rest": {"S": "y" * (size % 4 + 4)}},
    ):
        ours, theirs = built(Item.__init__, attrs), built(moto_speedups.ORIGINALS["Item.__init__"], attrs)
        assert (ours is ItemSizeTooLarge) == (theirs is ItemSizeTooLarge), size
    assert built(Item.__init__, {"big": {"S": "x" * (405_001 - 3)}}) is ItemSizeTooLarge


@settings(max_examples=150, deadline=None)
@given(attributes, st.lists(st.lists(names, min_size=1, max_size=2), min_size=1, max_size=4))
def test_projection_matches_moto(attrs: dict[str, Any], paths: list[list[str]]) -> None:
    """Top-level names take the fast path; nested or repeated paths fall back to moto's own."""
    item = built(moto_speedups.ORIGINALS["Item.__init__"], attrs)
    assert isinstance(item, Item)
    assert outcome(lambda: item.project([list(p) for p in paths])) == outcome(
        lambda: moto_speedups.ORIGINALS["Item.project"](item, [list(p) for p in paths])
    )


def outcome(project: Any) -> Any:
    """The projected item as JSON, or the type of error moto raises (a path into a scalar raises)."""
    try:
        return project().to_json()
    except Exception as error:  # any error, compared by type with moto's own
        return type(error)
